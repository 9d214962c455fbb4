//! The time reactions act at: the system clock in production, a virtual
//! clock in tests (which move it forward by hand instead of waiting).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// Where the timer and delivery workers read the time, and how they wait
/// for it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Waits until `deadline` by this clock, or at most `max` of real time,
    /// whichever comes first. A virtual clock also returns early when it is
    /// moved.
    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
        max: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
        max: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        let wait = (deadline - Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(max);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that stands still until moved. Cheap to clone; clones share the
/// time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    moved: watch::Sender<DateTime<Utc>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        let (moved, _) = watch::channel(start);
        Self {
            now: Arc::new(Mutex::new(start)),
            moved,
        }
    }

    /// Moves the clock forward by `by` and wakes whoever waits on it.
    pub fn advance(&self, by: TimeDelta) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        let new = *now;
        drop(now);
        self.moved.send_replace(new);
        new
    }

    /// Sets the clock (forward or back) and wakes whoever waits on it.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.moved.send_replace(to);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
        max: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            if self.now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout(max, moved.changed()).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_virtual_clock_moves_only_when_told_and_wakes_sleepers() {
        let start = Utc::now();
        let clock = VirtualClock::new(start);
        assert_eq!(clock.now(), start);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(start + TimeDelta::hours(1), Duration::from_secs(60))
                    .await;
                clock.now()
            })
        };
        // The sleeper wakes on the move, long before its 60 s bound.
        let moved = clock.advance(TimeDelta::hours(2));
        let woke_at = tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken by the move")
            .unwrap();
        assert_eq!(woke_at, moved);
        assert_eq!(moved, start + TimeDelta::hours(2));
    }

    #[tokio::test]
    async fn the_system_clock_waits_at_most_the_bound() {
        let started = std::time::Instant::now();
        SystemClock
            .sleep_until(Utc::now() + TimeDelta::days(1), Duration::from_millis(20))
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
