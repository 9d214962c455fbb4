//! `read.tickets`, `read.ticket_assignments` and `read.ticket_comments`.

use async_trait::async_trait;
use chronicle_domain::ticket::{AssignedBy, TicketEvent};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, label, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The tickets projection.
pub struct Tickets;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub tenant_id: String,
    pub customer_id: Uuid,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub product: String,
    pub category: String,
    pub priority: String,
    pub required_skill: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub expert_id: Option<Uuid>,
    pub rejected_by: Vec<Uuid>,
    pub opened_by: Uuid,
    pub opened_at: DateTime<Utc>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub assignment_count: i32,
    pub reopen_count: i32,
    pub comment_count: i32,
    pub escalation_level: i16,
    pub sla_breached: Vec<String>,
    pub survey_id: Option<Uuid>,
    pub survey_score: Option<i16>,
    pub survey_comment: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for TicketRow {
    const TABLE: &'static str = "tickets";
    const KEY: &'static [&'static str] = &["ticket_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.ticket_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub ticket_id: Uuid,
    pub seq: i32,
    pub tenant_id: String,
    pub expert_id: Uuid,
    pub assigned_by: String,
    pub manager_id: Option<Uuid>,
    pub assigned_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
}

impl Row for AssignmentRow {
    const TABLE: &'static str = "ticket_assignments";
    const KEY: &'static [&'static str] = &["ticket_id", "seq"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.ticket_id, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentRow {
    pub comment_id: Uuid,
    pub ticket_id: Uuid,
    pub tenant_id: String,
    pub author_id: Uuid,
    pub body: String,
    pub at: DateTime<Utc>,
    pub position: i64,
}

impl Row for CommentRow {
    const TABLE: &'static str = "ticket_comments";
    const KEY: &'static [&'static str] = &["comment_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.comment_id
    }
}

#[derive(Default)]
struct Batch {
    tickets: Rows<TicketRow>,
    assignments: Rows<AssignmentRow>,
    comments: Rows<CommentRow>,
}

#[async_trait]
impl Projection for Tickets {
    fn holds_personal_data(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "tickets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tickets", "ticket_assignments", "ticket_comments"]
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
        b.tickets
            .load(&mut *conn, "t.ticket_id = ANY($1)", &ids)
            .await?;
        b.assignments
            .load(
                &mut *conn,
                "t.ticket_id = ANY($1) AND t.ended_at IS NULL",
                &ids,
            )
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "ticket") {
            apply_one(&mut b, event)?;
        }
        b.tickets.flush(&mut *conn).await?;
        b.assignments.flush(&mut *conn).await?;
        b.comments.flush(&mut *conn).await?;
        Ok(())
    }
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: TicketEvent = decode_event(event)?;
    if let TicketEvent::Opened(e) = &decoded {
        b.tickets.put(TicketRow {
            ticket_id: id,
            tenant_id: event.tenant.clone(),
            customer_id: e.customer_id,
            contact_name: Some(e.contact.name.as_str().to_owned()),
            contact_email: Some(e.contact.email.as_str().to_owned()),
            product: e.product.as_str().to_owned(),
            category: e.category.as_str().to_owned(),
            priority: label(&e.priority),
            required_skill: e.required_skill.as_str().to_owned(),
            title: e.title.as_str().to_owned(),
            description: e.description.as_str().to_owned(),
            status: e.status.as_str().to_owned(),
            expert_id: None,
            rejected_by: Vec::new(),
            opened_by: e.opened_by,
            opened_at: e.at,
            first_assigned_at: None,
            first_response_at: None,
            resolved_at: None,
            resolution: None,
            closed_at: None,
            assignment_count: 0,
            reopen_count: 0,
            comment_count: 0,
            escalation_level: 0,
            sla_breached: Vec::new(),
            survey_id: None,
            survey_score: None,
            survey_comment: None,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position: event.position as i64,
        });
        return Ok(());
    }
    let Some(t) = b.tickets.get_mut(&id) else {
        return Err(ApplyError::poison(event, "no ticket.opened before it"));
    };
    if let Some(status) = decoded.new_status() {
        t.status = status.as_str().to_owned();
    }
    t.updated_at = event.recorded_at;
    t.version = event.stream_version as i64;
    t.position = event.position as i64;
    let open_assignment = (id, t.assignment_count);
    match decoded {
        TicketEvent::Opened(_) => {}
        TicketEvent::ExpertAssigned(e) => {
            t.expert_id = Some(e.expert_id);
            t.first_assigned_at.get_or_insert(e.at);
            t.assignment_count += 1;
            let (assigned_by, manager_id) = match e.by {
                AssignedBy::Matching => ("matching", None),
                AssignedBy::Manager { manager_id } => ("manager", Some(manager_id)),
            };
            let row = AssignmentRow {
                ticket_id: id,
                seq: t.assignment_count,
                tenant_id: event.tenant.clone(),
                expert_id: e.expert_id,
                assigned_by: assigned_by.into(),
                manager_id,
                assigned_at: e.at,
                accepted_at: None,
                ended_at: None,
                end_reason: None,
            };
            b.assignments.put(row);
        }
        TicketEvent::Accepted(e) => {
            t.first_response_at.get_or_insert(e.at);
            if let Some(a) = b.assignments.get_mut(&open_assignment) {
                a.accepted_at.get_or_insert(e.at);
            }
        }
        TicketEvent::Rejected(e) => {
            t.expert_id = None;
            if !t.rejected_by.contains(&e.expert_id) {
                t.rejected_by.push(e.expert_id);
            }
            end_assignment(&mut b.assignments, open_assignment, e.at, "rejected");
        }
        TicketEvent::WorkStarted(_) => {}
        TicketEvent::Commented(e) => {
            t.comment_count += 1;
            if t.expert_id == Some(e.author_id) {
                t.first_response_at.get_or_insert(e.at);
            }
            b.comments.put(CommentRow {
                comment_id: e.comment_id,
                ticket_id: id,
                tenant_id: event.tenant.clone(),
                author_id: e.author_id,
                body: e.body.as_str().to_owned(),
                at: e.at,
                position: event.position as i64,
            });
        }
        TicketEvent::PriorityChanged(e) => t.priority = label(&e.priority),
        TicketEvent::Resolved(e) => {
            t.resolved_at = Some(e.at);
            t.resolution = Some(e.resolution.as_str().to_owned());
        }
        TicketEvent::Reopened(_) => {
            t.resolved_at = None;
            t.reopen_count += 1;
        }
        TicketEvent::Closed(e) => {
            t.closed_at = Some(e.at);
            end_assignment(&mut b.assignments, open_assignment, e.at, "closed");
        }
        TicketEvent::SlaBreached(e) => {
            let stage = label(&e.stage);
            if !t.sla_breached.contains(&stage) {
                t.sla_breached.push(stage);
            }
        }
        TicketEvent::Escalated(e) => t.escalation_level = i16::from(e.level),
        TicketEvent::SurveySent(e) => t.survey_id = Some(e.survey_id),
        TicketEvent::SurveyAnswered(e) => {
            t.survey_score = Some(i16::from(e.score.get()));
            t.survey_comment = e.comment.map(|c| c.as_str().to_owned());
        }
    }
    Ok(())
}

fn end_assignment(
    assignments: &mut Rows<AssignmentRow>,
    key: (Uuid, i32),
    at: DateTime<Utc>,
    reason: &str,
) {
    if let Some(a) = assignments.get_mut(&key) {
        if a.ended_at.is_none() {
            a.ended_at = Some(at);
            a.end_reason = Some(reason.into());
        }
    }
}
