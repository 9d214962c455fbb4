//! Tests of the PostgreSQL mechanism itself: a reader never skips an event
//! that commits late, aborted appends do not stall readers forever, and the
//! database refuses to change stored events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_store::postgres::PgEventStore;
use chronicle_store::{subscribe, EventStore, ExpectedVersion};
use chronicle_testkit::TestDb;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::conformance::{event, stream};

/// Starts an append in a transaction that stays open: the held event has a
/// lower position than anything appended after it.
async fn hold_append(url: &str, stream_id: &str) -> (PgConnection, i64) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    let e = event(json!({ "held": true }));
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT positions FROM chronicle_append('acme', $1, 'ticket', -2, $2, ARRAY['ticket.commented'], \
         ARRAY[1::smallint], ARRAY[$3::jsonb], ARRAY['{}'::jsonb])",
    )
    .bind(stream_id)
    .bind(vec![e.event_id])
    .bind(e.data.to_string())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    (conn, positions[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_waits_for_a_lower_position_that_commits_late() {
    let db = TestDb::new().await;
    let store = Arc::new(PgEventStore::new(db.pool.clone()));
    store
        .append(
            &stream("before"),
            ExpectedVersion::NoStream,
            &[event(json!({}))],
        )
        .await
        .unwrap();
    let mut sub = subscribe(store.clone(), 0).with_poll_interval(Duration::from_millis(20));
    assert_eq!(sub.next_batch(10).await.unwrap().len(), 1);

    let (mut held, held_position) = hold_append(&db.url, "held").await;
    let mut later = Vec::new();
    for i in 0..5 {
        let r = store
            .append(
                &stream(&format!("later-{i}")),
                ExpectedVersion::NoStream,
                &[event(json!({ "i": i }))],
            )
            .await
            .unwrap();
        assert!(r.last_position() > held_position as u64);
        later.push(r.last_position());
    }

    // The later events are committed and visible, but a reader must not
    // pass the open lower position.
    let batch = store.read_batch(sub.position(), 100).await.unwrap();
    assert!(
        batch.events.is_empty(),
        "read past an uncommitted lower position"
    );
    assert!(batch.blocked);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.next_batch(100))
            .await
            .is_err(),
        "subscriber delivered events past an uncommitted lower position"
    );

    sqlx::query("COMMIT").execute(&mut held).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 6 {
        assert!(Instant::now() < deadline, "late commit never delivered");
        let batch = tokio::time::timeout(Duration::from_secs(5), sub.next_batch(100))
            .await
            .unwrap()
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.position));
    }
    let mut expected = vec![held_position as u64];
    expected.extend(later);
    assert_eq!(
        seen, expected,
        "the late event first, then the rest, once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_aborted_append_leaves_a_hole_readers_pass() {
    let db = TestDb::new().await;
    let store = Arc::new(PgEventStore::new(db.pool.clone()));
    let (mut held, held_position) = hold_append(&db.url, "aborted").await;
    let after = store
        .append(
            &stream("after-abort"),
            ExpectedVersion::NoStream,
            &[event(json!({}))],
        )
        .await
        .unwrap();
    assert!(store.read_all(0, 10).await.unwrap().is_empty());

    sqlx::query("ROLLBACK").execute(&mut held).await.unwrap();
    let mut sub = subscribe(store.clone(), 0).with_poll_interval(Duration::from_millis(20));
    let batch = tokio::time::timeout(Duration::from_secs(10), sub.next_batch(10))
        .await
        .expect("reader stalled behind an aborted append")
        .unwrap();
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![after.last_position()]
    );
    assert!(after.last_position() > held_position as u64);
    // A fresh read from the start passes the hole at once.
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
}

/// Concurrent writers across many streams with a slow transaction in the
/// middle: a subscriber still sees every event, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_commits_under_load_are_never_skipped() {
    let db = TestDb::new().await;
    let store = Arc::new(PgEventStore::new(db.pool.clone()));
    let mut sub = subscribe(store.clone(), 0).with_poll_interval(Duration::from_millis(20));
    let (mut held, _) = hold_append(&db.url, "slow").await;
    let mut handles = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .append(
                        &stream(&format!("load-{w}-{i}")),
                        ExpectedVersion::NoStream,
                        &[event(json!({}))],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    sqlx::query("COMMIT").execute(&mut held).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 201 {
        assert!(Instant::now() < deadline, "received {} of 201", seen.len());
        let batch = tokio::time::timeout(Duration::from_secs(5), sub.next_batch(64))
            .await
            .unwrap()
            .unwrap();
        seen.extend(batch.into_iter().map(|e| e.position));
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let stored: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        seen,
        stored.into_iter().map(|p| p as u64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn stored_events_cannot_be_changed_even_by_their_owner() {
    let db = TestDb::new().await;
    let store = PgEventStore::new(db.pool.clone());
    store
        .append(
            &stream("immutable"),
            ExpectedVersion::NoStream,
            &[event(json!({ "a": 1 }))],
        )
        .await
        .unwrap();
    for sql in [
        "UPDATE events SET data = '{\"a\": 2}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("CH002"), "{sql}: {err}");
    }
    let data: serde_json::Value = sqlx::query_scalar("SELECT data FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(data, json!({ "a": 1 }));
    // PUBLIC has no right to change events either.
    let public_can_update: bool =
        sqlx::query_scalar("SELECT has_table_privilege('public', 'events', 'UPDATE')")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!public_can_update);
}

/// Two processes append to one stream: the versions one of them remembers
/// go stale, and the database still refuses every wrong expected version.
#[tokio::test]
async fn a_stale_process_cannot_append_at_a_taken_version() {
    use chronicle_store::{Direction, StoreError};
    let db = TestDb::new().await;
    let a = PgEventStore::new(db.pool.clone());
    let b = PgEventStore::new(db.pool.clone());
    let s = stream("shared");
    a.append(&s, ExpectedVersion::NoStream, &[event(json!({}))])
        .await
        .unwrap();
    b.read_stream(&s.id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    b.append(&s, ExpectedVersion::Exact(1), &[event(json!({}))])
        .await
        .unwrap();
    // `a` last saw version 1; the stream is at 2.
    let stale = a
        .append(&s, ExpectedVersion::Exact(1), &[event(json!({}))])
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { actual: 2, .. })),
        "{stale:?}"
    );
    let stale_batch = a
        .append(
            &s,
            ExpectedVersion::Exact(1),
            &[event(json!({})), event(json!({}))],
        )
        .await;
    assert!(
        matches!(stale_batch, Err(StoreError::Conflict { actual: 2, .. })),
        "{stale_batch:?}"
    );
    let ahead = a
        .append(&s, ExpectedVersion::Exact(3), &[event(json!({}))])
        .await;
    assert!(
        matches!(ahead, Err(StoreError::Conflict { actual: 2, .. })),
        "{ahead:?}"
    );
    a.append(&s, ExpectedVersion::Exact(2), &[event(json!({}))])
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT stream_version FROM events ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3]);
}

/// Another process's append wakes a subscriber through LISTEN/NOTIFY, long
/// before its polling fallback would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_another_process_wake_subscribers() {
    let db = TestDb::new().await;
    let writer = PgEventStore::new(db.pool.clone());
    // A separate store (its own listener, its own wake-ups): as another process.
    let reader = Arc::new(PgEventStore::new(db.pool.clone()));
    let mut sub = subscribe(reader, 0).with_poll_interval(Duration::from_secs(3600));
    writer
        .append(
            &stream("remote-0"),
            ExpectedVersion::NoStream,
            &[event(json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(sub.next_batch(10).await.unwrap().len(), 1);

    let mut waiting = tokio::spawn(async move { sub.next_batch(10).await });
    // Nothing new: the subscriber parks (its fallback poll is an hour away).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err()
    );
    writer
        .append(
            &stream("remote-1"),
            ExpectedVersion::NoStream,
            &[event(json!({}))],
        )
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("no wake-up from another process's append")
        .unwrap()
        .unwrap();
    assert_eq!(batch.len(), 1);
}
