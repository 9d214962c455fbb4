//! `Idempotency-Key`: the first answer to a command is kept per tenant and
//! key for 24 hours and replayed for a retry with the same request; the
//! same key with a different request is refused (422).
//!
//! A key is claimed before the command runs (a row with no answer yet), so
//! two concurrent requests with one key never both run: the second gets
//! 409 `idempotency.in_progress` and can retry. Server errors release the
//! claim, so a retry runs the command again.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";

/// Headers of an answer that a replay must repeat.
const KEPT_HEADERS: [&str; 2] = ["etag", "location"];

/// A claimed key: the answer must be recorded (or the claim released).
pub struct Claim {
    tenant: String,
    key: String,
}

/// A stored key: request hash, and the answer's status, body and headers
/// (no status yet while the first request runs).
type StoredKey = (Vec<u8>, Option<i16>, Option<Value>, Option<Value>);

/// What [`begin`] found.
pub enum Begin {
    /// No key was sent: just run the command.
    NoKey,
    /// The key is ours: run the command, then [`Claim::finish`].
    Claimed(Claim),
    /// An earlier answer to the same request.
    Replay(Response),
}

/// The `Idempotency-Key` of a request, validated.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "idempotency.invalid_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

fn request_hash(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// Claims `key` for this request, or finds the answer already given.
#[tracing::instrument(level = "debug", skip(pool, body))]
pub async fn begin(
    pool: &PgPool,
    tenant: &str,
    key: Option<String>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Begin, ApiError> {
    let Some(key) = key else {
        return Ok(Begin::NoKey);
    };
    let hash = request_hash(method, path, body);
    // Claim the key, taking over a row older than 24 hours.
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, key) DO UPDATE \
            SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, headers = NULL, created_at = now() \
          WHERE idempotency_keys.created_at < now() - interval '24 hours'",
    )
    .bind(tenant)
    .bind(&key)
    .bind(&hash)
    .execute(pool)
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("claiming an idempotency key")))?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(Begin::Claimed(Claim {
            tenant: tenant.to_owned(),
            key,
        }));
    }
    let row: Option<StoredKey> = sqlx::query_as(
        "SELECT request_hash, status, body, headers FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
    )
    .bind(tenant)
    .bind(&key)
    .fetch_optional(pool)
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading an idempotency key")))?;
    match row {
        Some((stored, _, _, _)) if stored != hash => Err(ApiError::Unprocessable {
            code: "idempotency.key_reused",
            message: "this Idempotency-Key was used for a different request".into(),
        }),
        Some((_, Some(status), body, headers)) => Ok(Begin::Replay(replay(status, body, headers))),
        Some((_, None, _, _)) => Err(ApiError::Conflict {
            code: "idempotency.in_progress",
            message: "a request with this Idempotency-Key is still being handled; retry shortly"
                .into(),
            details: None,
        }),
        // Released between our insert and read: let the client retry.
        None => Err(ApiError::Conflict {
            code: "idempotency.in_progress",
            message: "a request with this Idempotency-Key was just released; retry".into(),
            details: None,
        }),
    }
}

fn replay(status: i16, body: Option<Value>, headers: Option<Value>) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(body.unwrap_or(Value::Null))).into_response();
    if let Some(Value::Object(headers)) = headers {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

impl Claim {
    /// Records `response` as the answer to this key (for a 5xx: releases
    /// the key instead) and returns it.
    pub async fn finish(self, pool: &PgPool, response: Response) -> Response {
        let status = response.status();
        if status.is_server_error() {
            let released =
                sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
                    .bind(&self.tenant)
                    .bind(&self.key)
                    .execute(pool)
                    .await;
            if let Err(error) = released {
                tracing::warn!(%error, "could not release an idempotency key");
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(error) => {
                tracing::error!(%error, "could not buffer an answer to record it");
                return ApiError::Internal(anyhow::anyhow!("buffering the answer")).into_response();
            }
        };
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let headers: serde_json::Map<String, Value> = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), Value::String(value.to_owned())))
            })
            .collect();
        let stored = sqlx::query(
            "UPDATE idempotency_keys SET status = $3, body = $4, headers = $5 WHERE tenant_id = $1 AND key = $2",
        )
        .bind(&self.tenant)
        .bind(&self.key)
        .bind(status.as_u16() as i16)
        .bind(&json)
        .bind(Value::Object(headers))
        .execute(pool)
        .await;
        if let Err(error) = stored {
            // The command ran; failing the answer now would invite a retry
            // that runs it twice. Log and answer.
            tracing::error!(%error, "could not record the answer to an idempotency key");
        }
        Response::from_parts(parts, axum::body::Body::from(bytes))
    }
}
