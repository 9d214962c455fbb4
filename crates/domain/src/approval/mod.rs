//! The approval: a request to approve a subject (a lead's design, a
//! contract) through ordered levels, each needing `required` approvals
//! from its eligible approvers.
//!
//! ```text
//!   request ──▶ open (level 0) ──k approvals──▶ level 0 completed ──▶ open (level 1) ─ … ─▶ granted
//!                │  ▲                                                  (the last level completing)
//!                │  └─ escalate (current level overdue, once per level)
//!                ├─ reject ──────────▶ rejected
//!                ├─ request changes ─▶ changes_requested
//!                └─ cancel ──────────▶ cancelled
//! ```
//!
//! Rules:
//! - levels are decided in order; only the current level takes decisions,
//!   from its eligible approvers: a listed user, or anyone holding a listed
//!   role (`actor_roles` arrives with the command) — else
//!   `approval.not_eligible`;
//! - one decision per approver per level (`approval.already_decided`); the
//!   same person may decide again at a later level if eligible there;
//! - a level completes with its `required` approvals, and the next level
//!   opens at that moment; the last level completing grants the approval,
//!   so the approve that completes it yields decision recorded, level
//!   completed and granted together;
//! - one rejection at any level ends the approval; a request for changes
//!   ends it too (status `changes_requested`): the requester revises the
//!   subject and opens a new approval. Both need a comment;
//! - a granted, rejected, changes-requested or cancelled approval takes no
//!   more decisions, escalations or cancellations (`approval.closed`);
//! - escalation is for the current level of an open approval, once its
//!   `due_secs` have passed since it opened, and at most once per level;
//! - at request time the levels must make sense (`approval.invalid_levels`):
//!   at least one level and at most [`MAX_LEVELS`], each with approvers,
//!   `required` ≥ 1 and, when only users are listed, no more than there are
//!   distinct users.

mod command;
mod error;
mod event;
mod specs;
mod values;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::command::ApprovalCommand;
pub use self::error::ApprovalError;
pub use self::event::*;
pub use self::specs::event_specs;
pub use self::values::{Decision, Status, Subject, SubjectKind};
use crate::aggregate::Aggregate;
use crate::policy::{Approver, LevelSpec};

/// The most levels one approval may have.
pub const MAX_LEVELS: usize = 20;

/// An approval's state. `Default` is an approval that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    /// `None` while the stream does not exist.
    pub status: Option<Status>,
    pub subject: Option<Subject>,
    /// Who asked for the approval.
    pub requested_by: Option<Uuid>,
    pub levels: Vec<Level>,
    /// Index of the level deciding now.
    pub current_level: u16,
}

/// One level and what happened at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub spec: LevelSpec,
    /// Who approved at this level.
    pub approvals: BTreeSet<Uuid>,
    /// Who decided at this level, whatever the decision.
    pub decided: BTreeSet<Uuid>,
    /// When the level opened; `None` until the previous level completes.
    pub opened_at: Option<DateTime<Utc>>,
    pub escalated: bool,
    pub completed: bool,
}

impl Level {
    fn new(spec: LevelSpec) -> Self {
        Self {
            spec,
            approvals: BTreeSet::new(),
            decided: BTreeSet::new(),
            opened_at: None,
            escalated: false,
            completed: false,
        }
    }

    /// Whether `actor`, holding `roles`, may decide at this level.
    pub fn is_eligible(&self, actor: Uuid, roles: &[String]) -> bool {
        self.spec.approvers.iter().any(|approver| match approver {
            Approver::User(user) => *user == actor,
            Approver::Role(role) => roles.iter().any(|r| r == role),
        })
    }

    /// When the level is overdue, if it has a deadline and has opened.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let secs = i64::try_from(self.spec.due_secs?).ok()?;
        let delta = chrono::TimeDelta::try_seconds(secs)?;
        self.opened_at?.checked_add_signed(delta)
    }
}

/// Checks the levels of a new request.
fn validate_levels(levels: &[LevelSpec]) -> Result<(), ApprovalError> {
    let invalid = |reason: String| Err(ApprovalError::InvalidLevels { reason });
    if levels.is_empty() {
        return invalid("at least one level is needed".into());
    }
    if levels.len() > MAX_LEVELS {
        return invalid(format!("at most {MAX_LEVELS} levels, got {}", levels.len()));
    }
    for (index, level) in levels.iter().enumerate() {
        if level.approvers.is_empty() {
            return invalid(format!("level {index} has no approvers"));
        }
        if level.required == 0 {
            return invalid(format!("level {index} requires no approval"));
        }
        let has_role = level
            .approvers
            .iter()
            .any(|a| matches!(a, Approver::Role(_)));
        let users: BTreeSet<&Uuid> = level
            .approvers
            .iter()
            .filter_map(|a| match a {
                Approver::User(user) => Some(user),
                Approver::Role(_) => None,
            })
            .collect();
        if !has_role && usize::from(level.required) > users.len() {
            return invalid(format!(
                "level {index} requires {} approvals from {} users",
                level.required,
                users.len()
            ));
        }
    }
    Ok(())
}

impl Approval {
    /// The subject and current level of an open approval.
    fn open(&self) -> Result<(Subject, u16, &Level), ApprovalError> {
        let status = self.status.ok_or(ApprovalError::NotFound)?;
        if status != Status::Open {
            return Err(ApprovalError::Closed { status });
        }
        let subject = self.subject.ok_or(ApprovalError::NotFound)?;
        let level = self
            .levels
            .get(usize::from(self.current_level))
            // An open approval always has a current level; refuse rather
            // than panic if a state says otherwise.
            .ok_or(ApprovalError::Closed { status })?;
        Ok((subject, self.current_level, level))
    }
}

impl Aggregate for Approval {
    const STREAM_TYPE: &'static str = "approval";

    type Command = ApprovalCommand;
    type Event = ApprovalEvent;
    type Error = ApprovalError;

    fn decide(&self, command: &ApprovalCommand) -> Result<Vec<ApprovalEvent>, ApprovalError> {
        use ApprovalCommand as C;
        use ApprovalEvent as E;

        match command {
            C::Request {
                subject,
                value,
                levels,
                requested_by,
                at,
            } => {
                if self.status.is_some() {
                    return Err(ApprovalError::AlreadyExists);
                }
                validate_levels(levels)?;
                Ok(vec![E::Requested(ApprovalRequested {
                    subject: *subject,
                    value: *value,
                    levels: levels.clone(),
                    requested_by: *requested_by,
                    status: Status::Open,
                    at: *at,
                })])
            }
            C::Decide {
                decision,
                comment,
                actor,
                actor_roles,
                at,
            } => {
                let (subject, index, level) = self.open()?;
                if !level.is_eligible(*actor, actor_roles) {
                    return Err(ApprovalError::NotEligible { level: index });
                }
                if level.decided.contains(actor) {
                    return Err(ApprovalError::AlreadyDecided { level: index });
                }
                if *decision != Decision::Approve && comment.is_none() {
                    return Err(ApprovalError::CommentRequired);
                }
                let mut events = vec![E::DecisionRecorded(DecisionRecorded {
                    level: index,
                    approver: *actor,
                    decision: *decision,
                    comment: comment.clone(),
                    at: *at,
                })];
                match decision {
                    Decision::Approve => {
                        let approvals = level.approvals.len().saturating_add(1);
                        if approvals >= usize::from(level.spec.required) {
                            let next = index
                                .checked_add(1)
                                .filter(|next| usize::from(*next) < self.levels.len());
                            events.push(E::LevelCompleted(LevelCompleted {
                                level: index,
                                approvals: u16::try_from(approvals).unwrap_or(u16::MAX),
                                next_level: next,
                                at: *at,
                            }));
                            if next.is_none() {
                                events.push(E::Granted(ApprovalGranted {
                                    subject,
                                    status: Status::Granted,
                                    at: *at,
                                }));
                            }
                        }
                    }
                    Decision::Reject => events.push(E::Rejected(ApprovalRejected {
                        subject,
                        level: index,
                        by: *actor,
                        comment: comment.clone(),
                        status: Status::Rejected,
                        at: *at,
                    })),
                    Decision::RequestChanges => {
                        events.push(E::ChangesRequested(ChangesRequested {
                            subject,
                            level: index,
                            by: *actor,
                            comment: comment.clone(),
                            status: Status::ChangesRequested,
                            at: *at,
                        }))
                    }
                }
                Ok(events)
            }
            C::Escalate { level, at } => {
                let (_, index, current) = self.open()?;
                if *level != index {
                    return Err(ApprovalError::WrongLevel {
                        level: *level,
                        current: index,
                    });
                }
                if current.escalated {
                    return Err(ApprovalError::AlreadyEscalated { level: index });
                }
                let due_at = current
                    .due_at()
                    .ok_or(ApprovalError::NoDeadline { level: index })?;
                if *at < due_at {
                    return Err(ApprovalError::NotDue {
                        level: index,
                        due_at,
                    });
                }
                Ok(vec![E::Escalated(ApprovalEscalated {
                    level: index,
                    due_at,
                    at: *at,
                })])
            }
            C::Cancel { reason, actor, at } => {
                let (subject, _, _) = self.open()?;
                Ok(vec![E::Cancelled(ApprovalCancelled {
                    subject,
                    reason: reason.clone(),
                    by: *actor,
                    status: Status::Cancelled,
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &ApprovalEvent) -> Self {
        use ApprovalEvent as E;

        match event {
            E::Requested(e) => {
                self.status = Some(Status::Open);
                self.subject = Some(e.subject);
                self.requested_by = Some(e.requested_by);
                self.levels = e.levels.iter().cloned().map(Level::new).collect();
                self.current_level = 0;
                if let Some(first) = self.levels.first_mut() {
                    first.opened_at = Some(e.at);
                }
            }
            E::DecisionRecorded(e) => {
                if let Some(level) = self.levels.get_mut(usize::from(e.level)) {
                    level.decided.insert(e.approver);
                    if e.decision == Decision::Approve {
                        level.approvals.insert(e.approver);
                    }
                }
            }
            E::LevelCompleted(e) => {
                if let Some(level) = self.levels.get_mut(usize::from(e.level)) {
                    level.completed = true;
                }
                if let Some(next) = e.next_level {
                    self.current_level = next;
                    if let Some(level) = self.levels.get_mut(usize::from(next)) {
                        level.opened_at = Some(e.at);
                    }
                }
            }
            E::Granted(_) => self.status = Some(Status::Granted),
            E::Rejected(_) => self.status = Some(Status::Rejected),
            E::ChangesRequested(_) => self.status = Some(Status::ChangesRequested),
            E::Escalated(e) => {
                if let Some(level) = self.levels.get_mut(usize::from(e.level)) {
                    level.escalated = true;
                }
            }
            E::Cancelled(_) => self.status = Some(Status::Cancelled),
        }
        self
    }
}
