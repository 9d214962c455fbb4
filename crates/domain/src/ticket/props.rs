//! Property tests: random command sequences keep every invariant, folding
//! the produced events rebuilds the same state, and `decide` never panics,
//! even on states no command sequence can reach.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::event::encode;

const CUSTOMER: Uuid = Uuid::from_u128(0xc001);
const MANAGER: Uuid = Uuid::from_u128(0xa001);
const EXPERTS: [Uuid; 3] = [
    Uuid::from_u128(0xe001),
    Uuid::from_u128(0xe002),
    Uuid::from_u128(0xe003),
];
const SURVEYS: [Uuid; 2] = [Uuid::from_u128(0x5001), Uuid::from_u128(0x5002)];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap()
}

fn minutes(m: i64) -> DateTime<Utc> {
    base() + TimeDelta::minutes(m)
}

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s).unwrap()
}

/// Who acts, resolved against the state when the step runs, so that random
/// sequences often hit the assigned expert and reach deep states.
#[derive(Debug, Clone, Copy)]
enum Who {
    Customer,
    Manager,
    Current,
    Expert(usize),
}

impl Who {
    fn id(self, state: &Ticket) -> Uuid {
        match self {
            Who::Customer => CUSTOMER,
            Who::Manager => MANAGER,
            Who::Current => state.expert_id.unwrap_or(EXPERTS[0]),
            Who::Expert(i) => EXPERTS[i % EXPERTS.len()],
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Open(Priority),
    Assign(Who, bool),
    Accept(Who),
    Reject(Who),
    Start(Who),
    Comment(Who),
    ChangePriority(Priority),
    Resolve(Who),
    Reopen(Who),
    Close(Who),
    Breach(SlaStage, i64, i64),
    Escalate(bool),
    SendSurvey(usize),
    Answer(Who, usize, u8, bool),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        1 => Just(Who::Customer),
        1 => Just(Who::Manager),
        4 => Just(Who::Current),
        2 => (0..EXPERTS.len()).prop_map(Who::Expert),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::P1),
        Just(Priority::P2),
        Just(Priority::P3),
        Just(Priority::P4),
    ]
}

fn stage() -> impl Strategy<Value = SlaStage> {
    prop_oneof![
        Just(SlaStage::Assign),
        Just(SlaStage::FirstResponse),
        Just(SlaStage::Resolve),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => priority().prop_map(Step::Open),
        3 => (who(), any::<bool>()).prop_map(|(w, m)| Step::Assign(w, m)),
        3 => who().prop_map(Step::Accept),
        2 => who().prop_map(Step::Reject),
        3 => who().prop_map(Step::Start),
        2 => who().prop_map(Step::Comment),
        1 => priority().prop_map(Step::ChangePriority),
        3 => who().prop_map(Step::Resolve),
        1 => who().prop_map(Step::Reopen),
        2 => who().prop_map(Step::Close),
        2 => (stage(), 0i64..300, -20i64..60).prop_map(|(s, d, l)| Step::Breach(s, d, l)),
        1 => any::<bool>().prop_map(Step::Escalate),
        2 => (0..SURVEYS.len()).prop_map(Step::SendSurvey),
        2 => (who(), 0..SURVEYS.len(), 1u8..=5, any::<bool>())
            .prop_map(|(w, s, score, c)| Step::Answer(w, s, score, c)),
    ]
}

fn command(step: &Step, state: &Ticket, at: DateTime<Utc>) -> TicketCommand {
    match *step {
        Step::Open(priority) => TicketCommand::Open {
            actor: CUSTOMER,
            customer_id: CUSTOMER,
            contact: Contact {
                name: short("Dana"),
                email: Email::parse("email", "dana@example.com").unwrap(),
            },
            product: short("SmartHub 3"),
            category: short("connectivity"),
            priority,
            required_skill: short("networking"),
            title: short("no wi-fi"),
            description: long("drops every evening"),
            at,
        },
        Step::Assign(w, by_manager) => TicketCommand::AssignExpert {
            expert_id: w.id(state),
            by: if by_manager {
                AssignedBy::Manager {
                    manager_id: MANAGER,
                }
            } else {
                AssignedBy::Matching
            },
            at,
        },
        Step::Accept(w) => TicketCommand::Accept {
            actor: w.id(state),
            at,
        },
        Step::Reject(w) => TicketCommand::Reject {
            actor: w.id(state),
            reason: long("busy"),
            at,
        },
        Step::Start(w) => TicketCommand::StartWork {
            actor: w.id(state),
            at,
        },
        Step::Comment(w) => TicketCommand::Comment {
            actor: w.id(state),
            comment_id: Uuid::from_u128(at.timestamp() as u128),
            body: long("any news?"),
            at,
        },
        Step::ChangePriority(priority) => TicketCommand::ChangePriority {
            actor: MANAGER,
            priority,
            at,
        },
        Step::Resolve(w) => TicketCommand::Resolve {
            actor: w.id(state),
            resolution: long("fixed"),
            at,
        },
        Step::Reopen(w) => TicketCommand::Reopen {
            actor: w.id(state),
            reason: long("broken again"),
            at,
        },
        Step::Close(w) => TicketCommand::Close {
            actor: w.id(state),
            at,
        },
        Step::Breach(stage, due, late) => {
            let due = minutes(due);
            TicketCommand::RecordSlaBreach {
                stage,
                due,
                at: due + TimeDelta::minutes(late),
            }
        }
        Step::Escalate(by_user) => TicketCommand::Escalate {
            by: if by_user {
                EscalatedBy::User { user_id: MANAGER }
            } else {
                EscalatedBy::System
            },
            reason: short("slow"),
            at,
        },
        Step::SendSurvey(i) => TicketCommand::SendSurvey {
            survey_id: SURVEYS[i % SURVEYS.len()],
            at,
        },
        Step::Answer(w, i, score, with_comment) => TicketCommand::AnswerSurvey {
            actor: w.id(state),
            survey_id: SURVEYS[i % SURVEYS.len()],
            score: SurveyScore::parse("score", i64::from(score)).unwrap(),
            comment: with_comment.then(|| long("ok")),
            at,
        },
    }
}

/// The invariants every reachable state keeps.
fn check_state(state: &Ticket) -> Result<(), TestCaseError> {
    let Some(status) = state.status else {
        prop_assert_eq!(state, &Ticket::default());
        return Ok(());
    };
    prop_assert!(state.customer_id.is_some() && state.priority.is_some());
    prop_assert!(state.opened_at.is_some());
    match status {
        TicketStatus::Open => prop_assert!(state.expert_id.is_none()),
        _ => prop_assert!(state.expert_id.is_some(), "{:?} without expert", status),
    }
    if let Some(expert) = state.expert_id {
        prop_assert!(!state.rejected_by.contains(&expert));
    }
    let distinct: BTreeSet<_> = state.rejected_by.iter().collect();
    prop_assert_eq!(distinct.len(), state.rejected_by.len());
    if state.survey_answered {
        prop_assert!(state.survey_id.is_some());
    }
    if state.survey_id.is_some() {
        prop_assert!(state.first_assigned_at.is_some());
    }
    if status == TicketStatus::Closed || status == TicketStatus::Resolved {
        prop_assert!(state.resolved_at.is_some());
    }
    if state.first_response_at.is_some() {
        prop_assert!(state.first_assigned_at.is_some());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequences_keep_the_invariants(steps in prop::collection::vec(step(), 1..60)) {
        let mut state = Ticket::default();
        let mut history: Vec<TicketEvent> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let at = minutes(i64::try_from(i).unwrap_or(0) * 7);
            let cmd = command(step, &state, at);
            let Ok(events) = state.decide(&cmd) else {
                continue;
            };
            for event in &events {
                // Events carry the status they lead to.
                if let Some(status) = event.new_status() {
                    prop_assert_eq!(&encode(event).data["status"], status.as_str());
                }
                // Nothing but the survey happens to a closed ticket.
                if state.status == Some(TicketStatus::Closed) {
                    prop_assert!(matches!(
                        event,
                        TicketEvent::SurveySent(_) | TicketEvent::SurveyAnswered(_)
                    ));
                }
                // A rejected expert is never assigned again.
                if let TicketEvent::ExpertAssigned(e) = event {
                    prop_assert!(!state.rejected_by.contains(&e.expert_id));
                }
                state = state.clone().evolve(event);
                check_state(&state)?;
            }
            history.extend(events);
        }
        // Each stage breaches at most once; one survey, one answer.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for event in &history {
            let key = match event {
                TicketEvent::SlaBreached(e) => match e.stage {
                    SlaStage::Assign => "breach.assign",
                    SlaStage::FirstResponse => "breach.first_response",
                    SlaStage::Resolve => "breach.resolve",
                },
                other => other.event_type(),
            };
            *counts.entry(key).or_default() += 1;
        }
        for key in [
            "ticket.opened",
            "breach.assign",
            "breach.first_response",
            "breach.resolve",
            "ticket.survey_sent",
            "ticket.survey_answered",
            "ticket.closed",
        ] {
            prop_assert!(counts.get(key).copied().unwrap_or(0) <= 1, "{} twice", key);
        }
        // Folding the history rebuilds the same state.
        prop_assert_eq!(Ticket::fold(history.iter()), state);
    }

    #[test]
    fn a_refused_or_empty_decision_repeats_identically(steps in prop::collection::vec(step(), 1..40)) {
        // decide is a pure function of state and command.
        let mut state = Ticket::default();
        for (i, step) in steps.iter().enumerate() {
            let cmd = command(step, &state, minutes(i64::try_from(i).unwrap_or(0)));
            let first = state.decide(&cmd);
            let second = state.decide(&cmd);
            prop_assert_eq!(&first, &second);
            if let Ok(events) = first {
                state = events.iter().fold(state, |s, e| s.evolve(e));
            }
        }
    }

    #[test]
    fn decide_never_panics_on_any_state_or_command(
        events in prop::collection::vec(any_event(), 0..20),
        commands in prop::collection::vec((step(), any_instant()), 1..10),
    ) {
        let state = Ticket::fold(events.iter());
        for (step, at) in &commands {
            let _ = state.decide(&command(step, &state, *at));
        }
        // Extreme breach times as well.
        for stage in SlaStage::ALL {
            let _ = state.decide(&TicketCommand::RecordSlaBreach {
                stage,
                due: DateTime::<Utc>::MIN_UTC,
                at: DateTime::<Utc>::MAX_UTC,
            });
        }
    }
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        (-100_000i64..100_000).prop_map(minutes),
    ]
}

fn any_uuid() -> impl Strategy<Value = Uuid> {
    prop_oneof![
        Just(Uuid::nil()),
        Just(CUSTOMER),
        Just(MANAGER),
        (0..EXPERTS.len()).prop_map(|i| EXPERTS[i]),
        any::<u128>().prop_map(Uuid::from_u128),
    ]
}

/// Any event with any fields, in any order: states no command can reach.
fn any_event() -> impl Strategy<Value = TicketEvent> {
    prop_oneof![
        (any_uuid(), priority(), any_instant()).prop_map(|(c, p, at)| {
            TicketEvent::Opened(TicketOpened {
                customer_id: c,
                contact: Contact {
                    name: short("x"),
                    email: Email::parse("email", "x@example.com").unwrap(),
                },
                product: short("p"),
                category: short("c"),
                priority: p,
                required_skill: short("s"),
                title: short("t"),
                description: long("d"),
                opened_by: c,
                status: TicketStatus::Open,
                at,
            })
        }),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::ExpertAssigned(
            ExpertAssigned {
                expert_id: e,
                by: AssignedBy::Matching,
                status: TicketStatus::Assigned,
                at,
            }
        )),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::Accepted(TicketAccepted {
            expert_id: e,
            status: TicketStatus::Accepted,
            at,
        })),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::Rejected(TicketRejected {
            expert_id: e,
            reason: long("r"),
            excluded_experts: vec![e],
            status: TicketStatus::Open,
            at,
        })),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::WorkStarted(WorkStarted {
            expert_id: e,
            status: TicketStatus::InProgress,
            at,
        })),
        (any_uuid(), any_instant()).prop_map(|(a, at)| TicketEvent::Commented(TicketCommented {
            comment_id: a,
            author_id: a,
            body: long("b"),
            at,
        })),
        (priority(), priority(), any_instant()).prop_map(|(p, q, at)| {
            TicketEvent::PriorityChanged(PriorityChanged {
                previous: p,
                priority: q,
                by: MANAGER,
                at,
            })
        }),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::Resolved(TicketResolved {
            resolution: long("r"),
            expert_id: e,
            status: TicketStatus::Resolved,
            at,
        })),
        (any_uuid(), any_instant()).prop_map(|(e, at)| TicketEvent::Reopened(TicketReopened {
            reason: long("r"),
            by: e,
            expert_id: e,
            status: TicketStatus::InProgress,
            at,
        })),
        any_instant().prop_map(|at| TicketEvent::Closed(TicketClosed {
            by: CUSTOMER,
            status: TicketStatus::Closed,
            at,
        })),
        (stage(), priority(), any_instant(), any_instant()).prop_map(|(s, p, at, due)| {
            TicketEvent::SlaBreached(SlaBreached {
                stage: s,
                priority: p,
                due,
                at,
            })
        }),
        (any::<u8>(), any_instant()).prop_map(|(level, at)| TicketEvent::Escalated(
            TicketEscalated {
                level,
                reason: short("r"),
                by: EscalatedBy::System,
                at,
            }
        )),
        (any_uuid(), any_instant()).prop_map(|(s, at)| TicketEvent::SurveySent(SurveySent {
            survey_id: s,
            customer_id: CUSTOMER,
            at,
        })),
        (any_uuid(), 1i64..=5, any_instant()).prop_map(|(s, score, at)| {
            TicketEvent::SurveyAnswered(SurveyAnswered {
                survey_id: s,
                customer_id: CUSTOMER,
                expert_id: None,
                score: SurveyScore::parse("score", score).unwrap(),
                comment: None,
                at,
            })
        }),
    ]
}

/// The generator is not vacuous: over a fixed set of random sequences,
/// every event type is produced.
#[test]
fn random_sequences_reach_every_event_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(step(), 1..60);
    let mut seen = BTreeSet::new();
    for _ in 0..256 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let mut state = Ticket::default();
        for (i, step) in steps.iter().enumerate() {
            let at = minutes(i64::try_from(i).unwrap_or(0) * 7);
            if let Ok(events) = state.decide(&command(step, &state, at)) {
                for event in &events {
                    seen.insert(event.event_type());
                }
                state = events.iter().fold(state, |s, e| s.evolve(e));
            }
        }
    }
    let all: BTreeSet<_> = event_specs().iter().map(|s| s.event_type).collect();
    assert_eq!(seen, all);
}
