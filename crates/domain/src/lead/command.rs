//! What can be asked of a lead. Values are already parsed; `actor` is the
//! user who acts, `at` the time the command was accepted.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::{BandwidthMbps, Contact, DocumentRef, NewDefect, Outcome, TestResult};
use crate::value::{LeadScore, LongText, Money, ShortText};

#[derive(Debug, Clone, PartialEq)]
pub enum LeadCommand {
    /// Records a new lead. Only on a stream that does not exist.
    Capture {
        company: ShortText,
        contact: Contact,
        site_address: ShortText,
        service: ShortText,
        bandwidth_mbps: BandwidthMbps,
        estimated_value: Money,
        source: ShortText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Scores the lead; may be repeated until serviceability is checked.
    Qualify {
        score: LeadScore,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Makes `owner` responsible for the lead, at any stage before closing.
    AssignOwner {
        owner: Uuid,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    CheckServiceability {
        feasible: bool,
        notes: Option<LongText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Submits the next version of the design.
    SubmitDesign {
        summary: ShortText,
        specification: LongText,
        documents: Vec<DocumentRef>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    CommentOnDesign {
        design_version: u32,
        body: LongText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Sends the current design for approval; `approval_id` is the id of
    /// the approval that will be requested.
    RequestDesignApproval {
        approval_id: Uuid,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// The outcome of the design approval (sent by the process manager).
    ApproveDesign {
        approval_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The outcome of the design approval (sent by the process manager):
    /// back to design.
    RejectDesign {
        approval_id: Uuid,
        reason: Option<LongText>,
        at: DateTime<Utc>,
    },
    AddImplementationTask {
        task_id: Uuid,
        title: ShortText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    AssignImplementationTask {
        task_id: Uuid,
        assignee: Uuid,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    CompleteImplementationTask {
        task_id: Uuid,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    CompleteImplementation {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Records one activation test; its defects are raised with it.
    RecordActivationTest {
        name: ShortText,
        result: TestResult,
        defects: Vec<NewDefect>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    RaiseDefect {
        defect_id: Uuid,
        title: ShortText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    ResolveDefect {
        defect_id: Uuid,
        resolution: Option<LongText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    PassTesting {
        actor: Uuid,
        at: DateTime<Utc>,
    },
    HandOverToSupport {
        notes: Option<LongText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    Close {
        outcome: Outcome,
        reason: Option<ShortText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
}
