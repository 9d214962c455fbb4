//! The query side: lists and single entities from the read models.
//!
//! Each collection describes itself as a [`Resource`]: its table, the
//! projections that keep it, its filters and sort keys, and who may see
//! which rows ([`Resource::scope`]). This module turns that and a request
//! into one keyset-paginated query:
//!
//! - `?limit=` (1-200, default 50), `?cursor=` (opaque, from `next_cursor`),
//!   `?sort=field` or `?sort=-field` (descending);
//! - filters: `name=value` (comma-separated values mean any of them; `me`
//!   stands for the caller on user filters), `<date>_from=` / `<date>_to=`
//!   (RFC 3339, from inclusive, to exclusive);
//! - `?min_position=N` (or `X-Chronicle-Min-Position: N`): wait, at most
//!   [`MAX_WAIT`], until the projections behind the resource have applied
//!   the event at position N (read-your-writes with a command's
//!   `position`); 503 `projection_lagging` if they have not.
//!
//! Each answer reflects one snapshot of the read models, and says which
//! event position: `X-Chronicle-Position` and, on lists, `position`.

pub mod approvals;
pub mod contracts;
pub mod kb;
pub mod leads;
pub mod tickets;
pub mod users;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chronicle_store::EventStore as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::auth::Principal;
use crate::command_http::actor_id;
use crate::error::ApiError;
use crate::AppState;

/// How long a query waits for `min_position` at most.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// The header that carries the position an answer reflects.
pub const POSITION_HEADER: &str = "x-chronicle-position";
/// The header alternative to `?min_position=`.
pub const MIN_POSITION_HEADER: &str = "x-chronicle-min-position";

/// A value bound into a query.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Texts(Vec<String>),
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
    Time(DateTime<Utc>),
}

/// A SQL condition on the resource's table (aliased `t`), built from SQL
/// pieces and bound values.
#[derive(Debug, Clone, Default)]
pub struct Condition(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Bind(Bind),
}

impl Condition {
    pub fn sql(mut self, sql: &str) -> Self {
        self.0.push(Part::Sql(sql.to_owned()));
        self
    }

    pub fn bind(mut self, value: Bind) -> Self {
        self.0.push(Part::Bind(value));
        self
    }

    fn push_to(&self, q: &mut QueryBuilder<'_, Postgres>) {
        for part in &self.0 {
            match part {
                Part::Sql(s) => {
                    q.push(s.as_str());
                }
                Part::Bind(b) => match b.clone() {
                    Bind::Text(v) => {
                        q.push_bind(v);
                    }
                    Bind::Texts(v) => {
                        q.push_bind(v);
                    }
                    Bind::Uuid(v) => {
                        q.push_bind(v);
                    }
                    Bind::Uuids(v) => {
                        q.push_bind(v);
                    }
                    Bind::Time(v) => {
                        q.push_bind(v);
                    }
                },
            }
        }
    }
}

/// What a filter parameter matches.
#[derive(Debug, Clone, Copy)]
pub enum FilterKind {
    /// A text column equal to one of the comma-separated values.
    Text,
    /// A uuid column equal to one of the values (`me` is the caller).
    Uuid,
    /// A text array column containing the value.
    TextIn,
    /// `<param>` is a timestamp column; the filter takes `<param>_from`
    /// (inclusive) and `<param>_to` (exclusive).
    TimeRange,
}

/// A query parameter that filters a list.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub param: &'static str,
    pub column: &'static str,
    pub kind: FilterKind,
}

/// A key lists can be sorted by: a NOT NULL column.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    pub name: &'static str,
    pub column: &'static str,
    /// Its SQL type, for the cursor's value (`timestamptz`, `text`, ...).
    pub sql_type: &'static str,
}

/// A queryable collection.
pub struct Resource {
    /// Singular, for messages and codes (`ticket` → `ticket.not_found`).
    pub what: &'static str,
    pub code_not_found: &'static str,
    /// Schema-qualified table.
    pub table: &'static str,
    pub id_column: &'static str,
    /// The projections that keep `table` (for min_position and position).
    pub projections: &'static [&'static str],
    pub filters: &'static [Filter],
    pub sorts: &'static [SortKey],
    /// The default sort, e.g. `-opened_at`.
    pub default_sort: &'static str,
    /// Which rows the caller may see, beyond their tenant: `Ok(None)` for
    /// all, a condition otherwise, or an error (403) for none.
    pub scope: fn(&Principal) -> Result<Option<Condition>, ApiError>,
    /// Resource-specific parameters (e.g. `pending_for=me`).
    pub custom: fn(&str, &str, &Principal) -> Option<Result<Condition, ApiError>>,
}

/// No resource-specific parameters.
pub fn no_custom(_: &str, _: &str, _: &Principal) -> Option<Result<Condition, ApiError>> {
    None
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// The `min_position` a request asks for, from the query or the header.
pub fn min_position_of(
    params: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<u64, ApiError> {
    min_position(params, headers)
}

pub(crate) fn min_position(
    params: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<u64, ApiError> {
    let raw = params.get("min_position").map(String::as_str).or_else(|| {
        headers
            .get(MIN_POSITION_HEADER)
            .and_then(|v| v.to_str().ok())
    });
    match raw {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid("min_position must be a non-negative integer")),
    }
}

/// Waits for the resource's projections to reach `min` (if asked).
async fn read_your_writes(state: &AppState, r: &Resource, min: u64) -> Result<(), ApiError> {
    wait_for(state, r.projections, min).await
}

/// Waits, at most [`MAX_WAIT`], for `projections` to reach `min` (if asked):
/// 400 for a position past the log, 503 `projection_lagging` on timeout.
pub async fn wait_for(state: &AppState, projections: &[&str], min: u64) -> Result<(), ApiError> {
    if min == 0 {
        return Ok(());
    }
    if state
        .positions
        .wait_for(projections, min, Duration::ZERO)
        .await
        .is_ok()
    {
        return Ok(());
    }
    // A position no command has answered yet would only time out.
    let head = state.store.head_position().await?;
    if min > head {
        return Err(invalid(format!(
            "min_position {min} is past the last recorded event ({head}); pass the position a command answered"
        )));
    }
    state
        .positions
        .wait_for(projections, min, MAX_WAIT)
        .await
        .map_err(|reached| ApiError::Lagging {
            required: min,
            reached,
        })
}

fn uuid_value(param: &str, value: &str, principal: &Principal) -> Result<Uuid, ApiError> {
    if value == "me" {
        return Ok(actor_id(principal));
    }
    Uuid::parse_str(value).map_err(|_| invalid(format!("{param} must be a UUID or `me`")))
}

fn time_value(param: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            invalid(format!(
                "{param} must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z"
            ))
        })
}

/// The conditions of the request's filters.
fn filters(
    r: &Resource,
    params: &BTreeMap<String, String>,
    principal: &Principal,
) -> Result<Vec<Condition>, ApiError> {
    let mut out = Vec::new();
    for (param, value) in params {
        if ["limit", "cursor", "sort", "min_position"].contains(&param.as_str()) {
            continue;
        }
        if let Some(custom) = (r.custom)(param, value, principal) {
            out.push(custom?);
            continue;
        }
        let found = r.filters.iter().find_map(|f| match f.kind {
            FilterKind::TimeRange if param == &format!("{}_from", f.param) => Some((f, ">=")),
            FilterKind::TimeRange if param == &format!("{}_to", f.param) => Some((f, "<")),
            FilterKind::TimeRange => None,
            _ if param == f.param => Some((f, "=")),
            _ => None,
        });
        let Some((f, op)) = found else {
            let mut known: Vec<String> = r
                .filters
                .iter()
                .flat_map(|f| match f.kind {
                    FilterKind::TimeRange => {
                        vec![format!("{}_from", f.param), format!("{}_to", f.param)]
                    }
                    _ => vec![f.param.to_owned()],
                })
                .collect();
            known.extend(
                ["limit", "cursor", "sort", "min_position"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            return Err(invalid(format!(
                "unknown query parameter {param:?}; this list takes: {}",
                known.join(", ")
            )));
        };
        let values: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(invalid(format!("{param} needs a value")));
        }
        let column = format!("t.{}", f.column);
        let condition = match f.kind {
            FilterKind::Text => Condition::default()
                .sql(&format!("{column} = ANY("))
                .bind(Bind::Texts(values.iter().map(|v| v.to_string()).collect()))
                .sql(")"),
            FilterKind::Uuid => {
                let ids = values
                    .iter()
                    .map(|v| uuid_value(param, v, principal))
                    .collect::<Result<Vec<_>, _>>()?;
                Condition::default()
                    .sql(&format!("{column} = ANY("))
                    .bind(Bind::Uuids(ids))
                    .sql(")")
            }
            FilterKind::TextIn => Condition::default()
                .sql(&format!("{column} && "))
                .bind(Bind::Texts(values.iter().map(|v| v.to_string()).collect())),
            FilterKind::TimeRange => Condition::default()
                .sql(&format!("{column} {op} "))
                .bind(Bind::Time(time_value(param, value)?)),
        };
        out.push(condition);
    }
    Ok(out)
}

/// The decoded `?cursor=`: where the previous page ended.
struct Cursor {
    sort: String,
    value: String,
    id: Uuid,
}

/// A cursor for a list sorted by `sort`, ending at (`value`, `id`).
pub fn encode_cursor_of(sort: &str, value: &str, id: Uuid) -> String {
    encode_cursor(sort, value, id)
}

/// The (value, id) of a cursor given out for a list sorted by `sort`.
pub fn decode_cursor_of(sort: &str, raw: &str) -> Result<(String, Uuid), ApiError> {
    let c = decode_cursor(raw)?;
    if c.sort != sort {
        return Err(invalid(
            "the cursor belongs to another list; start again without it",
        ));
    }
    Ok((c.value, c.id))
}

fn encode_cursor(sort: &str, value: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(json!([sort, value, id]).to_string())
}

fn decode_cursor(raw: &str) -> Result<Cursor, ApiError> {
    let bad = || invalid("cursor is not one this API gave out; start again without it");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let (sort, value, id): (String, String, Uuid) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(Cursor { sort, value, id })
}

/// Begins a read-only snapshot and reads the position it reflects.
async fn snapshot(
    state: &AppState,
    r: &Resource,
) -> Result<(sqlx::Transaction<'static, Postgres>, u64), ApiError> {
    snapshot_of(state, r.projections).await
}

/// Begins a read-only repeatable-read snapshot and reads the position the
/// read models of `projections` reflect in it.
pub async fn snapshot_of(
    state: &AppState,
    projections: &[&str],
) -> Result<(sqlx::Transaction<'static, Postgres>, u64), ApiError> {
    let mut tx = state.pool.begin().await.map_err(db)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let names: Vec<String> = projections.iter().map(|s| s.to_string()).collect();
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT min(coalesce(c.position, 0)) FROM unnest($1::text[]) AS n(name) \
         LEFT JOIN projection_checkpoints c ON c.name = n.name",
    )
    .bind(names)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    Ok((tx, position.unwrap_or(0).max(0) as u64))
}

pub fn db(e: sqlx::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("read models"))
}

/// `response` with the position it reflects in `X-Chronicle-Position`.
pub fn with_position(mut response: Response, position: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&position.to_string()) {
        response.headers_mut().insert(POSITION_HEADER, v);
    }
    response
}

/// `GET /api/v1/<collection>`: a page of the rows the caller may see.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    r: &Resource,
    params: BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    principal.refuse_auditors_only()?;
    let scope = (r.scope)(principal)?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let sort_param = params
        .get("sort")
        .map(String::as_str)
        .unwrap_or(r.default_sort);
    let (descending, sort_name) = match sort_param.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, sort_param),
    };
    let Some(sort) = r.sorts.iter().find(|s| s.name == sort_name) else {
        let names: Vec<_> = r.sorts.iter().map(|s| s.name).collect();
        return Err(invalid(format!(
            "cannot sort by {sort_name:?}; sort by one of {} (prefix - for descending)",
            names.join(", ")
        )));
    };
    let cursor = params.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    if let Some(c) = &cursor {
        if c.sort != sort_param {
            return Err(invalid(
                "the cursor belongs to another sort order; start again without it",
            ));
        }
    }
    let conditions = filters(r, &params, principal)?;
    read_your_writes(state, r, min_position(&params, headers)?).await?;

    let (mut tx, position) = snapshot(state, r).await?;
    let mut q = QueryBuilder::<Postgres>::new("SELECT to_jsonb(t) FROM ");
    q.push(r.table);
    q.push(" t WHERE t.tenant_id = ");
    q.push_bind(principal.tenant.as_str().to_owned());
    for c in scope.iter().chain(conditions.iter()) {
        q.push(" AND (");
        c.push_to(&mut q);
        q.push(")");
    }
    let (op, order) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = cursor {
        q.push(format!(
            " AND (t.{}, t.{}) {op} (",
            sort.column, r.id_column
        ));
        q.push_bind(c.value);
        q.push(format!("::{}, ", sort.sql_type));
        q.push_bind(c.id);
        q.push(")");
    }
    q.push(format!(
        " ORDER BY t.{} {order}, t.{} {order} LIMIT ",
        sort.column, r.id_column
    ));
    q.push_bind((limit + 1) as i64);
    let mut rows: Vec<Value> = q
        .build_query_scalar()
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().and_then(|last| {
            let value = match &last[sort.column] {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            let id = last[r.id_column].as_str().and_then(|s| s.parse().ok())?;
            Some(encode_cursor(sort_param, &value, id))
        })
    } else {
        None
    };
    let body = json!({ "items": rows, "next_cursor": next_cursor, "position": position });
    Ok(with_position(Json(body).into_response(), position))
}

/// `GET /api/v1/<collection>/{id}`: one row, 404 when the caller may not
/// see it (or it is not there yet: pass `min_position`).
pub async fn one(
    state: &AppState,
    principal: &Principal,
    r: &Resource,
    id: Uuid,
    min: Option<u64>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    principal.refuse_auditors_only()?;
    let scope = (r.scope)(principal)?;
    let mut params = BTreeMap::new();
    if let Some(min) = min {
        params.insert("min_position".to_owned(), min.to_string());
    }
    read_your_writes(state, r, min_position(&params, headers)?).await?;
    let (mut tx, position) = snapshot(state, r).await?;
    let mut q = QueryBuilder::<Postgres>::new("SELECT to_jsonb(t) FROM ");
    q.push(r.table);
    q.push(" t WHERE t.tenant_id = ");
    q.push_bind(principal.tenant.as_str().to_owned());
    q.push(format!(" AND t.{} = ", r.id_column));
    q.push_bind(id);
    if let Some(c) = &scope {
        q.push(" AND (");
        c.push_to(&mut q);
        q.push(")");
    }
    let row: Option<Value> = q
        .build_query_scalar()
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let Some(row) = row else {
        return Err(ApiError::NotFound {
            code: r.code_not_found,
            message: format!("{} not found", r.what),
        });
    };
    let version = row["version"].as_i64();
    let mut response = with_position(Json(row).into_response(), position);
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        response.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(response)
}
