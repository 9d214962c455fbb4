//! Given / when / then for every approval command, its success and each
//! refusal.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::error::ErrorCode;
use crate::event::{decode, encode, DomainEvent};
use crate::testing::given;
use crate::value::{LongText, ShortText};

pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 11, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::minutes(minute)
}

pub(super) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn long(s: &str) -> LongText {
    LongText::parse("comment", s).unwrap()
}

const ANN: u128 = 1;
const BOB: u128 = 2;
const CAT: u128 = 3;
const DAN: u128 = 4;
const REQUESTER: u128 = 0x5e9;

pub(super) fn subject() -> Subject {
    Subject {
        kind: SubjectKind::LeadDesign,
        id: id(0x1ead),
    }
}

fn user(n: u128) -> Approver {
    Approver::User(id(n))
}

fn role(name: &str) -> Approver {
    Approver::Role(name.to_owned())
}

/// Level 0: one approver (role), due in an hour. Level 1: two of Ann,
/// Bob and Cat, no deadline.
fn two_levels() -> Vec<LevelSpec> {
    vec![
        LevelSpec {
            approvers: vec![role("approver")],
            required: 1,
            due_secs: Some(3600),
        },
        LevelSpec {
            approvers: vec![user(ANN), user(BOB), user(CAT)],
            required: 2,
            due_secs: None,
        },
    ]
}

fn request(levels: Vec<LevelSpec>) -> ApprovalCommand {
    ApprovalCommand::Request {
        subject: subject(),
        value: None,
        levels,
        requested_by: id(REQUESTER),
        at: at(0),
    }
}

fn requested(levels: Vec<LevelSpec>) -> ApprovalEvent {
    ApprovalEvent::Requested(ApprovalRequested {
        subject: subject(),
        value: None,
        levels,
        requested_by: id(REQUESTER),
        status: Status::Open,
        at: at(0),
    })
}

fn decide(decision: Decision, actor: u128, roles: &[&str], minute: i64) -> ApprovalCommand {
    ApprovalCommand::Decide {
        decision,
        comment: match decision {
            Decision::Approve => None,
            Decision::Reject | Decision::RequestChanges => Some(long("not like this")),
        },
        actor: id(actor),
        actor_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        at: at(minute),
    }
}

fn approve(actor: u128, roles: &[&str], minute: i64) -> ApprovalCommand {
    decide(Decision::Approve, actor, roles, minute)
}

fn recorded(level: u16, approver: u128, decision: Decision, minute: i64) -> ApprovalEvent {
    ApprovalEvent::DecisionRecorded(DecisionRecorded {
        level,
        approver: id(approver),
        decision,
        comment: match decision {
            Decision::Approve => None,
            Decision::Reject | Decision::RequestChanges => Some(long("not like this")),
        },
        at: at(minute),
    })
}

fn level_completed(
    level: u16,
    approvals: u16,
    next_level: Option<u16>,
    minute: i64,
) -> ApprovalEvent {
    ApprovalEvent::LevelCompleted(LevelCompleted {
        level,
        approvals,
        next_level,
        at: at(minute),
    })
}

fn granted(minute: i64) -> ApprovalEvent {
    ApprovalEvent::Granted(ApprovalGranted {
        subject: subject(),
        status: Status::Granted,
        at: at(minute),
    })
}

/// Requested, level 0 approved by Dan the approver at minute 10.
fn h_level_1() -> Vec<ApprovalEvent> {
    vec![
        requested(two_levels()),
        recorded(0, DAN, Decision::Approve, 10),
        level_completed(0, 1, Some(1), 10),
    ]
}

fn h_granted() -> Vec<ApprovalEvent> {
    let mut h = h_level_1();
    h.extend([
        recorded(1, ANN, Decision::Approve, 20),
        recorded(1, BOB, Decision::Approve, 30),
        level_completed(1, 2, None, 30),
        granted(30),
    ]);
    h
}

fn h_rejected() -> Vec<ApprovalEvent> {
    vec![
        requested(two_levels()),
        recorded(0, DAN, Decision::Reject, 10),
        ApprovalEvent::Rejected(ApprovalRejected {
            subject: subject(),
            level: 0,
            by: id(DAN),
            comment: Some(long("not like this")),
            status: Status::Rejected,
            at: at(10),
        }),
    ]
}

fn h_changes_requested() -> Vec<ApprovalEvent> {
    vec![
        requested(two_levels()),
        recorded(0, DAN, Decision::RequestChanges, 10),
        ApprovalEvent::ChangesRequested(ChangesRequested {
            subject: subject(),
            level: 0,
            by: id(DAN),
            comment: Some(long("not like this")),
            status: Status::ChangesRequested,
            at: at(10),
        }),
    ]
}

fn cancelled() -> ApprovalEvent {
    ApprovalEvent::Cancelled(ApprovalCancelled {
        subject: subject(),
        reason: Some(ShortText::parse("reason", "lead cancelled").unwrap()),
        by: id(REQUESTER),
        status: Status::Cancelled,
        at: at(5),
    })
}

fn cancel() -> ApprovalCommand {
    ApprovalCommand::Cancel {
        reason: Some(ShortText::parse("reason", "lead cancelled").unwrap()),
        actor: id(REQUESTER),
        at: at(5),
    }
}

fn escalate(level: u16, minute: i64) -> ApprovalCommand {
    ApprovalCommand::Escalate {
        level,
        at: at(minute),
    }
}

// Request

#[test]
fn request_opens_level_zero() {
    let state = given::<Approval>([])
        .when(&request(two_levels()))
        .then([requested(two_levels())]);
    assert_eq!(state.status, Some(Status::Open));
    assert_eq!(state.current_level, 0);
    assert_eq!(state.levels.len(), 2);
    assert_eq!(state.levels[0].opened_at, Some(at(0)));
    assert_eq!(state.levels[1].opened_at, None);
}

#[test]
fn request_twice_is_refused() {
    given::<Approval>([requested(two_levels())])
        .when(&request(two_levels()))
        .then_err("approval.already_exists");
}

#[test]
fn request_with_senseless_levels_is_refused() {
    let level = |approvers: Vec<Approver>, required: u16| LevelSpec {
        approvers,
        required,
        due_secs: None,
    };
    let too_many: Vec<LevelSpec> = (0..=MAX_LEVELS)
        .map(|_| level(vec![user(ANN)], 1))
        .collect();
    for levels in [
        vec![],
        too_many,
        vec![level(vec![], 1)],
        vec![level(vec![user(ANN)], 0)],
        vec![level(vec![user(ANN), user(ANN)], 2)],
        vec![
            level(vec![user(ANN)], 1),
            level(vec![user(ANN), user(BOB)], 3),
        ],
    ] {
        given::<Approval>([])
            .when(&request(levels))
            .then_err("approval.invalid_levels");
    }
}

#[test]
fn a_role_level_may_require_more_approvals_than_listed_approvers() {
    let levels = vec![LevelSpec {
        approvers: vec![role("manager")],
        required: 3,
        due_secs: None,
    }];
    given::<Approval>([])
        .when(&request(levels.clone()))
        .then([requested(levels)]);
}

#[test]
fn commands_on_a_missing_approval_are_refused() {
    for command in [approve(ANN, &[], 1), escalate(0, 100), cancel()] {
        given::<Approval>([])
            .when(&command)
            .then_err("approval.not_found");
    }
}

// Decisions

#[test]
fn an_approval_short_of_required_only_records_the_decision() {
    let state = given::<Approval>(h_level_1())
        .when(&approve(ANN, &[], 20))
        .then([recorded(1, ANN, Decision::Approve, 20)]);
    assert_eq!(state.current_level, 1);
    assert_eq!(state.levels[1].approvals.len(), 1);
}

#[test]
fn the_required_approval_completes_the_level_and_opens_the_next() {
    let state = given::<Approval>([requested(two_levels())])
        .when(&approve(DAN, &["approver"], 10))
        .then([
            recorded(0, DAN, Decision::Approve, 10),
            level_completed(0, 1, Some(1), 10),
        ]);
    assert_eq!(state.current_level, 1);
    assert!(state.levels[0].completed);
    assert_eq!(state.levels[1].opened_at, Some(at(10)));
    assert_eq!(state.status, Some(Status::Open));
}

#[test]
fn completing_the_last_level_grants_in_one_decision() {
    let mut h = h_level_1();
    h.push(recorded(1, ANN, Decision::Approve, 20));
    let state = given::<Approval>(h).when(&approve(BOB, &[], 30)).then([
        recorded(1, BOB, Decision::Approve, 30),
        level_completed(1, 2, None, 30),
        granted(30),
    ]);
    assert_eq!(state.status, Some(Status::Granted));
}

#[test]
fn a_single_level_single_approver_grants_at_once() {
    let levels = vec![LevelSpec {
        approvers: vec![user(ANN)],
        required: 1,
        due_secs: None,
    }];
    given::<Approval>([requested(levels)])
        .when(&approve(ANN, &[], 1))
        .then([
            recorded(0, ANN, Decision::Approve, 1),
            level_completed(0, 1, None, 1),
            granted(1),
        ]);
}

#[test]
fn only_eligible_approvers_of_the_current_level_decide() {
    // No approver role.
    given::<Approval>([requested(two_levels())])
        .when(&approve(DAN, &["sales"], 10))
        .then_err("approval.not_eligible");
    // Ann is listed at level 1, but level 0 is deciding.
    given::<Approval>([requested(two_levels())])
        .when(&approve(ANN, &[], 10))
        .then_err("approval.not_eligible");
    // Dan the approver is not listed at level 1.
    given::<Approval>(h_level_1())
        .when(&approve(DAN, &["approver"], 20))
        .then_err("approval.not_eligible");
    // Not eligible to reject either.
    given::<Approval>(h_level_1())
        .when(&decide(Decision::Reject, DAN, &[], 20))
        .then_err("approval.not_eligible");
}

#[test]
fn one_decision_per_approver_per_level() {
    let levels = vec![LevelSpec {
        approvers: vec![user(ANN), user(BOB)],
        required: 2,
        due_secs: None,
    }];
    given::<Approval>([requested(levels), recorded(0, ANN, Decision::Approve, 1)])
        .when(&approve(ANN, &[], 2))
        .then_err("approval.already_decided");
}

#[test]
fn the_same_person_may_decide_again_at_a_later_level() {
    let levels = vec![
        LevelSpec {
            approvers: vec![user(ANN)],
            required: 1,
            due_secs: None,
        },
        LevelSpec {
            approvers: vec![role("manager")],
            required: 1,
            due_secs: None,
        },
    ];
    given::<Approval>([
        requested(levels),
        recorded(0, ANN, Decision::Approve, 1),
        level_completed(0, 1, Some(1), 1),
    ])
    .when(&approve(ANN, &["manager"], 2))
    .then([
        recorded(1, ANN, Decision::Approve, 2),
        level_completed(1, 1, None, 2),
        granted(2),
    ]);
}

#[test]
fn a_rejection_ends_the_approval() {
    let state = given::<Approval>([requested(two_levels())])
        .when(&decide(Decision::Reject, DAN, &["approver"], 10))
        .then(h_rejected().into_iter().skip(1));
    assert_eq!(state.status, Some(Status::Rejected));
}

#[test]
fn a_rejection_at_a_later_level_ends_it_too() {
    let mut h = h_level_1();
    h.push(recorded(1, ANN, Decision::Approve, 20));
    given::<Approval>(h)
        .when(&decide(Decision::Reject, CAT, &[], 30))
        .then([
            recorded(1, CAT, Decision::Reject, 30),
            ApprovalEvent::Rejected(ApprovalRejected {
                subject: subject(),
                level: 1,
                by: id(CAT),
                comment: Some(long("not like this")),
                status: Status::Rejected,
                at: at(30),
            }),
        ]);
}

#[test]
fn a_request_for_changes_ends_the_approval() {
    let state = given::<Approval>([requested(two_levels())])
        .when(&decide(Decision::RequestChanges, DAN, &["approver"], 10))
        .then(h_changes_requested().into_iter().skip(1));
    assert_eq!(state.status, Some(Status::ChangesRequested));
}

#[test]
fn rejections_and_requests_for_changes_need_a_comment() {
    for decision in [Decision::Reject, Decision::RequestChanges] {
        given::<Approval>([requested(two_levels())])
            .when(&ApprovalCommand::Decide {
                decision,
                comment: None,
                actor: id(DAN),
                actor_roles: vec!["approver".into()],
                at: at(10),
            })
            .then_err("approval.comment_required");
    }
}

#[test]
fn an_approval_may_carry_a_comment() {
    given::<Approval>([requested(two_levels())])
        .when(&ApprovalCommand::Decide {
            decision: Decision::Approve,
            comment: Some(long("fine by me")),
            actor: id(DAN),
            actor_roles: vec!["approver".into()],
            at: at(10),
        })
        .then([
            ApprovalEvent::DecisionRecorded(DecisionRecorded {
                level: 0,
                approver: id(DAN),
                decision: Decision::Approve,
                comment: Some(long("fine by me")),
                at: at(10),
            }),
            level_completed(0, 1, Some(1), 10),
        ]);
}

#[test]
fn a_decided_or_cancelled_approval_takes_nothing_more() {
    let mut h_cancelled = vec![requested(two_levels())];
    h_cancelled.push(cancelled());
    for history in [
        h_granted(),
        h_rejected(),
        h_changes_requested(),
        h_cancelled,
    ] {
        for command in [
            approve(CAT, &["approver"], 40),
            decide(Decision::Reject, CAT, &["approver"], 40),
            escalate(0, 1000),
            escalate(1, 1000),
            cancel(),
        ] {
            given::<Approval>(history.clone())
                .when(&command)
                .then_err("approval.closed");
        }
    }
}

#[test]
fn closed_names_the_status() {
    let state = Approval::fold(h_changes_requested().iter());
    let err = state.decide(&cancel()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "approval is changes_requested and takes no more decisions"
    );
}

// Escalation

#[test]
fn an_overdue_level_escalates() {
    let state = given::<Approval>([requested(two_levels())])
        .when(&escalate(0, 60))
        .then([ApprovalEvent::Escalated(ApprovalEscalated {
            level: 0,
            due_at: at(60),
            at: at(60),
        })]);
    assert!(state.levels[0].escalated);
    // Escalation does not change who may decide.
    given::<Approval>([requested(two_levels())])
        .when(&escalate(0, 61))
        .then([ApprovalEvent::Escalated(ApprovalEscalated {
            level: 0,
            due_at: at(60),
            at: at(61),
        })]);
}

#[test]
fn a_level_before_its_deadline_does_not_escalate() {
    given::<Approval>([requested(two_levels())])
        .when(&escalate(0, 59))
        .then_err("approval.not_due");
}

#[test]
fn a_level_without_deadline_does_not_escalate() {
    given::<Approval>(h_level_1())
        .when(&escalate(1, 10_000))
        .then_err("approval.no_deadline");
}

#[test]
fn only_the_current_level_escalates() {
    given::<Approval>([requested(two_levels())])
        .when(&escalate(1, 1000))
        .then_err("approval.wrong_level");
    given::<Approval>(h_level_1())
        .when(&escalate(0, 1000))
        .then_err("approval.wrong_level");
}

#[test]
fn a_level_escalates_once() {
    given::<Approval>([
        requested(two_levels()),
        ApprovalEvent::Escalated(ApprovalEscalated {
            level: 0,
            due_at: at(60),
            at: at(60),
        }),
    ])
    .when(&escalate(0, 120))
    .then_err("approval.already_escalated");
}

#[test]
fn a_later_level_is_due_from_when_it_opened() {
    let levels = vec![
        LevelSpec {
            approvers: vec![user(ANN)],
            required: 1,
            due_secs: None,
        },
        LevelSpec {
            approvers: vec![user(BOB)],
            required: 1,
            due_secs: Some(600),
        },
    ];
    let h = vec![
        requested(levels),
        recorded(0, ANN, Decision::Approve, 30),
        level_completed(0, 1, Some(1), 30),
    ];
    given::<Approval>(h.clone())
        .when(&escalate(1, 39))
        .then_err("approval.not_due");
    given::<Approval>(h)
        .when(&escalate(1, 40))
        .then([ApprovalEvent::Escalated(ApprovalEscalated {
            level: 1,
            due_at: at(40),
            at: at(40),
        })]);
}

// Cancel

#[test]
fn an_open_approval_can_be_cancelled() {
    let state = given::<Approval>(h_level_1())
        .when(&cancel())
        .then([cancelled()]);
    assert_eq!(state.status, Some(Status::Cancelled));
}

// Codes and the catalogue

#[test]
fn error_codes_are_stable_and_dotted() {
    let errors = [
        ApprovalError::NotFound,
        ApprovalError::AlreadyExists,
        ApprovalError::InvalidLevels {
            reason: "level 0 has no approvers".into(),
        },
        ApprovalError::Closed {
            status: Status::Granted,
        },
        ApprovalError::NotEligible { level: 0 },
        ApprovalError::AlreadyDecided { level: 0 },
        ApprovalError::CommentRequired,
        ApprovalError::WrongLevel {
            level: 1,
            current: 0,
        },
        ApprovalError::NoDeadline { level: 0 },
        ApprovalError::NotDue {
            level: 0,
            due_at: at(60),
        },
        ApprovalError::AlreadyEscalated { level: 0 },
    ];
    let mut codes = std::collections::BTreeSet::new();
    for e in &errors {
        assert!(e.code().starts_with("approval."), "{}", e.code());
        let message = e.to_string();
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        assert!(codes.insert(e.code()), "duplicate code {}", e.code());
    }
}

#[test]
fn every_catalogue_example_decodes_and_reencodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), 8);
    for spec in specs {
        assert_eq!(spec.stream_type, "approval");
        let event: ApprovalEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        assert!(event.personal_fields().is_empty());
        let encoded = encode(&event);
        assert_eq!(encoded.schema_version, spec.version);
        assert_eq!(encoded.data, spec.example, "{} drifted", spec.event_type);
    }
}
