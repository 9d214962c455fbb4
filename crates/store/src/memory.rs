//! The in-memory backend: the same contract as PostgreSQL, for fast tests
//! of the layers above. Appends are serialised by a mutex, so there are no
//! gaps to wait for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::value::RawValue;
use tokio::sync::watch;
use uuid::Uuid;

use crate::crypto::{self, DataKey};
use crate::types::prepare;
use crate::{
    AppendResult, Direction, EventStore, ExpectedVersion, NewEvent, ReadBatch, RecordedEvent,
    StoreError, StreamId, StreamRef, TenantId,
};

/// An event store held in memory. Cheap to clone; clones share the events.
#[derive(Clone)]
pub struct MemoryEventStore {
    inner: Arc<Mutex<Inner>>,
    wake: Arc<watch::Sender<u64>>,
}

#[derive(Default)]
struct Inner {
    /// Every event; `events[i].position == i + 1`.
    events: Vec<Arc<RecordedEvent>>,
    /// Per stream: indexes into `events`, in version order.
    streams: HashMap<String, Vec<usize>>,
    /// Event id → index into `events`.
    ids: HashMap<Uuid, usize>,
    /// Data keys by id; `None` once destroyed.
    keys: HashMap<Uuid, (String, Option<DataKey>)>,
}

impl Inner {
    /// A live key of `subject` in `tenant`, made now if it has none.
    fn data_key(&mut self, tenant: &str, subject: Uuid) -> DataKey {
        let live = self.keys.values().find_map(|(t, k)| {
            k.as_ref()
                .filter(|k| t == tenant && k.subject == subject)
                .cloned()
        });
        live.unwrap_or_else(|| {
            let key = DataKey::generate(subject);
            self.keys
                .insert(key.id, (tenant.to_owned(), Some(key.clone())));
            key
        })
    }

    /// `event` as a reader sees it: personal fields decrypted, or their
    /// placeholders once erased.
    fn revealed(&self, event: &RecordedEvent) -> RecordedEvent {
        let mut out = event.clone();
        if !crypto::may_hold_envelopes(event.data.get()) {
            return out;
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(event.data.get()) else {
            return out;
        };
        let live: HashMap<Uuid, DataKey> = self
            .keys
            .iter()
            .filter_map(|(id, (_, k))| k.clone().map(|k| (*id, k)))
            .collect();
        out.personal = crypto::reveal(&mut value, &live);
        if let Ok(raw) = RawValue::from_string(value.to_string()) {
            out.data = raw;
        }
        out
    }
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            wake: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn already_stored(
        &self,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>, StoreError> {
        let found: Vec<&RecordedEvent> = events
            .iter()
            .filter_map(|e| self.ids.get(&e.event_id).map(|&i| &*self.events[i]))
            .collect();
        let Some(first) = found.first() else {
            return Ok(None);
        };
        for (i, (stored, new)) in found.iter().zip(events).enumerate() {
            let in_place = found.len() == events.len()
                && stored.event_id == new.event_id
                && stored.stream_id == stream.as_str()
                && stored.stream_version == first.stream_version + i as u64;
            if !in_place {
                return Err(StoreError::DuplicateEventId {
                    event_id: stored.event_id,
                    stream_id: stored.stream_id.clone(),
                    stream_version: stored.stream_version,
                });
            }
        }
        Ok(Some(AppendResult {
            stream_version: first.stream_version + events.len() as u64 - 1,
            positions: found.iter().map(|e| e.position).collect(),
            already_stored: true,
        }))
    }
}

#[async_trait::async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let encrypted;
        let events = if events.iter().any(|e| e.personal.is_some()) {
            let mut inner = self.lock();
            encrypted = events
                .iter()
                .map(|e| match &e.personal {
                    Some(p) => {
                        let key = inner.data_key(stream.tenant.as_str(), p.subject);
                        crypto::encrypt(e, &key)
                    }
                    None => Ok(e.clone()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            &encrypted[..]
        } else {
            events
        };
        let prepared = prepare(events)?;
        // Parse outside the lock.
        let mut data = Vec::with_capacity(prepared.len());
        for (index, p) in prepared.into_iter().enumerate() {
            let raw = RawValue::from_string(p.data).map_err(|e| StoreError::InvalidEvent {
                index: Some(index),
                reason: e.to_string(),
            })?;
            data.push(raw);
        }

        let mut inner = self.lock();
        let stream_events = inner.streams.get(stream.id.as_str());
        let current = stream_events.map_or(0, |v| v.len() as u64);
        if !expected.matches(current) {
            return match inner.already_stored(&stream.id, events)? {
                Some(done) => Ok(done),
                None => Err(StoreError::Conflict {
                    expected,
                    actual: current,
                }),
            };
        }
        if let Some(&last) = stream_events.and_then(|v| v.last()) {
            let last = &inner.events[last];
            if last.tenant != stream.tenant.as_str() {
                return Err(StoreError::StreamMismatch {
                    stream_id: stream.id.to_string(),
                    what: "tenant",
                });
            }
            if last.stream_type != stream.stream_type.as_str() {
                return Err(StoreError::StreamMismatch {
                    stream_id: stream.id.to_string(),
                    what: "stream type",
                });
            }
        }
        if let Some(done) = inner.already_stored(&stream.id, events)? {
            // Ids stored at this very place can only be a retry of an append
            // whose expected version was Any.
            return Ok(done);
        }

        let now = Utc::now();
        let mut positions = Vec::with_capacity(events.len());
        for (i, (event, data)) in events.iter().zip(data).enumerate() {
            let index = inner.events.len();
            let position = index as u64 + 1;
            inner.events.push(Arc::new(RecordedEvent {
                position,
                event_id: event.event_id,
                tenant: stream.tenant.to_string(),
                stream_id: stream.id.to_string(),
                stream_type: stream.stream_type.to_string(),
                stream_version: current + i as u64 + 1,
                event_type: event.event_type.to_string(),
                schema_version: event.schema_version,
                recorded_at: now,
                data,
                metadata: event.metadata.clone(),
                raw_metadata: serde_json::value::to_raw_value(&event.metadata)
                    .expect("metadata serializes"),
                personal: Vec::new(),
            }));
            inner
                .streams
                .entry(stream.id.to_string())
                .or_default()
                .push(index);
            inner.ids.insert(event.event_id, index);
            positions.push(position);
        }
        drop(inner);
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(AppendResult {
            stream_version: current + events.len() as u64,
            positions,
            already_stored: false,
        })
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        let Some(indexes) = inner.streams.get(stream.as_str()) else {
            return Ok(Vec::new());
        };
        let pick = |&i: &usize| inner.revealed(&inner.events[i]);
        Ok(match direction {
            Direction::Forward => indexes
                .iter()
                .skip(from_version.saturating_sub(1) as usize)
                .take(limit)
                .map(pick)
                .collect(),
            Direction::Backward => indexes
                .iter()
                .take(from_version.min(indexes.len() as u64) as usize)
                .rev()
                .take(limit)
                .map(pick)
                .collect(),
        })
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .lock()
            .streams
            .get(stream.as_str())
            .map(|v| v.len() as u64))
    }

    async fn read_batch(&self, after: u64, limit: usize) -> Result<ReadBatch, StoreError> {
        let inner = self.lock();
        let start = (after as usize).min(inner.events.len());
        let events = inner.events[start..]
            .iter()
            .take(limit)
            .map(|e| inner.revealed(e))
            .collect();
        Ok(ReadBatch {
            events,
            blocked: false,
        })
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.lock().events.len() as u64)
    }

    async fn event_position(&self, event_id: Uuid) -> Result<Option<u64>, StoreError> {
        let inner = self.lock();
        Ok(inner.ids.get(&event_id).map(|&i| inner.events[i].position))
    }

    async fn erase_subject(&self, tenant: &TenantId, subject: Uuid) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut erased = 0;
        for (t, key) in inner.keys.values_mut() {
            if t == tenant.as_str() && key.as_ref().is_some_and(|k| k.subject == subject) {
                *key = None;
                erased += 1;
            }
        }
        Ok(erased)
    }

    fn wake_ups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}
