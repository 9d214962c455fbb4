//! Given / when / then for every lead command, its success and each refusal.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::error::ErrorCode;
use crate::event::{decode, encode, DomainEvent};
use crate::testing::given;
use crate::value::{Currency, Email, LongText, Money, ShortText};

pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::minutes(minute)
}

pub(super) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub(super) fn short(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

pub(super) fn long(s: &str) -> LongText {
    LongText::parse("text", s).unwrap()
}

const SALES: u128 = 0x5a1e5;
const DESIGNER: u128 = 0xde5;
const ENGINEER: u128 = 0xe9;
const APPROVAL: u128 = 0xa991;

fn sales() -> Uuid {
    id(SALES)
}

pub(super) fn contact() -> Contact {
    Contact {
        name: short("Anna Keller"),
        email: Email::parse("email", "anna.keller@nordwind.example").unwrap(),
        phone: Some(short("+49 40 1234 5678")),
    }
}

pub(super) fn eur(amount_minor: i64) -> Money {
    Money::new(
        "value",
        amount_minor,
        Currency::parse("currency", "EUR").unwrap(),
    )
    .unwrap()
}

fn capture() -> LeadCommand {
    LeadCommand::Capture {
        company: short("Nordwind Logistics GmbH"),
        contact: contact(),
        site_address: short("Am Sandtorkai 12, 20457 Hamburg"),
        service: short("Dedicated Internet Access"),
        bandwidth_mbps: BandwidthMbps::parse("bandwidth", 500).unwrap(),
        estimated_value: eur(1_440_000),
        source: short("web form"),
        actor: sales(),
        at: at(0),
    }
}

fn captured() -> LeadEvent {
    LeadEvent::Captured(LeadCaptured {
        company: short("Nordwind Logistics GmbH"),
        contact: contact(),
        site_address: short("Am Sandtorkai 12, 20457 Hamburg"),
        service: short("Dedicated Internet Access"),
        bandwidth_mbps: BandwidthMbps::parse("bandwidth", 500).unwrap(),
        estimated_value: eur(1_440_000),
        source: short("web form"),
        stage: Stage::Captured,
        by: sales(),
        at: at(0),
    })
}

fn qualified() -> LeadEvent {
    LeadEvent::Qualified(LeadQualified {
        score: LeadScore::parse("score", 72).unwrap(),
        stage: Stage::Qualified,
        by: sales(),
        at: at(1),
    })
}

fn checked(feasible: bool) -> LeadEvent {
    LeadEvent::ServiceabilityChecked(ServiceabilityChecked {
        feasible,
        notes: None,
        stage: Stage::ServiceabilityChecked,
        by: id(DESIGNER),
        at: at(2),
    })
}

fn design_submitted(version: u32) -> LeadEvent {
    LeadEvent::DesignSubmitted(DesignSubmitted {
        version,
        summary: short("Dual-homed DIA"),
        specification: long("Fibre primary, LTE backup"),
        documents: vec![DocumentRef {
            document_id: id(0xd0c),
            name: short("design.pdf"),
        }],
        stage: Stage::Design,
        by: id(DESIGNER),
        at: at(3),
    })
}

fn submit_design() -> LeadCommand {
    LeadCommand::SubmitDesign {
        summary: short("Dual-homed DIA"),
        specification: long("Fibre primary, LTE backup"),
        documents: vec![DocumentRef {
            document_id: id(0xd0c),
            name: short("design.pdf"),
        }],
        actor: id(DESIGNER),
        at: at(3),
    }
}

fn approval_requested(design_version: u32) -> LeadEvent {
    LeadEvent::DesignApprovalRequested(DesignApprovalRequested {
        approval_id: id(APPROVAL),
        design_version,
        stage: Stage::DesignApproval,
        by: id(DESIGNER),
        at: at(4),
    })
}

fn design_approved() -> LeadEvent {
    LeadEvent::DesignApproved(DesignApproved {
        approval_id: id(APPROVAL),
        design_version: 1,
        stage: Stage::Implementation,
        at: at(5),
    })
}

fn design_rejected() -> LeadEvent {
    LeadEvent::DesignRejected(DesignRejected {
        approval_id: id(APPROVAL),
        design_version: 1,
        reason: None,
        stage: Stage::Design,
        at: at(5),
    })
}

fn task_added(n: u128) -> LeadEvent {
    LeadEvent::ImplementationTaskAdded(ImplementationTaskAdded {
        task_id: id(n),
        title: short("Pull fibre"),
        by: id(DESIGNER),
        at: at(6),
    })
}

fn task_completed(n: u128) -> LeadEvent {
    LeadEvent::ImplementationTaskCompleted(ImplementationTaskCompleted {
        task_id: id(n),
        by: id(ENGINEER),
        at: at(7),
    })
}

fn implementation_completed() -> LeadEvent {
    LeadEvent::ImplementationCompleted(ImplementationCompleted {
        stage: Stage::Testing,
        by: id(DESIGNER),
        at: at(8),
    })
}

fn test_recorded(result: TestResult, defects: Vec<Uuid>) -> LeadEvent {
    LeadEvent::ActivationTestRecorded(ActivationTestRecorded {
        name: short("Failover"),
        result,
        defects,
        by: id(ENGINEER),
        at: at(9),
    })
}

fn defect_raised(n: u128) -> LeadEvent {
    LeadEvent::DefectRaised(DefectRaised {
        defect_id: id(n),
        title: short("Slow failover"),
        by: id(ENGINEER),
        at: at(9),
    })
}

fn defect_resolved(n: u128) -> LeadEvent {
    LeadEvent::DefectResolved(DefectResolved {
        defect_id: id(n),
        resolution: None,
        by: id(ENGINEER),
        at: at(10),
    })
}

fn testing_passed() -> LeadEvent {
    LeadEvent::TestingPassed(TestingPassed {
        by: id(ENGINEER),
        at: at(11),
    })
}

fn handed_over() -> LeadEvent {
    LeadEvent::HandedOverToSupport(HandedOverToSupport {
        notes: None,
        stage: Stage::Support,
        by: id(DESIGNER),
        at: at(12),
    })
}

fn closed(outcome: Outcome, previous_stage: Stage) -> LeadEvent {
    LeadEvent::Closed(LeadClosed {
        outcome,
        reason: None,
        previous_stage,
        pending_approval: None,
        stage: Stage::Closed,
        by: sales(),
        at: at(13),
    })
}

fn close(outcome: Outcome) -> LeadCommand {
    LeadCommand::Close {
        outcome,
        reason: None,
        actor: sales(),
        at: at(13),
    }
}

// Histories, one per stage.

fn h_qualified() -> Vec<LeadEvent> {
    vec![captured(), qualified()]
}

fn h_checked() -> Vec<LeadEvent> {
    let mut h = h_qualified();
    h.push(checked(true));
    h
}

fn h_design() -> Vec<LeadEvent> {
    let mut h = h_checked();
    h.push(design_submitted(1));
    h
}

fn h_approval() -> Vec<LeadEvent> {
    let mut h = h_design();
    h.push(approval_requested(1));
    h
}

fn h_implementation() -> Vec<LeadEvent> {
    let mut h = h_approval();
    h.push(design_approved());
    h
}

fn h_testing() -> Vec<LeadEvent> {
    let mut h = h_implementation();
    h.extend([task_added(1), task_completed(1), implementation_completed()]);
    h
}

fn h_tested() -> Vec<LeadEvent> {
    let mut h = h_testing();
    h.extend([test_recorded(TestResult::Passed, vec![]), testing_passed()]);
    h
}

fn h_support() -> Vec<LeadEvent> {
    let mut h = h_tested();
    h.push(handed_over());
    h
}

fn h_closed() -> Vec<LeadEvent> {
    let mut h = h_support();
    h.push(closed(Outcome::Won, Stage::Support));
    h
}

// Capture

#[test]
fn capture_records_every_initial_field() {
    let state = given::<Lead>([]).when(&capture()).then([captured()]);
    assert_eq!(state.stage, Some(Stage::Captured));
}

#[test]
fn capture_twice_is_refused() {
    given::<Lead>([captured()])
        .when(&capture())
        .then_err("lead.already_exists");
}

#[test]
fn commands_on_a_missing_lead_are_refused() {
    given::<Lead>([])
        .when(&close(Outcome::Lost))
        .then_err("lead.not_found");
    given::<Lead>([])
        .when(&LeadCommand::AssignOwner {
            owner: sales(),
            actor: sales(),
            at: at(1),
        })
        .then_err("lead.not_found");
}

// Qualify

fn qualify(score: i64) -> LeadCommand {
    LeadCommand::Qualify {
        score: LeadScore::parse("score", score).unwrap(),
        actor: sales(),
        at: at(1),
    }
}

#[test]
fn qualify_scores_a_captured_lead() {
    let state = given::<Lead>([captured()])
        .when(&qualify(72))
        .then([qualified()]);
    assert_eq!(state.score, Some(LeadScore::parse("score", 72).unwrap()));
}

#[test]
fn qualify_again_rescores() {
    let state = given::<Lead>(h_qualified())
        .when(&qualify(90))
        .then([LeadEvent::Qualified(LeadQualified {
            score: LeadScore::parse("score", 90).unwrap(),
            stage: Stage::Qualified,
            by: sales(),
            at: at(1),
        })]);
    assert_eq!(state.score.map(|s| s.get()), Some(90));
}

#[test]
fn qualify_after_serviceability_is_a_wrong_stage() {
    given::<Lead>(h_checked())
        .when(&qualify(10))
        .then_err("lead.wrong_stage");
}

#[test]
fn wrong_stage_names_expected_and_actual_stage() {
    let state = Lead::fold(h_checked().iter());
    let err = state.decide(&qualify(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong stage: expected captured or qualified, lead is serviceability_checked"
    );
}

// Owner

#[test]
fn assign_owner_carries_the_previous_owner() {
    let first = LeadEvent::OwnerAssigned(LeadOwnerAssigned {
        owner: id(1),
        previous_owner: None,
        by: sales(),
        at: at(1),
    });
    let state = given::<Lead>([captured(), first.clone()])
        .when(&LeadCommand::AssignOwner {
            owner: id(2),
            actor: sales(),
            at: at(2),
        })
        .then([LeadEvent::OwnerAssigned(LeadOwnerAssigned {
            owner: id(2),
            previous_owner: Some(id(1)),
            by: sales(),
            at: at(2),
        })]);
    assert_eq!(state.owner, Some(id(2)));
}

#[test]
fn assign_owner_works_in_a_late_stage() {
    given::<Lead>(h_testing())
        .when(&LeadCommand::AssignOwner {
            owner: id(1),
            actor: sales(),
            at: at(20),
        })
        .then([LeadEvent::OwnerAssigned(LeadOwnerAssigned {
            owner: id(1),
            previous_owner: None,
            by: sales(),
            at: at(20),
        })]);
}

#[test]
fn assigning_the_current_owner_again_is_a_no_op() {
    let first = LeadEvent::OwnerAssigned(LeadOwnerAssigned {
        owner: id(1),
        previous_owner: None,
        by: sales(),
        at: at(1),
    });
    given::<Lead>([captured(), first])
        .when(&LeadCommand::AssignOwner {
            owner: id(1),
            actor: sales(),
            at: at(2),
        })
        .then([]);
}

#[test]
fn a_closed_lead_takes_no_owner() {
    given::<Lead>(h_closed())
        .when(&LeadCommand::AssignOwner {
            owner: id(1),
            actor: sales(),
            at: at(20),
        })
        .then_err("lead.closed");
}

// Serviceability

fn check(feasible: bool) -> LeadCommand {
    LeadCommand::CheckServiceability {
        feasible,
        notes: None,
        actor: id(DESIGNER),
        at: at(2),
    }
}

#[test]
fn check_serviceability_of_a_qualified_lead() {
    let state = given::<Lead>(h_qualified())
        .when(&check(true))
        .then([checked(true)]);
    assert_eq!(state.feasible, Some(true));
}

#[test]
fn check_serviceability_before_qualification_is_a_wrong_stage() {
    given::<Lead>([captured()])
        .when(&check(true))
        .then_err("lead.wrong_stage");
}

#[test]
fn check_serviceability_twice_is_a_wrong_stage() {
    given::<Lead>(h_checked())
        .when(&check(false))
        .then_err("lead.wrong_stage");
}

// Design

#[test]
fn submit_the_first_design() {
    let state = given::<Lead>(h_checked())
        .when(&submit_design())
        .then([design_submitted(1)]);
    assert_eq!(state.stage, Some(Stage::Design));
    assert_eq!(state.design_version, 1);
}

#[test]
fn resubmitting_a_design_increments_the_version() {
    given::<Lead>(h_design())
        .when(&submit_design())
        .then([design_submitted(2)]);
}

#[test]
fn a_design_for_an_unserviceable_site_is_refused() {
    let mut h = h_qualified();
    h.push(checked(false));
    given::<Lead>(h)
        .when(&submit_design())
        .then_err("lead.not_serviceable");
}

#[test]
fn a_design_under_approval_cannot_be_resubmitted() {
    given::<Lead>(h_approval())
        .when(&submit_design())
        .then_err("lead.wrong_stage");
}

#[test]
fn design_versions_cannot_overflow() {
    let mut h = h_checked();
    h.push(design_submitted(u32::MAX));
    given::<Lead>(h)
        .when(&submit_design())
        .then_err("lead.too_many_design_versions");
}

fn comment(design_version: u32) -> LeadCommand {
    LeadCommand::CommentOnDesign {
        design_version,
        body: long("Does the backup cover the server room?"),
        actor: id(0xc0),
        at: at(4),
    }
}

#[test]
fn comment_on_a_design_version() {
    given::<Lead>(h_approval())
        .when(&comment(1))
        .then([LeadEvent::DesignCommentAdded(DesignCommentAdded {
            design_version: 1,
            author: id(0xc0),
            body: long("Does the backup cover the server room?"),
            at: at(4),
        })]);
}

#[test]
fn comment_without_a_design_is_refused() {
    given::<Lead>(h_checked())
        .when(&comment(1))
        .then_err("lead.no_design");
}

#[test]
fn comment_on_an_unknown_version_is_refused() {
    given::<Lead>(h_design())
        .when(&comment(2))
        .then_err("lead.unknown_design_version");
    given::<Lead>(h_design())
        .when(&comment(0))
        .then_err("lead.unknown_design_version");
}

#[test]
fn comment_on_a_closed_lead_is_refused() {
    given::<Lead>(h_closed())
        .when(&comment(1))
        .then_err("lead.closed");
}

// Design approval

fn request_approval() -> LeadCommand {
    LeadCommand::RequestDesignApproval {
        approval_id: id(APPROVAL),
        actor: id(DESIGNER),
        at: at(4),
    }
}

#[test]
fn request_approval_of_the_latest_design() {
    let state = given::<Lead>(h_design())
        .when(&request_approval())
        .then([approval_requested(1)]);
    assert_eq!(state.pending_approval, Some(id(APPROVAL)));
}

#[test]
fn request_approval_before_design_is_a_wrong_stage() {
    given::<Lead>(h_checked())
        .when(&request_approval())
        .then_err("lead.wrong_stage");
}

#[test]
fn a_rejected_design_version_cannot_be_sent_again() {
    let mut h = h_approval();
    h.push(design_rejected());
    given::<Lead>(h)
        .when(&request_approval())
        .then_err("lead.design_rejected");
}

#[test]
fn a_new_version_after_rejection_can_be_sent() {
    let mut h = h_approval();
    h.extend([design_rejected(), design_submitted(2)]);
    given::<Lead>(h)
        .when(&request_approval())
        .then([approval_requested(2)]);
}

#[test]
fn design_approved_moves_to_implementation() {
    let state = given::<Lead>(h_approval())
        .when(&LeadCommand::ApproveDesign {
            approval_id: id(APPROVAL),
            at: at(5),
        })
        .then([design_approved()]);
    assert_eq!(state.stage, Some(Stage::Implementation));
    assert_eq!(state.approved_design_version, Some(1));
}

#[test]
fn design_rejected_goes_back_to_design() {
    let state = given::<Lead>(h_approval())
        .when(&LeadCommand::RejectDesign {
            approval_id: id(APPROVAL),
            reason: None,
            at: at(5),
        })
        .then([design_rejected()]);
    assert_eq!(state.stage, Some(Stage::Design));
    assert!(state.design_rejected);
}

#[test]
fn another_approval_cannot_decide_the_design() {
    given::<Lead>(h_approval())
        .when(&LeadCommand::ApproveDesign {
            approval_id: id(1),
            at: at(5),
        })
        .then_err("lead.unknown_approval");
    given::<Lead>(h_approval())
        .when(&LeadCommand::RejectDesign {
            approval_id: id(1),
            reason: None,
            at: at(5),
        })
        .then_err("lead.unknown_approval");
}

#[test]
fn approving_outside_design_approval_is_a_wrong_stage() {
    given::<Lead>(h_design())
        .when(&LeadCommand::ApproveDesign {
            approval_id: id(APPROVAL),
            at: at(5),
        })
        .then_err("lead.wrong_stage");
    given::<Lead>(h_implementation())
        .when(&LeadCommand::RejectDesign {
            approval_id: id(APPROVAL),
            reason: None,
            at: at(5),
        })
        .then_err("lead.wrong_stage");
}

// Implementation

fn add_task(n: u128) -> LeadCommand {
    LeadCommand::AddImplementationTask {
        task_id: id(n),
        title: short("Pull fibre"),
        actor: id(DESIGNER),
        at: at(6),
    }
}

fn assign_task(n: u128, assignee: u128) -> LeadCommand {
    LeadCommand::AssignImplementationTask {
        task_id: id(n),
        assignee: id(assignee),
        actor: id(DESIGNER),
        at: at(6),
    }
}

fn complete_task(n: u128) -> LeadCommand {
    LeadCommand::CompleteImplementationTask {
        task_id: id(n),
        actor: id(ENGINEER),
        at: at(7),
    }
}

fn complete_implementation() -> LeadCommand {
    LeadCommand::CompleteImplementation {
        actor: id(DESIGNER),
        at: at(8),
    }
}

#[test]
fn add_a_task() {
    let state = given::<Lead>(h_implementation())
        .when(&add_task(1))
        .then([task_added(1)]);
    assert_eq!(state.tasks.len(), 1);
}

#[test]
fn add_a_task_twice_is_refused() {
    let mut h = h_implementation();
    h.push(task_added(1));
    given::<Lead>(h)
        .when(&add_task(1))
        .then_err("lead.task_exists");
}

#[test]
fn add_a_task_before_implementation_is_a_wrong_stage() {
    given::<Lead>(h_approval())
        .when(&add_task(1))
        .then_err("lead.wrong_stage");
}

#[test]
fn assign_a_task() {
    let mut h = h_implementation();
    h.push(task_added(1));
    let state = given::<Lead>(h).when(&assign_task(1, ENGINEER)).then([
        LeadEvent::ImplementationTaskAssigned(ImplementationTaskAssigned {
            task_id: id(1),
            assignee: id(ENGINEER),
            by: id(DESIGNER),
            at: at(6),
        }),
    ]);
    assert_eq!(
        state.tasks.get(&id(1)).and_then(|t| t.assignee),
        Some(id(ENGINEER))
    );
}

#[test]
fn assigning_the_same_assignee_again_is_a_no_op() {
    let mut h = h_implementation();
    h.extend([
        task_added(1),
        LeadEvent::ImplementationTaskAssigned(ImplementationTaskAssigned {
            task_id: id(1),
            assignee: id(ENGINEER),
            by: id(DESIGNER),
            at: at(6),
        }),
    ]);
    given::<Lead>(h).when(&assign_task(1, ENGINEER)).then([]);
}

#[test]
fn assign_an_unknown_task_is_refused() {
    given::<Lead>(h_implementation())
        .when(&assign_task(1, ENGINEER))
        .then_err("lead.task_not_found");
}

#[test]
fn assign_a_completed_task_is_refused() {
    let mut h = h_implementation();
    h.extend([task_added(1), task_completed(1)]);
    given::<Lead>(h)
        .when(&assign_task(1, ENGINEER))
        .then_err("lead.task_completed");
}

#[test]
fn complete_a_task() {
    let mut h = h_implementation();
    h.push(task_added(1));
    let state = given::<Lead>(h)
        .when(&complete_task(1))
        .then([task_completed(1)]);
    assert!(state.tasks.values().all(|t| t.completed));
}

#[test]
fn complete_an_unknown_task_is_refused() {
    given::<Lead>(h_implementation())
        .when(&complete_task(1))
        .then_err("lead.task_not_found");
}

#[test]
fn complete_a_task_twice_is_refused() {
    let mut h = h_implementation();
    h.extend([task_added(1), task_completed(1)]);
    given::<Lead>(h)
        .when(&complete_task(1))
        .then_err("lead.task_completed");
}

#[test]
fn complete_implementation_when_every_task_is_done() {
    let mut h = h_implementation();
    h.extend([task_added(1), task_completed(1)]);
    let state = given::<Lead>(h)
        .when(&complete_implementation())
        .then([implementation_completed()]);
    assert_eq!(state.stage, Some(Stage::Testing));
}

#[test]
fn complete_implementation_without_tasks_is_refused() {
    given::<Lead>(h_implementation())
        .when(&complete_implementation())
        .then_err("lead.no_tasks");
}

#[test]
fn complete_implementation_with_open_tasks_is_refused() {
    let mut h = h_implementation();
    h.extend([task_added(1), task_completed(1), task_added(2)]);
    given::<Lead>(h)
        .when(&complete_implementation())
        .then_err("lead.tasks_open");
}

// Testing

fn record_test(result: TestResult, defects: &[u128]) -> LeadCommand {
    LeadCommand::RecordActivationTest {
        name: short("Failover"),
        result,
        defects: defects
            .iter()
            .map(|n| NewDefect {
                defect_id: id(*n),
                title: short("Slow failover"),
            })
            .collect(),
        actor: id(ENGINEER),
        at: at(9),
    }
}

fn raise_defect(n: u128) -> LeadCommand {
    LeadCommand::RaiseDefect {
        defect_id: id(n),
        title: short("Slow failover"),
        actor: id(ENGINEER),
        at: at(9),
    }
}

fn resolve_defect(n: u128) -> LeadCommand {
    LeadCommand::ResolveDefect {
        defect_id: id(n),
        resolution: None,
        actor: id(ENGINEER),
        at: at(10),
    }
}

fn pass_testing() -> LeadCommand {
    LeadCommand::PassTesting {
        actor: id(ENGINEER),
        at: at(11),
    }
}

#[test]
fn record_a_test_with_its_defects() {
    let state = given::<Lead>(h_testing())
        .when(&record_test(TestResult::Failed, &[7, 8]))
        .then([
            test_recorded(TestResult::Failed, vec![id(7), id(8)]),
            defect_raised(7),
            defect_raised(8),
        ]);
    assert_eq!(state.open_defects.len(), 2);
    assert_eq!(state.passed_tests, 0);
}

#[test]
fn record_a_test_before_testing_is_a_wrong_stage() {
    given::<Lead>(h_implementation())
        .when(&record_test(TestResult::Passed, &[]))
        .then_err("lead.wrong_stage");
}

#[test]
fn record_a_test_with_a_known_or_repeated_defect_is_refused() {
    let mut h = h_testing();
    h.push(defect_raised(7));
    given::<Lead>(h)
        .when(&record_test(TestResult::Failed, &[7]))
        .then_err("lead.defect_exists");
    given::<Lead>(h_testing())
        .when(&record_test(TestResult::Failed, &[8, 8]))
        .then_err("lead.defect_exists");
}

#[test]
fn raise_a_defect() {
    given::<Lead>(h_testing())
        .when(&raise_defect(7))
        .then([defect_raised(7)]);
}

#[test]
fn raise_a_known_defect_is_refused() {
    let mut h = h_testing();
    h.extend([defect_raised(7), defect_resolved(7)]);
    given::<Lead>(h)
        .when(&raise_defect(7))
        .then_err("lead.defect_exists");
}

#[test]
fn resolve_a_defect() {
    let mut h = h_testing();
    h.push(defect_raised(7));
    let state = given::<Lead>(h)
        .when(&resolve_defect(7))
        .then([defect_resolved(7)]);
    assert!(state.open_defects.is_empty());
}

#[test]
fn resolve_an_unknown_defect_is_refused() {
    given::<Lead>(h_testing())
        .when(&resolve_defect(7))
        .then_err("lead.defect_not_found");
}

#[test]
fn resolve_a_defect_twice_is_refused() {
    let mut h = h_testing();
    h.extend([defect_raised(7), defect_resolved(7)]);
    given::<Lead>(h)
        .when(&resolve_defect(7))
        .then_err("lead.defect_resolved");
}

#[test]
fn pass_testing_after_a_passed_test() {
    let mut h = h_testing();
    h.extend([
        test_recorded(TestResult::Failed, vec![id(7)]),
        defect_raised(7),
        defect_resolved(7),
        test_recorded(TestResult::Passed, vec![]),
    ]);
    let state = given::<Lead>(h)
        .when(&pass_testing())
        .then([testing_passed()]);
    assert!(state.testing_passed);
}

#[test]
fn pass_testing_without_a_passed_test_is_refused() {
    let mut h = h_testing();
    h.push(test_recorded(TestResult::Failed, vec![]));
    given::<Lead>(h)
        .when(&pass_testing())
        .then_err("lead.no_passed_test");
}

#[test]
fn pass_testing_with_open_defects_is_refused() {
    let mut h = h_testing();
    h.extend([test_recorded(TestResult::Passed, vec![]), defect_raised(7)]);
    given::<Lead>(h)
        .when(&pass_testing())
        .then_err("lead.defects_open");
}

#[test]
fn passed_testing_is_sealed() {
    given::<Lead>(h_tested())
        .when(&pass_testing())
        .then_err("lead.testing_passed");
    given::<Lead>(h_tested())
        .when(&record_test(TestResult::Failed, &[]))
        .then_err("lead.testing_passed");
    given::<Lead>(h_tested())
        .when(&raise_defect(9))
        .then_err("lead.testing_passed");
    given::<Lead>(h_tested())
        .when(&resolve_defect(9))
        .then_err("lead.testing_passed");
}

// Support and closing

fn hand_over() -> LeadCommand {
    LeadCommand::HandOverToSupport {
        notes: None,
        actor: id(DESIGNER),
        at: at(12),
    }
}

#[test]
fn hand_over_after_testing_passed() {
    let state = given::<Lead>(h_tested())
        .when(&hand_over())
        .then([handed_over()]);
    assert_eq!(state.stage, Some(Stage::Support));
}

#[test]
fn hand_over_before_testing_passed_is_refused() {
    given::<Lead>(h_testing())
        .when(&hand_over())
        .then_err("lead.testing_not_passed");
}

#[test]
fn hand_over_outside_testing_is_a_wrong_stage() {
    given::<Lead>(h_implementation())
        .when(&hand_over())
        .then_err("lead.wrong_stage");
}

#[test]
fn close_as_won_from_support() {
    let state = given::<Lead>(h_support())
        .when(&close(Outcome::Won))
        .then([closed(Outcome::Won, Stage::Support)]);
    assert_eq!(state.stage, Some(Stage::Closed));
    assert_eq!(state.outcome, Some(Outcome::Won));
}

#[test]
fn win_before_support_is_a_wrong_stage() {
    given::<Lead>(h_tested())
        .when(&close(Outcome::Won))
        .then_err("lead.wrong_stage");
}

#[test]
fn an_unserviceable_lead_closes_as_lost_or_cancelled_only() {
    let mut h = h_qualified();
    h.push(checked(false));
    given::<Lead>(h.clone())
        .when(&close(Outcome::Lost))
        .then([closed(Outcome::Lost, Stage::ServiceabilityChecked)]);
    given::<Lead>(h.clone())
        .when(&close(Outcome::Cancelled))
        .then([closed(Outcome::Cancelled, Stage::ServiceabilityChecked)]);
    given::<Lead>(h)
        .when(&close(Outcome::Won))
        .then_err("lead.wrong_stage");
}

#[test]
fn closing_during_design_approval_names_the_pending_approval() {
    let state = given::<Lead>(h_approval())
        .when(&close(Outcome::Cancelled))
        .then([LeadEvent::Closed(LeadClosed {
            outcome: Outcome::Cancelled,
            reason: None,
            previous_stage: Stage::DesignApproval,
            pending_approval: Some(id(APPROVAL)),
            stage: Stage::Closed,
            by: sales(),
            at: at(13),
        })]);
    assert_eq!(state.pending_approval, None);
}

#[test]
fn cancel_during_design() {
    given::<Lead>(h_design())
        .when(&close(Outcome::Cancelled))
        .then([closed(Outcome::Cancelled, Stage::Design)]);
}

#[test]
fn a_closed_lead_takes_no_command() {
    for command in [
        close(Outcome::Lost),
        qualify(50),
        submit_design(),
        add_task(1),
        pass_testing(),
        hand_over(),
    ] {
        given::<Lead>(h_closed())
            .when(&command)
            .then_err("lead.closed");
    }
    given::<Lead>(h_closed())
        .when(&capture())
        .then_err("lead.already_exists");
}

#[test]
fn the_whole_lifecycle_folds_to_a_won_lead() {
    let state = Lead::fold(h_closed().iter());
    assert_eq!(state.stage, Some(Stage::Closed));
    assert_eq!(state.outcome, Some(Outcome::Won));
    assert_eq!(state.approved_design_version, Some(1));
    assert!(state.testing_passed);
}

// Values, codes and the catalogue

#[test]
fn bandwidth_is_a_positive_integer() {
    assert_eq!(BandwidthMbps::parse("bandwidth", 100).unwrap().get(), 100);
    assert!(BandwidthMbps::parse("bandwidth", 0).is_err());
    assert!(BandwidthMbps::parse("bandwidth", -5).is_err());
    assert!(BandwidthMbps::parse("bandwidth", i64::from(u32::MAX) + 1).is_err());
    assert!(serde_json::from_str::<BandwidthMbps>("0").is_err());
}

#[test]
fn error_codes_are_stable_and_dotted() {
    let errors = [
        LeadError::NotFound,
        LeadError::AlreadyExists,
        LeadError::Closed,
        LeadError::WrongStage {
            expected: Stages(&[Stage::Design]),
            actual: Stage::Testing,
        },
        LeadError::NotServiceable,
        LeadError::TooManyDesignVersions,
        LeadError::NoDesign,
        LeadError::UnknownDesignVersion {
            version: 3,
            latest: 2,
        },
        LeadError::DesignRejected { version: 1 },
        LeadError::UnknownApproval { approval_id: id(1) },
        LeadError::TaskExists { task_id: id(1) },
        LeadError::TaskNotFound { task_id: id(1) },
        LeadError::TaskCompleted { task_id: id(1) },
        LeadError::NoTasks,
        LeadError::TasksOpen { open: 1 },
        LeadError::DefectExists { defect_id: id(1) },
        LeadError::DefectNotFound { defect_id: id(1) },
        LeadError::DefectResolved { defect_id: id(1) },
        LeadError::NoPassedTest,
        LeadError::DefectsOpen { open: 1 },
        LeadError::TestingPassed,
        LeadError::TestingNotPassed,
    ];
    let mut codes = std::collections::BTreeSet::new();
    for e in &errors {
        assert!(e.code().starts_with("lead."), "{}", e.code());
        let message = e.to_string();
        assert_eq!(message, message.to_lowercase(), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        assert!(codes.insert(e.code()), "duplicate code {}", e.code());
    }
}

#[test]
fn every_catalogue_example_decodes_and_reencodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), 19);
    for spec in specs {
        assert_eq!(spec.stream_type, "lead");
        let event: LeadEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        let encoded = encode(&event);
        assert_eq!(encoded.schema_version, spec.version);
        assert_eq!(encoded.data, spec.example, "{} drifted", spec.event_type);
        for pointer in event.personal_fields() {
            assert!(
                spec.example.pointer(pointer).is_some(),
                "{}: {pointer} is not in the example",
                spec.event_type
            );
        }
    }
}

#[test]
fn the_captured_event_marks_its_personal_data() {
    assert_eq!(
        captured().personal_fields(),
        &[
            "/contact/name",
            "/contact/email",
            "/contact/phone",
            "/site_address"
        ]
    );
    assert!(qualified().personal_fields().is_empty());
}
