//! What can be asked of an approval. `at` is the time the command was
//! accepted; the decider's roles arrive with the command.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::{Decision, Subject};
use crate::policy::LevelSpec;
use crate::value::{LongText, Money, ShortText};

#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalCommand {
    /// Opens an approval of `subject` with ordered `levels` (usually taken
    /// from the tenant's approval policy). Only on a stream that does not
    /// exist.
    Request {
        subject: Subject,
        /// The value at stake, when the policy depends on it.
        value: Option<Money>,
        levels: Vec<LevelSpec>,
        requested_by: Uuid,
        at: DateTime<Utc>,
    },
    /// One approver decides at the current level. A rejection or a request
    /// for changes needs a comment.
    Decide {
        decision: Decision,
        comment: Option<LongText>,
        actor: Uuid,
        actor_roles: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The current level is overdue (sent by the deadline worker).
    Escalate { level: u16, at: DateTime<Utc> },
    Cancel {
        reason: Option<ShortText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
}
