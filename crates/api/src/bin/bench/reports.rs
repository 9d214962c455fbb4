//! `chronicle-bench reports`: report latency over one tenant's year.
//!
//! Loads a seeded workload of at least `--events` events for one tenant
//! over `--days` days (tickets, leads and contracts with their approvals,
//! SLA breaches, escalations, surveys, renewals and expiries: see
//! `workload.rs`), bulk-appended through the event store; lets the
//! reporting projections catch up from zero (timed); then serves the HTTP
//! API in this process and asks each report (JSON) over the whole period
//! for its typical groupings, `--queries` times per grouping and round,
//! and prints p50 and p99 per report (median over `--rounds` rounds). The
//! last line is one JSON object with every figure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chronicle_api::{auth, Application, Config};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{EventStore, TenantId};
use chrono::Utc;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

use super::scratch_database;
use super::workload::{self, Executor};

#[derive(clap::Args, Clone)]
pub struct ReportsArgs {
    /// Events to load, at least.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Days of business time the events span.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// The workload's random seed.
    #[arg(long, default_value_t = 20261130)]
    seed: u64,
    /// Requests per report grouping and round.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Measurement rounds (the median of each figure is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// With `DATABASE_URL`: measure again on the database a previous run
    /// loaded (`chronicle_bench_reports`), without loading it again.
    #[arg(long)]
    reuse: bool,
}

const TENANT: &str = "bench";

/// The reports and groupings asked, over the whole period.
const ASKED: &[(&str, &[&str])] = &[
    ("tickets", &["day", "month", "month,priority", "category"]),
    ("experts", &["", "month"]),
    ("leads/funnel", &["", "month,owner"]),
    ("approvals", &["", "month,subject_kind"]),
    ("contracts", &["month", "owner"]),
];

pub async fn run(args: ReportsArgs) -> anyhow::Result<()> {
    if args.reuse {
        let url = std::env::var("DATABASE_URL").context("--reuse needs DATABASE_URL")?;
        let url = chronicle_store::embedded::url_with_database(&url, "chronicle_bench_reports");
        let pool = PgPoolOptions::new()
            .max_connections(24)
            .connect(&url)
            .await?;
        let (loaded, start): (i64, Option<chrono::DateTime<Utc>>) =
            sqlx::query_as("SELECT count(*), min((data->>'at')::timestamptz) FROM events")
                .fetch_one(&pool)
                .await?;
        let start = start
            .context("no events to reuse")?
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        eprintln!("reusing {loaded} events from {start}");
        return measure(&args, pool, start, loaded as u64, 0.0, 0.0).await;
    }
    let scratch = scratch_database("chronicle_bench_reports").await?;
    {
        // Loading is not what is measured: commit without waiting for the
        // disk (each append stays one atomic transaction).
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&scratch.url)
            .await?;
        sqlx::query("ALTER DATABASE chronicle_bench_reports SET synchronous_commit = off")
            .execute(&pool)
            .await?;
        pool.close().await;
    }
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));

    let start = (Utc::now() - chrono::Duration::days(args.days))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let t = Instant::now();
    let config = workload::Config {
        seed: args.seed,
        start,
        days: args.days,
        commands: args.events as usize,
    };
    let (steps, expected) =
        workload::plan_at_least(&config, TENANT, args.events).map_err(anyhow::Error::msg)?;
    eprintln!(
        "planned {} commands ({expected} events) over {} days in {:.1} s",
        steps.len(),
        args.days,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut executor = Executor::new(TENANT);
    let mut loaded = 0u64;
    for window in workload::windows(&steps, chrono::Duration::days(7)) {
        let appends = executor.window(window).map_err(anyhow::Error::msg)?;
        loaded += appends.iter().map(|a| a.events.len() as u64).sum::<u64>();
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(appends)
            .map(|a| {
                let store = store.clone();
                async move {
                    for chunk in a.events.chunks(10_000) {
                        store
                            .append(&a.stream, a.expected, chunk)
                            .await
                            .context("appending")?;
                    }
                    Ok(())
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    }
    let load_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "loaded {loaded} events in {load_secs:.1} s ({} refused timer commands)",
        executor.refused
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    let head = store.head_position().await?;

    // The reporting projections catch up from zero.
    let projections: Vec<_> = chronicle_projections::all()
        .into_iter()
        .filter(|p| p.schema() == chronicle_projections::reporting::SCHEMA)
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let runner = tokio::spawn(chronicle_projections::runtime::run_all(
        projections.clone(),
        store.clone(),
        (*pool.connect_options()).clone(),
        chronicle_projections::runtime::Options::default(),
        stopped,
    ));
    loop {
        let rows = chronicle_projections::status::status(&pool, &projections).await?;
        if let Some(failed) = rows.iter().find(|r| r.state == "failed") {
            anyhow::bail!(
                "projection {} stopped at {:?}: {:?}",
                failed.name,
                failed.error_position,
                failed.error
            );
        }
        if rows.iter().all(|r| r.position >= head) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let catchup_secs = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = runner.await;
    eprintln!(
        "reporting projections caught up with {loaded} events in {catchup_secs:.1} s ({:.0} events/s)",
        loaded as f64 / catchup_secs
    );
    let _keep = scratch;
    measure(&args, pool, start, loaded, load_secs, catchup_secs).await
}

/// Serves the API in this process and asks the reports.
async fn measure(
    args: &ReportsArgs,
    pool: sqlx::PgPool,
    start: chrono::DateTime<Utc>,
    loaded: u64,
    load_secs: f64,
    catchup_secs: f64,
) -> anyhow::Result<()> {
    // Fresh statistics and visibility maps for the reports' tables.
    for projection in chronicle_projections::all() {
        if projection.schema() != chronicle_projections::reporting::SCHEMA {
            continue;
        }
        for table in projection.tables() {
            sqlx::query(&format!("VACUUM ANALYZE reporting.{table}"))
                .execute(&pool)
                .await?;
        }
    }

    // The API, in this process.
    let vars: HashMap<&str, String> = HashMap::from([
        ("CHRONICLE_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "CHRONICLE_JWT_SECRET",
            "bench-secret-bench-secret-bench-secret-00".to_owned(),
        ),
        ("CHRONICLE_RATE_LIMIT", "100000000".to_owned()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;
    let secret = auth::resolve_secret(&config)?;
    let token = auth::mint_token(
        &secret,
        &TenantId::parse(TENANT)?,
        "bench-analyst",
        &[auth::Role::Analyst],
        Duration::from_secs(24 * 3600),
    )?;
    let app = Application::build(&config, pool.clone()).await?;
    let addr = app.local_addr()?;
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let (from, to) = (
        start.date_naive(),
        (start + chrono::Duration::days(args.days - 1)).date_naive(),
    );

    // Per report: the p50 and p99 of each round.
    let mut rounds: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut per_grouping: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut rows_seen: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..args.rounds {
        for (report, groupings) in ASKED {
            let mut all = Histogram::<u64>::new(3)?;
            for group_by in *groupings {
                let url = format!(
                    "http://{addr}/api/v1/reports/{report}?from={from}&to={to}&group_by={group_by}"
                );
                // Timed until the whole answer has arrived; read after.
                let ask = || async {
                    let t = Instant::now();
                    let response = client.get(&url).bearer_auth(&token).send().await?;
                    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
                    let body = response.bytes().await?;
                    let us = t.elapsed().as_micros() as u64;
                    let body: serde_json::Value = serde_json::from_slice(&body)?;
                    Ok((us.max(1), body["rows"].as_array().map_or(0, Vec::len)))
                };
                // Warm-up.
                for _ in 0..3 {
                    ask().await?;
                }
                let mut one = Histogram::<u64>::new(3)?;
                for _ in 0..args.queries {
                    let (us, rows) = ask().await?;
                    one.record(us)?;
                    all.record(us)?;
                    rows_seen.insert(format!("{report}?group_by={group_by}"), rows);
                }
                per_grouping
                    .entry(format!("{report}?group_by={group_by}"))
                    .or_default()
                    .push((ms(&one, 0.5), ms(&one, 0.99)));
            }
            eprintln!(
                "round {round}: {report:<13} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
                ms(&all, 0.5),
                ms(&all, 0.99),
                all.max() as f64 / 1000.0
            );
            rounds
                .entry(report)
                .or_default()
                .push((ms(&all, 0.5), ms(&all, 0.99)));
        }
    }
    server.abort();

    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let mut reports = serde_json::Map::new();
    for (report, figures) in &rounds {
        let p50 = median(figures.iter().map(|f| f.0).collect());
        let p99 = median(figures.iter().map(|f| f.1).collect());
        eprintln!(
            "{report:<13} median over {} rounds: p50 {p50:.1} ms, p99 {p99:.1} ms",
            figures.len()
        );
        reports.insert(
            (*report).to_owned(),
            json!({ "p50_ms": round2(p50), "p99_ms": round2(p99) }),
        );
    }
    let mut groupings = serde_json::Map::new();
    for (key, figures) in &per_grouping {
        groupings.insert(
            key.clone(),
            json!({
                "p50_ms": round2(median(figures.iter().map(|f| f.0).collect())),
                "p99_ms": round2(median(figures.iter().map(|f| f.1).collect())),
                "rows": rows_seen.get(key),
            }),
        );
    }
    let worst = rounds
        .values()
        .map(|f| median(f.iter().map(|x| x.1).collect()))
        .fold(0.0, f64::max);
    println!(
        "{}",
        json!({
            "bench": "reports",
            "tenant_events": loaded,
            "days": args.days,
            "seed": args.seed,
            "from": from.to_string(),
            "to": to.to_string(),
            "load_secs": round2(load_secs),
            "catchup_secs": round2(catchup_secs),
            "catchup_events_per_s": if catchup_secs > 0.0 { (loaded as f64 / catchup_secs).round() } else { 0.0 },
            "queries_per_grouping_and_round": args.queries,
            "rounds": args.rounds,
            "reports": reports,
            "groupings": groupings,
            "worst_p99_ms": round2(worst),
        })
    );
    pool.close().await;
    Ok(())
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
