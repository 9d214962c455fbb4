//! What happened to an approval. Outcome events carry the subject and the
//! new status, so that projections and the process manager that drives the
//! subject stay dumb.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{Decision, Status, Subject};
use crate::event::DomainEvent;
use crate::policy::LevelSpec;
use crate::value::{LongText, Money, ShortText};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ApprovalEvent {
    #[serde(rename = "approval.requested")]
    Requested(ApprovalRequested),
    #[serde(rename = "approval.decision_recorded")]
    DecisionRecorded(DecisionRecorded),
    #[serde(rename = "approval.level_completed")]
    LevelCompleted(LevelCompleted),
    #[serde(rename = "approval.granted")]
    Granted(ApprovalGranted),
    #[serde(rename = "approval.rejected")]
    Rejected(ApprovalRejected),
    #[serde(rename = "approval.changes_requested")]
    ChangesRequested(ChangesRequested),
    #[serde(rename = "approval.escalated")]
    Escalated(ApprovalEscalated),
    #[serde(rename = "approval.cancelled")]
    Cancelled(ApprovalCancelled),
}

/// A new approval; level 0 opens at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalRequested {
    pub subject: Subject,
    pub value: Option<Money>,
    pub levels: Vec<LevelSpec>,
    pub requested_by: Uuid,
    /// Always `open`.
    pub status: Status,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecorded {
    /// Index of the level decided at, from 0.
    pub level: u16,
    pub approver: Uuid,
    pub decision: Decision,
    pub comment: Option<LongText>,
    pub at: DateTime<Utc>,
}

/// A level reached its required approvals; the next one, if any, opens at
/// `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelCompleted {
    pub level: u16,
    pub approvals: u16,
    pub next_level: Option<u16>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalGranted {
    pub subject: Subject,
    /// Always `granted`.
    pub status: Status,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalRejected {
    pub subject: Subject,
    pub level: u16,
    pub by: Uuid,
    pub comment: Option<LongText>,
    /// Always `rejected`.
    pub status: Status,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangesRequested {
    pub subject: Subject,
    pub level: u16,
    pub by: Uuid,
    pub comment: Option<LongText>,
    /// Always `changes_requested`.
    pub status: Status,
    pub at: DateTime<Utc>,
}

/// The current level missed its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalEscalated {
    pub level: u16,
    pub due_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalCancelled {
    pub subject: Subject,
    pub reason: Option<ShortText>,
    pub by: Uuid,
    /// Always `cancelled`.
    pub status: Status,
    pub at: DateTime<Utc>,
}

impl DomainEvent for ApprovalEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Requested(_) => "approval.requested",
            Self::DecisionRecorded(_) => "approval.decision_recorded",
            Self::LevelCompleted(_) => "approval.level_completed",
            Self::Granted(_) => "approval.granted",
            Self::Rejected(_) => "approval.rejected",
            Self::ChangesRequested(_) => "approval.changes_requested",
            Self::Escalated(_) => "approval.escalated",
            Self::Cancelled(_) => "approval.cancelled",
        }
    }
}
