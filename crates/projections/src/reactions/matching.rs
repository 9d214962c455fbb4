//! Expert matching (seed 004): a ticket opened, or rejected by its expert,
//! goes to an available expert with the required skill and the fewest open
//! tickets, never to one who rejected it. When nobody fits, the ticket is
//! escalated and waits in the unassigned queue until an expert becomes
//! available (availability, skills or the expert role change), then the
//! oldest waiting tickets are matched first.
//!
//! The matcher keeps its own view, `read.matching_experts` (skills,
//! availability, load) and `read.matching_tickets` (the queue and who
//! holds each ticket), from the events in log order, so a decision depends
//! only on the log up to its triggering event and a replay decides the
//! same. A decision counts against the chosen expert at once (so a burst
//! of tickets spreads out); the `ticket.expert_assigned` event that follows
//! confirms it, and a refused assignment is taken back.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chronicle_domain::ticket::{AssignedBy, EscalatedBy, Ticket, TicketCommand, TicketEvent};
use chronicle_domain::user::UserEvent;
use chronicle_domain::value::ShortText;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Cause, Issued, Reactor};
use crate::read::{decode_event, entity_id};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

const NAME: &str = "matching";

/// The matching process manager.
pub struct Matching {
    reactor: Reactor,
}

impl Matching {
    pub fn new(reactor: Reactor) -> Self {
        Self { reactor }
    }
}

/// A row of `read.matching_experts`: what matching knows of a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpertRow {
    pub user_id: Uuid,
    pub tenant_id: String,
    /// Active and holding the expert role.
    pub is_expert: bool,
    pub available: bool,
    /// Lowercase.
    pub skills: Vec<String>,
    pub open_tickets: i32,
    pub position: i64,
}

impl Row for ExpertRow {
    const TABLE: &'static str = "matching_experts";
    const KEY: &'static [&'static str] = &["user_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.user_id
    }
}

impl ExpertRow {
    fn can_take(&self, skill: &str) -> bool {
        self.is_expert && self.available && self.skills.iter().any(|s| s == skill)
    }
}

/// A row of `read.matching_tickets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub tenant_id: String,
    /// Lowercase.
    pub required_skill: String,
    /// `waiting` (unassigned), `assigned` (counts against `expert_id`) or
    /// `done` (resolved or closed).
    pub state: String,
    pub expert_id: Option<Uuid>,
    /// Experts who rejected it.
    pub excluded: Vec<Uuid>,
    /// Since when it waits (the queue's order).
    pub waiting_since: Option<DateTime<Utc>>,
    pub position: i64,
}

impl Row for TicketRow {
    const TABLE: &'static str = "matching_tickets";
    const KEY: &'static [&'static str] = &["ticket_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.ticket_id
    }
}

#[derive(Default)]
struct State {
    experts: Rows<ExpertRow>,
    tickets: Rows<TicketRow>,
    /// Tenants whose experts and waiting tickets are loaded whole.
    tenants: BTreeSet<String>,
}

impl State {
    async fn load_tenant(
        &mut self,
        conn: &mut PgConnection,
        tenant: &str,
    ) -> Result<(), ApplyError> {
        if self.tenants.insert(tenant.to_owned()) {
            self.experts
                .load(&mut *conn, "t.tenant_id = $1", tenant)
                .await?;
            self.tickets
                .load(
                    &mut *conn,
                    "t.tenant_id = $1 AND t.state = 'waiting'",
                    tenant,
                )
                .await?;
        }
        Ok(())
    }

    fn count(&mut self, expert: Option<Uuid>, delta: i32) {
        if let Some(e) = expert.and_then(|id| self.experts.get_mut(&id)) {
            e.open_tickets = (e.open_tickets + delta).max(0);
        }
    }

    /// Moves a ticket to (`state`, `expert`), keeping the loads right.
    fn hold(&mut self, ticket: Uuid, state: &str, expert: Option<Uuid>) {
        let Some(t) = self.tickets.get(&ticket) else {
            return;
        };
        let before = (t.state == "assigned").then_some(t.expert_id).flatten();
        let after = (state == "assigned").then_some(expert).flatten();
        if before != after {
            self.count(before, -1);
            self.count(after, 1);
        }
        if let Some(t) = self.tickets.get_mut(&ticket) {
            t.state = state.to_owned();
            t.expert_id = expert.or(t.expert_id);
        }
    }

    /// The expert a waiting ticket should go to, if any.
    fn choose(&self, ticket: &TicketRow) -> Option<Uuid> {
        self.experts
            .values()
            .filter(|e| e.tenant_id == ticket.tenant_id)
            .filter(|e| e.can_take(&ticket.required_skill))
            .filter(|e| !ticket.excluded.contains(&e.user_id))
            .min_by_key(|e| (e.open_tickets, e.user_id))
            .map(|e| e.user_id)
    }
}

#[async_trait]
impl Projection for Matching {
    fn issues_commands(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["matching_experts", "matching_tickets"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let relevant: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.stream_type == "ticket" || e.stream_type == "user")
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let mut state = State::default();
        let ticket_ids: Vec<Uuid> = crate::read::stream_ids(events, "ticket");
        state
            .tickets
            .load(&mut *conn, "t.ticket_id = ANY($1)", &ticket_ids)
            .await?;
        for event in relevant {
            state.load_tenant(conn, &event.tenant).await?;
            if event.stream_type == "user" {
                self.on_user(&mut state, event).await?;
            } else {
                self.on_ticket(&mut state, event).await?;
            }
        }
        state.experts.flush(&mut *conn).await?;
        state.tickets.flush(&mut *conn).await?;
        Ok(())
    }
}

impl Matching {
    async fn on_ticket(&self, s: &mut State, event: &RecordedEvent) -> Result<(), ApplyError> {
        let id = entity_id(event)?;
        let decoded: TicketEvent = decode_event(event)?;
        match decoded {
            TicketEvent::Opened(e) => {
                s.tickets.put(TicketRow {
                    ticket_id: id,
                    tenant_id: event.tenant.clone(),
                    required_skill: e.required_skill.as_str().to_lowercase(),
                    state: "waiting".into(),
                    expert_id: None,
                    excluded: Vec::new(),
                    waiting_since: Some(e.at),
                    position: event.position as i64,
                });
                self.try_match(s, event, id, true).await?;
            }
            TicketEvent::Rejected(e) => {
                s.hold(id, "waiting", None);
                if let Some(t) = s.tickets.get_mut(&id) {
                    t.expert_id = None;
                    t.excluded = e.excluded_experts.clone();
                    t.waiting_since = Some(e.at);
                    t.position = event.position as i64;
                }
                self.try_match(s, event, id, true).await?;
            }
            TicketEvent::ExpertAssigned(e) => s.hold(id, "assigned", Some(e.expert_id)),
            TicketEvent::Reopened(e) => s.hold(id, "assigned", Some(e.expert_id)),
            TicketEvent::Resolved(_) | TicketEvent::Closed(_) => s.hold(id, "done", None),
            _ => {}
        }
        Ok(())
    }

    async fn on_user(&self, s: &mut State, event: &RecordedEvent) -> Result<(), ApplyError> {
        let id = entity_id(event)?;
        let decoded: UserEvent = decode_event(event)?;
        if let UserEvent::Registered(e) = &decoded {
            s.experts.put(ExpertRow {
                user_id: id,
                tenant_id: event.tenant.clone(),
                is_expert: e.roles.iter().any(|r| r.as_str() == "expert"),
                available: false,
                skills: Vec::new(),
                open_tickets: 0,
                position: event.position as i64,
            });
            return Ok(());
        }
        let Some(x) = s.experts.get_mut(&id) else {
            return Ok(());
        };
        x.position = event.position as i64;
        match decoded {
            UserEvent::Registered(_) => {}
            UserEvent::RolesChanged(e) => {
                x.is_expert = e.roles.iter().any(|r| r.as_str() == "expert");
            }
            UserEvent::Deactivated(_) => {
                x.is_expert = false;
                x.available = false;
            }
            UserEvent::ExpertSkillsSet(e) => {
                x.skills = e
                    .skills
                    .as_slice()
                    .iter()
                    .map(|s| s.as_str().to_lowercase())
                    .collect();
            }
            UserEvent::AvailabilityChanged(e) => x.available = e.available,
        }
        let x = x.clone();
        if !x.is_expert || !x.available {
            return Ok(());
        }
        // Someone may now take waiting tickets: oldest first.
        let mut waiting: Vec<(DateTime<Utc>, Uuid)> = s
            .tickets
            .values()
            .filter(|t| t.tenant_id == x.tenant_id && t.state == "waiting")
            .filter(|t| x.can_take(&t.required_skill) && !t.excluded.contains(&x.user_id))
            .map(|t| {
                (
                    t.waiting_since.unwrap_or(DateTime::<Utc>::MIN_UTC),
                    t.ticket_id,
                )
            })
            .collect();
        waiting.sort_unstable();
        for (_, ticket) in waiting {
            self.try_match(s, event, ticket, false).await?;
        }
        Ok(())
    }

    /// Assigns a waiting ticket to the best expert; when nobody fits and
    /// `escalate` is set (it just started waiting), escalates it.
    async fn try_match(
        &self,
        s: &mut State,
        event: &RecordedEvent,
        ticket: Uuid,
        escalate: bool,
    ) -> Result<(), ApplyError> {
        let Some(row) = s.tickets.get(&ticket).cloned() else {
            return Ok(());
        };
        if row.state != "waiting" {
            return Ok(());
        }
        let cause = Cause::event(event);
        let at = self.reactor.clock().now();
        match s.choose(&row) {
            Some(expert) => {
                s.hold(ticket, "assigned", Some(expert));
                let issued = self
                    .reactor
                    .issue::<Ticket>(
                        NAME,
                        cause,
                        &format!("assign:{ticket}"),
                        ticket,
                        TicketCommand::AssignExpert {
                            expert_id: expert,
                            by: AssignedBy::Matching,
                            at,
                        },
                    )
                    .await?;
                if let Issued::Refused { .. } = issued {
                    // The ticket moved on (closed, assigned by a manager):
                    // its own events will say where it is.
                    s.hold(ticket, "waiting", None);
                }
            }
            None if escalate => {
                let reason = ShortText::parse(
                    "reason",
                    format!(
                        "no available expert with the skill {:?}; waiting in the unassigned queue",
                        row.required_skill
                    ),
                )
                .map_err(|e| ApplyError::Transient(e.to_string()))?;
                metrics::counter!("chronicle_matching_unmatched_total").increment(1);
                self.reactor
                    .issue::<Ticket>(
                        NAME,
                        cause,
                        &format!("escalate:{ticket}"),
                        ticket,
                        TicketCommand::Escalate {
                            by: EscalatedBy::System,
                            reason,
                            at,
                        },
                    )
                    .await?;
            }
            None => {}
        }
        Ok(())
    }
}
