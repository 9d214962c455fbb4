//! Given / when / then for every ticket command: each success and each refusal.

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::event::{decode, encode};
use crate::testing::given;

const CUSTOMER: Uuid = Uuid::from_u128(0xc001);
const AGENT: Uuid = Uuid::from_u128(0xa002);
const MANAGER: Uuid = Uuid::from_u128(0xa001);
const EXPERT: Uuid = Uuid::from_u128(0xe001);
const OTHER_EXPERT: Uuid = Uuid::from_u128(0xe002);
const SURVEY: Uuid = Uuid::from_u128(0x5001);
const COMMENT: Uuid = Uuid::from_u128(0xd001);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s).unwrap()
}

fn contact() -> Contact {
    Contact {
        name: short("Dana Whitfield"),
        email: Email::parse("email", "dana@example.com").unwrap(),
    }
}

// --- commands ---------------------------------------------------------------

fn open() -> TicketCommand {
    TicketCommand::Open {
        actor: AGENT,
        customer_id: CUSTOMER,
        contact: contact(),
        product: short("SmartHub 3"),
        category: short("connectivity"),
        priority: Priority::P2,
        required_skill: short("home networking"),
        title: short("Hub drops Wi-Fi"),
        description: long("Every evening around 7pm."),
        at: t(0),
    }
}

fn assign(expert_id: Uuid) -> TicketCommand {
    TicketCommand::AssignExpert {
        expert_id,
        by: AssignedBy::Matching,
        at: t(5),
    }
}

fn accept(actor: Uuid) -> TicketCommand {
    TicketCommand::Accept { actor, at: t(10) }
}

fn reject(actor: Uuid) -> TicketCommand {
    TicketCommand::Reject {
        actor,
        reason: long("not my area"),
        at: t(8),
    }
}

fn start(actor: Uuid) -> TicketCommand {
    TicketCommand::StartWork { actor, at: t(15) }
}

fn comment(actor: Uuid) -> TicketCommand {
    TicketCommand::Comment {
        actor,
        comment_id: COMMENT,
        body: long("please send the log"),
        at: t(20),
    }
}

fn change_priority(priority: Priority) -> TicketCommand {
    TicketCommand::ChangePriority {
        actor: MANAGER,
        priority,
        at: t(25),
    }
}

fn resolve(actor: Uuid) -> TicketCommand {
    TicketCommand::Resolve {
        actor,
        resolution: long("rolled back the firmware"),
        at: t(60),
    }
}

fn reopen() -> TicketCommand {
    TicketCommand::Reopen {
        actor: CUSTOMER,
        reason: long("it happened again"),
        at: t(120),
    }
}

fn close() -> TicketCommand {
    TicketCommand::Close {
        actor: CUSTOMER,
        at: t(180),
    }
}

fn breach(stage: SlaStage, due: DateTime<Utc>, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::RecordSlaBreach { stage, due, at }
}

fn escalate() -> TicketCommand {
    TicketCommand::Escalate {
        by: EscalatedBy::System,
        reason: short("sla breached"),
        at: t(30),
    }
}

fn send_survey(survey_id: Uuid) -> TicketCommand {
    TicketCommand::SendSurvey {
        survey_id,
        at: t(61),
    }
}

fn answer(actor: Uuid, survey_id: Uuid) -> TicketCommand {
    TicketCommand::AnswerSurvey {
        actor,
        survey_id,
        score: SurveyScore::parse("score", 4).unwrap(),
        comment: Some(long("quick fix")),
        at: t(90),
    }
}

// --- events -----------------------------------------------------------------

fn opened() -> TicketEvent {
    TicketEvent::Opened(TicketOpened {
        customer_id: CUSTOMER,
        contact: contact(),
        product: short("SmartHub 3"),
        category: short("connectivity"),
        priority: Priority::P2,
        required_skill: short("home networking"),
        title: short("Hub drops Wi-Fi"),
        description: long("Every evening around 7pm."),
        opened_by: AGENT,
        status: TicketStatus::Open,
        at: t(0),
    })
}

fn assigned(expert_id: Uuid) -> TicketEvent {
    TicketEvent::ExpertAssigned(ExpertAssigned {
        expert_id,
        by: AssignedBy::Matching,
        status: TicketStatus::Assigned,
        at: t(5),
    })
}

fn accepted(expert_id: Uuid) -> TicketEvent {
    TicketEvent::Accepted(TicketAccepted {
        expert_id,
        status: TicketStatus::Accepted,
        at: t(10),
    })
}

fn rejected(expert_id: Uuid, excluded_experts: Vec<Uuid>) -> TicketEvent {
    TicketEvent::Rejected(TicketRejected {
        expert_id,
        reason: long("not my area"),
        excluded_experts,
        status: TicketStatus::Open,
        at: t(8),
    })
}

fn started(expert_id: Uuid) -> TicketEvent {
    TicketEvent::WorkStarted(WorkStarted {
        expert_id,
        status: TicketStatus::InProgress,
        at: t(15),
    })
}

fn commented(author_id: Uuid) -> TicketEvent {
    TicketEvent::Commented(TicketCommented {
        comment_id: COMMENT,
        author_id,
        body: long("please send the log"),
        at: t(20),
    })
}

fn resolved() -> TicketEvent {
    TicketEvent::Resolved(TicketResolved {
        resolution: long("rolled back the firmware"),
        expert_id: EXPERT,
        status: TicketStatus::Resolved,
        at: t(60),
    })
}

fn reopened() -> TicketEvent {
    TicketEvent::Reopened(TicketReopened {
        reason: long("it happened again"),
        by: CUSTOMER,
        expert_id: EXPERT,
        status: TicketStatus::InProgress,
        at: t(120),
    })
}

fn closed() -> TicketEvent {
    TicketEvent::Closed(TicketClosed {
        by: CUSTOMER,
        status: TicketStatus::Closed,
        at: t(180),
    })
}

fn breached(stage: SlaStage, due: DateTime<Utc>, at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::SlaBreached(SlaBreached {
        stage,
        priority: Priority::P2,
        due,
        at,
    })
}

fn escalated(level: u8) -> TicketEvent {
    TicketEvent::Escalated(TicketEscalated {
        level,
        reason: short("sla breached"),
        by: EscalatedBy::System,
        at: t(30),
    })
}

fn survey_sent() -> TicketEvent {
    TicketEvent::SurveySent(SurveySent {
        survey_id: SURVEY,
        customer_id: CUSTOMER,
        at: t(61),
    })
}

fn survey_answered() -> TicketEvent {
    TicketEvent::SurveyAnswered(SurveyAnswered {
        survey_id: SURVEY,
        customer_id: CUSTOMER,
        expert_id: Some(EXPERT),
        score: SurveyScore::parse("score", 4).unwrap(),
        comment: Some(long("quick fix")),
        at: t(90),
    })
}

// --- histories ----------------------------------------------------------------

fn h_assigned() -> Vec<TicketEvent> {
    vec![opened(), assigned(EXPERT)]
}

fn h_accepted() -> Vec<TicketEvent> {
    vec![opened(), assigned(EXPERT), accepted(EXPERT)]
}

fn h_in_progress() -> Vec<TicketEvent> {
    vec![
        opened(),
        assigned(EXPERT),
        accepted(EXPERT),
        started(EXPERT),
    ]
}

fn h_resolved() -> Vec<TicketEvent> {
    let mut h = h_in_progress();
    h.push(resolved());
    h
}

fn h_closed() -> Vec<TicketEvent> {
    let mut h = h_resolved();
    h.push(closed());
    h
}

fn h_surveyed() -> Vec<TicketEvent> {
    let mut h = h_resolved();
    h.push(survey_sent());
    h
}

/// Every command of the ticket, for "refused on X" sweeps.
fn every_command() -> Vec<TicketCommand> {
    vec![
        open(),
        assign(EXPERT),
        accept(EXPERT),
        reject(EXPERT),
        start(EXPERT),
        comment(CUSTOMER),
        change_priority(Priority::P1),
        resolve(EXPERT),
        reopen(),
        close(),
        breach(SlaStage::Resolve, t(30), t(31)),
        escalate(),
        send_survey(SURVEY),
        answer(CUSTOMER, SURVEY),
    ]
}

// --- open -----------------------------------------------------------------------

#[test]
fn open_opens_an_unassigned_ticket() {
    let state = given::<Ticket>([]).when(&open()).then([opened()]);
    assert_eq!(state.status, Some(TicketStatus::Open));
    assert_eq!(state.customer_id, Some(CUSTOMER));
    assert_eq!(state.expert_id, None);
}

#[test]
fn open_twice_is_refused() {
    given::<Ticket>([opened()])
        .when(&open())
        .then_err("ticket.already_exists");
}

#[test]
fn every_other_command_on_a_missing_ticket_is_not_found() {
    for command in every_command().into_iter().skip(1) {
        given::<Ticket>([])
            .when(&command)
            .then_err("ticket.not_found");
    }
}

// --- assign ---------------------------------------------------------------------

#[test]
fn assign_assigns_an_open_ticket() {
    let state = given::<Ticket>([opened()])
        .when(&assign(EXPERT))
        .then([assigned(EXPERT)]);
    assert_eq!(state.expert_id, Some(EXPERT));
    assert_eq!(state.first_assigned_at, Some(t(5)));
}

#[test]
fn a_manager_may_assign_by_hand() {
    let command = TicketCommand::AssignExpert {
        expert_id: EXPERT,
        by: AssignedBy::Manager {
            manager_id: MANAGER,
        },
        at: t(5),
    };
    given::<Ticket>([opened()])
        .when(&command)
        .then([TicketEvent::ExpertAssigned(ExpertAssigned {
            expert_id: EXPERT,
            by: AssignedBy::Manager {
                manager_id: MANAGER,
            },
            status: TicketStatus::Assigned,
            at: t(5),
        })]);
}

#[test]
fn assigning_the_same_expert_again_is_a_no_op() {
    given::<Ticket>(h_assigned()).when(&assign(EXPERT)).then([]);
    given::<Ticket>(h_in_progress())
        .when(&assign(EXPERT))
        .then([]);
}

#[test]
fn assigning_another_expert_while_one_holds_it_is_refused() {
    for history in [h_assigned(), h_accepted(), h_in_progress()] {
        given::<Ticket>(history)
            .when(&assign(OTHER_EXPERT))
            .then_err("ticket.already_assigned");
    }
}

#[test]
fn an_expert_who_rejected_can_never_be_assigned_again() {
    let history = vec![opened(), assigned(EXPERT), rejected(EXPERT, vec![EXPERT])];
    given::<Ticket>(history.clone())
        .when(&assign(EXPERT))
        .then_err("ticket.expert_rejected_before");
    // ...even after someone else held and rejected it in between.
    let mut later = history;
    later.extend([
        assigned(OTHER_EXPERT),
        rejected(OTHER_EXPERT, vec![EXPERT, OTHER_EXPERT]),
    ]);
    given::<Ticket>(later.clone())
        .when(&assign(EXPERT))
        .then_err("ticket.expert_rejected_before");
    given::<Ticket>(later)
        .when(&assign(OTHER_EXPERT))
        .then_err("ticket.expert_rejected_before");
}

#[test]
fn assign_on_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&assign(OTHER_EXPERT))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&assign(OTHER_EXPERT))
        .then_err("ticket.closed");
}

// --- accept -----------------------------------------------------------------------

#[test]
fn the_assigned_expert_accepts() {
    let state = given::<Ticket>(h_assigned())
        .when(&accept(EXPERT))
        .then([accepted(EXPERT)]);
    assert_eq!(state.status, Some(TicketStatus::Accepted));
    assert_eq!(state.first_response_at, Some(t(10)));
}

#[test]
fn accepting_again_is_a_no_op() {
    given::<Ticket>(h_accepted()).when(&accept(EXPERT)).then([]);
    given::<Ticket>(h_in_progress())
        .when(&accept(EXPERT))
        .then([]);
}

#[test]
fn only_the_assigned_expert_accepts() {
    given::<Ticket>(h_assigned())
        .when(&accept(OTHER_EXPERT))
        .then_err("ticket.not_assigned_expert");
    given::<Ticket>(h_assigned())
        .when(&accept(MANAGER))
        .then_err("ticket.not_assigned_expert");
}

#[test]
fn accept_without_an_assigned_expert_is_refused() {
    given::<Ticket>([opened()])
        .when(&accept(EXPERT))
        .then_err("ticket.not_assigned");
}

#[test]
fn accept_on_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&accept(EXPERT))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&accept(EXPERT))
        .then_err("ticket.closed");
}

// --- reject -------------------------------------------------------------------------

#[test]
fn the_assigned_expert_rejects_and_the_ticket_is_unassigned() {
    let state = given::<Ticket>(h_assigned())
        .when(&reject(EXPERT))
        .then([rejected(EXPERT, vec![EXPERT])]);
    assert_eq!(state.status, Some(TicketStatus::Open));
    assert_eq!(state.expert_id, None);
    assert_eq!(state.rejected_by, vec![EXPERT]);
}

#[test]
fn an_accepted_ticket_can_still_be_rejected_before_work_starts() {
    given::<Ticket>(h_accepted())
        .when(&reject(EXPERT))
        .then([rejected(EXPERT, vec![EXPERT])]);
}

#[test]
fn a_rejection_lists_every_excluded_expert() {
    given::<Ticket>([
        opened(),
        assigned(OTHER_EXPERT),
        rejected(OTHER_EXPERT, vec![OTHER_EXPERT]),
        assigned(EXPERT),
    ])
    .when(&reject(EXPERT))
    .then([rejected(EXPERT, vec![OTHER_EXPERT, EXPERT])]);
}

#[test]
fn only_the_assigned_expert_rejects() {
    given::<Ticket>(h_assigned())
        .when(&reject(OTHER_EXPERT))
        .then_err("ticket.not_assigned_expert");
}

#[test]
fn reject_without_an_assigned_expert_is_refused() {
    given::<Ticket>([opened()])
        .when(&reject(EXPERT))
        .then_err("ticket.not_assigned");
}

#[test]
fn reject_after_work_started_is_refused() {
    given::<Ticket>(h_in_progress())
        .when(&reject(EXPERT))
        .then_err("ticket.work_started");
}

#[test]
fn reject_on_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&reject(EXPERT))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&reject(EXPERT))
        .then_err("ticket.closed");
}

// --- start work ------------------------------------------------------------------------

#[test]
fn the_assigned_expert_starts_work_after_accepting() {
    let state = given::<Ticket>(h_accepted())
        .when(&start(EXPERT))
        .then([started(EXPERT)]);
    assert_eq!(state.status, Some(TicketStatus::InProgress));
}

#[test]
fn starting_again_is_a_no_op() {
    given::<Ticket>(h_in_progress())
        .when(&start(EXPERT))
        .then([]);
}

#[test]
fn start_before_accepting_is_refused() {
    given::<Ticket>(h_assigned())
        .when(&start(EXPERT))
        .then_err("ticket.not_accepted");
}

#[test]
fn start_by_someone_else_or_unassigned_is_refused() {
    given::<Ticket>(h_accepted())
        .when(&start(OTHER_EXPERT))
        .then_err("ticket.not_assigned_expert");
    given::<Ticket>([opened()])
        .when(&start(EXPERT))
        .then_err("ticket.not_assigned");
}

#[test]
fn start_on_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&start(EXPERT))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&start(EXPERT))
        .then_err("ticket.closed");
}

// --- comment -------------------------------------------------------------------------------

#[test]
fn anyone_comments_until_the_ticket_is_closed() {
    given::<Ticket>([opened()])
        .when(&comment(CUSTOMER))
        .then([commented(CUSTOMER)]);
    given::<Ticket>(h_resolved())
        .when(&comment(EXPERT))
        .then([commented(EXPERT)]);
}

#[test]
fn the_assigned_experts_first_comment_is_the_first_response() {
    let state = given::<Ticket>(h_assigned())
        .when(&comment(EXPERT))
        .then([commented(EXPERT)]);
    assert_eq!(state.first_response_at, Some(t(20)));
    let state = given::<Ticket>(h_assigned())
        .when(&comment(CUSTOMER))
        .then([commented(CUSTOMER)]);
    assert_eq!(state.first_response_at, None);
}

#[test]
fn comment_on_a_closed_ticket_is_refused() {
    given::<Ticket>(h_closed())
        .when(&comment(CUSTOMER))
        .then_err("ticket.closed");
}

// --- priority --------------------------------------------------------------------------------

#[test]
fn priority_changes_carry_both_priorities() {
    let state = given::<Ticket>(h_in_progress())
        .when(&change_priority(Priority::P1))
        .then([TicketEvent::PriorityChanged(PriorityChanged {
            previous: Priority::P2,
            priority: Priority::P1,
            by: MANAGER,
            at: t(25),
        })]);
    assert_eq!(state.priority, Some(Priority::P1));
}

#[test]
fn changing_to_the_same_priority_is_a_no_op() {
    given::<Ticket>([opened()])
        .when(&change_priority(Priority::P2))
        .then([]);
}

#[test]
fn priority_change_on_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&change_priority(Priority::P1))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&change_priority(Priority::P1))
        .then_err("ticket.closed");
}

// --- resolve ------------------------------------------------------------------------------------

#[test]
fn the_assigned_expert_resolves_work_in_progress() {
    let state = given::<Ticket>(h_in_progress())
        .when(&resolve(EXPERT))
        .then([resolved()]);
    assert_eq!(state.status, Some(TicketStatus::Resolved));
    assert_eq!(state.resolved_at, Some(t(60)));
}

#[test]
fn resolve_before_work_started_is_refused() {
    given::<Ticket>(h_assigned())
        .when(&resolve(EXPERT))
        .then_err("ticket.not_in_progress");
    given::<Ticket>(h_accepted())
        .when(&resolve(EXPERT))
        .then_err("ticket.not_in_progress");
}

#[test]
fn resolve_unassigned_or_by_someone_else_is_refused() {
    given::<Ticket>([opened()])
        .when(&resolve(EXPERT))
        .then_err("ticket.not_assigned");
    given::<Ticket>(h_in_progress())
        .when(&resolve(OTHER_EXPERT))
        .then_err("ticket.not_assigned_expert");
}

#[test]
fn resolve_twice_or_after_closing_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&resolve(EXPERT))
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&resolve(EXPERT))
        .then_err("ticket.closed");
}

// --- reopen ------------------------------------------------------------------------------------

#[test]
fn a_resolved_ticket_reopens_to_in_progress_with_the_same_expert() {
    let state = given::<Ticket>(h_resolved())
        .when(&reopen())
        .then([reopened()]);
    assert_eq!(state.status, Some(TicketStatus::InProgress));
    assert_eq!(state.expert_id, Some(EXPERT));
    assert_eq!(state.resolved_at, None);
    // ...and can be resolved again.
    let mut history = h_resolved();
    history.push(reopened());
    given::<Ticket>(history)
        .when(&resolve(EXPERT))
        .then([resolved()]);
}

#[test]
fn a_closed_ticket_cannot_be_reopened() {
    given::<Ticket>(h_closed())
        .when(&reopen())
        .then_err("ticket.closed");
}

#[test]
fn reopening_an_unresolved_ticket_is_refused() {
    for history in [vec![opened()], h_assigned(), h_accepted(), h_in_progress()] {
        given::<Ticket>(history)
            .when(&reopen())
            .then_err("ticket.not_resolved");
    }
}

// --- close -----------------------------------------------------------------------------------

#[test]
fn a_resolved_ticket_closes() {
    let state = given::<Ticket>(h_resolved())
        .when(&close())
        .then([closed()]);
    assert_eq!(state.status, Some(TicketStatus::Closed));
}

#[test]
fn closing_again_is_a_no_op() {
    given::<Ticket>(h_closed()).when(&close()).then([]);
}

#[test]
fn closing_an_unresolved_ticket_is_refused() {
    for history in [vec![opened()], h_assigned(), h_in_progress()] {
        given::<Ticket>(history)
            .when(&close())
            .then_err("ticket.not_resolved");
    }
}

#[test]
fn a_closed_ticket_refuses_every_work_command() {
    for command in [
        assign(OTHER_EXPERT),
        accept(EXPERT),
        reject(EXPERT),
        start(EXPERT),
        comment(CUSTOMER),
        change_priority(Priority::P1),
        resolve(EXPERT),
        reopen(),
        breach(SlaStage::Resolve, t(30), t(200)),
        escalate(),
    ] {
        given::<Ticket>(h_closed())
            .when(&command)
            .then_err("ticket.closed");
    }
}

// --- sla breach ----------------------------------------------------------------------------------

#[test]
fn an_unassigned_ticket_breaches_the_assign_stage() {
    let state = given::<Ticket>([opened()])
        .when(&breach(SlaStage::Assign, t(60), t(60)))
        .then([breached(SlaStage::Assign, t(60), t(60))]);
    assert!(state.breached.contains(&SlaStage::Assign));
}

#[test]
fn a_stage_completed_late_still_breaches() {
    // Assigned at t(5), but the assign stage was due at t(1).
    given::<Ticket>(h_assigned())
        .when(&breach(SlaStage::Assign, t(1), t(6)))
        .then([breached(SlaStage::Assign, t(1), t(6))]);
}

#[test]
fn breaches_of_each_stage() {
    given::<Ticket>(h_assigned())
        .when(&breach(SlaStage::FirstResponse, t(7), t(7)))
        .then([breached(SlaStage::FirstResponse, t(7), t(7))]);
    given::<Ticket>(h_in_progress())
        .when(&breach(SlaStage::Resolve, t(40), t(41)))
        .then([breached(SlaStage::Resolve, t(40), t(41))]);
}

#[test]
fn a_breach_before_its_due_time_is_refused() {
    given::<Ticket>([opened()])
        .when(&breach(SlaStage::Assign, t(60), t(59)))
        .then_err("ticket.sla_not_due");
}

#[test]
fn a_breach_of_a_stage_met_in_time_is_refused() {
    given::<Ticket>(h_assigned())
        .when(&breach(SlaStage::Assign, t(5), t(60)))
        .then_err("ticket.sla_met");
    given::<Ticket>(h_accepted())
        .when(&breach(SlaStage::FirstResponse, t(30), t(30)))
        .then_err("ticket.sla_met");
    given::<Ticket>(h_resolved())
        .when(&breach(SlaStage::Resolve, t(90), t(90)))
        .then_err("ticket.sla_met");
}

#[test]
fn a_stage_breaches_once() {
    given::<Ticket>([opened(), breached(SlaStage::Assign, t(60), t(60))])
        .when(&breach(SlaStage::Assign, t(60), t(61)))
        .then([]);
}

#[test]
fn after_a_reopen_the_resolve_stage_can_breach() {
    let mut history = h_resolved();
    history.push(reopened());
    given::<Ticket>(history)
        .when(&breach(SlaStage::Resolve, t(90), t(130)))
        .then([breached(SlaStage::Resolve, t(90), t(130))]);
}

#[test]
fn a_breach_on_a_closed_ticket_is_refused() {
    given::<Ticket>(h_closed())
        .when(&breach(SlaStage::Assign, t(1), t(200)))
        .then_err("ticket.closed");
}

// --- escalate ---------------------------------------------------------------------------------------

#[test]
fn escalations_count_up() {
    let state = given::<Ticket>([opened()])
        .when(&escalate())
        .then([escalated(1)]);
    assert_eq!(state.escalation_level, 1);
    given::<Ticket>([opened(), escalated(1)])
        .when(&escalate())
        .then([escalated(2)]);
}

#[test]
fn a_user_may_escalate_by_hand() {
    let by = EscalatedBy::User { user_id: CUSTOMER };
    given::<Ticket>(h_in_progress())
        .when(&TicketCommand::Escalate {
            by,
            reason: short("no progress"),
            at: t(30),
        })
        .then([TicketEvent::Escalated(TicketEscalated {
            level: 1,
            reason: short("no progress"),
            by,
            at: t(30),
        })]);
}

#[test]
fn escalation_stops_at_the_highest_level() {
    given::<Ticket>([opened(), escalated(u8::MAX)])
        .when(&escalate())
        .then_err("ticket.escalation_limit");
}

#[test]
fn escalating_a_resolved_or_closed_ticket_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&escalate())
        .then_err("ticket.resolved");
    given::<Ticket>(h_closed())
        .when(&escalate())
        .then_err("ticket.closed");
}

// --- survey ---------------------------------------------------------------------------------------

#[test]
fn a_survey_is_sent_after_resolution_or_closing() {
    let state = given::<Ticket>(h_resolved())
        .when(&send_survey(SURVEY))
        .then([survey_sent()]);
    assert_eq!(state.survey_id, Some(SURVEY));
    given::<Ticket>(h_closed())
        .when(&send_survey(SURVEY))
        .then([survey_sent()]);
}

#[test]
fn sending_the_same_survey_again_is_a_no_op() {
    given::<Ticket>(h_surveyed())
        .when(&send_survey(SURVEY))
        .then([]);
}

#[test]
fn a_second_survey_is_refused() {
    given::<Ticket>(h_surveyed())
        .when(&send_survey(Uuid::from_u128(0x5002)))
        .then_err("ticket.survey_already_sent");
}

#[test]
fn a_survey_before_resolution_is_refused() {
    for history in [vec![opened()], h_assigned(), h_in_progress()] {
        given::<Ticket>(history)
            .when(&send_survey(SURVEY))
            .then_err("ticket.not_resolved");
    }
}

#[test]
fn the_customer_answers_the_survey() {
    let state = given::<Ticket>(h_surveyed())
        .when(&answer(CUSTOMER, SURVEY))
        .then([survey_answered()]);
    assert!(state.survey_answered);
    // Also once the ticket is closed.
    let mut history = h_surveyed();
    history.push(closed());
    given::<Ticket>(history)
        .when(&answer(CUSTOMER, SURVEY))
        .then([survey_answered()]);
}

#[test]
fn an_answer_without_a_comment_is_fine() {
    given::<Ticket>(h_surveyed())
        .when(&TicketCommand::AnswerSurvey {
            actor: CUSTOMER,
            survey_id: SURVEY,
            score: SurveyScore::parse("score", 1).unwrap(),
            comment: None,
            at: t(90),
        })
        .then([TicketEvent::SurveyAnswered(SurveyAnswered {
            survey_id: SURVEY,
            customer_id: CUSTOMER,
            expert_id: Some(EXPERT),
            score: SurveyScore::parse("score", 1).unwrap(),
            comment: None,
            at: t(90),
        })]);
}

#[test]
fn answering_before_a_survey_was_sent_is_refused() {
    given::<Ticket>(h_resolved())
        .when(&answer(CUSTOMER, SURVEY))
        .then_err("ticket.survey_not_sent");
}

#[test]
fn answering_another_survey_is_refused() {
    given::<Ticket>(h_surveyed())
        .when(&answer(CUSTOMER, Uuid::from_u128(0x5002)))
        .then_err("ticket.unknown_survey");
}

#[test]
fn only_the_customer_answers() {
    for actor in [EXPERT, AGENT, MANAGER] {
        given::<Ticket>(h_surveyed())
            .when(&answer(actor, SURVEY))
            .then_err("ticket.not_customer");
    }
}

#[test]
fn a_survey_is_answered_once() {
    let mut history = h_surveyed();
    history.push(survey_answered());
    given::<Ticket>(history)
        .when(&answer(CUSTOMER, SURVEY))
        .then_err("ticket.survey_already_answered");
}

// --- events and catalogue ----------------------------------------------------------------------

fn one_of_each_event() -> Vec<TicketEvent> {
    vec![
        opened(),
        assigned(EXPERT),
        accepted(EXPERT),
        rejected(EXPERT, vec![EXPERT]),
        started(EXPERT),
        commented(EXPERT),
        TicketEvent::PriorityChanged(PriorityChanged {
            previous: Priority::P2,
            priority: Priority::P1,
            by: MANAGER,
            at: t(25),
        }),
        resolved(),
        reopened(),
        closed(),
        breached(SlaStage::Assign, t(1), t(2)),
        escalated(1),
        survey_sent(),
        survey_answered(),
    ]
}

#[test]
fn event_types_match_their_serde_names_and_round_trip() {
    for event in one_of_each_event() {
        let encoded = encode(&event);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], event.event_type());
        assert_eq!(encoded.event_type, event.event_type());
        let back: TicketEvent =
            decode(encoded.event_type, encoded.schema_version, encoded.data).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn personal_fields_point_at_the_contact() {
    let event = opened();
    let data = encode(&event).data;
    assert_eq!(event.personal_fields(), ["/contact/name", "/contact/email"]);
    for pointer in event.personal_fields() {
        assert!(data.pointer(pointer).is_some_and(|v| v.is_string()));
    }
    for event in one_of_each_event().iter().skip(1) {
        assert!(event.personal_fields().is_empty());
    }
}

#[test]
fn status_carrying_events_carry_the_status_evolve_applies() {
    for event in one_of_each_event() {
        let json = encode(&event).data;
        if let Some(status) = event.new_status() {
            assert_eq!(json["status"], status.as_str(), "{}", event.event_type());
        } else {
            assert!(json.get("status").is_none());
        }
    }
}

#[test]
fn every_catalogue_example_decodes() {
    let specs = event_specs();
    assert_eq!(specs.len(), one_of_each_event().len());
    for spec in specs {
        assert_eq!(spec.stream_type, "ticket");
        let event: TicketEvent = decode(spec.event_type, spec.version, spec.example.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.event_type));
        assert_eq!(event.event_type(), spec.event_type);
        // The example is in canonical form: it re-encodes to itself.
        assert_eq!(encode(&event).data, spec.example, "{}", spec.event_type);
    }
}

#[test]
fn error_codes_are_distinct_and_dotted() {
    let errors = [
        TicketError::NotFound,
        TicketError::AlreadyExists,
        TicketError::Closed,
        TicketError::Resolved,
        TicketError::AlreadyAssigned,
        TicketError::ExpertRejectedBefore,
        TicketError::NotAssigned,
        TicketError::NotAssignedExpert,
        TicketError::NotAccepted,
        TicketError::WorkStarted,
        TicketError::NotInProgress,
        TicketError::NotResolved,
        TicketError::SlaNotDue,
        TicketError::SlaMet,
        TicketError::EscalationLimit,
        TicketError::SurveyAlreadySent,
        TicketError::SurveyNotSent,
        TicketError::UnknownSurvey,
        TicketError::SurveyAlreadyAnswered,
        TicketError::NotCustomer,
    ];
    let codes: BTreeSet<&str> = errors.iter().map(ErrorCode::code).collect();
    assert_eq!(codes.len(), errors.len());
    for (error, code) in errors.iter().zip(errors.iter().map(ErrorCode::code)) {
        assert!(code.starts_with("ticket."), "{code}");
        let message = error.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert_eq!(message, message.to_lowercase(), "{message}");
    }
}
