//! Personal data: erasing a data subject, and recording auditors' reads.
//!
//! - `POST /api/v1/subjects/{id}/erase` (admin): records
//!   `data_subject.erased`, destroys the subject's data keys (their personal
//!   fields in every stored event read as erased from then on, in history,
//!   exports and every rebuild), and asks every projection that holds
//!   personal data to rebuild, so that read models and the search index
//!   drop it. 202 with what it did.
//! - [`record_read`]: when an auditor reads events or states that reveal
//!   personal data (history, past states, the feed, exports), the read is
//!   recorded as `access_log.personal_data_read` in the tenant's access log.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chronicle_domain::event::{encode, DomainEvent};
use chronicle_domain::privacy::{
    access_log_stream, subject_stream, AccessLogEvent, DataSubjectEvent, PersonalDataRead,
    SubjectErased,
};
use chronicle_store::{
    EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef, TypeName,
};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::actor_id;
use crate::error::ApiError;
use crate::queries::db;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/subjects/{id}/erase", post(erase))
}

/// Appends `event` to `stream` (of `stream_type`) in the caller's tenant,
/// whatever its version: a record of something that happened.
async fn record<E: DomainEvent>(
    state: &AppState,
    principal: &Principal,
    stream_type: &str,
    stream: Uuid,
    event: &E,
) -> Result<u64, ApiError> {
    let encoded = encode(event);
    let new = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse(encoded.event_type)?,
        schema_version: encoded.schema_version,
        data: encoded.data,
        metadata: Metadata {
            actor: Some(principal.user.clone()),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            request_id: None,
            source: Some("api".into()),
        },
        personal: None,
    };
    let stream = StreamRef {
        tenant: principal.tenant.clone(),
        stream_type: TypeName::parse(stream_type)?,
        id: StreamId::parse(stream.to_string())?,
    };
    let appended = state
        .store
        .append(&stream, ExpectedVersion::Any, &[new])
        .await?;
    Ok(appended.last_position())
}

/// Records that an auditor read `subjects`' personal data through
/// `resource`. Others' reads, and reads that revealed nothing, are not
/// recorded.
pub async fn record_read(
    state: &AppState,
    principal: &Principal,
    resource: String,
    subjects: impl IntoIterator<Item = Uuid>,
) -> Result<(), ApiError> {
    if !principal.roles.contains(&Role::Auditor) {
        return Ok(());
    }
    let subjects: BTreeSet<Uuid> = subjects.into_iter().collect();
    if subjects.is_empty() {
        return Ok(());
    }
    let event = AccessLogEvent::PersonalDataRead(PersonalDataRead {
        reader: principal.user.clone(),
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        resource,
        subjects: subjects.into_iter().collect(),
        at: Utc::now(),
    });
    let stream = access_log_stream(principal.tenant.as_str());
    record(state, principal, "access_log", stream, &event).await?;
    metrics::counter!("chronicle_personal_data_reads_total").increment(1);
    Ok(())
}

async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_any(&[Role::Admin])?;
    let subject = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_subject", "the subject id must be a UUID"))?;
    // Recorded first: an erasure that fails half-way is still on record,
    // and erasing again finishes it.
    let event = DataSubjectEvent::Erased(SubjectErased {
        subject_id: subject,
        by: actor_id(&principal),
        at: Utc::now(),
    });
    let stream = subject_stream(principal.tenant.as_str(), subject);
    let position = record(&state, &principal, "data_subject", stream, &event).await?;
    let destroyed = state
        .store
        .erase_subject(&principal.tenant, subject)
        .await?;
    let mut rebuilding = Vec::new();
    for p in state.projections.iter() {
        if p.holds_personal_data() && p.rebuildable() {
            chronicle_projections::status::request_rebuild(&state.pool, p.name())
                .await
                .map_err(db)?;
            rebuilding.push(p.name());
        }
    }
    // The search index holds the names of contracts' parties that are
    // people, and tickets' texts.
    chronicle_projections::status::request_rebuild(&state.pool, chronicle_search::NAME)
        .await
        .map_err(db)?;
    rebuilding.push(chronicle_search::NAME);
    tracing::info!(%subject, by = %principal.user, keys = destroyed, "data subject erased");
    metrics::counter!("chronicle_subjects_erased_total").increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "subject": subject,
            "keys_destroyed": destroyed,
            "position": position,
            "rebuilding": rebuilding,
            "status": "/api/v1/admin/projections",
        })),
    )
        .into_response())
}
