//! `GET /api/v1/approvals` and `GET /api/v1/approvals/{id}` from
//! `read.approvals`.
//!
//! Approvers, sales, managers, auditors and analysts see every approval of
//! their tenant. `?pending_for=me` keeps the open approvals whose current
//! level awaits the caller: listed by user id, or through one of the roles
//! their token names (as the domain checks eligibility: an admin is not
//! widened to every role here), and not yet decided by them at that level.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{Bind, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, ApiQuery};
use crate::error::ApiError;
use crate::AppState;

pub static APPROVALS: Resource = Resource {
    what: "approval",
    code_not_found: "approval.not_found",
    table: "read.approvals",
    id_column: "approval_id",
    projections: &["approvals"],
    filters: &[
        Filter {
            param: "status",
            column: "status",
            kind: FilterKind::Text,
        },
        Filter {
            param: "subject_kind",
            column: "subject_kind",
            kind: FilterKind::Text,
        },
        Filter {
            param: "subject_id",
            column: "subject_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "requested_by",
            column: "requested_by",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "requested",
            column: "requested_at",
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
            name: "requested_at",
            column: "requested_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "status",
            column: "status",
            sql_type: "text",
        },
    ],
    default_sort: "-requested_at",
    scope,
    custom,
};

fn scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    principal.require_any(&[Role::Approver, Role::Sales, Role::Manager, Role::Analyst])?;
    Ok(None)
}

/// `pending_for=me`.
fn custom(param: &str, value: &str, principal: &Principal) -> Option<Result<Condition, ApiError>> {
    if param != "pending_for" {
        return None;
    }
    if value.trim() != "me" {
        return Some(Err(ApiError::bad_request(
            "invalid_query",
            "pending_for takes `me` (the approvals awaiting the caller's decision)",
        )));
    }
    Some(Ok(pending_for(principal)))
}

/// Open approvals whose current level lists the caller or one of their
/// roles, and that the caller has not decided at that level.
fn pending_for(principal: &Principal) -> Condition {
    let me = actor_id(principal);
    let roles: Vec<String> = principal
        .roles
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    Condition::default()
        .sql(
            "t.status = 'open' AND EXISTS (SELECT 1 FROM read.approval_inbox i \
             WHERE i.approval_id = t.approval_id AND i.tenant_id = t.tenant_id \
             AND i.level_no = t.current_level \
             AND ((i.approver_kind = 'user' AND i.approver = ",
        )
        .bind(Bind::Text(me.to_string()))
        .sql(") OR (i.approver_kind = 'role' AND i.approver = ANY(")
        .bind(Bind::Texts(roles))
        .sql(
            ")))) AND NOT EXISTS (SELECT 1 FROM read.approval_decisions d \
              WHERE d.approval_id = t.approval_id AND d.level_no = t.current_level \
              AND d.approver_id = ",
        )
        .bind(Bind::Uuid(me))
        .sql(")")
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/approvals", get(list))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &APPROVALS, params, &headers).await
}
