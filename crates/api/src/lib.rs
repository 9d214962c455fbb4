//! The HTTP API and the wiring of the `chronicle` binary.
//!
//! [`Application::build`] binds the listener (port 0 in tests) and exposes
//! the port; [`router`] builds the axum router so tests can also drive it
//! with `oneshot`.

mod admin;
mod approvals;
pub mod auth;
mod command_http;
pub mod config;
mod contracts;
pub mod database;
mod docs;
pub mod error;
mod events;
mod health;
mod history;
mod idempotency;
mod kb;
mod leads;
pub mod limits;
mod me;
pub mod observability;
pub mod openapi;
mod policies;
mod queries;
pub mod rate_limit;
mod reports;
mod tickets;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::Router;
use chronicle_commands::CommandHandler;
use chronicle_projections::positions::Positions;
use chronicle_store::postgres::PgEventStore;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
pub use crate::config::Config;
use crate::limits::Limits;
use crate::rate_limit::RateLimiter;

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: Arc<PgEventStore>,
    pub commands: CommandHandler<PgEventStore>,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    pub limits: Limits,
    /// How far each projection has come (read-your-writes).
    pub positions: Arc<Positions>,
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<RateLimiter> {
    fn from_ref(state: &AppState) -> Self {
        state.limiter.clone()
    }
}

/// The application cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] auth::SecretError),
    #[error("building the HTTP client for the OIDC provider")]
    HttpClient(#[from] reqwest::Error),
}

impl AppState {
    /// Resolves the JWT secret (generating it on first use) and sets up
    /// auth, rate limits and the event store over `pool`.
    #[tracing::instrument(skip_all)]
    pub async fn new(config: &Config, pool: PgPool) -> Result<Self, StartError> {
        let for_secret = config.clone();
        let secret = tokio::task::spawn_blocking(move || auth::resolve_secret(&for_secret))
            .await
            .expect("resolving the JWT secret panicked")?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        let store = Arc::new(PgEventStore::new(pool.clone()));
        Ok(Self {
            positions: Positions::follow(pool.clone()),
            commands: CommandHandler::new(store.clone()),
            store,
            pool,
            auth: Arc::new(Authenticator::new(&secret, config.oidc.clone(), http)),
            limiter: Arc::new(RateLimiter::new(config.rate_limit_per_hour)),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                request_timeout: config.request_timeout,
            },
        })
    }
}

/// The router of the whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    // Make sure the recorder exists before the first request records.
    observability::prometheus();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(observability::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(docs::routes())
        .route("/api/v1/me", get(me::me))
        .merge(tickets::routes())
        .merge(queries::tickets::routes())
        .merge(queries::leads::routes())
        .merge(queries::contracts::routes())
        .merge(queries::approvals::routes())
        .merge(queries::kb::routes())
        .merge(queries::users::routes())
        .merge(reports::routes())
        .merge(admin::routes())
        .merge(kb::routes())
        .merge(users::routes())
        .merge(policies::routes())
        .merge(contracts::routes())
        .merge(approvals::routes())
        .merge(leads::routes())
        .merge(events::routes())
        .fallback(limits::not_found)
        .method_not_allowed_fallback(limits::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            limits::enforce,
        ))
        .layer(axum::middleware::from_fn(observability::observe))
}

/// Projector workers running in this process (`chronicle up`,
/// `chronicle project`, and the tests' apps).
pub struct Projectors {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Projectors {
    /// Starts a worker per projection over `pool`; each waits for its lease.
    pub fn start(
        pool: &PgPool,
        projections: Vec<Arc<dyn chronicle_projections::Projection>>,
        options: chronicle_projections::runtime::Options,
    ) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let connect = (*pool.connect_options()).clone();
        let task = tokio::spawn(chronicle_projections::runtime::run_all(
            projections,
            store,
            connect,
            options,
            stopped,
        ));
        Self { stop, task }
    }

    /// Asks every worker to stop after its current batch, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `config.listen` (use port 0 for an ephemeral port) over `pool`.
    pub async fn build(config: &Config, pool: PgPool) -> Result<Self, StartError> {
        let state = AppState::new(config, pool).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
