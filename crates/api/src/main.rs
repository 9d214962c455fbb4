//! The `chronicle` binary.

use std::time::Duration;

use anyhow::Context;
use chronicle_api::auth::{self, Role};
use chronicle_api::database::{redact, Database};
use chronicle_api::{Application, Config};
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
    /// unless DATABASE_URL is set), apply migrations and serve HTTP until
    /// SIGINT or SIGTERM, then stop the database it started.
    Up,
    /// Serve the HTTP API alone, against an already migrated database.
    Serve,
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
    let served = app.run_until(shutdown_signal()).await;
    tracing::info!("shutting down");
    db.close().await;
    served.context("serving HTTP")
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
