//! Due times, and the worker that acts when they pass.
//!
//! The `timers` projection keeps `read.timers`: one row per deadline of a
//! ticket's SLA stage (assign, first response, resolve), of an approval
//! level with a due time, and of an active contract's end (expiry) and
//! renewal notice (30 days before the end). Each row is a function of its
//! subject's state as the log stands after the batch (folded from the
//! subject's stream) and, for tickets, of the tenant's SLA policy in force
//! when the ticket was opened (kept per ticket in `read.timer_tickets`).
//! So a rebuild gives the same rows, a stage completed before its due time
//! turns its timer `completed`, a priority change or a renewal moves the
//! due time, and the event a fired timer caused marks it `fired`.
//!
//! The [`TimerWorker`] fires pending timers whose due time has passed by
//! its [`Clock`]: it claims them with `FOR UPDATE SKIP LOCKED` (any number
//! of workers in any number of processes), issues the commands with event
//! ids derived from the timer and its due time, and records the firing in
//! `timer_firings` in the same transaction as the claim. A crash before
//! that commit fires the timer again with the same ids: the command
//! handler finds them stored and nothing is doubled.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chronicle_domain::approval::{Approval, ApprovalCommand, Status as ApprovalStatus};
use chronicle_domain::contract::{Contract, ContractCommand, ContractStatus};
use chronicle_domain::policy::{SlaPolicy, SlaStage};
use chronicle_domain::ticket::{EscalatedBy, Ticket, TicketCommand, TicketStatus};
use chronicle_domain::value::ShortText;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Row as _};
use tokio::sync::watch;
use uuid::Uuid;

use super::{derive, run_due, Cause, DueWork, Issued, Policies, Reactor};
use crate::read::{entity_id, label};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// Days before a contract's end date that its renewal notice falls due.
pub const RENEWAL_NOTICE_DAYS: i64 = 30;

const NAME: &str = "timers";

/// The timers projection.
pub struct Timers {
    reactor: Reactor,
}

impl Timers {
    pub fn new(reactor: Reactor) -> Self {
        Self { reactor }
    }
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A ticket's SLA stage; `stage` is the stage.
    TicketSla,
    /// An approval level's due time; `stage` is the level index.
    ApprovalLevel,
    /// An active contract's end; `stage` is `end`.
    ContractExpiry,
    /// The renewal notice before a contract's end; `stage` is `notice`.
    ContractRenewal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TicketSla => "ticket_sla",
            Kind::ApprovalLevel => "approval_level",
            Kind::ContractExpiry => "contract_expiry",
            Kind::ContractRenewal => "contract_renewal",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Kind::TicketSla,
            Kind::ApprovalLevel,
            Kind::ContractExpiry,
            Kind::ContractRenewal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A row of `read.timers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRow {
    pub timer_id: Uuid,
    pub tenant_id: String,
    pub kind: String,
    pub subject_id: Uuid,
    pub stage: String,
    pub due_at: DateTime<Utc>,
    /// `pending`, `completed` (done before it fired), `fired` (its event is
    /// in the log) or `cancelled` (the subject ended first).
    pub status: String,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for TimerRow {
    const TABLE: &'static str = "timers";
    const KEY: &'static [&'static str] = &["timer_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.timer_id
    }
}

/// A row of `read.timer_tickets`: the SLA policy a ticket is held to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimerTicketRow {
    pub ticket_id: Uuid,
    pub tenant_id: String,
    pub sla: SlaPolicy,
    pub opened_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for TimerTicketRow {
    const TABLE: &'static str = "timer_tickets";
    const KEY: &'static [&'static str] = &["ticket_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.ticket_id
    }
}

/// The id of a subject's timer: the same for the same subject, kind and
/// stage whatever its due time.
pub fn timer_id(subject: Uuid, kind: Kind, stage: &str) -> Uuid {
    Uuid::new_v5(
        &subject,
        format!("timer:{}:{stage}", kind.as_str()).as_bytes(),
    )
}

/// A timer as the subject's state wants it.
struct Wanted {
    kind: Kind,
    stage: String,
    due_at: DateTime<Utc>,
    status: &'static str,
}

/// The last event of a subject in the batch.
#[derive(Clone, Copy)]
struct Touch<'a> {
    event: &'a RecordedEvent,
}

#[async_trait]
impl Projection for Timers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["timers", "timer_tickets"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        // In order: the policy in force at each opening, and which
        // subjects moved.
        let mut policies = Policies::default();
        let mut opened: Vec<TimerTicketRow> = Vec::new();
        let mut touched: BTreeMap<(&str, Uuid), Touch<'_>> = BTreeMap::new();
        for event in events {
            policies.observe(event)?;
            let kind = event.stream_type.as_str();
            if !matches!(kind, "ticket" | "approval" | "contract") {
                continue;
            }
            let id = entity_id(event)?;
            if event.event_type == "ticket.opened" {
                let ticket: chronicle_domain::ticket::TicketEvent =
                    crate::read::decode_event(event)?;
                let chronicle_domain::ticket::TicketEvent::Opened(e) = ticket else {
                    return Err(ApplyError::poison(event, "not a ticket.opened"));
                };
                let sla = policies.at(&self.reactor, event).await?.sla_policy();
                opened.push(TimerTicketRow {
                    ticket_id: id,
                    tenant_id: event.tenant.clone(),
                    sla,
                    opened_at: e.at,
                    position: event.position as i64,
                });
            }
            touched.insert((kind, id), Touch { event });
        }
        if touched.is_empty() {
            return Ok(());
        }
        let ids_of = |kind: &str| -> Vec<Uuid> {
            touched
                .keys()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| *id)
                .collect()
        };
        let (ticket_ids, approval_ids, contract_ids) =
            (ids_of("ticket"), ids_of("approval"), ids_of("contract"));
        let all_ids: Vec<Uuid> = touched.keys().map(|(_, id)| *id).collect();

        let mut slas: Rows<TimerTicketRow> = Rows::default();
        if !ticket_ids.is_empty() {
            slas.load(&mut *conn, "t.ticket_id = ANY($1)", &ticket_ids)
                .await?;
        }
        for row in opened {
            slas.put(row);
        }
        let mut timers: Rows<TimerRow> = Rows::default();
        timers
            .load(&mut *conn, "t.subject_id = ANY($1)", &all_ids)
            .await?;

        let at = last.position;
        let tickets = self.reactor.load_many_at::<Ticket>(&ticket_ids, at).await?;
        let approvals = self
            .reactor
            .load_many_at::<Approval>(&approval_ids, at)
            .await?;
        let contracts = self
            .reactor
            .load_many_at::<Contract>(&contract_ids, at)
            .await?;

        for ((kind, id), touch) in &touched {
            let wanted = match *kind {
                "ticket" => match (tickets.get(id), slas.get(id)) {
                    (Some(ticket), Some(sla)) => ticket_timers(ticket, &sla.sla),
                    _ => Vec::new(),
                },
                "approval" => approvals.get(id).map(approval_timers).unwrap_or_default(),
                _ => contracts.get(id).map(contract_timers).unwrap_or_default(),
            };
            for w in wanted {
                let timer_id = timer_id(*id, w.kind, &w.stage);
                let same = timers
                    .get(&timer_id)
                    .is_some_and(|t| t.due_at == w.due_at && t.status == w.status);
                if same {
                    continue;
                }
                timers.put(TimerRow {
                    timer_id,
                    tenant_id: touch.event.tenant.clone(),
                    kind: w.kind.as_str().to_owned(),
                    subject_id: *id,
                    stage: w.stage,
                    due_at: w.due_at,
                    status: w.status.to_owned(),
                    updated_at: touch.event.recorded_at,
                    position: touch.event.position as i64,
                });
            }
        }
        slas.flush(&mut *conn).await?;
        timers.flush(&mut *conn).await?;
        Ok(())
    }
}

fn ticket_timers(ticket: &Ticket, sla: &SlaPolicy) -> Vec<Wanted> {
    let (Some(priority), Some(opened_at), Some(status)) =
        (ticket.priority, ticket.opened_at, ticket.status)
    else {
        return Vec::new();
    };
    SlaStage::ALL
        .into_iter()
        .map(|stage| {
            let status = if ticket.breached.contains(&stage) {
                "fired"
            } else if ticket.stage_completed_at(stage).is_some() {
                "completed"
            } else if status == TicketStatus::Closed {
                "cancelled"
            } else {
                "pending"
            };
            Wanted {
                kind: Kind::TicketSla,
                stage: label(&stage),
                due_at: sla.due(priority, stage, opened_at),
                status,
            }
        })
        .collect()
}

fn approval_timers(approval: &Approval) -> Vec<Wanted> {
    let open = approval.status == Some(ApprovalStatus::Open);
    approval
        .levels
        .iter()
        .enumerate()
        .filter_map(|(index, level)| {
            let due_at = level.due_at()?;
            let status = if level.escalated {
                "fired"
            } else if level.completed {
                "completed"
            } else if !open {
                "cancelled"
            } else {
                "pending"
            };
            Some(Wanted {
                kind: Kind::ApprovalLevel,
                stage: index.to_string(),
                due_at,
                status,
            })
        })
        .collect()
}

/// Midnight (UTC) at the start of `date`.
fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A contract runs through its end date: it expires at the next midnight.
pub fn expiry_due(end_date: NaiveDate) -> DateTime<Utc> {
    midnight(end_date.succ_opt().unwrap_or(end_date))
}

/// The renewal notice falls due [`RENEWAL_NOTICE_DAYS`] before the end.
pub fn renewal_due(end_date: NaiveDate) -> DateTime<Utc> {
    midnight(end_date) - TimeDelta::days(RENEWAL_NOTICE_DAYS)
}

fn contract_timers(contract: &Contract) -> Vec<Wanted> {
    let Some(d) = contract.details() else {
        return Vec::new();
    };
    let end = d.terms.end_date;
    let noticed = d.renewal_noticed_for == Some(end);
    let (expiry, renewal) = match d.status {
        ContractStatus::Active => ("pending", if noticed { "fired" } else { "pending" }),
        ContractStatus::Expired => ("fired", if noticed { "fired" } else { "cancelled" }),
        ContractStatus::Terminated => ("cancelled", if noticed { "fired" } else { "cancelled" }),
        // Not running yet: no deadlines.
        _ => return Vec::new(),
    };
    vec![
        Wanted {
            kind: Kind::ContractExpiry,
            stage: "end".into(),
            due_at: expiry_due(end),
            status: expiry,
        },
        Wanted {
            kind: Kind::ContractRenewal,
            stage: "notice".into(),
            due_at: renewal_due(end),
            status: renewal,
        },
    ]
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

/// Tuning of a [`TimerWorker`].
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Timers claimed per transaction.
    pub claim: usize,
    /// Commands in flight at once while firing a claim.
    pub concurrency: usize,
    /// The longest real-time pause between looks for due timers (new
    /// timers are noticed at least this often).
    pub poll: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            claim: 256,
            concurrency: 16,
            poll: Duration::from_millis(250),
        }
    }
}

/// A timer being fired.
#[derive(Debug, Clone)]
struct Due {
    timer_id: Uuid,
    tenant_id: String,
    kind: Kind,
    subject_id: Uuid,
    stage: String,
    due_at: DateTime<Utc>,
}

/// Fires due timers by issuing their commands.
#[derive(Clone)]
pub struct TimerWorker {
    pool: PgPool,
    reactor: Reactor,
    options: WorkerOptions,
}

const CLAIM: &str = "SELECT t.timer_id, t.tenant_id, t.kind, t.subject_id, t.stage, t.due_at \
       FROM read.timers t \
      WHERE t.status = 'pending' AND t.due_at <= $1 \
        AND NOT EXISTS (SELECT 1 FROM public.timer_firings f \
                         WHERE f.timer_id = t.timer_id AND f.due_at = t.due_at) \
      ORDER BY t.due_at \
      LIMIT $2 \
        FOR UPDATE OF t SKIP LOCKED";

impl TimerWorker {
    pub fn new(pool: PgPool, reactor: Reactor, options: WorkerOptions) -> Self {
        Self {
            pool,
            reactor,
            options,
        }
    }

    /// One step: claims the timers due by the clock (up to the claim size),
    /// fires them and records the firings. Returns how many it fired.
    pub async fn fire_due(&self) -> Result<usize, sqlx::Error> {
        let now = self.reactor.clock().now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(CLAIM)
            .bind(now)
            .bind(self.options.claim as i64)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let Some(kind) = Kind::parse(&kind) else {
                continue;
            };
            due.push(Due {
                timer_id: row.try_get("timer_id")?,
                tenant_id: row.try_get("tenant_id")?,
                kind,
                subject_id: row.try_get("subject_id")?,
                stage: row.try_get("stage")?,
                due_at: row.try_get("due_at")?,
            });
        }
        let fired: Vec<(Due, Result<Issued, ApplyError>)> =
            futures::stream::iter(due.into_iter().map(|timer| async move {
                let outcome = self.fire(&timer, now).await;
                (timer, outcome)
            }))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut ids = Vec::new();
        let mut dues = Vec::new();
        let mut tenants = Vec::new();
        let mut kinds = Vec::new();
        let mut outcomes = Vec::new();
        let mut transient = None;
        for (timer, outcome) in fired {
            let outcome = match outcome {
                Ok(Issued::Refused { code }) => format!("refused:{code}"),
                Ok(issued) => issued.label().to_owned(),
                // Not recorded: the timer stays due and is tried again.
                Err(e) => {
                    transient.get_or_insert(e);
                    continue;
                }
            };
            let delay = (now - timer.due_at).to_std().unwrap_or_default();
            metrics::histogram!("chronicle_timer_fire_delay_seconds", "kind" => timer.kind.as_str())
                .record(delay.as_secs_f64());
            metrics::counter!("chronicle_timers_fired_total", "kind" => timer.kind.as_str(),
                "outcome" => if outcome.starts_with("refused") { "refused" } else { "fired" })
            .increment(1);
            ids.push(timer.timer_id);
            dues.push(timer.due_at);
            tenants.push(timer.tenant_id);
            kinds.push(timer.kind.as_str());
            outcomes.push(outcome);
        }
        let count = ids.len();
        sqlx::query(
            "INSERT INTO public.timer_firings (timer_id, due_at, tenant_id, kind, fired_at, outcome) \
             SELECT t.id, t.due, t.tenant, t.kind, $6, t.outcome \
               FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[]) \
                    AS t(id, due, tenant, kind, outcome) \
             ON CONFLICT (timer_id, due_at) DO NOTHING",
        )
        .bind(&ids)
        .bind(&dues)
        .bind(&tenants)
        .bind(&kinds)
        .bind(&outcomes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(e) = transient {
            tracing::warn!(error = %e, "a timer could not fire; it stays due");
        }
        Ok(count)
    }

    /// Issues the commands of one timer.
    async fn fire(&self, timer: &Due, now: DateTime<Utc>) -> Result<Issued, ApplyError> {
        let seed = derive(timer.timer_id, &timer.due_at.to_rfc3339());
        let cause = Cause {
            tenant: &timer.tenant_id,
            seed,
            causation: None,
            correlation: Some(seed),
        };
        let reactor = &self.reactor;
        match timer.kind {
            Kind::TicketSla => {
                let Some(stage) = SlaStage::ALL.into_iter().find(|s| label(s) == timer.stage)
                else {
                    return Ok(Issued::Refused {
                        code: "timer.unknown_stage",
                    });
                };
                let breach = reactor
                    .issue::<Ticket>(
                        NAME,
                        cause,
                        "breach",
                        timer.subject_id,
                        TicketCommand::RecordSlaBreach {
                            stage,
                            due: timer.due_at,
                            at: now,
                        },
                    )
                    .await?;
                if !breach.took_effect() {
                    return Ok(breach);
                }
                let reason = ShortText::parse("reason", format!("SLA breached: {}", timer.stage))
                    .map_err(|e| ApplyError::Transient(e.to_string()))?;
                reactor
                    .issue::<Ticket>(
                        NAME,
                        cause,
                        "escalate",
                        timer.subject_id,
                        TicketCommand::Escalate {
                            by: EscalatedBy::System,
                            reason,
                            at: now,
                        },
                    )
                    .await?;
                Ok(breach)
            }
            Kind::ApprovalLevel => {
                let level = timer.stage.parse::<u16>().unwrap_or(u16::MAX);
                reactor
                    .issue::<Approval>(
                        NAME,
                        cause,
                        "escalate",
                        timer.subject_id,
                        ApprovalCommand::Escalate { level, at: now },
                    )
                    .await
            }
            Kind::ContractExpiry => {
                reactor
                    .issue::<Contract>(
                        NAME,
                        cause,
                        "expire",
                        timer.subject_id,
                        ContractCommand::Expire { at: now },
                    )
                    .await
            }
            Kind::ContractRenewal => {
                reactor
                    .issue::<Contract>(
                        NAME,
                        cause,
                        "notice",
                        timer.subject_id,
                        ContractCommand::NoticeRenewal { at: now },
                    )
                    .await
            }
        }
    }

    /// When the next pending, unfired timer falls due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT min(t.due_at) FROM read.timers t \
              WHERE t.status = 'pending' \
                AND NOT EXISTS (SELECT 1 FROM public.timer_firings f \
                                 WHERE f.timer_id = t.timer_id AND f.due_at = t.due_at)",
        )
        .fetch_one(&self.pool)
        .await
    }

    /// Sets `chronicle_timers_overdue`: pending timers due more than a
    /// minute ago and not fired (a stuck or absent worker).
    async fn report_overdue(&self) {
        let cutoff = self.reactor.clock().now() - TimeDelta::minutes(1);
        let overdue: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM read.timers t \
              WHERE t.status = 'pending' AND t.due_at < $1 \
                AND NOT EXISTS (SELECT 1 FROM public.timer_firings f \
                                 WHERE f.timer_id = t.timer_id AND f.due_at = t.due_at)",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await;
        if let Ok(n) = overdue {
            metrics::gauge!("chronicle_timers_overdue").set(n as f64);
        }
    }
}

#[async_trait]
impl DueWork for TimerWorker {
    fn name(&self) -> &'static str {
        "timer worker"
    }

    async fn step(&self) -> Result<usize, sqlx::Error> {
        self.fire_due().await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        TimerWorker::next_due(self).await
    }

    async fn report(&self) {
        self.report_overdue().await
    }
}

/// Runs a timer worker until `shutdown`: fires what is due, then sleeps
/// until the next due time.
pub fn spawn(
    pool: PgPool,
    reactor: Reactor,
    options: WorkerOptions,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (clock, poll) = (reactor.clock().clone(), options.poll);
    let worker = TimerWorker::new(pool, reactor, options);
    tokio::spawn(run_due(worker, clock, poll, shutdown))
}

#[cfg(test)]
mod tests {
    use chronicle_domain::ticket::TicketEvent;
    use chronicle_domain::Aggregate;
    use chrono::TimeZone;

    use super::*;

    fn ticket(events: &[&str]) -> Ticket {
        let specs = chronicle_domain::ticket::event_specs();
        let decoded: Vec<TicketEvent> = events
            .iter()
            .map(|t| {
                let spec = specs.iter().find(|s| s.event_type == *t).unwrap();
                chronicle_domain::event::decode(t, spec.version, spec.example.clone()).unwrap()
            })
            .collect();
        Ticket::fold(decoded.iter())
    }

    fn statuses(wanted: &[Wanted]) -> Vec<(String, &'static str)> {
        wanted.iter().map(|w| (w.stage.clone(), w.status)).collect()
    }

    #[test]
    fn an_open_tickets_three_stages_are_pending_from_its_opening() {
        let t = ticket(&["ticket.opened"]);
        let policy = SlaPolicy::default();
        let wanted = ticket_timers(&t, &policy);
        assert_eq!(
            statuses(&wanted),
            [
                ("assign".to_owned(), "pending"),
                ("first_response".to_owned(), "pending"),
                ("resolve".to_owned(), "pending"),
            ]
        );
        let opened = t.opened_at.unwrap();
        // The example is a P2: 1 h, 4 h, 24 h by default.
        assert_eq!(wanted[0].due_at, opened + TimeDelta::hours(1));
        assert_eq!(wanted[1].due_at, opened + TimeDelta::hours(4));
        assert_eq!(wanted[2].due_at, opened + TimeDelta::hours(24));
    }

    #[test]
    fn stages_done_first_complete_breaches_fire_and_closing_cancels() {
        let policy = SlaPolicy::default();
        let t = ticket(&[
            "ticket.opened",
            "ticket.expert_assigned",
            "ticket.sla_breached",
        ]);
        let s = statuses(&ticket_timers(&t, &policy));
        assert_eq!(s[0].1, "completed", "assigned");
        // The golden breach is of the first response.
        assert_eq!(s[1].1, "fired");
        assert_eq!(s[2].1, "pending");
        let t = ticket(&[
            "ticket.opened",
            "ticket.expert_assigned",
            "ticket.accepted",
            "ticket.work_started",
            "ticket.resolved",
            "ticket.closed",
        ]);
        let s = statuses(&ticket_timers(&t, &policy));
        assert!(s.iter().all(|(_, st)| *st == "completed"), "{s:?}");
    }

    #[test]
    fn a_contract_expires_the_day_after_its_end_and_is_noticed_30_days_before() {
        let end = NaiveDate::from_ymd_opt(2027, 3, 31).unwrap();
        assert_eq!(
            expiry_due(end),
            Utc.with_ymd_and_hms(2027, 4, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            renewal_due(end),
            Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn timer_ids_are_stable_per_subject_kind_and_stage() {
        let subject = Uuid::from_u128(7);
        assert_eq!(
            timer_id(subject, Kind::TicketSla, "assign"),
            timer_id(subject, Kind::TicketSla, "assign")
        );
        assert_ne!(
            timer_id(subject, Kind::TicketSla, "assign"),
            timer_id(subject, Kind::TicketSla, "resolve")
        );
        assert_ne!(
            timer_id(subject, Kind::ContractExpiry, "end"),
            timer_id(Uuid::from_u128(8), Kind::ContractExpiry, "end")
        );
    }
}
