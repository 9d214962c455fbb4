//! The seal projection: a running SHA-256 chain over the event log, with
//! signed checkpoints. It is never rebuilt: it is the record of what the
//! log was when it was sealed, which verification compares the log with.

use std::time::Duration;

use async_trait::async_trait;
use chronicle_store::RecordedEvent;
use chrono::Utc;
use sqlx::{PgConnection, Row as _};

use super::{chain, checkpoint_message, digest, AuditKey, RawEvent};
use crate::{ApplyError, Projection};

/// The seal's name (checkpoint key, `--only`).
pub const NAME: &str = "seal";

/// When the seal writes a signed checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// After this many events since the last checkpoint...
    pub events: i64,
    /// ...or this long, at the end of a batch.
    pub interval: Duration,
    /// The least time between two batches once caught up: the seal reads
    /// what accumulated meanwhile in one transaction instead of one per
    /// append, so sealing costs the writers little (`chronicle-bench seal`).
    pub pace: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            events: 1000,
            interval: Duration::from_secs(10),
            pace: Duration::from_secs(1),
        }
    }
}

/// The seal projection.
pub struct Seal {
    key: AuditKey,
    cadence: Cadence,
}

impl Seal {
    pub fn new(key: AuditKey, cadence: Cadence) -> Self {
        Self { key, cadence }
    }
}

#[async_trait]
impl Projection for Seal {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn rebuildable(&self) -> bool {
        false
    }

    fn pace(&self) -> Duration {
        self.cadence.pace
    }

    fn sees_stored(&self) -> bool {
        true
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // Asynchronous commit: the seal is a function of the log, so a batch
        // lost in a crash is sealed again, to the same chain, and the
        // writers' commits do not wait on the seal's WAL flushes.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *conn)
            .await?;
        let previous = sqlx::query(
            "SELECT position, n, chain FROM public.audit_seal ORDER BY position DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let (mut n, mut running) = match previous {
            Some(row) => {
                let before: i64 = row.try_get("position")?;
                if before >= first.position as i64 {
                    // Sealed already (a batch applied twice is refused by
                    // the checkpoint's compare-and-set; this is a guard).
                    return Err(ApplyError::Poison {
                        position: first.position,
                        reason: format!("the seal already covers position {before}"),
                    });
                }
                let chain: Vec<u8> = row.try_get("chain")?;
                let chain: [u8; 32] = chain.try_into().map_err(|_| ApplyError::Poison {
                    position: first.position,
                    reason: "a seal row's chain is not 32 bytes".into(),
                })?;
                (row.try_get::<i64, _>("n")?, chain)
            }
            None => (0, [0u8; 32]),
        };
        let mut positions = Vec::with_capacity(events.len());
        let mut ordinals = Vec::with_capacity(events.len());
        let mut digests: Vec<Vec<u8>> = Vec::with_capacity(events.len());
        let mut chains: Vec<Vec<u8>> = Vec::with_capacity(events.len());
        for event in events {
            // The events as stored (`sees_stored`): the bytes verification
            // reads back with `RAW_EVENTS`.
            let event = RawEvent::from_recorded(event);
            let d = digest(&event);
            running = chain(&running, &d);
            n += 1;
            positions.push(event.position);
            ordinals.push(n);
            digests.push(d.to_vec());
            chains.push(running.to_vec());
        }
        sqlx::query(
            "INSERT INTO public.audit_seal (position, n, digest, chain) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
        )
        .bind(&positions)
        .bind(&ordinals)
        .bind(&digests)
        .bind(&chains)
        .execute(&mut *conn)
        .await?;

        let Some(&at) = positions.last() else {
            return Ok(());
        };
        let last_checkpoint = sqlx::query(
            "SELECT events, (extract(epoch FROM now() - sealed_at) * 1000)::bigint AS age_ms \
               FROM public.audit_checkpoints ORDER BY position DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let due = match last_checkpoint {
            None => true,
            Some(row) => {
                let since = n - row.try_get::<i64, _>("events")?;
                let age_ms: i64 = row.try_get("age_ms")?;
                since >= self.cadence.events || age_ms >= self.cadence.interval.as_millis() as i64
            }
        };
        if due {
            // Microseconds, as the database keeps them and the signature
            // covers them.
            let sealed_us = Utc::now().timestamp_micros();
            let sealed_at =
                chrono::DateTime::<Utc>::from_timestamp_micros(sealed_us).unwrap_or_else(Utc::now);
            let signature = self
                .key
                .sign(&checkpoint_message(at, n, &running, sealed_us));
            sqlx::query(
                "INSERT INTO public.audit_checkpoints \
                     (position, events, chain, sealed_at, key_id, signature) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(at)
            .bind(n)
            .bind(running.to_vec())
            .bind(sealed_at)
            .bind(self.key.key_id())
            .bind(signature.to_vec())
            .execute(&mut *conn)
            .await?;
            metrics::gauge!("chronicle_seal_checkpoint_position").set(at as f64);
        }
        metrics::gauge!("chronicle_seal_position").set(at as f64);
        Ok(())
    }
}
