//! The reporting projections: given a stream's events, the daily and
//! monthly rollups hold the documented figures; batch boundaries change
//! nothing; a rebuild swaps in equal tables in schema `reporting`, keeping
//! comments, index names and the analysts' grant.

// Figures are read back as tuples of their columns.
#![allow(clippy::type_complexity)]

use std::sync::Arc;
use std::time::Duration;

use chronicle_commands::Context;
use chronicle_domain::approval::{Approval, ApprovalCommand, Decision, Subject, SubjectKind};
use chronicle_domain::contract::{
    Contact as ContractContact, Contract, ContractCommand, Counterparty, DraftContract, Party,
    PartyKind,
};
use chronicle_domain::lead::{
    BandwidthMbps, Contact as LeadContact, Lead, LeadCommand, Outcome, TestResult,
};
use chronicle_domain::policy::{Approver, LevelSpec, SlaStage};
use chronicle_domain::ticket::{AssignedBy, Contact, Ticket, TicketCommand};
use chronicle_domain::value::{
    Currency, Email, LeadScore, LongText, Money, Priority, ShortText, SurveyScore,
};
use chronicle_domain::Aggregate;
use chronicle_projections::reporting::approvals::ApprovalReports;
use chronicle_projections::reporting::contracts::ContractReports;
use chronicle_projections::reporting::leads::LeadReports;
use chronicle_projections::reporting::sketch;
use chronicle_projections::reporting::tickets::TicketReports;
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::{status, Projection};
use chronicle_store::{StreamId, TenantId};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s.to_owned()).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s.to_owned()).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn eur(amount_minor: i64) -> Money {
    Money::new("value", amount_minor, Currency::parse("c", "EUR").unwrap()).unwrap()
}

async fn run<A: Aggregate>(env: &Env, id: Uuid, command: A::Command) {
    env.commands
        .execute::<A>(
            &StreamId::parse(id.to_string()).unwrap(),
            &Context::new(TenantId::parse("acme").unwrap(), "tester"),
            &command,
        )
        .await
        .unwrap();
}

async fn worker_with(env: &Env, projection: Arc<dyn Projection>, options: Options) -> Worker {
    Worker::acquire(
        &env.db.pool.connect_options(),
        env.store.clone(),
        projection,
        options,
    )
    .await
    .unwrap()
    .expect("the lease is free")
}

/// Rollup rows' periods and columns (`filter` picks `dim` and the group).
async fn figures(env: &Env, table: &str, columns: &str, filter: &str) -> Vec<(String, Vec<i64>)> {
    sqlx::query_as(&format!(
        "SELECT period::text, ARRAY[{columns}]::int8[] FROM reporting.{table} \
         WHERE tenant_id = 'acme' AND {filter} ORDER BY period"
    ))
    .fetch_all(&env.db.pool)
    .await
    .unwrap()
}

/// A stock at the end of `on`: the sum of its daily deltas up to that day.
async fn stock(env: &Env, table: &str, column: &str, filter: &str, on: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(sum({column}), 0)::int8 FROM reporting.{table} \
         WHERE tenant_id = 'acme' AND {filter} AND period <= '{on}'"
    ))
    .fetch_one(&env.db.pool)
    .await
    .unwrap()
}

const HOUR: i64 = 3_600_000;

/// A ticket: opened P2, assigned and accepted the same day, raised to P1,
/// resolved, reopened, resolved late (an SLA breach recorded after), and
/// its survey answered.
async fn ticket_story(env: &Env) -> (Uuid, Uuid) {
    let (id, customer, expert) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t = |c: TicketCommand| run::<Ticket>(env, id, c);
    t(TicketCommand::Open {
        actor: customer,
        customer_id: customer,
        contact: Contact {
            name: short("Ann"),
            email: Email::parse("email", "ann@example.com").unwrap(),
        },
        product: short("tv-box"),
        category: short("billing"),
        priority: Priority::P2,
        required_skill: short("networking"),
        title: short("No picture"),
        description: long("Since Monday."),
        at: at("2026-03-02T10:00:00Z"),
    })
    .await;
    t(TicketCommand::AssignExpert {
        expert_id: expert,
        by: AssignedBy::Matching,
        at: at("2026-03-02T10:30:00Z"),
    })
    .await;
    t(TicketCommand::Accept {
        actor: expert,
        at: at("2026-03-02T11:00:00Z"),
    })
    .await;
    t(TicketCommand::StartWork {
        actor: expert,
        at: at("2026-03-02T11:05:00Z"),
    })
    .await;
    t(TicketCommand::ChangePriority {
        actor: customer,
        priority: Priority::P1,
        at: at("2026-03-03T09:00:00Z"),
    })
    .await;
    t(TicketCommand::Resolve {
        actor: expert,
        resolution: long("Reset."),
        at: at("2026-03-03T12:00:00Z"),
    })
    .await;
    t(TicketCommand::Reopen {
        actor: customer,
        reason: long("Back again."),
        at: at("2026-03-04T08:00:00Z"),
    })
    .await;
    t(TicketCommand::Resolve {
        actor: expert,
        resolution: long("Replaced."),
        at: at("2026-03-05T10:00:00Z"),
    })
    .await;
    t(TicketCommand::RecordSlaBreach {
        stage: SlaStage::Resolve,
        due: at("2026-03-04T10:00:00Z"),
        at: at("2026-03-05T10:05:00Z"),
    })
    .await;
    let survey = Uuid::now_v7();
    t(TicketCommand::SendSurvey {
        survey_id: survey,
        at: at("2026-03-05T10:06:00Z"),
    })
    .await;
    t(TicketCommand::AnswerSurvey {
        actor: customer,
        survey_id: survey,
        score: SurveyScore::parse("score", 4).unwrap(),
        comment: None,
        at: at("2026-03-06T09:00:00Z"),
    })
    .await;
    (id, expert)
}

#[tokio::test]
async fn a_ticket_counts_in_its_day_month_and_dimensions_under_its_priority_at_the_time() {
    let env = Env::new().await;
    let (_, expert) = ticket_story(&env).await;
    let mut worker = env.worker(Arc::new(TicketReports)).await;
    drain(&mut worker).await;

    let columns = "opened, assigned, resolved, reopened, backlog_delta, \
                   assign_count, assign_sum_ms, assign_met, \
                   first_response_count, first_response_sum_ms, first_response_met, \
                   resolve_count, resolve_sum_ms, resolve_met, resolve_breached";
    let all = figures(&env, "ticket_daily", columns, "dim = \'all\'").await;
    assert_eq!(
        all,
        [
            // Opened, assigned within 30 min, first response in 1 h.
            (
                "2026-03-02".into(),
                vec![1, 1, 0, 0, 1, 1, HOUR / 2, 1, 1, HOUR, 1, 0, 0, 0, 0]
            ),
            // Resolved, but the reopen withdrew it from this day.
            (
                "2026-03-03".into(),
                vec![0, 0, 1, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            ),
            (
                "2026-03-04".into(),
                vec![0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            ),
            // Resolved 3 days after opening; the breach takes back "met".
            (
                "2026-03-05".into(),
                vec![0, 0, 1, 0, -1, 0, 0, 0, 0, 0, 0, 1, 72 * HOUR, 0, 1]
            ),
        ]
    );
    // The month is the sum of its days.
    let month = figures(&env, "ticket_monthly", columns, "dim = \'all\'").await;
    assert_eq!(
        month,
        [(
            "2026-03-01".into(),
            vec![
                1,
                1,
                2,
                1,
                0,
                1,
                HOUR / 2,
                1,
                1,
                HOUR,
                1,
                1,
                72 * HOUR,
                0,
                1
            ]
        )]
    );
    // The priority change moves the open ticket from P2 to P1; it is
    // resolved under P1.
    let by_priority: Vec<(String, Vec<i64>)> = sqlx::query_as(
        "SELECT period::text || ' ' || value, ARRAY[opened, resolved, backlog_delta]::int8[] \
         FROM reporting.ticket_daily WHERE dim = 'priority' ORDER BY 1",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        by_priority,
        [
            ("2026-03-02 P2".into(), vec![1, 0, 1]),
            ("2026-03-03 P1".into(), vec![0, 1, 0]),
            ("2026-03-03 P2".into(), vec![0, 0, -1]),
            ("2026-03-04 P1".into(), vec![0, 0, 1]),
            ("2026-03-05 P1".into(), vec![0, 1, -1]),
        ]
    );
    // The category and product rows match everything's (one ticket).
    for dim in ["category", "product"] {
        let rows = figures(&env, "ticket_daily", columns, &format!("dim = \'{dim}\'")).await;
        assert_eq!(rows, all, "{dim}");
    }
    // The sketch holds the one resolution in the bucket of 72 h.
    let (keys, counts): (Vec<i32>, Vec<i64>) = sqlx::query_as(
        "SELECT resolve_keys, resolve_counts FROM reporting.ticket_monthly \
         WHERE dim = 'all'",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!((keys, counts), (vec![sketch::key(72 * HOUR)], vec![1]));

    // The expert: the assignment and its acceptance on its day, the two
    // resolutions timed from the assignment, the survey.
    let experts: Vec<(String, Vec<i64>)> = sqlx::query_as(
        "SELECT period::text, ARRAY[assigned, accepted, rejected, handled, resolution_sum_ms, \
                surveys, score_sum, score_4]::int8[] \
         FROM reporting.expert_daily WHERE expert_id = $1 ORDER BY period",
    )
    .bind(expert)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        experts,
        [
            ("2026-03-02".into(), vec![1, 1, 0, 0, 0, 0, 0, 0]),
            (
                "2026-03-03".into(),
                vec![0, 0, 0, 1, 25 * HOUR + HOUR / 2, 0, 0, 0]
            ),
            (
                "2026-03-05".into(),
                vec![0, 0, 0, 1, 71 * HOUR + HOUR / 2, 0, 0, 0]
            ),
            ("2026-03-06".into(), vec![0, 0, 0, 0, 0, 1, 4, 1]),
        ]
    );
}

#[tokio::test]
async fn a_rejection_counts_on_the_day_of_the_assignment_it_rejects() {
    let env = Env::new().await;
    let id = env.open_ticket("acme", "t").await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let t = |c: TicketCommand| run::<Ticket>(&env, id, c);
    t(TicketCommand::AssignExpert {
        expert_id: first,
        by: AssignedBy::Matching,
        at: at("2026-03-02T23:00:00Z"),
    })
    .await;
    t(TicketCommand::Reject {
        actor: first,
        reason: long("Not mine."),
        at: at("2026-03-03T08:00:00Z"),
    })
    .await;
    t(TicketCommand::AssignExpert {
        expert_id: second,
        by: AssignedBy::Matching,
        at: at("2026-03-03T09:00:00Z"),
    })
    .await;
    let mut worker = env.worker(Arc::new(TicketReports)).await;
    drain(&mut worker).await;
    let rows: Vec<(String, Uuid, i64, i64)> = sqlx::query_as(
        "SELECT period::text, expert_id, assigned, rejected FROM reporting.expert_daily \
         ORDER BY period",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("2026-03-02".into(), first, 1, 1),
            ("2026-03-03".into(), second, 1, 0)
        ]
    );
    let rejected: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT period::text, assigned, rejected FROM reporting.ticket_daily \
         WHERE dim = 'all' AND (assigned, rejected) <> (0, 0) ORDER BY period",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rejected,
        [("2026-03-02".into(), 1, 0), ("2026-03-03".into(), 1, 1)]
    );
}

/// A lead captured, owned, through design (rejected once), implementation
/// and testing, won; one day per step at 10:00.
async fn lead_story(env: &Env) -> Uuid {
    let (id, seller, owner) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let l = |c: LeadCommand| run::<Lead>(env, id, c);
    l(LeadCommand::Capture {
        company: short("Initech"),
        contact: LeadContact {
            name: short("Peter"),
            email: Email::parse("email", "peter@initech.example").unwrap(),
            phone: None,
        },
        site_address: short("Main St 1"),
        service: short("DIA"),
        bandwidth_mbps: BandwidthMbps::parse("bw", 100).unwrap(),
        estimated_value: eur(1_000_000),
        source: short("web"),
        actor: seller,
        at: at("2026-03-02T10:00:00Z"),
    })
    .await;
    l(LeadCommand::AssignOwner {
        owner,
        actor: seller,
        at: at("2026-03-02T12:00:00Z"),
    })
    .await;
    l(LeadCommand::Qualify {
        score: LeadScore::parse("score", 70).unwrap(),
        actor: seller,
        at: at("2026-03-03T10:00:00Z"),
    })
    .await;
    l(LeadCommand::CheckServiceability {
        feasible: true,
        notes: None,
        actor: seller,
        at: at("2026-03-04T10:00:00Z"),
    })
    .await;
    let design = |at_: &str| LeadCommand::SubmitDesign {
        summary: short("Dual uplink"),
        specification: long("Two paths."),
        documents: vec![],
        actor: seller,
        at: at(at_),
    };
    l(design("2026-03-05T10:00:00Z")).await;
    let (a1, a2) = (Uuid::now_v7(), Uuid::now_v7());
    l(LeadCommand::RequestDesignApproval {
        approval_id: a1,
        actor: seller,
        at: at("2026-03-06T10:00:00Z"),
    })
    .await;
    l(LeadCommand::RejectDesign {
        approval_id: a1,
        reason: None,
        at: at("2026-03-07T10:00:00Z"),
    })
    .await;
    // A second version while in design: not a stage move.
    l(design("2026-03-08T10:00:00Z")).await;
    l(LeadCommand::RequestDesignApproval {
        approval_id: a2,
        actor: seller,
        at: at("2026-03-09T10:00:00Z"),
    })
    .await;
    l(LeadCommand::ApproveDesign {
        approval_id: a2,
        at: at("2026-03-10T10:00:00Z"),
    })
    .await;
    let task = Uuid::now_v7();
    l(LeadCommand::AddImplementationTask {
        task_id: task,
        title: short("Install"),
        actor: seller,
        at: at("2026-03-10T11:00:00Z"),
    })
    .await;
    l(LeadCommand::CompleteImplementationTask {
        task_id: task,
        actor: seller,
        at: at("2026-03-11T09:00:00Z"),
    })
    .await;
    l(LeadCommand::CompleteImplementation {
        actor: seller,
        at: at("2026-03-11T10:00:00Z"),
    })
    .await;
    l(LeadCommand::RecordActivationTest {
        name: short("throughput"),
        result: TestResult::Passed,
        defects: vec![],
        actor: seller,
        at: at("2026-03-12T09:00:00Z"),
    })
    .await;
    l(LeadCommand::PassTesting {
        actor: seller,
        at: at("2026-03-12T09:30:00Z"),
    })
    .await;
    l(LeadCommand::HandOverToSupport {
        notes: None,
        actor: seller,
        at: at("2026-03-12T10:00:00Z"),
    })
    .await;
    l(LeadCommand::Close {
        outcome: Outcome::Won,
        reason: None,
        actor: seller,
        at: at("2026-03-13T10:00:00Z"),
    })
    .await;
    owner
}

#[tokio::test]
async fn the_funnel_counts_stage_moves_their_time_in_stage_and_the_value_won() {
    let env = Env::new().await;
    let owner = lead_story(&env).await;
    let mut worker = env.worker(Arc::new(LeadReports)).await;
    drain(&mut worker).await;
    let day_ms = 24 * HOUR;
    let rows: Vec<(String, String, Vec<i64>)> = sqlx::query_as(
        "SELECT period::text, stage, ARRAY[entered, exited, advanced, returned, won, \
                won_value_minor, stay_sum_ms, in_stage_delta]::int8[] \
         FROM reporting.lead_daily WHERE dim = 'all' AND currency = 'EUR' \
         ORDER BY period, entered",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    let row = |d: &str, s: &str, f: [i64; 8]| (d.to_owned(), s.to_owned(), f.to_vec());
    assert_eq!(
        rows,
        [
            row("2026-03-02", "captured", [1, 0, 0, 0, 0, 0, 0, 1]),
            row("2026-03-03", "captured", [0, 1, 1, 0, 0, 0, day_ms, -1]),
            row("2026-03-03", "qualified", [1, 0, 0, 0, 0, 0, 0, 1]),
            row("2026-03-04", "qualified", [0, 1, 1, 0, 0, 0, day_ms, -1]),
            row(
                "2026-03-04",
                "serviceability_checked",
                [1, 0, 0, 0, 0, 0, 0, 1]
            ),
            row(
                "2026-03-05",
                "serviceability_checked",
                [0, 1, 1, 0, 0, 0, day_ms, -1]
            ),
            row("2026-03-05", "design", [1, 0, 0, 0, 0, 0, 0, 1]),
            row("2026-03-06", "design", [0, 1, 1, 0, 0, 0, day_ms, -1]),
            row("2026-03-06", "design_approval", [1, 0, 0, 0, 0, 0, 0, 1]),
            row(
                "2026-03-07",
                "design_approval",
                [0, 1, 0, 1, 0, 0, day_ms, -1]
            ),
            row("2026-03-07", "design", [1, 0, 0, 0, 0, 0, 0, 1]),
            row("2026-03-09", "design", [0, 1, 1, 0, 0, 0, 2 * day_ms, -1]),
            row("2026-03-09", "design_approval", [1, 0, 0, 0, 0, 0, 0, 1]),
            row(
                "2026-03-10",
                "design_approval",
                [0, 1, 1, 0, 0, 0, day_ms, -1]
            ),
            row("2026-03-10", "implementation", [1, 0, 0, 0, 0, 0, 0, 1]),
            row(
                "2026-03-11",
                "implementation",
                [0, 1, 1, 0, 0, 0, day_ms, -1]
            ),
            row("2026-03-11", "testing", [1, 0, 0, 0, 0, 0, 0, 1]),
            row("2026-03-12", "testing", [0, 1, 1, 0, 0, 0, day_ms, -1]),
            row("2026-03-12", "support", [1, 0, 0, 0, 0, 0, 0, 1]),
            row(
                "2026-03-13",
                "support",
                [0, 1, 0, 0, 1, 1_000_000, day_ms, -1]
            ),
            row("2026-03-13", "closed", [1, 0, 0, 0, 0, 0, 0, 0]),
        ]
    );
    // Captured before it had an owner; the owner took it over the same
    // day, and every later move counts under them.
    let owners: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT period::text, value, stage, entered, exited, in_stage_delta \
         FROM reporting.lead_daily WHERE dim = 'owner' \
         AND period <= '2026-03-03' ORDER BY period, value, stage",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    let o = owner.to_string();
    let none = "none".to_owned();
    assert_eq!(
        owners,
        [
            ("2026-03-02".into(), o.clone(), "captured".into(), 0, 0, 1),
            ("2026-03-02".into(), none, "captured".into(), 1, 0, 0),
            ("2026-03-03".into(), o.clone(), "captured".into(), 0, 1, -1),
            ("2026-03-03".into(), o, "qualified".into(), 1, 0, 1),
        ]
    );
}

/// A contract approval of two levels: the first overdue and escalated,
/// then completed; the second rejects.
async fn approval_story(env: &Env) {
    let (id, first, second) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let a = |c: ApprovalCommand| run::<Approval>(env, id, c);
    a(ApprovalCommand::Request {
        subject: Subject {
            kind: SubjectKind::Contract,
            id: Uuid::now_v7(),
        },
        value: None,
        levels: vec![
            LevelSpec {
                approvers: vec![Approver::User(first)],
                required: 1,
                due_secs: Some(86_400),
            },
            LevelSpec {
                approvers: vec![Approver::User(second)],
                required: 1,
                due_secs: None,
            },
        ],
        requested_by: Uuid::now_v7(),
        at: at("2026-03-02T10:00:00Z"),
    })
    .await;
    a(ApprovalCommand::Escalate {
        level: 0,
        at: at("2026-03-03T10:05:00Z"),
    })
    .await;
    a(ApprovalCommand::Decide {
        decision: Decision::Approve,
        comment: None,
        actor: first,
        actor_roles: vec![],
        at: at("2026-03-04T09:00:00Z"),
    })
    .await;
    a(ApprovalCommand::Decide {
        decision: Decision::Reject,
        comment: Some(long("No.")),
        actor: second,
        actor_roles: vec![],
        at: at("2026-03-04T15:00:00Z"),
    })
    .await;
}

#[tokio::test]
async fn approvals_time_levels_and_count_them_overdue_between_deadline_and_decision() {
    let env = Env::new().await;
    approval_story(&env).await;
    let mut worker = env.worker(Arc::new(ApprovalReports)).await;
    drain(&mut worker).await;
    let rows: Vec<(String, i16, Vec<i64>)> = sqlx::query_as(
        "SELECT period::text, level, ARRAY[started, approved, rejected, escalated, cycle_sum_ms, \
                overdue_delta]::int8[] \
         FROM reporting.approval_daily WHERE dim = 'subject_kind' \
         AND value = 'contract' ORDER BY period, level",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    let row = |d: &str, l: i16, f: [i64; 6]| (d.to_owned(), l, f.to_vec());
    assert_eq!(
        rows,
        [
            row("2026-03-02", -1, [1, 0, 0, 0, 0, 0]),
            row("2026-03-02", 0, [1, 0, 0, 0, 0, 0]),
            // Level 0 is overdue from its deadline's day ...
            row("2026-03-03", -1, [0, 0, 0, 1, 0, 1]),
            row("2026-03-03", 0, [0, 0, 0, 1, 0, 1]),
            // ... until it completes; level 1 then rejects the approval.
            row("2026-03-04", -1, [0, 0, 1, 0, 53 * HOUR, -1]),
            row("2026-03-04", 0, [0, 1, 0, 0, 47 * HOUR, -1]),
            row("2026-03-04", 1, [1, 0, 1, 0, 6 * HOUR, 0]),
        ]
    );
}

/// A contract signed, active from 2026-03-01 to 2026-06-09, renewed on
/// 2026-05-20 to 2027-06-09, terminated on 2026-09-01.
async fn contract_story(env: &Env) {
    let (id, owner, approval) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let c = |c: ContractCommand| run::<Contract>(env, id, c);
    c(ContractCommand::Draft(DraftContract {
        title: short("Managed fibre"),
        parties: vec![Party {
            name: short("Globex"),
            kind: PartyKind::Organisation,
            role: short("customer"),
        }],
        counterparty: Counterparty {
            organisation: short("Globex"),
            contact: ContractContact {
                name: short("Hank"),
                email: Email::parse("email", "hank@globex.example").unwrap(),
            },
        },
        value: eur(12_000_000),
        start_date: day("2026-03-01"),
        end_date: day("2026-06-09"),
        body: long("Fibre."),
        owner,
        at: at("2026-02-20T10:00:00Z"),
    }))
    .await;
    c(ContractCommand::SubmitForApproval {
        approval_id: approval,
        actor: owner,
        at: at("2026-02-21T10:00:00Z"),
    })
    .await;
    c(ContractCommand::Approve {
        approval_id: approval,
        at: at("2026-02-22T10:00:00Z"),
    })
    .await;
    c(ContractCommand::Sign {
        signatory_name: short("Hank"),
        actor: owner,
        at: at("2026-02-25T10:00:00Z"),
    })
    .await;
    c(ContractCommand::Activate {
        at: at("2026-03-01T09:00:00Z"),
    })
    .await;
    c(ContractCommand::Renew {
        new_end_date: day("2027-06-09"),
        actor: owner,
        at: at("2026-05-20T10:00:00Z"),
    })
    .await;
    c(ContractCommand::Terminate {
        reason: long("Moved."),
        actor: owner,
        at: at("2026-09-01T10:00:00Z"),
    })
    .await;
}

#[tokio::test]
async fn contracts_are_active_and_due_for_renewal_on_the_days_of_their_term() {
    let env = Env::new().await;
    contract_story(&env).await;
    let mut worker = env.worker(Arc::new(ContractReports)).await;
    drain(&mut worker).await;
    let all = "dim = 'all' AND currency = 'EUR'";
    let stocks = |on: &'static str| {
        let env = &env;
        async move {
            let mut out = Vec::new();
            for column in [
                "active_delta",
                "due_30_delta",
                "due_60_delta",
                "due_90_delta",
            ] {
                out.push(stock(env, "contract_daily", column, all, on).await);
            }
            out
        }
    };
    // Term 1 ends 2026-06-09: due within 90 days from 03-11, 60 from
    // 04-10, 30 from 05-10; renewed 05-20, which ends those windows.
    assert_eq!(stocks("2026-02-28").await, [0, 0, 0, 0]);
    assert_eq!(stocks("2026-03-01").await, [1, 0, 0, 0]);
    assert_eq!(stocks("2026-03-10").await, [1, 0, 0, 0]);
    assert_eq!(stocks("2026-03-11").await, [1, 0, 0, 1]);
    assert_eq!(stocks("2026-04-10").await, [1, 0, 1, 1]);
    assert_eq!(stocks("2026-05-10").await, [1, 1, 1, 1]);
    assert_eq!(stocks("2026-05-19").await, [1, 1, 1, 1]);
    assert_eq!(stocks("2026-05-20").await, [1, 0, 0, 0]);
    // Terminated before term 2 came due: nothing after.
    assert_eq!(stocks("2026-09-01").await, [0, 0, 0, 0]);
    assert_eq!(stocks("2027-06-09").await, [0, 0, 0, 0]);
    let value = stock(
        &env,
        "contract_daily",
        "due_90_value_delta",
        all,
        "2026-05-01",
    )
    .await;
    assert_eq!(value, 12_000_000);
    let flows = figures(
        &env,
        "contract_monthly",
        "signed, signed_value_minor, renewed, terminated, terminated_value_minor",
        &format!("{all} AND (signed, renewed, terminated) <> (0, 0, 0)"),
    )
    .await;
    assert_eq!(
        flows,
        [
            ("2026-02-01".into(), vec![1, 12_000_000, 0, 0, 0]),
            ("2026-05-01".into(), vec![0, 0, 1, 0, 0]),
            ("2026-09-01".into(), vec![0, 0, 0, 1, 12_000_000]),
        ]
    );
}

fn reporting() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TicketReports),
        Arc::new(LeadReports),
        Arc::new(ApprovalReports),
        Arc::new(ContractReports),
    ]
}

/// Every story of this file, in one database.
async fn stories(env: &Env) {
    ticket_story(env).await;
    ticket_story(env).await;
    lead_story(env).await;
    approval_story(env).await;
    contract_story(env).await;
    for i in 0..5 {
        let t = env.open_ticket("acme", &format!("t{i}")).await;
        env.comment("acme", t, "hello").await;
    }
}

/// Drives live and rebuild batches until the rebuild swaps in.
async fn until_swapped(worker: &mut Worker) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(std::time::Instant::now() < deadline, "no swap");
        worker.process_batch().await.unwrap();
        if let Step::Swapped { .. } = worker.process_rebuild_batch().await.unwrap() {
            return;
        }
    }
}

#[tokio::test]
async fn batch_boundaries_change_nothing_and_a_rebuild_swaps_in_equal_tables() {
    let env = Env::new().await;
    stories(&env).await;
    for projection in reporting() {
        let name = projection.name();
        // Live: one event per batch. Rebuild: every event in one batch.
        let options = Options {
            batch_size: 1,
            rebuild_batch_size: 10_000,
            ..Options::default()
        };
        let mut worker = worker_with(&env, projection.clone(), options).await;
        drain(&mut worker).await;
        let live = status::checksums(&env.db.pool, &*projection).await.unwrap();
        assert!(
            live.iter().any(|(_, sum)| !sum.starts_with("0:")),
            "{name}: {live:?}"
        );
        let indexes = |env: &Env| {
            let pool = env.db.pool.clone();
            async move {
                sqlx::query_scalar::<_, String>(
                    "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'reporting' \
                     ORDER BY 1",
                )
                .fetch_all(&pool)
                .await
                .unwrap()
            }
        };
        let before = indexes(&env).await;
        status::request_rebuild(&env.db.pool, name).await.unwrap();
        worker.refresh().await.unwrap();
        until_swapped(&mut worker).await;
        assert_eq!(
            status::checksums(&env.db.pool, &*projection).await.unwrap(),
            live,
            "{name}"
        );
        assert_eq!(indexes(&env).await, before, "{name}");
        for table in projection.tables() {
            let (comment, column, analyst): (Option<String>, Option<String>, bool) =
                sqlx::query_as(&format!(
                    "SELECT obj_description('reporting.{table}'::regclass, 'pg_class'), \
                            col_description('reporting.{table}'::regclass, 1), \
                            has_table_privilege('chronicle_analyst', 'reporting.{table}', 'SELECT')"
                ))
                .fetch_one(&env.db.pool)
                .await
                .unwrap();
            assert!(comment.is_some() && column.is_some(), "{table}");
            assert!(analyst, "{table}: the analysts lost their grant");
            let options: Option<Vec<String>> = sqlx::query_scalar(&format!(
                "SELECT reloptions FROM pg_class WHERE oid = 'reporting.{table}'::regclass"
            ))
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
            if table.ends_with("_daily") || table.ends_with("_monthly") {
                let options = options.unwrap_or_default();
                assert!(
                    options.iter().any(|o| o.starts_with("fillfactor=")),
                    "{table}: {options:?}"
                );
            }
        }
        worker.release().await;
    }
    // Analysts may read the reports and nothing of the event store.
    let (reporting, events): (bool, bool) = sqlx::query_as(
        "SELECT has_schema_privilege('chronicle_analyst', 'reporting', 'USAGE'), \
                has_table_privilege('chronicle_analyst', 'public.events', 'SELECT')",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert!(reporting && !events);
}

#[tokio::test]
async fn the_sql_quantile_of_a_stored_sketch_agrees_with_the_api_s() {
    let env = Env::new().await;
    let mut sketch = sketch::Sketch::default();
    for ms in [0, 5, 1_000, 60_000, 60_000, 3_600_000, 86_400_000] {
        sketch.add(ms, 1);
    }
    let (keys, counts) = sketch.to_arrays();
    for (q, numerator, denominator) in [(0.5, 1, 2), (0.9, 9, 10), (0.1, 1, 10), (1.0, 1, 1)] {
        let sql: f64 = sqlx::query_scalar("SELECT reporting.sketch_quantile($1, $2, $3)")
            .bind(&keys)
            .bind(&counts)
            .bind(q)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        let rust = sketch.quantile(numerator, denominator).unwrap();
        assert!(
            (sql - rust).abs() <= 1e-9 * rust.max(1.0),
            "q {q}: {sql} vs {rust}"
        );
    }
}
