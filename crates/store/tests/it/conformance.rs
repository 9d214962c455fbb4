//! The contract every backend passes. Each test takes a fresh, empty store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_store::{
    subscribe, Direction, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StreamId,
    StreamRef, TenantId, TypeName, MAX_EVENT_BYTES,
};
use serde_json::{json, Value};
use uuid::Uuid;

pub fn stream(id: &str) -> StreamRef {
    StreamRef {
        tenant: TenantId::parse("acme").unwrap(),
        stream_type: TypeName::parse("ticket").unwrap(),
        id: StreamId::parse(id).unwrap(),
    }
}

pub fn event(data: Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse("ticket.commented").unwrap(),
        schema_version: 1,
        data,
        metadata: Metadata {
            actor: Some("user-1".into()),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            request_id: Some("req-1".into()),
            source: Some("test".into()),
        },
        personal: None,
    }
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(json!({ "n": i }))).collect()
}

/// Every committed event, in order. A read may stop before a position that
/// is not yet proven a hole (another test's transaction in the same cluster
/// can hold the proof back for a moment); such a read is retried until it
/// is unblocked, under a deadline.
async fn all_events<S: EventStore + ?Sized>(store: &S) -> Vec<chronicle_store::RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out: Vec<chronicle_store::RecordedEvent> = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.read_batch(after, 500).await.unwrap();
        if let Some(last) = batch.events.last() {
            after = last.position;
        }
        let done = batch.events.is_empty() && !batch.blocked;
        out.extend(batch.events);
        if done {
            return out;
        }
        if batch.blocked {
            assert!(
                Instant::now() < deadline,
                "the log stayed blocked after position {after}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub async fn read_after_append<S: EventStore>(store: Arc<S>) {
    let s = stream("t-1");
    let batch = events(3);
    let result = store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    assert_eq!(result.stream_version, 3);
    assert_eq!(result.positions.len(), 3);
    assert!(result.positions.windows(2).all(|w| w[0] < w[1]));
    assert!(!result.already_stored);

    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    for (i, (stored, new)) in read.iter().zip(&batch).enumerate() {
        assert_eq!(stored.event_id, new.event_id);
        assert_eq!(stored.stream_version, i as u64 + 1);
        assert_eq!(stored.position, result.positions[i]);
        assert_eq!(stored.tenant, "acme");
        assert_eq!(stored.stream_id, "t-1");
        assert_eq!(stored.stream_type, "ticket");
        assert_eq!(stored.event_type, "ticket.commented");
        assert_eq!(stored.schema_version, 1);
        assert_eq!(stored.data_value().unwrap(), new.data);
        assert_eq!(stored.metadata, new.metadata);
    }
    let back = store
        .read_stream(&s.id, 3, Direction::Backward, 2)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let from_two = store
        .read_stream(&s.id, 2, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(
        from_two
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(store.stream_version(&s.id).await.unwrap(), Some(3));

    let all = store.read_all(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        result.positions
    );
    assert!(store
        .read_all(result.last_position(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.head_position().await.unwrap() >= result.last_position());
}

pub async fn expected_version_rules<S: EventStore>(store: Arc<S>) {
    let s = stream("t-2");
    store
        .append(&s, ExpectedVersion::Exact(0), &events(1))
        .await
        .unwrap();
    match store
        .append(&s, ExpectedVersion::NoStream, &events(1))
        .await
    {
        Err(StoreError::Conflict { expected, actual }) => {
            assert_eq!(expected, ExpectedVersion::NoStream);
            assert_eq!(actual, 1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match store
        .append(&s, ExpectedVersion::Exact(5), &events(2))
        .await
    {
        Err(StoreError::Conflict { actual: 1, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.stream_version(&s.id).await.unwrap(), Some(1));
    let ok = store
        .append(&s, ExpectedVersion::Exact(1), &events(2))
        .await
        .unwrap();
    assert_eq!(ok.stream_version, 3);
    let any = store
        .append(&s, ExpectedVersion::Any, &events(1))
        .await
        .unwrap();
    assert_eq!(any.stream_version, 4);
    let fresh = store
        .append(&stream("t-2b"), ExpectedVersion::Any, &events(1))
        .await
        .unwrap();
    assert_eq!(fresh.stream_version, 1);
    assert_eq!(all_events(&*store).await.len(), 5);
}

/// N writers race for each version of one stream: exactly one wins each,
/// and the stream's versions end dense.
pub async fn one_winner_per_version<S: EventStore>(store: Arc<S>) {
    const WRITERS: usize = 16;
    const ROUNDS: u64 = 10;
    let s = stream("contended");
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let mut handles = Vec::new();
        for _ in 0..WRITERS {
            let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .append(&s, ExpectedVersion::Exact(round), &events(1))
                    .await
            }));
        }
        let mut wins = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(r) => {
                    wins += 1;
                    assert_eq!(r.stream_version, round + 1);
                }
                Err(StoreError::Conflict { actual, .. }) => assert!(actual >= round),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one writer wins");
    }
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 1000)
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=ROUNDS).collect::<Vec<_>>()
    );
}

/// Writers that retry on conflict never lose an append.
pub async fn any_expected_version_under_contention<S: EventStore>(store: Arc<S>) {
    let s = stream("any-contended");
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (store, s) = (store.clone(), s.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..10 {
                store
                    .append(&s, ExpectedVersion::Any, &events(1))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 1000)
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=80).collect::<Vec<_>>()
    );
}

pub async fn idempotent_retries<S: EventStore>(store: Arc<S>) {
    let s = stream("t-3");
    let batch = events(3);
    let first = store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();

    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Any,
    ] {
        let again = store.append(&s, expected, &batch).await.unwrap();
        assert!(again.already_stored, "retry with {expected} is recognised");
        assert_eq!(again.stream_version, first.stream_version);
        assert_eq!(again.positions, first.positions);
    }
    // Appends after it do not change what the retry answers.
    store
        .append(&s, ExpectedVersion::Exact(3), &events(1))
        .await
        .unwrap();
    let late = store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    assert_eq!(late.positions, first.positions);

    // The same ids anywhere else are an error.
    let elsewhere = store
        .append(&stream("t-3-other"), ExpectedVersion::Any, &batch)
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::DuplicateEventId { .. })),
        "{elsewhere:?}"
    );
    let mut partly = events(1);
    partly.push(batch[0].clone());
    let partial = store.append(&s, ExpectedVersion::Exact(4), &partly).await;
    assert!(
        matches!(partial, Err(StoreError::DuplicateEventId { .. })),
        "{partial:?}"
    );
    let reordered = vec![batch[1].clone(), batch[0].clone()];
    let reordered = store
        .append(&s, ExpectedVersion::NoStream, &reordered)
        .await;
    assert!(
        matches!(reordered, Err(StoreError::DuplicateEventId { .. })),
        "{reordered:?}"
    );

    assert_eq!(all_events(&*store).await.len(), 4);
    assert_eq!(
        store.stream_version(&stream("t-3-other").id).await.unwrap(),
        None
    );
}

/// A subscriber started before the writers receives every committed event
/// exactly once, in order.
pub async fn completeness_under_concurrent_writers<S: EventStore>(store: Arc<S>) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 100;
    let mut sub = subscribe(store.clone(), 0).with_poll_interval(Duration::from_millis(100));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..APPENDS {
                let s = stream(&format!("w{w}-s{}", i % 17));
                let batch = events(1 + i % 3);
                ids.extend(batch.iter().map(|e| e.event_id));
                store
                    .append(&s, ExpectedVersion::Any, &batch)
                    .await
                    .unwrap();
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for h in handles {
        written.extend(h.await.unwrap());
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < written.len() {
        assert!(
            Instant::now() < deadline,
            "subscriber received {} of {}",
            seen.len(),
            written.len()
        );
        let batch = tokio::time::timeout(Duration::from_secs(10), sub.next_batch(100))
            .await
            .expect("subscriber stalled")
            .unwrap();
        seen.extend(batch);
    }
    assert!(
        seen.windows(2).all(|w| w[0].position < w[1].position),
        "in global order"
    );
    let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), seen.len(), "exactly once");
    assert_eq!(ids, written);
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.next_batch(10))
            .await
            .is_err()
    );
}

pub async fn batch_of_a_thousand<S: EventStore>(store: Arc<S>) {
    let s = stream("big-batch");
    let batch = events(1000);
    let r = store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    assert_eq!(r.stream_version, 1000);
    assert_eq!(r.positions.len(), 1000);
    assert!(r.positions.windows(2).all(|w| w[0] < w[1]));
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 2000)
        .await
        .unwrap();
    assert_eq!(read.len(), 1000);
    assert!(read
        .iter()
        .zip(&batch)
        .all(|(a, b)| a.event_id == b.event_id));
    assert_eq!(all_events(&*store).await.len(), 1000);
}

pub async fn unicode_and_large_payloads<S: EventStore>(store: Arc<S>) {
    let s = stream("unicode");
    let text = "Grüße, 世界! שלום 👩‍👩‍👧 e\u{301} \u{200d} \"quoted\" \\ back\\slash \t tab";
    let mut ev = event(json!({ "text": text, "ключ": ["ü", "🙂"] }));
    ev.metadata.actor = Some("Zoë 🙂".into());
    store
        .append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&ev))
        .await
        .unwrap();
    let big = "x".repeat(1024 * 1024);
    let big_event = event(json!({ "blob": big }));
    store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            std::slice::from_ref(&big_event),
        )
        .await
        .unwrap();
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(read[0].data_value().unwrap(), ev.data);
    assert_eq!(read[0].metadata.actor.as_deref(), Some("Zoë 🙂"));
    assert_eq!(read[1].data_value().unwrap(), big_event.data);

    // NUL cannot be stored: a typed error and nothing written.
    let nul = store
        .append(
            &s,
            ExpectedVersion::Exact(2),
            &[event(json!({ "t": "a\u{0}b" }))],
        )
        .await;
    assert!(
        matches!(nul, Err(StoreError::InvalidEvent { index: Some(0), .. })),
        "{nul:?}"
    );
    let huge = store
        .append(
            &s,
            ExpectedVersion::Exact(2),
            &[event(json!({ "blob": "y".repeat(MAX_EVENT_BYTES) }))],
        )
        .await;
    assert!(
        matches!(huge, Err(StoreError::EventTooLarge { index: 0, .. })),
        "{huge:?}"
    );
    assert_eq!(store.stream_version(&s.id).await.unwrap(), Some(2));
}

pub async fn events_are_found_by_id<S: EventStore>(store: Arc<S>) {
    let s = stream("find-by-id");
    let batch = events(3);
    let result = store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    for (event, position) in batch.iter().zip(&result.positions) {
        assert_eq!(
            store.event_position(event.event_id).await.unwrap(),
            Some(*position)
        );
    }
    assert_eq!(store.event_position(Uuid::now_v7()).await.unwrap(), None);
}

pub async fn personal_data_reads_back_until_its_subject_is_erased<S: EventStore>(store: Arc<S>) {
    use chronicle_store::{Personal, PersonalField};
    let subject = Uuid::now_v7();
    let other = Uuid::now_v7();
    let personal = |subject: Uuid| {
        Some(Personal {
            subject,
            fields: vec![
                PersonalField {
                    pointer: "/contact/name".into(),
                    erased: json!("[erased]"),
                },
                PersonalField {
                    pointer: "/contact/email".into(),
                    erased: json!("erased@erased.invalid"),
                },
            ],
        })
    };
    let mut mine =
        event(json!({ "contact": { "name": "Ann Example", "email": "ann@example.com" }, "n": 1 }));
    mine.personal = personal(subject);
    let mut theirs =
        event(json!({ "contact": { "name": "Bob Other", "email": "bob@example.com" }, "n": 2 }));
    theirs.personal = personal(other);
    let s = stream("personal");
    store
        .append(&s, ExpectedVersion::NoStream, &[mine, theirs])
        .await
        .unwrap();
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(
        read[0].data_value().unwrap()["contact"]["name"],
        "Ann Example"
    );
    assert_eq!(read[0].personal, [subject]);
    assert_eq!(
        read[1].data_value().unwrap()["contact"]["email"],
        "bob@example.com"
    );

    // Another tenant cannot erase it; its own tenant can, once.
    let elsewhere = TenantId::parse("other").unwrap();
    assert_eq!(store.erase_subject(&elsewhere, subject).await.unwrap(), 0);
    assert_eq!(store.erase_subject(&s.tenant, subject).await.unwrap(), 1);
    assert_eq!(store.erase_subject(&s.tenant, subject).await.unwrap(), 0);
    let read = store
        .read_stream(&s.id, 1, Direction::Forward, 10)
        .await
        .unwrap();
    let erased = read[0].data_value().unwrap();
    assert_eq!(
        erased["contact"],
        json!({ "name": "[erased]", "email": "erased@erased.invalid" })
    );
    assert_eq!(erased["n"], 1, "the rest of the event is as it was");
    assert!(read[0].personal.is_empty());
    assert_eq!(
        read[1].data_value().unwrap()["contact"]["name"],
        "Bob Other"
    );
    let all = all_events(&*store).await;
    assert_eq!(all[0].data_value().unwrap()["contact"]["name"], "[erased]");
    assert_eq!(all[1].data_value().unwrap()["contact"]["name"], "Bob Other");
}

pub async fn absent_stream<S: EventStore>(store: Arc<S>) {
    let id = StreamId::parse("never-written").unwrap();
    assert!(store
        .read_stream(&id, 1, Direction::Forward, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_stream(&id, u64::MAX, Direction::Backward, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version(&id).await.unwrap(), None);
    assert!(store.read_all(0, 10).await.unwrap().is_empty());
    assert_eq!(store.head_position().await.unwrap(), 0);
}

pub async fn bad_input_is_refused_and_writes_nothing<S: EventStore>(store: Arc<S>) {
    for bad in ["", " x", "a b", "a\nb", "ä", &"a".repeat(201), "-leading"] {
        assert!(
            matches!(StreamId::parse(bad), Err(StoreError::InvalidName { .. })),
            "{bad:?} is not a stream id"
        );
    }
    assert!(TenantId::parse("Acme").is_err());
    assert!(TypeName::parse("Ticket.Opened").is_err());

    let s = stream("bad-input");
    let empty = store.append(&s, ExpectedVersion::Any, &[]).await;
    assert!(
        matches!(empty, Err(StoreError::InvalidEvent { index: None, .. })),
        "{empty:?}"
    );
    let one = event(json!({}));
    let twice = store
        .append(&s, ExpectedVersion::Any, &[one.clone(), one.clone()])
        .await;
    assert!(
        matches!(twice, Err(StoreError::InvalidEvent { index: Some(1), .. })),
        "{twice:?}"
    );
    let mut v0 = event(json!({}));
    v0.schema_version = 0;
    assert!(store.append(&s, ExpectedVersion::Any, &[v0]).await.is_err());
    let too_many = store
        .append(&s, ExpectedVersion::Any, &events(10_001))
        .await;
    assert!(
        matches!(too_many, Err(StoreError::BatchTooLarge { .. })),
        "{too_many:?}"
    );
    let out_of_range = store
        .append(&s, ExpectedVersion::Exact(u64::MAX), &events(1))
        .await;
    assert!(out_of_range.is_err());

    // A stream keeps the tenant and type of its first event.
    store
        .append(&s, ExpectedVersion::NoStream, &events(1))
        .await
        .unwrap();
    let mut other_tenant = s.clone();
    other_tenant.tenant = TenantId::parse("globex").unwrap();
    let r = store
        .append(&other_tenant, ExpectedVersion::Any, &events(1))
        .await;
    assert!(
        matches!(r, Err(StoreError::StreamMismatch { what: "tenant", .. })),
        "{r:?}"
    );
    let mut other_type = s.clone();
    other_type.stream_type = TypeName::parse("lead").unwrap();
    let r = store
        .append(&other_type, ExpectedVersion::Exact(1), &events(1))
        .await;
    assert!(
        matches!(
            r,
            Err(StoreError::StreamMismatch {
                what: "stream type",
                ..
            })
        ),
        "{r:?}"
    );

    assert_eq!(
        all_events(&*store).await.len(),
        1,
        "only the one valid append was written"
    );
}
