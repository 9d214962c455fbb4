//! What every domain event exposes to the layers that store and project it.
//!
//! Every aggregate's event enum is serialised with adjacent tagging and a
//! stable, dotted type name per variant:
//!
//! ```text
//! #[derive(Serialize, Deserialize, JsonSchema)]
//! #[serde(tag = "type", content = "data")]
//! pub enum TicketEvent {
//!     #[serde(rename = "ticket.opened")]
//!     Opened(TicketOpened),
//! }
//! ```
//!
//! The stored envelope keeps the type name and the schema version beside the
//! `data` object; [`encode`] and [`decode`] split and join them, and
//! [`decode`] runs the upcaster first.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A domain event: serialised as the `data` of the stored envelope, under a
/// stable type name and schema version.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The stable type name stored with the event, e.g. `ticket.opened`.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for `event_type`. Bump it when a
    /// change to the data is not backward compatible, and teach
    /// [`DomainEvent::upcast`] to turn the old version into the new one.
    fn current_version(event_type: &str) -> u16 {
        let _ = event_type;
        1
    }

    /// Turns the data of an older schema version into the current one.
    /// Called by [`decode`] with `from_version < current_version`.
    fn upcast(event_type: &str, from_version: u16, data: Value) -> Result<Value, DecodeError> {
        if from_version == Self::current_version(event_type) {
            Ok(data)
        } else {
            Err(DecodeError::UnknownVersion {
                event_type: event_type.to_owned(),
                version: from_version,
            })
        }
    }

    /// JSON pointers (RFC 6901) into this event's serialised `data` for the
    /// fields that hold personal data (names, emails, phone numbers,
    /// addresses), so that the store can encrypt them with a per-subject key.
    fn personal_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// The personal fields of this very event, as JSON pointers: by default
    /// [`DomainEvent::personal_fields`]; an event whose personal data sits
    /// at positions that depend on the instance (the people among a list of
    /// parties) names them here.
    fn personal_pointers(&self) -> Vec<String> {
        self.personal_fields()
            .iter()
            .map(|p| (*p).to_owned())
            .collect()
    }

    /// Whose personal data the event holds: `None` for the entity of its
    /// stream (a user, a lead's contact, a contract's people), or the id of
    /// the person it names (a ticket's customer).
    fn personal_subject(&self) -> Option<uuid::Uuid> {
        None
    }
}

/// What a personal field reads as once its subject is erased: an address
/// that is one for emails (so the value still parses), `"[erased]"` for the
/// rest.
pub fn erased_placeholder(pointer: &str) -> Value {
    let field = pointer.rsplit('/').next().unwrap_or(pointer);
    if field.contains("email") {
        Value::String("erased@erased.invalid".to_owned())
    } else {
        Value::String("[erased]".to_owned())
    }
}

/// Why stored event data could not be turned into a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown schema version {version} of event type {event_type}")]
    UnknownVersion { event_type: String, version: u16 },
    #[error("event type {event_type}: {source}")]
    Invalid {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An event ready for the envelope: type name, schema version and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub event_type: &'static str,
    pub schema_version: u16,
    pub data: Value,
}

/// Splits an event into its type name, current schema version and data.
pub fn encode<E: DomainEvent>(event: &E) -> Encoded {
    let event_type = event.event_type();
    let data = match serde_json::to_value(event) {
        Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
        // Adjacently tagged enums of plain data always serialise to an object.
        _ => Value::Null,
    };
    Encoded {
        event_type,
        schema_version: E::current_version(event_type),
        data,
    }
}

/// Joins a stored type name, schema version and data back into an event,
/// upcasting older versions first.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: u16,
    data: Value,
) -> Result<E, DecodeError> {
    let current = E::current_version(event_type);
    let data = if schema_version == current {
        data
    } else {
        E::upcast(event_type, schema_version, data)?
    };
    let mut tagged = serde_json::Map::with_capacity(2);
    tagged.insert("type".into(), Value::String(event_type.to_owned()));
    tagged.insert("data".into(), data);
    serde_json::from_value(Value::Object(tagged)).map_err(|source| DecodeError::Invalid {
        event_type: event_type.to_owned(),
        source,
    })
}
