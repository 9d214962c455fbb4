//! The `chronicle` binary.

use std::time::Duration;

use anyhow::Context;
use chronicle_api::auth::{self, Role};
use chronicle_api::database::{redact, Database};
use chronicle_api::{Application, Config, Projectors};
use chronicle_store::TenantId;
use clap::{Parser, Subcommand};

/// Chronicle: an event-sourced backend for sales and service delivery.
///
/// Configuration comes from the environment: DATABASE_URL (unset: an
/// embedded PostgreSQL under the data directory), CHRONICLE_DATA_DIR
/// (default ./.chronicle), CHRONICLE_LISTEN (default 127.0.0.1:8080),
/// CHRONICLE_DB_POOL, CHRONICLE_JWT_SECRET (unset: generated into the data
/// directory), CHRONICLE_OIDC_ISSUER / _AUDIENCE / _JWKS_URL /
/// _TENANT_CLAIM / _ROLES_CLAIM, CHRONICLE_RATE_LIMIT (requests per hour
/// per user), CHRONICLE_MAX_BODY_BYTES, CHRONICLE_REQUEST_TIMEOUT_SECS,
/// RUST_LOG, CHRONICLE_LOG_FORMAT (json or pretty).
#[derive(Parser)]
#[command(name = "chronicle", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system in one process: ensure the database (embedded
    /// unless DATABASE_URL is set), apply migrations, run every projector
    /// and serve HTTP until SIGINT or SIGTERM, then stop the database it
    /// started.
    Up,
    /// Serve the HTTP API alone, against an already migrated database.
    Serve,
    /// Run projector workers alone. Run as many processes as you like:
    /// each projection is owned by one at a time, the others stand by.
    Project {
        /// Comma-separated projection names (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Inspect and operate the projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Print an HS256 token for local use, signed with CHRONICLE_JWT_SECRET
    /// or the secret generated into the data directory.
    Token {
        /// The tenant (1 to 63 lowercase letters, digits, - or _).
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// The user id (the token's `sub`).
        #[arg(long, value_parser = parse_user)]
        user: String,
        /// Comma-separated roles: customer, expert, approver, sales,
        /// manager, auditor, analyst, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<Role>,
        /// Lifetime in seconds (at most 30 days).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=30 * 24 * 3600))]
        ttl_secs: u64,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Position, head, lag (events and seconds) and state of each projection.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild projections from the event log into new tables, then swap
    /// them in; queries keep answering meanwhile. The running owner of a
    /// projection does the work; with no owner, this process does.
    Rebuild {
        /// The projection to rebuild.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Let a projection stopped on an event it could not apply retry it
    /// (after deploying a fix).
    Resume { name: String },
}

fn parse_tenant(value: &str) -> Result<TenantId, String> {
    TenantId::parse(value).map_err(|e| e.to_string())
}

fn parse_user(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        Err("expected 1 to 256 characters, none of them control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "chronicle failed");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Migrate => {
            let db = Database::open(&config).await?;
            db.migrate().await?;
            tracing::info!("migrations applied");
            db.close().await;
        }
        Command::Up => serve(config, true).await?,
        Command::Serve => serve(config, false).await?,
        Command::Project { only } => project(config, only).await?,
        Command::Projections { command } => projections(config, command).await?,
        Command::Token {
            tenant,
            user,
            roles,
            ttl_secs,
        } => {
            let secret = tokio::task::spawn_blocking(move || auth::resolve_secret(&config))
                .await
                .context("resolving the JWT secret")?
                .context("resolving the JWT secret")?;
            let token = auth::mint_token(
                &secret,
                &tenant,
                &user,
                &roles,
                Duration::from_secs(ttl_secs),
            )
            .context("signing the token")?;
            println!("{token}");
        }
    }
    Ok(())
}

async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let db = Database::open(&config).await?;
    if migrate {
        db.migrate().await?;
    }
    let app = Application::build(&config, db.pool.clone())
        .await
        .context("starting the HTTP API")?;
    tracing::info!(
        listen = %app.local_addr()?,
        database = %redact(&db.url),
        embedded = db.embedded.is_some(),
        "chronicle is up"
    );
    // `up` runs the whole system; `serve` only the API.
    let options = projector_options()?;
    let projectors = migrate.then(|| {
        Projectors::start_with_search(
            &db.pool,
            chronicle_projections::all(),
            options,
            Some(search_options(&config)),
        )
    });
    let served = app.run_until(shutdown_signal()).await;
    tracing::info!("shutting down");
    if let Some(projectors) = projectors {
        projectors.stop().await;
    }
    db.close().await;
    served.context("serving HTTP")
}

/// Projector tuning: `CHRONICLE_PROJECTION_BATCH` events per batch
/// (default 10000; 1 to 100000).
fn projector_options() -> anyhow::Result<chronicle_projections::runtime::Options> {
    let mut options = chronicle_projections::runtime::Options::default();
    if let Some(raw) = std::env::var("CHRONICLE_PROJECTION_BATCH")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let size: usize = raw
            .parse()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .with_context(|| {
                format!("CHRONICLE_PROJECTION_BATCH must be 1 to 100000, got {raw:?}")
            })?;
        options.batch_size = size;
        options.rebuild_batch_size = size;
    }
    Ok(options)
}

/// The search projection's tuning: the index under the data directory,
/// batches as `CHRONICLE_PROJECTION_BATCH`.
fn search_options(config: &Config) -> chronicle_search::indexer::Options {
    let mut options = chronicle_search::indexer::Options::new(config.data_dir.clone());
    if let Ok(projector) = projector_options() {
        options.batch_size = projector.batch_size;
    }
    options
}

async fn project(config: Config, only: Vec<String>) -> anyhow::Result<()> {
    let (chosen, search) = chronicle_api::select_projections(&only).map_err(anyhow::Error::msg)?;
    let db = Database::open(&config).await?;
    let mut names: Vec<_> = chosen.iter().map(|p| p.name()).collect();
    if search {
        names.push(chronicle_search::NAME);
    }
    tracing::info!(projections = ?names, database = %redact(&db.url), "projector running");
    let projectors = Projectors::start_with_search(
        &db.pool,
        chosen,
        projector_options()?,
        search.then(|| search_options(&config)),
    );
    shutdown_signal().await;
    tracing::info!("shutting down after the current batches");
    projectors.stop().await;
    db.close().await;
    Ok(())
}

async fn projections(config: Config, command: ProjectionsCommand) -> anyhow::Result<()> {
    use chronicle_projections::status;
    let db = Database::open(&config).await?;
    let result = match command {
        ProjectionsCommand::Status { json } => {
            let rows = status::status_of(&db.pool, &chronicle_api::projection_names()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<14} {:>10} {:>10} {:>10} {:>9}  {:<8} note",
                    "projection", "position", "head", "lag", "lag (s)", "state"
                );
                for r in rows {
                    let note = match (&r.rebuild_position, &r.error) {
                        (Some(at), _) => format!("rebuilding: {at}/{}", r.head),
                        (None, Some(e)) => format!("at {}: {e}", r.error_position.unwrap_or(0)),
                        _ => r.owner.clone().unwrap_or_default(),
                    };
                    println!(
                        "{:<14} {:>10} {:>10} {:>10} {:>9.1}  {:<8} {}",
                        r.name, r.position, r.head, r.lag_events, r.lag_seconds, r.state, note
                    );
                }
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild { name, all: every } => {
            let only: Vec<String> = if every {
                Vec::new()
            } else {
                name.into_iter().collect()
            };
            let (chosen, search) =
                chronicle_api::select_projections(&only).map_err(anyhow::Error::msg)?;
            rebuild(&db.pool, chosen, search.then(|| search_options(&config))).await
        }
        ProjectionsCommand::Resume { name } => {
            chronicle_api::select_projections(std::slice::from_ref(&name))
                .map_err(anyhow::Error::msg)?;
            if status::resume(&db.pool, &name).await? {
                println!("{name}: resumed; its owner retries the event it stopped on");
            } else {
                println!("{name}: was not stopped");
            }
            Ok(())
        }
    };
    db.close().await;
    result
}

/// Requests the rebuilds and shows their progress until each has swapped
/// in. Projections nobody owns are rebuilt by this process (the search
/// index in this process's data directory).
async fn rebuild(
    pool: &sqlx::PgPool,
    chosen: Vec<std::sync::Arc<dyn chronicle_projections::Projection>>,
    search: Option<chronicle_search::indexer::Options>,
) -> anyhow::Result<()> {
    use std::io::Write;

    use chronicle_projections::status;
    let started = chrono::Utc::now();
    let mut names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
    if search.is_some() {
        names.push(chronicle_search::NAME);
    }
    for name in &names {
        status::request_rebuild(pool, name).await?;
    }
    // Owners pick the request up within a second; unowned ones run here.
    let local = Projectors::start_with_search(pool, chosen.clone(), projector_options()?, search);
    let mut stderr = std::io::stderr();
    loop {
        let rows = status::status_of(pool, &names).await?;
        let mut line = String::new();
        let mut done = 0;
        for r in &rows {
            let finished = !r.rebuild_requested && r.rebuilt_at.is_some_and(|t| t >= started);
            if finished {
                done += 1;
            }
            let failed = !r.rebuild_requested && !finished;
            let (at, head) = (r.rebuild_position.unwrap_or(0), r.head.max(1));
            let width = 20;
            let filled = if finished {
                width
            } else {
                (at * width as u64 / head) as usize
            };
            line.push_str(&format!(
                "{} [{}{}] {}  ",
                r.name,
                "#".repeat(filled.min(width)),
                ".".repeat(width - filled.min(width)),
                if finished {
                    "done".to_owned()
                } else if failed {
                    format!("FAILED: {}", r.error.clone().unwrap_or_default())
                } else {
                    format!("{at}/{head}")
                }
            ));
            if failed {
                let _ = writeln!(stderr, "\r{line}");
                local.stop().await;
                anyhow::bail!(
                    "rebuild of {} failed: {}",
                    r.name,
                    r.error.clone().unwrap_or_default()
                );
            }
        }
        let _ = write!(stderr, "\r{line}");
        let _ = stderr.flush();
        if done == rows.len() {
            let _ = writeln!(stderr);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    local.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("CHRONICLE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
