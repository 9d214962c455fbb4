//! The runtime: checkpoints with the writes, leases, poison events,
//! rebuilds, late commits.

use std::sync::Arc;
use std::time::Duration;

use chronicle_projections::read::tickets::Tickets;
use chronicle_projections::runtime::{Options, Step, Worker};
use chronicle_projections::status;
use chronicle_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef};
use chronicle_store::{TenantId, TypeName};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::support::{self, drain, Env};

fn tickets() -> Arc<Tickets> {
    Arc::new(Tickets)
}

async fn checkpoint(env: &Env) -> (i64, String) {
    sqlx::query_as("SELECT position, state FROM projection_checkpoints WHERE name = 'tickets'")
        .fetch_one(&env.db.pool)
        .await
        .unwrap()
}

async fn count(env: &Env, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&env.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_move_the_read_model_and_the_checkpoint_together() {
    let env = Env::new().await;
    let a = env.open_ticket("acme", "first").await;
    env.comment("acme", a, "hello").await;
    env.open_ticket("globex", "second").await;
    let mut worker = env.worker(tickets()).await;
    assert_eq!(drain(&mut worker).await, 3);
    let head = env.store.head_position().await.unwrap();
    assert_eq!(checkpoint(&env).await, (head as i64, "running".into()));
    assert_eq!(worker.position(), head);
    assert_eq!(count(&env, "SELECT count(*) FROM read.tickets").await, 2);
    let (title, comments, tenant): (String, i32, String) = sqlx::query_as(
        "SELECT title, comment_count, tenant_id FROM read.tickets WHERE ticket_id = $1",
    )
    .bind(a)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (title.as_str(), comments, tenant.as_str()),
        ("first", 1, "acme")
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM read.ticket_comments").await,
        1
    );
    // Nothing new: idle, and the checkpoint stays.
    assert_eq!(worker.process_batch().await.unwrap(), Step::Idle);
}

#[tokio::test]
async fn one_process_at_a_time_owns_a_projection() {
    let env = Env::new().await;
    env.open_ticket("acme", "t").await;
    let first = env.worker(tickets()).await;
    let second = Worker::acquire(
        &env.db.pool.connect_options(),
        env.store.clone(),
        tickets(),
        Options::default(),
    )
    .await
    .unwrap();
    assert!(second.is_none(), "the lease is taken");
    first.release().await;
    let mut second = env.worker(tickets()).await;
    assert_eq!(drain(&mut second).await, 1);
}

#[tokio::test]
async fn a_stale_owner_cannot_apply_a_batch_twice() {
    let env = Env::new().await;
    env.open_ticket("acme", "t").await;
    let mut worker = env.worker(tickets()).await;
    // Another process moved the checkpoint (as if it had taken over).
    sqlx::query("UPDATE projection_checkpoints SET position = position + 1 WHERE name = 'tickets'")
        .execute(&env.db.pool)
        .await
        .unwrap();
    let result = worker.process_batch().await;
    assert!(
        matches!(
            result,
            Err(chronicle_projections::runtime::WorkerError::LostLease(_))
        ),
        "{result:?}"
    );
    assert_eq!(count(&env, "SELECT count(*) FROM read.tickets").await, 0);
}

/// Appends an event that the tickets projection cannot apply.
async fn append_poison(env: &Env) -> u64 {
    let stream = StreamRef {
        tenant: TenantId::parse("acme").unwrap(),
        stream_type: TypeName::parse("ticket").unwrap(),
        id: StreamId::parse(Uuid::now_v7().to_string()).unwrap(),
    };
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse("ticket.commented").unwrap(),
        schema_version: 1,
        data: json!({ "not": "a comment" }),
        metadata: Metadata::default(),
        personal: None,
    };
    env.store
        .append(&stream, ExpectedVersion::NoStream, &[event])
        .await
        .unwrap()
        .last_position()
}

#[tokio::test]
async fn a_poison_event_stops_the_projection_on_it_and_is_never_skipped() {
    let env = Env::new().await;
    let before = env.open_ticket("acme", "before").await;
    let poison = append_poison(&env).await;
    env.open_ticket("acme", "after").await;
    let mut worker = env.worker(tickets()).await;
    assert_eq!(worker.process_batch().await.unwrap(), Step::Failed);
    // The events before it were applied (found one at a time), none after.
    assert_eq!(worker.position(), poison - 1);
    let (position, state) = checkpoint(&env).await;
    assert_eq!((position as u64, state.as_str()), (poison - 1, "failed"));
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM read.tickets")
        .fetch_all(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(titles, ["before"]);
    let _ = before;
    let rows = status::status(&env.db.pool, &[tickets()]).await.unwrap();
    assert_eq!(rows[0].state, "failed");
    assert_eq!(rows[0].error_position, Some(poison));
    assert!(rows[0]
        .error
        .as_deref()
        .unwrap()
        .contains("ticket.commented"));
    // Stays stopped; a resume retries the same event (and fails again).
    assert_eq!(worker.process_batch().await.unwrap(), Step::Failed);
    assert!(status::resume(&env.db.pool, "tickets").await.unwrap());
    worker.refresh().await.unwrap();
    assert!(!worker.failed());
    assert_eq!(worker.process_batch().await.unwrap(), Step::Failed);
    assert_eq!(worker.position(), poison - 1);
}

/// Drives live and rebuild batches until the rebuild swaps in.
async fn until_swapped(worker: &mut Worker) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        worker.process_batch().await.unwrap();
        if let Step::Swapped { position } = worker.process_rebuild_batch().await.unwrap() {
            return position;
        }
    }
}

async fn index_names(env: &Env) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'read' ORDER BY indexname",
    )
    .fetch_all(&env.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rebuild_swaps_in_equal_tables_and_keeps_names_comments_and_grants() {
    let env = Env::new().await;
    for i in 0..30 {
        let t = env.open_ticket("acme", &format!("t{i}")).await;
        env.comment("acme", t, "c").await;
    }
    let mut worker = env.worker(tickets()).await;
    drain(&mut worker).await;
    let before = status::checksums(&env.db.pool, &Tickets).await.unwrap();
    let indexes = index_names(&env).await;

    status::request_rebuild(&env.db.pool, "tickets")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    assert_eq!(worker.rebuild_position(), Some(0));
    // The live tables keep answering while the shadow copy builds.
    assert_eq!(
        worker.process_rebuild_batch().await.unwrap(),
        Step::Applied {
            events: 60,
            position: worker.position()
        }
    );
    assert_eq!(count(&env, "SELECT count(*) FROM read.tickets").await, 30);
    let at = until_swapped(&mut worker).await;
    assert_eq!(at, worker.position());
    assert_eq!(
        status::checksums(&env.db.pool, &Tickets).await.unwrap(),
        before
    );
    assert_eq!(index_names(&env).await, indexes);
    let comment: Option<String> =
        sqlx::query_scalar("SELECT obj_description('read.tickets'::regclass, 'pg_class')")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert!(comment.unwrap().contains("One row per support ticket"));
    let column: Option<String> =
        sqlx::query_scalar("SELECT col_description('read.tickets'::regclass, 1)")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert!(column.is_some());
    let analyst_reads: bool = sqlx::query_scalar(
        "SELECT has_table_privilege('chronicle_analyst', 'read.tickets', 'SELECT')",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert!(analyst_reads);
    let rows = status::status(&env.db.pool, &[tickets()]).await.unwrap();
    assert!(rows[0].rebuilt_at.is_some() && !rows[0].rebuild_requested);
}

#[tokio::test]
async fn a_swap_gives_way_to_a_reader_of_its_tables_instead_of_deadlocking() {
    let env = Env::new().await;
    for i in 0..5 {
        let t = env.open_ticket("acme", &format!("t{i}")).await;
        env.comment("acme", t, "c").await;
    }
    let mut worker = env.worker(tickets()).await;
    drain(&mut worker).await;
    status::request_rebuild(&env.db.pool, "tickets")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    // Given a reader inside one snapshot that has read one of the live tables
    // and will read another (as the deliveries query and the API do)
    let mut reader = sqlx::PgConnection::connect(&env.db.url).await.unwrap();
    let mut tx = reader.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    let tickets_seen: i64 = sqlx::query_scalar("SELECT count(*) FROM read.tickets")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    // when the rebuild is ready to swap, it waits briefly and gives way
    let mut swaps = Vec::new();
    for _ in 0..3 {
        let step = tokio::time::timeout(Duration::from_secs(10), worker.process_rebuild_batch())
            .await
            .expect("the swap waited on the reader instead of giving way");
        swaps.push(step.unwrap());
    }
    assert!(
        swaps.contains(&Step::Blocked),
        "the swap should give way: {swaps:?}"
    );
    assert!(!swaps.iter().any(|s| matches!(s, Step::Swapped { .. })));
    // then the reader finishes its reads without an error
    let comments_seen: i64 = sqlx::query_scalar("SELECT count(*) FROM read.ticket_comments")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((tickets_seen, comments_seen), (5, 5));
    // and the swap goes through once the reader is done.
    until_swapped(&mut worker).await;
    assert_eq!(
        count(&env, "SELECT count(*) FROM read.ticket_comments").await,
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_concurrent_writes_converges() {
    let env = Env::new().await;
    for i in 0..50 {
        env.open_ticket("acme", &format!("t{i}")).await;
    }
    let mut worker = env.worker(tickets()).await;
    drain(&mut worker).await;
    status::request_rebuild(&env.db.pool, "tickets")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    let writer = {
        let commands = env.commands.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                let t = support::open_ticket(&commands, "acme", &format!("w{i}")).await;
                support::comment(&commands, "acme", t, "during the rebuild").await;
            }
        })
    };
    until_swapped(&mut worker).await;
    writer.await.unwrap();
    drain(&mut worker).await;
    let live = status::checksums(&env.db.pool, &Tickets).await.unwrap();
    assert_eq!(count(&env, "SELECT count(*) FROM read.tickets").await, 150);
    // A rebuild with no writes running ends equal to what live produced.
    status::request_rebuild(&env.db.pool, "tickets")
        .await
        .unwrap();
    worker.refresh().await.unwrap();
    until_swapped(&mut worker).await;
    assert_eq!(
        status::checksums(&env.db.pool, &Tickets).await.unwrap(),
        live
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_that_commits_late_still_reaches_the_read_model() {
    let env = Env::new().await;
    let spec = chronicle_domain::ticket::event_specs()
        .into_iter()
        .find(|s| s.event_type == "ticket.opened")
        .unwrap();
    let held_id = Uuid::now_v7();
    let mut held = sqlx::PgConnection::connect(&env.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut held).await.unwrap();
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT positions FROM chronicle_append('acme', $1, 'ticket', -2, $2, ARRAY['ticket.opened'], \
         ARRAY[1::smallint], ARRAY[$3::jsonb], ARRAY['{}'::jsonb])",
    )
    .bind(held_id.to_string())
    .bind(vec![Uuid::now_v7()])
    .bind(spec.example.to_string())
    .fetch_one(&mut held)
    .await
    .unwrap();
    let later = env.open_ticket("acme", "later").await;
    let mut worker = env.worker(tickets()).await;
    // The later event is committed, the held one is not: the worker waits.
    assert_eq!(worker.process_batch().await.unwrap(), Step::Blocked);
    assert_eq!(worker.position(), (positions[0] - 1) as u64);
    sqlx::query("COMMIT").execute(&mut held).await.unwrap();
    drain(&mut worker).await;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT ticket_id FROM read.tickets ORDER BY position")
        .fetch_all(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(ids, [held_id, later]);
}

/// Records the size of every batch it is handed; applies nothing.
struct Paced {
    pace: Duration,
    batches: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl chronicle_projections::Projection for Paced {
    fn name(&self) -> &'static str {
        "paced"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn pace(&self) -> Duration {
        self.pace
    }

    async fn apply(
        &self,
        _conn: &mut sqlx::PgConnection,
        events: &[chronicle_store::RecordedEvent],
    ) -> Result<(), chronicle_projections::ApplyError> {
        self.batches.lock().unwrap().push(events.len());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paced_projection_applies_what_accumulated_in_one_batch() {
    // Given a projection with a pace of 3 s, running and caught up.
    let env = Env::new().await;
    let paced = Arc::new(Paced {
        pace: Duration::from_secs(3),
        batches: Default::default(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(chronicle_projections::runtime::run(
        paced.clone(),
        env.store.clone(),
        (*env.db.pool.connect_options()).clone(),
        Options::default(),
        stopped,
    ));

    // When twenty events are appended one at a time, well within the pace.
    let started = std::time::Instant::now();
    for n in 0..20 {
        env.open_ticket("acme", &format!("ticket {n}")).await;
    }
    let appending = started.elapsed();

    // Then every event arrives, in at most three batches (the first append
    // wakes it; what follows waits for the pace).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen: usize = paced.batches.lock().unwrap().iter().sum();
        if seen == 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "saw {seen} of 20 events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let batches = paced.batches.lock().unwrap().clone();
    if appending < Duration::from_secs(3) {
        assert!(batches.len() <= 3, "batches {batches:?}");
    }
    let _ = stop.send(true);
    running.await.unwrap();
}
