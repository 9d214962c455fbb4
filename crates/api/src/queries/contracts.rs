//! `GET /api/v1/contracts` and `GET /api/v1/contracts/{id}` from
//! `read.contracts`.
//!
//! Who sees a contract: managers, auditors, analysts and admins see every
//! contract of their tenant; anyone else sees the contracts they own, those
//! shared with them and those shared with one of their roles. A contract
//! the caller may not see is not found (404), and never shows in a list,
//! whatever the filters.
//!
//! Filters: `status`, `owner_id` (a UUID or `me`), `counterparty`,
//! `currency`, and the ranges `ends_from/_to` (the term's end date: a date
//! like `2027-01-31`, or an RFC 3339 time compared with the start of that
//! day in UTC), `signed_from/_to`, `drafted_from/_to`, `updated_from/_to`. Sorts: `drafted_at` (default,
//! newest first), `updated_at`, `value`, `end_date`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::{Bind, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, ApiQuery};
use crate::error::ApiError;
use crate::AppState;

pub static CONTRACTS: Resource = Resource {
    what: "contract",
    code_not_found: "contract.not_found",
    table: "read.contracts",
    id_column: "contract_id",
    projections: &["contracts"],
    filters: &[
        Filter {
            param: "status",
            column: "status",
            kind: FilterKind::Text,
        },
        Filter {
            param: "owner_id",
            column: "owner_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "counterparty",
            column: "counterparty",
            kind: FilterKind::Text,
        },
        Filter {
            param: "currency",
            column: "currency",
            kind: FilterKind::Text,
        },
        // Listed for the "this list takes" message; `end_date_range` reads
        // `ends_from` and `ends_to` first, as dates.
        Filter {
            param: "ends",
            column: "end_date",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "signed",
            column: "signed_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "drafted",
            column: "drafted_at",
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
            name: "drafted_at",
            column: "drafted_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "value",
            column: "amount_minor",
            sql_type: "bigint",
        },
        SortKey {
            name: "end_date",
            column: "end_date",
            sql_type: "date",
        },
    ],
    default_sort: "-drafted_at",
    scope,
    custom: end_date_range,
};

/// The roles that see every contract of their tenant.
const SEE_ALL: [Role; 3] = [Role::Manager, Role::Analyst, Role::Admin];

/// True when the caller sees every contract of their tenant (search applies
/// the same rule).
pub(crate) fn sees_all(principal: &Principal) -> bool {
    SEE_ALL.iter().any(|r| principal.has(*r))
}

/// Every caller may ask; what they see is narrowed unless their role sees
/// all: their own contracts, and those shared with them or their roles.
fn scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    if sees_all(principal) {
        return Ok(None);
    }
    let me = actor_id(principal);
    let roles: Vec<String> = principal
        .roles
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    Ok(Some(
        Condition::default()
            .sql("t.owner_id = ")
            .bind(Bind::Uuid(me))
            .sql(" OR t.shared_with_users @> ARRAY[")
            .bind(Bind::Uuid(me))
            .sql("]::uuid[] OR t.shared_with_roles && ")
            .bind(Bind::Texts(roles)),
    ))
}

/// `ends_from` / `ends_to` on the `end_date` column (a date): takes a date,
/// or a time that stands for the first midnight (UTC) at or after it, so
/// the comparison does not depend on the database's time zone.
fn end_date_range(param: &str, value: &str, _: &Principal) -> Option<Result<Condition, ApiError>> {
    let op = match param {
        "ends_from" => ">=",
        "ends_to" => "<",
        _ => return None,
    };
    Some(
        first_midnight(value.trim())
            .map(|day| {
                Condition::default()
                    .sql(&format!("t.end_date {op} "))
                    .bind(Bind::Text(day.to_string()))
                    .sql("::date")
            })
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                "{param} must be a date (2027-01-31) or an RFC 3339 time, e.g. 2027-01-31T00:00:00Z"
            ),
                )
            }),
    )
}

/// The day of a date, or of the first midnight (UTC) at or after a time.
fn first_midnight(value: &str) -> Option<NaiveDate> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Some(day);
    }
    let time = DateTime::parse_from_rfc3339(value)
        .ok()?
        .with_timezone(&Utc);
    let day = time.date_naive();
    if time.time() == NaiveTime::MIN {
        Some(day)
    } else {
        day.succ_opt()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/contracts", get(list))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &CONTRACTS, params, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_date_bound_is_a_date_or_the_first_midnight_at_or_after_a_time() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(first_midnight("2027-01-31"), Some(day("2027-01-31")));
        assert_eq!(
            first_midnight("2027-01-31T00:00:00Z"),
            Some(day("2027-01-31"))
        );
        assert_eq!(
            first_midnight("2027-01-31T00:00:01Z"),
            Some(day("2027-02-01"))
        );
        // 01:00 in Berlin is midnight UTC.
        assert_eq!(
            first_midnight("2027-01-31T01:00:00+01:00"),
            Some(day("2027-01-31"))
        );
        assert_eq!(first_midnight("soon"), None);
        assert_eq!(first_midnight("2027-02-30"), None);
    }
}
