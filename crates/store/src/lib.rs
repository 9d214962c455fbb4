//! The event store: an append-only log of events, grouped in streams and
//! totally ordered by a global position.
//!
//! [`EventStore`] is the contract; [`postgres::PgEventStore`] is the
//! production backend and [`memory::MemoryEventStore`] the in-memory one for
//! fast tests of the layers above. Both pass the same conformance suite
//! (`tests/it/conformance.rs`).
//!
//! Guarantees every backend gives:
//! - an append is atomic for its batch and checks the expected version;
//!   on mismatch it returns [`StoreError::Conflict`] and writes nothing;
//! - appending events whose ids are already stored at the same place in the
//!   same stream returns the original result and writes nothing; an id stored
//!   anywhere else is [`StoreError::DuplicateEventId`];
//! - [`EventStore::read_all`] and [`Subscription`]s deliver events in global
//!   position order and never skip an event that commits late
//!   (`docs/adr/0001-gap-free-global-order.md`).

pub mod crypto;
pub mod embedded;
pub mod memory;
pub mod postgres;
mod subscription;
mod types;

pub use subscription::{Subscription, DEFAULT_POLL_INTERVAL};
pub use types::*;

/// The migrations of the whole system (event store and read models),
/// embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The event store contract. Object safe, so the binary can choose a backend
/// at run time.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    async fn append(
        &self,
        stream: &StreamRef,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError>;

    /// Reads up to `limit` events of one stream, starting at `from_version`
    /// (inclusive) and going in `direction`. An absent stream reads as empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current version of a stream (the version of its last event), or
    /// `None` when it has no events.
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, StoreError>;

    /// Reads up to `limit` events after `after` (exclusive) in global order.
    /// Stops before any position that might still commit, so the caller can
    /// continue from the last returned position without ever missing one;
    /// [`ReadBatch::blocked`] says whether it stopped at such a position.
    async fn read_batch(&self, after: u64, limit: usize) -> Result<ReadBatch, StoreError>;

    /// [`EventStore::read_batch`] without the status.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_batch(after, limit).await?.events)
    }

    /// The highest position allocated so far (committed or not): an upper
    /// bound for lag reporting, not a safe reading position.
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// The global position of the event with this id, if it is stored.
    async fn event_position(&self, event_id: uuid::Uuid) -> Result<Option<u64>, StoreError>;

    /// Destroys every data key of `subject` in `tenant`: its personal data
    /// in stored events reads as erased from then on. Returns how many keys
    /// were destroyed (0 when none was left).
    async fn erase_subject(
        &self,
        tenant: &TenantId,
        subject: uuid::Uuid,
    ) -> Result<u64, StoreError>;

    /// A source of wake-ups when new events may be available.
    fn wake_ups(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Catch-up then live subscription to all events after `after`.
pub fn subscribe<S: EventStore + ?Sized>(store: std::sync::Arc<S>, after: u64) -> Subscription<S> {
    Subscription::new(store, after)
}
