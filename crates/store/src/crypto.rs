//! Personal data encrypted at rest with a key per subject (crypto-shredding).
//!
//! An event's personal fields ([`crate::Personal`]) are replaced, before
//! the event is stored, by an envelope
//! `{"$enc": "v1", "k": "<key id>", "n": "<nonce>", "c": "<ciphertext>", "erased": <placeholder>}`:
//! the field's JSON value encrypted with AES-256-GCM under its subject's
//! data key (a random 96-bit nonce per field, the key id as associated
//! data). Readers get the plaintext back transparently while the key
//! exists. Erasing a subject destroys its keys: from then on every reader
//! gets the placeholder (`"[erased]"`, or an address that is one) in place
//! of the value, while the stored event, and the seal over it, stay as
//! they were.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{NewEvent, StoreError};

/// The marker of an encrypted value.
pub const MARK: &str = "$enc";

/// A subject's data key.
#[derive(Clone)]
pub struct DataKey {
    pub id: Uuid,
    pub subject: Uuid,
    pub key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({} of {})", self.id, self.subject)
    }
}

impl DataKey {
    /// A new random key for `subject`.
    pub fn generate(subject: Uuid) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self {
            id: Uuid::now_v7(),
            subject,
            key,
        }
    }
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// `value` encrypted under `key`, with its placeholder beside it.
fn seal(key: &DataKey, value: &Value, erased: &Value) -> Result<Value, StoreError> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let plaintext = serde_json::to_vec(value).map_err(|e| StoreError::InvalidEvent {
        index: None,
        reason: e.to_string(),
    })?;
    let ciphertext = cipher(&key.key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: key.id.as_bytes(),
            },
        )
        .map_err(|_| StoreError::InvalidEvent {
            index: None,
            reason: "personal data could not be encrypted".into(),
        })?;
    Ok(json!({
        MARK: "v1",
        "k": key.id,
        "n": STANDARD.encode(nonce),
        "c": STANDARD.encode(ciphertext),
        "erased": erased,
    }))
}

/// The plaintext of an envelope, or `None` when it does not open.
fn open(key: &DataKey, envelope: &Value) -> Option<Value> {
    let nonce = STANDARD.decode(envelope["n"].as_str()?).ok()?;
    let ciphertext = STANDARD.decode(envelope["c"].as_str()?).ok()?;
    if nonce.len() != 12 {
        return None;
    }
    let plaintext = cipher(&key.key)
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: key.id.as_bytes(),
            },
        )
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

/// `event` with its personal fields encrypted under `key` (a field absent
/// from the data is skipped).
pub fn encrypt(event: &NewEvent, key: &DataKey) -> Result<NewEvent, StoreError> {
    let mut out = event.clone();
    if let Some(personal) = &event.personal {
        for field in &personal.fields {
            if let Some(slot) = out.data.pointer_mut(&field.pointer) {
                if slot.is_null() {
                    continue;
                }
                *slot = seal(key, slot, &field.erased)?;
            }
        }
    }
    out.personal = None;
    Ok(out)
}

/// Whether stored data may hold encrypted values (a cheap text check).
pub fn may_hold_envelopes(text: &str) -> bool {
    text.contains("\"$enc\"")
}

fn is_envelope(v: &Value) -> bool {
    v.get(MARK).is_some_and(|m| m == "v1") && v.get("k").is_some()
}

/// The ids of the keys `data`'s envelopes are encrypted with.
pub fn key_ids(data: &Value, out: &mut Vec<Uuid>) {
    match data {
        Value::Object(map) if is_envelope(data) => {
            if let Some(id) = map
                .get("k")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                out.push(id);
            }
        }
        Value::Object(map) => map.values().for_each(|v| key_ids(v, out)),
        Value::Array(items) => items.iter().for_each(|v| key_ids(v, out)),
        _ => {}
    }
}

/// Replaces every envelope in `data` by its plaintext (its key is in
/// `keys`) or its placeholder (the key is gone). Returns the subjects whose
/// data was revealed.
pub fn reveal(data: &mut Value, keys: &HashMap<Uuid, DataKey>) -> Vec<Uuid> {
    let mut subjects = Vec::new();
    reveal_into(data, keys, &mut subjects);
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

fn reveal_into(data: &mut Value, keys: &HashMap<Uuid, DataKey>, subjects: &mut Vec<Uuid>) {
    if is_envelope(data) {
        let key = data["k"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
            .and_then(|id| keys.get(&id));
        let opened = key.and_then(|k| open(k, data).map(|v| (k.subject, v)));
        *data = match opened {
            Some((subject, value)) => {
                subjects.push(subject);
                value
            }
            None => data["erased"].clone(),
        };
        return;
    }
    match data {
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| reveal_into(v, keys, subjects)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| reveal_into(v, keys, subjects)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metadata, Personal, PersonalField, TypeName};

    fn event() -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: TypeName::parse("user.registered").unwrap(),
            schema_version: 1,
            data: json!({ "name": "Ann Example", "email": "ann@example.com", "roles": ["expert"] }),
            metadata: Metadata::default(),
            personal: Some(Personal {
                subject: Uuid::from_u128(5),
                fields: vec![
                    PersonalField {
                        pointer: "/name".into(),
                        erased: json!("[erased]"),
                    },
                    PersonalField {
                        pointer: "/email".into(),
                        erased: json!("erased@erased.invalid"),
                    },
                ],
            }),
        }
    }

    #[test]
    fn personal_fields_are_unreadable_stored_and_revealed_with_the_key() {
        let key = DataKey::generate(Uuid::from_u128(5));
        let stored = encrypt(&event(), &key).unwrap();
        let text = stored.data.to_string();
        assert!(
            !text.contains("Ann Example") && !text.contains("ann@example"),
            "{text}"
        );
        assert!(may_hold_envelopes(&text));
        assert_eq!(stored.data["roles"], json!(["expert"]));
        let mut ids = Vec::new();
        key_ids(&stored.data, &mut ids);
        assert_eq!(ids, [key.id, key.id]);

        let mut data = stored.data.clone();
        let keys = HashMap::from([(key.id, key.clone())]);
        assert_eq!(reveal(&mut data, &keys), [Uuid::from_u128(5)]);
        assert_eq!(data, event().data);
    }

    #[test]
    fn without_the_key_the_placeholders_stand_in() {
        let key = DataKey::generate(Uuid::from_u128(5));
        let mut data = encrypt(&event(), &key).unwrap().data;
        assert!(reveal(&mut data, &HashMap::new()).is_empty());
        assert_eq!(
            data,
            json!({ "name": "[erased]", "email": "erased@erased.invalid", "roles": ["expert"] })
        );
    }

    #[test]
    fn another_key_or_a_changed_ciphertext_does_not_open() {
        let key = DataKey::generate(Uuid::from_u128(5));
        let stored = encrypt(&event(), &key).unwrap().data;
        // The same id with other key bytes: authentication fails.
        let mut forged = DataKey::generate(Uuid::from_u128(5));
        forged.id = key.id;
        let mut data = stored.clone();
        reveal(&mut data, &HashMap::from([(key.id, forged)]));
        assert_eq!(data["name"], "[erased]");
        let mut tampered = stored.clone();
        let c = tampered["name"]["c"].as_str().unwrap().to_owned();
        let first = if c.starts_with('A') { 'B' } else { 'A' };
        let flipped: String = std::iter::once(first).chain(c.chars().skip(1)).collect();
        tampered["name"]["c"] = json!(flipped);
        reveal(&mut tampered, &HashMap::from([(key.id, key)]));
        assert_eq!(tampered["name"], "[erased]");
    }
}
