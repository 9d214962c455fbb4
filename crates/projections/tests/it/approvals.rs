//! The approvals projection: approvals, levels, decisions and the inbox
//! follow every approval event; the tables are the same whatever the batch
//! size, and a rebuild ends equal to the live tables.

use std::sync::Arc;
use std::time::Duration;

use chronicle_commands::Context;
use chronicle_domain::approval::{Approval, ApprovalCommand, Decision, Subject, SubjectKind};
use chronicle_domain::policy::{Approver, LevelSpec};
use chronicle_domain::value::{Currency, LongText, Money, ShortText};
use chronicle_projections::read::approvals::Approvals;
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::status;
use chronicle_store::{StreamId, TenantId};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::support::{drain, Env};

/// Minute `m` of a fixed day.
fn at(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 6, 9, 0, 0).unwrap() + chrono::Duration::minutes(m)
}

async fn run(env: &Env, tenant: &str, id: Uuid, command: ApprovalCommand) {
    env.commands
        .execute::<Approval>(
            &StreamId::parse(id.to_string()).unwrap(),
            &Context::new(TenantId::parse(tenant).unwrap(), "tester"),
            &command,
        )
        .await
        .unwrap();
}

fn level(approvers: Vec<Approver>, required: u16, due_secs: Option<u64>) -> LevelSpec {
    LevelSpec {
        approvers,
        required,
        due_secs,
    }
}

async fn request(env: &Env, tenant: &str, levels: Vec<LevelSpec>, minute: i64) -> Uuid {
    let id = Uuid::now_v7();
    let command = ApprovalCommand::Request {
        subject: Subject {
            kind: SubjectKind::Contract,
            id: Uuid::now_v7(),
        },
        value: Some(
            Money::new(
                "value",
                250_000,
                Currency::parse("currency", "EUR").unwrap(),
            )
            .unwrap(),
        ),
        levels,
        requested_by: Uuid::now_v7(),
        at: at(minute),
    };
    run(env, tenant, id, command).await;
    id
}

async fn decide(
    env: &Env,
    id: Uuid,
    actor: Uuid,
    roles: &[&str],
    decision: Decision,
    comment: Option<&str>,
    minute: i64,
) {
    let command = ApprovalCommand::Decide {
        decision,
        comment: comment.map(|c| LongText::parse("comment", c.to_owned()).unwrap()),
        actor,
        actor_roles: roles.iter().map(|r| r.to_string()).collect(),
        at: at(minute),
    };
    run(env, "acme", id, command).await;
}

/// `(level, kind, approver)` of an approval's inbox rows, sorted.
async fn inbox(env: &Env, id: Uuid) -> Vec<(i32, String, String)> {
    sqlx::query_as(
        "SELECT level_no, approver_kind, approver FROM read.approval_inbox \
         WHERE approval_id = $1 ORDER BY 1, 2, 3",
    )
    .bind(id)
    .fetch_all(&env.db.pool)
    .await
    .unwrap()
}

/// `(status, current_level, outcome)` of an approval.
async fn approval(env: &Env, id: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as(
        "SELECT status, current_level, outcome FROM read.approvals WHERE approval_id = $1",
    )
    .bind(id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap()
}

/// The statuses of an approval's levels, in order.
async fn level_statuses(env: &Env, id: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT status FROM read.approval_levels WHERE approval_id = $1 ORDER BY level_no",
    )
    .bind(id)
    .fetch_all(&env.db.pool)
    .await
    .unwrap()
}

fn approvals() -> Arc<Approvals> {
    Arc::new(Approvals)
}

#[tokio::test]
async fn an_approval_moves_through_its_levels_and_the_inbox_follows() {
    let env = Env::new().await;
    let (u1, u2, holder) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let id = request(
        &env,
        "acme",
        vec![
            level(
                vec![Approver::Role("approver".into()), Approver::User(u1)],
                2,
                Some(3600),
            ),
            level(vec![Approver::User(u2)], 1, None),
        ],
        0,
    )
    .await;
    let mut worker = env.worker(approvals()).await;
    assert_eq!(drain(&mut worker).await, 1);
    assert_eq!(approval(&env, id).await, ("open".into(), 0, None));
    assert_eq!(
        inbox(&env, id).await,
        [
            (0, "role".into(), "approver".into()),
            (0, "user".into(), u1.to_string())
        ]
    );
    let (due, value, currency, level_count): (
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<String>,
        i32,
    ) = sqlx::query_as(
        "SELECT current_due_at, value_minor, value_currency, level_count \
             FROM read.approvals WHERE approval_id = $1",
    )
    .bind(id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(due, Some(at(60)));
    assert_eq!(
        (value, currency.as_deref(), level_count),
        (Some(250_000), Some("EUR"), 2)
    );
    assert_eq!(level_statuses(&env, id).await, ["open", "waiting"]);

    // The named user decides: their row goes, the role's stays.
    decide(&env, id, u1, &[], Decision::Approve, None, 5).await;
    drain(&mut worker).await;
    assert_eq!(
        inbox(&env, id).await,
        [(0, "role".into(), "approver".into())]
    );
    // A role holder completes level 0: level 1's approver is asked now.
    decide(
        &env,
        id,
        holder,
        &["approver"],
        Decision::Approve,
        Some("fine"),
        7,
    )
    .await;
    drain(&mut worker).await;
    assert_eq!(approval(&env, id).await, ("open".into(), 1, None));
    assert_eq!(inbox(&env, id).await, [(1, "user".into(), u2.to_string())]);
    assert_eq!(level_statuses(&env, id).await, ["completed", "open"]);
    let (approvals, decisions, completed): (i32, i32, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT approvals, decisions, completed_at FROM read.approval_levels \
         WHERE approval_id = $1 AND level_no = 0",
    )
    .bind(id)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!((approvals, decisions, completed), (2, 2, Some(at(7))));

    decide(&env, id, u2, &["sales"], Decision::Approve, None, 9).await;
    drain(&mut worker).await;
    assert_eq!(
        approval(&env, id).await,
        ("granted".into(), 1, Some("granted".into()))
    );
    assert!(inbox(&env, id).await.is_empty());
    assert_eq!(level_statuses(&env, id).await, ["completed", "completed"]);
    let decided: Vec<(i32, Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT level_no, approver_id, decision, comment FROM read.approval_decisions \
         WHERE approval_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        decided,
        [
            (0, u1, "approve".into(), None),
            (0, holder, "approve".into(), Some("fine".into())),
            (1, u2, "approve".into(), None),
        ]
    );
    let (decided_at, version): (Option<DateTime<Utc>>, i64) =
        sqlx::query_as("SELECT decided_at, version FROM read.approvals WHERE approval_id = $1")
            .bind(id)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    // requested, 3 decisions, 2 level completions, granted.
    assert_eq!((decided_at, version), (Some(at(9)), 7));
}

#[tokio::test]
async fn rejection_cancellation_and_escalation_end_or_mark_levels() {
    let env = Env::new().await;
    let holder = Uuid::now_v7();
    let two = || {
        vec![
            level(vec![Approver::Role("approver".into())], 1, Some(60)),
            level(vec![Approver::Role("manager".into())], 1, None),
        ]
    };
    let rejected = request(&env, "acme", two(), 0).await;
    decide(
        &env,
        rejected,
        holder,
        &["approver"],
        Decision::Reject,
        Some("too expensive"),
        3,
    )
    .await;
    let cancelled = request(&env, "acme", two(), 1).await;
    let canceller = Uuid::now_v7();
    run(
        &env,
        "acme",
        cancelled,
        ApprovalCommand::Cancel {
            reason: Some(ShortText::parse("reason", "deal lost".to_owned()).unwrap()),
            actor: canceller,
            at: at(4),
        },
    )
    .await;
    let escalated = request(&env, "acme", two(), 2).await;
    run(
        &env,
        "acme",
        escalated,
        ApprovalCommand::Escalate {
            level: 0,
            at: at(5),
        },
    )
    .await;
    let mut worker = env.worker(approvals()).await;
    drain(&mut worker).await;

    assert_eq!(
        approval(&env, rejected).await,
        ("rejected".into(), 0, Some("rejected".into()))
    );
    let (by, comment): (Option<Uuid>, Option<String>) = sqlx::query_as(
        "SELECT outcome_by, outcome_comment FROM read.approvals WHERE approval_id = $1",
    )
    .bind(rejected)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (by, comment.as_deref()),
        (Some(holder), Some("too expensive"))
    );
    assert_eq!(level_statuses(&env, rejected).await, ["stopped", "skipped"]);
    assert!(inbox(&env, rejected).await.is_empty());

    assert_eq!(
        approval(&env, cancelled).await,
        ("cancelled".into(), 0, Some("cancelled".into()))
    );
    let (by, reason): (Option<Uuid>, Option<String>) = sqlx::query_as(
        "SELECT outcome_by, outcome_comment FROM read.approvals WHERE approval_id = $1",
    )
    .bind(cancelled)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (by, reason.as_deref()),
        (Some(canceller), Some("deal lost"))
    );
    assert_eq!(
        level_statuses(&env, cancelled).await,
        ["stopped", "skipped"]
    );
    assert!(inbox(&env, cancelled).await.is_empty());

    let (count, escalated_at): (i32, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT a.escalation_count, l.escalated_at FROM read.approvals a \
         JOIN read.approval_levels l USING (approval_id) \
         WHERE a.approval_id = $1 AND l.level_no = 0",
    )
    .bind(escalated)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!((count, escalated_at), (1, Some(at(5))));
    assert_eq!(approval(&env, escalated).await, ("open".into(), 0, None));
    assert_eq!(
        inbox(&env, escalated).await,
        [(0, "role".into(), "approver".into())]
    );
    // Every row carries its tenant.
    let tenants: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tenant_id FROM read.approvals UNION SELECT DISTINCT tenant_id FROM read.approval_levels \
         UNION SELECT DISTINCT tenant_id FROM read.approval_decisions UNION SELECT DISTINCT tenant_id FROM read.approval_inbox",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(tenants, ["acme"]);
}

/// Drives live and rebuild batches until the rebuild swaps in.
async fn until_swapped(worker: &mut Worker) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        worker.process_batch().await.unwrap();
        if let Step::Swapped { .. } = worker.process_rebuild_batch().await.unwrap() {
            return;
        }
    }
}

#[tokio::test]
async fn one_event_per_batch_and_a_rebuild_in_one_batch_give_the_same_tables() {
    let env = Env::new().await;
    for i in 0..6 {
        let (u, holder) = (Uuid::now_v7(), Uuid::now_v7());
        let id = request(
            &env,
            if i % 2 == 0 { "acme" } else { "globex" },
            vec![
                level(
                    vec![Approver::User(u), Approver::Role("approver".into())],
                    2,
                    Some(600),
                ),
                level(vec![Approver::Role("manager".into())], 1, None),
            ],
            i,
        )
        .await;
        if i % 2 == 0 {
            decide(&env, id, u, &[], Decision::Approve, None, 10 + i).await;
            if i != 4 {
                decide(
                    &env,
                    id,
                    holder,
                    &["approver"],
                    Decision::Approve,
                    None,
                    11 + i,
                )
                .await;
            }
            if i == 0 {
                decide(
                    &env,
                    id,
                    holder,
                    &["manager"],
                    Decision::RequestChanges,
                    Some("add the SLA annex"),
                    12,
                )
                .await;
            }
        }
    }
    let mut worker = Worker::acquire(
        &env.db.pool.connect_options(),
        env.store.clone(),
        approvals(),
        Options {
            batch_size: 1,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .expect("the lease is free");
    drain(&mut worker).await;
    let live = status::checksums(&env.db.pool, &Approvals).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM read.approval_inbox")
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    // Open: #1, #3, #5 (both approvers of level 0), #4 (the role after the
    // user decided), #2 (level 1's role); #0 ended with changes requested.
    assert_eq!(rows, 2 + 2 + 2 + 1 + 1);
    status::request_rebuild(&env.db.pool, "approvals")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    until_swapped(&mut worker).await;
    assert_eq!(
        status::checksums(&env.db.pool, &Approvals).await.unwrap(),
        live
    );
}
