//! The catalogue of every event type and schema version the domain knows,
//! with its JSON Schema and a realistic example of its `data`. The
//! `event-schemas/` directory at the workspace root is generated from it and
//! checked against it by tests.

use schemars::schema::RootSchema;
use serde_json::Value;

/// One event type at one schema version.
pub struct EventSpec {
    /// The aggregate's stream type, e.g. `ticket`.
    pub stream_type: &'static str,
    /// The stable type name, e.g. `ticket.opened`.
    pub event_type: &'static str,
    /// The schema version this spec describes.
    pub version: u16,
    /// JSON Schema of the event's `data` at this version
    /// (`schemars::schema_for!(PayloadStruct)`).
    pub schema: RootSchema,
    /// A realistic example of the `data` at this version. For the current
    /// version it must decode with `event::decode`; for older versions it
    /// must upcast and decode.
    pub example: Value,
}

/// Every event type and version, in a stable order.
pub fn all() -> Vec<EventSpec> {
    let mut specs: Vec<EventSpec> = Vec::new();
    // One line per aggregate module, e.g. `specs.extend(crate::ticket::event_specs());`
    specs.extend(crate::contract::event_specs());
    specs.extend(crate::ticket::event_specs());
    specs.extend(crate::knowledge::event_specs());
    specs.extend(crate::user::event_specs());
    specs.extend(crate::policy::event_specs());
    specs.extend(crate::lead::event_specs());
    specs.extend(crate::approval::event_specs());
    specs.extend(crate::notification::event_specs());
    specs.extend(crate::privacy::event_specs());
    specs.sort_by(|a, b| (a.event_type, a.version).cmp(&(b.event_type, b.version)));
    specs
}
