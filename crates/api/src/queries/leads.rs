//! `GET /api/v1/leads` and `GET /api/v1/leads/{id}` from `read.leads`.
//!
//! Sales, managers, approvers (who review designs), auditors and analysts
//! see every lead of their tenant; other roles may not list leads.
//!
//! Filters: `stage` (or its alias `status`), `owner_id` (a UUID or `me`),
//! `source`, `service`, `outcome` (won, lost, cancelled), `currency`, and
//! the time ranges `captured_from/_to`, `closed_from/_to`,
//! `updated_from/_to`. Sorts: `captured_at` (default, newest first),
//! `updated_at`, `estimated_value`, `company`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{no_custom, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::ApiQuery;
use crate::error::ApiError;
use crate::AppState;

pub static LEADS: Resource = Resource {
    what: "lead",
    code_not_found: "lead.not_found",
    table: "read.leads",
    id_column: "lead_id",
    projections: &["leads"],
    filters: &[
        Filter {
            param: "stage",
            column: "stage",
            kind: FilterKind::Text,
        },
        Filter {
            param: "status",
            column: "stage",
            kind: FilterKind::Text,
        },
        Filter {
            param: "owner_id",
            column: "owner_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "source",
            column: "source",
            kind: FilterKind::Text,
        },
        Filter {
            param: "service",
            column: "service",
            kind: FilterKind::Text,
        },
        Filter {
            param: "outcome",
            column: "outcome",
            kind: FilterKind::Text,
        },
        Filter {
            param: "currency",
            column: "currency",
            kind: FilterKind::Text,
        },
        Filter {
            param: "captured",
            column: "captured_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "closed",
            column: "closed_at",
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
            name: "captured_at",
            column: "captured_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "estimated_value",
            column: "amount_minor",
            sql_type: "bigint",
        },
        SortKey {
            name: "company",
            column: "company",
            sql_type: "text",
        },
    ],
    default_sort: "-captured_at",
    scope,
    custom: no_custom,
};

/// The roles that read leads; each sees every lead of the tenant.
const READERS: [Role; 4] = [Role::Sales, Role::Manager, Role::Approver, Role::Analyst];

fn scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    principal.require_any(&READERS)?;
    Ok(None)
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/leads", get(list))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &LEADS, params, &headers).await
}
