//! `GET /api/v1/users` (`read.users`), `GET /api/v1/experts` and
//! `GET /api/v1/experts/{id}` (`read.experts`). `GET /api/v1/users/{id}` is
//! served by the users command module, which delegates here.
//!
//! Managers, admins, auditors and analysts list users (names and emails
//! are personal data: nobody else sees them). Managers, experts, admins
//! and analysts list experts with their skills, availability and load.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::{no_custom, Bind, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::{entity_id, ApiQuery};
use crate::error::ApiError;
use crate::AppState;

pub static USERS: Resource = Resource {
    what: "user",
    code_not_found: "user.not_found",
    table: "read.users",
    id_column: "user_id",
    projections: &["users"],
    filters: &[
        Filter {
            param: "role",
            column: "roles",
            kind: FilterKind::TextIn,
        },
        Filter {
            param: "status",
            column: "status",
            kind: FilterKind::Text,
        },
        Filter {
            param: "registered",
            column: "registered_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "updated",
            column: "updated_at",
            kind: FilterKind::TimeRange,
        },
    ],
    sorts: &[
        SortKey {
            name: "registered_at",
            column: "registered_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
    ],
    default_sort: "-registered_at",
    scope: users_scope,
    custom: email,
};

fn users_scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    principal.require_any(&[Role::Manager, Role::Admin, Role::Analyst])?;
    Ok(None)
}

/// `email=a@x.example,b@y.example`: emails match ignoring case.
fn email(param: &str, value: &str, _: &Principal) -> Option<Result<Condition, ApiError>> {
    if param != "email" {
        return None;
    }
    let emails: Vec<String> = value
        .split(',')
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    if emails.is_empty() {
        return Some(Err(ApiError::bad_request(
            "invalid_query",
            "email needs a value",
        )));
    }
    Some(Ok(Condition::default()
        .sql("lower(t.email) = ANY(")
        .bind(Bind::Texts(emails))
        .sql(")")))
}

pub static EXPERTS: Resource = Resource {
    what: "expert",
    code_not_found: "expert.not_found",
    table: "read.experts",
    id_column: "expert_id",
    projections: &["users"],
    filters: &[
        Filter {
            param: "skill",
            column: "skills",
            kind: FilterKind::TextIn,
        },
        Filter {
            param: "availability",
            column: "availability",
            kind: FilterKind::Text,
        },
        Filter {
            param: "updated",
            column: "updated_at",
            kind: FilterKind::TimeRange,
        },
    ],
    sorts: &[
        SortKey {
            name: "open_tickets",
            column: "open_tickets",
            sql_type: "integer",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
    ],
    // The least loaded first: the order matching wants.
    default_sort: "open_tickets",
    scope: experts_scope,
    custom: no_custom,
};

fn experts_scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    principal.require_any(&[Role::Manager, Role::Expert, Role::Admin, Role::Analyst])?;
    Ok(None)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/experts", get(list_experts))
        .route("/api/v1/experts/{id}", get(one_expert))
}

async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &USERS, params, &headers).await
}

async fn list_experts(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &EXPERTS, params, &headers).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneQuery {
    min_position: Option<u64>,
}

async fn one_expert(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<OneQuery>,
) -> Result<Response, ApiError> {
    let id = entity_id(&id)?;
    super::one(&state, &principal, &EXPERTS, id, q.min_position, &headers).await
}
