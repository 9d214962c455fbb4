//! `/api/v1/approvals`: every approval command as an endpoint, and the
//! auditors' reads (history, state as of a time or version).
//!
//! Roles (see README "Roles"): sales and managers request approvals (of a
//! contract or a lead's design) and cancel them; anyone authenticated may
//! post a decision, and the domain decides eligibility: the current level's
//! listed users, or holders of its listed roles, as the token names them
//! (`actor_roles`; admin is not widened to every role there, so an admin is
//! eligible only where listed), anyone else gets 409
//! `approval.not_eligible`. Managers escalate an overdue level by hand (the
//! deadline worker issues the same command). Auditors and managers read
//! history and the state as of a time or version; admins do everything
//! else.
//!
//! | action | body | roles |
//! |---|---|---|
//! | `POST /api/v1/approvals` (request) | `subject` {kind, id}, `value`?, `levels` [{approvers: [{user_id} \| {role}], required, due_secs?}] | sales, manager |
//! | `decisions` | `decision` (approve \| reject \| request_changes), `comment` (required unless approve) | any; eligibility by the domain |
//! | `escalate` | `level`? (default: the current level) | manager |
//! | `cancel` | `reason`? | sales, manager |
//! | `GET /{id}?as_of=\|at_version=`, `GET /{id}/history` | | auditor, manager |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::approval::{
    Approval, ApprovalCommand, Decision, Status, Subject, SubjectKind, MAX_LEVELS,
};
use chronicle_domain::policy::{Approver, LevelSpec};
use chronicle_domain::value::{Currency, LongText, Money, ShortText};
use chronicle_store::StreamId;
use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{
    actor_id, command_error, entity_id, find_action, parse_body, unhandled_action, Action, Allowed,
    ApiQuery, Fields, Request,
};
use crate::error::ApiError;
use crate::history;
use crate::observability::RequestId;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/approvals", post(request_approval))
        .route("/api/v1/approvals/{id}", get(state_at))
        .route("/api/v1/approvals/{id}/history", get(history_of))
        .route("/api/v1/approvals/{id}/{action}", post(act))
}

/// A new approval of a subject, decided level by level.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RequestApproval")]
pub(crate) struct RequestBody {
    subject: SubjectBody,
    /// The value at stake, if any.
    value: Option<MoneyBody>,
    /// The levels, in order (at least one).
    #[schemars(length(min = 1))]
    levels: Vec<LevelBody>,
}

/// What is to be approved.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalSubject")]
struct SubjectBody {
    /// `contract` or `lead_design`.
    #[schemars(regex(pattern = "^(contract|lead_design)$"))]
    kind: String,
    /// The contract's or the lead's id.
    id: Uuid,
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

/// One level: who may approve, and how many approvals it needs.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalLevel")]
struct LevelBody {
    #[schemars(length(min = 1))]
    approvers: Vec<ApproverBody>,
    /// Approvals needed (1 to the number of approvers).
    #[schemars(range(min = 1))]
    required: u16,
    /// Seconds the level may take before it is overdue (at most
    /// `MAX_DURATION_SECS`, ten years).
    #[schemars(range(min = 1, max = 316_224_000))]
    due_secs: Option<u64>,
}

/// `{"user_id": "<uuid>"}` or `{"role": "approver"}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalApprover")]
struct ApproverBody {
    user_id: Option<Uuid>,
    #[schemars(schema_with = "crate::openapi::opt_role_name")]
    role: Option<String>,
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
        collection: "approvals",
        what: "approval",
    }
}

async fn request_approval(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Sales, Role::Manager])?;
    let b: RequestBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let kind = match b.subject.kind.as_str() {
        "contract" => Some(SubjectKind::Contract),
        "lead_design" => Some(SubjectKind::LeadDesign),
        _ => {
            f.fail("subject.kind", "must be contract or lead_design");
            None
        }
    };
    let value = match b.value {
        None => Some(None),
        Some(m) => f
            .check("value.currency", Currency::parse("currency", &m.currency))
            .and_then(|c| {
                f.check(
                    "value.amount_minor",
                    Money::new("amount_minor", m.amount_minor, c),
                )
            })
            .map(Some),
    };
    if b.levels.is_empty() {
        f.fail("levels", "at least one level is needed");
    } else if b.levels.len() > MAX_LEVELS {
        f.fail("levels", format!("at most {MAX_LEVELS} levels"));
    }
    let mut levels = Vec::with_capacity(b.levels.len());
    for (i, level) in b.levels.into_iter().enumerate() {
        let mut approvers = Vec::with_capacity(level.approvers.len());
        for (j, a) in level.approvers.into_iter().enumerate() {
            let field = format!("levels[{i}].approvers[{j}]");
            match (a.user_id, a.role) {
                (Some(user), None) => approvers.push(Approver::User(user)),
                (None, Some(role)) => approvers.push(Approver::Role(role.trim().to_lowercase())),
                _ => f.fail(&field, "give user_id or role, exactly one"),
            }
        }
        let spec = LevelSpec {
            approvers,
            required: level.required,
            due_secs: level.due_secs,
        };
        if f.check(&format!("levels[{i}]"), spec.validate("level"))
            .is_some()
        {
            levels.push(spec);
        }
    }
    f.finish()?;
    let (Some(kind), Some(value)) = (kind, value) else {
        return Err(ApiError::bad_request("validation_failed", "invalid body"));
    };
    let command = ApprovalCommand::Request {
        subject: Subject {
            kind,
            id: b.subject.id,
        },
        value,
        levels,
        requested_by: actor_id(&principal),
        at: Utc::now(),
    };
    request(&state, &principal, &headers, &request_id, &uri, &body)
        .run::<Approval>(Uuid::now_v7(), true, command)
        .await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`]) and ignores the others'; a name no action knows is
/// refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalActionBody")]
pub(crate) struct ActionBody {
    /// `approve`, `reject` or `request_changes`.
    #[schemars(regex(pattern = "^(approve|reject|request_changes)$"))]
    decision: Option<String>,
    /// Required to reject or request changes; at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    comment: Option<String>,
    /// The level to escalate (default: the current level).
    level: Option<u16>,
    /// Why the approval is cancelled, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    reason: Option<String>,
}

/// The actions on an approval: `POST /api/v1/approvals/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "decisions",
        summary: "Decide at the current level (approve, reject, request changes)",
        allowed: Allowed::Anyone,
        fields: &["decision", "comment"],
        required: &["decision"],
    },
    Action {
        name: "escalate",
        summary: "Escalate an overdue level",
        allowed: Allowed::Roles(&[Role::Manager]),
        fields: &["level"],
        required: &[],
    },
    Action {
        name: "cancel",
        summary: "Cancel the approval",
        allowed: Allowed::Roles(&[Role::Sales, Role::Manager]),
        fields: &["reason"],
        required: &[],
    },
];

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
    let action = find_action(ACTIONS, "approval", &action)?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_body(&headers, &body)?
    };
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    action.allowed.check(&principal, id)?;
    let command = match action.name {
        "decisions" => {
            let decision = match b.decision.as_deref() {
                Some("approve") => Some(Decision::Approve),
                Some("reject") => Some(Decision::Reject),
                Some("request_changes") => Some(Decision::RequestChanges),
                Some(_) => {
                    f.fail("decision", "must be approve, reject or request_changes");
                    None
                }
                None => {
                    f.fail("decision", "required");
                    None
                }
            };
            let comment = match b.comment {
                Some(c) => f.check("comment", LongText::parse("comment", c)).map(Some),
                None => {
                    if decision.is_some_and(|d| d != Decision::Approve) {
                        f.fail("comment", "required to reject or request changes");
                    }
                    Some(None)
                }
            };
            f.finish()?;
            let (Some(decision), Some(comment)) = (decision, comment) else {
                return Err(ApiError::bad_request("validation_failed", "invalid body"));
            };
            // Role names as the token gives them: the domain matches them
            // against the level's listed roles.
            let actor_roles = principal
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect();
            ApprovalCommand::Decide {
                decision,
                comment,
                actor,
                actor_roles,
                at,
            }
        }
        "escalate" => {
            f.finish()?;
            let level = match b.level {
                Some(level) => level,
                None => current_level(&state, &principal, id).await?,
            };
            ApprovalCommand::Escalate { level, at }
        }
        "cancel" => {
            let reason = match b.reason {
                Some(r) => f.check("reason", ShortText::parse("reason", r)).map(Some),
                None => Some(None),
            };
            f.finish()?;
            let Some(reason) = reason else {
                return Err(ApiError::bad_request("validation_failed", "invalid body"));
            };
            ApprovalCommand::Cancel { reason, actor, at }
        }
        other => return Err(unhandled_action("approval", other)),
    };
    request(&state, &principal, &headers, &request_id, &uri, &body)
        .run::<Approval>(id, false, command)
        .await
}

/// The level deciding now, for an escalation that names none.
async fn current_level(state: &AppState, principal: &Principal, id: Uuid) -> Result<u16, ApiError> {
    let stream = StreamId::parse(id.to_string())?;
    state
        .commands
        .load::<Approval>(&principal.tenant, &stream)
        .await
        .map_err(|e| command_error("approval", e))?
        .map(|l| l.state.current_level)
        .ok_or_else(|| ApiError::not_found("approval"))
}

fn approver_json(a: &Approver) -> Value {
    match a {
        Approver::User(id) => json!({ "user_id": id }),
        Approver::Role(role) => json!({ "role": role }),
    }
}

/// The current approval from the read model, or (auditors, managers) its
/// state folded from the events `?as_of=` a time or `?at_version=`.
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
            &crate::queries::approvals::APPROVALS,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) =
        history::past_state::<Approval>(&state, &principal, &id, &q, "approval").await?;
    let a = &loaded.state;
    let levels: Vec<Value> = a
        .levels
        .iter()
        .map(|l| {
            json!({
                "approvers": l.spec.approvers.iter().map(approver_json).collect::<Vec<_>>(),
                "required": l.spec.required,
                "due_secs": l.spec.due_secs,
                "approvals": l.approvals,
                "decided": l.decided,
                "opened_at": l.opened_at,
                "due_at": l.due_at(),
                "escalated": l.escalated,
                "completed": l.completed,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "status": a.status.map(Status::as_str),
        "subject": a.subject.map(|s| json!({
            "kind": match s.kind {
                SubjectKind::Contract => "contract",
                SubjectKind::LeadDesign => "lead_design",
            },
            "id": s.id,
        })),
        "current_level": a.current_level,
        "levels": levels,
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
    history::of_stream(&state, &principal, id, "approval", page).await
}

/// A subject is sent for approval under `approval_id`: an approval of that
/// subject in the caller's tenant, or an id no stream has yet (the approval
/// flow opens it with the tenant's policy). Anything else is a 400 on
/// `approval_id`.
pub(crate) async fn check_subject(
    state: &AppState,
    principal: &Principal,
    approval_id: Uuid,
    subject: Subject,
) -> Result<(), ApiError> {
    use chronicle_store::EventStore as _;

    let stream = StreamId::parse(approval_id.to_string())?;
    let mut f = Fields::default();
    if state.store.stream_version(&stream).await?.is_some() {
        let loaded = state
            .commands
            .load::<Approval>(&principal.tenant, &stream)
            .await
            .map_err(|e| command_error("approval", e))?;
        match loaded.and_then(|l| l.state.subject) {
            None => f.fail(
                "approval_id",
                "the id is taken by something that is not an approval",
            ),
            Some(s) if s != subject => {
                f.fail("approval_id", "the approval is about another subject")
            }
            Some(_) => {}
        }
    }
    f.finish()
}
