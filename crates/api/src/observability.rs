//! Request ids, a tracing span per request, and Prometheus metrics.
//!
//! Every response carries `X-Request-Id`: the client's, when it is sane (1
//! to 128 visible ASCII characters), or a generated UUIDv7. Handlers get it
//! as the [`RequestId`] extension. Each request runs in an `http` span with
//! its method, route (the matched pattern, never the raw path), request id,
//! status and latency.
//!
//! Metrics go through the `metrics` facade to one process-wide Prometheus
//! recorder, installed on first use, rendered at `GET /metrics`. The
//! metric names other crates record are the constants below.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

/// The header carrying the request id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Counter: HTTP requests by `method`, `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Histogram: HTTP latency in seconds by `method` and `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Counter: commands handled by `command` and `outcome`.
pub const COMMANDS_TOTAL: &str = "chronicle_commands_total";
/// Counter: appends refused for a version conflict.
pub const COMMAND_CONFLICTS_TOTAL: &str = "chronicle_command_conflicts_total";
/// Histogram: event-store append latency in seconds.
pub const APPEND_DURATION_SECONDS: &str = "chronicle_append_duration_seconds";
/// Gauge: 1 while this process's last database probe succeeded, else 0.
pub const DATABASE_UP: &str = "chronicle_database_up";
/// Histogram: seconds from a timer's due time to its firing.
const TIMER_FIRE_DELAY_SECONDS: &str = "chronicle_timer_fire_delay_seconds";

/// How often [`watch_database`] probes the database.
pub const DATABASE_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Timers fire late by seconds to hours (after an outage).
const DELAY_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// This request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string())))
    }
}

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    ((1..=128).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic))
        .then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// The process-wide Prometheus handle; installs the recorder on first use.
/// Safe to call from any number of apps in one process.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Every `*_seconds` histogram gets buckets (a histogram, not a
        // summary): buckets add up across processes in PromQL
        // (`histogram_quantile` over `sum by (le)`), quantiles do not.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(TIMER_FIRE_DELAY_SECONDS.into()),
                    DELAY_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            Err(error) => {
                // Someone else installed a global recorder: keep serving
                // /metrics, which then shows only what reaches this one.
                tracing::warn!(%error, "cannot install the Prometheus recorder");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by method, route and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "HTTP request latency by method and route"
    );
    describe_counter!(COMMANDS_TOTAL, "commands handled by command and outcome");
    describe_counter!(
        COMMAND_CONFLICTS_TOTAL,
        "appends refused for a version conflict"
    );
    describe_histogram!(
        APPEND_DURATION_SECONDS,
        Unit::Seconds,
        "event-store append latency"
    );
    metrics::describe_gauge!(
        DATABASE_UP,
        "1 while this process's last database probe succeeded, else 0"
    );
}

/// Probes the database every [`DATABASE_PROBE_INTERVAL`] and keeps
/// [`DATABASE_UP`] at 1 or 0: `SELECT 1` on a connection of its own (a
/// busy pool does not count as a database down), reconnecting after a
/// failure, each probe given two seconds. Runs until the task is dropped.
pub async fn watch_database(pool: sqlx::PgPool) {
    use sqlx::Connection;
    prometheus();
    let options = (*pool.connect_options())
        .clone()
        .application_name("chronicle database probe");
    drop(pool);
    let mut conn: Option<sqlx::PgConnection> = None;
    let mut tick = tokio::time::interval(DATABASE_PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tick.tick().await;
        let probe = async {
            if conn.is_none() {
                conn = Some(sqlx::PgConnection::connect_with(&options).await?);
            }
            let c = conn.as_mut().expect("connected above");
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(c).await
        };
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(1))
        );
        if !up {
            conn = None;
        }
        metrics::gauge!(DATABASE_UP).set(if up { 1.0 } else { 0.0 });
        if up != was_up {
            if up {
                tracing::info!("the database answers again");
            } else {
                tracing::warn!("the database does not answer");
            }
            was_up = up;
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics() -> Response {
    let text = prometheus().render();
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Middleware: request id, span, access log and HTTP metrics.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "http",
        method = %method,
        route = %route,
        request_id = %id,
        tenant = tracing::field::Empty,
        user = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!("request failed");
        } else {
            tracing::info!("request finished");
        }
    });
    let method = method.as_str().to_owned();
    metrics::counter!(
        HTTP_REQUESTS_TOTAL,
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_kept() {
        let ok = HeaderValue::from_static("abc-123_XYZ");
        assert_eq!(sane_request_id(&ok).as_deref(), Some("abc-123_XYZ"));
        assert!(sane_request_id(&HeaderValue::from_static("has space")).is_none());
        assert!(sane_request_id(&HeaderValue::from_str(&"x".repeat(129)).unwrap()).is_none());
        assert!(sane_request_id(&HeaderValue::from_static("")).is_none());
    }

    #[test]
    fn the_recorder_installs_once_per_process() {
        let a = prometheus() as *const _;
        let b = prometheus() as *const _;
        assert_eq!(a, b);
        metrics::counter!(COMMAND_CONFLICTS_TOTAL).increment(1);
        assert!(prometheus().render().contains(COMMAND_CONFLICTS_TOTAL));
    }
}
