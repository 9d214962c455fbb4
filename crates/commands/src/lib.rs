//! The write side: load a stream, fold it, decide, append with the
//! expected version.
//!
//! [`CommandHandler::execute`] is the whole cycle for one command on one
//! aggregate. Without `If-Match`, a concurrent change is handled by
//! re-loading and re-deciding (bounded); with it, a mismatch is
//! [`CommandError::PreconditionFailed`] and nothing is written.
//! [`CommandHandler::load`] folds a stream for reads, also up to a version
//! or a point in time (auditors' `at_version` and `as_of`).

use std::sync::Arc;

use chronicle_domain::event::{decode, encode, erased_placeholder, DecodeError, DomainEvent};
use chronicle_domain::Aggregate;
use chronicle_store::{
    Direction, EventStore, ExpectedVersion, Metadata, NewEvent, Personal, PersonalField,
    RecordedEvent, StoreError, StreamId, StreamRef, TenantId, TypeName,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How many times a command is re-decided after a concurrent change when
/// the caller gave no `If-Match`.
pub const DEFAULT_MAX_RETRIES: usize = 32;

/// Events read per page while loading a stream.
const PAGE: usize = 1000;

/// Who is acting, on whose behalf, and under which concurrency rule.
#[derive(Debug, Clone)]
pub struct Context {
    pub tenant: TenantId,
    /// The user (or `system:<component>`) acting.
    pub actor: String,
    pub request_id: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// The component recording the events, e.g. `api`.
    pub source: &'static str,
    /// The stream version the caller saw (`If-Match`), if it insists on it.
    pub if_match: Option<u64>,
    /// How event ids are made.
    pub event_ids: EventIds,
}

/// How the ids of new events are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventIds {
    /// Fresh UUIDv7s: a retry of the command is a new command.
    Fresh,
    /// Derived from a triggering event or timer: re-issuing the same
    /// reaction produces the same ids, which the store recognises, so a
    /// replay or a crash never doubles an effect.
    DerivedFrom(Uuid),
}

impl Context {
    /// A context for a user's request.
    pub fn new(tenant: TenantId, actor: impl Into<String>) -> Self {
        Self {
            tenant,
            actor: actor.into(),
            request_id: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            source: "api",
            if_match: None,
            event_ids: EventIds::Fresh,
        }
    }

    fn event_id(&self, index: usize) -> Uuid {
        match self.event_ids {
            EventIds::Fresh => Uuid::now_v7(),
            EventIds::DerivedFrom(seed) => Uuid::new_v5(&seed, index.to_string().as_bytes()),
        }
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            actor: Some(self.actor.clone()),
            correlation_id: Some(self.correlation_id),
            causation_id: self.causation_id,
            request_id: self.request_id.clone(),
            source: Some(self.source.to_owned()),
        }
    }
}

/// A stream folded to a state.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The stream version the state reflects (0: no events).
    pub version: u64,
    /// The global position of the last event folded (0: none).
    pub position: u64,
    /// When the last folded event was recorded.
    pub updated_at: Option<DateTime<Utc>>,
    /// The subjects whose personal data the folded events revealed.
    pub personal: std::collections::BTreeSet<Uuid>,
}

/// Up to where [`CommandHandler::load_until`] folds.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Everything.
    End,
    /// Events up to and including this stream version.
    Version(u64),
    /// Events recorded at or before this time.
    Time(DateTime<Utc>),
    /// Events at or before this global position: the stream as a reader
    /// of the log saw it when it reached that position (reactions).
    Position(u64),
}

/// What folding a stream found.
enum Folded<A> {
    Absent,
    /// The stream belongs to another tenant or holds another aggregate.
    Foreign,
    Loaded(Loaded<A>),
}

impl<A> Folded<A> {
    fn of(loaded: Loaded<A>) -> Self {
        if loaded.version > 0 {
            Self::Loaded(loaded)
        } else {
            Self::Absent
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The stream's version after the command.
    pub version: u64,
    /// The global position of the command's last event (for read-your-writes);
    /// when the command produced no event, the position the state reflects.
    pub position: u64,
    /// Ids of the events recorded (empty when the command changed nothing).
    pub event_ids: Vec<Uuid>,
    /// True when the events had already been recorded by an earlier,
    /// identical reaction (derived ids) and nothing was written.
    pub already_recorded: bool,
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The stream does not exist for this tenant (or holds another type).
    #[error("not found")]
    NotFound,
    /// The domain refused the command.
    #[error(transparent)]
    Domain(E),
    /// `If-Match` named another version than the stream's.
    #[error("the entity is at version {actual}, not {expected}")]
    PreconditionFailed { expected: u64, actual: u64 },
    /// Concurrent changes kept winning for every retry.
    #[error("the entity kept changing concurrently; gave up after {retries} retries")]
    TooMuchContention { retries: usize },
    /// A stored event could not be read back into the domain.
    #[error("stored event at position {position} cannot be decoded: {source}")]
    Decode {
        position: u64,
        #[source]
        source: DecodeError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs commands against an event store.
pub struct CommandHandler<S: EventStore + ?Sized> {
    store: Arc<S>,
    max_retries: usize,
}

impl<S: EventStore + ?Sized> Clone for CommandHandler<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            max_retries: self.max_retries,
        }
    }
}

impl<S: EventStore + ?Sized> CommandHandler<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Folds the whole stream. `Ok(None)` when it has no events, or belongs
    /// to another tenant or another aggregate type.
    pub async fn load<A: Aggregate>(
        &self,
        tenant: &TenantId,
        stream: &StreamId,
    ) -> Result<Option<Loaded<A>>, CommandError<A::Error>> {
        self.load_until(tenant, stream, Until::End).await
    }

    /// Folds the stream up to a version or a time.
    #[tracing::instrument(level = "debug", skip(self), fields(stream_type = A::STREAM_TYPE))]
    pub async fn load_until<A: Aggregate>(
        &self,
        tenant: &TenantId,
        stream: &StreamId,
        until: Until,
    ) -> Result<Option<Loaded<A>>, CommandError<A::Error>> {
        Ok(match self.fold::<A>(tenant, stream, until).await? {
            Folded::Loaded(loaded) => Some(loaded),
            Folded::Absent | Folded::Foreign => None,
        })
    }

    async fn fold<A: Aggregate>(
        &self,
        tenant: &TenantId,
        stream: &StreamId,
        until: Until,
    ) -> Result<Folded<A>, CommandError<A::Error>> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            position: 0,
            updated_at: None,
            personal: Default::default(),
        };
        let mut from = 1;
        loop {
            let page = self
                .store
                .read_stream(stream, from, Direction::Forward, PAGE)
                .await?;
            let full = page.len() == PAGE;
            for recorded in &page {
                if recorded.tenant != tenant.as_str() || recorded.stream_type != A::STREAM_TYPE {
                    return Ok(Folded::Foreign);
                }
                let past_end = match until {
                    Until::End => false,
                    Until::Version(v) => recorded.stream_version > v,
                    Until::Time(t) => recorded.recorded_at > t,
                    Until::Position(p) => recorded.position > p,
                };
                if past_end {
                    return Ok(Folded::of(loaded));
                }
                let event = decode_recorded::<A>(recorded)?;
                loaded.state = loaded.state.evolve(&event);
                loaded.version = recorded.stream_version;
                loaded.position = recorded.position;
                loaded.updated_at = Some(recorded.recorded_at);
                loaded.personal.extend(recorded.personal.iter().copied());
            }
            if !full {
                break;
            }
            from = loaded.version + 1;
        }
        Ok(Folded::of(loaded))
    }

    /// Loads, decides and appends `command` on the aggregate in `stream`.
    /// A stream that does not exist yet is folded from the empty state, so
    /// creating commands go through here too.
    #[tracing::instrument(level = "debug", skip_all, fields(stream = %stream, stream_type = A::STREAM_TYPE))]
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &StreamId,
        ctx: &Context,
        command: &A::Command,
    ) -> Result<Outcome, CommandError<A::Error>> {
        let stream_ref = StreamRef {
            tenant: ctx.tenant.clone(),
            stream_type: TypeName::parse(A::STREAM_TYPE)?,
            id: stream.clone(),
        };
        // A reaction issued again (a replay, a crash before its checkpoint):
        // when its first event is stored, the whole append is, and deciding
        // again on today's state could only refuse or differ.
        if let EventIds::DerivedFrom(_) = ctx.event_ids {
            let mut recorded = Vec::new();
            let mut position = 0;
            while let Some(p) = self
                .store
                .event_position(ctx.event_id(recorded.len()))
                .await?
            {
                recorded.push(ctx.event_id(recorded.len()));
                position = p;
            }
            if !recorded.is_empty() {
                let version = self.store.stream_version(stream).await?.unwrap_or(0);
                return Ok(Outcome {
                    version,
                    position,
                    event_ids: recorded,
                    already_recorded: true,
                });
            }
        }
        let mut retries = 0;
        loop {
            let loaded = match self.fold::<A>(&ctx.tenant, stream, Until::End).await? {
                Folded::Loaded(loaded) => loaded,
                // Another tenant's or another type's stream does not exist
                // for this caller.
                Folded::Foreign => return Err(CommandError::NotFound),
                Folded::Absent => Loaded {
                    state: A::default(),
                    version: 0,
                    position: 0,
                    updated_at: None,
                    personal: Default::default(),
                },
            };
            if let Some(expected) = ctx.if_match {
                if expected != loaded.version {
                    return Err(CommandError::PreconditionFailed {
                        expected,
                        actual: loaded.version,
                    });
                }
            }
            let events = loaded.state.decide(command).map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(Outcome {
                    version: loaded.version,
                    position: loaded.position,
                    event_ids: Vec::new(),
                    already_recorded: false,
                });
            }
            let metadata = ctx.metadata();
            let new_events = events
                .iter()
                .enumerate()
                .map(|(i, event)| {
                    let encoded = encode(event);
                    Ok(NewEvent {
                        event_id: ctx.event_id(i),
                        event_type: TypeName::parse(encoded.event_type)?,
                        schema_version: encoded.schema_version,
                        data: encoded.data,
                        metadata: metadata.clone(),
                        personal: personal(event, stream),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let expected = if loaded.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(loaded.version)
            };
            let started = std::time::Instant::now();
            let appended = self.store.append(&stream_ref, expected, &new_events).await;
            metrics::histogram!("chronicle_append_duration_seconds", "stream_type" => A::STREAM_TYPE)
                .record(started.elapsed().as_secs_f64());
            match appended {
                Ok(result) => {
                    return Ok(Outcome {
                        version: result.stream_version,
                        position: result.last_position(),
                        event_ids: new_events.iter().map(|e| e.event_id).collect(),
                        already_recorded: result.already_stored,
                    })
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    metrics::counter!("chronicle_command_conflicts_total", "stream_type" => A::STREAM_TYPE).increment(1);
                    if let Some(expected) = ctx.if_match {
                        return Err(CommandError::PreconditionFailed { expected, actual });
                    }
                    if retries >= self.max_retries {
                        return Err(CommandError::TooMuchContention { retries });
                    }
                    retries += 1;
                    tracing::debug!(retries, actual, "concurrent change; deciding again");
                }
                Err(StoreError::StreamMismatch { .. }) => return Err(CommandError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Where `event`'s personal data is, whose it is (its own subject, or the
/// stream's entity), and what stands in for it once erased.
fn personal<E: DomainEvent>(event: &E, stream: &StreamId) -> Option<Personal> {
    let pointers = event.personal_pointers();
    if pointers.is_empty() {
        return None;
    }
    let subject = event.personal_subject().unwrap_or_else(|| {
        Uuid::parse_str(stream.as_str())
            .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_URL, stream.as_str().as_bytes()))
    });
    Some(Personal {
        subject,
        fields: pointers
            .into_iter()
            .map(|pointer| PersonalField {
                erased: erased_placeholder(&pointer),
                pointer,
            })
            .collect(),
    })
}

/// Decodes a stored event into the aggregate's event type, upcasting older
/// schema versions.
pub fn decode_recorded<A: Aggregate>(
    recorded: &RecordedEvent,
) -> Result<A::Event, CommandError<A::Error>> {
    let data = recorded.data_value().map_err(|e| CommandError::Decode {
        position: recorded.position,
        source: DecodeError::Invalid {
            event_type: recorded.event_type.clone(),
            source: e,
        },
    })?;
    decode::<A::Event>(&recorded.event_type, recorded.schema_version, data).map_err(|source| {
        CommandError::Decode {
            position: recorded.position,
            source,
        }
    })
}
