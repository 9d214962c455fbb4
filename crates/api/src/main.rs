//! The `chronicle` binary.

use std::time::Duration;

use anyhow::Context;
use chronicle_api::auth::{self, Role};
use chronicle_api::database::{redact, Database};
use chronicle_api::{
    every_projection, projection_names, select_projections, Application, Config, Projectors,
    Workers,
};
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
/// CHRONICLE_PROJECTION_BATCH, CHRONICLE_SMTP_URL, CHRONICLE_SMTP_FROM,
/// CHRONICLE_WEBHOOK_SECRET (unset: generated into the data directory),
/// CHRONICLE_DELIVERY_MAX_ATTEMPTS, CHRONICLE_DELIVERY_BACKOFF_SECS,
/// CHRONICLE_AUDIT_SIGNING_KEY (unset: generated into the data directory),
/// CHRONICLE_METRICS_LISTEN (where `project` serves /metrics, /healthz and
/// /readyz; unset: nowhere), RUST_LOG, CHRONICLE_LOG_FORMAT (json or
/// pretty).
#[derive(Parser)]
#[command(name = "chronicle", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system in one process: ensure the database (embedded
    /// unless DATABASE_URL is set), apply migrations, run every projector,
    /// reaction, the timer and the notification delivery workers, and serve
    /// HTTP until SIGINT or SIGTERM, then stop the database it started.
    Up,
    /// Serve the HTTP API alone, against an already migrated database.
    Serve,
    /// Run projector workers alone (read models and reactions; the timer
    /// worker with `timers`, the delivery worker with `notifications`).
    /// Run as many processes as you like: each projection is owned by one
    /// at a time, the others stand by; timers and deliveries are claimed
    /// by one worker each. With CHRONICLE_METRICS_LISTEN set, serves
    /// /metrics, /healthz and /readyz there.
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
    /// Tamper evidence and exports for auditors.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Exit 0 if a Chronicle process answers 200 on its /healthz (for
    /// container health checks), 1 otherwise.
    Healthcheck {
        /// The URL to ask (plain http). Default: /healthz on
        /// CHRONICLE_METRICS_LISTEN when set (a `project` process), else on
        /// CHRONICLE_LISTEN; 0.0.0.0 is read as 127.0.0.1.
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
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
        /// Do not swap anything: rebuild beside the live tables, up to the
        /// position they reflect, and compare them table by table; report
        /// any difference (exit 1). Projections that keep no tables, are
        /// never rebuilt or issue commands are skipped.
        #[arg(long)]
        verify: bool,
    },
    /// Let a projection stopped on an event it could not apply retry it
    /// (after deploying a fix).
    Resume { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the seal from the events and compare it with the sealed
    /// digests and the signed checkpoints; names the first position where
    /// they differ and exits 1 if any. Reads every event from the start (or
    /// from the checkpoint at or before --from).
    Verify {
        /// Start at the signed checkpoint at or before this position.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// The audit public key (64 hex characters) to verify checkpoints
        /// with; default: the data directory's key.
        #[arg(long)]
        public_key: Option<String>,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Export a tenant's events as NDJSON with a signed closing manifest.
    Export {
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// From this position or RFC 3339 time (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Up to this position or RFC 3339 time (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Check an export file: its lines against its manifest, and the
    /// manifest's signature. Exits 1 if it does not hold.
    VerifyExport {
        file: std::path::PathBuf,
        /// Require this signing key (64 hex characters).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the audit public key (hex) and its id, to keep beside the
    /// checkpoints.
    PublicKey,
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
        Command::Healthcheck { url, timeout_secs } => {
            let url = url.unwrap_or_else(|| {
                let mut addr = config.metrics_listen.unwrap_or(config.listen);
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}/healthz")
            });
            let timeout = Duration::from_secs(timeout_secs.max(1));
            let status = tokio::task::spawn_blocking(move || healthcheck(&url, timeout))
                .await
                .context("running the health check")?;
            match status {
                Ok(()) => println!("ok"),
                Err(error) => {
                    eprintln!("unhealthy: {error:#}");
                    std::process::exit(1);
                }
            }
        }
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
        Command::Audit { command } => audit(config, command).await?,
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
    let probe = tokio::spawn(chronicle_api::observability::watch_database(
        db.pool.clone(),
    ));
    // `up` runs the whole system; `serve` only the API.
    let projectors = if migrate {
        let options = projector_options()?;
        let workers = Workers::from_config(&config)
            .await
            .context("starting the search indexer and the timer and delivery workers")?
            .with_batch(options.batch_size);
        Some(Projectors::start_with(
            &db.pool,
            projections_of(&config, &db.pool).await?,
            options,
            Some(workers),
        ))
    } else {
        None
    };
    let served = app.run_until(shutdown_signal()).await;
    tracing::info!("shutting down");
    probe.abort();
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

/// Every projection, with reactions issuing commands on the system clock
/// and the seal signing with the data directory's audit key.
async fn projections_of(
    config: &Config,
    pool: &sqlx::PgPool,
) -> anyhow::Result<Vec<std::sync::Arc<dyn chronicle_projections::Projection>>> {
    Ok(every_projection(
        std::sync::Arc::new(chronicle_store::postgres::PgEventStore::new(pool.clone())),
        std::sync::Arc::new(chronicle_projections::clock::SystemClock),
        audit_key(config).await?,
    ))
}

async fn audit_key(config: &Config) -> anyhow::Result<chronicle_projections::audit::AuditKey> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || auth::resolve_audit_key(&config))
        .await
        .context("resolving the audit signing key")?
        .context("resolving the audit signing key")
}

async fn project(config: Config, only: Vec<String>) -> anyhow::Result<()> {
    let db = Database::open(&config).await?;
    let (chosen, search) = select_projections(projections_of(&config, &db.pool).await?, &only)
        .map_err(anyhow::Error::msg)?;
    let mut names: Vec<_> = chosen.iter().map(|p| p.name()).collect();
    if search {
        names.push(chronicle_search::NAME);
    }
    let options = projector_options()?;
    let workers = Workers::from_config(&config)
        .await
        .context("starting the search indexer and the timer and delivery workers")?
        .with_batch(options.batch_size)
        .for_projections(&names);
    tracing::info!(projections = ?names, timer_worker = workers.timers.is_some(),
        delivery_worker = workers.delivery.is_some(), database = %redact(&db.url), "projector running");
    // Probes and scrapes, when asked for: bound before the workers start,
    // so that a taken port fails the start.
    let listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding CHRONICLE_METRICS_LISTEN={addr}"))?,
        ),
        None => None,
    };
    let probe = tokio::spawn(chronicle_api::observability::watch_database(
        db.pool.clone(),
    ));
    let projectors = Projectors::start_with(&db.pool, chosen, options, Some(workers));
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = listener.map(|listener| {
        tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "serving /metrics, /healthz and /readyz");
        let router = chronicle_api::health::probe_router(db.pool.clone());
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener failed");
            }
        })
    });
    shutdown_signal().await;
    tracing::info!("shutting down after the current batches");
    projectors.stop().await;
    let _ = stop_http.send(());
    if let Some(http) = http {
        let _ = http.await;
    }
    probe.abort();
    db.close().await;
    Ok(())
}

/// One `GET` of a plain-http `url` with `HTTP/1.0`: Ok on a 200 answer.
fn healthcheck(url: &str, timeout: Duration) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;

    let rest = url
        .strip_prefix("http://")
        .context("expected an http:// URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: chronicle-healthcheck\r\n\r\n"
    )
    .context("sending the request")?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .context("reading the answer")?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.split_whitespace().nth(1) == Some("200"),
        "{url} answered {status:?}"
    );
    Ok(())
}

async fn projections(config: Config, command: ProjectionsCommand) -> anyhow::Result<()> {
    use chronicle_projections::status;
    let db = Database::open(&config).await?;
    let all = projections_of(&config, &db.pool).await?;
    let result = match command {
        ProjectionsCommand::Status { json } => {
            let rows = status::status_of(&db.pool, &projection_names(&all)).await?;
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
        ProjectionsCommand::Rebuild {
            name,
            all: every,
            verify,
        } => {
            let only: Vec<String> = if every {
                Vec::new()
            } else {
                name.into_iter().collect()
            };
            let (chosen, search) = select_projections(all, &only).map_err(anyhow::Error::msg)?;
            if verify {
                if search && !every {
                    anyhow::bail!(
                        "search keeps an index, not tables: rebuild it and compare searches instead"
                    );
                }
                verify_replay(&db.pool, chosen, every).await
            } else {
                let (never, chosen): (Vec<_>, Vec<_>) =
                    chosen.into_iter().partition(|p| !p.rebuildable());
                for p in never {
                    if !every {
                        anyhow::bail!("{} is never rebuilt: it records what the log was", p.name());
                    }
                    eprintln!("{}: skipped (never rebuilt)", p.name());
                }
                let search = search.then(|| {
                    let mut options =
                        chronicle_search::indexer::Options::new(config.data_dir.clone());
                    options.batch_size = projector_options()
                        .map(|o| o.batch_size)
                        .unwrap_or(options.batch_size);
                    options
                });
                rebuild(&db.pool, chosen, search).await
            }
        }
        ProjectionsCommand::Resume { name } => {
            select_projections(all, std::slice::from_ref(&name)).map_err(anyhow::Error::msg)?;
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

/// Replays each projection beside its live tables and compares them.
async fn verify_replay(
    pool: &sqlx::PgPool,
    chosen: Vec<std::sync::Arc<dyn chronicle_projections::Projection>>,
    every: bool,
) -> anyhow::Result<()> {
    use chronicle_projections::replay;
    let store = std::sync::Arc::new(chronicle_store::postgres::PgEventStore::new(pool.clone()));
    let mut differences = 0;
    for p in chosen {
        if let Err(why) = replay::replayable(&*p) {
            if every {
                eprintln!("{}: skipped: {why}", p.name());
                continue;
            }
            return Err(why.into());
        }
        let started = std::time::Instant::now();
        let report = replay::replay(pool, &store, &*p)
            .await
            .with_context(|| format!("replaying {}", p.name()))?;
        for t in &report.tables {
            if t.differs() {
                differences += 1;
                println!(
                    "{}.{}: DIFFERS at position {}: live {} replayed {}",
                    report.projection, t.table, report.position, t.live, t.replayed
                );
            } else {
                println!(
                    "{}.{}: same ({} rows at position {})",
                    report.projection,
                    t.table,
                    t.live.split(':').next().unwrap_or("0"),
                    report.position
                );
            }
        }
        eprintln!(
            "{}: replayed in {:.1} s",
            p.name(),
            started.elapsed().as_secs_f64()
        );
    }
    if differences > 0 {
        eprintln!("{differences} table(s) differ from a replay of the log");
        std::process::exit(1);
    }
    println!("every replayed table equals its live table");
    Ok(())
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
    let local = Projectors::start_with(
        pool,
        chosen.clone(),
        projector_options()?,
        Some(Workers {
            clock: std::sync::Arc::new(chronicle_projections::clock::SystemClock),
            search,
            timers: None,
            delivery: None,
        }),
    );
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

fn public_key(hex: &str) -> anyhow::Result<chronicle_projections::audit::PublicKey> {
    chronicle_projections::audit::PublicKey::from_hex(hex)
        .context("--public-key must be an Ed25519 public key as 64 hex characters")
}

async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    use chronicle_projections::audit::{export, verify};
    use futures::StreamExt;
    use std::io::Write;

    match command {
        AuditCommand::PublicKey => {
            let key = audit_key(&config).await?;
            println!("{}", key.public().to_hex());
            eprintln!("key id {}", key.key_id());
        }
        AuditCommand::VerifyExport {
            file,
            public_key: pinned,
        } => {
            let pinned = pinned.as_deref().map(public_key).transpose()?;
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            match export::verify_export(reader, pinned.as_ref()) {
                Ok(check) => println!(
                    "ok: {} events of tenant {} (positions {}..{}), signed by key {}",
                    check.count,
                    check.tenant,
                    check.first_position.unwrap_or(0),
                    check.last_position.unwrap_or(0),
                    check.key_id
                ),
                Err(e) => {
                    eprintln!("FAILED: {}: {e}", file.display());
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Verify {
            from,
            public_key: given,
            json,
        } => {
            let key = match given {
                Some(hex) => public_key(&hex)?,
                None => audit_key(&config).await?.public(),
            };
            let db = Database::open(&config).await?;
            let report = verify::verify(&db.pool, &key, from).await;
            db.close().await;
            let report = report.context("reading the events and the seal")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if let Some(p) = &report.problem {
                println!(
                    "FAILED at position {}: {} ({}); {} events and {} checkpoints verified before it",
                    p.position, p.kind, p.detail, report.events_checked, report.checkpoints_checked
                );
            } else {
                println!(
                    "ok: {} events verified from position {} through {}, {} signed checkpoints (key {})",
                    report.events_checked,
                    report.from,
                    report.sealed_through,
                    report.checkpoints_checked,
                    key.key_id()
                );
            }
            if !report.ok() {
                std::process::exit(1);
            }
        }
        AuditCommand::Export {
            tenant,
            from,
            to,
            output,
        } => {
            let parse = |raw: Option<String>| -> anyhow::Result<Option<export::Bound>> {
                raw.map(|r| r.parse().map_err(anyhow::Error::msg))
                    .transpose()
            };
            let selection = export::Selection {
                tenant: tenant.as_str().to_owned(),
                from: parse(from)?,
                to: parse(to)?,
            };
            let key = audit_key(&config).await?;
            let db = Database::open(&config).await?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let store = std::sync::Arc::new(chronicle_store::postgres::PgEventStore::new(
                db.pool.clone(),
            ));
            let mut lines = Box::pin(export::export(store, key, selection, Default::default()));
            let mut count = 0u64;
            while let Some(line) = lines.next().await {
                let line = line.context("reading the events")?;
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                count += 1;
            }
            out.flush()?;
            drop(out);
            db.close().await;
            eprintln!("exported {} events", count.saturating_sub(1));
        }
    }
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
