//! Reactions: projections that answer events by issuing commands (process
//! managers), and the workers that act when a timer falls due or a
//! notification waits for delivery.
//!
//! | reaction | reads | issues |
//! |---|---|---|
//! | [`timers`] | tickets, approvals, contracts, tenant policies | (keeps `read.timers`; its [`timers::TimerWorker`] fires them: SLA breach and escalation, approval escalation, contract expiry and renewal notice) |
//! | [`matching`] | tickets, users | expert assignment, escalation when nobody fits |
//! | [`approval_flow`] | lead designs, contracts, approvals, tenant policies | approval requests; the subject's approval or rejection |
//! | [`surveys`] | tickets | the survey of a resolved ticket |
//! | [`notifications`] | nearly everything | (keeps `read.notifications`; its [`delivery::DeliveryWorker`] sends them) |
//!
//! Exactly one effect per cause: every command a reaction issues takes the
//! ids of its events from its cause (the triggering event's id, or the
//! timer's id and due time) and a tag, through
//! [`chronicle_commands::EventIds::DerivedFrom`]. A batch applied again
//! after a crash issues the same commands with the same ids; the command
//! handler finds them stored and writes nothing. Decisions that need more
//! than the event read state as of the event's position
//! ([`chronicle_commands::Until::Position`]) or the reaction's own tables,
//! so that a replay decides the same way.

pub mod approval_flow;
pub mod delivery;
pub mod matching;
pub mod notifications;
pub mod surveys;
pub mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_commands::{CommandError, CommandHandler, Context, EventIds, Until};
use chronicle_domain::policy::TenantPolicy;
use chronicle_domain::{Aggregate, ErrorCode};
use chronicle_store::postgres::PgEventStore;
use chronicle_store::{RecordedEvent, StoreError, StreamId, TenantId};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::{ApplyError, Projection};

/// Every reaction projection, in a stable order.
pub fn all(reactor: &Reactor) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(timers::Timers::new(reactor.clone())),
        Arc::new(matching::Matching::new(reactor.clone())),
        Arc::new(approval_flow::ApprovalFlow::new(reactor.clone())),
        Arc::new(surveys::Surveys::new(reactor.clone())),
        Arc::new(notifications::Notifications::new(reactor.clone())),
    ]
}

/// What reactions share: the command handler they issue commands through,
/// and the clock their commands are stamped with.
#[derive(Clone)]
pub struct Reactor {
    commands: CommandHandler<PgEventStore>,
    clock: Arc<dyn Clock>,
}

/// Why a reaction issues a command: the cause its event ids derive from.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub tenant: &'a str,
    /// The seed of the event ids (with the command's tag).
    pub seed: Uuid,
    /// The event that caused it, if an event did (a timer has none).
    pub causation: Option<Uuid>,
    pub correlation: Option<Uuid>,
}

impl<'a> Cause<'a> {
    /// A command caused by `event`.
    pub fn event(event: &'a RecordedEvent) -> Self {
        Self {
            tenant: &event.tenant,
            seed: event.event_id,
            causation: Some(event.event_id),
            correlation: event.metadata.correlation_id,
        }
    }
}

/// What became of a command a reaction issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// New events were recorded, the last at `position`.
    Recorded { position: u64 },
    /// The same command of the same cause was recorded before.
    AlreadyRecorded,
    /// The domain accepted it and nothing changed.
    Unchanged,
    /// The domain refused it (the world moved on: a stage completed, a
    /// ticket closed); not an error of the reaction.
    Refused { code: &'static str },
}

impl Issued {
    fn label(&self) -> &'static str {
        match self {
            Issued::Recorded { .. } => "recorded",
            Issued::AlreadyRecorded => "already_recorded",
            Issued::Unchanged => "unchanged",
            Issued::Refused { .. } => "refused",
        }
    }

    /// True when the command's effect is in the log (now or before).
    pub fn took_effect(&self) -> bool {
        matches!(self, Issued::Recorded { .. } | Issued::AlreadyRecorded)
    }
}

impl Reactor {
    pub fn new(store: Arc<PgEventStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            commands: CommandHandler::new(store),
            clock,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn store(&self) -> &Arc<PgEventStore> {
        self.commands.store()
    }

    /// Issues `command` on the aggregate in `stream` as `system:<reaction>`,
    /// with event ids derived from `cause` and `tag`.
    pub async fn issue<A: Aggregate>(
        &self,
        reaction: &'static str,
        cause: Cause<'_>,
        tag: &str,
        stream: Uuid,
        command: A::Command,
    ) -> Result<Issued, ApplyError> {
        let tenant = tenant(cause.tenant)?;
        let stream_id = StreamId::parse(stream.to_string()).map_err(store_error)?;
        let mut ctx = Context::new(tenant, format!("system:{reaction}"));
        ctx.source = reaction;
        ctx.causation_id = cause.causation;
        if let Some(correlation) = cause.correlation {
            ctx.correlation_id = correlation;
        }
        ctx.event_ids = EventIds::DerivedFrom(derive(cause.seed, tag));
        let issued = match self.commands.execute::<A>(&stream_id, &ctx, &command).await {
            Ok(outcome) if outcome.already_recorded => Issued::AlreadyRecorded,
            Ok(outcome) if outcome.event_ids.is_empty() => Issued::Unchanged,
            Ok(outcome) => Issued::Recorded {
                position: outcome.position,
            },
            Err(CommandError::Domain(e)) => Issued::Refused { code: e.code() },
            Err(CommandError::NotFound) => Issued::Refused { code: "not_found" },
            Err(CommandError::PreconditionFailed { .. }) => {
                unreachable!("reactions never send If-Match")
            }
            Err(CommandError::TooMuchContention { retries }) => {
                return Err(ApplyError::Transient(format!(
                    "{reaction}: {} kept changing ({retries} retries)",
                    A::STREAM_TYPE
                )))
            }
            // Recorded before under these ids, with another decision (the
            // same cause decided on a later state): the effect is there.
            Err(CommandError::Store(StoreError::DuplicateEventId { .. })) => {
                Issued::AlreadyRecorded
            }
            Err(CommandError::Store(e)) => return Err(store_error(e)),
            Err(CommandError::Decode { position, source }) => {
                return Err(ApplyError::Poison {
                    position,
                    reason: format!("{reaction}: a stored event does not decode: {source}"),
                })
            }
        };
        metrics::counter!("chronicle_reactions_total",
            "reaction" => reaction, "command" => A::STREAM_TYPE, "outcome" => issued.label())
        .increment(1);
        if let Issued::Refused { code } = &issued {
            tracing::debug!(reaction, tag, %stream, code, "the domain refused a reaction");
        }
        Ok(issued)
    }

    /// The aggregate in `stream` as it was when the log reached `position`;
    /// `None` when it did not exist then (or belongs elsewhere).
    pub async fn load_at<A: Aggregate>(
        &self,
        tenant_id: &str,
        stream: Uuid,
        position: u64,
    ) -> Result<Option<A>, ApplyError> {
        let tenant = tenant(tenant_id)?;
        let stream_id = StreamId::parse(stream.to_string()).map_err(store_error)?;
        match self
            .commands
            .load_until::<A>(&tenant, &stream_id, Until::Position(position))
            .await
        {
            Ok(loaded) => Ok(loaded.map(|l| l.state)),
            Err(CommandError::Store(e)) => Err(store_error(e)),
            Err(CommandError::Decode { position, source }) => Err(ApplyError::Poison {
                position,
                reason: format!("a stored event does not decode: {source}"),
            }),
            Err(e) => Err(ApplyError::Transient(e.to_string())),
        }
    }
}

/// The event ids of a command issued for `seed` under `tag`.
pub fn derive(seed: Uuid, tag: &str) -> Uuid {
    Uuid::new_v5(&seed, tag.as_bytes())
}

fn tenant(tenant: &str) -> Result<TenantId, ApplyError> {
    TenantId::parse(tenant).map_err(|e| ApplyError::Transient(e.to_string()))
}

fn store_error(e: StoreError) -> ApplyError {
    match e {
        StoreError::Database(db) => ApplyError::Db(db),
        other => ApplyError::Transient(other.to_string()),
    }
}

/// The tenants' policies as the log stood at each event a batch handles.
/// Loaded once per tenant and batch at the first event that needs it, then
/// kept current by the policy events of the same batch (reactions see every
/// event in order).
#[derive(Default)]
pub struct Policies {
    by_tenant: HashMap<String, TenantPolicy>,
}

impl Policies {
    /// Call for every event of the batch, in order, before using the policy.
    pub fn observe(&mut self, event: &RecordedEvent) -> Result<(), ApplyError> {
        if event.stream_type != TenantPolicy::STREAM_TYPE {
            return Ok(());
        }
        if let Some(policy) = self.by_tenant.get_mut(&event.tenant) {
            let decoded = crate::read::decode_event(event)?;
            *policy = std::mem::take(policy).evolve(&decoded);
        }
        Ok(())
    }

    /// `tenant`'s policy as of `event`.
    pub async fn at(
        &mut self,
        reactor: &Reactor,
        event: &RecordedEvent,
    ) -> Result<&TenantPolicy, ApplyError> {
        if !self.by_tenant.contains_key(&event.tenant) {
            let stream = chronicle_domain::policy::stream_id(&event.tenant);
            let policy = reactor
                .load_at::<TenantPolicy>(&event.tenant, stream, event.position)
                .await?
                .unwrap_or_default();
            self.by_tenant.insert(event.tenant.clone(), policy);
        }
        Ok(&self.by_tenant[&event.tenant])
    }
}

impl Reactor {
    /// The aggregates in `streams` as they were when the log reached
    /// `position`, folded from one read. Streams of another type are
    /// skipped; absent ones are missing from the answer.
    pub async fn load_many_at<A: Aggregate>(
        &self,
        streams: &[Uuid],
        position: u64,
    ) -> Result<HashMap<Uuid, A>, ApplyError> {
        let ids: Vec<String> = streams.iter().map(Uuid::to_string).collect();
        let events = self
            .store()
            .read_streams_until(&ids, position)
            .await
            .map_err(store_error)?;
        let mut folded: HashMap<Uuid, A> = HashMap::new();
        for event in &events {
            if event.stream_type != A::STREAM_TYPE {
                continue;
            }
            let id = crate::read::entity_id(event)?;
            let decoded: A::Event = crate::read::decode_event(event)?;
            let state = folded.remove(&id).unwrap_or_default();
            folded.insert(id, state.evolve(&decoded));
        }
        Ok(folded)
    }
}

/// Work that falls due (timers, deliveries): one step, when more falls
/// due, and gauges for operators.
#[async_trait::async_trait]
pub trait DueWork: Send + Sync + 'static {
    /// For logs: `timer worker`.
    fn name(&self) -> &'static str;
    /// Does the work due now; how much it did (0: nothing was due).
    async fn step(&self) -> Result<usize, sqlx::Error>;
    /// When the next piece falls due.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    /// Sets the worker's gauges.
    async fn report(&self);
}

/// How often, at most, a worker refreshes its gauges.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Runs `work` until `shutdown` turns true: steps while there is work, then
/// sleeps until the next due time by `clock` (at most `poll` of real time,
/// to notice new work), backing off on errors.
pub async fn run_due<W: DueWork>(
    work: W,
    clock: Arc<dyn Clock>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut reported: Option<Instant> = None;
    while !*shutdown.borrow() {
        let next = match work.step().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => match work.next_due().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, worker = work.name(), "cannot read the next due time");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, worker = work.name(), "failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if reported.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            work.report().await;
            reported = Some(Instant::now());
        }
        let deadline = next.unwrap_or(DateTime::<Utc>::MAX_UTC);
        tokio::select! {
            _ = clock.sleep_until(deadline, poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}
