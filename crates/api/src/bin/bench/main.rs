//! `chronicle-bench`: benchmarks that print figures measured in one run on
//! one database, with same-run baselines. The last line of output is one
//! JSON object with every figure.
//!
//! ```text
//! chronicle-bench append [--seconds 5] [--rounds 3]
//! ```
//!
//! Uses `DATABASE_URL` (creating a scratch database on that server) or, when
//! unset, a private embedded PostgreSQL in a temporary directory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chronicle_store::embedded::{self, url_with_database, EmbeddedPostgres};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{
    EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRef, TenantId, TypeName,
};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

mod catchup;
mod load;
mod seal;
mod search;
mod timers;

#[derive(Parser)]
#[command(name = "chronicle-bench", about = "Chronicle's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Event-store appends and ordered reads against plain INSERT/SELECT
    /// baselines on the same database, in the same run.
    Append(AppendArgs),
    /// HTTP commands/s and latency under a mixed workload at fixed
    /// concurrency, against `chronicle serve` in a separate process.
    Load(load::LoadArgs),
    /// Projection catch-up from zero over a realistic mix (beside the raw
    /// ordered read rate), then command → read-model lag at a steady rate.
    Catchup(catchup::CatchupArgs),
    /// Timer firing: a backlog of due timers (timers/s) and the delay from
    /// due to fired in real time (p50/p99).
    Timers(timers::TimersArgs),
    /// Single-event appends with the seal sealing live beside them and
    /// without it, in the same run (ratio).
    Seal(seal::SealArgs),
    /// The search index on real text (the OS's licenses, copyright files
    /// and man pages as events): indexing from the log, query latency
    /// beside PostgreSQL full-text search on the same documents, and
    /// command → searchable freshness.
    Search(search::SearchArgs),
}

#[derive(clap::Args, Clone)]
struct AppendArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent writers for single-event appends.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Streams the single-event writers spread over.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Concurrent writers for batched appends.
    #[arg(long, default_value_t = 4)]
    batch_writers: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Bench::Append(args) => append_bench(args).await,
        Bench::Load(args) => load::run(args).await,
        Bench::Catchup(args) => catchup::run(args).await,
        Bench::Timers(args) => timers::run(args).await,
        Bench::Seal(args) => seal::run(args).await,
        Bench::Search(args) => search::run(args).await,
    }
}

/// A scratch database, and the embedded server behind it if any.
struct Scratch {
    url: String,
    _embedded: Option<EmbeddedPostgres>,
    _dir: Option<tempfile::TempDir>,
}

async fn scratch_database(name: &str) -> anyhow::Result<Scratch> {
    let (admin_url, embedded, dir) =
        match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => (url, None, None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("chronicle-bench-")
                    .tempdir()?;
                let path = dir.path().to_owned();
                let pg =
                    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&path)).await??;
                (pg.url("postgres"), Some(pg), Some(dir))
            }
        };
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .context("connecting to the server")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = url_with_database(&admin_url, name);
    let _ = embedded::DATABASE;
    Ok(Scratch {
        url,
        _embedded: embedded,
        _dir: dir,
    })
}

/// A realistic event body (~300 bytes of JSON).
fn payload(i: u64) -> Value {
    json!({
        "customer_id": Uuid::now_v7(),
        "product": "fibre-1000",
        "category": "connectivity",
        "priority": "P2",
        "required_skill": "networking",
        "title": format!("Intermittent packet loss on uplink {i}"),
        "description": "Customer reports packet loss of 2-5% during business hours since Monday.",
        "at": "2026-11-22T10:00:00Z",
    })
}

fn metadata() -> Metadata {
    Metadata {
        actor: Some("user-4711".into()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: Some("bench".into()),
        source: Some("bench".into()),
    }
}

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse("ticket.opened").expect("valid"),
        schema_version: 1,
        data: payload(i),
        metadata: metadata(),
        personal: None,
    }
}

struct Outcome {
    events: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `writers` tasks calling `step(writer, i)` until `seconds` pass;
/// each step reports how many events it wrote.
async fn drive<F, Fut>(writers: usize, seconds: u64, step: F) -> anyhow::Result<Outcome>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    let step = Arc::new(step);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let (step, stop) = (step.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
            let mut events = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                events += step(w, i).await?;
                hist.saturating_record(t.elapsed().as_micros() as u64);
                i += 1;
            }
            anyhow::Ok((events, hist))
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
    let mut events = 0;
    for h in handles {
        let (n, hist) = h.await??;
        events += n;
        latency.add(hist).expect("same bounds");
    }
    Ok(Outcome {
        events,
        elapsed: start.elapsed(),
        latency,
    })
}

/// (c1) The same rows by plain INSERT, one per transaction.
async fn single_insert(
    pool: &sqlx::PgPool,
    raw_versions: &Arc<Vec<std::sync::Mutex<Vec<u64>>>>,
    args: &AppendArgs,
    per_writer: usize,
) -> anyhow::Result<Outcome> {
    let (p, v) = (pool.clone(), raw_versions.clone());
    drive(args.writers, args.seconds, move |w, i| {
            let (p, v) = (p.clone(), v.clone());
            async move {
                let slot = (i as usize) % per_writer;
                let version = v[w].lock().expect("lock")[slot] + 1;
                let e = new_event(i);
                sqlx::query(
                    "INSERT INTO raw_events (position, event_id, tenant_id, stream_id, stream_type, stream_version, \
                     event_type, schema_version, data, metadata) \
                     VALUES (nextval('raw_events_position_seq'), $1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)",
                )
                .bind(e.event_id)
                .bind("bench")
                .bind(format!("s-{w}-{slot}"))
                .bind("ticket")
                .bind(version as i64)
                .bind(e.event_type.as_str())
                .bind(1i16)
                .bind(serde_json::to_string(&e.data)?)
                .bind(serde_json::to_string(&e.metadata)?)
                .execute(&p)
                .await?;
                v[w].lock().expect("lock")[slot] = version;
                Ok(1)
            }
        })
        .await
}

/// (c2) The same rows by plain INSERT, `batch` per transaction.
async fn batched_insert(pool: &sqlx::PgPool, args: &AppendArgs) -> anyhow::Result<Outcome> {
    let (p, n) = (pool.clone(), args.batch);
    drive(args.batch_writers, args.seconds, move |_, i| {
            let p = p.clone();
            async move {
                let stream = format!("b-{}", Uuid::now_v7());
                let events: Vec<NewEvent> = (0..n as u64).map(|j| new_event(i * 1000 + j)).collect();
                let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
                let data = events.iter().map(|e| serde_json::to_string(&e.data)).collect::<Result<Vec<_>, _>>()?;
                let meta = events.iter().map(|e| serde_json::to_string(&e.metadata)).collect::<Result<Vec<_>, _>>()?;
                sqlx::query(
                    "INSERT INTO raw_events (position, event_id, tenant_id, stream_id, stream_type, stream_version, \
                     event_type, schema_version, data, metadata) \
                     SELECT nextval('raw_events_position_seq'), t.id, 'bench', $1, 'ticket', t.n, t.ty, 1, \
                            t.d::jsonb, t.m::jsonb \
                       FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(id, ty, d, m, n)",
                )
                .bind(&stream)
                .bind(&ids)
                .bind(&types)
                .bind(&data)
                .bind(&meta)
                .execute(&p)
                .await?;
                Ok(n as u64)
            }
        })
        .await
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

async fn append_bench(args: AppendArgs) -> anyhow::Result<()> {
    let scratch = scratch_database("chronicle_bench_append").await?;
    let pool = PgPoolOptions::new()
        .max_connections((args.writers + args.batch_writers + 4) as u32)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    // The baseline: a table with the same columns, the same keys and the
    // same indexes, written by plain INSERTs with no event-store logic.
    sqlx::raw_sql(
        "CREATE TABLE raw_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
         CREATE SEQUENCE raw_events_position_seq CACHE 1;",
    )
    .execute(&pool)
    .await?;
    let sync_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&pool)
        .await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    eprintln!(
        "PostgreSQL {server_version}, synchronous_commit={sync_commit}; {} rounds of {} s per measurement",
        args.rounds, args.seconds
    );

    let store = Arc::new(PgEventStore::new(pool.clone()));
    let per_writer = (args.streams / args.writers).max(1);
    // Each single-event writer owns `per_writer` streams and tracks their
    // versions, so every append carries an exact expected version.
    let versions: Arc<Vec<std::sync::Mutex<Vec<u64>>>> = Arc::new(
        (0..args.writers)
            .map(|_| std::sync::Mutex::new(vec![0; per_writer]))
            .collect(),
    );
    let raw_versions: Arc<Vec<std::sync::Mutex<Vec<u64>>>> = Arc::new(
        (0..args.writers)
            .map(|_| std::sync::Mutex::new(vec![0; per_writer]))
            .collect(),
    );
    let tenant = TenantId::parse("bench")?;
    let ticket = TypeName::parse("ticket")?;

    let mut single = Vec::new();
    let mut single_raw = Vec::new();
    let mut batched = Vec::new();
    let mut batched_raw = Vec::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut raw_latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for round in 0..args.rounds {
        // Odd rounds run the baseline first, so drift (checkpoints,
        // autovacuum, neighbours) does not always favour one side.
        let baseline_first = round % 2 == 1;
        let mut pending_single_raw = None;
        let mut pending_batched_raw = None;
        if baseline_first {
            pending_single_raw =
                Some(single_insert(&pool, &raw_versions, &args, per_writer).await?);
            pending_batched_raw = Some(batched_insert(&pool, &args).await?);
        }
        // (a) single-event appends, exact expected version.
        let (s, v, t, k) = (
            store.clone(),
            versions.clone(),
            tenant.clone(),
            ticket.clone(),
        );
        let out = drive(args.writers, args.seconds, move |w, i| {
            let (s, v, t, k) = (s.clone(), v.clone(), t.clone(), k.clone());
            async move {
                let slot = (i as usize) % per_writer;
                let expected = v[w].lock().expect("lock")[slot];
                let stream = StreamRef {
                    tenant: t,
                    stream_type: k,
                    id: StreamId::parse(format!("s-{w}-{slot}"))?,
                };
                let r = s
                    .append(&stream, ExpectedVersion::Exact(expected), &[new_event(i)])
                    .await?;
                v[w].lock().expect("lock")[slot] = r.stream_version;
                Ok(1)
            }
        })
        .await?;
        eprintln!(
            "round {round}: single-event appends      {:>9.0} events/s",
            out.rate()
        );
        single.push(out.rate());
        latency.add(&out.latency)?;

        let out = match pending_single_raw.take() {
            Some(out) => out,
            None => single_insert(&pool, &raw_versions, &args, per_writer).await?,
        };
        eprintln!(
            "round {round}: plain INSERT, 1 row/tx    {:>9.0} rows/s",
            out.rate()
        );
        single_raw.push(out.rate());
        raw_latency.add(&out.latency)?;

        // (b) batches to fresh streams.
        let (s, t, k, n) = (store.clone(), tenant.clone(), ticket.clone(), args.batch);
        let out = drive(args.batch_writers, args.seconds, move |_, i| {
            let (s, t, k) = (s.clone(), t.clone(), k.clone());
            async move {
                let stream = StreamRef {
                    tenant: t,
                    stream_type: k,
                    id: StreamId::parse(format!("b-{}", Uuid::now_v7()))?,
                };
                let batch: Vec<NewEvent> = (0..n as u64).map(|j| new_event(i * 1000 + j)).collect();
                s.append(&stream, ExpectedVersion::NoStream, &batch).await?;
                Ok(n as u64)
            }
        })
        .await?;
        eprintln!(
            "round {round}: batched appends ({:>3}/tx) {:>9.0} events/s",
            args.batch,
            out.rate()
        );
        batched.push(out.rate());

        let out = match pending_batched_raw.take() {
            Some(out) => out,
            None => batched_insert(&pool, &args).await?,
        };
        eprintln!(
            "round {round}: plain INSERT, {:>3} rows/tx {:>9.0} rows/s",
            args.batch,
            out.rate()
        );
        batched_raw.push(out.rate());
    }

    // (b2) and (c3): read everything in global order, 1,000 at a time.
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    sqlx::query("VACUUM ANALYZE raw_events")
        .execute(&pool)
        .await?;
    let events_count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let raw_count: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_events")
        .fetch_one(&pool)
        .await?;
    let rows = events_count.min(raw_count) as u64;
    let mut reads = Vec::new();
    let mut raw_reads = Vec::new();
    for round in 0..args.rounds {
        let t = Instant::now();
        let mut after = 0;
        let mut n = 0u64;
        while n < rows {
            let batch = store.read_all(after, 1000).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            n += batch.len() as u64;
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        eprintln!("round {round}: read_all in order       {rate:>9.0} events/s ({n} events)");
        reads.push(rate);

        let t = Instant::now();
        let mut after = 0i64;
        let mut n = 0u64;
        while n < rows {
            let batch = sqlx::query(
                "SELECT position, event_id, tenant_id, stream_id, stream_type, stream_version, event_type, \
                 schema_version, recorded_at, data, metadata FROM raw_events WHERE position > $1 \
                 ORDER BY position LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&pool)
            .await?;
            let Some(last) = batch.last() else { break };
            after = last.try_get(0)?;
            for row in &batch {
                // Decode the same columns into the same types as the store.
                let _: (i64, Uuid, String, String, String, i64, String, i16) = (
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                );
                let _: chrono::DateTime<chrono::Utc> = row.try_get(8)?;
                let _: sqlx::types::Json<Box<serde_json::value::RawValue>> = row.try_get(9)?;
                let _: sqlx::types::Json<Metadata> = row.try_get(10)?;
            }
            n += batch.len() as u64;
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        eprintln!("round {round}: plain ordered SELECT     {rate:>9.0} rows/s ({n} rows)");
        raw_reads.push(rate);
    }

    // Each round pairs a measurement with its baseline; the ratio reported
    // is the median of the per-round ratios.
    let paired = |xs: &[f64], ys: &[f64]| median(xs.iter().zip(ys).map(|(x, y)| x / y).collect());
    let (r1, r2, r3) = (
        paired(&single, &single_raw),
        paired(&batched, &batched_raw),
        paired(&reads, &raw_reads),
    );
    let (a, c1) = (median(single), median(single_raw));
    let (b, c2) = (median(batched), median(batched_raw));
    let (b2, c3) = (median(reads), median(raw_reads));
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "bench": "append",
        "postgres": server_version,
        "synchronous_commit": sync_commit,
        "rounds": args.rounds,
        "seconds_per_round": args.seconds,
        "single_append_events_per_s": a.round(),
        "single_insert_rows_per_s": c1.round(),
        "single_ratio": (r1 * 1000.0).round() / 1000.0,
        "batch_size": args.batch,
        "batch_append_events_per_s": b.round(),
        "batch_insert_rows_per_s": c2.round(),
        "batch_ratio": (r2 * 1000.0).round() / 1000.0,
        "read_all_events_per_s": b2.round(),
        "raw_select_rows_per_s": c3.round(),
        "read_ratio": (r3 * 1000.0).round() / 1000.0,
        "read_rows": rows,
        "single_append_latency_ms": { "p50": us(&latency, 0.5), "p99": us(&latency, 0.99), "max": latency.max() as f64 / 1000.0 },
        "single_insert_latency_ms": { "p50": us(&raw_latency, 0.5), "p99": us(&raw_latency, 0.99), "max": raw_latency.max() as f64 / 1000.0 },
    });
    eprintln!(
        "single: {:.0} vs {:.0} ({:.1} %); batched: {:.0} vs {:.0} ({:.1} %); reads: {:.0} vs {:.0} ({:.1} %); \
         append latency p50 {:.2} ms, p99 {:.2} ms",
        a,
        c1,
        100.0 * r1,
        b,
        c2,
        100.0 * r2,
        b2,
        c3,
        100.0 * r3,
        us(&latency, 0.5),
        us(&latency, 0.99)
    );
    println!("{report}");
    pool.close().await;
    Ok(())
}
