//! Catch-up, then live: a subscription to all events after a position.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{EventStore, RecordedEvent, StoreError};

/// How long a subscription waits without any wake-up before it polls anyway
/// (the fallback when notifications are lost).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Delivers every event after a position exactly once, in global order:
/// first the backlog in batches, then new events as they commit. Woken by
/// the store's notifications with a polling fallback; never a busy loop.
pub struct Subscription<S: EventStore + ?Sized> {
    store: Arc<S>,
    position: u64,
    wake: watch::Receiver<u64>,
    poll_interval: Duration,
}

impl<S: EventStore + ?Sized> Subscription<S> {
    pub fn new(store: Arc<S>, after: u64) -> Self {
        let wake = store.wake_ups();
        Self {
            store,
            position: after,
            wake,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Sets the polling fallback interval.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The position of the last delivered event.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Waits for and returns the next non-empty batch of at most `max`
    /// events.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut gap_backoff = Duration::from_millis(1);
        loop {
            // Mark the current wake-up as seen before reading, so a wake-up
            // that arrives during the read is not lost.
            self.wake.borrow_and_update();
            let batch = self.store.read_batch(self.position, max.max(1)).await?;
            if let Some(last) = batch.events.last() {
                self.position = last.position;
                return Ok(batch.events);
            }
            let wait = if batch.blocked {
                // A lower position is still in flight (or aborted): look again
                // soon, backing off; its commit also sends a wake-up.
                let wait = gap_backoff;
                gap_backoff = (gap_backoff * 2).min(Duration::from_millis(50));
                wait
            } else {
                gap_backoff = Duration::from_millis(1);
                self.poll_interval
            };
            // Either a wake-up or the timeout: then read again.
            if let Ok(Err(_closed)) = tokio::time::timeout(wait, self.wake.changed()).await {
                tokio::time::sleep(wait).await;
            }
        }
    }
}
