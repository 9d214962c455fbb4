//! Running projections: leases, batches, checkpoints, failures, rebuilds.
//!
//! A [`Worker`] owns one projection for as long as its connection holds the
//! projection's advisory lock. Every batch runs on that connection in one
//! transaction: the handler's writes, then the checkpoint moved from the
//! position the worker last committed (a compare-and-set, so even a stale
//! owner cannot apply a batch twice), then a notification for waiting
//! queries. A crash anywhere leaves the read models at a batch boundary.
//!
//! Errors are sorted in two: transient ones (connection lost, serialization
//! failure, the database shutting down) drop the lease and retry with
//! backoff; anything else stops the projection on the event that caused it,
//! found by replaying the failed batch one event at a time, and recorded in
//! its checkpoint row, logs and metrics. It stays stopped until an operator
//! resumes or rebuilds it: an event is never skipped silently.
//!
//! A rebuild builds shadow tables (schema `rebuild_<name>`, made `LIKE` the
//! live ones in the projection's schema, with their storage parameters)
//! from position 0 while the live tables keep answering and keep
//! moving; once the shadow copy has caught up, one transaction swaps them in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_store::postgres::PgEventStore;
use chronicle_store::{EventStore, RecordedEvent, StoreError};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row as _};
use tokio::sync::watch;

use crate::{ApplyError, Projection};

/// Advisory lock class of projection leases (key: `hashtext(name)`).
pub const LEASE_CLASS: i32 = 17224;
/// The channel on which committed checkpoints are announced (`name:position`).
pub const CHANNEL: &str = "chronicle_projections";

/// Tuning of a worker.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events per live batch.
    pub batch_size: usize,
    /// Events per rebuild batch.
    pub rebuild_batch_size: usize,
    /// How often an idle worker looks for new events without a wake-up,
    /// and how often a standby tries to take the lease.
    pub poll_interval: Duration,
    /// Names this process in the checkpoint row.
    pub owner: String,
    /// Recently read batches of the log, shared by the workers that share
    /// these options: a process reads each batch once for all projections.
    pub cache: Arc<BatchCache>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            rebuild_batch_size: 10_000,
            poll_interval: Duration::from_secs(1),
            owner: format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
                std::process::id()
            ),
            cache: Arc::default(),
        }
    }
}

/// How many read batches [`BatchCache`] keeps.
const CACHED_BATCHES: usize = 8;

/// How long a rebuild's swap waits for the live tables before it gives way
/// to their readers and tries again (see `Worker::swap`). Below
/// PostgreSQL's `deadlock_timeout` (1 s), so a swap caught in a lock cycle
/// with a reader gives way before the reader is chosen to fail.
const SWAP_LOCK_TIMEOUT: Duration = Duration::from_millis(200);

/// The last few batches read from the log, each complete for its range of
/// positions (a gap-safe read holds every event that will ever exist in
/// `(after, last]`), so a worker anywhere inside a cached range is served
/// from memory. Misses are read one at a time, so projections catching up
/// together read the log once between them.
#[derive(Debug, Default)]
pub struct BatchCache {
    ranges: std::sync::Mutex<std::collections::VecDeque<Arc<CachedRange>>>,
    fetch: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct CachedRange {
    after: u64,
    last: u64,
    events: Vec<RecordedEvent>,
}

/// Events served from a cached range.
struct Slice {
    range: Option<Arc<CachedRange>>,
    start: usize,
    end: usize,
    blocked: bool,
}

impl Slice {
    fn events(&self) -> &[RecordedEvent] {
        match &self.range {
            Some(r) => &r.events[self.start..self.end],
            None => &[],
        }
    }
}

impl BatchCache {
    fn lookup(&self, after: u64, limit: usize) -> Option<Slice> {
        let ranges = self.ranges.lock().ok()?;
        let range = ranges
            .iter()
            .rev()
            .find(|r| r.after <= after && after < r.last)?
            .clone();
        let start = range.events.partition_point(|e| e.position <= after);
        let end = (start + limit).min(range.events.len());
        Some(Slice {
            range: Some(range),
            start,
            end,
            blocked: false,
        })
    }

    async fn read(
        &self,
        store: &PgEventStore,
        after: u64,
        limit: usize,
    ) -> Result<Slice, StoreError> {
        if let Some(hit) = self.lookup(after, limit) {
            return Ok(hit);
        }
        let _one_reader = self.fetch.lock().await;
        if let Some(hit) = self.lookup(after, limit) {
            return Ok(hit);
        }
        // Kept as stored: erasing a subject must not leave its revealed
        // data in the cache. Workers reveal what they are handed.
        let batch = store.read_batch_stored(after, limit).await?;
        let Some(last) = batch.events.last().map(|e| e.position) else {
            return Ok(Slice {
                range: None,
                start: 0,
                end: 0,
                blocked: batch.blocked,
            });
        };
        let end = batch.events.len();
        let range = Arc::new(CachedRange {
            after,
            last,
            events: batch.events,
        });
        if let Ok(mut ranges) = self.ranges.lock() {
            ranges.push_back(range.clone());
            while ranges.len() > CACHED_BATCHES {
                ranges.pop_front();
            }
        }
        Ok(Slice {
            range: Some(range),
            start: 0,
            end,
            blocked: batch.blocked,
        })
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch was committed; the checkpoint is now `position`.
    Applied { events: usize, position: u64 },
    /// Nothing new to read.
    Idle,
    /// Reading stopped before a position that may still commit, or a swap
    /// gave way to readers of the live tables; try again shortly.
    Blocked,
    /// The projection is stopped on a poison event.
    Failed,
    /// A rebuild swapped its tables in at `position`.
    Swapped { position: u64 },
}

/// Why a worker stopped working.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Worth retrying after a pause (with a new lease).
    #[error("transient: {0}")]
    Transient(String),
    /// The checkpoint moved under this worker: it no longer owns the
    /// projection (its lease connection was lost and another took over).
    #[error("projection {0} was moved by another process; giving up the lease")]
    LostLease(&'static str),
}

impl From<sqlx::Error> for WorkerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(e.to_string())
    }
}

impl From<StoreError> for WorkerError {
    fn from(e: StoreError) -> Self {
        Self::Transient(e.to_string())
    }
}

/// True for database errors that a retry can cure.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // connection, transaction rollback (serialization, deadlock),
            // insufficient resources, operator intervention, lock timeout.
            ["08", "40", "53", "57"].iter().any(|c| code.starts_with(c)) || code == "55P03"
        }),
        _ => false,
    }
}

fn transient(e: &ApplyError) -> bool {
    match e {
        ApplyError::Db(db) => is_transient(db),
        ApplyError::Transient(_) => true,
        ApplyError::Poison { .. } => false,
    }
}

/// Which tables a batch writes.
#[derive(Debug, Clone, Copy)]
enum Target {
    Live,
    Rebuild,
}

/// One projection, owned by this process while the worker lives.
pub struct Worker {
    projection: Arc<dyn Projection>,
    store: Arc<PgEventStore>,
    conn: PgConnection,
    options: Options,
    position: u64,
    failed: bool,
    /// While rebuilding: how far the shadow tables are built.
    rebuild: Option<u64>,
}

impl Worker {
    /// Takes the projection's lease on a new connection; `None` when another
    /// process holds it.
    pub async fn acquire(
        connect: &PgConnectOptions,
        store: Arc<PgEventStore>,
        projection: Arc<dyn Projection>,
        options: Options,
    ) -> Result<Option<Self>, WorkerError> {
        let name = projection.name();
        let mut conn = PgConnection::connect_with(
            &connect
                .clone()
                .application_name(&format!("chronicle projector {name}")),
        )
        .await?;
        let leased: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LEASE_CLASS)
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if !leased {
            conn.close().await.ok();
            return Ok(None);
        }
        // Read models are derived data: a batch lost to a crash before its
        // WAL reached disk is lost together with its checkpoint (one
        // transaction) and simply applied again. Durable appends are the
        // event store's job.
        let search_path = format!("SET search_path TO {}", projection.schema());
        for setting in [search_path.as_str(), "SET synchronous_commit TO off"] {
            sqlx::query(setting).execute(&mut conn).await?;
        }
        sqlx::query(
            "INSERT INTO public.projection_checkpoints (name, owner) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner",
        )
        .bind(name)
        .bind(&options.owner)
        .execute(&mut conn)
        .await?;
        let mut worker = Self {
            projection,
            store,
            conn,
            options,
            position: 0,
            failed: false,
            rebuild: None,
        };
        worker.refresh_state(true).await?;
        tracing::info!(
            projection = name,
            position = worker.position,
            "took the projection's lease"
        );
        Ok(Some(worker))
    }

    /// The projection's [`Projection::pace`].
    pub fn pace(&self) -> Duration {
        self.projection.pace()
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// The last committed position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// True while stopped on a poison event.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Where the running rebuild is, if one runs.
    pub fn rebuild_position(&self) -> Option<u64> {
        self.rebuild
    }

    fn rebuild_schema(&self) -> String {
        format!("rebuild_{}", self.name())
    }

    /// Reads the checkpoint row: picks up a resume or a rebuild request, and
    /// notices when another process moved the checkpoint.
    pub async fn refresh(&mut self) -> Result<(), WorkerError> {
        self.refresh_state(false).await
    }

    async fn refresh_state(&mut self, first: bool) -> Result<(), WorkerError> {
        let row = sqlx::query(
            "SELECT position, state, rebuild_requested, rebuild_position \
             FROM public.projection_checkpoints WHERE name = $1",
        )
        .bind(self.name())
        .fetch_one(&mut self.conn)
        .await?;
        let position = row.get::<i64, _>(0) as u64;
        if !first && position != self.position {
            return Err(WorkerError::LostLease(self.name()));
        }
        self.position = position;
        self.failed = row.get::<String, _>(1) == "failed";
        metrics::gauge!("chronicle_projection_failed", "projection" => self.name())
            .set(if self.failed { 1.0 } else { 0.0 });
        metrics::gauge!("chronicle_projection_position", "projection" => self.name())
            .set(position as f64);
        let requested: bool = row.get(2);
        let rebuild_position: Option<i64> = row.get(3);
        if requested && !self.projection.rebuildable() {
            tracing::warn!(
                projection = self.name(),
                "a rebuild was requested of a projection that is never rebuilt; ignoring it"
            );
            sqlx::query(
                "UPDATE public.projection_checkpoints SET rebuild_requested = false, \
                 rebuild_position = NULL, updated_at = now() WHERE name = $1",
            )
            .bind(self.name())
            .execute(&mut self.conn)
            .await?;
            return Ok(());
        }
        match (requested, rebuild_position, self.rebuild) {
            (true, None, _) => self.start_rebuild().await?,
            (true, Some(at), None) => {
                if self.shadow_exists().await? {
                    tracing::info!(projection = self.name(), at, "resuming a rebuild");
                    self.rebuild = Some(at as u64);
                } else {
                    self.start_rebuild().await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn shadow_exists(&mut self) -> Result<bool, WorkerError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(self.rebuild_schema())
                .fetch_one(&mut self.conn)
                .await?,
        )
    }

    async fn start_rebuild(&mut self) -> Result<(), WorkerError> {
        let name = self.projection.name();
        let schema = self.rebuild_schema();
        let mut tx = self.conn.begin().await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut *tx)
            .await?;
        let live = self.projection.schema();
        for table in self.projection.tables() {
            // LIKE copies everything but the table's storage parameters
            // (fillfactor, ...): keep those too.
            let options: Option<Vec<String>> = sqlx::query_scalar(
                "SELECT reloptions FROM pg_class WHERE oid = format('%I.%I', $1, $2)::regclass",
            )
            .bind(live)
            .bind(table)
            .fetch_one(&mut *tx)
            .await?;
            let with = match options {
                Some(options) if !options.is_empty() => format!(" WITH ({})", options.join(", ")),
                _ => String::new(),
            };
            sqlx::query(&format!(
                "CREATE TABLE {schema}.{table} (LIKE {live}.{table} INCLUDING ALL){with}"
            ))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE public.projection_checkpoints \
             SET rebuild_position = 0, rebuild_started_at = now(), updated_at = now() \
             WHERE name = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.rebuild = Some(0);
        tracing::info!(projection = self.name(), "rebuild started");
        Ok(())
    }

    /// Applies the next batch of the log to the live tables.
    pub async fn process_batch(&mut self) -> Result<Step, WorkerError> {
        if self.failed {
            return Ok(Step::Failed);
        }
        let cache = self.options.cache.clone();
        let batch = cache
            .read(&self.store, self.position, self.options.batch_size)
            .await?;
        if batch.events().is_empty() {
            return Ok(if batch.blocked {
                Step::Blocked
            } else {
                Step::Idle
            });
        }
        self.hand_over(batch.events(), Target::Live).await
    }

    /// Builds the next batch of a running rebuild, and swaps the shadow
    /// tables in once they have caught up with the live ones.
    pub async fn process_rebuild_batch(&mut self) -> Result<Step, WorkerError> {
        let Some(at) = self.rebuild else {
            return Ok(Step::Idle);
        };
        if at >= self.position {
            // As fresh as the live tables. A stopped projection's live
            // position stands still before its poison event, so then the
            // shadow copy must also have read everything there is.
            let ready = !self.failed || at >= self.store.head_position().await?;
            if ready {
                return self.swap(at).await;
            }
        }
        let cache = self.options.cache.clone();
        let batch = cache
            .read(&self.store, at, self.options.rebuild_batch_size)
            .await?;
        if batch.events().is_empty() {
            return Ok(if batch.blocked {
                Step::Blocked
            } else {
                Step::Idle
            });
        }
        self.hand_over(batch.events(), Target::Rebuild).await
    }

    /// Applies a batch read from the log (as stored): revealed, unless the
    /// projection sees the log as stored.
    async fn hand_over(
        &mut self,
        stored: &[RecordedEvent],
        target: Target,
    ) -> Result<Step, WorkerError> {
        let revealed = if self.projection.sees_stored() {
            None
        } else {
            self.store.revealed(stored).await?
        };
        self.apply_or_stop(revealed.as_deref().unwrap_or(stored), target)
            .await
    }

    async fn apply_or_stop(
        &mut self,
        events: &[RecordedEvent],
        target: Target,
    ) -> Result<Step, WorkerError> {
        let started = Instant::now();
        match self.commit(events, target).await {
            Ok(step) => {
                self.observe(events.len(), started, target);
                Ok(step)
            }
            Err(CommitError::Apply(e)) if !transient(&e) => {
                // Find the event: apply one at a time, keeping those that work.
                let mut culprit = (events[0].position, e.to_string());
                if events.len() > 1 {
                    for event in events {
                        match self.commit(std::slice::from_ref(event), target).await {
                            Ok(_) => continue,
                            Err(CommitError::Apply(e)) if !transient(&e) => {
                                culprit = (event.position, e.to_string());
                                break;
                            }
                            Err(e) => return Err(e.into_worker(self.name())),
                        }
                    }
                }
                self.stop(target, culprit.0, &culprit.1).await?;
                Ok(Step::Failed)
            }
            Err(e) => {
                metrics::counter!("chronicle_projection_errors_total",
                    "projection" => self.name(), "kind" => "transient")
                .increment(1);
                Err(e.into_worker(self.name()))
            }
        }
    }

    fn observe(&self, events: usize, started: Instant, target: Target) {
        let name = self.name();
        let target = match target {
            Target::Live => "live",
            Target::Rebuild => "rebuild",
        };
        metrics::counter!("chronicle_projection_events_total", "projection" => name, "target" => target)
            .increment(events as u64);
        metrics::histogram!("chronicle_projection_batch_seconds", "projection" => name, "target" => target)
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("chronicle_projection_position", "projection" => name)
            .set(self.position as f64);
        if let Some(at) = self.rebuild {
            metrics::gauge!("chronicle_projection_rebuild_position", "projection" => name)
                .set(at as f64);
        }
    }

    /// One transaction: the handler's writes and the checkpoint.
    async fn commit(
        &mut self,
        events: &[RecordedEvent],
        target: Target,
    ) -> Result<Step, CommitError> {
        let last = events.last().map_or(0, |e| e.position);
        let from = match target {
            Target::Live => self.position,
            Target::Rebuild => self.rebuild.unwrap_or(0),
        };
        let name = self.projection.name();
        let mut tx = self.conn.begin().await.map_err(ApplyError::Db)?;
        if let Target::Rebuild = target {
            sqlx::query(&format!("SET LOCAL search_path TO rebuild_{name}"))
                .execute(&mut *tx)
                .await
                .map_err(ApplyError::Db)?;
        }
        self.projection.apply(&mut tx, events).await?;
        let moved = match target {
            Target::Live => sqlx::query(
                "UPDATE public.projection_checkpoints SET position = $2, updated_at = now() \
                 WHERE name = $1 AND position = $3 \
                 RETURNING pg_notify($4, $1 || ':' || $2::text)::text",
            )
            .bind(name)
            .bind(last as i64)
            .bind(from as i64)
            .bind(CHANNEL)
            .fetch_optional(&mut *tx)
            .await
            .map_err(ApplyError::Db)?
            .is_some(),
            Target::Rebuild => {
                sqlx::query(
                    "UPDATE public.projection_checkpoints SET rebuild_position = $2 \
                     WHERE name = $1 AND rebuild_position = $3",
                )
                .bind(name)
                .bind(last as i64)
                .bind(from as i64)
                .execute(&mut *tx)
                .await
                .map_err(ApplyError::Db)?
                .rows_affected()
                    == 1
            }
        };
        if !moved {
            tx.rollback().await.ok();
            return Err(CommitError::LostLease);
        }
        tx.commit().await.map_err(ApplyError::Db)?;
        match target {
            Target::Live => self.position = last,
            Target::Rebuild => self.rebuild = Some(last),
        }
        Ok(Step::Applied {
            events: events.len(),
            position: last,
        })
    }

    async fn stop(
        &mut self,
        target: Target,
        position: u64,
        error: &str,
    ) -> Result<(), WorkerError> {
        let name = self.name();
        metrics::counter!("chronicle_projection_errors_total",
            "projection" => name, "kind" => "poison")
        .increment(1);
        match target {
            Target::Live => {
                tracing::error!(
                    projection = name,
                    position,
                    error,
                    "projection stopped: it cannot apply this event; fix and resume, or rebuild"
                );
                sqlx::query(
                    "UPDATE public.projection_checkpoints \
                     SET state = 'failed', error = $2, error_position = $3, updated_at = now() \
                     WHERE name = $1",
                )
                .bind(name)
                .bind(error)
                .bind(position as i64)
                .execute(&mut self.conn)
                .await?;
                self.failed = true;
                metrics::gauge!("chronicle_projection_failed", "projection" => name).set(1.0);
            }
            Target::Rebuild => {
                tracing::error!(
                    projection = name,
                    position,
                    error,
                    "rebuild abandoned: it cannot apply this event; the live tables are unchanged"
                );
                sqlx::query(
                    "UPDATE public.projection_checkpoints \
                     SET rebuild_requested = false, rebuild_position = NULL, \
                         rebuild_started_at = NULL, error = $2, error_position = $3, \
                         updated_at = now() \
                     WHERE name = $1",
                )
                .bind(name)
                .bind(format!("rebuild: {error}"))
                .bind(position as i64)
                .execute(&mut self.conn)
                .await?;
                sqlx::query(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    self.rebuild_schema()
                ))
                .execute(&mut self.conn)
                .await?;
                self.rebuild = None;
            }
        }
        Ok(())
    }

    /// Swaps the shadow tables in: one transaction, the live tables answer
    /// queries until it commits.
    async fn swap(&mut self, at: u64) -> Result<Step, WorkerError> {
        let name = self.name();
        let schema = self.rebuild_schema();
        let tables = self.projection.tables();
        let live = self.projection.schema();
        let mut tx = self.conn.begin().await?;
        // Every lock up front, or none: a reader (an API query, the delivery
        // worker) may hold one of these tables while it waits for another,
        // and a swap that dropped them one at a time deadlocked with it (and
        // the reader got the error). Waiting briefly in the lock queue holds
        // new readers back only as long as SWAP_LOCK_TIMEOUT; when it runs
        // out, the swap gives way and is tried again on the next step.
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            SWAP_LOCK_TIMEOUT.as_millis()
        ))
        .execute(&mut *tx)
        .await?;
        let list = |in_schema: &str| {
            tables
                .iter()
                .map(|t| format!("{in_schema}.{t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !tables.is_empty() {
            let all = format!("{}, {}", list(live), list(&schema));
            let locked = sqlx::query(&format!("LOCK TABLE {all} IN ACCESS EXCLUSIVE MODE"))
                .execute(&mut *tx)
                .await;
            match locked {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => {
                    tx.rollback().await?;
                    metrics::counter!("chronicle_projection_swap_retries_total", "projection" => name)
                        .increment(1);
                    tracing::debug!(projection = name, "swap gave way to readers; trying again");
                    return Ok(Step::Blocked);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Holding them, the swap waits for nothing else it would give way to.
        sqlx::query("SET LOCAL lock_timeout TO DEFAULT")
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT position, rebuild_position FROM public.projection_checkpoints \
              WHERE name = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let position: i64 = row.get(0);
        if position as u64 != self.position {
            return Err(WorkerError::LostLease(name));
        }
        // A rebuild requested again while this one ran (its position was
        // reset) wants the events as they read now: start over rather than
        // swap in tables built before the request (an erasure, say).
        let rebuild_position: Option<i64> = row.get(1);
        if rebuild_position != Some(at as i64) {
            tx.rollback().await?;
            tracing::info!(
                projection = name,
                "rebuild requested again before its swap; starting over"
            );
            self.start_rebuild().await?;
            return Ok(Step::Idle);
        }
        for table in tables {
            // Keep what the migrations gave the live table: its comment and
            // its index names (LIKE copies the indexes under new names).
            let keep: Vec<String> = sqlx::query_scalar(SWAP_KEEP)
                .bind(table)
                .bind(&schema)
                .bind(live)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query(&format!("DROP TABLE {live}.{table}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA {live}"))
                .execute(&mut *tx)
                .await?;
            for statement in keep {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
        }
        // The analysts' grant, on these tables only: a grant on the whole
        // schema updates every table's catalog row and deadlocked with the
        // swaps of other projections.
        if !tables.is_empty() {
            sqlx::query(&format!(
                "GRANT SELECT ON {} TO chronicle_analyst",
                list(live)
            ))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE public.projection_checkpoints \
             SET position = $2, rebuild_requested = false, rebuild_position = NULL, \
                 rebuild_started_at = NULL, rebuilt_at = now(), state = 'running', \
                 error = NULL, error_position = NULL, updated_at = now() \
             WHERE name = $1 RETURNING pg_notify($3, $1 || ':' || $2::text)::text",
        )
        .bind(name)
        .bind(at as i64)
        .bind(CHANNEL)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(projection = name, position = at, "rebuild swapped in");
        self.position = at;
        self.rebuild = None;
        self.failed = false;
        metrics::gauge!("chronicle_projection_failed", "projection" => name).set(0.0);
        Ok(Step::Swapped { position: at })
    }

    /// Gives the lease back.
    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(LEASE_CLASS)
            .bind(self.projection.name())
            .execute(&mut self.conn)
            .await;
        self.conn.close().await.ok();
    }
}

/// For one table being swapped: the statements that restore the live
/// table's comment and index names on its replacement. `$1` table, `$2`
/// the shadow schema, `$3` the live schema. Run after the shadow table has
/// moved into the live schema.
const SWAP_KEEP: &str = r#"
WITH old AS (
    SELECT c.relname AS name,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') AS shape
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = format('%I.%I', $3, $1)::regclass
), new AS (
    SELECT c.relname AS name,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') AS shape
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = format('%I.%I', $2, $1)::regclass
)
SELECT format('COMMENT ON TABLE %I.%I IS %L', $3, $1,
              obj_description(format('%I.%I', $3, $1)::regclass, 'pg_class'))
WHERE obj_description(format('%I.%I', $3, $1)::regclass, 'pg_class') IS NOT NULL
UNION ALL
SELECT format('ALTER INDEX %I.%I RENAME TO %I', $3, new.name, old.name)
FROM old JOIN new USING (shape)
WHERE new.name <> old.name
"#;

enum CommitError {
    Apply(ApplyError),
    LostLease,
}

impl From<ApplyError> for CommitError {
    fn from(e: ApplyError) -> Self {
        Self::Apply(e)
    }
}

impl CommitError {
    fn into_worker(self, name: &'static str) -> WorkerError {
        match self {
            Self::Apply(e) => WorkerError::Transient(e.to_string()),
            Self::LostLease => WorkerError::LostLease(name),
        }
    }
}

/// Runs one projection until `shutdown` turns true: waits for its lease
/// (a hot standby while another process owns it), then keeps it up to date,
/// retrying transient failures with backoff. Shutdown lets the current
/// batch commit.
pub async fn run(
    projection: Arc<dyn Projection>,
    store: Arc<PgEventStore>,
    connect: PgConnectOptions,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let mut backoff = Backoff::new();
    while !*shutdown.borrow() {
        let acquired =
            Worker::acquire(&connect, store.clone(), projection.clone(), options.clone()).await;
        let pause = match acquired {
            Ok(Some(worker)) => {
                // The database answered: after losing this lease, try
                // again soon (a restarted database is back within
                // seconds), not after the pause earlier failures grew to.
                backoff.reset();
                match drive(worker, &store, &options, &mut shutdown).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(projection = name, error = %e, "projection worker stopped; retrying");
                        // This process no longer owns it: its last figures
                        // would outlive it. The owner reports them.
                        metrics::gauge!("chronicle_projection_failed", "projection" => name)
                            .set(0.0);
                        metrics::gauge!("chronicle_projection_lag_events", "projection" => name)
                            .set(0.0);
                        backoff.next()
                    }
                }
            }
            Ok(None) => options.poll_interval,
            Err(e) => {
                tracing::warn!(projection = name, error = %e, "cannot take the projection's lease; retrying");
                backoff.next()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn drive(
    mut worker: Worker,
    store: &Arc<PgEventStore>,
    options: &Options,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let name = worker.name();
    let pace = worker.pace();
    let mut wake = store.wake_ups();
    let mut last_refresh = Instant::now();
    let mut blocked = Backoff::starting(Duration::from_millis(2), Duration::from_millis(20));
    loop {
        if *shutdown.borrow() {
            worker.release().await;
            return Ok(());
        }
        if last_refresh.elapsed() >= options.poll_interval {
            worker.refresh().await?;
            report_lag(store, name, worker.position()).await;
            last_refresh = Instant::now();
        }
        let live = worker.process_batch().await?;
        let rebuild = worker.process_rebuild_batch().await?;
        let busy = |s: Step| matches!(s, Step::Applied { .. } | Step::Swapped { .. });
        if busy(live) || busy(rebuild) {
            blocked.reset();
            // A paced projection that read less than a full batch has
            // caught up: it waits out its pace before reading again.
            let caught_up =
                matches!(live, Step::Applied { events, .. } if events < options.batch_size);
            if caught_up && !pace.is_zero() && !busy(rebuild) {
                tokio::select! {
                    _ = tokio::time::sleep(pace) => {}
                    _ = shutdown.changed() => {}
                }
            }
            continue;
        }
        let pause = if live == Step::Blocked || rebuild == Step::Blocked {
            blocked.next()
        } else {
            blocked.reset();
            options.poll_interval
        };
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn report_lag(store: &PgEventStore, name: &'static str, position: u64) {
    if let Ok(head) = store.head_position().await {
        metrics::gauge!("chronicle_projection_lag_events", "projection" => name)
            .set(head.saturating_sub(position) as f64);
    }
}

/// Exponential backoff for retries.
struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self::starting(Duration::from_millis(100), Duration::from_secs(30))
    }

    fn starting(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.current;
        self.current = (self.current * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.current = self.first;
    }
}

/// Runs every projection in `projections` until `shutdown`, each in its own
/// task; returns when all have stopped.
pub async fn run_all(
    projections: Vec<Arc<dyn Projection>>,
    store: Arc<PgEventStore>,
    connect: PgConnectOptions,
    options: Options,
    shutdown: watch::Receiver<bool>,
) {
    let tasks: Vec<_> = projections
        .into_iter()
        .map(|p| {
            tokio::spawn(run(
                p,
                store.clone(),
                connect.clone(),
                options.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}
