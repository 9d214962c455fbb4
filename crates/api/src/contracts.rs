//! `/api/v1/contracts`: every contract command as an endpoint, and the
//! auditors' reads (history, state as of a time or version).
//!
//! Roles (see README "Roles"): sales and managers draft, amend, submit for
//! approval, sign, activate, renew, terminate, share and unshare contracts;
//! the approval itself is decided under `/api/v1/approvals`. Approving or
//! rejecting a contract (`approve`, `reject`: issued by the process manager
//! when the approval named at submission is granted or rejected) and
//! expiring it (`expire`: issued by the timer on the end date) are
//! process-manager commands, exposed to admins only, for repairs. Auditors
//! and managers read history and the state as of a time or version; admins
//! do everything.
//!
//! | action | body | roles |
//! |---|---|---|
//! | `POST /api/v1/contracts` (draft) | title, parties, counterparty, value, start_date, end_date, body | sales, manager |
//! | `amend` | `terms` {value, start_date, end_date} and/or `body` | sales, manager |
//! | `submit` | `approval_id?` (the approval to decide it: one of this contract, or a new id the approval flow opens with the tenant's policy; default a new id) | sales, manager |
//! | `approve` | `approval_id` | admin (process manager) |
//! | `reject` | `approval_id`, `reason` | admin (process manager) |
//! | `sign` | `signatory_name` | sales, manager |
//! | `activate` | none | sales, manager |
//! | `renew` | `new_end_date` | sales, manager |
//! | `terminate` | `reason` | sales, manager |
//! | `expire` | none | admin (timer) |
//! | `shares` | `user_id` or `role` | sales, manager |
//! | `unshare` | `user_id` or `role` | sales, manager |
//! | `GET /{id}?as_of=\|at_version=`, `GET /{id}/history` | | auditor, manager |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::approval::{Subject, SubjectKind};
use chronicle_domain::contract::{
    Contact, Contract, ContractCommand, Counterparty, DraftContract, Grantee, Party, PartyKind,
    Terms,
};
use chronicle_domain::value::{Currency, Email, LongText, Money, ShortText};
use chrono::{Datelike, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{
    actor_id, entity_id, find_action, parse_body, unhandled_action, Action, Allowed, ApiQuery,
    Fields, Request,
};
use crate::error::ApiError;
use crate::history;
use crate::observability::RequestId;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/contracts", post(draft))
        .route("/api/v1/contracts/{id}", get(state_at))
        .route("/api/v1/contracts/{id}/history", get(history_of))
        .route("/api/v1/contracts/{id}/{action}", post(act))
}

/// A new contract. Texts are trimmed and must not be blank: at most 200
/// characters, `body` at most 100,000.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DraftContract")]
pub(crate) struct DraftBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    title: String,
    /// At least one.
    #[schemars(length(min = 1))]
    parties: Vec<PartyBody>,
    counterparty: CounterpartyBody,
    value: MoneyBody,
    /// ISO 8601 date, e.g. `2026-01-31`.
    #[schemars(schema_with = "crate::openapi::date")]
    start_date: String,
    /// ISO 8601 date, e.g. `2027-01-31`.
    #[schemars(schema_with = "crate::openapi::date")]
    end_date: String,
    /// The contract's text.
    #[schemars(schema_with = "crate::openapi::long_text")]
    body: String,
}

/// A party to the contract.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ContractParty")]
struct PartyBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
    /// `person` or `organisation`.
    #[schemars(regex(pattern = "^(person|organisation)$"))]
    kind: String,
    /// `supplier`, `customer`, `guarantor`...
    #[schemars(schema_with = "crate::openapi::short_text")]
    role: String,
}

/// The organisation on the other side, and whom to contact there.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Counterparty")]
struct CounterpartyBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    organisation: String,
    contact: ContactBody,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CounterpartyContact")]
struct ContactBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
    #[schemars(email)]
    email: String,
}

/// An amount of money.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Money")]
struct MoneyBody {
    /// Minor units (cents), not negative.
    #[schemars(range(min = 0))]
    amount_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    currency: String,
}

/// New terms: value and period.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ContractTerms")]
struct TermsBody {
    value: MoneyBody,
    /// ISO 8601 date, e.g. `2026-01-31`.
    #[schemars(schema_with = "crate::openapi::date")]
    start_date: String,
    /// ISO 8601 date, e.g. `2027-01-31`.
    #[schemars(schema_with = "crate::openapi::date")]
    end_date: String,
}

/// Parses money under `field` (`value`, `terms.value`).
fn money(f: &mut Fields, field: &str, m: MoneyBody) -> Option<Money> {
    let currency_field = format!("{field}.currency");
    let currency = f.check(&currency_field, Currency::parse("currency", &m.currency))?;
    f.check(
        &format!("{field}.amount_minor"),
        Money::new("amount_minor", m.amount_minor, currency),
    )
}

/// Parses an ISO 8601 calendar date (`2026-01-31`) under `field`, with a
/// year of four digits (RFC 3339's `full-date`; chrono alone would take
/// `+12345-01-01` or `-4000-01-01`).
fn date(f: &mut Fields, field: &str, raw: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        Ok(d) if (1..=9999).contains(&d.year()) => Some(d),
        _ => {
            f.fail(field, "must be a date such as 2026-01-31");
            None
        }
    }
}

fn terms(f: &mut Fields, field: &str, t: TermsBody) -> Option<Terms> {
    let value = money(f, &format!("{field}.value"), t.value);
    let start_date = date(f, &format!("{field}.start_date"), &t.start_date);
    let end_date = date(f, &format!("{field}.end_date"), &t.end_date);
    Some(Terms {
        value: value?,
        start_date: start_date?,
        end_date: end_date?,
    })
}

fn request<'a>(
    state: &'a AppState,
    principal: &'a Principal,
    headers: &'a HeaderMap,
    request_id: &'a RequestId,
    uri: &'a Uri,
    body: &'a [u8],
) -> Request<'a> {
    Request {
        state,
        principal,
        headers,
        request_id: Some(request_id),
        path: uri.path(),
        body,
        collection: "contracts",
        what: "contract",
    }
}

async fn draft(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Sales, Role::Manager])?;
    let b: DraftBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let title = f.check("title", ShortText::parse("title", b.title));
    if b.parties.is_empty() {
        f.fail("parties", "at least one party is needed");
    }
    let mut parties = Vec::with_capacity(b.parties.len());
    for (i, p) in b.parties.into_iter().enumerate() {
        let name = f.check(
            &format!("parties[{i}].name"),
            ShortText::parse("name", p.name),
        );
        let kind = match p.kind.as_str() {
            "person" => Some(PartyKind::Person),
            "organisation" => Some(PartyKind::Organisation),
            _ => {
                f.fail(
                    &format!("parties[{i}].kind"),
                    "must be person or organisation",
                );
                None
            }
        };
        let role = f.check(
            &format!("parties[{i}].role"),
            ShortText::parse("role", p.role),
        );
        if let (Some(name), Some(kind), Some(role)) = (name, kind, role) {
            parties.push(Party { name, kind, role });
        }
    }
    let organisation = f.check(
        "counterparty.organisation",
        ShortText::parse("organisation", b.counterparty.organisation),
    );
    let contact_name = f.check(
        "counterparty.contact.name",
        ShortText::parse("name", b.counterparty.contact.name),
    );
    let contact_email = f.check(
        "counterparty.contact.email",
        Email::parse("email", &b.counterparty.contact.email),
    );
    let value = money(&mut f, "value", b.value);
    let start_date = date(&mut f, "start_date", &b.start_date);
    let end_date = date(&mut f, "end_date", &b.end_date);
    let text = f.check("body", LongText::parse("body", b.body));
    let (
        Some(title),
        Some(organisation),
        Some(contact_name),
        Some(contact_email),
        Some(value),
        Some(start_date),
        Some(end_date),
        Some(text),
    ) = (
        title,
        organisation,
        contact_name,
        contact_email,
        value,
        start_date,
        end_date,
        text,
    )
    else {
        return Err(f.finish().unwrap_err());
    };
    // Party errors leave the tuple above complete.
    f.finish()?;
    let command = ContractCommand::Draft(DraftContract {
        title,
        parties,
        counterparty: Counterparty {
            organisation,
            contact: Contact {
                name: contact_name,
                email: contact_email,
            },
        },
        value,
        start_date,
        end_date,
        body: text,
        owner: actor_id(&principal),
        at: Utc::now(),
    });
    request(&state, &principal, &headers, &request_id, &uri, &body)
        .run::<Contract>(Uuid::now_v7(), true, command)
        .await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`]) and ignores the others'; a name no action knows is
/// refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ContractActionBody")]
pub(crate) struct ActionBody {
    /// New terms (amend).
    terms: Option<TermsBody>,
    /// The new text (amend), at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    body: Option<String>,
    /// The approval of this contract (submit), or the approval whose
    /// outcome is recorded (approve, reject).
    approval_id: Option<Uuid>,
    /// Why, at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    reason: Option<String>,
    /// Who signed, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    signatory_name: Option<String>,
    /// The new end date (renew), e.g. `2028-01-31`.
    #[schemars(schema_with = "crate::openapi::opt_date")]
    new_end_date: Option<String>,
    /// The user to share with (or give `role`).
    user_id: Option<Uuid>,
    /// The role to share with (or give `user_id`).
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    role: Option<String>,
}

use Role::{Admin, Manager, Sales};

/// Sales and managers: who runs contracts.
const STAFF: Allowed = Allowed::Roles(&[Sales, Manager]);
/// The process managers' and timers' commands, for repairs.
const ADMIN: Allowed = Allowed::Roles(&[Admin]);

/// The actions on a contract: `POST /api/v1/contracts/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "amend",
        summary: "Amend a draft's terms and/or text",
        allowed: STAFF,
        fields: &["terms", "body"],
        required: &[],
    },
    Action {
        name: "submit",
        summary: "Submit the contract for approval: the approval flow opens the approval \
                  `approval_id` (default: a new id; see the contract's `approval_id`) with the \
                  levels of the tenant's approval policy, unless it exists already (then it \
                  must be an approval of this contract)",
        allowed: STAFF,
        fields: &["approval_id"],
        required: &[],
    },
    Action {
        name: "approve",
        summary: "Record that the contract's approval was granted (process manager's command)",
        allowed: ADMIN,
        fields: &["approval_id"],
        required: &["approval_id"],
    },
    Action {
        name: "reject",
        summary: "Record that the contract's approval was rejected (process manager's command)",
        allowed: ADMIN,
        fields: &["approval_id", "reason"],
        required: &["approval_id", "reason"],
    },
    Action {
        name: "sign",
        summary: "Record the signature",
        allowed: STAFF,
        fields: &["signatory_name"],
        required: &["signatory_name"],
    },
    Action {
        name: "activate",
        summary: "Activate the signed contract",
        allowed: STAFF,
        fields: &[],
        required: &[],
    },
    Action {
        name: "renew",
        summary: "Renew the contract to a new end date",
        allowed: STAFF,
        fields: &["new_end_date"],
        required: &["new_end_date"],
    },
    Action {
        name: "terminate",
        summary: "Terminate the contract",
        allowed: STAFF,
        fields: &["reason"],
        required: &["reason"],
    },
    Action {
        name: "expire",
        summary: "Expire the contract (the timer's command)",
        allowed: ADMIN,
        fields: &[],
        required: &[],
    },
    Action {
        name: "shares",
        summary: "Share the contract with a user or a role (give exactly one)",
        allowed: STAFF,
        fields: &["user_id", "role"],
        required: &[],
    },
    Action {
        name: "unshare",
        summary: "Stop sharing the contract with a user or a role (give exactly one)",
        allowed: STAFF,
        fields: &["user_id", "role"],
        required: &[],
    },
];

fn required<T>(f: &mut Fields, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        f.fail(field, "required");
    }
    value
}

/// `{"user_id": ...}` or `{"role": ...}`, exactly one.
fn grantee(f: &mut Fields, user_id: Option<Uuid>, role: Option<String>) -> Option<Grantee> {
    match (user_id, role) {
        (Some(user), None) => Some(Grantee::User(user)),
        (None, Some(role)) => f
            .check("role", ShortText::parse("role", role))
            .map(|r| Grantee::Role(r.as_str().to_lowercase())),
        (Some(_), Some(_)) => {
            f.fail("user_id", "give user_id or role, not both");
            None
        }
        (None, None) => {
            f.fail("user_id", "give user_id or role");
            None
        }
    }
}

async fn act(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = entity_id(&id)?;
    let action = find_action(ACTIONS, "contract", &action)?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_body(&headers, &body)?
    };
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command: Option<ContractCommand> =
        match action.name {
            "amend" => {
                let terms = b.terms.map(|t| terms(&mut f, "terms", t));
                let text = b.body.map(|t| f.check("body", LongText::parse("body", t)));
                match (terms, text) {
                    (Some(None), _) | (_, Some(None)) => None,
                    (terms, body) => Some(ContractCommand::Amend {
                        terms: terms.flatten(),
                        body: body.flatten(),
                        actor,
                        at,
                    }),
                }
            }
            "submit" => Some(ContractCommand::SubmitForApproval {
                approval_id: b.approval_id.unwrap_or_else(Uuid::now_v7),
                actor,
                at,
            }),
            "approve" => required(&mut f, "approval_id", b.approval_id)
                .map(|approval_id| ContractCommand::Approve { approval_id, at }),
            "reject" => {
                let approval_id = required(&mut f, "approval_id", b.approval_id);
                let reason = required(&mut f, "reason", b.reason)
                    .and_then(|r| f.check("reason", LongText::parse("reason", r)));
                approval_id
                    .zip(reason)
                    .map(|(approval_id, reason)| ContractCommand::Reject {
                        approval_id,
                        reason,
                        at,
                    })
            }
            "sign" => required(&mut f, "signatory_name", b.signatory_name)
                .and_then(|n| f.check("signatory_name", ShortText::parse("signatory_name", n)))
                .map(|signatory_name| ContractCommand::Sign {
                    signatory_name,
                    actor,
                    at,
                }),
            "activate" => Some(ContractCommand::Activate { at }),
            "renew" => required(&mut f, "new_end_date", b.new_end_date)
                .and_then(|d| date(&mut f, "new_end_date", &d))
                .map(|new_end_date| ContractCommand::Renew {
                    new_end_date,
                    actor,
                    at,
                }),
            "terminate" => required(&mut f, "reason", b.reason)
                .and_then(|r| f.check("reason", LongText::parse("reason", r)))
                .map(|reason| ContractCommand::Terminate { reason, actor, at }),
            "expire" => Some(ContractCommand::Expire { at }),
            "shares" => grantee(&mut f, b.user_id, b.role).map(|grantee| ContractCommand::Share {
                grantee,
                actor,
                at,
            }),
            "unshare" => grantee(&mut f, b.user_id, b.role)
                .map(|grantee| ContractCommand::Unshare { grantee, actor, at }),
            other => return Err(unhandled_action("contract", other)),
        };
    action.allowed.check(&principal, id)?;
    f.finish()?;
    let command =
        command.ok_or_else(|| ApiError::bad_request("validation_failed", "invalid body"))?;
    if let ContractCommand::SubmitForApproval { approval_id, .. } = &command {
        let subject = Subject {
            kind: SubjectKind::Contract,
            id,
        };
        crate::approvals::check_subject(&state, &principal, *approval_id, subject).await?;
    }
    request(&state, &principal, &headers, &request_id, &uri, &body)
        .run::<Contract>(id, false, command)
        .await
}

fn money_json(m: &Money) -> Value {
    json!({ "amount_minor": m.amount_minor, "currency": m.currency.as_str() })
}

fn grantee_json(g: &Grantee) -> Value {
    match g {
        Grantee::User(id) => json!({ "user_id": id }),
        Grantee::Role(role) => json!({ "role": role }),
    }
}

/// The current contract from the read model (if the caller may see it),
/// or (auditors, managers) its state folded from the events `?as_of=` a
/// time or `?at_version=`.
async fn state_at(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<history::StateQuery>,
) -> Result<Response, ApiError> {
    if q.is_current() {
        let id = entity_id(&id)?;
        return crate::queries::one(
            &state,
            &principal,
            &crate::queries::contracts::CONTRACTS,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) =
        history::past_state::<Contract>(&state, &principal, &id, &q, "contract").await?;
    let c = loaded
        .state
        .details()
        .ok_or_else(|| ApiError::not_found("contract"))?;
    let parties: Vec<Value> = c
        .parties
        .iter()
        .map(|p| {
            json!({
                "name": p.name.as_str(),
                "kind": match p.kind {
                    PartyKind::Person => "person",
                    PartyKind::Organisation => "organisation",
                },
                "role": p.role.as_str(),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "status": c.status.as_str(),
        "contract_version": c.version,
        "title": c.title.as_str(),
        "parties": parties,
        "counterparty": {
            "organisation": c.counterparty.organisation.as_str(),
            "contact": {
                "name": c.counterparty.contact.name.as_str(),
                "email": c.counterparty.contact.email.as_str(),
            },
        },
        "terms": {
            "value": money_json(&c.terms.value),
            "start_date": c.terms.start_date,
            "end_date": c.terms.end_date,
        },
        "body": c.body.as_str(),
        "owner": c.owner,
        "pending_approval": c.pending_approval,
        "rejection_reason": c.rejection_reason.as_ref().map(|r| r.as_str()),
        "signatory_name": c.signatory_name.as_ref().map(|n| n.as_str()),
        "signed_at": c.signed_at,
        "shared_with": c.shared_with.iter().map(grantee_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn history_of(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<history::Page>,
) -> Result<Json<Value>, ApiError> {
    principal.require_any(&[Role::Auditor, Role::Manager])?;
    let id = entity_id(&id)?;
    history::of_stream(&state, &principal, id, "contract", page).await
}
