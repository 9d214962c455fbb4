//! The PostgreSQL read models, one module per projection. Each handler
//! loads the rows its batch touches, folds the batch's events into them in
//! memory, and writes them back in bulk ([`crate::rows`]).

pub mod approvals;
pub mod contracts;
pub mod kb;
pub mod leads;
pub mod tickets;
pub mod users;

use chronicle_domain::event::{decode, DomainEvent};
use chronicle_store::RecordedEvent;
use uuid::Uuid;

use crate::ApplyError;

/// Decodes a stored event into its domain type (upcasting old versions).
pub fn decode_event<E: DomainEvent>(event: &RecordedEvent) -> Result<E, ApplyError> {
    let data = event
        .data_value()
        .map_err(|e| ApplyError::poison(event, format!("data is not JSON: {e}")))?;
    decode::<E>(&event.event_type, event.schema_version, data)
        .map_err(|e| ApplyError::poison(event, e))
}

/// The stream id of an event as the entity's UUID.
pub fn entity_id(event: &RecordedEvent) -> Result<Uuid, ApplyError> {
    Uuid::parse_str(&event.stream_id)
        .map_err(|_| ApplyError::poison(event, "the stream id is not a UUID"))
}

/// The ids of the streams of `stream_type` in a batch, without repeats.
pub fn stream_ids(events: &[RecordedEvent], stream_type: &str) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.stream_type == stream_type)
        .filter_map(|e| Uuid::parse_str(&e.stream_id).ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A unit enum's serialized name (e.g. `P1`, `first_response`).
pub fn label<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
