//! `/api/v1/audit` and the export feed, for auditors (and admins).
//!
//! - `GET /api/v1/audit/verify?from=N`: recomputes the seal from the events
//!   (from the checkpoint at or before N) and compares; `ok` false names the
//!   first position where the log and the seal part.
//! - `GET /api/v1/audit/checkpoints?after=N&limit=M`: the signed checkpoints,
//!   with the public key, for auditors to keep outside the system.
//! - `GET /api/v1/events/export?from=&to=`: the caller's tenant's events as
//!   NDJSON with a closing signed manifest (`chronicle audit verify-export`
//!   checks it).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chronicle_projections::audit::export::{self, Bound, Selection};
use chronicle_projections::audit::{hex, verify};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use sqlx::Row as _;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::ApiQuery;
use crate::error::ApiError;
use crate::queries::db;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/verify", get(verify_log))
        .route("/api/v1/audit/checkpoints", get(checkpoints))
        .route("/api/v1/events/export", get(export_events))
}

const AUDITORS: &[Role] = &[Role::Auditor];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    from: Option<u64>,
}

async fn verify_log(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Response, ApiError> {
    principal.require_any(AUDITORS)?;
    let from = q.from.unwrap_or(0).min(crate::events::MAX_AFTER);
    let report = verify::verify(&state.pool, &state.audit_key.public(), from)
        .await
        .map_err(db)?;
    tracing::info!(by = %principal.user, ok = report.ok(), from, "audit verification");
    Ok(Json(json!({
        "ok": report.ok(),
        "key_id": state.audit_key.key_id(),
        "from": report.from,
        "sealed_through": report.sealed_through,
        "events_checked": report.events_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "problem": report.problem,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn checkpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<Response, ApiError> {
    principal.require_any(AUDITORS)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 1000",
        ));
    }
    let after = q.after.unwrap_or(0).min(crate::events::MAX_AFTER) as i64;
    let rows = sqlx::query(
        "SELECT position, events, chain, sealed_at, key_id, signature FROM audit_checkpoints \
          WHERE position > $1 ORDER BY position LIMIT $2",
    )
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&state.pool)
    .await
    .map_err(db)?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let sealed_at: chrono::DateTime<chrono::Utc> = r.try_get("sealed_at").map_err(db)?;
        items.push(json!({
            "position": r.try_get::<i64, _>("position").map_err(db)?,
            "events": r.try_get::<i64, _>("events").map_err(db)?,
            "chain": hex(&r.try_get::<Vec<u8>, _>("chain").map_err(db)?),
            "sealed_at": sealed_at,
            "sealed_at_us": sealed_at.timestamp_micros(),
            "key_id": r.try_get::<String, _>("key_id").map_err(db)?,
            "signature": hex(&r.try_get::<Vec<u8>, _>("signature").map_err(db)?),
        }));
    }
    let next_after = items
        .last()
        .and_then(|i| i["position"].as_i64())
        .unwrap_or(after);
    Ok(Json(json!({
        "public_key": state.audit_key.public().to_hex(),
        "key_id": state.audit_key.key_id(),
        "signed_message": "chronicle-seal-v1|<position>|<events>|<chain hex>|<sealed_at_us>",
        "items": items,
        "next_after": next_after,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
}

fn bound(name: &str, raw: Option<String>) -> Result<Option<Bound>, ApiError> {
    raw.map(|r| {
        r.parse::<Bound>()
            .map_err(|e| ApiError::bad_request("invalid_query", format!("{name}: {e}")))
    })
    .transpose()
}

async fn export_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    principal.require_any(AUDITORS)?;
    let selection = Selection {
        tenant: principal.tenant.as_str().to_owned(),
        from: bound("from", q.from)?,
        to: bound("to", q.to)?,
    };
    tracing::info!(by = %principal.user, tenant = %selection.tenant, "events exported");
    let revealed: Arc<Mutex<BTreeSet<Uuid>>> = Arc::default();
    let lines = export::export(
        state.store.clone(),
        state.audit_key.clone(),
        selection,
        revealed.clone(),
    )
    .map(|line| match line {
        Ok(mut line) => {
            line.push('\n');
            Ok(line)
        }
        Err(e) => {
            tracing::error!(error = %e, "the export stopped");
            Err(std::io::Error::other(e))
        }
    });
    // Once the export is out, record the personal data it revealed.
    let record = futures::stream::once(async move {
        let subjects: Vec<Uuid> = revealed
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        if let Err(e) = crate::privacy::record_read(
            &state,
            &principal,
            "GET /api/v1/events/export".into(),
            subjects,
        )
        .await
        {
            tracing::error!(error = ?e, "could not record an auditor's read of personal data");
        }
        Ok::<String, std::io::Error>(String::new())
    });
    let lines = lines.chain(record);
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
