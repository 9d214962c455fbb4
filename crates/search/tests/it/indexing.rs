//! Documents follow the events; commits carry the position; a restart
//! resumes there; a crash loses nothing committed and applies the rest
//! again; a rebuild gives the same index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_domain::contract::Grantee;
use chronicle_projections::status;
use chronicle_search::doc::Kind;
use chronicle_search::index::{Compaction, Indexer, Layout, Reader, WriterOptions};
use chronicle_search::indexer::{self, Options};
use chronicle_search::query::{ContractAccess, Scope, TicketAccess};
use chronicle_store::EventStore as _;
use chronicle_testkit::TestDb;
use uuid::Uuid;

use crate::support::{
    admin, append, caught_up, commit_in_batches, ev, one_segment, search, search_with, store,
    titles,
};

struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(db: &TestDb, data_dir: &std::path::Path) -> Running {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut options = Options::new(data_dir.to_owned());
    options.poll_interval = Duration::from_millis(100);
    let task = tokio::spawn(indexer::run(
        store(db),
        (*db.pool.connect_options()).clone(),
        options,
        stopped,
    ));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

#[tokio::test]
async fn documents_follow_amend_share_revise_retire_and_close() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let running = start(&db, dir.path());
    let reader = Arc::new(Reader::new(dir.path()));
    let (owner, friend) = (Uuid::now_v7(), Uuid::now_v7());
    let contract = Uuid::now_v7();
    append(
        &events,
        "acme",
        "contract",
        contract,
        vec![ev::drafted(
            "Managed fibre for Globex",
            "Globex Corp",
            "The supplier provides managed fibre to three sites.",
            owner,
        )],
    )
    .await;
    let article = Uuid::now_v7();
    append(
        &events,
        "acme",
        "knowledge_article",
        article,
        vec![ev::published(
            "SmartHub loses Wi-Fi",
            "Roll back the firmware and disable band steering.",
            &["wi-fi", "firmware"],
        )],
    )
    .await;
    let ticket = Uuid::now_v7();
    let customer = Uuid::now_v7();
    let at = append(
        &events,
        "acme",
        "ticket",
        ticket,
        vec![ev::opened(
            "Packet loss on the uplink",
            "Loss of 2-5 % during business hours.",
            customer,
        )],
    )
    .await;
    // Another tenant's contract with the same words.
    append(
        &events,
        "other",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted(
            "Managed fibre for Initech",
            "Initech",
            "The supplier provides managed fibre.",
            owner,
        )],
    )
    .await;
    let s = caught_up(&reader, at).await;
    let all = admin("acme");
    assert_eq!(
        titles(&search(&s, &all, "fibre")),
        ["Managed fibre for Globex"]
    );
    assert_eq!(
        titles(&search(&s, &all, "firmware")),
        ["SmartHub loses Wi-Fi"]
    );
    assert_eq!(
        titles(&search(&s, &all, "uplink")),
        ["Packet loss on the uplink"]
    );
    // Stemming: "provides" finds "provide", "sites" finds "site".
    assert_eq!(search(&s, &all, "provide site").hits.len(), 1);

    // Amend changes the body; share lets another user see it.
    append(
        &events,
        "acme",
        "contract",
        contract,
        vec![
            ev::amended(2, "The supplier provides dark fibre to four depots."),
            ev::shared(Grantee::User(friend)),
            ev::activated(),
        ],
    )
    .await;
    append(
        &events,
        "acme",
        "knowledge_article",
        article,
        vec![ev::revised(
            2,
            "SmartHub drops Wi-Fi",
            "Update to firmware 2.5, which fixes band steering.",
        )],
    )
    .await;
    let at = append(
        &events,
        "acme",
        "ticket",
        ticket,
        vec![ev::commented("Replaced the optical transceiver.")],
    )
    .await;
    let s = caught_up(&reader, at).await;
    assert_eq!(search(&s, &all, "depots").hits.len(), 1);
    assert_eq!(
        search(&s, &all, "sites").hits.len(),
        0,
        "the old body is gone"
    );
    let hit = &search(&s, &all, "depots").hits[0];
    assert_eq!((hit.status.as_str(), hit.kind), ("active", "contract"));
    assert!(hit.snippet.contains("<b>depots</b>"), "{}", hit.snippet);
    let friend_scope = Scope {
        tenant: "acme".into(),
        contracts: ContractAccess::Granted {
            user: friend,
            roles: vec![],
        },
        tickets: TicketAccess::None,
    };
    assert_eq!(search(&s, &friend_scope, "depots").hits.len(), 1);
    assert_eq!(titles(&search(&s, &all, "drops")), ["SmartHub drops Wi-Fi"]);
    assert_eq!(
        titles(&search(&s, &all, "transceiver")),
        ["Packet loss on the uplink"]
    );
    assert_eq!(search(&s, &all, "comments:transceiver").hits.len(), 1);

    // Unshare hides it again; retire and close delete.
    append(
        &events,
        "acme",
        "contract",
        contract,
        vec![ev::unshared(Grantee::User(friend)), ev::terminated()],
    )
    .await;
    append(
        &events,
        "acme",
        "knowledge_article",
        article,
        vec![ev::retired(2)],
    )
    .await;
    let at = append(&events, "acme", "ticket", ticket, vec![ev::closed()]).await;
    let s = caught_up(&reader, at).await;
    assert_eq!(search(&s, &friend_scope, "depots").hits.len(), 0);
    assert_eq!(search(&s, &all, "depots").hits[0].status, "terminated");
    assert_eq!(search(&s, &all, "firmware").hits.len(), 0, "retired");
    assert_eq!(search(&s, &all, "transceiver").hits.len(), 0, "closed");
    let everything = search(&s, &all, "");
    assert_eq!(everything.total, 1);
    assert_eq!(everything.facets.kinds.get("contract"), Some(&1));
    assert_eq!(everything.facets.status.get("terminated"), Some(&1));
    assert_eq!(search_with(&s, &all, "", &[Kind::Kb], &[]).total, 0);
    running.stop().await;
}

/// Every stored document of the index, by key, as JSON.
fn dump(snapshot: &chronicle_search::index::Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for tenant in ["acme", "other"] {
        let all = search(snapshot, &admin(tenant), "");
        for hit in all.hits {
            out.push(format!(
                "{tenant}/{}/{}/{}/{}",
                hit.kind, hit.id, hit.title, hit.status
            ));
        }
    }
    out.sort();
    out
}

async fn load(events: &chronicle_store::postgres::PgEventStore, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let id = Uuid::now_v7();
        let tenant = if i % 3 == 0 { "other" } else { "acme" };
        last = append(
            events,
            tenant,
            "contract",
            id,
            vec![
                ev::drafted(
                    &format!("Contract {i}"),
                    "Globex",
                    &format!("Body number {i} of the fibre deal."),
                    Uuid::now_v7(),
                ),
                ev::amended(2, &format!("Amended body {i}.")),
            ],
        )
        .await;
        if i % 2 == 0 {
            last = append(
                events,
                tenant,
                "ticket",
                Uuid::now_v7(),
                vec![
                    ev::opened(&format!("Ticket {i}"), "Slow line.", Uuid::now_v7()),
                    ev::commented("Checked the router."),
                ],
            )
            .await;
        }
    }
    last
}

#[tokio::test]
async fn a_restart_resumes_from_the_commit_and_a_rebuild_gives_the_same_index() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let reader = Arc::new(Reader::new(dir.path()));
    let first = load(&events, 30).await;
    let running = start(&db, dir.path());
    let before = dump(&caught_up(&reader, first).await);
    assert_eq!(before.len(), 45);
    running.stop().await;
    let payload_at = Indexer::open_current(&Layout::new(dir.path()), WriterOptions::default())
        .unwrap()
        .position();
    assert_eq!(payload_at, first, "the commit payload holds the position");

    // More events while stopped; the restart continues from the payload.
    let second = load(&events, 10).await;
    let running = start(&db, dir.path());
    let after = dump(&caught_up(&reader, second).await);
    assert_eq!(after.len(), 60, "nothing indexed twice, nothing missed");

    // A rebuild builds a new index beside it and swaps it in.
    let old = Layout::new(dir.path()).current().unwrap().unwrap();
    let started = chrono::Utc::now();
    status::request_rebuild(&db.pool, "search").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: (bool, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
            "SELECT rebuild_requested, rebuilt_at FROM projection_checkpoints WHERE name = 'search'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if !row.0 && row.1.is_some_and(|t| t >= started) {
            break;
        }
        assert!(Instant::now() < deadline, "the rebuild did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let current = Layout::new(dir.path()).current().unwrap().unwrap();
    assert_ne!(current, old, "a new index directory");
    let rebuilt = {
        let r = reader.clone();
        tokio::task::spawn_blocking(move || r.refresh())
            .await
            .unwrap()
            .unwrap();
        dump(&reader.snapshot().unwrap())
    };
    assert_eq!(
        rebuilt, after,
        "a rebuild from scratch gives the same documents"
    );
    let rows = status::status_of(&db.pool, &["search"]).await.unwrap();
    assert_eq!(rows[0].position, second);
    assert_eq!(rows[0].state, "running");
    running.stop().await;
}

#[tokio::test]
async fn uncommitted_work_is_lost_on_a_crash_and_applied_again() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let layout = Layout::new(dir.path());
    let first = load(&events, 6).await;
    let mut indexer = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    let batch = events.read_batch(0, 10_000).await.unwrap().events;
    indexer.apply(&batch).unwrap();
    indexer.commit().unwrap();
    let second = load(&events, 4).await;
    let batch = events.read_batch(first, 10_000).await.unwrap().events;
    indexer.apply(&batch).unwrap();
    assert_eq!(indexer.applied(), second);
    // The process dies before the commit.
    drop(indexer);
    let mut indexer = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    assert_eq!(indexer.position(), first, "resumes from the last commit");
    let batch = events
        .read_batch(indexer.position(), 10_000)
        .await
        .unwrap()
        .events;
    indexer.apply(&batch).unwrap();
    indexer.commit().unwrap();
    let reader = Arc::new(Reader::new(dir.path()));
    let s = caught_up(&reader, second).await;
    assert_eq!(
        search(&s, &admin("acme"), "").total + search(&s, &admin("other"), "").total,
        15
    );
    assert_eq!(search(&s, &admin("acme"), "amended").total, 6, "each once");
}

#[tokio::test]
async fn readers_follow_many_small_commits_through_merges() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let layout = Layout::new(dir.path());
    let mut indexer = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    let reader = Reader::new(dir.path());
    for i in 0..40 {
        let at = append(
            &events,
            "acme",
            "contract",
            Uuid::now_v7(),
            vec![ev::drafted(
                &format!("Deal {i}"),
                "Globex",
                "Body.",
                Uuid::now_v7(),
            )],
        )
        .await;
        let batch = events
            .read_batch(indexer.applied(), 100)
            .await
            .unwrap()
            .events;
        indexer.apply(&batch).unwrap();
        indexer.commit().unwrap();
        assert_eq!(reader.refresh().unwrap(), at, "commit {i}");
        assert_eq!(
            search(&reader.snapshot().unwrap(), &admin("acme"), "").total,
            i + 1
        );
    }
}

/// Tantivy's dates span 1677 to 2262; a contract's term may not. Such a
/// contract is indexed (its dates at the end of that span) instead of
/// stopping the indexer on an overflow.
#[tokio::test]
async fn contracts_dated_outside_tantivys_range_are_indexed() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    append(
        &events,
        "acme",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted_between(
            "Perpetual licence",
            "Globex",
            "Runs until the end of time.",
            Uuid::now_v7(),
            day(2026, 1, 1),
            day(9999, 12, 31),
        )],
    )
    .await;
    let last = append(
        &events,
        "acme",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted_between(
            "Ancient charter",
            "Initech",
            "Older than the calendar.",
            Uuid::now_v7(),
            day(-4000, 1, 1),
            day(2300, 1, 1),
        )],
    )
    .await;
    let running = start(&db, dir.path());
    let reader = Arc::new(Reader::new(dir.path()));
    let snapshot = caught_up(&reader, last).await;
    let mut found = titles(&search(&snapshot, &admin("acme"), "perpetual OR ancient"));
    found.sort();
    assert_eq!(found, ["Ancient charter", "Perpetual licence"]);
    running.stop().await;
}

#[tokio::test]
async fn the_running_indexer_keeps_up_with_single_commands() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let events = store(&db);
    let running = start(&db, dir.path());
    let reader = Arc::new(Reader::new(dir.path()));
    let positions = chronicle_projections::positions::Positions::follow(db.pool.clone());
    indexer::follow(reader.clone(), positions.clone());
    for i in 0..30 {
        let started = Instant::now();
        let at = append(
            &events,
            "acme",
            "contract",
            Uuid::now_v7(),
            vec![ev::drafted(
                &format!("Deal {i}"),
                "Globex",
                "Body.",
                Uuid::now_v7(),
            )],
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while reader.position() < at {
            assert!(
                Instant::now() < deadline,
                "command {i}: reader at {}, want {at}",
                reader.position()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            search(&reader.snapshot().unwrap(), &admin("acme"), "").total,
            i + 1
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "command {i}: {:?}",
            started.elapsed()
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn an_index_of_another_event_log_is_built_anew() {
    let dir = tempfile::tempdir().unwrap();
    let reader = Arc::new(Reader::new(dir.path()));
    let first = TestDb::new().await;
    let at = load(&store(&first), 9).await;
    let running = start(&first, dir.path());
    assert_eq!(
        search(&caught_up(&reader, at).await, &admin("acme"), "").total,
        9
    );
    running.stop().await;
    // The same data directory, another database with fewer events.
    let second = TestDb::new().await;
    let at = append(
        &store(&second),
        "acme",
        "contract",
        Uuid::now_v7(),
        vec![ev::drafted("Only one", "Globex", "Body.", Uuid::now_v7())],
    )
    .await;
    let running = start(&second, dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reader.clone();
        let _ = tokio::task::spawn_blocking(move || r.refresh())
            .await
            .unwrap();
        if let Some(s) = reader.snapshot().filter(|s| s.position == at) {
            assert_eq!(titles(&search(&s, &admin("acme"), "")), ["Only one"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not rebuilt: at {}",
            reader.position()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await;
}

#[tokio::test]
async fn compacting_merges_the_segments_into_one_at_the_same_position() {
    // Given an index committed after every few events: several segments
    // (fewer than the 8 tantivy's merge policy would merge).
    let db = TestDb::new().await;
    let events = store(&db);
    let at = load(&events, 24).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let mut indexer = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    commit_in_batches(&events, &mut indexer, 10).await;
    let reader = Arc::new(Reader::new(dir.path()));
    let before = caught_up(&reader, at).await;
    let segments = before.searcher.segment_readers().len();
    assert!(segments > 2, "{segments} segments");
    let everything = search(&before, &admin("acme"), "");

    // When it is compacted,
    assert_eq!(indexer.compact().unwrap(), Compaction::Started);

    // then readers come to show one segment: the same documents, the same
    // position; and there is nothing more to compact.
    let after = one_segment(&reader).await;
    assert_eq!(after.position, at);
    let merged = search(&after, &admin("acme"), "");
    assert_eq!(merged.total, everything.total);
    assert_eq!(titles(&merged), titles(&everything));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match indexer.compact().unwrap() {
            Compaction::NotWorth => break,
            Compaction::Busy => {}
            Compaction::Started => panic!("compacted one segment again"),
        }
        assert!(Instant::now() < deadline, "the merge did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A restart resumes from the same position.
    indexer.close().unwrap();
    let reopened = Indexer::open_current(&layout, WriterOptions::default()).unwrap();
    assert_eq!(reopened.position(), at);
}

#[tokio::test]
async fn the_running_indexer_merges_what_a_catch_up_left_once_idle() {
    // Given a log the indexer catches up with in many commits,
    let db = TestDb::new().await;
    // (fewer than the 8 segments tantivy's merge policy would merge),
    let at = load(&store(&db), 15).await;
    let dir = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut options = Options::new(dir.path().to_owned());
    options.poll_interval = Duration::from_millis(100);
    options.batch_size = 8;
    options.catchup_commit = Duration::ZERO;
    let task = tokio::spawn(indexer::run(
        store(&db),
        (*db.pool.connect_options()).clone(),
        options,
        stopped,
    ));
    let running = Running { stop, task };

    // when it has caught up, its readers come to show one segment.
    let reader = Arc::new(Reader::new(dir.path()));
    let total = search(&caught_up(&reader, at).await, &admin("acme"), "").total;
    let merged = one_segment(&reader).await;
    assert_eq!(merged.position, at);
    assert_eq!(search(&merged, &admin("acme"), "").total, total);
    running.stop().await;
}
