//! The leads projection: every lead event lands in `read.leads` or one of
//! its history tables, the same whatever the batch size, and a rebuild ends
//! equal to the live tables.

// Rows are read back as tuples of their columns.
#![allow(clippy::type_complexity)]

use std::sync::Arc;
use std::time::Duration;

use chronicle_commands::Context;
use chronicle_domain::lead::{
    BandwidthMbps, Contact, DocumentRef, Lead, LeadCommand, NewDefect, Outcome, TestResult,
};
use chronicle_domain::value::{Currency, Email, LeadScore, LongText, Money, ShortText};
use chronicle_projections::read::leads::Leads;
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::status;
use chronicle_store::{StreamId, TenantId};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

fn short(s: &str) -> ShortText {
    ShortText::parse("text", s.to_owned()).unwrap()
}

fn long(s: &str) -> LongText {
    LongText::parse("text", s.to_owned()).unwrap()
}

/// Minute `m` of a fixed day: event times the test can reason about.
fn at(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::minutes(m)
}

struct TestLead<'a> {
    env: &'a Env,
    tenant: &'a str,
    id: Uuid,
    actor: Uuid,
}

impl TestLead<'_> {
    async fn run(&self, command: LeadCommand) {
        self.env
            .commands
            .execute::<Lead>(
                &StreamId::parse(self.id.to_string()).unwrap(),
                &Context::new(TenantId::parse(self.tenant).unwrap(), "tester"),
                &command,
            )
            .await
            .unwrap();
    }
}

async fn capture<'a>(env: &'a Env, tenant: &'a str, company: &str, minute: i64) -> TestLead<'a> {
    let lead = TestLead {
        env,
        tenant,
        id: Uuid::now_v7(),
        actor: Uuid::now_v7(),
    };
    lead.run(LeadCommand::Capture {
        company: short(company),
        contact: Contact {
            name: short("Peter Gibbons"),
            email: Email::parse("email", "peter@initech.example").unwrap(),
            phone: Some(short("+49 30 1234")),
        },
        site_address: short("Hauptstrasse 1, Berlin"),
        service: short("Dedicated Internet Access"),
        bandwidth_mbps: BandwidthMbps::parse("bw", 1000).unwrap(),
        estimated_value: Money::new(
            "value",
            1_200_000,
            Currency::parse("currency", "EUR").unwrap(),
        )
        .unwrap(),
        source: short("web form"),
        actor: lead.actor,
        at: at(minute),
    })
    .await;
    lead
}

/// Takes the lease on the leads projection with `batch_size`.
async fn worker(env: &Env, batch_size: usize) -> Worker {
    Worker::acquire(
        &env.db.pool.connect_options(),
        env.store.clone(),
        Arc::new(Leads),
        Options {
            batch_size,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .expect("the lease is free")
}

/// Runs one lead through every event type, with known times.
async fn whole_life(env: &Env) -> (Uuid, Uuid, Uuid) {
    use LeadCommand as C;
    let l = capture(env, "acme", "Initech GmbH", 0).await;
    let a = l.actor;
    let owner = Uuid::now_v7();
    l.run(C::AssignOwner {
        owner,
        actor: a,
        at: at(1),
    })
    .await;
    l.run(C::Qualify {
        score: LeadScore::parse("score", 60).unwrap(),
        actor: a,
        at: at(10),
    })
    .await;
    // Re-scoring stays in the stage: no new stage row.
    l.run(C::Qualify {
        score: LeadScore::parse("score", 80).unwrap(),
        actor: a,
        at: at(15),
    })
    .await;
    l.run(C::CheckServiceability {
        feasible: true,
        notes: Some(long("Fibre in the street")),
        actor: a,
        at: at(30),
    })
    .await;
    let design = |m: i64, summary: &str| C::SubmitDesign {
        summary: short(summary),
        specification: long("Two diverse fibre paths, BGP, /29."),
        documents: vec![DocumentRef {
            document_id: Uuid::nil(),
            name: short("topology.pdf"),
        }],
        actor: a,
        at: at(m),
    };
    l.run(design(60, "Dual-homed 1G")).await;
    l.run(C::CommentOnDesign {
        design_version: 1,
        body: long("Why not a single path?"),
        actor: Uuid::now_v7(),
        at: at(61),
    })
    .await;
    let first = Uuid::now_v7();
    l.run(C::RequestDesignApproval {
        approval_id: first,
        actor: a,
        at: at(70),
    })
    .await;
    l.run(C::RejectDesign {
        approval_id: first,
        reason: Some(long("Too expensive")),
        at: at(100),
    })
    .await;
    l.run(design(120, "Single 1G path")).await;
    l.run(C::CommentOnDesign {
        design_version: 1,
        body: long("The old one was nicer"),
        actor: a,
        at: at(121),
    })
    .await;
    let second = Uuid::now_v7();
    l.run(C::RequestDesignApproval {
        approval_id: second,
        actor: a,
        at: at(130),
    })
    .await;
    l.run(C::ApproveDesign {
        approval_id: second,
        at: at(160),
    })
    .await;
    let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
    for (task, title) in [(t1, "Install the CPE"), (t2, "Configure BGP")] {
        l.run(C::AddImplementationTask {
            task_id: task,
            title: short(title),
            actor: a,
            at: at(170),
        })
        .await;
    }
    let engineer = Uuid::now_v7();
    l.run(C::AssignImplementationTask {
        task_id: t1,
        assignee: engineer,
        actor: a,
        at: at(171),
    })
    .await;
    for task in [t1, t2] {
        l.run(C::CompleteImplementationTask {
            task_id: task,
            actor: engineer,
            at: at(200),
        })
        .await;
    }
    l.run(C::CompleteImplementation {
        actor: a,
        at: at(210),
    })
    .await;
    let defect = Uuid::now_v7();
    l.run(C::RecordActivationTest {
        name: short("throughput 1G"),
        result: TestResult::Failed,
        defects: vec![NewDefect {
            defect_id: defect,
            title: short("Only 600 Mbps"),
        }],
        actor: a,
        at: at(220),
    })
    .await;
    l.run(C::ResolveDefect {
        defect_id: defect,
        resolution: Some(long("Replaced the SFP")),
        actor: engineer,
        at: at(230),
    })
    .await;
    l.run(C::RecordActivationTest {
        name: short("throughput 1G"),
        result: TestResult::Passed,
        defects: vec![],
        actor: a,
        at: at(240),
    })
    .await;
    l.run(C::PassTesting {
        actor: a,
        at: at(241),
    })
    .await;
    l.run(C::HandOverToSupport {
        notes: Some(long("Monitoring set up")),
        actor: a,
        at: at(250),
    })
    .await;
    l.run(C::Close {
        outcome: Outcome::Won,
        reason: Some(short("Signed")),
        actor: a,
        at: at(300),
    })
    .await;
    (l.id, owner, engineer)
}

#[tokio::test]
async fn every_lead_event_lands_in_the_lead_and_its_history_tables() {
    let env = Env::new().await;
    let (id, owner, engineer) = whole_life(&env).await;
    let mut w = worker(&env, 1000).await;
    assert_eq!(drain(&mut w).await, 26);
    let pool = &env.db.pool;

    let lead: (
        String,
        Option<i16>,
        Option<Uuid>,
        i32,
        String,
        Option<i32>,
        i32,
        i32,
    ) = sqlx::query_as(
        "SELECT stage, score, owner_id, design_version, approval_state, \
             approved_design_version, stage_count, design_comment_count \
             FROM read.leads WHERE lead_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        lead,
        (
            "closed".into(),
            Some(80),
            Some(owner),
            2,
            "approved".into(),
            Some(2),
            11,
            2
        )
    );
    let counts: (i32, i32, i32, i32, i32, i32, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT task_count, tasks_completed, test_count, tests_passed, defect_count, \
         open_defects, outcome, close_reason FROM read.leads WHERE lead_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (2, 2, 2, 1, 1, 0, Some("won".into()), Some("Signed".into()))
    );
    let (captured, entered, closed, amount, phone): (
        DateTime<Utc>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        i64,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT captured_at, stage_entered_at, closed_at, amount_minor, contact_phone \
         FROM read.leads WHERE lead_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((captured, entered, closed), (at(0), at(300), Some(at(300))));
    assert_eq!((amount, phone.as_deref()), (1_200_000, Some("+49 30 1234")));

    // Time in each stage, from the events' times.
    let stages: Vec<(i32, String, Option<String>, Option<f64>)> = sqlx::query_as(
        "SELECT seq, stage, next_stage, duration_seconds::float8 FROM read.lead_stages \
         WHERE lead_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    let expected = [
        ("captured", Some(600.0)),
        ("qualified", Some(1200.0)),
        ("serviceability_checked", Some(1800.0)),
        ("design", Some(600.0)),
        ("design_approval", Some(1800.0)),
        // Resubmitting (minute 120) stays in design: one stay, 100 to 130.
        ("design", Some(1800.0)),
        ("design_approval", Some(1800.0)),
        ("implementation", Some(3000.0)),
        ("testing", Some(2400.0)),
        ("support", Some(3000.0)),
        ("closed", None),
    ];
    assert_eq!(stages.len(), expected.len());
    for (i, ((seq, stage, next, secs), (want, want_secs))) in
        stages.iter().zip(expected.iter()).enumerate()
    {
        assert_eq!(*seq, i as i32 + 1);
        assert_eq!((stage.as_str(), *secs), (*want, *want_secs), "seq {seq}");
        let following = expected.get(i + 1).map(|(s, _)| s.to_string());
        assert_eq!(next, &following, "seq {seq}");
    }
    let interval: String = sqlx::query_scalar(
        "SELECT duration::text FROM read.lead_stages WHERE lead_id = $1 AND seq = 1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(interval, "00:10:00");

    // Design versions with their decisions and comments.
    let designs: Vec<(i32, String, Option<String>, Option<String>, i32, i64)> = sqlx::query_as(
        "SELECT design_version, summary, decision, decision_reason, comment_count, \
         jsonb_array_length(documents)::int8 FROM read.lead_designs WHERE lead_id = $1 \
         ORDER BY design_version",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        designs,
        [
            (
                1,
                "Dual-homed 1G".into(),
                Some("rejected".into()),
                Some("Too expensive".into()),
                2,
                1
            ),
            (
                2,
                "Single 1G path".into(),
                Some("approved".into()),
                None,
                0,
                1
            ),
        ]
    );
    let comments: Vec<(i32, i32, String)> = sqlx::query_as(
        "SELECT seq, design_version, body FROM read.lead_design_comments WHERE lead_id = $1 \
         ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        comments,
        [
            (1, 1, "Why not a single path?".into()),
            (2, 1, "The old one was nicer".into())
        ]
    );

    // Tasks, tests and defects.
    let tasks: Vec<(String, String, Option<Uuid>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT title, status, assignee_id, completed_at FROM read.lead_tasks \
         WHERE lead_id = $1 ORDER BY title",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        tasks,
        [
            (
                "Configure BGP".into(),
                "completed".into(),
                None,
                Some(at(200))
            ),
            (
                "Install the CPE".into(),
                "completed".into(),
                Some(engineer),
                Some(at(200))
            ),
        ]
    );
    let tests: Vec<(i32, String, i32)> = sqlx::query_as(
        "SELECT seq, result, cardinality(defect_ids) FROM read.lead_activation_tests \
         WHERE lead_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(tests, [(1, "failed".into(), 1), (2, "passed".into(), 0)]);
    let defect: (String, String, Option<String>, Option<Uuid>) = sqlx::query_as(
        "SELECT title, status, resolution, resolved_by FROM read.lead_defects WHERE lead_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        defect,
        (
            "Only 600 Mbps".into(),
            "resolved".into(),
            Some("Replaced the SFP".into()),
            Some(engineer)
        )
    );
}

#[tokio::test]
async fn one_event_per_batch_and_a_rebuild_give_the_same_tables() {
    let env = Env::new().await;
    whole_life(&env).await;
    let other = capture(&env, "globex", "Globex Corp", 5).await;
    let approval = Uuid::now_v7();
    for command in [
        LeadCommand::Qualify {
            score: LeadScore::parse("score", 40).unwrap(),
            actor: other.actor,
            at: at(6),
        },
        LeadCommand::CheckServiceability {
            feasible: true,
            notes: None,
            actor: other.actor,
            at: at(7),
        },
        LeadCommand::SubmitDesign {
            summary: short("One path"),
            specification: long("Spec"),
            documents: vec![],
            actor: other.actor,
            at: at(8),
        },
        LeadCommand::RequestDesignApproval {
            approval_id: approval,
            actor: other.actor,
            at: at(9),
        },
        // Closing with the approval pending cancels it.
        LeadCommand::Close {
            outcome: Outcome::Cancelled,
            reason: None,
            actor: other.actor,
            at: at(11),
        },
    ] {
        other.run(command).await;
    }

    // One event per batch: every row is loaded back from the tables.
    let mut w = worker(&env, 1).await;
    assert_eq!(drain(&mut w).await, 32);
    let one_by_one = status::checksums(&env.db.pool, &Leads).await.unwrap();
    let (state, decision): (String, Option<String>) = sqlx::query_as(
        "SELECT l.approval_state, d.decision FROM read.leads l \
         JOIN read.lead_designs d USING (lead_id) WHERE l.lead_id = $1",
    )
    .bind(other.id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), decision.as_deref()),
        ("cancelled", Some("cancelled"))
    );

    // A rebuild reads everything in one batch and ends equal.
    status::request_rebuild(&env.db.pool, "leads")
        .await
        .unwrap();
    w.refresh().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        if let Step::Swapped { .. } = w.process_rebuild_batch().await.unwrap() {
            break;
        }
    }
    assert_eq!(
        status::checksums(&env.db.pool, &Leads).await.unwrap(),
        one_by_one
    );
    // The generated durations survive the swap.
    let closed_stays: i64 =
        sqlx::query_scalar("SELECT count(*) FROM read.lead_stages WHERE duration IS NOT NULL")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(closed_stays, 10 + 5);
}

#[tokio::test]
async fn every_lead_and_contract_table_and_column_is_documented() {
    use chronicle_projections::read::contracts::Contracts;
    use chronicle_projections::Projection;

    let env = Env::new().await;
    let tables: Vec<String> = Leads
        .tables()
        .iter()
        .chain(Contracts.tables())
        .map(|t| t.to_string())
        .collect();
    let undocumented: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || coalesce('.' || a.attname, '') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
              AND col_description(c.oid, a.attnum) IS NULL \
         WHERE n.nspname = 'read' AND c.relname = ANY($1) \
           AND (a.attname IS NOT NULL OR obj_description(c.oid, 'pg_class') IS NULL) \
         ORDER BY 1",
    )
    .bind(&tables)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert!(undocumented.is_empty(), "no COMMENT ON: {undocumented:?}");
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[]) AS t(name) WHERE \
         has_table_privilege('chronicle_analyst', to_regclass(format('read.%I', name)), 'SELECT')",
    )
    .bind(&tables)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        found,
        tables.len() as i64,
        "every table exists, analysts read it"
    );
}
