//! `chronicle project` as separate processes: killed with SIGKILL in the
//! middle of a catch-up it resumes and ends equal to a clean rebuild; a
//! second process stands by and takes over when the owner dies.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_projections::status;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef};
use chronicle_store::{TenantId, TypeName};
use chronicle_testkit::TestDb;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

fn example(event_type: &str) -> Value {
    chronicle_domain::ticket::event_specs()
        .into_iter()
        .find(|s| s.event_type == event_type)
        .unwrap()
        .example
}

/// Appends `tickets` tickets, each opened and commented on twice.
async fn seed(store: &PgEventStore, tickets: usize) {
    let opened = example("ticket.opened");
    let commented = example("ticket.commented");
    let tasks: Vec<_> = (0..4)
        .map(|part| {
            let (store, opened, commented) = (store.clone(), opened.clone(), commented.clone());
            tokio::spawn(async move {
                for _ in 0..tickets / 4 {
                    let stream = StreamRef {
                        tenant: TenantId::parse("acme").unwrap(),
                        stream_type: TypeName::parse("ticket").unwrap(),
                        id: StreamId::parse(Uuid::now_v7().to_string()).unwrap(),
                    };
                    let mut events = vec![new_event("ticket.opened", opened.clone())];
                    for _ in 0..2 {
                        let mut c = commented.clone();
                        c["comment_id"] = Value::String(Uuid::now_v7().to_string());
                        events.push(new_event("ticket.commented", c));
                    }
                    store
                        .append(&stream, ExpectedVersion::NoStream, &events)
                        .await
                        .unwrap();
                }
                part
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn new_event(event_type: &str, data: Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse(event_type).unwrap(),
        schema_version: 1,
        data,
        metadata: Metadata::default(),
        personal: None,
    }
}

fn project(db: &TestDb) -> Child {
    let read_models: Vec<&str> = chronicle_projections::all()
        .iter()
        .map(|p| p.name())
        .collect();
    Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["project", "--only", &read_models.join(",")])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        // Small batches: many commits to kill the process between.
        .env("CHRONICLE_PROJECTION_BATCH", "500")
        .env(
            "CHRONICLE_DATA_DIR",
            std::env::temp_dir().join("chronicle-projector-test"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
}

async fn lowest_position(pool: &PgPool) -> u64 {
    let names: Vec<&str> = chronicle_projections::all()
        .iter()
        .map(|p| p.name())
        .collect();
    let rows = status::status(pool, &chronicle_projections::all())
        .await
        .unwrap();
    assert_eq!(rows.len(), names.len());
    rows.iter().map(|r| r.position).min().unwrap_or(0)
}

/// Polls until every projection has reached `head`.
async fn wait_caught_up(pool: &PgPool, head: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while lowest_position(pool).await < head {
        assert!(Instant::now() < deadline, "projections did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_checksums(pool: &PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in chronicle_projections::all() {
        out.extend(status::checksums(pool, &*p).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projector_killed_20_times_mid_catch_up_ends_equal_to_a_clean_rebuild() {
    let db = TestDb::new().await;
    let store = Arc::new(PgEventStore::new(db.pool.clone()));
    seed(&store, 12_000).await;
    let head = store.head_position().await.unwrap();
    let mut last = 0;
    for round in 0..20 {
        let mut child = project(&db);
        // Kill it once it has committed something new in this life.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = lowest_position(&db.pool).await;
            let any: i64 =
                sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM projection_checkpoints")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            if any as u64 > last || now >= head {
                last = any as u64;
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: no progress");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kill(&mut child);
    }
    assert!(
        lowest_position(&db.pool).await < head,
        "the kills all landed before the end of the catch-up"
    );
    let mut child = project(&db);
    wait_caught_up(&db.pool, head, Duration::from_secs(120)).await;
    kill(&mut child);
    let resumed = all_checksums(&db.pool).await;

    let pool = db.pool.clone();
    let projections = chronicle_projections::all();
    for p in &projections {
        status::request_rebuild(&pool, p.name()).await.unwrap();
    }
    let mut child = project(&db);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = status::status(&pool, &projections).await.unwrap();
        if rows
            .iter()
            .all(|r| !r.rebuild_requested && r.rebuilt_at.is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rebuild did not finish: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(&mut child);
    assert_eq!(all_checksums(&db.pool).await, resumed);
    let comments: i64 = sqlx::query_scalar("SELECT sum(comment_count) FROM read.tickets")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(comments, 24_000, "no batch was applied twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_within_seconds_when_the_owner_is_killed() {
    let db = TestDb::new().await;
    let store = Arc::new(PgEventStore::new(db.pool.clone()));
    seed(&store, 400).await;
    let head = store.head_position().await.unwrap();
    let mut first = project(&db);
    let mut second = project(&db);
    wait_caught_up(&db.pool, head, Duration::from_secs(60)).await;
    let rows = status::status(&db.pool, &chronicle_projections::all())
        .await
        .unwrap();
    let owner_pid: u32 = rows[0]
        .owner
        .as_deref()
        .and_then(|o| o.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let (owner, standby) = if owner_pid == first.id() {
        (&mut first, &mut second)
    } else {
        assert_eq!(owner_pid, second.id());
        (&mut second, &mut first)
    };
    kill(owner);
    let killed = Instant::now();
    seed(&store, 40).await;
    let head = store.head_position().await.unwrap();
    wait_caught_up(&db.pool, head, Duration::from_secs(10)).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    kill(standby);
    let comments: i64 = sqlx::query_scalar("SELECT sum(comment_count) FROM read.tickets")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(comments, 880);
}
