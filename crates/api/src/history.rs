//! `GET /api/v1/<collection>/{id}/history`: every event of an entity with
//! its envelope and metadata, in order, paginated by stream version.

use axum::Json;
use chronicle_commands::{Loaded, Until};
use chronicle_domain::Aggregate;
use chronicle_store::{Direction, EventStore, StreamId};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{command_error, entity_id};
use crate::error::ApiError;
use crate::AppState;

const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The first stream version to return (default 1).
    from_version: Option<u64>,
    /// At most this many events (default 100, at most 1000).
    limit: Option<usize>,
}

pub async fn of_stream(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    stream_type: &str,
    page: Page,
) -> Result<Json<Value>, ApiError> {
    let tenant = &principal.tenant;
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let from = page.from_version.unwrap_or(1).max(1);
    let stream = StreamId::parse(id.to_string())?;
    // One more than asked, to know whether another page follows.
    let events = state
        .store
        .read_stream(&stream, from, Direction::Forward, limit + 1)
        .await?;
    // The entity is this tenant's and of this type, or it is not found.
    let first = if from == 1 {
        events.first().cloned()
    } else {
        state
            .store
            .read_stream(&stream, 1, Direction::Forward, 1)
            .await?
            .pop()
    };
    if !first.is_some_and(|e| e.tenant == tenant.as_str() && e.stream_type == stream_type) {
        return Err(ApiError::not_found(stream_type));
    }
    let more = events.len() > limit;
    let items: Vec<Value> = events
        .iter()
        .take(limit)
        .map(|e| {
            json!({
                "event_id": e.event_id,
                "type": e.event_type,
                "schema_version": e.schema_version,
                "stream_version": e.stream_version,
                "position": e.position,
                "recorded_at": e.recorded_at,
                "data": e.data,
                "metadata": e.metadata,
            })
        })
        .collect();
    let next = more.then(|| from + limit as u64);
    crate::privacy::record_read(
        state,
        principal,
        format!("GET /api/v1/{stream_type}/{id}/history"),
        events
            .iter()
            .take(limit)
            .flat_map(|e| e.personal.iter().copied()),
    )
    .await?;
    Ok(Json(
        json!({ "id": id, "events": items, "next_from_version": next }),
    ))
}

/// `?as_of=<RFC 3339>` or `?at_version=N`: the point an auditor looks at.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    at_version: Option<u64>,
    /// For the current state from the read model: wait for this position.
    pub min_position: Option<u64>,
}

impl StateQuery {
    /// True when neither `as_of` nor `at_version` is given: the caller
    /// wants the current state, which the read model answers.
    pub fn is_current(&self) -> bool {
        self.as_of.is_none() && self.at_version.is_none()
    }

    fn until(&self) -> Result<Until, ApiError> {
        match (self.as_of, self.at_version) {
            (Some(t), None) => Ok(Until::Time(t)),
            (None, Some(v)) => Ok(Until::Version(v)),
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "invalid_query",
                "give as_of or at_version, not both",
            )),
            (None, None) => Err(ApiError::bad_request(
                "invalid_query",
                "give as_of (RFC 3339) or at_version; the current state is served by the read models",
            )),
        }
    }
}

/// An entity folded up to the time or version an auditor (or manager)
/// asks for: its id and the folded state.
pub async fn past_state<A: Aggregate>(
    state: &AppState,
    principal: &Principal,
    raw_id: &str,
    query: &StateQuery,
    what: &'static str,
) -> Result<(Uuid, Loaded<A>), ApiError> {
    principal.require_any(&[Role::Auditor, Role::Manager])?;
    let until = query.until()?;
    let id = entity_id(raw_id)?;
    let stream = StreamId::parse(id.to_string())?;
    let loaded = state
        .commands
        .load_until::<A>(&principal.tenant, &stream, until)
        .await
        .map_err(|e| command_error(what, e))?
        .ok_or_else(|| ApiError::not_found(what))?;
    crate::privacy::record_read(
        state,
        principal,
        format!("GET /api/v1/{what}/{id} (as of)"),
        loaded.personal.iter().copied(),
    )
    .await?;
    Ok((id, loaded))
}
