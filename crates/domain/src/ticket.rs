//! Customer support tickets (seed 004): stream type `ticket`, stream id =
//! the ticket id.
//!
//! ```text
//!  open_ticket
//!      │
//!      ▼      assign_expert          accept            start_work
//!    open ───────────────► assigned ───────► accepted ───────────► in_progress ◄──┐
//! (unassigned)               │                  │                      │          │
//!      ▲      reject         │     reject       │               resolve│          │reopen
//!      └─────────────────────┴──────────────────┘                      ▼          │
//!         (by the assigned expert; they are never                   resolved ─────┘
//!          assigned to this ticket again)                              │
//!                                                                 close│
//!                                                                      ▼
//!                                                                    closed (final)
//! ```
//!
//! At any status before `closed`: comments. Before `resolved`: priority
//! changes and escalations. SLA breaches (per stage: assign, first
//! response, resolve) are recorded by the timer worker. Once resolved (or
//! closed), one survey may be sent and answered once by the customer.
//!
//! Rules:
//! - accept, reject, start work and resolve are done by the assigned
//!   expert only (`ticket.not_assigned_expert`); who else may act (agents,
//!   managers, the customer) is the API's role check;
//! - a rejection returns the ticket to `open` (unassigned) and remembers
//!   the expert: they can never be assigned to this ticket again
//!   (`ticket.expert_rejected_before`). Rejection is possible until work
//!   starts (`ticket.work_started`); after that the expert resolves it;
//! - there is no direct re-assignment: another expert is refused with
//!   `ticket.already_assigned` while one holds the ticket. The matching
//!   process manager reacts to `ticket.opened` and `ticket.rejected`;
//! - **reopen is possible from `resolved` only**: the ticket goes back to
//!   `in_progress` with the same expert. `closed` is final: a customer
//!   with the same problem opens a new ticket. This keeps closed tickets'
//!   reports and surveys stable;
//! - `closed` refuses everything (`ticket.closed`) except the survey and a
//!   repeated close;
//! - an SLA stage is measured from the ticket's opening and breaches at
//!   most once per ticket: a breach is refused before its due time
//!   (`ticket.sla_not_due`) and when the stage was completed in time
//!   (`ticket.sla_met`); a late stage completion still counts as a breach.
//!   The first response is the assigned expert's acceptance or first
//!   comment, whichever comes first;
//! - the survey is sent once (`ticket.survey_already_sent`) after the
//!   resolution (`ticket.not_resolved`), answered once
//!   (`ticket.survey_already_answered`), only after it was sent
//!   (`ticket.survey_not_sent`) and only by the ticket's customer
//!   (`ticket.not_customer`);
//! - idempotent where natural: assigning the expert who already holds the
//!   ticket, accepting again, starting work again, changing to the same
//!   priority, closing a closed ticket, re-sending the same survey, and
//!   recording an already recorded breach produce no event;
//! - the customer contact's name and email are personal data
//!   (`/contact/name`, `/contact/email` in `ticket.opened`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::DomainEvent;
pub use crate::policy::SlaStage;
use crate::value::{Email, LongText, Priority, ShortText, SurveyScore};

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Opened, no expert assigned (also after a rejection).
    Open,
    Assigned,
    Accepted,
    InProgress,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assigned => "assigned",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
}

/// The customer's contact person for this ticket (personal data).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Contact {
    pub name: ShortText,
    pub email: Email,
}

/// Who assigned the expert: the matching process manager, or a manager by
/// hand.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssignedBy {
    Matching,
    Manager { manager_id: Uuid },
}

/// Who escalated: the system (an SLA timer) or a user by hand.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EscalatedBy {
    System,
    User { user_id: Uuid },
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    Open {
        /// Who opens it: the customer, or an agent for the customer.
        actor: Uuid,
        customer_id: Uuid,
        contact: Contact,
        product: ShortText,
        category: ShortText,
        priority: Priority,
        required_skill: ShortText,
        title: ShortText,
        description: LongText,
        at: DateTime<Utc>,
    },
    AssignExpert {
        expert_id: Uuid,
        by: AssignedBy,
        at: DateTime<Utc>,
    },
    Accept {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    Reject {
        actor: Uuid,
        reason: LongText,
        at: DateTime<Utc>,
    },
    StartWork {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    Comment {
        actor: Uuid,
        comment_id: Uuid,
        body: LongText,
        at: DateTime<Utc>,
    },
    ChangePriority {
        actor: Uuid,
        priority: Priority,
        at: DateTime<Utc>,
    },
    Resolve {
        actor: Uuid,
        resolution: LongText,
        at: DateTime<Utc>,
    },
    Reopen {
        actor: Uuid,
        reason: LongText,
        at: DateTime<Utc>,
    },
    Close {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Sent by the SLA timer worker when `stage` fell due at `due`.
    RecordSlaBreach {
        stage: SlaStage,
        due: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Escalate {
        by: EscalatedBy,
        reason: ShortText,
        at: DateTime<Utc>,
    },
    /// Sent by the survey process manager after the resolution.
    SendSurvey {
        survey_id: Uuid,
        at: DateTime<Utc>,
    },
    AnswerSurvey {
        actor: Uuid,
        survey_id: Uuid,
        score: SurveyScore,
        comment: Option<LongText>,
        at: DateTime<Utc>,
    },
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketOpened {
    pub customer_id: Uuid,
    pub contact: Contact,
    pub product: ShortText,
    pub category: ShortText,
    pub priority: Priority,
    pub required_skill: ShortText,
    pub title: ShortText,
    pub description: LongText,
    pub opened_by: Uuid,
    /// Always `open`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ExpertAssigned {
    pub expert_id: Uuid,
    pub by: AssignedBy,
    /// Always `assigned`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketAccepted {
    pub expert_id: Uuid,
    /// Always `accepted`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketRejected {
    pub expert_id: Uuid,
    pub reason: LongText,
    /// Every expert who rejected this ticket so far, this one included:
    /// matching must not pick any of them.
    pub excluded_experts: Vec<Uuid>,
    /// Always `open`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct WorkStarted {
    pub expert_id: Uuid,
    /// Always `in_progress`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketCommented {
    pub comment_id: Uuid,
    pub author_id: Uuid,
    pub body: LongText,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PriorityChanged {
    pub previous: Priority,
    pub priority: Priority,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketResolved {
    pub resolution: LongText,
    pub expert_id: Uuid,
    /// Always `resolved`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketReopened {
    pub reason: LongText,
    pub by: Uuid,
    /// The expert who keeps working on it.
    pub expert_id: Uuid,
    /// Always `in_progress`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketClosed {
    pub by: Uuid,
    /// Always `closed`.
    pub status: TicketStatus,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SlaBreached {
    pub stage: SlaStage,
    /// The ticket's priority when the breach was recorded.
    pub priority: Priority,
    pub due: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct TicketEscalated {
    /// The new escalation level: 1 for the first escalation, then 2, ...
    pub level: u8,
    pub reason: ShortText,
    pub by: EscalatedBy,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SurveySent {
    pub survey_id: Uuid,
    /// Who the survey goes to.
    pub customer_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SurveyAnswered {
    pub survey_id: Uuid,
    pub customer_id: Uuid,
    /// The expert who worked on the ticket, for expert reports.
    pub expert_id: Option<Uuid>,
    pub score: SurveyScore,
    pub comment: Option<LongText>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum TicketEvent {
    #[serde(rename = "ticket.opened")]
    Opened(TicketOpened),
    #[serde(rename = "ticket.expert_assigned")]
    ExpertAssigned(ExpertAssigned),
    #[serde(rename = "ticket.accepted")]
    Accepted(TicketAccepted),
    #[serde(rename = "ticket.rejected")]
    Rejected(TicketRejected),
    #[serde(rename = "ticket.work_started")]
    WorkStarted(WorkStarted),
    #[serde(rename = "ticket.commented")]
    Commented(TicketCommented),
    #[serde(rename = "ticket.priority_changed")]
    PriorityChanged(PriorityChanged),
    #[serde(rename = "ticket.resolved")]
    Resolved(TicketResolved),
    #[serde(rename = "ticket.reopened")]
    Reopened(TicketReopened),
    #[serde(rename = "ticket.closed")]
    Closed(TicketClosed),
    #[serde(rename = "ticket.sla_breached")]
    SlaBreached(SlaBreached),
    #[serde(rename = "ticket.escalated")]
    Escalated(TicketEscalated),
    #[serde(rename = "ticket.survey_sent")]
    SurveySent(SurveySent),
    #[serde(rename = "ticket.survey_answered")]
    SurveyAnswered(SurveyAnswered),
}

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened(_) => "ticket.opened",
            Self::ExpertAssigned(_) => "ticket.expert_assigned",
            Self::Accepted(_) => "ticket.accepted",
            Self::Rejected(_) => "ticket.rejected",
            Self::WorkStarted(_) => "ticket.work_started",
            Self::Commented(_) => "ticket.commented",
            Self::PriorityChanged(_) => "ticket.priority_changed",
            Self::Resolved(_) => "ticket.resolved",
            Self::Reopened(_) => "ticket.reopened",
            Self::Closed(_) => "ticket.closed",
            Self::SlaBreached(_) => "ticket.sla_breached",
            Self::Escalated(_) => "ticket.escalated",
            Self::SurveySent(_) => "ticket.survey_sent",
            Self::SurveyAnswered(_) => "ticket.survey_answered",
        }
    }

    fn personal_fields(&self) -> &'static [&'static str] {
        match self {
            Self::Opened(_) => &["/contact/name", "/contact/email"],
            _ => &[],
        }
    }
    fn personal_subject(&self) -> Option<Uuid> {
        match self {
            // The contact is the customer's.
            Self::Opened(e) => Some(e.customer_id),
            _ => None,
        }
    }
}

impl TicketEvent {
    /// The status the ticket has after this event, for events that change it.
    pub fn new_status(&self) -> Option<TicketStatus> {
        match self {
            Self::Opened(_) | Self::Rejected(_) => Some(TicketStatus::Open),
            Self::ExpertAssigned(_) => Some(TicketStatus::Assigned),
            Self::Accepted(_) => Some(TicketStatus::Accepted),
            Self::WorkStarted(_) | Self::Reopened(_) => Some(TicketStatus::InProgress),
            Self::Resolved(_) => Some(TicketStatus::Resolved),
            Self::Closed(_) => Some(TicketStatus::Closed),
            Self::Commented(_)
            | Self::PriorityChanged(_)
            | Self::SlaBreached(_)
            | Self::Escalated(_)
            | Self::SurveySent(_)
            | Self::SurveyAnswered(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket not found")]
    NotFound,
    #[error("ticket already exists")]
    AlreadyExists,
    #[error("ticket is closed")]
    Closed,
    #[error("ticket is resolved")]
    Resolved,
    #[error("ticket is already assigned to another expert")]
    AlreadyAssigned,
    #[error("this expert rejected the ticket before and cannot be assigned to it again")]
    ExpertRejectedBefore,
    #[error("no expert is assigned to the ticket")]
    NotAssigned,
    #[error("only the assigned expert may do this")]
    NotAssignedExpert,
    #[error("the assigned expert has not accepted the ticket yet")]
    NotAccepted,
    #[error("work on the ticket has started; it can no longer be rejected")]
    WorkStarted,
    #[error("work on the ticket has not started")]
    NotInProgress,
    #[error("ticket is not resolved")]
    NotResolved,
    #[error("the sla stage is not due yet")]
    SlaNotDue,
    #[error("the sla stage was met in time")]
    SlaMet,
    #[error("the ticket cannot be escalated further")]
    EscalationLimit,
    #[error("a survey was already sent for this ticket")]
    SurveyAlreadySent,
    #[error("no survey was sent for this ticket")]
    SurveyNotSent,
    #[error("the survey does not belong to this ticket")]
    UnknownSurvey,
    #[error("the survey was already answered")]
    SurveyAlreadyAnswered,
    #[error("only the ticket's customer may do this")]
    NotCustomer,
}

impl ErrorCode for TicketError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "ticket.not_found",
            Self::AlreadyExists => "ticket.already_exists",
            Self::Closed => "ticket.closed",
            Self::Resolved => "ticket.resolved",
            Self::AlreadyAssigned => "ticket.already_assigned",
            Self::ExpertRejectedBefore => "ticket.expert_rejected_before",
            Self::NotAssigned => "ticket.not_assigned",
            Self::NotAssignedExpert => "ticket.not_assigned_expert",
            Self::NotAccepted => "ticket.not_accepted",
            Self::WorkStarted => "ticket.work_started",
            Self::NotInProgress => "ticket.not_in_progress",
            Self::NotResolved => "ticket.not_resolved",
            Self::SlaNotDue => "ticket.sla_not_due",
            Self::SlaMet => "ticket.sla_met",
            Self::EscalationLimit => "ticket.escalation_limit",
            Self::SurveyAlreadySent => "ticket.survey_already_sent",
            Self::SurveyNotSent => "ticket.survey_not_sent",
            Self::UnknownSurvey => "ticket.unknown_survey",
            Self::SurveyAlreadyAnswered => "ticket.survey_already_answered",
            Self::NotCustomer => "ticket.not_customer",
        }
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// One ticket, as far as decisions need it. `Default` = not opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ticket {
    pub status: Option<TicketStatus>,
    pub customer_id: Option<Uuid>,
    pub priority: Option<Priority>,
    /// The expert holding the ticket; `None` exactly while `open`.
    pub expert_id: Option<Uuid>,
    /// Experts who rejected the ticket, in order; never assigned again.
    pub rejected_by: Vec<Uuid>,
    pub opened_at: Option<DateTime<Utc>>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    /// When the ticket was last resolved; cleared by a reopen.
    pub resolved_at: Option<DateTime<Utc>>,
    pub breached: BTreeSet<SlaStage>,
    pub escalation_level: u8,
    pub survey_id: Option<Uuid>,
    pub survey_answered: bool,
}

impl Ticket {
    /// The assigned expert, if `actor` is them.
    fn assigned_expert(&self, actor: Uuid) -> Result<Uuid, TicketError> {
        match self.expert_id {
            None => Err(TicketError::NotAssigned),
            Some(expert) if expert == actor => Ok(expert),
            Some(_) => Err(TicketError::NotAssignedExpert),
        }
    }

    /// When `stage` was completed, if it was.
    pub fn stage_completed_at(&self, stage: SlaStage) -> Option<DateTime<Utc>> {
        match stage {
            SlaStage::Assign => self.first_assigned_at,
            SlaStage::FirstResponse => self.first_response_at,
            SlaStage::Resolve => self.resolved_at,
        }
    }
}

/// Refuses work on a resolved or closed ticket.
fn not_finished(status: TicketStatus) -> Result<(), TicketError> {
    match status {
        TicketStatus::Closed => Err(TicketError::Closed),
        TicketStatus::Resolved => Err(TicketError::Resolved),
        _ => Ok(()),
    }
}

impl Aggregate for Ticket {
    const STREAM_TYPE: &'static str = "ticket";

    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketError;

    fn decide(&self, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        use TicketStatus as S;

        if let TicketCommand::Open {
            actor,
            customer_id,
            contact,
            product,
            category,
            priority,
            required_skill,
            title,
            description,
            at,
        } = command
        {
            if self.status.is_some() {
                return Err(TicketError::AlreadyExists);
            }
            return Ok(vec![TicketEvent::Opened(TicketOpened {
                customer_id: *customer_id,
                contact: contact.clone(),
                product: product.clone(),
                category: category.clone(),
                priority: *priority,
                required_skill: required_skill.clone(),
                title: title.clone(),
                description: description.clone(),
                opened_by: *actor,
                status: S::Open,
                at: *at,
            })]);
        }
        let Some(status) = self.status else {
            return Err(TicketError::NotFound);
        };

        match command {
            TicketCommand::Open { .. } => Err(TicketError::AlreadyExists),

            TicketCommand::AssignExpert { expert_id, by, at } => {
                not_finished(status)?;
                if self.rejected_by.contains(expert_id) {
                    return Err(TicketError::ExpertRejectedBefore);
                }
                match self.expert_id {
                    None => Ok(vec![TicketEvent::ExpertAssigned(ExpertAssigned {
                        expert_id: *expert_id,
                        by: *by,
                        status: S::Assigned,
                        at: *at,
                    })]),
                    Some(current) if current == *expert_id => Ok(vec![]),
                    Some(_) => Err(TicketError::AlreadyAssigned),
                }
            }

            TicketCommand::Accept { actor, at } => {
                not_finished(status)?;
                let expert_id = self.assigned_expert(*actor)?;
                match status {
                    S::Assigned => Ok(vec![TicketEvent::Accepted(TicketAccepted {
                        expert_id,
                        status: S::Accepted,
                        at: *at,
                    })]),
                    _ => Ok(vec![]),
                }
            }

            TicketCommand::Reject { actor, reason, at } => {
                not_finished(status)?;
                let expert_id = self.assigned_expert(*actor)?;
                if status == S::InProgress {
                    return Err(TicketError::WorkStarted);
                }
                let mut excluded_experts = self.rejected_by.clone();
                excluded_experts.push(expert_id);
                Ok(vec![TicketEvent::Rejected(TicketRejected {
                    expert_id,
                    reason: reason.clone(),
                    excluded_experts,
                    status: S::Open,
                    at: *at,
                })])
            }

            TicketCommand::StartWork { actor, at } => {
                not_finished(status)?;
                let expert_id = self.assigned_expert(*actor)?;
                match status {
                    S::Assigned => Err(TicketError::NotAccepted),
                    S::Accepted => Ok(vec![TicketEvent::WorkStarted(WorkStarted {
                        expert_id,
                        status: S::InProgress,
                        at: *at,
                    })]),
                    _ => Ok(vec![]),
                }
            }

            TicketCommand::Comment {
                actor,
                comment_id,
                body,
                at,
            } => {
                if status == S::Closed {
                    return Err(TicketError::Closed);
                }
                Ok(vec![TicketEvent::Commented(TicketCommented {
                    comment_id: *comment_id,
                    author_id: *actor,
                    body: body.clone(),
                    at: *at,
                })])
            }

            TicketCommand::ChangePriority {
                actor,
                priority,
                at,
            } => {
                not_finished(status)?;
                match self.priority {
                    Some(previous) if previous != *priority => {
                        Ok(vec![TicketEvent::PriorityChanged(PriorityChanged {
                            previous,
                            priority: *priority,
                            by: *actor,
                            at: *at,
                        })])
                    }
                    _ => Ok(vec![]),
                }
            }

            TicketCommand::Resolve {
                actor,
                resolution,
                at,
            } => {
                not_finished(status)?;
                let expert_id = self.assigned_expert(*actor)?;
                if status != S::InProgress {
                    return Err(TicketError::NotInProgress);
                }
                Ok(vec![TicketEvent::Resolved(TicketResolved {
                    resolution: resolution.clone(),
                    expert_id,
                    status: S::Resolved,
                    at: *at,
                })])
            }

            TicketCommand::Reopen { actor, reason, at } => match (status, self.expert_id) {
                (S::Closed, _) => Err(TicketError::Closed),
                (S::Resolved, Some(expert_id)) => Ok(vec![TicketEvent::Reopened(TicketReopened {
                    reason: reason.clone(),
                    by: *actor,
                    expert_id,
                    status: S::InProgress,
                    at: *at,
                })]),
                _ => Err(TicketError::NotResolved),
            },

            TicketCommand::Close { actor, at } => match status {
                S::Closed => Ok(vec![]),
                S::Resolved => Ok(vec![TicketEvent::Closed(TicketClosed {
                    by: *actor,
                    status: S::Closed,
                    at: *at,
                })]),
                _ => Err(TicketError::NotResolved),
            },

            TicketCommand::RecordSlaBreach { stage, due, at } => {
                if status == S::Closed {
                    return Err(TicketError::Closed);
                }
                if at < due {
                    return Err(TicketError::SlaNotDue);
                }
                if self
                    .stage_completed_at(*stage)
                    .is_some_and(|done| done <= *due)
                {
                    return Err(TicketError::SlaMet);
                }
                if self.breached.contains(stage) {
                    return Ok(vec![]);
                }
                let Some(priority) = self.priority else {
                    return Err(TicketError::NotFound);
                };
                Ok(vec![TicketEvent::SlaBreached(SlaBreached {
                    stage: *stage,
                    priority,
                    due: *due,
                    at: *at,
                })])
            }

            TicketCommand::Escalate { by, reason, at } => {
                not_finished(status)?;
                let level = self
                    .escalation_level
                    .checked_add(1)
                    .ok_or(TicketError::EscalationLimit)?;
                Ok(vec![TicketEvent::Escalated(TicketEscalated {
                    level,
                    reason: reason.clone(),
                    by: *by,
                    at: *at,
                })])
            }

            TicketCommand::SendSurvey { survey_id, at } => {
                if !matches!(status, S::Resolved | S::Closed) {
                    return Err(TicketError::NotResolved);
                }
                match self.survey_id {
                    Some(sent) if sent == *survey_id => Ok(vec![]),
                    Some(_) => Err(TicketError::SurveyAlreadySent),
                    None => {
                        let Some(customer_id) = self.customer_id else {
                            return Err(TicketError::NotFound);
                        };
                        Ok(vec![TicketEvent::SurveySent(SurveySent {
                            survey_id: *survey_id,
                            customer_id,
                            at: *at,
                        })])
                    }
                }
            }

            TicketCommand::AnswerSurvey {
                actor,
                survey_id,
                score,
                comment,
                at,
            } => {
                let Some(sent) = self.survey_id else {
                    return Err(TicketError::SurveyNotSent);
                };
                if sent != *survey_id {
                    return Err(TicketError::UnknownSurvey);
                }
                if self.customer_id != Some(*actor) {
                    return Err(TicketError::NotCustomer);
                }
                if self.survey_answered {
                    return Err(TicketError::SurveyAlreadyAnswered);
                }
                Ok(vec![TicketEvent::SurveyAnswered(SurveyAnswered {
                    survey_id: sent,
                    customer_id: *actor,
                    expert_id: self.expert_id,
                    score: *score,
                    comment: comment.clone(),
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &TicketEvent) -> Self {
        if let Some(status) = event.new_status() {
            self.status = Some(status);
        }
        match event {
            TicketEvent::Opened(e) => {
                self.customer_id = Some(e.customer_id);
                self.priority = Some(e.priority);
                self.opened_at = Some(e.at);
            }
            TicketEvent::ExpertAssigned(e) => {
                self.expert_id = Some(e.expert_id);
                self.first_assigned_at.get_or_insert(e.at);
            }
            TicketEvent::Accepted(e) => {
                self.first_response_at.get_or_insert(e.at);
            }
            TicketEvent::Rejected(e) => {
                self.expert_id = None;
                if !self.rejected_by.contains(&e.expert_id) {
                    self.rejected_by.push(e.expert_id);
                }
            }
            TicketEvent::WorkStarted(_) | TicketEvent::Closed(_) => {}
            TicketEvent::Commented(e) => {
                if self.expert_id == Some(e.author_id) {
                    self.first_response_at.get_or_insert(e.at);
                }
            }
            TicketEvent::PriorityChanged(e) => self.priority = Some(e.priority),
            TicketEvent::Resolved(e) => self.resolved_at = Some(e.at),
            TicketEvent::Reopened(_) => self.resolved_at = None,
            TicketEvent::SlaBreached(e) => {
                self.breached.insert(e.stage);
            }
            TicketEvent::Escalated(e) => self.escalation_level = e.level,
            TicketEvent::SurveySent(e) => self.survey_id = Some(e.survey_id),
            TicketEvent::SurveyAnswered(_) => self.survey_answered = true,
        }
        self
    }
}

// ---------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------

/// The catalogue entries of the ticket events.
pub fn event_specs() -> Vec<EventSpec> {
    let customer = "0190a5b2-7c3d-7e4f-8a1b-00000000c001";
    let expert = "0190a5b2-7c3d-7e4f-8a1b-00000000e001";
    let manager = "0190a5b2-7c3d-7e4f-8a1b-00000000a001";
    let survey = "0190a5b2-7c3d-7e4f-8a1b-00000000b001";
    let spec = |event_type: &'static str, schema, example| EventSpec {
        stream_type: Ticket::STREAM_TYPE,
        event_type,
        version: 1,
        schema,
        example,
    };
    vec![
        spec(
            "ticket.opened",
            schemars::schema_for!(TicketOpened),
            json!({
                "customer_id": customer,
                "contact": {"name": "Dana Whitfield", "email": "dana.whitfield@example.com"},
                "product": "Penultimate SmartHub 3",
                "category": "connectivity",
                "priority": "P2",
                "required_skill": "home networking",
                "title": "Hub drops Wi-Fi every evening",
                "description": "Since the 2.4 firmware update the hub loses its Wi-Fi \
                                connection around 7pm and only comes back after a reboot.",
                "opened_by": customer,
                "status": "open",
                "at": "2024-06-03T18:42:00Z",
            }),
        ),
        spec(
            "ticket.expert_assigned",
            schemars::schema_for!(ExpertAssigned),
            json!({
                "expert_id": expert,
                "by": {"kind": "manager", "manager_id": manager},
                "status": "assigned",
                "at": "2024-06-03T18:50:00Z",
            }),
        ),
        spec(
            "ticket.accepted",
            schemars::schema_for!(TicketAccepted),
            json!({"expert_id": expert, "status": "accepted", "at": "2024-06-03T19:05:00Z"}),
        ),
        spec(
            "ticket.rejected",
            schemars::schema_for!(TicketRejected),
            json!({
                "expert_id": expert,
                "reason": "Outside my region; the customer needs an on-site visit.",
                "excluded_experts": [expert],
                "status": "open",
                "at": "2024-06-03T19:01:00Z",
            }),
        ),
        spec(
            "ticket.work_started",
            schemars::schema_for!(WorkStarted),
            json!({"expert_id": expert, "status": "in_progress", "at": "2024-06-03T19:10:00Z"}),
        ),
        spec(
            "ticket.commented",
            schemars::schema_for!(TicketCommented),
            json!({
                "comment_id": "0190a5b2-7c3d-7e4f-8a1b-00000000d001",
                "author_id": expert,
                "body": "Could you send the hub's event log? Settings > Diagnostics > Export.",
                "at": "2024-06-03T19:12:00Z",
            }),
        ),
        spec(
            "ticket.priority_changed",
            schemars::schema_for!(PriorityChanged),
            json!({"previous": "P2", "priority": "P1", "by": manager, "at": "2024-06-04T08:00:00Z"}),
        ),
        spec(
            "ticket.resolved",
            schemars::schema_for!(TicketResolved),
            json!({
                "resolution": "Rolled the hub back to firmware 2.3.9 and disabled band steering.",
                "expert_id": expert,
                "status": "resolved",
                "at": "2024-06-04T10:30:00Z",
            }),
        ),
        spec(
            "ticket.reopened",
            schemars::schema_for!(TicketReopened),
            json!({
                "reason": "The drop-outs came back last night.",
                "by": customer,
                "expert_id": expert,
                "status": "in_progress",
                "at": "2024-06-05T07:45:00Z",
            }),
        ),
        spec(
            "ticket.closed",
            schemars::schema_for!(TicketClosed),
            json!({"by": customer, "status": "closed", "at": "2024-06-07T09:00:00Z"}),
        ),
        spec(
            "ticket.sla_breached",
            schemars::schema_for!(SlaBreached),
            json!({
                "stage": "first_response",
                "priority": "P2",
                "due": "2024-06-03T22:42:00Z",
                "at": "2024-06-03T22:42:05Z",
            }),
        ),
        spec(
            "ticket.escalated",
            schemars::schema_for!(TicketEscalated),
            json!({
                "level": 1,
                "reason": "first response SLA breached",
                "by": {"kind": "system"},
                "at": "2024-06-03T22:42:06Z",
            }),
        ),
        spec(
            "ticket.survey_sent",
            schemars::schema_for!(SurveySent),
            json!({"survey_id": survey, "customer_id": customer, "at": "2024-06-04T10:31:00Z"}),
        ),
        spec(
            "ticket.survey_answered",
            schemars::schema_for!(SurveyAnswered),
            json!({
                "survey_id": survey,
                "customer_id": customer,
                "expert_id": expert,
                "score": 4,
                "comment": "Fixed quickly once it reached the right person.",
                "at": "2024-06-04T12:02:00Z",
            }),
        ),
    ]
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
