//! `GET /api/v1/events?after=N&limit=M`: the tenant's event feed in global
//! order, as JSON or NDJSON (`Accept: application/x-ndjson`).
//!
//! The feed reads the global log with the store's gap-safe reader and keeps
//! the caller's tenant's events, so it never skips an event that commits
//! late. A page examines at most `SCAN` events of the log; `next_after` is
//! where the next page starts, which may be past the last returned event
//! when other tenants' events were skipped. An empty page with `next_after`
//! equal to `after` means the feed is at its end for now.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chronicle_store::{EventStore, RecordedEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::command_http::ApiQuery;
use crate::error::ApiError;
use crate::AppState;

const MAX_LIMIT: usize = 1000;
/// The largest global position there can be.
pub(crate) const MAX_AFTER: u64 = i64::MAX as u64;
/// Events of the whole log examined per page.
const SCAN: usize = 5000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(feed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

fn envelope(e: &RecordedEvent) -> Value {
    json!({
        "position": e.position,
        "event_id": e.event_id,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "tenant": e.tenant,
        "stream_id": e.stream_id,
        "stream_type": e.stream_type,
        "stream_version": e.stream_version,
        "recorded_at": e.recorded_at,
        "data": e.data,
        "metadata": e.metadata,
    })
}

async fn feed(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Auditor])?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let after = q.after.unwrap_or(0);
    // Positions are PostgreSQL `bigint`s; a larger cursor is not one.
    if after > MAX_AFTER {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("after must be 0 to {MAX_AFTER}"),
        ));
    }
    let mut next_after = after;
    let mut items = Vec::with_capacity(limit);
    let mut revealed = Vec::new();
    let mut scanned = 0;
    'scan: while scanned < SCAN {
        let batch = state
            .store
            .read_all(next_after, (SCAN - scanned).min(1000))
            .await?;
        if batch.is_empty() {
            break;
        }
        scanned += batch.len();
        for event in &batch {
            if event.tenant == principal.tenant.as_str() {
                if items.len() == limit {
                    break 'scan;
                }
                items.push(envelope(event));
                revealed.extend(event.personal.iter().copied());
            }
            next_after = event.position;
        }
    }
    crate::privacy::record_read(
        &state,
        &principal,
        format!("GET /api/v1/events?after={after}"),
        revealed,
    )
    .await?;
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if ndjson {
        let mut body = String::new();
        for item in &items {
            body.push_str(&item.to_string());
            body.push('\n');
        }
        let mut response = body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if let Ok(v) = HeaderValue::from_str(&next_after.to_string()) {
            response.headers_mut().insert("x-next-after", v);
        }
        return Ok(response);
    }
    Ok(Json(json!({ "events": items, "next_after": next_after })).into_response())
}
