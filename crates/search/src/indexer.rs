//! The search projection as a process: it takes the projection's lease,
//! opens the index, and folds the event log into it in global order, from
//! the position its last commit carries.
//!
//! Operations treat it like the PostgreSQL projections: it holds the same
//! kind of lease (a session advisory lock, [`LEASE_CLASS`], key
//! `hashtext('search')`), so one process writes while others stand by; it
//! keeps a row in `projection_checkpoints` (owner, position, state, rebuild
//! requests) that `chronicle projections status`, `rebuild` and `resume`
//! read and write; and it announces each commit on [`CHANNEL`] (`search:N`),
//! which readers in other processes follow. The row's position mirrors the
//! index: the truth is the index's own commit payload, which is where the
//! indexer resumes.
//!
//! Commits: while catching up, at most every [`Options::catchup_commit`]
//! (and when caught up); once live, as soon as [`Options::commit_interval`]
//! has passed since the last one, so a change is searchable within about
//! that long. Tantivy's work (applying, committing) runs on blocking
//! threads.
//!
//! A rebuild builds a fresh index beside the live one from position 0 while
//! the live one keeps answering and moving; once it has caught up, it
//! becomes `CURRENT` and readers switch to it on their next refresh.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_projections::positions::Positions;
use chronicle_projections::runtime::{CHANNEL, LEASE_CLASS};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{EventStore, RecordedEvent};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row as _};
use tokio::sync::watch;

use crate::index::{Compaction, IndexError, Indexer, Layout, Reader, WriterOptions};
use crate::NAME;

/// Metric names.
pub mod metric {
    /// Gauge: documents in the index.
    pub const DOCUMENTS: &str = "chronicle_search_documents";
    /// Gauge: bytes of the index on disk.
    pub const INDEX_BYTES: &str = "chronicle_search_index_bytes";
    /// Histogram: seconds per search query (API side).
    pub const QUERY_SECONDS: &str = "chronicle_search_query_seconds";
    /// Gauge: events between the log's head and the index's position.
    pub const LAG_EVENTS: &str = "chronicle_search_lag_events";
    /// Gauge: the index's committed position.
    pub const POSITION: &str = "chronicle_search_position";
    /// Counter: events read into the index.
    pub const EVENTS: &str = "chronicle_search_events_total";
    /// Histogram: seconds per commit.
    pub const COMMIT_SECONDS: &str = "chronicle_search_commit_seconds";
}

/// Tuning of the indexer.
#[derive(Debug, Clone)]
pub struct Options {
    /// `CHRONICLE_DATA_DIR`: the index lives in its `search/`.
    pub data_dir: PathBuf,
    /// Events per read of the log.
    pub batch_size: usize,
    /// Once caught up, the least time between two commits (and so about the
    /// longest a change waits to become searchable).
    pub commit_interval: Duration,
    /// While catching up, the most time between two commits.
    pub catchup_commit: Duration,
    /// How often the status row is re-read (rebuild and resume requests)
    /// and a standby tries to take the lease.
    pub poll_interval: Duration,
    /// Names this process in the status row.
    pub owner: String,
    pub writer: WriterOptions,
}

impl Options {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            batch_size: 10_000,
            commit_interval: Duration::from_millis(100),
            catchup_commit: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            owner: format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
                std::process::id()
            ),
            writer: WriterOptions::default(),
        }
    }
}

/// Why the indexer let go of its lease.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(#[from] chronicle_store::StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs `f` with `indexer` on a blocking thread and hands it back.
async fn blocking<T: Send + 'static>(
    mut indexer: Indexer,
    f: impl FnOnce(&mut Indexer) -> T + Send + 'static,
) -> Result<(Indexer, T), RunError> {
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let out = f(&mut indexer);
        (indexer, out)
    })
    .await?)
}

/// Runs the search projection until `shutdown` turns true: waits for the
/// lease (a hot standby meanwhile), then keeps the index up to date,
/// retrying failures with backoff. Shutdown commits what was applied.
pub async fn run(
    store: Arc<PgEventStore>,
    connect: PgConnectOptions,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*shutdown.borrow() {
        let pause = match acquire(&connect, &options).await {
            Ok(Some(conn)) => {
                // The database answered: after losing the lease, try again
                // soon, not after the pause earlier failures grew to.
                backoff = Duration::from_millis(100);
                match drive(conn, &store, &options, &mut shutdown).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(projection = NAME, error = %e, "search indexer stopped; retrying");
                        // No longer the owner: the owner reports these.
                        metrics::gauge!("chronicle_projection_failed", "projection" => NAME)
                            .set(0.0);
                        metrics::gauge!("chronicle_projection_lag_events", "projection" => NAME)
                            .set(0.0);
                        metrics::gauge!(metric::LAG_EVENTS).set(0.0);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        backoff
                    }
                }
            }
            Ok(None) => options.poll_interval,
            Err(e) => {
                tracing::warn!(projection = NAME, error = %e, "cannot take the search projection's lease; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(30));
                backoff
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Takes the lease on a new connection; `None` when another process holds it.
async fn acquire(
    connect: &PgConnectOptions,
    options: &Options,
) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = PgConnection::connect_with(
        &connect
            .clone()
            .application_name(&format!("chronicle projector {NAME}")),
    )
    .await?;
    let leased: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(LEASE_CLASS)
        .bind(NAME)
        .fetch_one(&mut conn)
        .await?;
    if !leased {
        conn.close().await.ok();
        return Ok(None);
    }
    sqlx::query("SET synchronous_commit TO off")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, owner) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner",
    )
    .bind(NAME)
    .bind(&options.owner)
    .execute(&mut conn)
    .await?;
    Ok(Some(conn))
}

/// What the status row asks for.
struct Requests {
    failed: bool,
    rebuild_requested: bool,
    rebuild_position: Option<i64>,
}

async fn read_row(conn: &mut PgConnection) -> Result<Requests, sqlx::Error> {
    let row = sqlx::query(
        "SELECT state, rebuild_requested, rebuild_position \
         FROM projection_checkpoints WHERE name = $1",
    )
    .bind(NAME)
    .fetch_one(conn)
    .await?;
    Ok(Requests {
        failed: row.get::<String, _>(0) == "failed",
        rebuild_requested: row.get(1),
        rebuild_position: row.get(2),
    })
}

/// Mirrors a commit into the status row and announces it.
async fn announce(conn: &mut PgConnection, position: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1 \
         RETURNING pg_notify($3, $1 || ':' || $2::text)::text",
    )
    .bind(NAME)
    .bind(position as i64)
    .bind(CHANNEL)
    .fetch_one(conn)
    .await?;
    metrics::gauge!(metric::POSITION).set(position as f64);
    metrics::gauge!("chronicle_projection_position", "projection" => NAME).set(position as f64);
    Ok(())
}

/// The live index and, while one runs, the rebuild beside it.
struct State {
    live: Indexer,
    last_commit: Instant,
    rebuild: Option<Indexer>,
    rebuild_commit: Instant,
    failed: bool,
    /// The live index changed since it was last found compact enough.
    compact_due: bool,
    /// Old index directories to remove once readers have moved on.
    retired: Vec<(PathBuf, Instant)>,
}

/// How long a swapped-out index stays on disk for readers to move on.
const RETIRE_AFTER: Duration = Duration::from_secs(30);

async fn drive(
    mut conn: PgConnection,
    store: &Arc<PgEventStore>,
    options: &Options,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), RunError> {
    let layout = Layout::new(&options.data_dir);
    let writer = options.writer;
    let open_layout = layout.clone();
    let mut live =
        tokio::task::spawn_blocking(move || Indexer::open_current(&open_layout, writer)).await??;
    if !follows(&live, store).await? {
        tracing::warn!(
            projection = NAME,
            index = live.name(),
            position = live.position(),
            "the search index was built from another event log (its last event is not there); \
             building a new one"
        );
        let (root, old) = (layout.clone(), live);
        live = tokio::task::spawn_blocking(move || {
            drop(old);
            let fresh = Indexer::create(&root, writer)?;
            fresh.make_current()?;
            Ok::<_, IndexError>(fresh)
        })
        .await??;
    }
    // Leftovers of an interrupted rebuild or swap.
    for dir in layout.others(&[live.name()]).map_err(IndexError::Io)? {
        let _ = std::fs::remove_dir_all(dir);
    }
    tracing::info!(
        projection = NAME,
        position = live.position(),
        index = live.name(),
        "took the search projection's lease"
    );
    announce(&mut conn, live.position()).await?;
    sqlx::query(
        "UPDATE projection_checkpoints SET rebuild_position = NULL WHERE name = $1 \
         AND rebuild_position IS NOT NULL",
    )
    .bind(NAME)
    .execute(&mut conn)
    .await?;
    let mut state = State {
        live,
        last_commit: Instant::now(),
        rebuild: None,
        rebuild_commit: Instant::now(),
        failed: false,
        compact_due: true,
        retired: Vec::new(),
    };
    observe(&state.live);
    let mut wake = store.wake_ups();
    let mut last_refresh: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            let State { live, rebuild, .. } = state;
            let (live, committed) = blocking(live, |i| {
                if i.dirty() {
                    i.commit()
                } else {
                    Ok(i.position())
                }
            })
            .await?;
            let position = committed?;
            announce(&mut conn, position).await.ok();
            drop(rebuild);
            let _ = tokio::task::spawn_blocking(move || live.close()).await;
            sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LEASE_CLASS)
                .bind(NAME)
                .execute(&mut conn)
                .await
                .ok();
            conn.close().await.ok();
            tracing::info!(projection = NAME, position, "search indexer stopped");
            return Ok(());
        }
        if last_refresh.is_none_or(|t| t.elapsed() >= options.poll_interval) {
            state = refresh(state, &mut conn, store, &layout, options).await?;
            last_refresh = Some(Instant::now());
        }

        // The live index.
        let mut caught_up = true;
        if !state.failed {
            let batch = store
                .read_batch(state.live.applied(), options.batch_size)
                .await?;
            caught_up = batch.events.len() < options.batch_size;
            if !batch.events.is_empty() {
                let n = batch.events.len();
                let events = batch.events;
                let (live, applied) = blocking(state.live, move |i| i.apply(&events)).await?;
                state.live = live;
                metrics::counter!(metric::EVENTS).increment(n as u64);
                if let Err(e) = applied {
                    state = stop(state, &mut conn, e).await?;
                }
            }
        }
        let since = state.last_commit.elapsed();
        let due = if caught_up {
            options.commit_interval
        } else {
            options.catchup_commit
        };
        if state.live.dirty() && (since >= due || state.failed) {
            state = commit_live(state, &mut conn).await?;
        }

        // The rebuild beside it.
        let mut rebuilding = false;
        if let Some(rebuild) = state.rebuild.take() {
            let (next, busy) = step_rebuild(rebuild, &mut state, &mut conn, store, options).await?;
            state.rebuild = next;
            rebuilding = busy;
        }
        state.retired.retain(|(dir, at)| {
            if at.elapsed() < RETIRE_AFTER {
                return true;
            }
            let _ = std::fs::remove_dir_all(dir);
            false
        });

        if !caught_up || rebuilding {
            continue;
        }
        // Idle: a good time to merge what the catch-up or the commits left.
        if state.compact_due && !state.live.dirty() && !state.failed {
            let (live, compacted) = blocking(state.live, Indexer::compact).await?;
            state.live = live;
            match compacted {
                Ok(Compaction::Busy) => {}
                Ok(Compaction::Started | Compaction::NotWorth) => state.compact_due = false,
                Err(e) => {
                    tracing::warn!(projection = NAME, error = %e, "cannot merge the search index's segments");
                    state.compact_due = false;
                }
            }
        }
        let pause = if state.live.dirty() {
            due.saturating_sub(state.last_commit.elapsed())
        } else {
            options.poll_interval
        };
        tokio::select! {
            _ = wake.changed(), if !state.live.dirty() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// True when the event the index's last commit reflects is in the log at
/// that position: the index belongs to this log (and not to a restored or
/// another database that shares the data directory).
async fn follows(live: &Indexer, store: &PgEventStore) -> Result<bool, RunError> {
    if live.position() == 0 {
        return Ok(true);
    }
    let Some(expected) = live.position_event() else {
        return Ok(false);
    };
    let batch = store.read_batch(live.position() - 1, 1).await?;
    Ok(batch
        .events
        .first()
        .is_some_and(|e| e.position == live.position() && e.event_id == expected))
}

fn observe(live: &Indexer) {
    metrics::gauge!(metric::DOCUMENTS).set(live.num_docs() as f64);
    metrics::gauge!(metric::INDEX_BYTES).set(live.size_bytes() as f64);
}

async fn commit_live(mut state: State, conn: &mut PgConnection) -> Result<State, RunError> {
    let started = Instant::now();
    let (live, committed) = blocking(state.live, |i| {
        let position = i.commit();
        observe(i);
        position
    })
    .await?;
    state.live = live;
    state.compact_due = true;
    let position = committed?;
    metrics::histogram!(metric::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    state.last_commit = Instant::now();
    announce(conn, position).await?;
    Ok(state)
}

/// Records an event the index cannot apply: the projection stops on it
/// (what came before it is committed) until resumed or rebuilt.
async fn stop(
    mut state: State,
    conn: &mut PgConnection,
    error: IndexError,
) -> Result<State, RunError> {
    let IndexError::Poison(poison) = error else {
        return Err(error.into());
    };
    let position = match &poison {
        chronicle_projections::ApplyError::Poison { position, .. } => *position as i64,
        chronicle_projections::ApplyError::Db(_)
        | chronicle_projections::ApplyError::Transient(_) => state.live.applied() as i64 + 1,
    };
    let message = poison.to_string();
    tracing::error!(
        projection = NAME,
        position,
        error = %message,
        "search projection stopped: it cannot apply this event; fix and resume, or rebuild"
    );
    metrics::counter!("chronicle_projection_errors_total", "projection" => NAME, "kind" => "poison")
        .increment(1);
    metrics::gauge!("chronicle_projection_failed", "projection" => NAME).set(1.0);
    sqlx::query(
        "UPDATE projection_checkpoints SET state = 'failed', error = $2, error_position = $3, \
         updated_at = now() WHERE name = $1",
    )
    .bind(NAME)
    .bind(&message)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    state.failed = true;
    Ok(state)
}

/// Re-reads the status row: resume, rebuild requests; reports the lag.
async fn refresh(
    mut state: State,
    conn: &mut PgConnection,
    store: &PgEventStore,
    layout: &Layout,
    options: &Options,
) -> Result<State, RunError> {
    let requests = read_row(conn).await?;
    if state.failed && !requests.failed {
        tracing::info!(projection = NAME, "resumed");
        metrics::gauge!("chronicle_projection_failed", "projection" => NAME).set(0.0);
    }
    state.failed = requests.failed;
    let restart = requests.rebuild_requested
        && (state.rebuild.is_none() || requests.rebuild_position.is_none());
    if restart {
        if let Some(old) = state.rebuild.take() {
            let dir = layout.path(old.name());
            drop(old);
            let _ = std::fs::remove_dir_all(dir);
        }
        let (root, writer) = (layout.clone(), options.writer);
        let fresh = tokio::task::spawn_blocking(move || Indexer::create(&root, writer)).await??;
        sqlx::query(
            "UPDATE projection_checkpoints SET rebuild_position = 0, rebuild_started_at = now(), \
             updated_at = now() WHERE name = $1",
        )
        .bind(NAME)
        .execute(&mut *conn)
        .await?;
        tracing::info!(projection = NAME, index = fresh.name(), "rebuild started");
        state.rebuild = Some(fresh);
        state.rebuild_commit = Instant::now();
    }
    if let Ok(head) = store.head_position().await {
        metrics::gauge!(metric::LAG_EVENTS).set(head.saturating_sub(state.live.position()) as f64);
        metrics::gauge!("chronicle_projection_lag_events", "projection" => NAME)
            .set(head.saturating_sub(state.live.position()) as f64);
    }
    Ok(state)
}

/// One step of a running rebuild; swaps it in once it has caught up with
/// the live index. Returns the rebuild (unless it was swapped in or
/// abandoned) and whether it has more to read right away.
async fn step_rebuild(
    rebuild: Indexer,
    state: &mut State,
    conn: &mut PgConnection,
    store: &PgEventStore,
    options: &Options,
) -> Result<(Option<Indexer>, bool), RunError> {
    let target = state.live.applied();
    if rebuild.applied() >= target && !state.failed {
        let layout = Layout::new(&options.data_dir);
        return swap(rebuild, state, conn, &layout)
            .await
            .map(|()| (None, false));
    }
    let batch = store
        .read_batch(rebuild.applied(), options.batch_size)
        .await?;
    let full = batch.events.len() >= options.batch_size;
    if batch.events.is_empty() {
        return Ok((Some(rebuild), false));
    }
    let events: Vec<RecordedEvent> = batch.events;
    let (rebuild, applied) = blocking(rebuild, move |i| i.apply(&events)).await?;
    if let Err(e) = applied {
        let name = rebuild.name().to_owned();
        tracing::error!(projection = NAME, error = %e, "rebuild abandoned: it cannot apply an event; the live index is unchanged");
        drop(rebuild);
        let _ = std::fs::remove_dir_all(Layout::new(&options.data_dir).path(&name));
        sqlx::query(
            "UPDATE projection_checkpoints SET rebuild_requested = false, rebuild_position = NULL, \
             rebuild_started_at = NULL, error = $2, updated_at = now() WHERE name = $1",
        )
        .bind(NAME)
        .bind(format!("rebuild: {e}"))
        .execute(&mut *conn)
        .await?;
        return Ok((None, false));
    }
    if state.rebuild_commit.elapsed() >= options.catchup_commit || !full {
        let (rebuild, committed) = blocking(rebuild, |i| i.commit()).await?;
        let at = committed?;
        state.rebuild_commit = Instant::now();
        sqlx::query("UPDATE projection_checkpoints SET rebuild_position = $2 WHERE name = $1")
            .bind(NAME)
            .bind(at as i64)
            .execute(&mut *conn)
            .await?;
        metrics::gauge!("chronicle_projection_rebuild_position", "projection" => NAME)
            .set(at as f64);
        return Ok((Some(rebuild), full));
    }
    Ok((Some(rebuild), full))
}

/// Makes the rebuilt index current: both committed, `CURRENT` replaced,
/// the status row moved to the new index's position.
async fn swap(
    rebuild: Indexer,
    state: &mut State,
    conn: &mut PgConnection,
    layout: &Layout,
) -> Result<(), RunError> {
    let (rebuild, committed) = blocking(rebuild, |i| {
        let at = i.commit()?;
        i.make_current()?;
        observe(i);
        Ok::<_, IndexError>(at)
    })
    .await?;
    let at = committed?;
    let old = std::mem::replace(&mut state.live, rebuild);
    state.compact_due = true;
    state.last_commit = Instant::now();
    state
        .retired
        .push((layout.path(old.name()), Instant::now()));
    // Closing waits for the old writer's merges; readers may still map its
    // files, which stay until `RETIRE_AFTER` has passed.
    let _ = tokio::task::spawn_blocking(move || old.close()).await;
    sqlx::query(
        "UPDATE projection_checkpoints \
         SET position = $2, rebuild_requested = false, rebuild_position = NULL, \
             rebuild_started_at = NULL, rebuilt_at = now(), state = 'running', \
             error = NULL, error_position = NULL, updated_at = now() \
         WHERE name = $1 RETURNING pg_notify($3, $1 || ':' || $2::text)::text",
    )
    .bind(NAME)
    .bind(at as i64)
    .bind(CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    state.failed = false;
    metrics::gauge!("chronicle_projection_failed", "projection" => NAME).set(0.0);
    tracing::info!(
        projection = NAME,
        position = at,
        index = state.live.name(),
        "rebuild swapped in"
    );
    Ok(())
}

/// Keeps `reader` at the index's latest commit: refreshed whenever the
/// projection announces one (`positions`), and every second anyway (a
/// missed notification, a swap). The task ends with the last `Arc` of the
/// reader.
pub fn follow(reader: Arc<Reader>, positions: Arc<Positions>) {
    let weak = Arc::downgrade(&reader);
    drop(reader);
    let mut announced = positions.subscribe();
    tokio::spawn(async move {
        let mut logged = false;
        loop {
            let Some(reader) = weak.upgrade() else {
                return;
            };
            let refreshed = tokio::task::spawn_blocking(move || reader.refresh()).await;
            match refreshed {
                Ok(Ok(_)) | Ok(Err(IndexError::NotBuilt)) => logged = false,
                Ok(Err(e)) => {
                    if !logged {
                        tracing::warn!(error = %e, "cannot refresh the search index reader");
                        logged = true;
                    }
                }
                Err(e) => tracing::error!(error = %e, "search reader refresh panicked"),
            }
            let seen = announced.borrow_and_update().get(NAME).copied();
            let wait = async {
                loop {
                    if announced.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    if announced.borrow_and_update().get(NAME).copied() != seen {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}
