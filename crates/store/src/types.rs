//! The values the store takes and gives, and its errors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

/// The largest accepted event (data plus metadata, serialised), in bytes.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// The most events accepted in one append.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// The largest accepted append (all events together), in bytes.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

fn valid_chars(s: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if first(c)) && chars.all(rest)
}

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $first:expr, $rest:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Parses a ", $what, ": ", $rule, ".")]
            pub fn parse(value: impl Into<String>) -> Result<Self, StoreError> {
                let value = value.into();
                if value.len() <= $max && valid_chars(&value, $first, $rest) {
                    Ok(Self(value))
                } else {
                    Err(StoreError::InvalidName {
                        what: $what,
                        value: value.chars().take(64).collect(),
                        rule: $rule,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

checked_name!(
    /// A stream's id, unique across the store (aggregates use their UUID).
    StreamId, "stream id", 200,
    |c: char| c.is_ascii_alphanumeric(),
    |c: char| c.is_ascii_alphanumeric() || "-_.:@/".contains(c),
    "1 to 200 ASCII letters, digits or -_.:@/, starting with a letter or digit"
);
checked_name!(
    /// A tenant's id.
    TenantId, "tenant id", 63,
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit(),
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_',
    "1 to 63 lowercase ASCII letters, digits, - or _, starting with a letter or digit"
);
checked_name!(
    /// A type name: a stream type (`ticket`) or an event type (`ticket.opened`).
    TypeName, "type name", 100,
    |c: char| c.is_ascii_lowercase(),
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.',
    "1 to 100 lowercase ASCII letters, digits, _ or ., starting with a letter"
);

/// Where an append goes: the stream, its type and its tenant. A stream's
/// tenant and type are fixed by its first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    pub tenant: TenantId,
    pub stream_type: TypeName,
    pub id: StreamId,
}

/// The optimistic concurrency check of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must be exactly at this version (0 = no events).
    Exact(u64),
}

impl ExpectedVersion {
    /// The encoding `chronicle_append()` takes.
    pub(crate) fn to_sql(self) -> Result<i64, StoreError> {
        match self {
            Self::Any => Ok(-2),
            Self::NoStream => Ok(-1),
            Self::Exact(n) => i64::try_from(n).map_err(|_| StoreError::InvalidEvent {
                index: None,
                reason: format!("expected version {n} is out of range"),
            }),
        }
    }

    pub fn matches(self, current: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current == 0,
            Self::Exact(n) => current == n,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(n) => write!(f, "{n}"),
        }
    }
}

/// Who and why: kept with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The user (or `system:<component>`) on whose behalf the event was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Groups every event caused by one original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event (or command) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The HTTP request id (`X-Request-Id`) that carried the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The component that recorded the event, e.g. `api` or `timers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id; a UUIDv7 for new events, derived ids for reactions.
    pub event_id: Uuid,
    pub event_type: TypeName,
    pub schema_version: u16,
    pub data: Value,
    pub metadata: Metadata,
    /// Personal fields of `data`, stored encrypted with the subject's key
    /// (see [`crate::crypto`]).
    pub personal: Option<Personal>,
}

/// The personal data in an event: whose it is, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Personal {
    /// The person, or the record whose contact the person is (a lead, a
    /// contract): what `POST /api/v1/subjects/{id}/erase` names.
    pub subject: Uuid,
    pub fields: Vec<PersonalField>,
}

/// One personal field: a JSON pointer into the data, and what stands in
/// for it once its subject is erased.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalField {
    pub pointer: String,
    pub erased: Value,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// The global position of each appended event, in order.
    pub positions: Vec<u64>,
    /// True when these events were already stored (an idempotent retry) and
    /// nothing was written.
    pub already_stored: bool,
}

impl AppendResult {
    /// The position of the last event of the append.
    pub fn last_position(&self) -> u64 {
        self.positions.last().copied().unwrap_or(0)
    }
}

/// A stored event with its envelope.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedEvent {
    pub position: u64,
    pub event_id: Uuid,
    pub tenant: String,
    pub stream_id: String,
    pub stream_type: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    /// The event data as stored (unparsed JSON text), with personal fields
    /// decrypted, or their placeholders once their subject is erased.
    pub data: Box<RawValue>,
    pub metadata: Metadata,
    /// The metadata as stored (JSON text, as `data`): what the seal hashes.
    #[serde(skip)]
    pub raw_metadata: Box<RawValue>,
    /// The subjects whose personal data `data` reveals (decrypted).
    #[serde(skip)]
    pub personal: Vec<Uuid>,
}

impl RecordedEvent {
    /// Parses the data as a JSON value.
    pub fn data_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

/// What [`crate::EventStore::read_batch`] returns.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    /// Events in global order, without gaps that might still fill.
    pub events: Vec<RecordedEvent>,
    /// True when reading stopped before a position that is not yet
    /// committed (or not yet proven never to commit): read again soon.
    pub blocked: bool,
}

/// Which way [`crate::EventStore::read_stream`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Everything that can go wrong in the store. Each variant has a stable
/// code ([`StoreError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict: expected {expected}, stream is at {actual}")]
    Conflict {
        expected: ExpectedVersion,
        actual: u64,
    },
    #[error("event id {event_id} is already stored elsewhere (stream {stream_id}, version {stream_version})")]
    DuplicateEventId {
        event_id: Uuid,
        stream_id: String,
        stream_version: u64,
    },
    #[error("stream {stream_id} belongs to another {what}")]
    StreamMismatch {
        stream_id: String,
        what: &'static str,
    },
    #[error("invalid {what} {value:?}: {rule}")]
    InvalidName {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("invalid event{}: {reason}", index.map(|i| format!(" #{i}")).unwrap_or_default())]
    InvalidEvent {
        index: Option<usize>,
        reason: String,
    },
    #[error("event #{index} is {size} bytes; the limit is {limit}")]
    EventTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    #[error("append of {count} events ({bytes} bytes) exceeds the limit of {max_events} events or {max_bytes} bytes")]
    BatchTooLarge {
        count: usize,
        bytes: usize,
        max_events: usize,
        max_bytes: usize,
    },
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: u64, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// A stable machine code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict { .. } => "store.conflict",
            Self::DuplicateEventId { .. } => "store.duplicate_event_id",
            Self::StreamMismatch { .. } => "store.stream_mismatch",
            Self::InvalidName { .. } => "store.invalid_name",
            Self::InvalidEvent { .. } => "store.invalid_event",
            Self::EventTooLarge { .. } => "store.event_too_large",
            Self::BatchTooLarge { .. } => "store.batch_too_large",
            Self::Corrupt { .. } => "store.corrupt",
            Self::Database(_) => "store.unavailable",
        }
    }

    /// True for errors caused by the caller's input (never worth retrying).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidName { .. }
                | Self::InvalidEvent { .. }
                | Self::EventTooLarge { .. }
                | Self::BatchTooLarge { .. }
                | Self::StreamMismatch { .. }
                | Self::DuplicateEventId { .. }
        )
    }
}

/// An event validated and serialised for writing.
pub(crate) struct Prepared {
    pub data: String,
    pub metadata: String,
}

/// Checks an append's input the same way for every backend and serialises
/// the payloads once.
pub(crate) fn prepare(events: &[NewEvent]) -> Result<Vec<Prepared>, StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidEvent {
            index: None,
            reason: "an append needs at least one event".into(),
        });
    }
    let mut total = 0usize;
    let mut seen =
        std::collections::HashSet::with_capacity(if events.len() > 1 { events.len() } else { 0 });
    let mut prepared = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        if events.len() > 1 && !seen.insert(event.event_id) {
            return Err(StoreError::InvalidEvent {
                index: Some(index),
                reason: format!("event id {} appears twice in the batch", event.event_id),
            });
        }
        if event.event_id.is_nil() {
            return Err(StoreError::InvalidEvent {
                index: Some(index),
                reason: "event id must not be nil".into(),
            });
        }
        if event.schema_version == 0 {
            return Err(StoreError::InvalidEvent {
                index: Some(index),
                reason: "schema version starts at 1".into(),
            });
        }
        let data = serde_json::to_string(&event.data).map_err(|e| StoreError::InvalidEvent {
            index: Some(index),
            reason: e.to_string(),
        })?;
        let metadata =
            serde_json::to_string(&event.metadata).map_err(|e| StoreError::InvalidEvent {
                index: Some(index),
                reason: e.to_string(),
            })?;
        // PostgreSQL's jsonb cannot hold the NUL character.
        let meta = &event.metadata;
        let meta_nul = [&meta.actor, &meta.request_id, &meta.source]
            .into_iter()
            .flatten()
            .any(|s| s.contains('\0'));
        if meta_nul || contains_nul(&event.data) {
            return Err(StoreError::InvalidEvent {
                index: Some(index),
                reason: "text must not contain the NUL character (\\u0000)".into(),
            });
        }
        let size = data.len() + metadata.len();
        if size > MAX_EVENT_BYTES {
            return Err(StoreError::EventTooLarge {
                index,
                size,
                limit: MAX_EVENT_BYTES,
            });
        }
        total += size;
        prepared.push(Prepared { data, metadata });
    }
    if events.len() > MAX_BATCH_EVENTS || total > MAX_BATCH_BYTES {
        return Err(StoreError::BatchTooLarge {
            count: events.len(),
            bytes: total,
            max_events: MAX_BATCH_EVENTS,
            max_bytes: MAX_BATCH_BYTES,
        });
    }
    Ok(prepared)
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}
