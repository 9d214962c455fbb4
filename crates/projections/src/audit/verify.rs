//! Verifying the log against its seal.
//!
//! Events and seal rows are read side by side in position order. The first
//! of these ends the verification with a [`Problem`] naming its position:
//!
//! - `modified`: an event's digest is not the one sealed;
//! - `deleted`: a sealed position has no event;
//! - `inserted`: an event sits at a position the seal passed over (or
//!   between sealed ones);
//! - `reordered` is reported as `modified` at the first moved position
//!   (its bytes differ from what was sealed there);
//! - `chain`: the chain recomputed from the digests differs from a seal
//!   row's, or from a signed checkpoint's (seal rows rewritten to match
//!   rewritten events are caught here, at the first checkpoint after);
//! - `signature`: a checkpoint's signature does not verify with the key.
//!
//! Events after the seal's last row are not yet sealed and not judged.

use serde::Serialize;
use sqlx::{PgPool, Row as _};

use super::{chain, checkpoint_message, digest, hex, PublicKey, RawEvent, RAW_EVENTS};

/// Rows read per round trip.
const PAGE: i64 = 5000;

/// What went wrong, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub position: i64,
    pub kind: &'static str,
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Verified from this position (exclusive): the checkpoint started from.
    pub from: i64,
    /// The last sealed position looked at.
    pub sealed_through: i64,
    pub events_checked: u64,
    pub checkpoints_checked: u64,
    pub problem: Option<Problem>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

struct Checkpoint {
    position: i64,
    events: i64,
    chain: Vec<u8>,
    sealed_us: i64,
    signature: Vec<u8>,
}

/// Verifies the log from the last checkpoint at or before `from` (the
/// beginning for 0), with `key` for the checkpoints' signatures.
#[tracing::instrument(skip(pool, key))]
pub async fn verify(
    pool: &PgPool,
    key: &PublicKey,
    from: u64,
) -> Result<Verification, sqlx::Error> {
    let checkpoints: Vec<Checkpoint> = sqlx::query(
        "SELECT position, events, chain, sealed_at, signature FROM audit_checkpoints \
          WHERE position >= (SELECT coalesce(max(position), 0) FROM audit_checkpoints \
                              WHERE position <= $1) \
          ORDER BY position",
    )
    .bind(from as i64)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Checkpoint {
            position: r.try_get("position")?,
            events: r.try_get("events")?,
            chain: r.try_get("chain")?,
            sealed_us: r
                .try_get::<chrono::DateTime<chrono::Utc>, _>("sealed_at")?
                .timestamp_micros(),
            signature: r.try_get("signature")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let mut report = Verification {
        from: 0,
        sealed_through: 0,
        events_checked: 0,
        checkpoints_checked: 0,
        problem: None,
    };
    for c in &checkpoints {
        if !key.verifies(
            &checkpoint_message(c.position, c.events, &c.chain, c.sealed_us),
            &c.signature,
        ) {
            report.problem = Some(Problem {
                position: c.position,
                kind: "signature",
                detail: "the checkpoint's signature does not verify with the audit key".into(),
            });
            return Ok(report);
        }
    }
    // Start from the checkpoint at or before `from`, if there is one.
    let (mut running, mut n, mut after) = match checkpoints.first() {
        Some(c) if c.position <= from as i64 && from > 0 => {
            let chain: [u8; 32] = c.chain.clone().try_into().unwrap_or([0; 32]);
            (chain, c.events, c.position)
        }
        _ => ([0u8; 32], 0, 0),
    };
    report.from = after;
    let sealed_head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM audit_seal")
        .fetch_one(pool)
        .await?;
    // The checkpoints still to reach, in order.
    let ahead: Vec<&Checkpoint> = checkpoints.iter().filter(|c| c.position > after).collect();
    let mut next = 0;
    loop {
        let events = sqlx::query(&format!(
            "{RAW_EVENTS} WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
        ))
        .bind(after)
        .bind(sealed_head)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let sealed = sqlx::query(
            "SELECT position, n, digest, chain FROM audit_seal \
              WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        if events.is_empty() && sealed.is_empty() {
            break;
        }
        // Merge by position up to the end of the shorter page.
        let events: Vec<RawEvent> = events
            .iter()
            .map(RawEvent::from_row)
            .collect::<Result<_, _>>()?;
        let limit = match (events.last(), sealed.last()) {
            (Some(e), Some(s)) if events.len() as i64 == PAGE || sealed.len() as i64 == PAGE => {
                e.position.min(s.try_get::<i64, _>("position")?)
            }
            _ => i64::MAX,
        };
        let (mut ei, mut si) = (0, 0);
        loop {
            let e = events.get(ei).filter(|e| e.position <= limit);
            let s = sealed.get(si).filter(|s| {
                s.try_get::<i64, _>("position")
                    .map(|p| p <= limit)
                    .unwrap_or(false)
            });
            let (position, problem) = match (e, s) {
                (None, None) => break,
                (Some(e), None) => (
                    e.position,
                    Some(("inserted", "an event the seal passed over".to_owned())),
                ),
                (Some(e), Some(s)) => {
                    let sp: i64 = s.try_get("position")?;
                    if e.position < sp {
                        (
                            e.position,
                            Some((
                                "inserted",
                                "an event at a position the seal passed over".to_owned(),
                            )),
                        )
                    } else if e.position > sp {
                        (
                            sp,
                            Some(("deleted", "a sealed event is missing".to_owned())),
                        )
                    } else {
                        let d = digest(e);
                        let stored: Vec<u8> = s.try_get("digest")?;
                        if stored != d {
                            (
                                sp,
                                Some((
                                    "modified",
                                    format!(
                                        "sealed digest {} but the event hashes to {}",
                                        hex(&stored),
                                        hex(&d)
                                    ),
                                )),
                            )
                        } else {
                            running = chain(&running, &d);
                            n += 1;
                            let stored_chain: Vec<u8> = s.try_get("chain")?;
                            let stored_n: i64 = s.try_get("n")?;
                            if stored_chain != running || stored_n != n {
                                (sp, Some(("chain", "the seal row's chain is not the chain of the sealed digests".to_owned())))
                            } else {
                                (sp, None)
                            }
                        }
                    }
                }
                (None, Some(s)) => {
                    let sp: i64 = s.try_get("position")?;
                    (
                        sp,
                        Some(("deleted", "a sealed event is missing".to_owned())),
                    )
                }
            };
            if let Some((kind, detail)) = problem {
                report.problem = Some(Problem {
                    position,
                    kind,
                    detail,
                });
                return Ok(report);
            }
            ei += 1;
            si += 1;
            report.events_checked += 1;
            report.sealed_through = position;
            after = position;
            while let Some(c) = ahead.get(next) {
                if c.position > position {
                    break;
                }
                if c.position < position || c.chain != running || c.events != n {
                    report.problem = Some(Problem {
                        position: c.position,
                        kind: "chain",
                        detail: format!(
                            "the signed checkpoint at {} holds chain {} over {} events; \
                             the log gives {} over {n}",
                            c.position,
                            hex(&c.chain),
                            c.events,
                            hex(&running)
                        ),
                    });
                    return Ok(report);
                }
                report.checkpoints_checked += 1;
                next += 1;
            }
        }
        if limit == i64::MAX {
            break;
        }
    }
    if let Some(c) = ahead.get(next) {
        report.problem = Some(Problem {
            position: c.position,
            kind: "deleted",
            detail: "a signed checkpoint lies past the last sealed event".into(),
        });
    }
    Ok(report)
}
