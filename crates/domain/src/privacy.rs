//! The record of personal data's life: erasures of data subjects, and
//! auditors' reads of personal data. Both are facts the system records as
//! they happen (the API appends them); no command decides them.
//!
//! - `data_subject.erased` (stream type `data_subject`, one stream per
//!   subject: [`subject_stream`]): the subject's data keys were destroyed;
//!   their personal data reads as erased from then on.
//! - `access_log.personal_data_read` (stream type `access_log`, one stream
//!   per tenant: [`access_log_stream`]): an auditor read events or states
//!   revealing these subjects' personal data.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::catalog::EventSpec;
use crate::event::DomainEvent;

/// The stream recording `subject`'s erasures in `tenant`.
pub fn subject_stream(tenant: &str, subject: Uuid) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("chronicle-data-subject:{tenant}:{subject}").as_bytes(),
    )
}

/// The stream of `tenant`'s access log.
pub fn access_log_stream(tenant: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("chronicle-access-log:{tenant}").as_bytes(),
    )
}

/// `data_subject.erased`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SubjectErased {
    /// The person, or the lead or contract whose contact they are.
    pub subject_id: Uuid,
    /// The admin who erased it.
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum DataSubjectEvent {
    #[serde(rename = "data_subject.erased")]
    Erased(SubjectErased),
}

impl DomainEvent for DataSubjectEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Erased(_) => "data_subject.erased",
        }
    }
}

/// `access_log.personal_data_read`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PersonalDataRead {
    /// The reader (their token's subject).
    pub reader: String,
    pub roles: Vec<String>,
    /// What was read: the request's method and path.
    pub resource: String,
    /// Whose personal data it revealed.
    pub subjects: Vec<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum AccessLogEvent {
    #[serde(rename = "access_log.personal_data_read")]
    PersonalDataRead(PersonalDataRead),
}

impl DomainEvent for AccessLogEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PersonalDataRead(_) => "access_log.personal_data_read",
        }
    }
}

/// The catalogue entries of the privacy events.
pub fn event_specs() -> Vec<EventSpec> {
    vec![
        EventSpec {
            stream_type: "data_subject",
            event_type: "data_subject.erased",
            version: 1,
            schema: schemars::schema_for!(SubjectErased),
            example: json!({
                "subject_id": "0190a5b2-7c3d-7e4f-8a1b-00000000c001",
                "by": "0190a5b2-7c3d-7e4f-8a1b-00000000a001",
                "at": "2026-11-30T10:00:00Z"
            }),
        },
        EventSpec {
            stream_type: "access_log",
            event_type: "access_log.personal_data_read",
            version: 1,
            schema: schemars::schema_for!(PersonalDataRead),
            example: json!({
                "reader": "0190a5b2-7c3d-7e4f-8a1b-00000000d001",
                "roles": ["auditor"],
                "resource": "GET /api/v1/tickets/0190a5b2-7c3d-7e4f-8a1b-0000000000aa/history",
                "subjects": ["0190a5b2-7c3d-7e4f-8a1b-00000000c001"],
                "at": "2026-11-30T10:05:00Z"
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode, encode};

    #[test]
    fn streams_are_per_tenant_and_subject() {
        let s = Uuid::from_u128(1);
        assert_ne!(subject_stream("a", s), subject_stream("b", s));
        assert_ne!(
            subject_stream("a", s),
            subject_stream("a", Uuid::from_u128(2))
        );
        assert_ne!(access_log_stream("a"), access_log_stream("b"));
    }

    #[test]
    fn the_examples_decode_and_round_trip() {
        for spec in event_specs() {
            let data = spec.example.clone();
            let back = match spec.stream_type {
                "data_subject" => {
                    let e: DataSubjectEvent = decode(spec.event_type, 1, data).unwrap();
                    encode(&e).data
                }
                _ => {
                    let e: AccessLogEvent = decode(spec.event_type, 1, data).unwrap();
                    encode(&e).data
                }
            };
            assert_eq!(back, spec.example);
        }
    }
}
