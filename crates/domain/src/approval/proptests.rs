//! Property tests: random requests and decisions keep every invariant,
//! folding the produced events rebuilds the state, and decide never panics.

use std::collections::BTreeMap;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{at, id, subject};
use super::*;
use crate::error::ErrorCode;
use crate::event::{decode, encode, DomainEvent};
use crate::value::{LongText, ShortText};

const ROLES: [&str; 2] = ["approver", "manager"];

fn user() -> impl Strategy<Value = Uuid> {
    (1u128..=5).prop_map(id)
}

fn role() -> impl Strategy<Value = String> {
    prop_oneof![Just(ROLES[0].to_owned()), Just(ROLES[1].to_owned())]
}

fn approver() -> impl Strategy<Value = Approver> {
    prop_oneof![
        3 => user().prop_map(Approver::User),
        1 => role().prop_map(Approver::Role),
    ]
}

fn level_spec() -> impl Strategy<Value = LevelSpec> {
    (
        vec(approver(), 0..4),
        prop_oneof![4 => 1u16..=2, 1 => Just(0u16), 1 => 3u16..=4],
        option::of(prop_oneof![Just(0u64), 1u64..=7200, Just(u64::MAX)]),
    )
        .prop_map(|(approvers, required, due_secs)| LevelSpec {
            approvers,
            required,
            due_secs,
        })
}

/// A level that usually passes validation.
fn sensible_level_spec() -> impl Strategy<Value = LevelSpec> {
    (vec(approver(), 1..4), 1u16..=2, option::of(1u64..=7200)).prop_map(
        |(approvers, required, due_secs)| LevelSpec {
            approvers,
            required,
            due_secs,
        },
    )
}

fn minute() -> impl Strategy<Value = i64> {
    0i64..1000
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        8 => Just(Decision::Approve),
        1 => Just(Decision::Reject),
        1 => Just(Decision::RequestChanges),
    ]
}

fn comment() -> impl Strategy<Value = Option<LongText>> {
    prop_oneof![
        3 => Just(Some(LongText::parse("comment", "looks fine").unwrap())),
        1 => Just(None),
    ]
}

fn request() -> impl Strategy<Value = ApprovalCommand> {
    (vec(level_spec(), 0..4), user(), minute()).prop_map(|(levels, requested_by, m)| {
        ApprovalCommand::Request {
            subject: subject(),
            value: None,
            levels,
            requested_by,
            at: at(m),
        }
    })
}

/// The opening request: mostly sensible, sometimes anything.
fn first_request() -> impl Strategy<Value = ApprovalCommand> {
    prop_oneof![
        4 => (vec(sensible_level_spec(), 1..4), user(), minute()).prop_map(
            |(levels, requested_by, m)| ApprovalCommand::Request {
                subject: subject(),
                value: None,
                levels,
                requested_by,
                at: at(m),
            }
        ),
        1 => request(),
    ]
}

fn command() -> impl Strategy<Value = ApprovalCommand> {
    prop_oneof![
        1 => request(),
        12 => (decision(), comment(), user(), btree_set(role(), 0..3), minute()).prop_map(
            |(decision, comment, actor, roles, m)| ApprovalCommand::Decide {
                decision,
                comment,
                actor,
                actor_roles: roles.into_iter().collect(),
                at: at(m),
            }
        ),
        2 => (0u16..4, prop_oneof![minute(), Just(i64::from(i32::MAX))])
            .prop_map(|(level, m)| ApprovalCommand::Escalate { level, at: at(m) }),
        1 => (option::of(Just(ShortText::parse("reason", "withdrawn").unwrap())), user(), minute())
            .prop_map(|(reason, actor, m)| ApprovalCommand::Cancel {
                reason,
                actor,
                at: at(m),
            }),
    ]
}

/// What the event log says, rebuilt independently of `evolve`.
#[derive(Default)]
struct Log {
    levels: Vec<LevelSpec>,
    /// (level, approver) → decisions recorded.
    decisions: BTreeMap<(u16, Uuid), usize>,
    /// level → approvals recorded.
    approvals: BTreeMap<u16, usize>,
    completed: Vec<u16>,
    terminal: Option<Status>,
}

fn check_events(
    before: &Approval,
    command: &ApprovalCommand,
    events: &[ApprovalEvent],
    log: &mut Log,
) -> Result<(), TestCaseError> {
    use ApprovalEvent as E;

    prop_assert!(!events.is_empty());
    prop_assert!(
        log.terminal.is_none(),
        "a closed approval accepted {:?}",
        command
    );
    for (i, event) in events.iter().enumerate() {
        match event {
            E::Requested(e) => {
                prop_assert!(before.status.is_none());
                prop_assert!(!e.levels.is_empty());
                for level in &e.levels {
                    prop_assert!(level.required >= 1 && !level.approvers.is_empty());
                }
                log.levels = e.levels.clone();
            }
            E::DecisionRecorded(e) => {
                prop_assert_eq!(i, 0);
                prop_assert_eq!(before.status, Some(Status::Open));
                prop_assert_eq!(e.level, before.current_level);
                let ApprovalCommand::Decide { actor_roles, .. } = command else {
                    return Err(TestCaseError::fail("decision without a decide command"));
                };
                let spec = log.levels.get(usize::from(e.level));
                prop_assert!(spec.is_some());
                let eligible = spec.is_some_and(|spec| {
                    spec.approvers.iter().any(|a| match a {
                        Approver::User(u) => *u == e.approver,
                        Approver::Role(r) => actor_roles.contains(r),
                    })
                });
                prop_assert!(eligible, "ineligible decision {:?}", e);
                let count = log.decisions.entry((e.level, e.approver)).or_default();
                *count += 1;
                prop_assert_eq!(*count, 1, "two decisions by one approver at one level");
                if e.decision == Decision::Approve {
                    *log.approvals.entry(e.level).or_default() += 1;
                } else {
                    prop_assert!(e.comment.is_some());
                }
            }
            E::LevelCompleted(e) => {
                let expected = u16::try_from(log.completed.len()).unwrap_or(u16::MAX);
                prop_assert_eq!(e.level, expected, "levels complete in order");
                let required = log
                    .levels
                    .get(usize::from(e.level))
                    .map_or(u16::MAX, |l| l.required);
                let approvals = log.approvals.get(&e.level).copied().unwrap_or(0);
                prop_assert!(approvals >= usize::from(required));
                prop_assert_eq!(usize::from(e.approvals), approvals);
                log.completed.push(e.level);
            }
            E::Granted(_) => {
                prop_assert_eq!(log.completed.len(), log.levels.len());
                for (index, level) in log.levels.iter().enumerate() {
                    let index = u16::try_from(index).unwrap_or(u16::MAX);
                    let approvals = log.approvals.get(&index).copied().unwrap_or(0);
                    prop_assert!(approvals >= usize::from(level.required));
                }
                log.terminal = Some(Status::Granted);
            }
            E::Rejected(_) => {
                prop_assert!(matches!(
                    events.first(),
                    Some(E::DecisionRecorded(d)) if d.decision == Decision::Reject
                ));
                log.terminal = Some(Status::Rejected);
            }
            E::ChangesRequested(_) => {
                prop_assert!(matches!(
                    events.first(),
                    Some(E::DecisionRecorded(d)) if d.decision == Decision::RequestChanges
                ));
                log.terminal = Some(Status::ChangesRequested);
            }
            E::Escalated(e) => {
                prop_assert_eq!(e.level, before.current_level);
                prop_assert!(e.at >= e.due_at);
                let already = before
                    .levels
                    .get(usize::from(e.level))
                    .is_some_and(|l| l.escalated);
                prop_assert!(!already);
            }
            E::Cancelled(_) => log.terminal = Some(Status::Cancelled),
        }
        let encoded = encode(event);
        let decoded: ApprovalEvent =
            decode(encoded.event_type, encoded.schema_version, encoded.data)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, event);
        prop_assert_eq!(decoded.event_type(), event.event_type());
    }
    Ok(())
}

/// Arbitrary states, including ones no history reaches.
fn any_approval() -> impl Strategy<Value = Approval> {
    let level = (
        level_spec(),
        btree_set(user(), 0..3),
        btree_set(user(), 0..3),
        option::of(prop_oneof![
            minute().prop_map(at),
            Just(DateTime::<Utc>::MAX_UTC)
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(spec, approvals, decided, opened_at, escalated, completed)| Level {
                spec,
                approvals,
                decided,
                opened_at,
                escalated,
                completed,
            },
        );
    (
        option::of(prop_oneof![
            Just(Status::Open),
            Just(Status::Granted),
            Just(Status::Rejected),
            Just(Status::ChangesRequested),
            Just(Status::Cancelled),
        ]),
        option::of(Just(subject())),
        vec(level, 0..4),
        prop_oneof![0u16..5, Just(u16::MAX)],
    )
        .prop_map(|(status, subject, levels, current_level)| Approval {
            requested_by: None,
            status,
            subject,
            levels,
            current_level,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequences_keep_the_invariants(
        first in first_request(),
        commands in vec(command(), 0..40),
    ) {
        let mut state = Approval::default();
        let mut history: Vec<ApprovalEvent> = Vec::new();
        let mut log = Log::default();
        for command in std::iter::once(first).chain(commands) {
            let before_status = state.status;
            match state.decide(&command) {
                Ok(events) => {
                    check_events(&state, &command, &events, &mut log)?;
                    state = events.iter().fold(state, |s, e| s.evolve(e));
                    history.extend(events);
                }
                Err(e) => {
                    if matches!(before_status, Some(s) if s != Status::Open) {
                        prop_assert!(
                            e.code() == "approval.closed" || e.code() == "approval.already_exists",
                            "closed approval refused with {}",
                            e.code()
                        );
                    }
                }
            }
            if let Some(terminal) = log.terminal {
                prop_assert_eq!(state.status, Some(terminal));
            }
            if state.status == Some(Status::Granted) {
                for level in &state.levels {
                    prop_assert!(level.completed);
                    prop_assert!(level.approvals.len() >= usize::from(level.spec.required));
                }
            }
            for level in &state.levels {
                prop_assert!(level.approvals.is_subset(&level.decided));
            }
            prop_assert_eq!(&Approval::fold(history.iter()), &state);
        }
    }

    #[test]
    fn decide_never_panics(approval in any_approval(), command in command()) {
        if let Ok(events) = approval.decide(&command) {
            let _ = events.iter().fold(approval, |s, e| s.evolve(e));
        }
    }
}
