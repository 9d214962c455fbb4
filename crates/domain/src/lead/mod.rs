//! The lead: an enterprise internet lead, from first contact to a service
//! handed over to support.
//!
//! ```text
//!     capture
//!        │
//!        ▼
//!     captured
//!        │ qualify (again, to re-score, while qualified)
//!        ▼
//!     qualified
//!        │ check serviceability
//!        ▼
//!     serviceability_checked ── not feasible: only close (lost / cancelled)
//!        │ submit design (version 1)
//!        ▼
//!     design ◀────────────────────┐  submit design again: version + 1
//!        │ request approval       │
//!        ▼                        │ design rejected
//!     design_approval ────────────┘
//!        │ design approved
//!        ▼
//!     implementation   add / assign / complete tasks
//!        │ complete implementation (≥ 1 task, all completed)
//!        ▼
//!     testing          record tests, raise / resolve defects,
//!        │             pass testing (≥ 1 passed test, no open defect)
//!        │ hand over to support (once testing passed)
//!        ▼
//!     support
//!        │ close (won)
//!        ▼
//!     closed ◀── close (lost / cancelled) from any stage
//! ```
//!
//! Rules:
//! - a command on a stream that does not exist is `lead.not_found`, except
//!   capture, which is `lead.already_exists` on an existing one;
//! - a closed lead takes no command (`lead.closed`);
//! - a command in the wrong stage is `lead.wrong_stage`, whose message names
//!   the expected and the actual stage;
//! - the owner may be (re)assigned at any stage before closing; assigning
//!   the current owner again is a no-op (no event);
//! - design versions start at 1 and grow by one per submission; comments
//!   name an existing version; approval is requested for the latest version,
//!   never for one that was already rejected; the approval's outcome is sent
//!   by the process manager with the id of the pending approval;
//! - implementation completes only with at least one task, all completed;
//! - testing passes only with at least one passed test and no open defect,
//!   and is then sealed (no more tests or defects);
//! - a lead is won only from support; lost or cancelled from any stage.
//!
//! The stage only moves forward, except that a rejected design goes back
//! from `design_approval` to `design`. Events that change the stage carry
//! the new stage, so projections need not know these rules.

mod command;
mod error;
mod event;
mod specs;
mod values;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub use self::command::LeadCommand;
pub use self::error::LeadError;
pub use self::event::*;
pub use self::specs::event_specs;
pub use self::values::{
    BandwidthMbps, Contact, DocumentRef, NewDefect, Outcome, Stage, Stages, TestResult,
};
use crate::aggregate::Aggregate;
use crate::value::{LeadScore, Money};

/// A lead's state, as far as its decisions need it. `Default` is a lead
/// that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lead {
    /// `None` while the stream does not exist.
    pub stage: Option<Stage>,
    pub owner: Option<Uuid>,
    /// The value estimated at capture (what the approval policy weighs).
    pub estimated_value: Option<Money>,
    pub score: Option<LeadScore>,
    /// `None` until serviceability is checked.
    pub feasible: Option<bool>,
    /// The latest design version; 0 before the first submission.
    pub design_version: u32,
    /// Whether the latest design version was rejected.
    pub design_rejected: bool,
    /// The approval pending in `design_approval`.
    pub pending_approval: Option<Uuid>,
    pub approved_design_version: Option<u32>,
    pub tasks: BTreeMap<Uuid, Task>,
    pub passed_tests: u32,
    pub open_defects: BTreeSet<Uuid>,
    pub resolved_defects: BTreeSet<Uuid>,
    pub testing_passed: bool,
    pub outcome: Option<Outcome>,
}

/// One implementation task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    pub assignee: Option<Uuid>,
    pub completed: bool,
}

impl Lead {
    /// The stage of a lead that exists and is not closed.
    fn live(&self) -> Result<Stage, LeadError> {
        match self.stage {
            None => Err(LeadError::NotFound),
            Some(Stage::Closed) => Err(LeadError::Closed),
            Some(stage) => Ok(stage),
        }
    }

    /// The stage, if it is one of `expected`.
    fn expect(&self, expected: &'static [Stage]) -> Result<Stage, LeadError> {
        let actual = self.live()?;
        if expected.contains(&actual) {
            Ok(actual)
        } else {
            Err(LeadError::WrongStage {
                expected: Stages(expected),
                actual,
            })
        }
    }

    fn open_tasks(&self) -> usize {
        self.tasks.values().filter(|t| !t.completed).count()
    }

    fn defect_known(&self, defect_id: &Uuid) -> bool {
        self.open_defects.contains(defect_id) || self.resolved_defects.contains(defect_id)
    }

    fn pending_approval_is(&self, approval_id: Uuid) -> Result<(), LeadError> {
        if self.pending_approval == Some(approval_id) {
            Ok(())
        } else {
            Err(LeadError::UnknownApproval { approval_id })
        }
    }

    fn testing_open(&self) -> Result<(), LeadError> {
        self.expect(&[Stage::Testing])?;
        if self.testing_passed {
            Err(LeadError::TestingPassed)
        } else {
            Ok(())
        }
    }
}

impl Aggregate for Lead {
    const STREAM_TYPE: &'static str = "lead";

    type Command = LeadCommand;
    type Event = LeadEvent;
    type Error = LeadError;

    fn decide(&self, command: &LeadCommand) -> Result<Vec<LeadEvent>, LeadError> {
        use LeadCommand as C;
        use LeadEvent as E;

        match command {
            C::Capture {
                company,
                contact,
                site_address,
                service,
                bandwidth_mbps,
                estimated_value,
                source,
                actor,
                at,
            } => {
                if self.stage.is_some() {
                    return Err(LeadError::AlreadyExists);
                }
                Ok(vec![E::Captured(LeadCaptured {
                    company: company.clone(),
                    contact: contact.clone(),
                    site_address: site_address.clone(),
                    service: service.clone(),
                    bandwidth_mbps: *bandwidth_mbps,
                    estimated_value: *estimated_value,
                    source: source.clone(),
                    stage: Stage::Captured,
                    by: *actor,
                    at: *at,
                })])
            }
            C::Qualify { score, actor, at } => {
                self.expect(&[Stage::Captured, Stage::Qualified])?;
                Ok(vec![E::Qualified(LeadQualified {
                    score: *score,
                    stage: Stage::Qualified,
                    by: *actor,
                    at: *at,
                })])
            }
            C::AssignOwner { owner, actor, at } => {
                self.live()?;
                if self.owner == Some(*owner) {
                    return Ok(vec![]);
                }
                Ok(vec![E::OwnerAssigned(LeadOwnerAssigned {
                    owner: *owner,
                    previous_owner: self.owner,
                    by: *actor,
                    at: *at,
                })])
            }
            C::CheckServiceability {
                feasible,
                notes,
                actor,
                at,
            } => {
                self.expect(&[Stage::Qualified])?;
                Ok(vec![E::ServiceabilityChecked(ServiceabilityChecked {
                    feasible: *feasible,
                    notes: notes.clone(),
                    stage: Stage::ServiceabilityChecked,
                    by: *actor,
                    at: *at,
                })])
            }
            C::SubmitDesign {
                summary,
                specification,
                documents,
                actor,
                at,
            } => {
                self.expect(&[Stage::ServiceabilityChecked, Stage::Design])?;
                if self.feasible != Some(true) {
                    return Err(LeadError::NotServiceable);
                }
                let version = self
                    .design_version
                    .checked_add(1)
                    .ok_or(LeadError::TooManyDesignVersions)?;
                Ok(vec![E::DesignSubmitted(DesignSubmitted {
                    version,
                    summary: summary.clone(),
                    specification: specification.clone(),
                    documents: documents.clone(),
                    stage: Stage::Design,
                    by: *actor,
                    at: *at,
                })])
            }
            C::CommentOnDesign {
                design_version,
                body,
                actor,
                at,
            } => {
                self.live()?;
                if self.design_version == 0 {
                    return Err(LeadError::NoDesign);
                }
                if *design_version == 0 || *design_version > self.design_version {
                    return Err(LeadError::UnknownDesignVersion {
                        version: *design_version,
                        latest: self.design_version,
                    });
                }
                Ok(vec![E::DesignCommentAdded(DesignCommentAdded {
                    design_version: *design_version,
                    author: *actor,
                    body: body.clone(),
                    at: *at,
                })])
            }
            C::RequestDesignApproval {
                approval_id,
                actor,
                at,
            } => {
                self.expect(&[Stage::Design])?;
                if self.design_version == 0 {
                    return Err(LeadError::NoDesign);
                }
                if self.design_rejected {
                    return Err(LeadError::DesignRejected {
                        version: self.design_version,
                    });
                }
                Ok(vec![E::DesignApprovalRequested(DesignApprovalRequested {
                    approval_id: *approval_id,
                    design_version: self.design_version,
                    stage: Stage::DesignApproval,
                    by: *actor,
                    at: *at,
                })])
            }
            C::ApproveDesign { approval_id, at } => {
                self.expect(&[Stage::DesignApproval])?;
                self.pending_approval_is(*approval_id)?;
                Ok(vec![E::DesignApproved(DesignApproved {
                    approval_id: *approval_id,
                    design_version: self.design_version,
                    stage: Stage::Implementation,
                    at: *at,
                })])
            }
            C::RejectDesign {
                approval_id,
                reason,
                at,
            } => {
                self.expect(&[Stage::DesignApproval])?;
                self.pending_approval_is(*approval_id)?;
                Ok(vec![E::DesignRejected(DesignRejected {
                    approval_id: *approval_id,
                    design_version: self.design_version,
                    reason: reason.clone(),
                    stage: Stage::Design,
                    at: *at,
                })])
            }
            C::AddImplementationTask {
                task_id,
                title,
                actor,
                at,
            } => {
                self.expect(&[Stage::Implementation])?;
                if self.tasks.contains_key(task_id) {
                    return Err(LeadError::TaskExists { task_id: *task_id });
                }
                Ok(vec![E::ImplementationTaskAdded(ImplementationTaskAdded {
                    task_id: *task_id,
                    title: title.clone(),
                    by: *actor,
                    at: *at,
                })])
            }
            C::AssignImplementationTask {
                task_id,
                assignee,
                actor,
                at,
            } => {
                self.expect(&[Stage::Implementation])?;
                let task = self
                    .tasks
                    .get(task_id)
                    .ok_or(LeadError::TaskNotFound { task_id: *task_id })?;
                if task.completed {
                    return Err(LeadError::TaskCompleted { task_id: *task_id });
                }
                if task.assignee == Some(*assignee) {
                    return Ok(vec![]);
                }
                Ok(vec![E::ImplementationTaskAssigned(
                    ImplementationTaskAssigned {
                        task_id: *task_id,
                        assignee: *assignee,
                        by: *actor,
                        at: *at,
                    },
                )])
            }
            C::CompleteImplementationTask { task_id, actor, at } => {
                self.expect(&[Stage::Implementation])?;
                let task = self
                    .tasks
                    .get(task_id)
                    .ok_or(LeadError::TaskNotFound { task_id: *task_id })?;
                if task.completed {
                    return Err(LeadError::TaskCompleted { task_id: *task_id });
                }
                Ok(vec![E::ImplementationTaskCompleted(
                    ImplementationTaskCompleted {
                        task_id: *task_id,
                        by: *actor,
                        at: *at,
                    },
                )])
            }
            C::CompleteImplementation { actor, at } => {
                self.expect(&[Stage::Implementation])?;
                if self.tasks.is_empty() {
                    return Err(LeadError::NoTasks);
                }
                let open = self.open_tasks();
                if open > 0 {
                    return Err(LeadError::TasksOpen { open });
                }
                Ok(vec![E::ImplementationCompleted(ImplementationCompleted {
                    stage: Stage::Testing,
                    by: *actor,
                    at: *at,
                })])
            }
            C::RecordActivationTest {
                name,
                result,
                defects,
                actor,
                at,
            } => {
                self.testing_open()?;
                let mut seen = BTreeSet::new();
                for defect in defects {
                    if self.defect_known(&defect.defect_id) || !seen.insert(defect.defect_id) {
                        return Err(LeadError::DefectExists {
                            defect_id: defect.defect_id,
                        });
                    }
                }
                let mut events = Vec::with_capacity(defects.len().saturating_add(1));
                events.push(E::ActivationTestRecorded(ActivationTestRecorded {
                    name: name.clone(),
                    result: *result,
                    defects: defects.iter().map(|d| d.defect_id).collect(),
                    by: *actor,
                    at: *at,
                }));
                events.extend(defects.iter().map(|d| {
                    E::DefectRaised(DefectRaised {
                        defect_id: d.defect_id,
                        title: d.title.clone(),
                        by: *actor,
                        at: *at,
                    })
                }));
                Ok(events)
            }
            C::RaiseDefect {
                defect_id,
                title,
                actor,
                at,
            } => {
                self.testing_open()?;
                if self.defect_known(defect_id) {
                    return Err(LeadError::DefectExists {
                        defect_id: *defect_id,
                    });
                }
                Ok(vec![E::DefectRaised(DefectRaised {
                    defect_id: *defect_id,
                    title: title.clone(),
                    by: *actor,
                    at: *at,
                })])
            }
            C::ResolveDefect {
                defect_id,
                resolution,
                actor,
                at,
            } => {
                self.testing_open()?;
                if self.resolved_defects.contains(defect_id) {
                    return Err(LeadError::DefectResolved {
                        defect_id: *defect_id,
                    });
                }
                if !self.open_defects.contains(defect_id) {
                    return Err(LeadError::DefectNotFound {
                        defect_id: *defect_id,
                    });
                }
                Ok(vec![E::DefectResolved(DefectResolved {
                    defect_id: *defect_id,
                    resolution: resolution.clone(),
                    by: *actor,
                    at: *at,
                })])
            }
            C::PassTesting { actor, at } => {
                self.testing_open()?;
                if self.passed_tests == 0 {
                    return Err(LeadError::NoPassedTest);
                }
                if !self.open_defects.is_empty() {
                    return Err(LeadError::DefectsOpen {
                        open: self.open_defects.len(),
                    });
                }
                Ok(vec![E::TestingPassed(TestingPassed {
                    by: *actor,
                    at: *at,
                })])
            }
            C::HandOverToSupport { notes, actor, at } => {
                self.expect(&[Stage::Testing])?;
                if !self.testing_passed {
                    return Err(LeadError::TestingNotPassed);
                }
                Ok(vec![E::HandedOverToSupport(HandedOverToSupport {
                    notes: notes.clone(),
                    stage: Stage::Support,
                    by: *actor,
                    at: *at,
                })])
            }
            C::Close {
                outcome,
                reason,
                actor,
                at,
            } => {
                let previous_stage = match outcome {
                    Outcome::Won => self.expect(&[Stage::Support])?,
                    Outcome::Lost | Outcome::Cancelled => self.live()?,
                };
                Ok(vec![E::Closed(LeadClosed {
                    outcome: *outcome,
                    reason: reason.clone(),
                    previous_stage,
                    pending_approval: self.pending_approval,
                    stage: Stage::Closed,
                    by: *actor,
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &LeadEvent) -> Self {
        use LeadEvent as E;

        match event {
            E::Captured(e) => {
                self.stage = Some(Stage::Captured);
                self.estimated_value = Some(e.estimated_value);
            }
            E::Qualified(e) => {
                self.stage = Some(Stage::Qualified);
                self.score = Some(e.score);
            }
            E::OwnerAssigned(e) => self.owner = Some(e.owner),
            E::ServiceabilityChecked(e) => {
                self.stage = Some(Stage::ServiceabilityChecked);
                self.feasible = Some(e.feasible);
            }
            E::DesignSubmitted(e) => {
                self.stage = Some(Stage::Design);
                self.design_version = e.version;
                self.design_rejected = false;
            }
            E::DesignCommentAdded(_) => {}
            E::DesignApprovalRequested(e) => {
                self.stage = Some(Stage::DesignApproval);
                self.pending_approval = Some(e.approval_id);
            }
            E::DesignApproved(e) => {
                self.stage = Some(Stage::Implementation);
                self.pending_approval = None;
                self.approved_design_version = Some(e.design_version);
            }
            E::DesignRejected(_) => {
                self.stage = Some(Stage::Design);
                self.pending_approval = None;
                self.design_rejected = true;
            }
            E::ImplementationTaskAdded(e) => {
                self.tasks.insert(e.task_id, Task::default());
            }
            E::ImplementationTaskAssigned(e) => {
                if let Some(task) = self.tasks.get_mut(&e.task_id) {
                    task.assignee = Some(e.assignee);
                }
            }
            E::ImplementationTaskCompleted(e) => {
                if let Some(task) = self.tasks.get_mut(&e.task_id) {
                    task.completed = true;
                }
            }
            E::ImplementationCompleted(_) => self.stage = Some(Stage::Testing),
            E::ActivationTestRecorded(e) => {
                if e.result == TestResult::Passed {
                    self.passed_tests = self.passed_tests.saturating_add(1);
                }
            }
            E::DefectRaised(e) => {
                self.open_defects.insert(e.defect_id);
            }
            E::DefectResolved(e) => {
                if self.open_defects.remove(&e.defect_id) {
                    self.resolved_defects.insert(e.defect_id);
                }
            }
            E::TestingPassed(_) => self.testing_passed = true,
            E::HandedOverToSupport(_) => self.stage = Some(Stage::Support),
            E::Closed(e) => {
                self.stage = Some(Stage::Closed);
                self.outcome = Some(e.outcome);
                self.pending_approval = None;
            }
        }
        self
    }
}
