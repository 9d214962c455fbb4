//! `GET /api/v1/search`: full-text search over the contracts, knowledge
//! articles and tickets the caller may see (the index of
//! `chronicle-search`, written by the search projection).
//!
//! Parameters: `q` (the query: terms, "phrases", prefix*, field:value,
//! AND/OR/NOT, parentheses; empty matches everything), `type`
//! (`contract`, `kb`, `ticket`, comma-separated), `status`
//! (comma-separated), `limit` (1-100, default 20), `cursor` (the previous
//! page's `next_cursor`), `min_position` (wait until the index reflects a
//! command's position). Anything else is a 400 that lists these.
//!
//! Who sees what is decided inside the query, never after it: the tenant
//! always; contracts as `GET /api/v1/contracts` shows them (the same
//! `sees_all` rule), tickets as `GET /api/v1/tickets` does, every
//! published article. Hits, totals, facets and scores only ever count what
//! the caller may see.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chronicle_search::doc::Kind;
use chronicle_search::indexer::metric;
use chronicle_search::query::{self, ContractAccess, Request, Scope, SearchError, TicketAccess};
use chronicle_store::EventStore as _;
use serde_json::json;

use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, ApiQuery};
use crate::error::ApiError;
use crate::queries::{self, MAX_WAIT, POSITION_HEADER};
use crate::AppState;

/// The parameters the endpoint takes.
pub const PARAMS: [&str; 6] = ["q", "type", "status", "limit", "cursor", "min_position"];

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// What the caller may see, as the index's filter takes it.
pub(crate) fn scope(principal: &Principal) -> Scope {
    let me = actor_id(principal);
    let contracts = if queries::contracts::sees_all(principal) {
        ContractAccess::All
    } else {
        ContractAccess::Granted {
            user: me,
            roles: principal
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
        }
    };
    let tickets = if queries::tickets::sees_all(principal) {
        TicketAccess::All
    } else if principal.has(Role::Customer) {
        TicketAccess::Customer(me)
    } else {
        TicketAccess::None
    };
    Scope {
        tenant: principal.tenant.as_str().to_owned(),
        contracts,
        tickets,
    }
}

/// FNV-1a: a stable fingerprint of what a cursor was made for.
fn fingerprint(q: &str, kinds: &[Kind], statuses: &[String]) -> u64 {
    let mut text = String::from(q);
    for k in kinds {
        text.push('\u{1}');
        text.push_str(k.as_str());
    }
    for s in statuses {
        text.push('\u{2}');
        text.push_str(s);
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn encode_cursor(offset: usize, print: u64) -> String {
    URL_SAFE_NO_PAD.encode(json!([offset, print.to_string()]).to_string())
}

fn decode_cursor(raw: &str, print: u64) -> Result<usize, ApiError> {
    let bad = || invalid("cursor is not one this API gave out; start again without it");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let (offset, made_for): (usize, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if made_for != print.to_string() {
        return Err(invalid(
            "the cursor belongs to another search (q, type or status differ); start again without it",
        ));
    }
    if offset >= query::MAX_DEPTH {
        return Err(bad());
    }
    Ok(offset)
}

fn list(raw: Option<&String>) -> Vec<String> {
    raw.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The request, checked.
fn request(params: &BTreeMap<String, String>) -> Result<(Request, u64), ApiError> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown query parameter {unknown:?}; search takes: {}",
            PARAMS.join(", ")
        )));
    }
    let q = params.get("q").cloned().unwrap_or_default();
    let mut kinds = Vec::new();
    for name in list(params.get("type")) {
        let kind = Kind::parse(&name)
            .ok_or_else(|| invalid(format!("type {name:?} is not one of contract, kb, ticket")))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    let mut statuses = list(params.get("status"));
    if statuses.iter().any(|s| s.chars().count() > 64) {
        return Err(invalid("a status is at most 64 characters"));
    }
    statuses.sort();
    statuses.dedup();
    let limit = match params.get("limit") {
        None => query::DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=query::MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid(format!("limit must be 1 to {}", query::MAX_LIMIT)))?,
    };
    let print = fingerprint(&q, &kinds, &statuses);
    let offset = match params.get("cursor") {
        None => 0,
        Some(c) => decode_cursor(c, print)?,
    };
    Ok((
        Request {
            q,
            kinds,
            statuses,
            limit: limit.min(query::MAX_DEPTH - offset),
            offset,
        },
        print,
    ))
}

async fn search(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.refuse_auditors_only()?;
    let (request, print) = request(&params)?;
    let min = queries::min_position(&params, &headers)?;
    if min > 0
        && state
            .search
            .wait_for(min, std::time::Duration::ZERO)
            .await
            .is_err()
    {
        let head = state.store.head_position().await?;
        if min > head {
            return Err(invalid(format!(
                "min_position {min} is past the last recorded event ({head}); pass the position a command answered"
            )));
        }
        state
            .search
            .wait_for(min, MAX_WAIT)
            .await
            .map_err(|reached| ApiError::Lagging {
                required: min,
                reached,
            })?;
    }
    let snapshot = match state.search.snapshot() {
        Some(s) => s,
        None => {
            // Created since the last refresh? Look once before giving up.
            let reader = state.search.clone();
            let _ = tokio::task::spawn_blocking(move || reader.refresh()).await;
            state
                .search
                .snapshot()
                .ok_or_else(|| ApiError::Unavailable {
                    message: "the search index is not built yet; retry shortly".into(),
                })?
        }
    };
    let scope = scope(&principal);
    let stats = state.search_stats.clone();
    let started = Instant::now();
    let asked = request.clone();
    let span = tracing::Span::current();
    let results = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        query::search(&snapshot, &stats, &scope, &asked)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("search task")))?;
    metrics::histogram!(metric::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
    let results = results.map_err(|e| match e {
        SearchError::InvalidQuery { message, at } => ApiError::BadRequest {
            code: "search.invalid_query",
            message,
            details: Some(json!({ "query": request.q, "position": at })),
        },
        SearchError::Index(e) => ApiError::Internal(anyhow::Error::new(e).context("search")),
    })?;
    let end = request.offset + results.hits.len();
    let next_cursor = (results.hits.len() == request.limit
        && (end as u64) < results.total
        && end < query::MAX_DEPTH)
        .then(|| encode_cursor(end, print));
    let position = results.position;
    let mut response = Json(json!({
        "hits": results.hits,
        "total": results.total,
        "facets": results.facets,
        "next_cursor": next_cursor,
        "position": position,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&position.to_string()) {
        response.headers_mut().insert(POSITION_HEADER, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_continues_the_search_it_was_made_for() {
        let print = fingerprint("fibre", &[Kind::Contract], &[]);
        let cursor = encode_cursor(20, print);
        assert_eq!(decode_cursor(&cursor, print).unwrap(), 20);
        assert!(decode_cursor(&cursor, fingerprint("copper", &[Kind::Contract], &[])).is_err());
        assert!(decode_cursor(&cursor, fingerprint("fibre", &[], &[])).is_err());
        assert!(decode_cursor("garbage", print).is_err());
        let deep = encode_cursor(query::MAX_DEPTH, print);
        assert!(decode_cursor(&deep, print).is_err());
    }
}
