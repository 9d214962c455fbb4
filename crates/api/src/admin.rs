//! `/api/v1/admin`: operating the projections over HTTP (admins).
//!
//! - `GET /api/v1/admin/projections`: position, head, lag and state of each.
//! - `POST /api/v1/admin/projections/{name}/rebuild`: 202; the owner of the
//!   projection rebuilds it into new tables and swaps them in.
//! - `POST /api/v1/admin/projections/{name}/resume`: a projection stopped on
//!   an event it could not apply retries it (after a fix is deployed).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_projections::status;
use serde_json::json;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::queries::db;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/projections", get(list))
        .route("/api/v1/admin/projections/{name}/rebuild", post(rebuild))
        .route("/api/v1/admin/projections/{name}/resume", post(resume))
}

async fn list(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    principal.require_any(&[])?;
    let rows = status::status_of(&state.pool, &crate::projection_names(&state.projections))
        .await
        .map_err(db)?;
    Ok(Json(json!({ "projections": rows })).into_response())
}

fn known(state: &AppState, name: &str) -> Result<(), ApiError> {
    crate::select_projections(state.projections.to_vec(), &[name.to_owned()])
        .map(|_| ())
        .map_err(|message| ApiError::NotFound {
            code: "projection.not_found",
            message,
        })
}

async fn rebuild(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_any(&[])?;
    known(&state, &name)?;
    if state
        .projections
        .iter()
        .any(|p| p.name() == name && !p.rebuildable())
    {
        return Err(ApiError::Conflict {
            code: "projection.not_rebuildable",
            message: format!("{name} is never rebuilt: it records what the log was"),
            details: None,
        });
    }
    status::request_rebuild(&state.pool, &name)
        .await
        .map_err(db)?;
    tracing::info!(projection = %name, by = %principal.user, "rebuild requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "projection": name,
            "rebuild_requested": true,
            "status": "/api/v1/admin/projections",
        })),
    )
        .into_response())
}

async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_any(&[])?;
    known(&state, &name)?;
    let resumed = status::resume(&state.pool, &name).await.map_err(db)?;
    Ok(Json(json!({ "projection": name, "resumed": resumed })).into_response())
}
