//! Tamper evidence: the seal over the event log, its verification, and
//! self-verifying exports.
//!
//! The seal ([`seal::Seal`], a projection) hashes every event in global
//! order: each event's canonical bytes ([`canonical`]: envelope, data and
//! metadata as stored) give its digest, and the chain is
//! `chain(n) = SHA-256(chain(n-1) || digest(n))` from 32 zero bytes. It
//! keeps one row per event (`audit_seal`: position, digest, chain) and,
//! every N events or T seconds, a checkpoint (`audit_checkpoints`:
//! position, count, chain, time) signed with the deployment's Ed25519 key.
//! [`verify::verify`] recomputes digests and chain from the events and
//! compares them with the rows and the signed checkpoints, naming the first
//! position where they part. Auditors keep copies of the checkpoints (and
//! the public key) outside the system, so that even a database superuser
//! who rewrites events and seal rows together is caught at the next
//! checkpoint they hold.

pub mod export;
pub mod seal;
pub mod verify;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The SQL that reads events as the seal hashes them (positions and times
/// as integers, data and metadata as their stored JSON text).
pub(crate) const RAW_EVENTS: &str =
    "SELECT position, event_id, tenant_id, stream_id, stream_type, \
     stream_version, event_type, schema_version, \
     (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_us, \
     data::text AS data, metadata::text AS metadata FROM public.events";

/// An event as the seal sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub position: i64,
    pub event_id: uuid::Uuid,
    pub tenant_id: String,
    pub stream_id: String,
    pub stream_type: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i16,
    /// `recorded_at` in microseconds since the Unix epoch.
    pub recorded_us: i64,
    pub data: String,
    pub metadata: String,
}

impl RawEvent {
    /// An event read through the store, as stored (not revealed): the same
    /// fields `RAW_EVENTS` reads (the store reads data and metadata as
    /// their JSON text; `recorded_at` has microsecond precision).
    pub fn from_recorded(e: &chronicle_store::RecordedEvent) -> Self {
        Self {
            position: e.position as i64,
            event_id: e.event_id,
            tenant_id: e.tenant.clone(),
            stream_id: e.stream_id.clone(),
            stream_type: e.stream_type.clone(),
            stream_version: e.stream_version as i64,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version as i16,
            recorded_us: e.recorded_at.timestamp_micros(),
            data: e.data.get().to_owned(),
            metadata: e.raw_metadata.get().to_owned(),
        }
    }

    pub(crate) fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Self {
            position: row.try_get("position")?,
            event_id: row.try_get("event_id")?,
            tenant_id: row.try_get("tenant_id")?,
            stream_id: row.try_get("stream_id")?,
            stream_type: row.try_get("stream_type")?,
            stream_version: row.try_get("stream_version")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            recorded_us: row.try_get("recorded_us")?,
            data: row.try_get("data")?,
            metadata: row.try_get("metadata")?,
        })
    }
}

/// The canonical bytes of an event: every envelope field, then data and
/// metadata, each text length-prefixed, integers big-endian.
pub fn canonical(e: &RawEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + e.data.len() + e.metadata.len());
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    out.extend_from_slice(b"chronicle-event-v1");
    out.extend_from_slice(&e.position.to_be_bytes());
    out.extend_from_slice(e.event_id.as_bytes());
    text(&mut out, &e.tenant_id);
    text(&mut out, &e.stream_id);
    text(&mut out, &e.stream_type);
    out.extend_from_slice(&e.stream_version.to_be_bytes());
    text(&mut out, &e.event_type);
    out.extend_from_slice(&e.schema_version.to_be_bytes());
    out.extend_from_slice(&e.recorded_us.to_be_bytes());
    text(&mut out, &e.data);
    text(&mut out, &e.metadata);
    out
}

/// SHA-256 of an event's canonical bytes.
pub fn digest(e: &RawEvent) -> [u8; 32] {
    Sha256::digest(canonical(e)).into()
}

/// The chain after `digest`.
pub fn chain(previous: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(digest);
    h.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The deployment's audit signing key.
#[derive(Clone)]
pub struct AuditKey {
    key: SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.key_id())
    }
}

impl AuditKey {
    /// The key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    pub fn key_id(&self) -> String {
        self.public().key_id()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An audit public key: verifies checkpoints and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From the 64 hex characters of [`PublicKey::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes: [u8; 32] = unhex(s.trim())?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(Self)
    }

    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// The first 16 hex characters of the SHA-256 of the key.
    pub fn key_id(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes())[..8])
    }

    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify(message, &signature).is_ok()
    }
}

/// What a seal checkpoint's signature covers.
pub fn checkpoint_message(position: i64, events: i64, chain: &[u8], sealed_at_us: i64) -> Vec<u8> {
    format!(
        "chronicle-seal-v1|{position}|{events}|{}|{sealed_at_us}",
        hex(chain)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RawEvent {
        RawEvent {
            position: 7,
            event_id: uuid::Uuid::from_u128(1),
            tenant_id: "acme".into(),
            stream_id: "s".into(),
            stream_type: "ticket".into(),
            stream_version: 1,
            event_type: "ticket.opened".into(),
            schema_version: 1,
            recorded_us: 1_700_000_000_000_000,
            data: r#"{"a": 1}"#.into(),
            metadata: "{}".into(),
        }
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = digest(&event());
        let mut changes: Vec<RawEvent> = Vec::new();
        let mut e = event();
        e.position = 8;
        changes.push(e);
        let mut e = event();
        e.tenant_id = "acm".into();
        e.stream_id = "es".into();
        changes.push(e);
        let mut e = event();
        e.data = r#"{"a": 2}"#.into();
        changes.push(e);
        let mut e = event();
        e.metadata = r#"{"actor": "x"}"#.into();
        changes.push(e);
        let mut e = event();
        e.recorded_us += 1;
        changes.push(e);
        for changed in changes {
            assert_ne!(digest(&changed), base, "{changed:?}");
        }
    }

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let key = AuditKey::from_seed([7; 32]);
        let message = checkpoint_message(10, 10, &[1; 32], 5);
        let signature = key.sign(&message);
        let public = PublicKey::from_hex(&key.public().to_hex()).unwrap();
        assert!(public.verifies(&message, &signature));
        assert!(!public.verifies(&checkpoint_message(10, 11, &[1; 32], 5), &signature));
        let other = AuditKey::from_seed([8; 32]).public();
        assert!(!other.verifies(&message, &signature));
        assert_eq!(key.key_id().len(), 16);
    }
}
