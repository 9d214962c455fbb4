//! Self-verifying exports of a tenant's events.
//!
//! An export is NDJSON: one line per event in global order
//! (`{"event": {...}}`, with the event's sealed digest when the seal covers
//! it), then one closing line `{"manifest": {...}}` with the count, the
//! first and last positions, the SHA-256 chain of the event lines, the
//! seal's chain at the last position, and an Ed25519 signature over all of
//! that. [`verify_export`] checks an export with nothing but the file (and,
//! to pin it, the public key): a changed, missing, added or reordered line,
//! or a changed manifest, fails it.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

use chronicle_store::postgres::PgEventStore;
use uuid::Uuid;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row as _};

use super::{hex, unhex, AuditKey, PublicKey};

/// Events read per round trip.
const PAGE: i64 = 2000;

/// Which events an export holds.
#[derive(Debug, Clone)]
pub struct Selection {
    pub tenant: String,
    /// From this position or time (inclusive).
    pub from: Option<Bound>,
    /// Up to this position or time (inclusive).
    pub to: Option<Bound>,
}

/// A position or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Position(u64),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for Bound {
    type Err = String;

    /// `1234` (a position) or an RFC 3339 time.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(p) = s.parse::<u64>() {
            return Ok(Self::Position(p.min(i64::MAX as u64)));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self::Time(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a position nor an RFC 3339 time"))
    }
}

/// The running hash of the event lines.
fn line_chain(previous: &[u8; 32], line: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(Sha256::digest(line.as_bytes()));
    h.finalize().into()
}

fn manifest_message(m: &Value) -> Vec<u8> {
    format!(
        "chronicle-export-v1|{}|{}|{}|{}|{}|{}|{}",
        m["tenant"].as_str().unwrap_or(""),
        m["count"],
        m["first_position"],
        m["last_position"],
        m["lines_sha256"].as_str().unwrap_or(""),
        m["seal"]["chain"].as_str().unwrap_or(""),
        m["seal"]["position"],
    )
    .into_bytes()
}

struct State {
    pool: PgPool,
    store: Arc<PgEventStore>,
    revealed: Arc<Mutex<BTreeSet<Uuid>>>,
    key: AuditKey,
    selection: Selection,
    after: i64,
    count: u64,
    first: Option<i64>,
    last: Option<i64>,
    chain: [u8; 32],
    done: bool,
    buffered: std::collections::VecDeque<String>,
}

fn bounds(selection: &Selection) -> (i64, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let (mut lo, mut hi, mut since, mut until) = (0, i64::MAX, None, None);
    match selection.from {
        Some(Bound::Position(p)) => lo = (p as i64).saturating_sub(1),
        Some(Bound::Time(t)) => since = Some(t),
        None => {}
    }
    match selection.to {
        Some(Bound::Position(p)) => hi = p as i64,
        Some(Bound::Time(t)) => until = Some(t),
        None => {}
    }
    (lo, hi, since, until)
}

/// The export's lines (each without its newline), produced page by page:
/// event lines, then the manifest. Personal fields show as the store
/// reveals them (decrypted, or erased); the subjects revealed are added to
/// `revealed` as the export goes.
pub fn export(
    store: Arc<PgEventStore>,
    key: AuditKey,
    selection: Selection,
    revealed: Arc<Mutex<BTreeSet<Uuid>>>,
) -> impl Stream<Item = Result<String, sqlx::Error>> + Send + 'static {
    let (lo, _, _, _) = bounds(&selection);
    let state = State {
        pool: store.pool().clone(),
        store,
        revealed,
        key,
        selection,
        after: lo,
        count: 0,
        first: None,
        last: None,
        chain: [0; 32],
        done: false,
        buffered: Default::default(),
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(line) = s.buffered.pop_front() {
                return Some((Ok(line), s));
            }
            if s.done {
                return None;
            }
            match next_page(&mut s).await {
                Ok(()) => continue,
                Err(e) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
            }
        }
    })
}

async fn next_page(s: &mut State) -> Result<(), sqlx::Error> {
    let (_, hi, since, until) = bounds(&s.selection);
    let rows = sqlx::query(
        "SELECT e.position, e.event_id, e.tenant_id, e.stream_id, e.stream_type, e.stream_version, \
                e.event_type, e.schema_version, e.recorded_at, e.data, e.metadata, a.digest \
           FROM events e LEFT JOIN audit_seal a ON a.position = e.position \
          WHERE e.tenant_id = $1 AND e.position > $2 AND e.position <= $3 \
            AND ($4::timestamptz IS NULL OR e.recorded_at >= $4) \
            AND ($5::timestamptz IS NULL OR e.recorded_at <= $5) \
          ORDER BY e.position LIMIT $6",
    )
    .bind(&s.selection.tenant)
    .bind(s.after)
    .bind(hi)
    .bind(since)
    .bind(until)
    .bind(PAGE)
    .fetch_all(&s.pool)
    .await?;
    let mut data: Vec<Value> = rows
        .iter()
        .map(|r| r.try_get::<Value, _>("data"))
        .collect::<Result<_, _>>()?;
    let subjects = s
        .store
        .reveal_values(&mut data)
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("revealing personal data: {e}")))?;
    if let Ok(mut revealed) = s.revealed.lock() {
        revealed.extend(subjects.into_iter().flatten());
    }
    for (row, data) in rows.iter().zip(data) {
        let position: i64 = row.try_get("position")?;
        let digest: Option<Vec<u8>> = row.try_get("digest")?;
        let line = json!({ "event": {
            "position": position,
            "event_id": row.try_get::<uuid::Uuid, _>("event_id")?,
            "tenant": row.try_get::<String, _>("tenant_id")?,
            "stream_id": row.try_get::<String, _>("stream_id")?,
            "stream_type": row.try_get::<String, _>("stream_type")?,
            "stream_version": row.try_get::<i64, _>("stream_version")?,
            "type": row.try_get::<String, _>("event_type")?,
            "schema_version": row.try_get::<i16, _>("schema_version")?,
            "recorded_at": row.try_get::<DateTime<Utc>, _>("recorded_at")?,
            "data": data,
            "metadata": row.try_get::<Value, _>("metadata")?,
            "sealed_digest": digest.as_deref().map(hex),
        }})
        .to_string();
        s.chain = line_chain(&s.chain, &line);
        s.count += 1;
        s.first.get_or_insert(position);
        s.last = Some(position);
        s.after = position;
        s.buffered.push_back(line);
    }
    if (rows.len() as i64) < PAGE {
        s.done = true;
        let seal = match s.last {
            Some(last) => sqlx::query(
                "SELECT position, chain FROM audit_seal WHERE position <= $1 \
                 ORDER BY position DESC LIMIT 1",
            )
            .bind(last)
            .fetch_optional(&s.pool)
            .await?
            .map(|r| -> Result<Value, sqlx::Error> {
                Ok(json!({
                    "position": r.try_get::<i64, _>("position")?,
                    "chain": hex(&r.try_get::<Vec<u8>, _>("chain")?),
                }))
            })
            .transpose()?,
            None => None,
        }
        .unwrap_or_else(|| json!({ "position": null, "chain": null }));
        let mut manifest = json!({
            "format": "chronicle-export-v1",
            "tenant": s.selection.tenant,
            "count": s.count,
            "first_position": s.first,
            "last_position": s.last,
            "lines_sha256": hex(&s.chain),
            "seal": seal,
            "exported_at": Utc::now(),
            "key_id": s.key.key_id(),
            "public_key": s.key.public().to_hex(),
        });
        manifest["signature"] = json!(hex(&s.key.sign(&manifest_message(&manifest))));
        s.buffered
            .push_back(json!({ "manifest": manifest }).to_string());
    }
    Ok(())
}

/// What [`verify_export`] found in a sound export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportCheck {
    pub tenant: String,
    pub count: u64,
    pub first_position: Option<i64>,
    pub last_position: Option<i64>,
    pub key_id: String,
}

/// Checks an export: every event line in increasing position order, their
/// count, first and last positions and hash chain as the manifest says,
/// the manifest signed by its key (which must be `pinned` when given).
pub fn verify_export(
    reader: impl BufRead,
    pinned: Option<&PublicKey>,
) -> Result<ExportCheck, String> {
    let mut chain = [0u8; 32];
    let (mut count, mut first, mut last) = (0u64, None::<i64>, None::<i64>);
    let mut manifest: Option<Value> = None;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| format!("line {number}: cannot be read: {e}"))?;
        if manifest.is_some() {
            return Err(format!("line {number}: a line after the manifest"));
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|e| format!("line {number}: not JSON: {e}"))?;
        if let Some(m) = value.get("manifest") {
            manifest = Some(m.clone());
            continue;
        }
        let position = value["event"]["position"]
            .as_i64()
            .ok_or_else(|| format!("line {number}: not an event line"))?;
        if last.is_some_and(|l| position <= l) {
            return Err(format!("line {number}: position {position} out of order"));
        }
        chain = line_chain(&chain, &line);
        count += 1;
        first.get_or_insert(position);
        last = Some(position);
    }
    let m = manifest.ok_or("the export has no manifest (cut short?)")?;
    let mismatch = |what: &str, said: &Value, found: &dyn std::fmt::Debug| {
        format!("the manifest says {what} {said}, the lines give {found:?}")
    };
    if m["count"].as_u64() != Some(count) {
        return Err(mismatch("count", &m["count"], &count));
    }
    if m["first_position"].as_i64() != first {
        return Err(mismatch("first_position", &m["first_position"], &first));
    }
    if m["last_position"].as_i64() != last {
        return Err(mismatch("last_position", &m["last_position"], &last));
    }
    if m["lines_sha256"].as_str() != Some(hex(&chain).as_str()) {
        return Err(
            "the event lines do not hash to the manifest's lines_sha256: \
                    a line was changed, added, removed or moved"
                .into(),
        );
    }
    let key = PublicKey::from_hex(m["public_key"].as_str().unwrap_or(""))
        .ok_or("the manifest's public_key is not an Ed25519 key")?;
    if let Some(pinned) = pinned {
        if *pinned != key {
            return Err(format!(
                "the export is signed by key {}, not the expected {}",
                key.key_id(),
                pinned.key_id()
            ));
        }
    }
    let signature = unhex(m["signature"].as_str().unwrap_or(""))
        .ok_or("the manifest's signature is not hex")?;
    if !key.verifies(&manifest_message(&m), &signature) {
        return Err("the manifest's signature does not verify".into());
    }
    Ok(ExportCheck {
        tenant: m["tenant"].as_str().unwrap_or("").to_owned(),
        count,
        first_position: first,
        last_position: last,
        key_id: key.key_id(),
    })
}
