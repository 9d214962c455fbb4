//! `chronicle-bench timers`: how fast the timer worker fires a backlog of
//! due timers, and how soon after its due time a timer fires in real time.
//!
//! 1. Backlog: tickets opened a day ago under the default SLA policy (three
//!    stages each, all overdue), appended to the log in bulk; the timers
//!    projection builds `read.timers`; then the timer workers fire every
//!    pending timer (a breach and an escalation each) and the rate is
//!    timers per second (and commands per second).
//! 2. On time: in another tenant with an SLA policy of seconds, tickets
//!    whose opening times make their deadlines fall evenly over a window in
//!    the near future, while `--waiting` timers (default 100,000) are
//!    pending and not due; each breach's `recorded_at` minus its `due` is the
//!    due-to-fired delay (p50, p99, max).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_projections::clock::SystemClock;
use chronicle_projections::reactions::timers::{Timers, WorkerOptions};
use chronicle_projections::reactions::Reactor;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{
    EventStore, ExpectedVersion, NewEvent, StreamId, StreamRef, TenantId, TypeName,
};
use chrono::{DateTime, TimeDelta, Utc};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use super::{metadata, scratch_database};

#[derive(clap::Args, Clone)]
pub struct TimersArgs {
    /// Pending, due timers in the backlog (three per ticket).
    #[arg(long, default_value_t = 100_000)]
    timers: u64,
    /// Timers falling due during the on-time measurement.
    #[arg(long, default_value_t = 3_000)]
    on_time: u64,
    /// Pending timers not yet due (tickets opened now, due hours later)
    /// present while the on-time timers fall due.
    #[arg(long, default_value_t = 100_000)]
    waiting: u64,
    /// Seconds over which those deadlines are spread.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Timer workers (each claims with SKIP LOCKED).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Commands in flight per worker.
    #[arg(long, default_value_t = WorkerOptions::default().concurrency)]
    concurrency: usize,
}

fn opened(at: DateTime<Utc>, priority: &str) -> Value {
    let mut data: Value = chronicle_domain::ticket::event_specs()
        .into_iter()
        .find(|s| s.event_type == "ticket.opened")
        .map(|s| s.example)
        .unwrap_or(Value::Null);
    data["at"] = json!(at);
    data["priority"] = json!(priority);
    data
}

/// Appends one `ticket.opened` per opening time, with 4 writers.
async fn open_tickets(
    store: &PgEventStore,
    tenant: &str,
    priority: &'static str,
    times: Vec<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let chunks: Vec<Vec<DateTime<Utc>>> = times
        .chunks(times.len().div_ceil(4).max(1))
        .map(<[_]>::to_vec)
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (store, tenant) = (store.clone(), TenantId::parse(tenant));
            tokio::spawn(async move {
                let tenant = tenant?;
                for at in chunk {
                    let stream = StreamRef {
                        tenant: tenant.clone(),
                        stream_type: TypeName::parse("ticket")?,
                        id: StreamId::parse(Uuid::now_v7().to_string())?,
                    };
                    let event = NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: TypeName::parse("ticket.opened")?,
                        schema_version: 1,
                        data: opened(at, priority),
                        metadata: metadata(),
                        personal: None,
                    };
                    store
                        .append(&stream, ExpectedVersion::NoStream, &[event])
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Sets `tenant`'s SLA policy to seconds: P1 assign 5, respond 10, resolve 15.
async fn fast_policy(store: &PgEventStore, tenant: &str) -> anyhow::Result<()> {
    let targets = |a: u64, f: u64, r: u64| json!({ "time_to_assign_secs": a, "time_to_first_response_secs": f, "time_to_resolve_secs": r });
    let slow = targets(3600, 3600, 3600);
    let stream = StreamRef {
        tenant: TenantId::parse(tenant)?,
        stream_type: TypeName::parse("tenant_policy")?,
        id: StreamId::parse(chronicle_domain::policy::stream_id(tenant).to_string())?,
    };
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TypeName::parse("tenant_policy.sla_policy_set")?,
        schema_version: 1,
        data: json!({
            "policy": { "p1": targets(5, 10, 15), "p2": slow, "p3": slow, "p4": slow },
            "by": Uuid::now_v7(),
            "at": Utc::now(),
        }),
        metadata: metadata(),
        personal: None,
    };
    store
        .append(&stream, ExpectedVersion::NoStream, &[event])
        .await?;
    Ok(())
}

async fn scalar(pool: &PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

/// Polls `sql` (one bigint) until it reaches `target`, within `limit`.
async fn wait_until(pool: &PgPool, sql: &str, target: i64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if scalar(pool, sql).await? >= target {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for: {sql}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(args: TimersArgs) -> anyhow::Result<()> {
    let scratch = scratch_database("chronicle_bench_timers").await?;
    let pool = PgPoolOptions::new()
        .max_connections(48)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let clock = Arc::new(SystemClock);
    let reactor = Reactor::new(store.clone(), clock);

    // The backlog: every stage of every ticket overdue.
    let tickets = args.timers.div_ceil(3);
    let long_ago = Utc::now() - TimeDelta::days(1);
    let t = Instant::now();
    open_tickets(&store, "bench", "P2", vec![long_ago; tickets as usize]).await?;
    eprintln!(
        "opened {tickets} tickets in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let projector = tokio::spawn(chronicle_projections::runtime::run(
        Arc::new(Timers::new(reactor.clone())),
        store.clone(),
        (*pool.connect_options()).clone(),
        chronicle_projections::runtime::Options::default(),
        stopped.clone(),
    ));
    let t = Instant::now();
    let pending = (tickets * 3) as i64;
    wait_until(
        &pool,
        "SELECT count(*) FROM read.timers WHERE status = 'pending'",
        pending,
        Duration::from_secs(600),
    )
    .await?;
    eprintln!(
        "timers projection: {pending} pending timers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let options = WorkerOptions {
        concurrency: args.concurrency,
        ..WorkerOptions::default()
    };
    let t = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            chronicle_projections::reactions::timers::spawn(
                pool.clone(),
                reactor.clone(),
                options.clone(),
                stopped.clone(),
            )
        })
        .collect();
    wait_until(
        &pool,
        "SELECT count(*) FROM timer_firings",
        pending,
        Duration::from_secs(3600),
    )
    .await?;
    let backlog_secs = t.elapsed().as_secs_f64();
    let rate = pending as f64 / backlog_secs;
    let recorded = scalar(
        &pool,
        "SELECT count(*) FROM timer_firings WHERE outcome = 'recorded'",
    )
    .await?;
    eprintln!(
        "backlog: {pending} timers fired in {backlog_secs:.1} s = {rate:.0} timers/s \
         ({:.0} commands/s; {recorded} recorded)",
        rate * 2.0
    );

    // Timers that wait: pending and not due during the measurement.
    let waiting_tickets = args.waiting.div_ceil(3);
    open_tickets(
        &store,
        "waiting",
        "P4",
        vec![Utc::now(); waiting_tickets as usize],
    )
    .await?;
    let waiting = (waiting_tickets * 3) as i64;
    let t = Instant::now();
    wait_until(
        &pool,
        "SELECT count(*) FROM read.timers WHERE status = 'pending'",
        waiting,
        Duration::from_secs(600),
    )
    .await?;
    eprintln!(
        "waiting: {waiting} timers pending, none due for hours (recorded in {:.1} s)",
        t.elapsed().as_secs_f64()
    );

    // On time: deadlines spread evenly over the window, starting in 2 s,
    // among the waiting timers.
    fast_policy(&store, "ontime").await?;
    let first_due = Utc::now() + TimeDelta::seconds(2);
    let count = args.on_time.div_ceil(3).max(1);
    let step = args.window as f64 * 1000.0 / count as f64;
    // Assignment is due 5 s after opening, the others 10 and 15 s.
    let times: Vec<DateTime<Utc>> = (0..count)
        .map(|i| {
            first_due - TimeDelta::seconds(5) + TimeDelta::milliseconds((i as f64 * step) as i64)
        })
        .collect();
    open_tickets(&store, "ontime", "P1", times).await?;
    let total = (count * 3) as i64;
    wait_until(
        &pool,
        "SELECT count(*) FROM events WHERE tenant_id = 'ontime' AND event_type = 'ticket.escalated'",
        total,
        Duration::from_secs(args.window + 60),
    )
    .await?;
    let delays: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM recorded_at - (data->>'due')::timestamptz)::float8 \
           FROM events WHERE tenant_id = 'ontime' AND event_type = 'ticket.sla_breached'",
    )
    .fetch_all(&pool)
    .await?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for d in &delays {
        hist.saturating_record((d * 1_000_000.0).max(1.0) as u64);
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "on time: {} timers due over {} s fired {:.1} ms (p50), {:.1} ms (p99), {:.1} ms (max) after their due time",
        delays.len(),
        args.window,
        ms(0.5),
        ms(0.99),
        hist.max() as f64 / 1000.0
    );

    let still_waiting = scalar(
        &pool,
        "SELECT count(*) FROM read.timers WHERE status = 'pending'",
    )
    .await?;
    anyhow::ensure!(
        still_waiting == waiting,
        "{still_waiting} timers pending at the end, {waiting} expected: a waiting timer fired"
    );
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    let _ = projector.await;
    println!(
        "{}",
        json!({
            "bench": "timers",
            "backlog": {
                "timers": pending,
                "workers": args.workers,
                "concurrency": args.concurrency,
                "seconds": backlog_secs,
                "timers_per_s": rate.round(),
                "commands_per_s": (rate * 2.0).round(),
            },
            "on_time": {
                "pending_meanwhile": waiting,
                "timers": delays.len(),
                "window_s": args.window,
                "delay_ms": { "p50": ms(0.5), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0 },
            },
        })
    );
    Ok(())
}
