//! `reporting.ticket_facts`, `reporting.ticket_daily` and
//! `reporting.expert_daily` / `_monthly`: ticketing and expert efficiency.
//!
//! Figures count under the ticket's priority at the time of the event
//! (a breach under the priority it carries). The SLA stages are those of
//! the domain ([`chronicle_domain::ticket::Ticket::stage_completed_at`]):
//! assign (first assignment), first response (the assigned expert's
//! acceptance or first comment) and resolve (the current resolution, which
//! a reopen withdraws). A stage completion is *met* until a breach of the
//! stage is recorded.

use async_trait::async_trait;
use chronicle_domain::ticket::{SlaStage, TicketEvent};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{add_fields, add_sketch, day_of, millis, one_duration, Deltas, Rollup, ALL};
use crate::read::{decode_event, entity_id, label, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The projection of ticket and expert reports.
pub struct TicketReports;

/// One row of `reporting.ticket_facts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketFact {
    pub ticket_id: Uuid,
    pub tenant_id: String,
    pub opened_at: DateTime<Utc>,
    pub priority: String,
    pub category: String,
    pub product: String,
    pub status: String,
    pub expert_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub assign_priority: Option<String>,
    pub assign_breached: bool,
    pub first_response_at: Option<DateTime<Utc>>,
    pub first_response_priority: Option<String>,
    pub first_response_breached: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolve_priority: Option<String>,
    pub resolve_breached: bool,
    pub resolutions: i32,
    pub reopens: i32,
    pub position: i64,
}

impl Row for TicketFact {
    const TABLE: &'static str = "ticket_facts";
    const KEY: &'static [&'static str] = &["ticket_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.ticket_id
    }
}

impl TicketFact {
    /// When `stage` completed (its current completion), and under which
    /// priority; whether a breach of it was recorded.
    fn stage(&self, stage: SlaStage) -> (Option<DateTime<Utc>>, Option<&str>, bool) {
        match stage {
            SlaStage::Assign => (
                self.first_assigned_at,
                self.assign_priority.as_deref(),
                self.assign_breached,
            ),
            SlaStage::FirstResponse => (
                self.first_response_at,
                self.first_response_priority.as_deref(),
                self.first_response_breached,
            ),
            SlaStage::Resolve => (
                self.resolved_at,
                self.resolve_priority.as_deref(),
                self.resolve_breached,
            ),
        }
    }

    fn unresolved(&self) -> bool {
        !matches!(self.status.as_str(), "resolved" | "closed")
    }
}

/// One row of `reporting.ticket_daily`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRollup {
    pub tenant_id: String,
    pub dim: String,
    pub period: NaiveDate,
    pub value: String,
    pub opened: i64,
    pub assigned: i64,
    pub rejected: i64,
    pub resolved: i64,
    pub reopened: i64,
    pub closed: i64,
    pub escalated: i64,
    pub backlog_delta: i64,
    pub assign_count: i64,
    pub assign_sum_ms: i64,
    pub assign_keys: Vec<i32>,
    pub assign_counts: Vec<i64>,
    pub assign_met: i64,
    pub assign_breached: i64,
    pub first_response_count: i64,
    pub first_response_sum_ms: i64,
    pub first_response_keys: Vec<i32>,
    pub first_response_counts: Vec<i64>,
    pub first_response_met: i64,
    pub first_response_breached: i64,
    pub resolve_count: i64,
    pub resolve_sum_ms: i64,
    pub resolve_keys: Vec<i32>,
    pub resolve_counts: Vec<i64>,
    pub resolve_met: i64,
    pub resolve_breached: i64,
}

impl Row for TicketRollup {
    const TABLE: &'static str = "ticket_daily";
    const KEY: &'static [&'static str] = &["tenant_id", "dim", "period", "value"];
    type Key = (String, String, NaiveDate, String);
    fn key(&self) -> Self::Key {
        (
            self.tenant_id.clone(),
            self.dim.clone(),
            self.period,
            self.value.clone(),
        )
    }
}

/// The figures of one SLA stage in a rollup row.
struct StageFigures<'a> {
    count: &'a mut i64,
    sum_ms: &'a mut i64,
    keys: &'a mut Vec<i32>,
    counts: &'a mut Vec<i64>,
    met: &'a mut i64,
    breached: &'a mut i64,
}

impl TicketRollup {
    fn new(tenant: &str, day: NaiveDate, dim: &str, value: &str) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            dim: dim.to_owned(),
            period: day,
            value: value.to_owned(),
            opened: 0,
            assigned: 0,
            rejected: 0,
            resolved: 0,
            reopened: 0,
            closed: 0,
            escalated: 0,
            backlog_delta: 0,
            assign_count: 0,
            assign_sum_ms: 0,
            assign_keys: Vec::new(),
            assign_counts: Vec::new(),
            assign_met: 0,
            assign_breached: 0,
            first_response_count: 0,
            first_response_sum_ms: 0,
            first_response_keys: Vec::new(),
            first_response_counts: Vec::new(),
            first_response_met: 0,
            first_response_breached: 0,
            resolve_count: 0,
            resolve_sum_ms: 0,
            resolve_keys: Vec::new(),
            resolve_counts: Vec::new(),
            resolve_met: 0,
            resolve_breached: 0,
        }
    }

    fn stage(&mut self, stage: SlaStage) -> StageFigures<'_> {
        match stage {
            SlaStage::Assign => StageFigures {
                count: &mut self.assign_count,
                sum_ms: &mut self.assign_sum_ms,
                keys: &mut self.assign_keys,
                counts: &mut self.assign_counts,
                met: &mut self.assign_met,
                breached: &mut self.assign_breached,
            },
            SlaStage::FirstResponse => StageFigures {
                count: &mut self.first_response_count,
                sum_ms: &mut self.first_response_sum_ms,
                keys: &mut self.first_response_keys,
                counts: &mut self.first_response_counts,
                met: &mut self.first_response_met,
                breached: &mut self.first_response_breached,
            },
            SlaStage::Resolve => StageFigures {
                count: &mut self.resolve_count,
                sum_ms: &mut self.resolve_sum_ms,
                keys: &mut self.resolve_keys,
                counts: &mut self.resolve_counts,
                met: &mut self.resolve_met,
                breached: &mut self.resolve_breached,
            },
        }
    }
}

impl Rollup for TicketRollup {
    const MONTHLY: &'static str = "ticket_monthly";

    fn merge(&mut self, o: &Self) {
        add_fields!(
            self,
            o,
            opened,
            assigned,
            rejected,
            resolved,
            reopened,
            closed,
            escalated,
            backlog_delta,
            assign_count,
            assign_sum_ms,
            assign_met,
            assign_breached,
            first_response_count,
            first_response_sum_ms,
            first_response_met,
            first_response_breached,
            resolve_count,
            resolve_sum_ms,
            resolve_met,
            resolve_breached,
        );
        add_sketch(
            &mut self.assign_keys,
            &mut self.assign_counts,
            &o.assign_keys,
            &o.assign_counts,
        );
        add_sketch(
            &mut self.first_response_keys,
            &mut self.first_response_counts,
            &o.first_response_keys,
            &o.first_response_counts,
        );
        add_sketch(
            &mut self.resolve_keys,
            &mut self.resolve_counts,
            &o.resolve_keys,
            &o.resolve_counts,
        );
    }

    fn with_period(&self, period: NaiveDate) -> Self {
        Self {
            period,
            ..self.clone()
        }
    }
}

/// One row of `reporting.expert_daily` / `_monthly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpertRollup {
    pub tenant_id: String,
    pub period: NaiveDate,
    pub expert_id: Uuid,
    pub assigned: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub handled: i64,
    pub resolution_sum_ms: i64,
    pub resolution_keys: Vec<i32>,
    pub resolution_counts: Vec<i64>,
    pub surveys: i64,
    pub score_sum: i64,
    pub score_1: i64,
    pub score_2: i64,
    pub score_3: i64,
    pub score_4: i64,
    pub score_5: i64,
}

impl Row for ExpertRollup {
    const TABLE: &'static str = "expert_daily";
    const KEY: &'static [&'static str] = &["tenant_id", "period", "expert_id"];
    type Key = (String, NaiveDate, Uuid);
    fn key(&self) -> Self::Key {
        (self.tenant_id.clone(), self.period, self.expert_id)
    }
}

impl ExpertRollup {
    fn new(tenant: &str, day: NaiveDate, expert_id: Uuid) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            period: day,
            expert_id,
            assigned: 0,
            accepted: 0,
            rejected: 0,
            handled: 0,
            resolution_sum_ms: 0,
            resolution_keys: Vec::new(),
            resolution_counts: Vec::new(),
            surveys: 0,
            score_sum: 0,
            score_1: 0,
            score_2: 0,
            score_3: 0,
            score_4: 0,
            score_5: 0,
        }
    }
}

impl Rollup for ExpertRollup {
    const MONTHLY: &'static str = "expert_monthly";

    fn merge(&mut self, o: &Self) {
        add_fields!(
            self,
            o,
            assigned,
            accepted,
            rejected,
            handled,
            resolution_sum_ms,
            surveys,
            score_sum,
            score_1,
            score_2,
            score_3,
            score_4,
            score_5,
        );
        add_sketch(
            &mut self.resolution_keys,
            &mut self.resolution_counts,
            &o.resolution_keys,
            &o.resolution_counts,
        );
    }

    fn with_period(&self, period: NaiveDate) -> Self {
        Self {
            period,
            ..self.clone()
        }
    }
}

#[derive(Default)]
struct Batch {
    facts: Rows<TicketFact>,
    tickets: Deltas<TicketRollup>,
    experts: Deltas<ExpertRollup>,
}

impl Batch {
    /// Applies `change` to the rows of `day` of every dimension: all, the
    /// priority, the category and the product.
    fn bump(
        &mut self,
        tenant: &str,
        day: NaiveDate,
        priority: &str,
        category: &str,
        product: &str,
        change: impl Fn(&mut TicketRollup),
    ) {
        for (dim, value) in [
            (ALL, ""),
            ("priority", priority),
            ("category", category),
            ("product", product),
        ] {
            let mut row = TicketRollup::new(tenant, day, dim, value);
            change(&mut row);
            self.tickets.add(row, day);
        }
    }

    /// Applies `change` to the row of `day` of the priority dimension only.
    fn bump_priority(
        &mut self,
        tenant: &str,
        day: NaiveDate,
        priority: &str,
        change: impl Fn(&mut TicketRollup),
    ) {
        let mut row = TicketRollup::new(tenant, day, "priority", priority);
        change(&mut row);
        self.tickets.add(row, day);
    }

    fn bump_expert(
        &mut self,
        tenant: &str,
        day: NaiveDate,
        expert: Uuid,
        change: impl Fn(&mut ExpertRollup),
    ) {
        let mut row = ExpertRollup::new(tenant, day, expert);
        change(&mut row);
        self.experts.add(row, day);
    }

    /// Counts (`n` = 1) or withdraws (`n` = -1) a stage completion of a
    /// ticket: its duration from the opening, and met unless breached.
    fn stage_completion(&mut self, f: &TicketFact, stage: SlaStage, n: i64) {
        let (Some(at), Some(priority), breached) = f.stage(stage) else {
            return;
        };
        let ms = millis(f.opened_at, at);
        let (keys, counts) = one_duration(ms, n);
        self.bump(
            &f.tenant_id,
            day_of(at),
            priority,
            &f.category,
            &f.product,
            |r| {
                let s = r.stage(stage);
                *s.count += n;
                *s.sum_ms += n * ms;
                add_sketch(s.keys, s.counts, &keys, &counts);
                if !breached {
                    *s.met += n;
                }
            },
        );
    }
}

#[async_trait]
impl Projection for TicketReports {
    fn name(&self) -> &'static str {
        "reporting_tickets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "ticket_facts",
            "ticket_daily",
            "ticket_monthly",
            "expert_daily",
            "expert_monthly",
        ]
    }

    fn schema(&self) -> &'static str {
        super::SCHEMA
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "ticket");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        b.facts
            .load(&mut *conn, "t.ticket_id = ANY($1)", &ids)
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "ticket") {
            apply_one(&mut b, event)?;
        }
        b.facts.flush(&mut *conn).await?;
        b.tickets.flush(&mut *conn).await?;
        b.experts.flush(&mut *conn).await?;
        Ok(())
    }
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: TicketEvent = decode_event(event)?;
    let tenant = event.tenant.as_str();
    if let TicketEvent::Opened(e) = &decoded {
        let fact = TicketFact {
            ticket_id: id,
            tenant_id: tenant.to_owned(),
            opened_at: e.at,
            priority: label(&e.priority),
            category: e.category.as_str().to_owned(),
            product: e.product.as_str().to_owned(),
            status: e.status.as_str().to_owned(),
            expert_id: None,
            assigned_at: None,
            first_assigned_at: None,
            assign_priority: None,
            assign_breached: false,
            first_response_at: None,
            first_response_priority: None,
            first_response_breached: false,
            resolved_at: None,
            resolve_priority: None,
            resolve_breached: false,
            resolutions: 0,
            reopens: 0,
            position: event.position as i64,
        };
        b.bump(
            tenant,
            day_of(e.at),
            &fact.priority,
            &fact.category,
            &fact.product,
            |r| {
                r.opened += 1;
                r.backlog_delta += 1;
            },
        );
        b.facts.put(fact);
        return Ok(());
    }
    let Some(mut f) = b.facts.get(&id).cloned() else {
        return Err(ApplyError::poison(event, "no ticket.opened before it"));
    };
    if let Some(status) = decoded.new_status() {
        f.status = status.as_str().to_owned();
    }
    f.position = event.position as i64;
    // The groups of this event: the ticket's priority now.
    let (priority, category, product) = (f.priority.clone(), f.category.clone(), f.product.clone());
    let bump = |b: &mut Batch, at: DateTime<Utc>, change: &dyn Fn(&mut TicketRollup)| {
        b.bump(tenant, day_of(at), &priority, &category, &product, change)
    };
    match decoded {
        TicketEvent::Opened(_) => {}
        TicketEvent::ExpertAssigned(e) => {
            f.expert_id = Some(e.expert_id);
            f.assigned_at = Some(e.at);
            bump(b, e.at, &|r| r.assigned += 1);
            b.bump_expert(tenant, day_of(e.at), e.expert_id, |r| r.assigned += 1);
            if f.first_assigned_at.is_none() {
                f.first_assigned_at = Some(e.at);
                f.assign_priority = Some(f.priority.clone());
                b.stage_completion(&f, SlaStage::Assign, 1);
            }
        }
        TicketEvent::Accepted(e) => {
            let assigned_at = current_assignment(&f, event)?;
            b.bump_expert(tenant, day_of(assigned_at), e.expert_id, |r| {
                r.accepted += 1
            });
            first_response(b, &mut f, e.at);
        }
        TicketEvent::Rejected(e) => {
            let assigned_at = current_assignment(&f, event)?;
            bump(b, e.at, &|r| r.rejected += 1);
            b.bump_expert(tenant, day_of(assigned_at), e.expert_id, |r| {
                r.rejected += 1
            });
            f.expert_id = None;
            f.assigned_at = None;
        }
        TicketEvent::WorkStarted(_) => {}
        TicketEvent::Commented(e) => {
            if f.expert_id == Some(e.author_id) {
                first_response(b, &mut f, e.at);
            }
        }
        TicketEvent::PriorityChanged(e) => {
            let new = label(&e.priority);
            if f.unresolved() && new != f.priority {
                // The ticket moves between priority groups of the backlog.
                b.bump_priority(tenant, day_of(e.at), &f.priority, |r| r.backlog_delta -= 1);
                b.bump_priority(tenant, day_of(e.at), &new, |r| r.backlog_delta += 1);
            }
            f.priority = new;
        }
        TicketEvent::Resolved(e) => {
            let assigned_at = current_assignment(&f, event)?;
            bump(b, e.at, &|r| {
                r.resolved += 1;
                r.backlog_delta -= 1;
            });
            let ms = millis(assigned_at, e.at);
            let (keys, counts) = one_duration(ms, 1);
            b.bump_expert(tenant, day_of(e.at), e.expert_id, |r| {
                r.handled += 1;
                r.resolution_sum_ms += ms;
                add_sketch(
                    &mut r.resolution_keys,
                    &mut r.resolution_counts,
                    &keys,
                    &counts,
                );
            });
            f.resolutions += 1;
            f.resolved_at = Some(e.at);
            f.resolve_priority = Some(f.priority.clone());
            b.stage_completion(&f, SlaStage::Resolve, 1);
        }
        TicketEvent::Reopened(e) => {
            bump(b, e.at, &|r| {
                r.reopened += 1;
                r.backlog_delta += 1;
            });
            // The resolution is withdrawn from the day it counted on.
            b.stage_completion(&f, SlaStage::Resolve, -1);
            f.reopens += 1;
            f.resolved_at = None;
            f.resolve_priority = None;
        }
        TicketEvent::Closed(e) => bump(b, e.at, &|r| r.closed += 1),
        TicketEvent::SlaBreached(e) => {
            let (completed, _, breached) = f.stage(e.stage);
            if !breached {
                if completed.is_some() {
                    // It counted as met; it no longer does.
                    b.stage_completion(&f, e.stage, -1);
                }
                match e.stage {
                    SlaStage::Assign => f.assign_breached = true,
                    SlaStage::FirstResponse => f.first_response_breached = true,
                    SlaStage::Resolve => f.resolve_breached = true,
                }
                if completed.is_some() {
                    b.stage_completion(&f, e.stage, 1);
                }
                let stage = e.stage;
                b.bump(
                    tenant,
                    day_of(e.at),
                    &label(&e.priority),
                    &category,
                    &product,
                    |r| *r.stage(stage).breached += 1,
                );
            }
        }
        TicketEvent::Escalated(e) => bump(b, e.at, &|r| r.escalated += 1),
        TicketEvent::SurveySent(_) => {}
        TicketEvent::SurveyAnswered(e) => {
            if let Some(expert) = e.expert_id {
                let score = i64::from(e.score.get());
                b.bump_expert(tenant, day_of(e.at), expert, |r| {
                    r.surveys += 1;
                    r.score_sum += score;
                    match score {
                        1 => r.score_1 += 1,
                        2 => r.score_2 += 1,
                        3 => r.score_3 += 1,
                        4 => r.score_4 += 1,
                        _ => r.score_5 += 1,
                    }
                });
            }
        }
    }
    b.facts.put(f);
    Ok(())
}

/// When the current assignment started; an accept, reject or resolution
/// without one contradicts the stream.
fn current_assignment(f: &TicketFact, event: &RecordedEvent) -> Result<DateTime<Utc>, ApplyError> {
    f.assigned_at
        .ok_or_else(|| ApplyError::poison(event, "no expert is assigned"))
}

/// The first response, if this is it.
fn first_response(b: &mut Batch, f: &mut TicketFact, at: DateTime<Utc>) {
    if f.first_response_at.is_none() {
        f.first_response_at = Some(at);
        f.first_response_priority = Some(f.priority.clone());
        b.stage_completion(f, SlaStage::FirstResponse, 1);
    }
}
