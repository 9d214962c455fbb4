//! How far each projection has come, as seen by a query process: for
//! read-your-writes (`min_position`) and for saying which position an
//! answer reflects.
//!
//! Workers announce every committed checkpoint on [`CHANNEL`]; this keeps
//! the latest positions in memory from those notifications, and re-reads
//! the checkpoint table every second in case one was missed (or the
//! listener is reconnecting).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::runtime::CHANNEL;

/// The projections' positions, kept current in the background.
pub struct Positions {
    current: watch::Sender<HashMap<String, u64>>,
}

impl Positions {
    /// Starts following the checkpoints; the task ends when the returned
    /// value is dropped.
    pub fn follow(pool: PgPool) -> Arc<Self> {
        let (current, _) = watch::channel(HashMap::new());
        let positions = Arc::new(Self { current });
        let weak = Arc::downgrade(&positions);
        tokio::spawn(async move {
            let mut listener: Option<PgListener> = None;
            loop {
                let Some(positions) = weak.upgrade() else {
                    return;
                };
                if let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
                    "SELECT name, position FROM projection_checkpoints",
                )
                .fetch_all(&pool)
                .await
                {
                    for (name, position) in rows {
                        positions.advance(&name, position as u64);
                    }
                }
                if listener.is_none() {
                    if let Ok(mut l) = PgListener::connect_with(&pool).await {
                        if l.listen(CHANNEL).await.is_ok() {
                            listener = Some(l);
                        }
                    }
                }
                drop(positions);
                let deadline = tokio::time::sleep(Duration::from_secs(1));
                tokio::pin!(deadline);
                loop {
                    let Some(l) = listener.as_mut() else {
                        deadline.as_mut().await;
                        break;
                    };
                    tokio::select! {
                        _ = &mut deadline => break,
                        received = l.try_recv() => match received {
                            Ok(Some(n)) => {
                                let Some(positions) = weak.upgrade() else { return };
                                if let Some((name, at)) = n.payload().rsplit_once(':') {
                                    if let Ok(at) = at.parse() {
                                        positions.advance(name, at);
                                    }
                                }
                            }
                            // The connection dropped; notifications may
                            // have been lost: re-read the table now.
                            Ok(None) => break,
                            Err(_) => {
                                listener = None;
                                break;
                            }
                        },
                    }
                }
            }
        });
        positions
    }

    fn advance(&self, name: &str, at: u64) {
        self.current
            .send_if_modified(|map| match map.get_mut(name) {
                Some(p) if *p >= at => false,
                Some(p) => {
                    *p = at;
                    true
                }
                None => {
                    map.insert(name.to_owned(), at);
                    true
                }
            });
    }

    /// Follows every change of the known positions.
    pub fn subscribe(&self) -> watch::Receiver<HashMap<String, u64>> {
        self.current.subscribe()
    }

    /// The last position known for `name` (0 when none).
    pub fn position(&self, name: &str) -> u64 {
        self.current.borrow().get(name).copied().unwrap_or(0)
    }

    /// Waits until every projection in `names` has reached `min`, at most
    /// `timeout`. Returns the lowest of their positions when it gives up.
    pub async fn wait_for(&self, names: &[&str], min: u64, timeout: Duration) -> Result<(), u64> {
        let lowest = |map: &HashMap<String, u64>| {
            names
                .iter()
                .map(|n| map.get(*n).copied().unwrap_or(0))
                .min()
                .unwrap_or(u64::MAX)
        };
        let mut rx = self.current.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|map| lowest(map) >= min)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(lowest(&self.current.borrow())),
        }
    }
}
