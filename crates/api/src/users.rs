//! `/api/v1/users`: every user and expert-profile command as an endpoint,
//! and the auditors' reads (history, state as of a time or version).
//!
//! Roles (see README "Roles"): admins register users, change their roles
//! and deactivate them; an expert sets their own skills and availability
//! (the user whose id is the caller's user id, see below, while the token
//! holds the `expert` role), and managers those of any expert; auditors and
//! managers read history and past states. The domain refuses skills and
//! availability for a user without the `expert` role (`user.not_expert`)
//! and any change to a deactivated user (`user.deactivated`).
//!
//! | method | path | roles |
//! |---|---|---|
//! | `POST` | `/api/v1/users` (register) | admin |
//! | `POST` | `/api/v1/users/{id}/roles` | admin |
//! | `POST` | `/api/v1/users/{id}/deactivate` | admin |
//! | `POST` | `/api/v1/users/{id}/skills` | the expert themself, manager |
//! | `POST` | `/api/v1/users/{id}/availability` | the expert themself, manager |
//! | `GET` | `/api/v1/users/{id}?as_of=\|at_version=` | auditor, manager |
//! | `GET` | `/api/v1/users/{id}/history` | auditor, manager |
//!
//! A user's id is the id the rest of the system knows them by: the token's
//! `sub` when it is a UUID, otherwise a UUIDv5 of tenant and `sub`
//! ([`actor_id`]). Registration therefore takes the id (`id`), or the
//! user's token subject (`sub`, from which the id is derived the same way),
//! or neither (a new UUIDv7, for users whose tokens will carry it as `sub`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::user::{Roles, Skills, User, UserCommand, UserStatus};
use chronicle_domain::value::{Email, ShortText};
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
        .route("/api/v1/users", post(register))
        .route("/api/v1/users/{id}", get(state_at))
        .route("/api/v1/users/{id}/history", get(history_of))
        .route("/api/v1/users/{id}/{action}", post(act))
}

/// A new user.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RegisterUser")]
pub(crate) struct RegisterBody {
    /// The user's id; or give `sub`; or neither for a new id.
    id: Option<Uuid>,
    /// The user's token subject, from which the id is derived.
    #[schemars(length(min = 1, max = 256))]
    sub: Option<String>,
    /// At most 200 characters.
    #[schemars(schema_with = "crate::openapi::short_text")]
    name: String,
    #[schemars(email)]
    email: String,
    /// At least one of customer, expert, approver, sales, manager,
    /// auditor, analyst, admin (exact, lowercase).
    #[schemars(schema_with = "crate::openapi::role_names")]
    roles: Vec<String>,
}

/// Parses role names (exact, lowercase) into a non-empty set.
fn parse_roles(f: &mut Fields, roles: &[String]) -> Option<Roles> {
    f.check(
        "roles",
        Roles::parse("roles", roles.iter().map(String::as_str)),
    )
}

/// Parses skills, naming a bad one by its index (`skills[2]`).
fn parse_skills(f: &mut Fields, skills: Vec<String>) -> Option<Skills> {
    let mut parsed = Vec::with_capacity(skills.len());
    let mut ok = true;
    for (i, skill) in skills.into_iter().enumerate() {
        match f.check(&format!("skills[{i}]"), ShortText::parse("skills", skill)) {
            Some(s) => parsed.push(s),
            None => ok = false,
        }
    }
    ok.then(|| Skills::new(parsed))
}

async fn register(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Admin])?;
    let b: RegisterBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let id = match (b.id, b.sub) {
        (Some(_), Some(_)) => {
            f.fail("sub", "give id or sub, not both");
            None
        }
        (Some(id), None) => Some(id),
        (None, Some(sub)) if sub.is_empty() || sub.chars().count() > 256 => {
            f.fail("sub", "must be 1 to 256 characters");
            None
        }
        (None, Some(sub)) => Some(actor_id(&Principal {
            user: sub,
            tenant: principal.tenant.clone(),
            roles: Default::default(),
        })),
        (None, None) => Some(Uuid::now_v7()),
    };
    let name = f.check("name", ShortText::parse("name", b.name));
    let email = f.check("email", Email::parse("email", &b.email));
    let roles = parse_roles(&mut f, &b.roles);
    let (Some(id), Some(name), Some(email), Some(roles)) = (id, name, email, roles) else {
        return Err(f.finish().unwrap_err());
    };
    let command = UserCommand::Register {
        actor: actor_id(&principal),
        name,
        email,
        roles,
        at: Utc::now(),
    };
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "users",
        what: "user",
    };
    request.run::<User>(id, true, command).await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`]) and ignores the others'; a name no action knows is
/// refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UserActionBody")]
pub(crate) struct ActionBody {
    /// The complete new set of roles (at least one; exact, lowercase).
    #[schemars(schema_with = "crate::openapi::opt_role_names")]
    roles: Option<Vec<String>>,
    /// The complete new set of skills (may be empty), each at most 200
    /// characters.
    skills: Option<Vec<String>>,
    /// Whether the expert takes new tickets.
    available: Option<bool>,
}

fn required<T>(f: &mut Fields, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        f.fail(field, "required");
    }
    value
}

/// The actions on a user: `POST /api/v1/users/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "roles",
        summary: "Replace the user's roles",
        allowed: Allowed::Roles(&[Role::Admin]),
        fields: &["roles"],
        required: &["roles"],
    },
    Action {
        name: "deactivate",
        summary: "Deactivate the user",
        allowed: Allowed::Roles(&[Role::Admin]),
        fields: &[],
        required: &[],
    },
    Action {
        name: "skills",
        summary: "Set the expert's skills",
        allowed: Allowed::ExpertThemselfOrManager,
        fields: &["skills"],
        required: &["skills"],
    },
    Action {
        name: "availability",
        summary: "Set whether the expert takes new tickets",
        allowed: Allowed::ExpertThemselfOrManager,
        fields: &["available"],
        required: &["available"],
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
    let action = find_action(ACTIONS, "user", &action)?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_body(&headers, &body)?
    };
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command = match action.name {
        "roles" => required(&mut f, "roles", b.roles)
            .and_then(|r| parse_roles(&mut f, &r))
            .map(|roles| UserCommand::ChangeRoles { actor, roles, at }),
        "deactivate" => Some(UserCommand::Deactivate { actor, at }),
        // The complete new set of skills (may be empty).
        "skills" => required(&mut f, "skills", b.skills)
            .and_then(|s| parse_skills(&mut f, s))
            .map(|skills| UserCommand::SetExpertSkills { actor, skills, at }),
        "availability" => required(&mut f, "available", b.available).map(|available| {
            UserCommand::ChangeAvailability {
                actor,
                available,
                at,
            }
        }),
        other => return Err(unhandled_action("user", other)),
    };
    action.allowed.check(&principal, id)?;
    f.finish()?;
    let command =
        command.ok_or_else(|| ApiError::bad_request("validation_failed", "invalid body"))?;
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "users",
        what: "user",
    };
    request.run::<User>(id, false, command).await
}

/// The current user from the read model (managers, admins, auditors,
/// analysts), or (auditors, managers) their state folded from the events
/// `?as_of=` a time or `?at_version=`. Name and email are in the history
/// (`user.registered`), not in that folded state.
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
            &crate::queries::users::USERS,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) = history::past_state::<User>(&state, &principal, &id, &q, "user").await?;
    let u = &loaded.state;
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "status": u.status.map(|s| match s {
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
        }),
        "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "skills": u.skills.as_slice().iter().map(ShortText::as_str).collect::<Vec<_>>(),
        "available": u.available,
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
    history::of_stream(&state, &principal, id, "user", page).await
}
