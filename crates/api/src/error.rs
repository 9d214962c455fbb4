//! The one place where errors become HTTP answers.
//!
//! Every error body has the shape of DESIGN.md (seed 002):
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`.
//! 5xx details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input (400). `details` may carry field errors:
    /// `{"fields": {"title": "must not be empty"}}`.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// Missing, expired or badly signed credentials (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Authenticated, but the role may not do this (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// No such resource for this tenant (404). Another tenant's entity is
    /// also this: its existence is not revealed.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The domain refuses the command (409), with the domain's code.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// `If-Match` named another version (412); nothing was written.
    #[error("the entity is at version {actual}, not {expected}")]
    PreconditionFailed { expected: u64, actual: u64 },
    /// The path exists, the method does not (405).
    #[error("this method is not allowed on this endpoint")]
    MethodNotAllowed,
    /// The body is larger than the limit (413).
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not JSON (415).
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    /// Misuse of an idempotency key (422).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// Rate limited (429); retry after this many seconds.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The request took longer than the configured timeout (503).
    #[error("the request took longer than {secs} s")]
    Timeout { secs: u64 },
    /// The read models behind a query did not reach the `min_position`
    /// asked for within the wait bound (503, retry shortly).
    #[error("the read models reflect position {reached}, not yet {required}; retry shortly")]
    Lagging { required: u64, reached: u64 },
    /// A dependency is down (503).
    #[error("{message}")]
    Unavailable { message: String },
    /// A bug or an unexpected failure (500). Logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound {
            code: "not_found",
            message: format!("{what} not found"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } | Self::Unavailable { .. } | Self::Lagging { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code sent in the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::PreconditionFailed { .. } => "version_mismatch",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            Self::Lagging { .. } => "projection_lagging",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::BadRequest { details, .. } | Self::Conflict { details, .. } => {
                details.clone().unwrap_or_else(|| json!({}))
            }
            Self::PreconditionFailed { expected, actual } => {
                json!({ "expected": expected, "actual": actual })
            }
            Self::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            Self::TooManyRequests { retry_after_secs } => {
                json!({ "retry_after_secs": retry_after_secs })
            }
            Self::Lagging { required, reached } => {
                json!({ "min_position": required, "position": reached })
            }
            _ => json!({}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "internal error; see the server log for this request id".to_owned()
            }
            Self::Timeout { .. } => {
                tracing::warn!("request timed out");
                self.to_string()
            }
            Self::Unavailable { message } => {
                tracing::warn!(%message, "unavailable");
                message.clone()
            }
            other => other.to_string(),
        };
        let body = json!({
            "error": { "code": self.code(), "message": message, "details": self.details() }
        });
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            Self::TooManyRequests { retry_after_secs } => Some(retry_after_secs),
            Self::Lagging { .. } | Self::Unavailable { .. } => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// A database error that says nothing about the request and goes away by
/// itself: the connection broke (the server restarted, see
/// `database.rs`), the pool is exhausted, or the transaction lost a
/// deadlock or serialization race. Answered 503 with `Retry-After`.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }),
        _ => false,
    }
}

impl From<chronicle_store::StoreError> for ApiError {
    fn from(error: chronicle_store::StoreError) -> Self {
        use chronicle_store::StoreError as E;
        match error {
            E::Conflict { expected, actual } => Self::Conflict {
                code: "version_conflict",
                message: format!(
                    "the entity changed concurrently: expected version {expected}, found {actual}"
                ),
                details: Some(json!({ "actual": actual })),
            },
            E::Database(e) if transient(&e) => Self::Unavailable {
                message: format!("the database is unavailable for a moment ({e}); retry"),
            },
            E::Database(e) => Self::Internal(anyhow::Error::new(e).context("event store")),
            e if e.is_invalid_input() => Self::BadRequest {
                code: e.code(),
                message: e.to_string(),
                details: None,
            },
            e => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_have_the_documented_shape_and_hide_internals() {
        let response = ApiError::Internal(anyhow::anyhow!("secret stack detail")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret"));

        let response = ApiError::TooManyRequests {
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
