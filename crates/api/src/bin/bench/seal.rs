//! `chronicle-bench seal`: what the seal costs appends. Single-event
//! appends (exact expected version, 16 writers over 10,000 streams) are
//! measured with the seal projection stopped and with it sealing live
//! beside them, in alternating order each round; the ratio is the median of
//! the per-round ratios (sealed / unsealed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_projections::audit::seal::{Cadence, Seal};
use chronicle_projections::audit::AuditKey;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{EventStore, ExpectedVersion, StreamId, StreamRef, TenantId, TypeName};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{drive, median, new_event, scratch_database, Outcome};

#[derive(clap::Args, Clone)]
pub struct SealArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds (each measures both sides).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Streams the writers spread over.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// The seal's pace in milliseconds: the least time between two of its
    /// batches once caught up (default: the deployment's).
    #[arg(long)]
    pace_ms: Option<u64>,
}

type Versions = Arc<Vec<std::sync::Mutex<Vec<u64>>>>;

async fn appends(
    store: &Arc<PgEventStore>,
    versions: &Versions,
    args: &SealArgs,
    per_writer: usize,
) -> anyhow::Result<Outcome> {
    let (s, v) = (store.clone(), versions.clone());
    let tenant = TenantId::parse("bench")?;
    let ticket = TypeName::parse("ticket")?;
    drive(args.writers, args.seconds, move |w, i| {
        let (s, v, t, k) = (s.clone(), v.clone(), tenant.clone(), ticket.clone());
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
    .await
}

async fn sealed_through(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM audit_seal")
            .fetch_one(pool)
            .await?,
    )
}

async fn head(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(pool)
            .await?,
    )
}

/// The seal running live in this process until the returned sender says
/// stop.
struct Sealing {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start_seal(pool: &PgPool, store: &Arc<PgEventStore>, args: &SealArgs) -> Sealing {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut cadence = Cadence::default();
    if let Some(ms) = args.pace_ms {
        cadence.pace = Duration::from_millis(ms);
    }
    let task = tokio::spawn(chronicle_projections::runtime::run(
        Arc::new(Seal::new(AuditKey::from_seed([7; 32]), cadence)),
        store.clone(),
        (*pool.connect_options()).clone(),
        chronicle_projections::runtime::Options::default(),
        stopped,
    ));
    Sealing { stop, task }
}

/// Waits until the seal covers every event (it is running).
async fn caught_up(pool: &PgPool) -> anyhow::Result<()> {
    let target = head(pool).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sealed_through(pool).await? < target {
        anyhow::ensure!(Instant::now() < deadline, "the seal did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub async fn run(args: SealArgs) -> anyhow::Result<()> {
    let scratch = scratch_database("chronicle_bench_seal").await?;
    let pool = PgPoolOptions::new()
        .max_connections((args.writers + 8) as u32)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let per_writer = (args.streams / args.writers).max(1);
    let versions: Versions = Arc::new(
        (0..args.writers)
            .map(|_| std::sync::Mutex::new(vec![0; per_writer]))
            .collect(),
    );
    eprintln!(
        "{} rounds of {} s, {} writers over {} streams",
        args.rounds, args.seconds, args.writers, args.streams
    );
    let (mut with, mut without, mut lags) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let sealed_first = round % 2 == 0;
        for sealed in [sealed_first, !sealed_first] {
            if sealed {
                let sealing = start_seal(&pool, &store, &args);
                // Start from a sealed log: only live sealing is measured.
                caught_up(&pool).await?;
                let out = appends(&store, &versions, &args, per_writer).await?;
                let lag = head(&pool).await? - sealed_through(&pool).await?;
                let _ = sealing.stop.send(true);
                let _ = sealing.task.await;
                eprintln!(
                    "round {round}: appends with the seal    {:>9.0} events/s (seal {lag} events behind at the end)",
                    out.rate()
                );
                with.push(out.rate());
                lags.push(lag as f64);
            } else {
                let out = appends(&store, &versions, &args, per_writer).await?;
                eprintln!(
                    "round {round}: appends without the seal {:>9.0} events/s",
                    out.rate()
                );
                without.push(out.rate());
            }
        }
    }
    let ratio = median(with.iter().zip(&without).map(|(w, o)| w / o).collect());
    let (w, o) = (median(with), median(without));
    eprintln!("median: {w:.0} events/s with the seal, {o:.0} without; ratio {ratio:.3}");
    println!(
        "{}",
        json!({
            "bench": "seal",
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "writers": args.writers,
            "with_seal_events_per_s": w.round(),
            "without_seal_events_per_s": o.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "seal_lag_events_median": median(lags),
        })
    );
    Ok(())
}
