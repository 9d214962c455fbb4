//! `read.users`, `read.experts` and the experts' load bookkeeping
//! `read.expert_tickets`.
//!
//! An expert's row exists while the user is active and holds the `expert`
//! role. Their load (`open_tickets`) comes from ticket events seen by this
//! projection: `expert_tickets` keeps, per ticket, the expert it is with and
//! whether it counts against them (assigned and not yet rejected or
//! resolved; a reopen counts again). After each batch the load of every
//! expert whose tickets moved is counted again from that table, so it is
//! exact whatever the order in which users and tickets appeared.

use std::collections::HashMap;

use async_trait::async_trait;
use chronicle_domain::ticket::TicketEvent;
use chronicle_domain::user::UserEvent;
use chronicle_domain::value::ShortText;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The users projection (users, experts and their load).
pub struct Users;

/// The ticket events that move an expert's load.
const LOAD_EVENTS: &[&str] = &[
    "ticket.expert_assigned",
    "ticket.rejected",
    "ticket.resolved",
    "ticket.reopened",
    "ticket.closed",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRow {
    pub user_id: Uuid,
    pub tenant_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub status: String,
    pub skills: Vec<String>,
    pub available: bool,
    pub registered_at: DateTime<Utc>,
    pub registered_by: Uuid,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for UserRow {
    const TABLE: &'static str = "users";
    const KEY: &'static [&'static str] = &["user_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.user_id
    }
}

impl UserRow {
    fn is_expert(&self) -> bool {
        self.status == "active" && self.roles.iter().any(|r| r == "expert")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpertRow {
    pub expert_id: Uuid,
    pub tenant_id: String,
    pub skills: Vec<String>,
    pub availability: String,
    pub open_tickets: i32,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for ExpertRow {
    const TABLE: &'static str = "experts";
    const KEY: &'static [&'static str] = &["expert_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.expert_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpertTicketRow {
    pub ticket_id: Uuid,
    pub tenant_id: String,
    pub expert_id: Uuid,
    pub open: bool,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for ExpertTicketRow {
    const TABLE: &'static str = "expert_tickets";
    const KEY: &'static [&'static str] = &["ticket_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.ticket_id
    }
}

/// The latest ticket event that moved an expert's load.
#[derive(Debug, Clone, Copy)]
struct Touch {
    at: DateTime<Utc>,
    position: i64,
}

#[derive(Default)]
struct Batch {
    users: Rows<UserRow>,
    experts: Rows<ExpertRow>,
    tickets: Rows<ExpertTicketRow>,
    /// Experts whose load is to be counted again, with the last ticket
    /// event that moved it (none for a new expert row).
    recount: HashMap<Uuid, Option<Touch>>,
}

impl Batch {
    fn touch(&mut self, expert: Uuid, event: &RecordedEvent) {
        self.recount.insert(
            expert,
            Some(Touch {
                at: event.recorded_at,
                position: event.position as i64,
            }),
        );
    }
}

#[async_trait]
impl Projection for Users {
    fn holds_personal_data(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users", "experts", "expert_tickets"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let relevant: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| {
                e.stream_type == "user"
                    || (e.stream_type == "ticket" && LOAD_EVENTS.contains(&e.event_type.as_str()))
            })
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let user_ids = stream_ids(events, "user");
        let mut ticket_ids: Vec<Uuid> = relevant
            .iter()
            .filter(|e| e.stream_type == "ticket")
            .filter_map(|e| Uuid::parse_str(&e.stream_id).ok())
            .collect();
        ticket_ids.sort_unstable();
        ticket_ids.dedup();
        let mut b = Batch::default();
        if !user_ids.is_empty() {
            b.users
                .load(&mut *conn, "t.user_id = ANY($1)", &user_ids)
                .await?;
            b.experts
                .load(&mut *conn, "t.expert_id = ANY($1)", &user_ids)
                .await?;
        }
        if !ticket_ids.is_empty() {
            b.tickets
                .load(&mut *conn, "t.ticket_id = ANY($1)", &ticket_ids)
                .await?;
        }
        for event in relevant {
            if event.stream_type == "user" {
                apply_user(&mut b, event)?;
            } else {
                apply_ticket(&mut b, event)?;
            }
        }
        b.users.flush(&mut *conn).await?;
        b.experts.flush(&mut *conn).await?;
        b.tickets.flush(&mut *conn).await?;
        recount(conn, &b.recount).await?;
        Ok(())
    }
}

fn skills(skills: &[ShortText]) -> Vec<String> {
    skills.iter().map(|s| s.as_str().to_owned()).collect()
}

fn apply_user(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: UserEvent = decode_event(event)?;
    if let UserEvent::Registered(e) = &decoded {
        b.users.put(UserRow {
            user_id: id,
            tenant_id: event.tenant.clone(),
            name: Some(e.name.as_str().to_owned()),
            email: Some(e.email.as_str().to_owned()),
            roles: e.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            status: "active".into(),
            skills: Vec::new(),
            available: false,
            registered_at: e.at,
            registered_by: e.by,
            deactivated_at: None,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position: event.position as i64,
        });
    } else {
        let Some(u) = b.users.get_mut(&id) else {
            return Err(ApplyError::poison(event, "no user.registered before it"));
        };
        u.updated_at = event.recorded_at;
        u.version = event.stream_version as i64;
        u.position = event.position as i64;
        match decoded {
            UserEvent::Registered(_) => {}
            UserEvent::RolesChanged(e) => {
                u.roles = e.roles.iter().map(|r| r.as_str().to_owned()).collect();
            }
            UserEvent::Deactivated(e) => {
                u.status = "deactivated".into();
                u.available = false;
                u.deactivated_at = Some(e.at);
            }
            UserEvent::ExpertSkillsSet(e) => u.skills = skills(e.skills.as_slice()),
            UserEvent::AvailabilityChanged(e) => u.available = e.available,
        }
    }
    let Some(user) = b.users.get(&id).cloned() else {
        return Ok(());
    };
    sync_expert(b, &user)?;
    Ok(())
}

/// Keeps the user's expert row in step with the user: there while they are
/// an active expert, gone otherwise.
fn sync_expert(b: &mut Batch, user: &UserRow) -> Result<(), sqlx::Error> {
    let availability = if user.available {
        "available"
    } else {
        "unavailable"
    };
    if !user.is_expert() {
        return b.experts.remove(&user.user_id);
    }
    match b.experts.get_mut(&user.user_id) {
        Some(x) => {
            x.skills = user.skills.clone();
            x.availability = availability.into();
            x.updated_at = user.updated_at;
            x.position = user.position;
        }
        None => {
            b.experts.put(ExpertRow {
                expert_id: user.user_id,
                tenant_id: user.tenant_id.clone(),
                skills: user.skills.clone(),
                availability: availability.into(),
                open_tickets: 0,
                updated_at: user.updated_at,
                position: user.position,
            });
            // Tickets may have been assigned before the user became an
            // expert: count them.
            b.recount.entry(user.user_id).or_insert(None);
        }
    }
    Ok(())
}

fn apply_ticket(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: TicketEvent = decode_event(event)?;
    // (expert holding the ticket from now on, whether it counts).
    let (expert, open) = match decoded {
        TicketEvent::ExpertAssigned(e) => (Some(e.expert_id), true),
        TicketEvent::Reopened(e) => (Some(e.expert_id), true),
        TicketEvent::Rejected(e) => (Some(e.expert_id), false),
        TicketEvent::Resolved(e) => (Some(e.expert_id), false),
        TicketEvent::Closed(_) => (None, false),
        _ => return Ok(()),
    };
    let before = b.tickets.get(&id).map(|t| (t.expert_id, t.open));
    let after_expert = match (expert, before) {
        (Some(expert), _) => expert,
        (None, Some((held_by, _))) => held_by,
        // Closed without ever being assigned: nobody's load.
        (None, None) => return Ok(()),
    };
    if before == Some((after_expert, open)) {
        return Ok(());
    }
    if let Some((previous, true)) = before {
        b.touch(previous, event);
    }
    if open {
        b.touch(after_expert, event);
    }
    b.tickets.put(ExpertTicketRow {
        ticket_id: id,
        tenant_id: event.tenant.clone(),
        expert_id: after_expert,
        open,
        updated_at: event.recorded_at,
        position: event.position as i64,
    });
    Ok(())
}

/// Counts the open tickets of each expert in `recount` again, and moves
/// their `updated_at` to the last ticket event that changed their load
/// when that came after their row's last change.
async fn recount(
    conn: &mut PgConnection,
    recount: &HashMap<Uuid, Option<Touch>>,
) -> Result<(), sqlx::Error> {
    if recount.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(recount.len());
    let mut ats = Vec::with_capacity(recount.len());
    let mut positions = Vec::with_capacity(recount.len());
    for (id, touch) in recount {
        ids.push(*id);
        ats.push(touch.map(|t| t.at).unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
        positions.push(touch.map(|t| t.position).unwrap_or(0));
    }
    sqlx::query(
        "UPDATE experts e SET \
             open_tickets = (SELECT count(*) FROM expert_tickets x \
                             WHERE x.expert_id = e.expert_id AND x.tenant_id = e.tenant_id AND x.open), \
             updated_at = CASE WHEN d.position > e.position THEN d.at ELSE e.updated_at END, \
             position = GREATEST(e.position, d.position) \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS d(expert_id, at, position) \
         WHERE e.expert_id = d.expert_id",
    )
    .bind(ids)
    .bind(ats)
    .bind(positions)
    .execute(conn)
    .await?;
    Ok(())
}
