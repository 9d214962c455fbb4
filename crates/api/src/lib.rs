//! The HTTP API and the wiring of the `chronicle` binary.
//!
//! [`Application::build`] binds the listener (port 0 in tests) and exposes
//! the port; [`router`] builds the axum router so tests can also drive it
//! with `oneshot`.

mod admin;
mod approvals;
mod audit;
pub mod auth;
mod command_http;
pub mod config;
mod contracts;
pub mod database;
mod docs;
pub mod error;
mod events;
pub mod health;
mod history;
mod idempotency;
mod kb;
mod leads;
pub mod limits;
mod me;
mod notifications;
pub mod observability;
pub mod openapi;
mod policies;
mod privacy;
mod queries;
pub mod rate_limit;
mod reports;
mod search;
mod tickets;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::Router;
use chronicle_commands::CommandHandler;
use chronicle_projections::audit::seal::{Cadence, Seal};
use chronicle_projections::audit::AuditKey;
use chronicle_projections::clock::{Clock, SystemClock};
use chronicle_projections::positions::Positions;
use chronicle_projections::reactions::delivery::DeliveryOptions;
use chronicle_projections::reactions::timers::WorkerOptions as TimerWorkerOptions;
use chronicle_projections::reactions::{self, Reactor};
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
    /// Every projection, for the admin endpoints (names and tables).
    pub projections: Arc<Vec<Arc<dyn chronicle_projections::Projection>>>,
    /// Signs exports; its public key verifies the seal.
    pub audit_key: AuditKey,
    /// The search index under the data directory, kept at its latest commit.
    pub search: Arc<chronicle_search::index::Reader>,
    /// Per searcher and caller: the statistics scores are computed from.
    pub search_stats: Arc<chronicle_search::query::StatsCache>,
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
        let for_key = config.clone();
        let audit_key = tokio::task::spawn_blocking(move || auth::resolve_audit_key(&for_key))
            .await
            .expect("resolving the audit key panicked")?;
        let positions = Positions::follow(pool.clone());
        let search = Arc::new(chronicle_search::index::Reader::new(&config.data_dir));
        chronicle_search::indexer::follow(search.clone(), positions.clone());
        Ok(Self {
            projections: Arc::new(every_projection(
                store.clone(),
                Arc::new(SystemClock),
                audit_key.clone(),
            )),
            audit_key,
            positions,
            search,
            search_stats: Arc::default(),
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
        .merge(search::routes())
        .merge(kb::routes())
        .merge(users::routes())
        .merge(policies::routes())
        .merge(contracts::routes())
        .merge(approvals::routes())
        .merge(leads::routes())
        .merge(events::routes())
        .merge(notifications::routes())
        .merge(audit::routes())
        .merge(privacy::routes())
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

/// Every projection this binary knows: the read models, then the
/// reactions (timers, matching, approval flow, surveys, notifications),
/// whose commands go through `store` stamped by `clock`, then the seal,
/// signing with `audit_key`.
pub fn every_projection(
    store: Arc<PgEventStore>,
    clock: Arc<dyn Clock>,
    audit_key: AuditKey,
) -> Vec<Arc<dyn chronicle_projections::Projection>> {
    let mut all = chronicle_projections::all();
    all.extend(reactions::all(&Reactor::new(store, clock)));
    all.push(Arc::new(Seal::new(audit_key, Cadence::default())));
    all
}

/// What runs beside the projection runtime: the search indexer, and the
/// workers that act on due timers and pending notification deliveries.
#[derive(Clone)]
pub struct Workers {
    pub clock: Arc<dyn Clock>,
    /// Keep the search index (with these options).
    pub search: Option<chronicle_search::indexer::Options>,
    /// Fire due timers (with these options).
    pub timers: Option<TimerWorkerOptions>,
    /// Send notification emails and webhooks (with these options).
    pub delivery: Option<DeliveryOptions>,
}

impl Workers {
    /// Both workers with the system clock and the configured channels.
    /// Resolves (or generates) the webhook signing key; blocking IO runs
    /// off the async threads.
    pub async fn from_config(config: &Config) -> Result<Self, StartError> {
        let for_secret = config.clone();
        let secret = tokio::task::spawn_blocking(move || auth::resolve_webhook_secret(&for_secret))
            .await
            .expect("resolving the webhook secret panicked")?;
        Ok(Self {
            clock: Arc::new(SystemClock),
            search: Some(chronicle_search::indexer::Options::new(
                config.data_dir.clone(),
            )),
            timers: Some(TimerWorkerOptions::default()),
            delivery: Some(DeliveryOptions {
                smtp_url: config.smtp_url.as_ref().map(|s| s.expose().to_owned()),
                smtp_from: config.smtp_from.clone(),
                webhook_secret: secret.expose().as_bytes().to_vec(),
                max_attempts: config.delivery_max_attempts,
                backoff: config.delivery_backoff,
                ..DeliveryOptions::default()
            }),
        })
    }

    /// The search indexer's batch size (as `CHRONICLE_PROJECTION_BATCH`).
    pub fn with_batch(mut self, batch_size: usize) -> Self {
        if let Some(search) = &mut self.search {
            search.batch_size = batch_size;
        }
        self
    }

    /// Keeps the workers whose projection runs here: the search indexer
    /// with `search`, the timer worker with `timers`, the delivery worker
    /// with `notifications`.
    pub fn for_projections(mut self, names: &[&str]) -> Self {
        if !names.contains(&chronicle_search::NAME) {
            self.search = None;
        }
        if !names.contains(&"timers") {
            self.timers = None;
        }
        if !names.contains(&"notifications") {
            self.delivery = None;
        }
        self
    }
}

/// Projector workers running in this process (`chronicle up`,
/// `chronicle project`, and the tests' apps), with the timer and delivery
/// workers when asked.
pub struct Projectors {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Projectors {
    /// Starts a worker per projection over `pool`; each waits for its lease.
    pub fn start(
        pool: &PgPool,
        projections: Vec<Arc<dyn chronicle_projections::Projection>>,
        options: chronicle_projections::runtime::Options,
    ) -> Self {
        Self::start_with(pool, projections, options, None)
    }

    /// [`Projectors::start`], plus the timer and delivery `workers`.
    pub fn start_with(
        pool: &PgPool,
        projections: Vec<Arc<dyn chronicle_projections::Projection>>,
        options: chronicle_projections::runtime::Options,
        workers: Option<Workers>,
    ) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let connect = (*pool.connect_options()).clone();
        let mut tasks = vec![tokio::spawn(chronicle_projections::runtime::run_all(
            projections,
            store.clone(),
            connect.clone(),
            options,
            stopped.clone(),
        ))];
        if let Some(workers) = workers {
            if let Some(search) = workers.search {
                tasks.push(tokio::spawn(chronicle_search::indexer::run(
                    store.clone(),
                    connect,
                    search,
                    stopped.clone(),
                )));
            }
            if let Some(timer_options) = workers.timers {
                let reactor = Reactor::new(store, workers.clock.clone());
                tasks.push(reactions::timers::spawn(
                    pool.clone(),
                    reactor,
                    timer_options,
                    stopped.clone(),
                ));
            }
            if let Some(delivery) = workers.delivery {
                tasks.push(reactions::delivery::spawn(
                    pool.clone(),
                    workers.clock,
                    delivery,
                    stopped,
                ));
            }
        }
        Self { stop, tasks }
    }

    /// Asks every worker to stop after its current batch, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Every projection's name, `all`'s then the search index's.
pub fn projection_names(all: &[Arc<dyn chronicle_projections::Projection>]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = all.iter().map(|p| p.name()).collect();
    names.push(chronicle_search::NAME);
    names
}

/// The projections of `all` named in `only` (all when empty), and whether
/// the search index is among them. An unknown name is an error that lists
/// the known ones.
pub fn select_projections(
    all: Vec<Arc<dyn chronicle_projections::Projection>>,
    only: &[String],
) -> Result<(Vec<Arc<dyn chronicle_projections::Projection>>, bool), String> {
    if only.is_empty() {
        return Ok((all, true));
    }
    let search = only.iter().any(|n| n == chronicle_search::NAME);
    let rest: Vec<String> = only
        .iter()
        .filter(|n| *n != chronicle_search::NAME)
        .cloned()
        .collect();
    if rest.is_empty() {
        return Ok((Vec::new(), search));
    }
    chronicle_projections::select(all, &rest)
        .map(|chosen| (chosen, search))
        .map_err(|e| format!("{e}, {}", chronicle_search::NAME))
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
