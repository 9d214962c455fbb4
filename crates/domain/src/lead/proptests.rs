//! Property tests: random command sequences keep every invariant, folding
//! the produced events rebuilds the state, and decide never panics.

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;

use super::tests::{at, contact, eur, id, long, short};
use super::*;
use crate::error::ErrorCode;
use crate::event::{decode, encode, DomainEvent};
use crate::value::{LeadScore, LongText, ShortText};

/// Small id pools, so that random commands hit existing tasks, defects and
/// approvals often enough.
fn pool_id() -> impl Strategy<Value = Uuid> {
    (1u128..=4).prop_map(id)
}

fn minute() -> impl Strategy<Value = i64> {
    0i64..100_000
}

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![
        Just(Stage::Captured),
        Just(Stage::Qualified),
        Just(Stage::ServiceabilityChecked),
        Just(Stage::Design),
        Just(Stage::DesignApproval),
        Just(Stage::Implementation),
        Just(Stage::Testing),
        Just(Stage::Support),
        Just(Stage::Closed),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Won),
        Just(Outcome::Lost),
        Just(Outcome::Cancelled)
    ]
}

fn result() -> impl Strategy<Value = TestResult> {
    prop_oneof![Just(TestResult::Passed), Just(TestResult::Failed)]
}

fn text() -> impl Strategy<Value = ShortText> {
    prop_oneof![Just(short("a")), Just(short("Pull fibre to the MDF"))]
}

fn notes() -> impl Strategy<Value = Option<LongText>> {
    option::of(Just(long("some notes")))
}

fn capture_cmd(m: i64, mbps: i64, value: i64) -> LeadCommand {
    LeadCommand::Capture {
        company: short("Nordwind"),
        contact: contact(),
        site_address: short("Am Sandtorkai 12"),
        service: short("DIA"),
        bandwidth_mbps: BandwidthMbps::parse("bandwidth", mbps).unwrap(),
        estimated_value: eur(value),
        source: short("web"),
        actor: id(99),
        at: at(m),
    }
}

/// Any command, with values from small pools.
fn command() -> impl Strategy<Value = LeadCommand> {
    use LeadCommand as C;
    let actor = pool_id;
    prop_oneof![
        (minute(), 1i64..=100_000, 0i64..=i64::MAX)
            .prop_map(|(m, mbps, v)| capture_cmd(m, mbps, v)),
        (0i64..=100, actor(), minute()).prop_map(|(s, actor, m)| C::Qualify {
            score: LeadScore::parse("score", s).unwrap(),
            actor,
            at: at(m),
        }),
        (pool_id(), actor(), minute()).prop_map(|(owner, actor, m)| C::AssignOwner {
            owner,
            actor,
            at: at(m),
        }),
        (any::<bool>(), notes(), actor(), minute()).prop_map(|(feasible, notes, actor, m)| {
            C::CheckServiceability {
                feasible,
                notes,
                actor,
                at: at(m),
            }
        }),
        (text(), vec(pool_id(), 0..3), actor(), minute()).prop_map(|(summary, docs, actor, m)| {
            C::SubmitDesign {
                summary,
                specification: long("spec"),
                documents: docs
                    .into_iter()
                    .map(|document_id| DocumentRef {
                        document_id,
                        name: short("doc.pdf"),
                    })
                    .collect(),
                actor,
                at: at(m),
            }
        }),
        (0u32..4, actor(), minute()).prop_map(|(design_version, actor, m)| {
            C::CommentOnDesign {
                design_version,
                body: long("comment"),
                actor,
                at: at(m),
            }
        }),
        (pool_id(), actor(), minute()).prop_map(|(approval_id, actor, m)| {
            C::RequestDesignApproval {
                approval_id,
                actor,
                at: at(m),
            }
        }),
        (pool_id(), minute()).prop_map(|(approval_id, m)| C::ApproveDesign {
            approval_id,
            at: at(m),
        }),
        (pool_id(), notes(), minute()).prop_map(|(approval_id, reason, m)| C::RejectDesign {
            approval_id,
            reason,
            at: at(m),
        }),
        (pool_id(), text(), actor(), minute()).prop_map(|(task_id, title, actor, m)| {
            C::AddImplementationTask {
                task_id,
                title,
                actor,
                at: at(m),
            }
        }),
        (pool_id(), pool_id(), actor(), minute()).prop_map(|(task_id, assignee, actor, m)| {
            C::AssignImplementationTask {
                task_id,
                assignee,
                actor,
                at: at(m),
            }
        }),
        (pool_id(), actor(), minute()).prop_map(|(task_id, actor, m)| {
            C::CompleteImplementationTask {
                task_id,
                actor,
                at: at(m),
            }
        }),
        (actor(), minute()).prop_map(|(actor, m)| C::CompleteImplementation { actor, at: at(m) }),
        (result(), vec(pool_id(), 0..3), actor(), minute()).prop_map(
            |(result, defects, actor, m)| C::RecordActivationTest {
                name: short("Throughput"),
                result,
                defects: defects
                    .into_iter()
                    .map(|defect_id| NewDefect {
                        defect_id,
                        title: short("defect"),
                    })
                    .collect(),
                actor,
                at: at(m),
            }
        ),
        (pool_id(), text(), actor(), minute()).prop_map(|(defect_id, title, actor, m)| {
            C::RaiseDefect {
                defect_id,
                title,
                actor,
                at: at(m),
            }
        }),
        (pool_id(), notes(), actor(), minute()).prop_map(|(defect_id, resolution, actor, m)| {
            C::ResolveDefect {
                defect_id,
                resolution,
                actor,
                at: at(m),
            }
        }),
        (actor(), minute()).prop_map(|(actor, m)| C::PassTesting { actor, at: at(m) }),
        (notes(), actor(), minute()).prop_map(|(notes, actor, m)| C::HandOverToSupport {
            notes,
            actor,
            at: at(m),
        }),
        (outcome(), option::of(text()), actor(), minute()).prop_map(
            |(outcome, reason, actor, m)| C::Close {
                outcome,
                reason,
                actor,
                at: at(m),
            }
        ),
    ]
}

/// The command that moves `lead` one step along its lifecycle; `twist`
/// sometimes takes a detour (an unserviceable site, a rejected design, a
/// failed test with a defect).
fn advance(lead: &Lead, twist: u8) -> LeadCommand {
    use LeadCommand as C;
    let actor = id(1);
    let t = at(1);
    let Some(stage) = lead.stage else {
        return capture_cmd(0, 500, 100_000);
    };
    match stage {
        Stage::Captured => C::Qualify {
            score: LeadScore::parse("score", 80).unwrap(),
            actor,
            at: t,
        },
        Stage::Qualified => C::CheckServiceability {
            feasible: !twist.is_multiple_of(8),
            notes: None,
            actor,
            at: t,
        },
        Stage::ServiceabilityChecked => C::SubmitDesign {
            summary: short("design"),
            specification: long("spec"),
            documents: vec![],
            actor,
            at: t,
        },
        Stage::Design if lead.design_rejected => C::SubmitDesign {
            summary: short("design"),
            specification: long("spec"),
            documents: vec![],
            actor,
            at: t,
        },
        Stage::Design => C::RequestDesignApproval {
            approval_id: id(1),
            actor,
            at: t,
        },
        Stage::DesignApproval if twist.is_multiple_of(4) => C::RejectDesign {
            approval_id: lead.pending_approval.unwrap_or_default(),
            reason: None,
            at: t,
        },
        Stage::DesignApproval => C::ApproveDesign {
            approval_id: lead.pending_approval.unwrap_or_default(),
            at: t,
        },
        Stage::Implementation => match lead.tasks.iter().find(|(_, task)| !task.completed) {
            Some((task_id, _)) => C::CompleteImplementationTask {
                task_id: *task_id,
                actor,
                at: t,
            },
            None if lead.tasks.is_empty() => C::AddImplementationTask {
                task_id: id(1),
                title: short("task"),
                actor,
                at: t,
            },
            None => C::CompleteImplementation { actor, at: t },
        },
        Stage::Testing => {
            if lead.testing_passed {
                C::HandOverToSupport {
                    notes: None,
                    actor,
                    at: t,
                }
            } else if let Some(defect_id) = lead.open_defects.iter().next() {
                C::ResolveDefect {
                    defect_id: *defect_id,
                    resolution: None,
                    actor,
                    at: t,
                }
            } else if lead.passed_tests == 0 && twist.is_multiple_of(3) {
                C::RecordActivationTest {
                    name: short("test"),
                    result: TestResult::Failed,
                    defects: vec![NewDefect {
                        defect_id: id(u128::from(twist)),
                        title: short("defect"),
                    }],
                    actor,
                    at: t,
                }
            } else if lead.passed_tests == 0 {
                C::RecordActivationTest {
                    name: short("test"),
                    result: TestResult::Passed,
                    defects: vec![],
                    actor,
                    at: t,
                }
            } else {
                C::PassTesting { actor, at: t }
            }
        }
        Stage::Support | Stage::Closed => C::Close {
            outcome: Outcome::Won,
            reason: None,
            actor,
            at: t,
        },
    }
}

#[derive(Debug, Clone)]
enum Step {
    Advance(u8),
    Do(Box<LeadCommand>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => any::<u8>().prop_map(Step::Advance),
        2 => command().prop_map(|c| Step::Do(Box::new(c))),
    ]
}

/// Invariants of any state reached by decide + evolve.
fn check_state(lead: &Lead) -> Result<(), TestCaseError> {
    let stage = lead.stage;
    prop_assert_eq!(lead.outcome.is_some(), stage == Some(Stage::Closed));
    prop_assert_eq!(
        lead.pending_approval.is_some(),
        stage == Some(Stage::DesignApproval)
    );
    if matches!(stage, Some(s) if s >= Stage::Design && s != Stage::Closed) {
        prop_assert!(lead.design_version >= 1);
        prop_assert_eq!(lead.feasible, Some(true));
    }
    if matches!(stage, Some(s) if s >= Stage::Implementation && s != Stage::Closed) {
        prop_assert_eq!(lead.approved_design_version, Some(lead.design_version));
    }
    if matches!(stage, Some(Stage::Testing | Stage::Support)) {
        prop_assert!(!lead.tasks.is_empty());
        prop_assert!(lead.tasks.values().all(|t| t.completed));
    }
    if stage == Some(Stage::Support) {
        prop_assert!(lead.testing_passed);
    }
    if lead.testing_passed {
        prop_assert!(lead.passed_tests >= 1);
        prop_assert!(lead.open_defects.is_empty());
    }
    prop_assert!(lead.open_defects.is_disjoint(&lead.resolved_defects));
    Ok(())
}

/// Invariants of one accepted decision.
fn check_step(before: &Lead, events: &[LeadEvent], after: &Lead) -> Result<(), TestCaseError> {
    let rejected = events
        .iter()
        .any(|e| matches!(e, LeadEvent::DesignRejected(_)));
    let went_back = before.stage == Some(Stage::DesignApproval)
        && after.stage == Some(Stage::Design)
        && rejected;
    prop_assert!(
        after.stage >= before.stage || went_back,
        "stage went from {:?} to {:?}",
        before.stage,
        after.stage
    );
    for event in events {
        match event {
            LeadEvent::DesignSubmitted(e) => {
                prop_assert_eq!(Some(e.version), before.design_version.checked_add(1));
            }
            LeadEvent::Closed(e) => {
                prop_assert_eq!(Some(e.previous_stage), before.stage);
                prop_assert_eq!(e.pending_approval, before.pending_approval);
                if e.outcome == Outcome::Won {
                    prop_assert_eq!(e.previous_stage, Stage::Support);
                }
            }
            _ => {}
        }
        // Every produced event survives the envelope.
        let encoded = encode(event);
        let decoded: LeadEvent = decode(encoded.event_type, encoded.schema_version, encoded.data)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, event);
        prop_assert_eq!(decoded.event_type(), event.event_type());
    }
    Ok(())
}

/// Arbitrary states, including ones no history reaches.
fn any_lead() -> impl Strategy<Value = Lead> {
    (
        (
            option::of(stage()),
            option::of(pool_id()),
            option::of((0i64..=100).prop_map(|s| LeadScore::parse("score", s).unwrap())),
            option::of(any::<bool>()),
            prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()],
            any::<bool>(),
            option::of(pool_id()),
        ),
        (
            option::of(any::<u32>()),
            btree_map(pool_id(), (option::of(pool_id()), any::<bool>()), 0..4),
            prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
            btree_set(pool_id(), 0..4),
            btree_set(pool_id(), 0..4),
            any::<bool>(),
            option::of(outcome()),
        ),
    )
        .prop_map(
            |(
                (stage, owner, score, feasible, design_version, design_rejected, pending_approval),
                (
                    approved_design_version,
                    tasks,
                    passed_tests,
                    open_defects,
                    resolved_defects,
                    testing_passed,
                    outcome,
                ),
            )| Lead {
                stage,
                owner,
                estimated_value: None,
                score,
                feasible,
                design_version,
                design_rejected,
                pending_approval,
                approved_design_version,
                tasks: tasks
                    .into_iter()
                    .map(|(k, (assignee, completed))| {
                        (
                            k,
                            Task {
                                assignee,
                                completed,
                            },
                        )
                    })
                    .collect(),
                passed_tests,
                open_defects,
                resolved_defects,
                testing_passed,
                outcome,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequences_keep_the_invariants(steps in vec(step(), 0..80)) {
        let mut state = Lead::default();
        let mut history: Vec<LeadEvent> = Vec::new();
        for step in steps {
            let command = match step {
                Step::Advance(twist) => advance(&state, twist),
                Step::Do(command) => *command,
            };
            match state.decide(&command) {
                Ok(events) => {
                    prop_assert!(
                        state.stage != Some(Stage::Closed),
                        "a closed lead accepted {:?}",
                        command
                    );
                    let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                    check_step(&state, &events, &after)?;
                    history.extend(events);
                    state = after;
                }
                Err(e) => {
                    if state.stage == Some(Stage::Closed) {
                        let code = e.code();
                        prop_assert!(
                            code == "lead.closed" || code == "lead.already_exists",
                            "closed lead refused with {}",
                            code
                        );
                    }
                }
            }
            check_state(&state)?;
            prop_assert_eq!(&Lead::fold(history.iter()), &state);
        }
    }

    #[test]
    fn decide_never_panics(lead in any_lead(), command in command()) {
        if let Ok(events) = lead.decide(&command) {
            // Applying what was decided never panics either.
            let _ = events.iter().fold(lead, |s, e| s.evolve(e));
        }
    }
}

#[test]
fn the_driver_reaches_a_won_lead() {
    let mut state = Lead::default();
    for _ in 0..40 {
        if state.stage == Some(Stage::Closed) {
            break;
        }
        let events = state.decide(&advance(&state, 1)).unwrap();
        state = events.iter().fold(state, |s, e| s.evolve(e));
    }
    assert_eq!(state.outcome, Some(Outcome::Won));
}
