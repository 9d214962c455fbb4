//! Request limits (body size, time), JSON bodies, and the error-format
//! fallbacks for unknown routes and wrong methods.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The limits every request is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

/// Middleware: refuses a declared body over the limit before reading it
/// (413) and answers 503 when the handler takes longer than the timeout.
/// Bodies without a length are cut at the limit by `DefaultBodyLimit`.
pub async fn enforce(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return ApiError::PayloadTooLarge {
            limit: limits.max_body_bytes,
        }
        .into_response();
    }
    let mut request = request;
    request.extensions_mut().insert(limits);
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout {
            secs: limits.request_timeout.as_secs(),
        }
        .into_response(),
    }
}

/// Fallback for paths no route matches: 404 in the error format.
pub async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "route_not_found",
        message: "no such endpoint".into(),
    }
}

/// Fallback for a known path with another method: 405 in the error format.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A JSON request body whose rejections are in the error format: 415 when
/// the content type is not `application/json`, 413 over the body limit,
/// 400 for malformed JSON or the wrong shape.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let limit = request
            .extensions()
            .get::<Limits>()
            .map(|l| l.max_body_bytes);
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType {
                message: "the body must be JSON with `Content-Type: application/json`".into(),
            }),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(
                "invalid_body",
                format!(
                    "the body does not have the expected shape: {}",
                    e.body_text()
                ),
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request(
                "malformed_json",
                "the body is not valid JSON",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge {
                    limit: limit.unwrap_or_default(),
                })
            }
            Err(e) => Err(ApiError::bad_request("unreadable_body", e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    fn app(limits: Limits) -> Router {
        async fn echo(ApiJson(body): ApiJson<Value>) -> axum::Json<Value> {
            axum::Json(body)
        }
        async fn stuck() -> &'static str {
            std::future::pending::<()>().await;
            "never"
        }
        Router::new()
            .route("/echo", post(echo))
            .route("/stuck", get(stuck))
            .layer(DefaultBodyLimit::max(limits.max_body_bytes))
            .layer(axum::middleware::from_fn_with_state(limits, enforce))
    }

    const LIMITS: Limits = Limits {
        max_body_bytes: 64,
        request_timeout: Duration::from_secs(30),
    };

    async fn send(app: Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn post_echo(content_type: &str, body: Body) -> Request<Body> {
        Request::post("/echo")
            .header("content-type", content_type)
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn json_bodies_are_checked_in_the_error_format() {
        let (status, body) = send(
            app(LIMITS),
            post_echo("application/json", Body::from(r#"{"a":1}"#)),
        )
        .await;
        assert_eq!((status, body["a"].clone()), (StatusCode::OK, 1.into()));

        let (status, body) = send(app(LIMITS), post_echo("text/plain", Body::from("{}"))).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["error"]["code"], "unsupported_media_type");

        let (status, body) =
            send(app(LIMITS), post_echo("application/json", Body::from("{"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");

        // A streamed body (no Content-Length) over the limit.
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(bytes_of(" ".repeat(16)))),
        );
        let (status, body) = send(
            app(LIMITS),
            post_echo("application/json", Body::from_stream(chunks)),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["details"]["limit_bytes"], 64);
    }

    fn bytes_of(s: String) -> axum::body::Bytes {
        axum::body::Bytes::from(s)
    }

    #[tokio::test]
    async fn slow_requests_time_out_with_503() {
        let limits = Limits {
            request_timeout: Duration::from_millis(50),
            ..LIMITS
        };
        let (status, body) = send(
            app(limits),
            Request::get("/stuck").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "timeout");
    }
}
