//! `/healthz` (the process is alive) and `/readyz` (it can serve: the
//! database answers and every migration this binary knows is applied), for
//! the API and, with `/metrics`, on the listener of `chronicle project`
//! ([`probe_router`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    readiness(&state.pool).await
}

async fn readiness(pool: &PgPool) -> (StatusCode, Json<Value>) {
    match crate::database::pending_migrations(pool).await {
        Ok(0) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(pending) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not_ready", "reason": format!("{pending} migrations not applied") }),
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not_ready", "reason": "database unreachable" })),
            )
        }
    }
}

/// What a process without the HTTP API serves for probes and scrapes
/// (`chronicle project` on `CHRONICLE_METRICS_LISTEN`): `/healthz`,
/// `/readyz` (same rules as the API's) and `/metrics` from the
/// process-wide recorder.
pub fn probe_router(pool: PgPool) -> Router {
    crate::observability::prometheus();
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(|State(pool): State<PgPool>| async move { readiness(&pool).await }),
        )
        .route("/metrics", get(crate::observability::metrics))
        .with_state(pool)
}
