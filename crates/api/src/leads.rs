//! `/api/v1/leads`: every lead command as an endpoint, and the auditors'
//! reads (history, state as of a time or version).
//!
//! | method and path | command | roles |
//! |---|---|---|
//! | `POST /api/v1/leads` | capture | sales, manager |
//! | `POST /api/v1/leads/{id}/qualify` `{score}` | qualify | sales, manager |
//! | `POST /api/v1/leads/{id}/owner` `{owner_id}` | assign owner | manager |
//! | `POST /api/v1/leads/{id}/serviceability` `{feasible, notes?}` | check serviceability | sales, manager |
//! | `POST /api/v1/leads/{id}/designs` `{summary, specification, documents?}` | submit the next design version | sales, manager |
//! | `POST /api/v1/leads/{id}/design-comments` `{design_version, body}` | comment on a design | sales, manager, approver |
//! | `POST /api/v1/leads/{id}/design-approval` `{approval_id?}` | request design approval | sales, manager |
//! | `POST /api/v1/leads/{id}/design-approved` `{approval_id}` | design approved | admin only |
//! | `POST /api/v1/leads/{id}/design-rejected` `{approval_id, reason?}` | design rejected | admin only |
//! | `POST /api/v1/leads/{id}/tasks` `{title, task_id?}` | add an implementation task | sales, manager |
//! | `POST /api/v1/leads/{id}/tasks/{task_id}/assign` `{assignee_id}` | assign the task | sales, manager |
//! | `POST /api/v1/leads/{id}/tasks/{task_id}/complete` | complete the task | sales, manager |
//! | `POST /api/v1/leads/{id}/implementation-complete` | complete implementation | sales, manager |
//! | `POST /api/v1/leads/{id}/activation-tests` `{name, result, defects?}` | record an activation test | sales, manager |
//! | `POST /api/v1/leads/{id}/defects` `{title, defect_id?}` | raise a defect | sales, manager |
//! | `POST /api/v1/leads/{id}/defects/{defect_id}/resolve` `{resolution?}` | resolve the defect | sales, manager |
//! | `POST /api/v1/leads/{id}/testing-passed` | pass testing | sales, manager |
//! | `POST /api/v1/leads/{id}/hand-over` `{notes?}` | hand over to support | sales, manager |
//! | `POST /api/v1/leads/{id}/close` `{outcome, reason?}` | close (won, lost, cancelled) | sales, manager |
//! | `GET /api/v1/leads/{id}?as_of=` or `?at_version=` | state at a time or version | auditor, manager |
//! | `GET /api/v1/leads/{id}/history` | every event with its metadata | auditor, manager |
//!
//! Roles (see README "Roles"): sales run leads from capture to close;
//! managers do everything sales do and also assign owners; approvers may
//! comment on designs (they decide the approval itself under
//! `/api/v1/approvals`); auditors and managers read history and past
//! state; admins do everything. The design's approval outcome
//! (`design-approved`, `design-rejected`) is the approval process
//! manager's command (issue 7): it is exposed to admins only, for repairs
//! and for driving a lead by hand until that process manager runs.
//!
//! Ids the client needs later may be chosen by the client: `approval_id`
//! (design approval), `task_id` and `defect_id` (also per defect of an
//! activation test). When left out the server makes a UUIDv7; it shows in
//! the lead's history and state.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::lead::{
    BandwidthMbps, Contact, DocumentRef, Lead, LeadCommand, NewDefect, Outcome, TestResult,
};
use chronicle_domain::value::{Currency, Email, LeadScore, LongText, Money, ShortText, ValueError};
use chrono::Utc;
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
        .route("/api/v1/leads", post(capture))
        .route("/api/v1/leads/{id}", get(state_at))
        .route("/api/v1/leads/{id}/history", get(history_of))
        .route("/api/v1/leads/{id}/{action}", post(act))
        .route(
            "/api/v1/leads/{id}/{collection}/{item_id}/{action}",
            post(act_on_item),
        )
}

/// A new lead. Texts are trimmed and must not be blank, at most 200
/// characters.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CaptureLead")]
pub(crate) struct CaptureBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    company: String,
    contact: ContactBody,
    #[schemars(schema_with = "crate::openapi::short_text")]
    site_address: String,
    /// The service wanted, e.g. `fibre-business`.
    #[schemars(schema_with = "crate::openapi::short_text")]
    service: String,
    /// A positive number of Mbps.
    #[schemars(range(min = 1, max = 4294967295u32))]
    bandwidth_mbps: i64,
    estimated_value: MoneyBody,
    /// Where the lead came from, e.g. `web`.
    #[schemars(schema_with = "crate::openapi::short_text")]
    source: String,
}

/// The lead's contact person.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LeadContact")]
struct ContactBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
    #[schemars(email)]
    email: String,
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    phone: Option<String>,
}

/// An amount of money.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Money")]
pub(crate) struct MoneyBody {
    /// Minor units (cents), not negative.
    #[schemars(range(min = 0))]
    amount_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    currency: String,
}

async fn capture(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Sales, Role::Manager])?;
    let b: CaptureBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let company = f.check("company", ShortText::parse("company", b.company));
    let name = f.check(
        "contact.name",
        ShortText::parse("contact.name", b.contact.name),
    );
    let email = f.check(
        "contact.email",
        Email::parse("contact.email", &b.contact.email),
    );
    let phone = match b.contact.phone {
        Some(p) => f
            .check("contact.phone", ShortText::parse("contact.phone", p))
            .map(Some),
        None => Some(None),
    };
    let site_address = f.check(
        "site_address",
        ShortText::parse("site_address", b.site_address),
    );
    let service = f.check("service", ShortText::parse("service", b.service));
    let bandwidth = f.check(
        "bandwidth_mbps",
        BandwidthMbps::parse("bandwidth_mbps", b.bandwidth_mbps),
    );
    let currency = f.check(
        "estimated_value.currency",
        Currency::parse("estimated_value.currency", &b.estimated_value.currency),
    );
    let value = currency.and_then(|c| {
        f.check(
            "estimated_value.amount_minor",
            Money::new(
                "estimated_value.amount_minor",
                b.estimated_value.amount_minor,
                c,
            ),
        )
    });
    let source = f.check("source", ShortText::parse("source", b.source));
    let (
        Some(company),
        Some(name),
        Some(email),
        Some(phone),
        Some(site_address),
        Some(service),
        Some(bandwidth_mbps),
        Some(estimated_value),
        Some(source),
    ) = (
        company,
        name,
        email,
        phone,
        site_address,
        service,
        bandwidth,
        value,
        source,
    )
    else {
        // A negative amount with a bad currency: name the amount too.
        if b.estimated_value.amount_minor < 0 {
            f.fail("estimated_value.amount_minor", "must not be negative");
        }
        return Err(f.finish().unwrap_err());
    };
    let command = LeadCommand::Capture {
        company,
        contact: Contact { name, email, phone },
        site_address,
        service,
        bandwidth_mbps,
        estimated_value,
        source,
        actor: actor_id(&principal),
        at: Utc::now(),
    };
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "leads",
        what: "lead",
    };
    request.run::<Lead>(Uuid::now_v7(), true, command).await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`] and [`ITEM_ACTIONS`]) and ignores the others'; a name
/// no action knows is refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LeadActionBody")]
pub(crate) struct ActionBody {
    /// The qualification score, 0 to 100.
    #[schemars(range(min = 0, max = 100))]
    score: Option<i64>,
    /// The user who will own the lead.
    owner_id: Option<Uuid>,
    /// Whether the site can be served.
    feasible: Option<bool>,
    /// Free text, at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    notes: Option<String>,
    /// The design's summary, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    summary: Option<String>,
    /// The design's specification, at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    specification: Option<String>,
    /// Documents of the design.
    documents: Option<Vec<DocumentBody>>,
    /// The design version commented on (1 or more).
    #[schemars(range(min = 1, max = 4294967295u32))]
    design_version: Option<i64>,
    /// The comment's text.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    body: Option<String>,
    /// The approval of the design: chosen by the client when requesting
    /// it (a new UUIDv7 when left out), named when recording its outcome.
    approval_id: Option<Uuid>,
    /// Why (rejection: at most 100,000 characters; closing: at most 200).
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    reason: Option<String>,
    /// The new task's id (a new UUIDv7 when left out).
    task_id: Option<Uuid>,
    /// The task's or defect's title, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    title: Option<String>,
    /// Who will do the task.
    assignee_id: Option<Uuid>,
    /// The activation test's name, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    name: Option<String>,
    /// The activation test's result.
    #[schemars(regex(pattern = "^(passed|failed)$"))]
    result: Option<String>,
    /// Defects the activation test found.
    defects: Option<Vec<DefectBody>>,
    /// The new defect's id (a new UUIDv7 when left out).
    defect_id: Option<Uuid>,
    /// How the defect was resolved.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    resolution: Option<String>,
    /// How the lead ended.
    #[schemars(regex(pattern = "^(won|lost|cancelled)$"))]
    outcome: Option<String>,
}

/// A document of a design.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DesignDocument")]
struct DocumentBody {
    document_id: Uuid,
    /// At most 200 characters.
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
}

/// A defect found by an activation test.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewDefect")]
struct DefectBody {
    /// The defect's id (a new UUIDv7 when left out).
    defect_id: Option<Uuid>,
    /// At most 200 characters.
    #[schemars(schema_with = "crate::openapi::short_text")]
    title: String,
}

fn required<T>(f: &mut Fields, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        f.fail(field, "required");
    }
    value
}

/// An optional text field: absent is `Some(None)`, invalid is `None`.
fn optional<T>(
    f: &mut Fields,
    field: &'static str,
    value: Option<String>,
    parse: fn(&'static str, String) -> Result<T, ValueError>,
) -> Option<Option<T>> {
    match value {
        Some(v) => f.check(field, parse(field, v)).map(Some),
        None => Some(None),
    }
}

fn long_text(field: &'static str, v: String) -> Result<LongText, ValueError> {
    LongText::parse(field, v)
}

fn short_text(field: &'static str, v: String) -> Result<ShortText, ValueError> {
    ShortText::parse(field, v)
}

fn test_result(value: &str) -> Result<TestResult, ValueError> {
    match value {
        "passed" => Ok(TestResult::Passed),
        "failed" => Ok(TestResult::Failed),
        _ => Err(ValueError::new("result", "must be passed or failed")),
    }
}

fn outcome(value: &str) -> Result<Outcome, ValueError> {
    match value {
        "won" => Ok(Outcome::Won),
        "lost" => Ok(Outcome::Lost),
        "cancelled" => Ok(Outcome::Cancelled),
        _ => Err(ValueError::new("outcome", "must be won, lost or cancelled")),
    }
}

use Role::{Admin, Approver, Manager, Sales};

/// Sales and managers: who runs a lead.
const STAFF: Allowed = Allowed::Roles(&[Sales, Manager]);

/// The actions on a lead: `POST /api/v1/leads/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "qualify",
        summary: "Qualify the lead with a score",
        allowed: STAFF,
        fields: &["score"],
        required: &["score"],
    },
    Action {
        name: "owner",
        summary: "Assign the lead's owner",
        allowed: Allowed::Roles(&[Manager]),
        fields: &["owner_id"],
        required: &["owner_id"],
    },
    Action {
        name: "serviceability",
        summary: "Record whether the site can be served",
        allowed: STAFF,
        fields: &["feasible", "notes"],
        required: &["feasible"],
    },
    Action {
        name: "designs",
        summary: "Submit the next version of the solution design",
        allowed: STAFF,
        fields: &["summary", "specification", "documents"],
        required: &["summary", "specification"],
    },
    Action {
        name: "design-comments",
        summary: "Comment on a design version",
        allowed: Allowed::Roles(&[Sales, Manager, Approver]),
        fields: &["design_version", "body"],
        required: &["design_version", "body"],
    },
    Action {
        name: "design-approval",
        summary: "Request approval of the current design",
        allowed: STAFF,
        fields: &["approval_id"],
        required: &[],
    },
    Action {
        name: "design-approved",
        summary: "Record that the design's approval was granted (process manager's command)",
        allowed: Allowed::Roles(&[Admin]),
        fields: &["approval_id"],
        required: &["approval_id"],
    },
    Action {
        name: "design-rejected",
        summary: "Record that the design's approval was rejected (process manager's command)",
        allowed: Allowed::Roles(&[Admin]),
        fields: &["approval_id", "reason"],
        required: &["approval_id"],
    },
    Action {
        name: "tasks",
        summary: "Add an implementation task",
        allowed: STAFF,
        fields: &["title", "task_id"],
        required: &["title"],
    },
    Action {
        name: "implementation-complete",
        summary: "Complete the implementation",
        allowed: STAFF,
        fields: &[],
        required: &[],
    },
    Action {
        name: "activation-tests",
        summary: "Record an activation test and the defects it found",
        allowed: STAFF,
        fields: &["name", "result", "defects"],
        required: &["name", "result"],
    },
    Action {
        name: "defects",
        summary: "Raise a defect",
        allowed: STAFF,
        fields: &["title", "defect_id"],
        required: &["title"],
    },
    Action {
        name: "testing-passed",
        summary: "Pass testing",
        allowed: STAFF,
        fields: &[],
        required: &[],
    },
    Action {
        name: "hand-over",
        summary: "Hand the lead over to support",
        allowed: STAFF,
        fields: &["notes"],
        required: &[],
    },
    Action {
        name: "close",
        summary: "Close the lead (won, lost or cancelled)",
        allowed: STAFF,
        fields: &["outcome", "reason"],
        required: &["outcome"],
    },
];

/// The actions on an item of a lead:
/// `POST /api/v1/leads/{id}/<collection>/{item_id}/<action>`.
pub(crate) const ITEM_ACTIONS: &[Action] = &[
    Action {
        name: "tasks/{task_id}/assign",
        summary: "Assign an implementation task",
        allowed: STAFF,
        fields: &["assignee_id"],
        required: &["assignee_id"],
    },
    Action {
        name: "tasks/{task_id}/complete",
        summary: "Complete an implementation task",
        allowed: STAFF,
        fields: &[],
        required: &[],
    },
    Action {
        name: "defects/{defect_id}/resolve",
        summary: "Resolve a defect",
        allowed: STAFF,
        fields: &["resolution"],
        required: &[],
    },
];

/// The item action `<collection>/{...}/<action>` of [`ITEM_ACTIONS`], or
/// 404 naming them.
fn find_item_action(collection: &str, action: &str) -> Result<&'static Action, ApiError> {
    ITEM_ACTIONS
        .iter()
        .find(|a| {
            let mut parts = a.name.split('/');
            parts.next() == Some(collection) && parts.nth(1) == Some(action)
        })
        .ok_or_else(|| {
            let names: Vec<&str> = ITEM_ACTIONS.iter().map(|a| a.name).collect();
            ApiError::NotFound {
                code: "not_found",
                message: format!(
                    "a lead has no action {collection}/.../{action}; the item actions are: {}",
                    names.join(", ")
                ),
            }
        })
}

/// `POST /api/v1/leads/{id}/{action}`.
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
    let action = find_action(ACTIONS, "lead", &action)?;
    let b = action_body(&headers, &body)?;
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command: Option<LeadCommand> =
        match action.name {
            "qualify" => required(&mut f, "score", b.score)
                .and_then(|s| f.check("score", LeadScore::parse("score", s)))
                .map(|score| LeadCommand::Qualify { score, actor, at }),
            "owner" => required(&mut f, "owner_id", b.owner_id)
                .map(|owner| LeadCommand::AssignOwner { owner, actor, at }),
            "serviceability" => match (
                required(&mut f, "feasible", b.feasible),
                optional(&mut f, "notes", b.notes, long_text),
            ) {
                (Some(feasible), Some(notes)) => Some(LeadCommand::CheckServiceability {
                    feasible,
                    notes,
                    actor,
                    at,
                }),
                _ => None,
            },
            "designs" => {
                let summary = required(&mut f, "summary", b.summary)
                    .and_then(|s| f.check("summary", ShortText::parse("summary", s)));
                let specification = required(&mut f, "specification", b.specification)
                    .and_then(|s| f.check("specification", LongText::parse("specification", s)));
                let mut documents = Some(Vec::new());
                for (i, d) in b.documents.unwrap_or_default().into_iter().enumerate() {
                    let field = format!("documents[{i}].name");
                    let name = f.check(&field, ShortText::parse("name", d.name));
                    match (name, documents.as_mut()) {
                        (Some(name), Some(docs)) => docs.push(DocumentRef {
                            document_id: d.document_id,
                            name,
                        }),
                        _ => documents = None,
                    }
                }
                match (summary, specification, documents) {
                    (Some(summary), Some(specification), Some(documents)) => {
                        Some(LeadCommand::SubmitDesign {
                            summary,
                            specification,
                            documents,
                            actor,
                            at,
                        })
                    }
                    _ => None,
                }
            }
            "design-comments" => {
                let version = required(&mut f, "design_version", b.design_version).and_then(|v| {
                    let version = u32::try_from(v).ok().filter(|v| *v > 0);
                    if version.is_none() {
                        f.fail(
                            "design_version",
                            format!("must be a positive version, got {v}"),
                        );
                    }
                    version
                });
                let body = required(&mut f, "body", b.body)
                    .and_then(|t| f.check("body", LongText::parse("body", t)));
                match (version, body) {
                    (Some(design_version), Some(body)) => Some(LeadCommand::CommentOnDesign {
                        design_version,
                        body,
                        actor,
                        at,
                    }),
                    _ => None,
                }
            }
            "design-approval" => Some(LeadCommand::RequestDesignApproval {
                approval_id: b.approval_id.unwrap_or_else(Uuid::now_v7),
                actor,
                at,
            }),
            "design-approved" => required(&mut f, "approval_id", b.approval_id)
                .map(|approval_id| LeadCommand::ApproveDesign { approval_id, at }),
            "design-rejected" => match (
                required(&mut f, "approval_id", b.approval_id),
                optional(&mut f, "reason", b.reason, long_text),
            ) {
                (Some(approval_id), Some(reason)) => Some(LeadCommand::RejectDesign {
                    approval_id,
                    reason,
                    at,
                }),
                _ => None,
            },
            "tasks" => required(&mut f, "title", b.title)
                .and_then(|t| f.check("title", ShortText::parse("title", t)))
                .map(|title| LeadCommand::AddImplementationTask {
                    task_id: b.task_id.unwrap_or_else(Uuid::now_v7),
                    title,
                    actor,
                    at,
                }),
            "implementation-complete" => Some(LeadCommand::CompleteImplementation { actor, at }),
            "activation-tests" => {
                let name = required(&mut f, "name", b.name)
                    .and_then(|n| f.check("name", ShortText::parse("name", n)));
                let result = required(&mut f, "result", b.result)
                    .and_then(|r| f.check("result", test_result(&r)));
                let mut defects = Some(Vec::new());
                for (i, d) in b.defects.unwrap_or_default().into_iter().enumerate() {
                    let field = format!("defects[{i}].title");
                    let title = f.check(&field, ShortText::parse("title", d.title));
                    match (title, defects.as_mut()) {
                        (Some(title), Some(list)) => list.push(NewDefect {
                            defect_id: d.defect_id.unwrap_or_else(Uuid::now_v7),
                            title,
                        }),
                        _ => defects = None,
                    }
                }
                match (name, result, defects) {
                    (Some(name), Some(result), Some(defects)) => {
                        Some(LeadCommand::RecordActivationTest {
                            name,
                            result,
                            defects,
                            actor,
                            at,
                        })
                    }
                    _ => None,
                }
            }
            "defects" => required(&mut f, "title", b.title)
                .and_then(|t| f.check("title", ShortText::parse("title", t)))
                .map(|title| LeadCommand::RaiseDefect {
                    defect_id: b.defect_id.unwrap_or_else(Uuid::now_v7),
                    title,
                    actor,
                    at,
                }),
            "testing-passed" => Some(LeadCommand::PassTesting { actor, at }),
            "hand-over" => optional(&mut f, "notes", b.notes, long_text)
                .map(|notes| LeadCommand::HandOverToSupport { notes, actor, at }),
            "close" => match (
                required(&mut f, "outcome", b.outcome)
                    .and_then(|o| f.check("outcome", outcome(&o))),
                optional(&mut f, "reason", b.reason, short_text),
            ) {
                (Some(outcome), Some(reason)) => Some(LeadCommand::Close {
                    outcome,
                    reason,
                    actor,
                    at,
                }),
                _ => None,
            },
            other => return Err(unhandled_action("lead", other)),
        };
    run(
        &state,
        &principal,
        &request_id,
        &uri,
        &headers,
        &body,
        id,
        action,
        f,
        command,
    )
    .await
}

/// `POST /api/v1/leads/{id}/tasks/{task_id}/{assign|complete}` and
/// `POST /api/v1/leads/{id}/defects/{defect_id}/resolve`.
async fn act_on_item(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    Path((id, collection, item_id, action)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = entity_id(&id)?;
    let action = find_item_action(&collection, &action)?;
    let b = action_body(&headers, &body)?;
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command: Option<LeadCommand> = match action.name {
        "tasks/{task_id}/assign" => {
            let task_id = entity_id(&item_id).map_err(|_| ApiError::not_found("task"))?;
            required(&mut f, "assignee_id", b.assignee_id).map(|assignee| {
                LeadCommand::AssignImplementationTask {
                    task_id,
                    assignee,
                    actor,
                    at,
                }
            })
        }
        "tasks/{task_id}/complete" => {
            let task_id = entity_id(&item_id).map_err(|_| ApiError::not_found("task"))?;
            Some(LeadCommand::CompleteImplementationTask { task_id, actor, at })
        }
        "defects/{defect_id}/resolve" => {
            let defect_id = entity_id(&item_id).map_err(|_| ApiError::not_found("defect"))?;
            optional(&mut f, "resolution", b.resolution, long_text).map(|resolution| {
                LeadCommand::ResolveDefect {
                    defect_id,
                    resolution,
                    actor,
                    at,
                }
            })
        }
        other => return Err(unhandled_action("lead", other)),
    };
    run(
        &state,
        &principal,
        &request_id,
        &uri,
        &headers,
        &body,
        id,
        action,
        f,
        command,
    )
    .await
}

fn action_body(headers: &HeaderMap, body: &[u8]) -> Result<ActionBody, ApiError> {
    if body.is_empty() {
        Ok(ActionBody::default())
    } else {
        parse_body(headers, body)
    }
}

/// Checks the roles, then the fields, then runs the command on lead `id`.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    principal: &Principal,
    request_id: &RequestId,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    id: Uuid,
    action: &Action,
    f: Fields,
    command: Option<LeadCommand>,
) -> Result<Response, ApiError> {
    action.allowed.check(principal, id)?;
    f.finish()?;
    let command =
        command.ok_or_else(|| ApiError::bad_request("validation_failed", "invalid body"))?;
    if let LeadCommand::RequestDesignApproval { approval_id, .. } = &command {
        let subject = chronicle_domain::approval::Subject {
            kind: chronicle_domain::approval::SubjectKind::LeadDesign,
            id,
        };
        crate::approvals::check_subject(state, principal, *approval_id, subject).await?;
    }
    let request = Request {
        state,
        principal,
        headers,
        request_id: Some(request_id),
        path: uri.path(),
        body,
        collection: "leads",
        what: "lead",
    };
    request.run::<Lead>(id, false, command).await
}

/// The current lead from the read model, or (auditors, managers) its
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
            &crate::queries::leads::LEADS,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) = history::past_state::<Lead>(&state, &principal, &id, &q, "lead").await?;
    let l = &loaded.state;
    let tasks: Vec<Value> = l
        .tasks
        .iter()
        .map(|(task_id, t)| {
            json!({ "task_id": task_id, "assignee": t.assignee, "completed": t.completed })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "stage": l.stage.map(|s| s.as_str()),
        "owner": l.owner,
        "score": l.score.map(|s| s.get()),
        "feasible": l.feasible,
        "design_version": l.design_version,
        "design_rejected": l.design_rejected,
        "pending_approval": l.pending_approval,
        "approved_design_version": l.approved_design_version,
        "tasks": tasks,
        "passed_tests": l.passed_tests,
        "open_defects": l.open_defects,
        "resolved_defects": l.resolved_defects,
        "testing_passed": l.testing_passed,
        "outcome": l.outcome,
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
    history::of_stream(&state, &principal, id, "lead", page).await
}
