//! `/api/v1/tickets`: every ticket command as an endpoint, and the
//! auditors' reads (history, state as of a time or version).
//!
//! Roles (see README "Roles"): customers open tickets for themselves,
//! comment, reopen, close and answer surveys on their own tickets; experts
//! accept, reject, start, comment on and resolve the tickets assigned to
//! them (the domain checks the assignment); managers open tickets for
//! customers, assign, change priority, escalate and close; auditors read
//! history; admins do everything.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::ticket::{AssignedBy, Contact, EscalatedBy, Ticket, TicketCommand};
use chronicle_domain::value::{Email, LongText, Priority, ShortText, SurveyScore};
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
        .route("/api/v1/tickets", post(open))
        .route("/api/v1/tickets/{id}", get(state_at))
        .route("/api/v1/tickets/{id}/history", get(history_of))
        .route("/api/v1/tickets/{id}/{action}", post(act))
}

/// A new ticket. Texts are trimmed and must not be blank: at most 200
/// characters, `description` at most 100,000.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "OpenTicket")]
pub(crate) struct OpenBody {
    /// The customer the ticket is for: required when a manager opens it;
    /// a customer may leave it out or give their own id.
    customer_id: Option<Uuid>,
    contact: ContactBody,
    #[schemars(schema_with = "crate::openapi::short_text")]
    product: String,
    #[schemars(schema_with = "crate::openapi::short_text")]
    category: String,
    /// `P1` (most urgent) to `P4`.
    #[schemars(regex(pattern = "^[Pp][1-4]$"))]
    priority: String,
    /// The skill an expert needs for this ticket.
    #[schemars(schema_with = "crate::openapi::short_text")]
    required_skill: String,
    #[schemars(schema_with = "crate::openapi::short_text")]
    title: String,
    #[schemars(schema_with = "crate::openapi::long_text")]
    description: String,
}

/// Whom to contact about the ticket.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TicketContact")]
struct ContactBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
    #[schemars(email)]
    email: String,
}

async fn open(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Customer, Role::Manager])?;
    let b: OpenBody = parse_body(&headers, &body)?;
    let actor = actor_id(&principal);
    let staff = principal.has(Role::Manager);
    let customer_id = match (b.customer_id, staff) {
        (Some(id), true) => id,
        (None, false) => actor,
        (Some(id), false) if id == actor => actor,
        (Some(_), false) => {
            return Err(ApiError::Forbidden {
                code: "auth.forbidden",
                message: "customers open tickets for themselves only".into(),
            })
        }
        (None, true) => {
            let mut f = Fields::default();
            f.fail("customer_id", "required when a manager opens a ticket");
            return Err(f.finish().unwrap_err());
        }
    };
    let mut f = Fields::default();
    let name = f.check(
        "contact.name",
        ShortText::parse("contact.name", b.contact.name),
    );
    let email = f.check(
        "contact.email",
        Email::parse("contact.email", &b.contact.email),
    );
    let product = f.check("product", ShortText::parse("product", b.product));
    let category = f.check("category", ShortText::parse("category", b.category));
    let priority = f.check("priority", Priority::try_from(b.priority.as_str()));
    let skill = f.check(
        "required_skill",
        ShortText::parse("required_skill", b.required_skill),
    );
    let title = f.check("title", ShortText::parse("title", b.title));
    let description = f.check("description", LongText::parse("description", b.description));
    let (
        Some(name),
        Some(email),
        Some(product),
        Some(category),
        Some(priority),
        Some(skill),
        Some(title),
        Some(description),
    ) = (
        name,
        email,
        product,
        category,
        priority,
        skill,
        title,
        description,
    )
    else {
        return Err(f.finish().unwrap_err());
    };
    let command = TicketCommand::Open {
        actor,
        customer_id,
        contact: Contact { name, email },
        product,
        category,
        priority,
        required_skill: skill,
        title,
        description,
        at: Utc::now(),
    };
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "tickets",
        what: "ticket",
    };
    request.run::<Ticket>(Uuid::now_v7(), true, command).await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`]) and ignores the others'; a name no action knows is
/// refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TicketActionBody")]
pub(crate) struct ActionBody {
    /// The expert to assign.
    expert_id: Option<Uuid>,
    /// Why (at most 100,000 characters; 200 for an escalation).
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    reason: Option<String>,
    /// The comment's text.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    body: Option<String>,
    /// `P1` (most urgent) to `P4`.
    #[schemars(regex(pattern = "^[Pp][1-4]$"))]
    priority: Option<String>,
    /// How the ticket was resolved.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    resolution: Option<String>,
    /// The survey being answered (from the ticket's state).
    survey_id: Option<Uuid>,
    /// 1 to 5.
    #[schemars(range(min = 1, max = 5))]
    score: Option<i64>,
    /// An optional comment with the survey answer.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    comment: Option<String>,
}

use Role::{Customer, Expert, Manager};

/// The actions on a ticket: `POST /api/v1/tickets/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "assign",
        summary: "Assign an expert to the ticket",
        allowed: Allowed::Roles(&[Manager]),
        fields: &["expert_id"],
        required: &["expert_id"],
    },
    Action {
        name: "accept",
        summary: "Accept the assignment (the assigned expert)",
        allowed: Allowed::Roles(&[Expert]),
        fields: &[],
        required: &[],
    },
    Action {
        name: "reject",
        summary: "Reject the assignment (the assigned expert)",
        allowed: Allowed::Roles(&[Expert]),
        fields: &["reason"],
        required: &["reason"],
    },
    Action {
        name: "start",
        summary: "Start work on the ticket (the assigned expert)",
        allowed: Allowed::Roles(&[Expert]),
        fields: &[],
        required: &[],
    },
    Action {
        name: "comments",
        summary: "Comment on the ticket",
        allowed: Allowed::Roles(&[Customer, Expert, Manager]),
        fields: &["body"],
        required: &["body"],
    },
    Action {
        name: "priority",
        summary: "Change the ticket's priority",
        allowed: Allowed::Roles(&[Expert, Manager]),
        fields: &["priority"],
        required: &["priority"],
    },
    Action {
        name: "resolve",
        summary: "Resolve the ticket (the assigned expert)",
        allowed: Allowed::Roles(&[Expert]),
        fields: &["resolution"],
        required: &["resolution"],
    },
    Action {
        name: "reopen",
        summary: "Reopen a resolved ticket",
        allowed: Allowed::Roles(&[Customer, Manager]),
        fields: &["reason"],
        required: &["reason"],
    },
    Action {
        name: "close",
        summary: "Close the ticket",
        allowed: Allowed::Roles(&[Customer, Expert, Manager]),
        fields: &[],
        required: &[],
    },
    Action {
        name: "escalate",
        summary: "Escalate the ticket",
        allowed: Allowed::Roles(&[Manager]),
        fields: &["reason"],
        required: &["reason"],
    },
    Action {
        name: "survey-answers",
        summary: "Answer the ticket's satisfaction survey",
        allowed: Allowed::Roles(&[Customer]),
        fields: &["survey_id", "score", "comment"],
        required: &["survey_id", "score"],
    },
];

fn required<T>(f: &mut Fields, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        f.fail(field, "required");
    }
    value
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
    let action = find_action(ACTIONS, "ticket", &action)?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_body(&headers, &body)?
    };
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command: Option<TicketCommand> = match action.name {
        "assign" => required(&mut f, "expert_id", b.expert_id).map(|expert_id| {
            TicketCommand::AssignExpert {
                expert_id,
                by: AssignedBy::Manager { manager_id: actor },
                at,
            }
        }),
        "accept" => Some(TicketCommand::Accept { actor, at }),
        "reject" => required(&mut f, "reason", b.reason)
            .and_then(|r| f.check("reason", LongText::parse("reason", r)))
            .map(|reason| TicketCommand::Reject { actor, reason, at }),
        "start" => Some(TicketCommand::StartWork { actor, at }),
        "comments" => required(&mut f, "body", b.body)
            .and_then(|t| f.check("body", LongText::parse("body", t)))
            .map(|body| TicketCommand::Comment {
                actor,
                comment_id: Uuid::now_v7(),
                body,
                at,
            }),
        "priority" => required(&mut f, "priority", b.priority)
            .and_then(|p| f.check("priority", Priority::try_from(p.as_str())))
            .map(|priority| TicketCommand::ChangePriority {
                actor,
                priority,
                at,
            }),
        "resolve" => required(&mut f, "resolution", b.resolution)
            .and_then(|r| f.check("resolution", LongText::parse("resolution", r)))
            .map(|resolution| TicketCommand::Resolve {
                actor,
                resolution,
                at,
            }),
        "reopen" => required(&mut f, "reason", b.reason)
            .and_then(|r| f.check("reason", LongText::parse("reason", r)))
            .map(|reason| TicketCommand::Reopen { actor, reason, at }),
        "close" => Some(TicketCommand::Close { actor, at }),
        "escalate" => required(&mut f, "reason", b.reason)
            .and_then(|r| f.check("reason", ShortText::parse("reason", r)))
            .map(|reason| TicketCommand::Escalate {
                by: EscalatedBy::User { user_id: actor },
                reason,
                at,
            }),
        "survey-answers" => match (
            required(&mut f, "survey_id", b.survey_id),
            required(&mut f, "score", b.score)
                .and_then(|s| f.check("score", SurveyScore::parse("score", s))),
        ) {
            (Some(survey_id), Some(score)) => {
                let comment = match b.comment {
                    Some(c) => f.check("comment", LongText::parse("comment", c)).map(Some),
                    None => Some(None),
                };
                comment.map(|comment| TicketCommand::AnswerSurvey {
                    actor,
                    survey_id,
                    score,
                    comment,
                    at,
                })
            }
            _ => None,
        },
        other => return Err(unhandled_action("ticket", other)),
    };
    action.allowed.check(&principal, id)?;
    f.finish()?;
    let command =
        command.ok_or_else(|| ApiError::bad_request("validation_failed", "invalid body"))?;
    // A customer acts only on their own tickets; others' are not found.
    if !principal.has(Role::Expert) && !principal.has(Role::Manager) {
        let stream = StreamId::parse(id.to_string())?;
        let loaded = state
            .commands
            .load::<Ticket>(&principal.tenant, &stream)
            .await
            .map_err(|e| command_error("ticket", e))?;
        if loaded.is_none_or(|l| l.state.customer_id != Some(actor)) {
            return Err(ApiError::not_found("ticket"));
        }
    }
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "tickets",
        what: "ticket",
    };
    request.run::<Ticket>(id, false, command).await
}

/// The current ticket from the read model, or (auditors, managers) its
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
            &crate::queries::tickets::TICKETS,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) = history::past_state::<Ticket>(&state, &principal, &id, &q, "ticket").await?;
    let t = &loaded.state;
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "status": t.status.map(|s| s.as_str()),
        "customer_id": t.customer_id,
        "priority": t.priority,
        "expert_id": t.expert_id,
        "rejected_by": t.rejected_by,
        "opened_at": t.opened_at,
        "first_assigned_at": t.first_assigned_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "sla_breached": t.breached,
        "escalation_level": t.escalation_level,
        "survey_id": t.survey_id,
        "survey_answered": t.survey_answered,
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
    history::of_stream(&state, &principal, id, "ticket", page).await
}
