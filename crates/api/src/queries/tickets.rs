//! `GET /api/v1/tickets` and `GET /api/v1/tickets/{id}` from `read.tickets`.
//!
//! Customers see their own tickets only; experts, managers, auditors and
//! analysts see every ticket of their tenant.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{no_custom, Bind, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, ApiQuery};
use crate::error::ApiError;
use crate::AppState;

pub static TICKETS: Resource = Resource {
    what: "ticket",
    code_not_found: "ticket.not_found",
    table: "read.tickets",
    id_column: "ticket_id",
    projections: &["tickets"],
    filters: &[
        Filter {
            param: "status",
            column: "status",
            kind: FilterKind::Text,
        },
        Filter {
            param: "priority",
            column: "priority",
            kind: FilterKind::Text,
        },
        Filter {
            param: "category",
            column: "category",
            kind: FilterKind::Text,
        },
        Filter {
            param: "product",
            column: "product",
            kind: FilterKind::Text,
        },
        Filter {
            param: "required_skill",
            column: "required_skill",
            kind: FilterKind::Text,
        },
        Filter {
            param: "expert_id",
            column: "expert_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "customer_id",
            column: "customer_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "opened",
            column: "opened_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "updated",
            column: "updated_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "resolved",
            column: "resolved_at",
            kind: FilterKind::TimeRange,
        },
    ],
    sorts: &[
        SortKey {
            name: "opened_at",
            column: "opened_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "priority",
            column: "priority",
            sql_type: "text",
        },
        SortKey {
            name: "status",
            column: "status",
            sql_type: "text",
        },
    ],
    default_sort: "-opened_at",
    scope,
    custom: no_custom,
};

/// The roles that see every ticket of their tenant (and admins).
const SEE_ALL: [Role; 3] = [Role::Expert, Role::Manager, Role::Analyst];

/// True when the caller sees every ticket of their tenant (search applies
/// the same rule).
pub(crate) fn sees_all(principal: &Principal) -> bool {
    SEE_ALL.iter().any(|r| principal.has(*r))
}

fn scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    if sees_all(principal) {
        return Ok(None);
    }
    principal.require_any(&[Role::Customer, Role::Expert, Role::Manager, Role::Analyst])?;
    Ok(Some(
        Condition::default()
            .sql("t.customer_id = ")
            .bind(Bind::Uuid(actor_id(principal))),
    ))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tickets", get(list))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &TICKETS, params, &headers).await
}
