//! `chronicle-bench catchup`: how fast the projections catch up from an
//! empty read schema, beside the raw ordered read rate of the same events
//! table in the same run; then the command → read-model lag under a steady
//! command rate, with the projectors running live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_commands::{CommandHandler, Context};
use chronicle_domain::catalog::EventSpec;
use chronicle_domain::ticket::{Contact, Ticket, TicketCommand};
use chronicle_domain::value::{Email, LongText, Priority, ShortText};
use chronicle_projections::positions::Positions;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::TypeName;
use chronicle_store::{EventStore, ExpectedVersion, NewEvent, StreamId, StreamRef, TenantId};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::{metadata, scratch_database};

#[derive(clap::Args, Clone)]
pub struct CatchupArgs {
    /// Events to load before the catch-up.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Commands per second for the lag measurement.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of the lag measurement.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Events per projection batch.
    #[arg(long, default_value_t = chronicle_projections::runtime::Options::default().batch_size)]
    batch: usize,
}

/// A realistic mix per round: each aggregate's lifecycle in order (the
/// catalogue's golden examples), tickets three times as often.
const LIFECYCLES: &[(&str, usize, &[&str])] = &[
    (
        "ticket",
        3,
        &[
            "ticket.opened",
            "ticket.expert_assigned",
            "ticket.accepted",
            "ticket.work_started",
            "ticket.commented",
            "ticket.commented",
            "ticket.priority_changed",
            "ticket.resolved",
            "ticket.survey_sent",
            "ticket.survey_answered",
            "ticket.closed",
        ],
    ),
    (
        "lead",
        1,
        &[
            "lead.captured",
            "lead.qualified",
            "lead.owner_assigned",
            "lead.serviceability_checked",
            "lead.design_submitted",
            "lead.design_comment_added",
            "lead.design_approval_requested",
            "lead.design_approved",
            "lead.implementation_task_added",
            "lead.implementation_task_assigned",
            "lead.implementation_task_completed",
            "lead.implementation_completed",
            "lead.activation_test_recorded",
            "lead.defect_raised",
            "lead.defect_resolved",
            "lead.testing_passed",
            "lead.handed_over_to_support",
            "lead.closed",
        ],
    ),
    (
        "contract",
        1,
        &[
            "contract.drafted",
            "contract.amended",
            "contract.shared",
            "contract.submitted_for_approval",
            "contract.approved",
            "contract.signed",
            "contract.activated",
            "contract.renewed",
        ],
    ),
    (
        "approval",
        1,
        &[
            "approval.requested",
            "approval.decision_recorded",
            "approval.level_completed",
            "approval.granted",
        ],
    ),
    (
        "knowledge_article",
        1,
        &["knowledge_article.published", "knowledge_article.revised"],
    ),
    (
        "user",
        1,
        &[
            "user.registered",
            "user.roles_changed",
            "user.expert_skills_set",
            "user.availability_changed",
        ],
    ),
];

type Lifecycle = (String, Vec<(&'static str, u16, Value)>);

fn lifecycles() -> anyhow::Result<Vec<Lifecycle>> {
    let specs: Vec<EventSpec> = chronicle_domain::catalog::all();
    let mut out = Vec::new();
    for (stream_type, weight, types) in LIFECYCLES {
        let mut events = Vec::new();
        for event_type in *types {
            let spec = specs
                .iter()
                .filter(|s| s.event_type == *event_type)
                .max_by_key(|s| s.version)
                .ok_or_else(|| anyhow::anyhow!("no catalogue entry for {event_type}"))?;
            events.push((spec.event_type, spec.version, spec.example.clone()));
        }
        for _ in 0..*weight {
            out.push((stream_type.to_string(), events.clone()));
        }
    }
    Ok(out)
}

/// Gives a stream's child entities (comments, tasks, ...) fresh ids,
/// consistently across the stream's events.
fn freshen(mut data: Value, ids: &mut std::collections::HashMap<String, Uuid>) -> Value {
    const KEYED: &[&str] = &[
        "comment_id",
        "task_id",
        "defect_id",
        "test_id",
        "survey_id",
        "decision_id",
    ];
    if let Value::Object(map) = &mut data {
        for (key, value) in map.iter_mut() {
            if let (true, Some(old)) = (KEYED.contains(&key.as_str()), value.as_str()) {
                let new = *ids.entry(old.to_owned()).or_insert_with(Uuid::now_v7);
                *value = json!(new);
            }
        }
    }
    data
}

async fn load(store: &PgEventStore, target: u64) -> anyhow::Result<u64> {
    let kinds = lifecycles()?;
    let tenant = TenantId::parse("bench")?;
    let mut written = 0u64;
    let writers = 4;
    let per_writer = target / writers;
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, kinds, tenant) = (store.clone(), kinds.clone(), tenant.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while n < per_writer {
                    for (stream_type, specs) in &kinds {
                        let stream = StreamRef {
                            tenant: tenant.clone(),
                            stream_type: TypeName::parse(stream_type)?,
                            id: StreamId::parse(Uuid::now_v7().to_string())?,
                        };
                        let mut ids = std::collections::HashMap::new();
                        let events: Vec<NewEvent> = specs
                            .iter()
                            .map(|(event_type, version, example)| {
                                Ok(NewEvent {
                                    event_id: Uuid::now_v7(),
                                    event_type: TypeName::parse(*event_type)?,
                                    schema_version: *version,
                                    data: freshen(example.clone(), &mut ids),
                                    metadata: metadata(),
                                    personal: None,
                                })
                            })
                            .collect::<anyhow::Result<_>>()?;
                        n += events.len() as u64;
                        store
                            .append(&stream, ExpectedVersion::NoStream, &events)
                            .await?;
                    }
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    for t in tasks {
        written += t.await??;
    }
    Ok(written)
}

pub async fn run(args: CatchupArgs) -> anyhow::Result<()> {
    let scratch = scratch_database("chronicle_bench_catchup").await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&scratch.url)
        .await?;
    chronicle_store::MIGRATOR.run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));

    let t = Instant::now();
    let loaded = load(&store, args.events).await?;
    eprintln!(
        "loaded {loaded} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    let head = store.head_position().await?;

    // Baseline: the raw ordered read of the same table.
    let t = Instant::now();
    let (mut after, mut n) = (0u64, 0u64);
    loop {
        let batch = store.read_all(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        n += batch.len() as u64;
    }
    let raw_rate = n as f64 / t.elapsed().as_secs_f64();
    eprintln!("raw ordered read:   {raw_rate:>9.0} events/s ({n} events)");

    // Catch-up of every projection from zero, all running at once.
    let projections = chronicle_projections::all();
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let connect = (*pool.connect_options()).clone();
    let t = Instant::now();
    let runner = tokio::spawn(chronicle_projections::runtime::run_all(
        projections,
        Arc::new(PgEventStore::new(pool.clone())),
        connect,
        chronicle_projections::runtime::Options {
            batch_size: args.batch,
            ..Default::default()
        },
        stopped,
    ));
    let positions = Positions::follow(pool.clone());
    let all = chronicle_projections::all();
    let (mut progress, mut since) = (0, Instant::now());
    loop {
        let rows = chronicle_projections::status::status(&pool, &all).await?;
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
        let now: u64 = rows.iter().map(|r| r.position).sum();
        if now > progress {
            (progress, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("no projection progressed for 60 s: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catchup_secs = t.elapsed().as_secs_f64();
    let catchup_rate = n as f64 / catchup_secs;
    eprintln!(
        "catch-up, {} projections: {catchup_rate:>9.0} events/s ({catchup_secs:.1} s; ratio to raw read {:.2})",
        names.len(),
        catchup_rate / raw_rate
    );

    // Lag: commands at a steady rate, each timed until its event is
    // visible in the tickets read model.
    let commands = CommandHandler::new(store.clone());
    let mut lag = Histogram::<u64>::new(3)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut issued = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        issued += 1;
        let (commands, positions, tx) = (commands.clone(), positions.clone(), tx.clone());
        tokio::spawn(async move {
            let id = Uuid::now_v7();
            let Ok(outcome) = commands
                .execute::<Ticket>(
                    &StreamId::parse(id.to_string()).expect("uuid"),
                    &Context::new(TenantId::parse("bench").expect("valid"), "bench"),
                    &open_ticket(),
                )
                .await
            else {
                return;
            };
            let done = Instant::now();
            if positions
                .wait_for(&["tickets"], outcome.position, Duration::from_secs(10))
                .await
                .is_ok()
            {
                let _ = tx.send(done.elapsed().as_micros() as u64);
            }
        });
    }
    drop(tx);
    let mut seen = 0u64;
    while let Some(us) = rx.recv().await {
        lag.record(us.max(1))?;
        seen += 1;
    }
    let ms = |q: f64| lag.value_at_quantile(q) as f64 / 1000.0;
    let achieved = seen as f64 / args.seconds as f64;
    eprintln!(
        "lag at {} commands/s ({achieved:.0}/s achieved, {seen}/{issued} seen): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        ms(0.5),
        ms(0.99),
        lag.max() as f64 / 1000.0
    );
    let _ = stop.send(true);
    let _ = runner.await;
    println!(
        "{}",
        json!({
            "bench": "catchup",
            "events": n,
            "projections": names,
            "raw_read_events_per_s": raw_rate.round(),
            "catchup_events_per_s": catchup_rate.round(),
            "catchup_ratio_to_raw": (catchup_rate / raw_rate * 100.0).round() / 100.0,
            "lag_rate_per_s": args.rate,
            "lag_seen": seen,
            "lag_p50_ms": ms(0.5),
            "lag_p99_ms": ms(0.99),
            "lag_max_ms": lag.max() as f64 / 1000.0,
        })
    );
    Ok(())
}

fn open_ticket() -> TicketCommand {
    let text = |s: &str| ShortText::parse("text", s.to_owned()).expect("valid");
    TicketCommand::Open {
        actor: Uuid::now_v7(),
        customer_id: Uuid::now_v7(),
        contact: Contact {
            name: text("Ann"),
            email: Email::parse("email", "ann@example.com").expect("valid"),
        },
        product: text("fibre-1000"),
        category: text("connectivity"),
        priority: Priority::P2,
        required_skill: text("networking"),
        title: text("Packet loss on the uplink"),
        description: LongText::parse("description", "Loss of 2-5 %.".to_owned()).expect("valid"),
        at: chrono::Utc::now(),
    }
}
