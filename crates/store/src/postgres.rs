//! The PostgreSQL backend.
//!
//! Appends are one call of `chronicle_append()` (see the migration) in its
//! own transaction. Reads follow the gap rule of
//! `docs/adr/0001-gap-free-global-order.md`: the happy path is a plain
//! ordered range scan; only when a position is missing below a visible one
//! does the reader do extra work to tell a late commit from an aborted
//! append.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::crypto::{self, DataKey};
use crate::types::{prepare, Prepared};
use crate::TenantId;
use crate::{
    AppendResult, Direction, EventStore, ExpectedVersion, Metadata, NewEvent, ReadBatch,
    RecordedEvent, StoreError, StreamId, StreamRef,
};

/// The channel on which appenders announce new events to other processes.
pub const NOTIFY_CHANNEL: &str = "chronicle_events";

/// How often, at most, one process sends a NOTIFY (appends in between are
/// announced together). Subscribers in the same process are woken at once.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(20);

/// How many times an append with [`ExpectedVersion::Any`] is retried when a
/// concurrent append took the same stream version. Any-version appends to
/// one stream queue on a lock in `chronicle_append()`, so only an append
/// with an exact expectation can take the version from under one.
const ANY_RETRIES: usize = 16;

// The append statements. Each is the only statement of its transaction.
//
// `nextval(CASE WHEN pg_current_xact_id() IS NOT NULL THEN ... END)`: an
// argument is evaluated before its function, so this transaction has its id
// before it takes a position, which the readers' gap rule relies on
// (docs/adr/0001-gap-free-global-order.md).
//
// `*_AT` append at version n + 1 where version n is known to exist (or
// n = 0): the unique key refuses n + 1 if it is taken. `*_NEXT` first check
// that the stream's latest event is version n (see `KnownVersions`).
//
// Appending at version n + 1 needs the stream's latest event to be version n
// of the same tenant and stream type (one backward index probe, written so
// that every plan is that probe), and n + 1 to be free (the unique key, for
// concurrent appends). When either fails nothing is written and
// `explain_refusal` says why.

const INSERT_ONE_AT: &str = "INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, \
     stream_version, event_type, schema_version, data, metadata) \
     SELECT nextval(CASE WHEN pg_current_xact_id() IS NOT NULL THEN 'events_position_seq'::regclass END), \
            $1, $2, $3, $4, $5 + 1, $6, $7, $8::jsonb, $9::jsonb \
     RETURNING position";

const INSERT_ONE_NEXT: &str = "INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, \
     stream_version, event_type, schema_version, data, metadata) \
     SELECT nextval(CASE WHEN pg_current_xact_id() IS NOT NULL THEN 'events_position_seq'::regclass END), \
            $1, $2, $3, $4, $5 + 1, $6, $7, $8::jsonb, $9::jsonb \
      WHERE (SELECT (e.stream_version, e.tenant_id, e.stream_type) FROM events e WHERE e.stream_id = $3 \
             ORDER BY e.stream_version DESC LIMIT 1) = ($5, $2, $4) \
     RETURNING position";

const INSERT_MANY_AT: &str = "INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, \
     stream_version, event_type, schema_version, data, metadata) \
     SELECT nextval(CASE WHEN pg_current_xact_id() IS NOT NULL THEN 'events_position_seq'::regclass END), \
            t.id, $1, $2, $3, $4 + t.n, t.ty, t.sv, t.d::jsonb, t.m::jsonb \
       FROM unnest($5::uuid[], $6::text[], $7::smallint[], $8::text[], $9::text[]) \
            WITH ORDINALITY AS t(id, ty, sv, d, m, n) \
     RETURNING position";

const INSERT_MANY_NEXT: &str = "INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, \
     stream_version, event_type, schema_version, data, metadata) \
     SELECT nextval(CASE WHEN pg_current_xact_id() IS NOT NULL THEN 'events_position_seq'::regclass END), \
            t.id, $1, $2, $3, $4 + t.n, t.ty, t.sv, t.d::jsonb, t.m::jsonb \
       FROM unnest($5::uuid[], $6::text[], $7::smallint[], $8::text[], $9::text[]) \
            WITH ORDINALITY AS t(id, ty, sv, d, m, n) \
      WHERE (SELECT (e.stream_version, e.tenant_id, e.stream_type) FROM events e WHERE e.stream_id = $2 \
             ORDER BY e.stream_version DESC LIMIT 1) = ($4, $1, $3) \
     RETURNING position";

const SELECT_EVENT: &str =
    "SELECT position, event_id, tenant_id, stream_id, stream_type, stream_version, \
     event_type, schema_version, recorded_at, data, metadata FROM events";

/// An event store on PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct PgEventStore {
    pool: PgPool,
    shared: Arc<Shared>,
}

struct Shared {
    /// Bumped when new events may be readable; subscribers watch it.
    wake: watch::Sender<u64>,
    /// Wakes the notifier task after a local append.
    notify: Arc<Notify>,
    notifier_started: Once,
    listener_started: Once,
    gaps: Mutex<GapState>,
    known: Mutex<KnownVersions>,
}

/// Stream versions this process has seen committed. Events are immutable
/// and versions dense, so "version n of stream S exists, with tenant T and
/// type K" never stops being true: an append at n + 1 then needs no probe
/// of the stream's latest event, only the unique key (which refuses n + 1
/// if it is taken). Bounded; forgetting only costs a probe.
#[derive(Default)]
struct KnownVersions {
    streams: std::collections::HashMap<String, Known>,
}

#[derive(Clone)]
struct Known {
    version: u64,
    tenant: String,
    stream_type: String,
}

const KNOWN_STREAMS_MAX: usize = 100_000;

impl KnownVersions {
    fn covers(&self, stream: &StreamRef, version: u64) -> bool {
        self.streams.get(stream.id.as_str()).is_some_and(|k| {
            k.version >= version
                && k.tenant == stream.tenant.as_str()
                && k.stream_type == stream.stream_type.as_str()
        })
    }

    fn saw(&mut self, stream_id: &str, version: u64, tenant: &str, stream_type: &str) {
        if let Some(k) = self.streams.get_mut(stream_id) {
            k.version = k.version.max(version);
            return;
        }
        if self.streams.len() >= KNOWN_STREAMS_MAX {
            self.streams.clear();
        }
        self.streams.insert(
            stream_id.to_owned(),
            Known {
                version,
                tenant: tenant.to_owned(),
                stream_type: stream_type.to_owned(),
            },
        );
    }
}

/// What this process knows about missing positions.
#[derive(Default)]
struct GapState {
    /// Positions proven never to commit (aborted appends, sequence jumps).
    holes: BTreeSet<u64>,
    /// A transaction id taken after positions up to `covers` were observed:
    /// once every transaction older than it has ended, any of those
    /// positions still missing is a hole.
    marker: Option<Marker>,
}

#[derive(Clone, Copy)]
struct Marker {
    xid: i64,
    covers: u64,
}

impl PgEventStore {
    /// An event store over `pool`. The pool should allow at least one more
    /// connection than the number of concurrent appenders (the notifier uses
    /// one briefly).
    pub fn new(pool: PgPool) -> Self {
        let (wake, _) = watch::channel(0);
        Self {
            pool,
            shared: Arc::new(Shared {
                wake,
                notify: Arc::new(Notify::new()),
                notifier_started: Once::new(),
                listener_started: Once::new(),
                gaps: Mutex::new(GapState::default()),
                known: Mutex::new(KnownVersions::default()),
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A live data key of `subject`, made now if it has none.
    async fn data_key(&self, tenant: &str, subject: Uuid) -> Result<DataKey, StoreError> {
        let made = DataKey::generate(subject);
        let row = sqlx::query(
            "WITH live AS (SELECT key_id, key FROM subject_keys \
                            WHERE tenant_id = $1 AND subject_id = $2 AND key IS NOT NULL \
                            ORDER BY created_at DESC LIMIT 1), \
                  made AS (INSERT INTO subject_keys (key_id, tenant_id, subject_id, key) \
                           SELECT $3, $1, $2, $4 WHERE NOT EXISTS (SELECT 1 FROM live) \
                           RETURNING key_id, key) \
             SELECT key_id, key FROM live UNION ALL SELECT key_id, key FROM made",
        )
        .bind(tenant)
        .bind(subject)
        .bind(made.id)
        .bind(made.key.as_slice())
        .fetch_one(&self.pool)
        .await?;
        let key: Vec<u8> = row.try_get(1)?;
        Ok(DataKey {
            id: row.try_get(0)?,
            subject,
            key: key.try_into().map_err(|_| StoreError::Corrupt {
                position: 0,
                reason: format!("a data key of subject {subject} is not 32 bytes"),
            })?,
        })
    }

    /// `events` with their personal fields encrypted under their subjects'
    /// keys.
    async fn encrypt(
        &self,
        tenant: &str,
        events: &[NewEvent],
    ) -> Result<Vec<NewEvent>, StoreError> {
        let mut keys: std::collections::HashMap<Uuid, DataKey> = Default::default();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let Some(personal) = &event.personal else {
                out.push(event.clone());
                continue;
            };
            let key = match keys.get(&personal.subject) {
                Some(key) => key.clone(),
                None => {
                    let key = self.data_key(tenant, personal.subject).await?;
                    keys.insert(personal.subject, key.clone());
                    key
                }
            };
            out.push(crypto::encrypt(event, &key)?);
        }
        Ok(out)
    }

    /// The live keys among `ids` (destroyed and unknown ones are absent).
    async fn live_keys(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, DataKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, subject_id, key FROM subject_keys \
              WHERE key_id = ANY($1) AND key IS NOT NULL",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut keys = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let key: Vec<u8> = row.try_get(2)?;
            let Ok(key) = <[u8; 32]>::try_from(key) else {
                continue;
            };
            let id: Uuid = row.try_get(0)?;
            keys.insert(
                id,
                DataKey {
                    id,
                    subject: row.try_get(1)?,
                    key,
                },
            );
        }
        Ok(keys)
    }

    /// Decrypts the personal fields of `values` (stored event data) in
    /// place, or puts their placeholders where the key is gone; returns,
    /// per value, the subjects whose data it reveals.
    pub async fn reveal_values(&self, values: &mut [Value]) -> Result<Vec<Vec<Uuid>>, StoreError> {
        let mut ids = Vec::new();
        for v in values.iter() {
            crypto::key_ids(v, &mut ids);
        }
        if ids.is_empty() {
            return Ok(vec![Vec::new(); values.len()]);
        }
        ids.sort_unstable();
        ids.dedup();
        let keys = self.live_keys(&ids).await?;
        Ok(values
            .iter_mut()
            .map(|v| crypto::reveal(v, &keys))
            .collect())
    }

    /// `events` (as stored) with their personal fields revealed, or `None`
    /// when none of them holds any (use them as they are).
    pub async fn revealed(
        &self,
        events: &[RecordedEvent],
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        if !events
            .iter()
            .any(|e| crypto::may_hold_envelopes(e.data.get()))
        {
            return Ok(None);
        }
        let mut out = events.to_vec();
        self.reveal(&mut out).await?;
        Ok(Some(out))
    }

    /// Decrypts the personal fields of read events (see
    /// [`PgEventStore::reveal_values`]).
    async fn reveal(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        let mut at = Vec::new();
        let mut values = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if crypto::may_hold_envelopes(e.data.get()) {
                let value: Value =
                    serde_json::from_str(e.data.get()).map_err(|err| StoreError::Corrupt {
                        position: e.position,
                        reason: err.to_string(),
                    })?;
                at.push(i);
                values.push(value);
            }
        }
        if at.is_empty() {
            return Ok(());
        }
        let subjects = self.reveal_values(&mut values).await?;
        for ((i, value), subjects) in at.into_iter().zip(values).zip(subjects) {
            let e = &mut events[i];
            e.data =
                RawValue::from_string(value.to_string()).map_err(|err| StoreError::Corrupt {
                    position: e.position,
                    reason: err.to_string(),
                })?;
            e.personal = subjects;
        }
        Ok(())
    }

    /// Every event of the streams `ids` at or before global position
    /// `until`, by stream and version: how a reader of the log saw those
    /// streams when it reached `until`. For readers that fold many streams
    /// per batch (reactions) in one round trip.
    pub async fn read_streams_until(
        &self,
        ids: &[String],
        until: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "{SELECT_EVENT} WHERE stream_id = ANY($1) AND position <= $2 \
             ORDER BY stream_id, stream_version"
        ))
        .bind(ids)
        .bind(i64::try_from(until).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut events: Vec<RecordedEvent> =
            rows.iter().map(decode_event).collect::<Result<_, _>>()?;
        self.reveal(&mut events).await?;
        Ok(events)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, KnownVersions> {
        self.shared.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task that turns local appends into (coalesced) NOTIFYs for
    /// other processes. Must be called inside a Tokio runtime.
    fn announce(&self) {
        self.shared.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.shared.notifier_started.call_once(|| {
            let pool = self.pool.clone();
            let notify = self.shared.notify.clone();
            tokio::spawn(notifier(pool, notify));
        });
        self.shared.notify.notify_one();
    }

    #[tracing::instrument(level = "debug", skip_all, fields(stream = %stream.id, expected = %expected, count = events.len()))]
    async fn append_once(
        &self,
        stream: &StreamRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
        prepared: &[Prepared],
    ) -> Result<AppendResult, StoreError> {
        let base = match expected {
            ExpectedVersion::Any => return self.append_any(stream, events, prepared).await,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(_) => expected.to_sql()?,
        };
        // Version `base` is known to exist: the unique key alone decides.
        let known = base == 0 || self.known().covers(stream, base as u64);
        let result = if let ([event], [p]) = (events, prepared) {
            let sql = if known {
                INSERT_ONE_AT
            } else {
                INSERT_ONE_NEXT
            };
            sqlx::query_scalar::<_, i64>(sql)
                .bind(event.event_id)
                .bind(stream.tenant.as_str())
                .bind(stream.id.as_str())
                .bind(stream.stream_type.as_str())
                .bind(base)
                .bind(event.event_type.as_str())
                .bind(i16::try_from(event.schema_version).unwrap_or(i16::MAX))
                .bind(p.data.as_str())
                .bind(p.metadata.as_str())
                .fetch_all(&self.pool)
                .await
        } else {
            let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
            let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
            let versions: Vec<i16> = events
                .iter()
                .map(|e| i16::try_from(e.schema_version).unwrap_or(i16::MAX))
                .collect();
            let data: Vec<&str> = prepared.iter().map(|p| p.data.as_str()).collect();
            let metadata: Vec<&str> = prepared.iter().map(|p| p.metadata.as_str()).collect();
            let sql = if known {
                INSERT_MANY_AT
            } else {
                INSERT_MANY_NEXT
            };
            sqlx::query_scalar::<_, i64>(sql)
                .bind(stream.tenant.as_str())
                .bind(stream.id.as_str())
                .bind(stream.stream_type.as_str())
                .bind(base)
                .bind(&ids)
                .bind(&types)
                .bind(&versions)
                .bind(&data)
                .bind(&metadata)
                .fetch_all(&self.pool)
                .await
        };
        match result {
            Ok(mut positions) if positions.len() == events.len() => {
                positions.sort_unstable();
                let version = base as u64 + events.len() as u64;
                self.known().saw(
                    stream.id.as_str(),
                    version,
                    stream.tenant.as_str(),
                    stream.stream_type.as_str(),
                );
                Ok(AppendResult {
                    stream_version: base as u64 + events.len() as u64,
                    positions: positions.into_iter().map(|p| p as u64).collect(),
                    already_stored: false,
                })
            }
            // The stream is not at the expected version (or not ours).
            Ok(_) => self.explain_refusal(stream, expected, events).await,
            // A concurrent append took the version, or an event id exists.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
                self.explain_refusal(stream, expected, events).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An append with [`ExpectedVersion::Any`]: `chronicle_append()` waits
    /// for other any-version appends to the stream, reads the current
    /// version and appends after it, in one statement.
    async fn append_any(
        &self,
        stream: &StreamRef,
        events: &[NewEvent],
        prepared: &[Prepared],
    ) -> Result<AppendResult, StoreError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<i16> = events
            .iter()
            .map(|e| i16::try_from(e.schema_version).unwrap_or(i16::MAX))
            .collect();
        let data: Vec<&str> = prepared.iter().map(|p| p.data.as_str()).collect();
        let metadata: Vec<&str> = prepared.iter().map(|p| p.metadata.as_str()).collect();
        let result = sqlx::query(
            "SELECT outcome, stream_version, positions FROM chronicle_append($1, $2, $3, -2, $4, $5, $6, \
             $7::text[]::jsonb[], $8::text[]::jsonb[])",
        )
        .bind(stream.tenant.as_str())
        .bind(stream.id.as_str())
        .bind(stream.stream_type.as_str())
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&data)
        .bind(&metadata)
        .fetch_one(&self.pool)
        .await;
        let row = match result {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
                return self
                    .explain_refusal(stream, ExpectedVersion::Any, events)
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let outcome: String = row.try_get(0)?;
        let version: i64 = row.try_get(1)?;
        match outcome.as_str() {
            "ok" => {
                let positions: Vec<i64> = row.try_get(2)?;
                Ok(AppendResult {
                    stream_version: version as u64,
                    positions: positions.into_iter().map(|p| p as u64).collect(),
                    already_stored: false,
                })
            }
            _ => {
                self.explain_refusal(stream, ExpectedVersion::Any, events)
                    .await
            }
        }
    }

    /// The slow path after an append wrote nothing: an idempotent retry, a
    /// reused event id, a stream of another tenant or type, or a conflict.
    async fn explain_refusal(
        &self,
        stream: &StreamRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        if let Some(done) = self.already_stored(&stream.id, &ids).await? {
            return Ok(done);
        }
        let latest = sqlx::query(
            "SELECT stream_version, tenant_id, stream_type FROM events WHERE stream_id = $1 \
             ORDER BY stream_version DESC LIMIT 1",
        )
        .bind(stream.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(latest) = latest else {
            return Err(StoreError::Conflict {
                expected,
                actual: 0,
            });
        };
        let actual = latest.try_get::<i64, _>(0)? as u64;
        if latest.try_get::<&str, _>(1)? != stream.tenant.as_str() {
            return Err(StoreError::StreamMismatch {
                stream_id: stream.id.to_string(),
                what: "tenant",
            });
        }
        if latest.try_get::<&str, _>(2)? != stream.stream_type.as_str() {
            return Err(StoreError::StreamMismatch {
                stream_id: stream.id.to_string(),
                what: "stream type",
            });
        }
        Err(StoreError::Conflict { expected, actual })
    }

    /// When `ids` are all stored, consecutively and in order, in `stream`:
    /// the original result of that append. When none is stored: `None`.
    /// Anything else is a reuse of event ids.
    async fn already_stored(
        &self,
        stream: &StreamId,
        ids: &[Uuid],
    ) -> Result<Option<AppendResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.event_id, e.stream_id, e.stream_version, e.position \
               FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n) \
               JOIN events e ON e.event_id = t.id ORDER BY t.n",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut positions = Vec::with_capacity(rows.len());
        let mut first_version: Option<i64> = None;
        for (i, row) in rows.iter().enumerate() {
            let event_id: Uuid = row.try_get(0)?;
            let stream_id: String = row.try_get(1)?;
            let version: i64 = row.try_get(2)?;
            let expected_version = first_version.map(|v| v + i as i64);
            let in_place = rows.len() == ids.len()
                && event_id == ids[i]
                && stream_id == stream.as_str()
                && expected_version.is_none_or(|v| v == version);
            if !in_place {
                return Err(StoreError::DuplicateEventId {
                    event_id,
                    stream_id,
                    stream_version: version as u64,
                });
            }
            first_version.get_or_insert(version);
            positions.push(row.try_get::<i64, _>(3)? as u64);
        }
        let last = first_version.unwrap_or(0) + ids.len() as i64 - 1;
        Ok(Some(AppendResult {
            stream_version: last as u64,
            positions,
            already_stored: true,
        }))
    }

    /// Decides what to do about missing positions in `[lo, hi)` found below
    /// a visible position; returns true when they were proven to be holes.
    async fn resolve_gap(&self, lo: u64, hi: u64, observed_up_to: u64) -> Result<bool, StoreError> {
        let marker = self.shared.gaps.lock().map(|g| g.marker).unwrap_or(None);
        match marker {
            Some(marker) if marker.covers >= hi.saturating_sub(1) => {
                // One snapshot: its xmin, and which of the positions it sees.
                let row = sqlx::query(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                            ARRAY(SELECT position FROM events WHERE position >= $1 AND position < $2)",
                )
                .bind(lo as i64)
                .bind(hi as i64)
                .fetch_one(&self.pool)
                .await?;
                let xmin: i64 = row.try_get(0)?;
                if xmin <= marker.xid {
                    return Ok(false);
                }
                let present: Vec<i64> = row.try_get(1)?;
                let mut gaps = self.shared.gaps.lock().unwrap_or_else(|e| e.into_inner());
                for p in lo..hi {
                    if !present.contains(&(p as i64)) {
                        gaps.holes.insert(p);
                    }
                }
                tracing::debug!(lo, hi, "positions proven to be holes");
                Ok(true)
            }
            _ => {
                // Every position observed so far was allocated by a
                // transaction whose id is older than this new one.
                let xid: i64 = sqlx::query_scalar(
                    "SELECT pg_current_xact_id()::text::bigint \
                      FROM (SELECT set_config('synchronous_commit', 'off', true)) AS s",
                )
                .fetch_one(&self.pool)
                .await?;
                let mut gaps = self.shared.gaps.lock().unwrap_or_else(|e| e.into_inner());
                gaps.marker = Some(Marker {
                    xid,
                    covers: observed_up_to,
                });
                Ok(false)
            }
        }
    }
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get(0)?;
    let data: Json<Box<RawValue>> = row.try_get(9).map_err(|e| StoreError::Corrupt {
        position: position as u64,
        reason: e.to_string(),
    })?;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt {
        position: position as u64,
        reason: e.to_string(),
    };
    let raw_metadata: Json<Box<RawValue>> = row.try_get(10).map_err(|e| corrupt(&e))?;
    let metadata: Metadata = serde_json::from_str(raw_metadata.0.get()).map_err(|e| corrupt(&e))?;
    Ok(RecordedEvent {
        position: position as u64,
        event_id: row.try_get(1)?,
        tenant: row.try_get(2)?,
        stream_id: row.try_get(3)?,
        stream_type: row.try_get(4)?,
        stream_version: row.try_get::<i64, _>(5)? as u64,
        event_type: row.try_get(6)?,
        schema_version: row.try_get::<i16, _>(7)? as u16,
        recorded_at: row.try_get(8)?,
        data: data.0,
        metadata,
        raw_metadata: raw_metadata.0,
        personal: Vec::new(),
    })
}

#[async_trait::async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let encrypted;
        let events = if events.iter().any(|e| e.personal.is_some()) {
            encrypted = self.encrypt(stream.tenant.as_str(), events).await?;
            &encrypted[..]
        } else {
            events
        };
        let prepared = prepare(events)?;
        let mut attempt = 0;
        loop {
            match self.append_once(stream, expected, events, &prepared).await {
                Ok(result) => {
                    if !result.already_stored {
                        self.announce();
                    }
                    return Ok(result);
                }
                // "Any" means any: a concurrent append to the same stream is
                // not a conflict for it, so take the next version.
                Err(StoreError::Conflict { .. })
                    if expected == ExpectedVersion::Any && attempt < ANY_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = match direction {
            Direction::Forward => {
                format!("{SELECT_EVENT} WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3")
            }
            Direction::Backward => format!(
                "{SELECT_EVENT} WHERE stream_id = $1 AND stream_version <= $2 ORDER BY stream_version DESC LIMIT $3"
            ),
        };
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let rows = sqlx::query(&sql)
            .bind(stream.as_str())
            .bind(from)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut events: Vec<RecordedEvent> =
            rows.iter().map(decode_event).collect::<Result<_, _>>()?;
        self.reveal(&mut events).await?;
        if let Some(latest) = events.iter().max_by_key(|e| e.stream_version) {
            self.known().saw(
                &latest.stream_id,
                latest.stream_version,
                &latest.tenant,
                &latest.stream_type,
            );
        }
        Ok(events)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
        )
        .bind(stream.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(version.map(|v| v as u64))
    }

    async fn read_batch(&self, after: u64, limit: usize) -> Result<ReadBatch, StoreError> {
        let mut batch = self.read_batch_stored(after, limit).await?;
        self.reveal(&mut batch.events).await?;
        Ok(batch)
    }

    async fn event_position(&self, event_id: Uuid) -> Result<Option<u64>, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(position.map(|p| p as u64))
    }

    async fn erase_subject(&self, tenant: &TenantId, subject: Uuid) -> Result<u64, StoreError> {
        let erased = sqlx::query(
            "UPDATE subject_keys SET key = NULL, erased_at = now() \
              WHERE tenant_id = $1 AND subject_id = $2 AND key IS NOT NULL",
        )
        .bind(tenant.as_str())
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(erased.rows_affected())
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head.unwrap_or(0) as u64)
    }

    fn wake_ups(&self) -> watch::Receiver<u64> {
        self.shared.listener_started.call_once(|| {
            let pool = self.pool.clone();
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(async move {
                listen(pool, shared).await;
            });
        });
        self.shared.wake.subscribe()
    }
}

impl PgEventStore {
    /// [`EventStore::read_batch`] with the data as stored (personal fields
    /// still encrypted): what a cache shared over time may keep, since an
    /// erasure can make revealed data stale. Reveal with
    /// [`PgEventStore::revealed`] when handing the events out.
    pub async fn read_batch_stored(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<ReadBatch, StoreError> {
        let mut events = Vec::new();
        let mut cursor = after;
        // A few rounds at most: each round either returns, or proves a gap to
        // be a hole and continues past it.
        for _ in 0..4 {
            let want = limit.saturating_sub(events.len());
            if want == 0 {
                break;
            }
            let rows = sqlx::query(&format!(
                "{SELECT_EVENT} WHERE position > $1 ORDER BY position LIMIT $2"
            ))
            .bind(cursor as i64)
            .bind(want as i64)
            .fetch_all(&self.pool)
            .await?;
            let observed_up_to = match rows.last() {
                Some(row) => row.try_get::<i64, _>(0)? as u64,
                None => {
                    return Ok(ReadBatch {
                        events,
                        blocked: false,
                    })
                }
            };
            let mut gap = None;
            {
                let gaps = self.shared.gaps.lock().unwrap_or_else(|e| e.into_inner());
                for row in &rows {
                    let position = row.try_get::<i64, _>(0)? as u64;
                    let next = cursor + 1;
                    if position != next
                        && gaps.holes.range(next..position).count() as u64 != position - next
                    {
                        gap = Some((next, position));
                        break;
                    }
                    events.push(decode_event(row)?);
                    cursor = position;
                }
            }
            match gap {
                None => {
                    return Ok(ReadBatch {
                        events,
                        blocked: false,
                    })
                }
                Some((lo, hi)) => {
                    if !self.resolve_gap(lo, hi, observed_up_to).await? {
                        return Ok(ReadBatch {
                            events,
                            blocked: true,
                        });
                    }
                }
            }
        }
        Ok(ReadBatch {
            events,
            blocked: false,
        })
    }
}

/// Sends one NOTIFY per burst of local appends, at most every
/// [`NOTIFY_INTERVAL`], with asynchronous commit: a lost notification only
/// delays other processes until their polling fallback.
async fn notifier(pool: PgPool, notify: Arc<Notify>) {
    loop {
        notify.notified().await;
        let sent =
            sqlx::query("SELECT pg_notify($1, ''), set_config('synchronous_commit', 'off', true)")
                .bind(NOTIFY_CHANNEL)
                .execute(&pool)
                .await;
        if let Err(error) = sent {
            tracing::debug!(%error, "could not announce new events");
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

/// Turns NOTIFYs from other processes into local wake-ups; reconnects with
/// backoff. Ends when the store is dropped.
async fn listen(pool: PgPool, shared: std::sync::Weak<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(%error, "event listener could not connect; relying on polling");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                if shared.strong_count() == 0 || pool.is_closed() {
                    return;
                }
                continue;
            }
        };
        if let Err(error) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; relying on polling");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        loop {
            match listener.try_recv().await {
                Ok(_) => match shared.upgrade() {
                    Some(shared) => shared.wake.send_modify(|n| *n = n.wrapping_add(1)),
                    None => return,
                },
                Err(error) => {
                    tracing::debug!(%error, "event listener lost its connection");
                    break;
                }
            }
            if shared.strong_count() == 0 {
                return;
            }
        }
        // The connection dropped: wake subscribers so they poll once.
        match shared.upgrade() {
            Some(shared) => shared.wake.send_modify(|n| *n = n.wrapping_add(1)),
            None => return,
        }
    }
}
