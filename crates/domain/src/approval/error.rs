//! Why an approval refused a command.

use chrono::{DateTime, Utc};

use super::values::Status;
use crate::error::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval not found")]
    NotFound,
    #[error("approval already exists")]
    AlreadyExists,
    #[error("invalid approval levels: {reason}")]
    InvalidLevels { reason: String },
    #[error("approval is {status} and takes no more decisions")]
    Closed { status: Status },
    #[error("not an eligible approver at level {level}")]
    NotEligible { level: u16 },
    #[error("already decided at level {level}")]
    AlreadyDecided { level: u16 },
    #[error("a rejection or a request for changes needs a comment")]
    CommentRequired,
    #[error("level {level} is not the current level {current}")]
    WrongLevel { level: u16, current: u16 },
    #[error("level {level} has no deadline")]
    NoDeadline { level: u16 },
    #[error("level {level} is not due before {due_at}")]
    NotDue { level: u16, due_at: DateTime<Utc> },
    #[error("level {level} is already escalated")]
    AlreadyEscalated { level: u16 },
}

impl ErrorCode for ApprovalError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "approval.not_found",
            Self::AlreadyExists => "approval.already_exists",
            Self::InvalidLevels { .. } => "approval.invalid_levels",
            Self::Closed { .. } => "approval.closed",
            Self::NotEligible { .. } => "approval.not_eligible",
            Self::AlreadyDecided { .. } => "approval.already_decided",
            Self::CommentRequired => "approval.comment_required",
            Self::WrongLevel { .. } => "approval.wrong_level",
            Self::NoDeadline { .. } => "approval.no_deadline",
            Self::NotDue { .. } => "approval.not_due",
            Self::AlreadyEscalated { .. } => "approval.already_escalated",
        }
    }
}
