//! Notifications (seeds 000, 002, 004): events turned into notifications
//! for the people concerned, as their preferences allow.
//!
//! | event | kind | to |
//! |---|---|---|
//! | `ticket.expert_assigned` | assignment | the expert |
//! | `lead.owner_assigned`, `lead.implementation_task_assigned` | assignment | the owner, the assignee |
//! | `approval.requested`, `approval.level_completed` (next level) | approval_waiting | the level's approvers: named users, and every active holder of a named role |
//! | `approval.granted`, `.rejected`, `.changes_requested`, `.cancelled` | approval_outcome | who requested it |
//! | `ticket.sla_breached` | sla_breach | the expert holding the ticket, and the tenant's managers |
//! | `ticket.accepted`, `.work_started`, `.resolved`, `.reopened`, `.closed`, `.escalated` | status_change | the customer (escalations: the managers) |
//! | `ticket.survey_sent` | survey | the customer |
//! | `contract.approved`, `.rejected`, `.signed`, `.activated`, `.renewed`, `.terminated`, `.expired` | status_change | the owner |
//! | `contract.renewal_due` | renewal_due | the owner |
//!
//! The projection keeps what it needs to address people in its own tables
//! (`read.notification_people`: roles and activity; `read.notification_preferences`;
//! `read.notification_subjects`: a ticket's customer, expert and title, a
//! lead's or contract's owner and name), all from the log in order, so a
//! rebuild gives the same notifications with the same ids. It writes
//! `read.notifications` (one row per notification and person, listed in-app
//! when the person wants that) and `read.notification_deliveries` (one row
//! per email or webhook to send). The [`super::delivery::DeliveryWorker`]
//! sends those and records their state in `notification_delivery_state`;
//! in-app reads are recorded in `notification_reads`. Neither is derived
//! from the log, so both survive a rebuild.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chronicle_domain::approval::{Approval, ApprovalEvent};
use chronicle_domain::contract::ContractEvent;
use chronicle_domain::lead::LeadEvent;
use chronicle_domain::notification::{NotificationEvent, NotificationKind};
use chronicle_domain::policy::Approver;
use chronicle_domain::ticket::TicketEvent;
use chronicle_domain::user::UserEvent;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Reactor;
use crate::read::{decode_event, entity_id, label};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

const NAME: &str = "notifications";

/// The notifications projection.
pub struct Notifications {
    reactor: Reactor,
}

impl Notifications {
    pub fn new(reactor: Reactor) -> Self {
        Self { reactor }
    }
}

/// A row of `read.notification_people`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonRow {
    pub user_id: Uuid,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub position: i64,
}

impl Row for PersonRow {
    const TABLE: &'static str = "notification_people";
    const KEY: &'static [&'static str] = &["user_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.user_id
    }
}

/// A row of `read.notification_preferences`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreferencesRow {
    pub user_id: Uuid,
    pub tenant_id: String,
    pub kinds: Vec<String>,
    pub in_app: bool,
    pub email: Option<String>,
    pub webhook_url: Option<String>,
    pub position: i64,
}

impl Row for PreferencesRow {
    const TABLE: &'static str = "notification_preferences";
    const KEY: &'static [&'static str] = &["user_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.user_id
    }
}

/// A row of `read.notification_subjects`: how to address a subject's people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectRow {
    pub subject_id: Uuid,
    pub tenant_id: String,
    pub subject_type: String,
    /// The ticket's customer; the lead's or contract's owner.
    pub owner_id: Option<Uuid>,
    /// The expert holding a ticket.
    pub assignee_id: Option<Uuid>,
    pub title: String,
    pub position: i64,
}

impl Row for SubjectRow {
    const TABLE: &'static str = "notification_subjects";
    const KEY: &'static [&'static str] = &["subject_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.subject_id
    }
}

/// A row of `read.notifications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationRow {
    pub notification_id: Uuid,
    pub tenant_id: String,
    pub user_id: Uuid,
    pub kind: String,
    pub subject_type: String,
    pub subject_id: Uuid,
    pub title: String,
    pub body: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub in_app: bool,
    pub created_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for NotificationRow {
    const TABLE: &'static str = "notifications";
    const KEY: &'static [&'static str] = &["notification_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.notification_id
    }
}

/// A row of `read.notification_deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub delivery_id: Uuid,
    pub notification_id: Uuid,
    pub tenant_id: String,
    pub user_id: Uuid,
    /// `email` or `webhook`.
    pub channel: String,
    /// The address or URL.
    pub target: String,
    pub created_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for DeliveryRow {
    const TABLE: &'static str = "notification_deliveries";
    const KEY: &'static [&'static str] = &["delivery_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.delivery_id
    }
}

/// Who a notification is for.
enum To {
    User(Uuid),
    Role(String),
}

/// A notification to make.
struct Draft {
    kind: NotificationKind,
    subject_type: &'static str,
    subject_id: Uuid,
    title: String,
    body: String,
    to: Vec<To>,
}

#[derive(Default)]
struct Batch {
    people: Rows<PersonRow>,
    preferences: Rows<PreferencesRow>,
    subjects: Rows<SubjectRow>,
    notifications: Rows<NotificationRow>,
    deliveries: Rows<DeliveryRow>,
    tenants: BTreeSet<String>,
}

#[async_trait]
impl Projection for Notifications {
    fn holds_personal_data(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "notification_people",
            "notification_preferences",
            "notification_subjects",
            "notifications",
            "notification_deliveries",
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let relevant: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| {
                matches!(
                    e.stream_type.as_str(),
                    "ticket"
                        | "lead"
                        | "contract"
                        | "approval"
                        | "user"
                        | "notification_preferences"
                )
            })
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        let subject_ids: Vec<Uuid> = relevant
            .iter()
            .filter(|e| matches!(e.stream_type.as_str(), "ticket" | "lead" | "contract"))
            .filter_map(|e| Uuid::parse_str(&e.stream_id).ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        b.subjects
            .load(&mut *conn, "t.subject_id = ANY($1)", &subject_ids)
            .await?;
        for event in relevant {
            if b.tenants.insert(event.tenant.clone()) {
                b.people
                    .load(&mut *conn, "t.tenant_id = $1", event.tenant.as_str())
                    .await?;
                b.preferences
                    .load(&mut *conn, "t.tenant_id = $1", event.tenant.as_str())
                    .await?;
            }
            let drafts = self.drafts(&mut b, event).await?;
            for draft in drafts {
                b.notify(event, draft);
            }
        }
        b.people.flush(&mut *conn).await?;
        b.preferences.flush(&mut *conn).await?;
        b.subjects.flush(&mut *conn).await?;
        b.notifications.flush(&mut *conn).await?;
        open_deliveries(conn, &b.deliveries).await?;
        b.deliveries.flush(&mut *conn).await?;
        Ok(())
    }
}

impl Notifications {
    /// Keeps the projection's own tables current and says what `event`
    /// notifies.
    async fn drafts(&self, b: &mut Batch, event: &RecordedEvent) -> Result<Vec<Draft>, ApplyError> {
        let id = entity_id(event)?;
        Ok(match event.stream_type.as_str() {
            "user" => {
                people(b, event, id)?;
                Vec::new()
            }
            "notification_preferences" => {
                preferences(b, event)?;
                Vec::new()
            }
            "ticket" => ticket(b, event, id)?,
            "lead" => lead(b, event, id)?,
            "contract" => contract(b, event, id)?,
            _ => self.approval(event, id).await?,
        })
    }

    async fn approval(&self, event: &RecordedEvent, id: Uuid) -> Result<Vec<Draft>, ApplyError> {
        let decoded: ApprovalEvent = decode_event(event)?;
        let approvers = |level: &[Approver]| -> Vec<To> {
            level
                .iter()
                .map(|a| match a {
                    Approver::User(u) => To::User(*u),
                    Approver::Role(r) => To::Role(r.clone()),
                })
                .collect()
        };
        let waiting = |subject_kind: String, to: Vec<To>| Draft {
            kind: NotificationKind::ApprovalWaiting,
            subject_type: "approval",
            subject_id: id,
            title: format!("An approval of a {subject_kind} waits for your decision"),
            body: format!("Decide at /api/v1/approvals/{id}/decisions"),
            to,
        };
        Ok(match decoded {
            ApprovalEvent::Requested(e) => {
                let to = e
                    .levels
                    .first()
                    .map(|l| approvers(&l.approvers))
                    .unwrap_or_default();
                vec![waiting(label(&e.subject.kind).replace('_', " "), to)]
            }
            ApprovalEvent::LevelCompleted(e) => {
                let Some(next) = e.next_level else {
                    return Ok(Vec::new());
                };
                let Some(approval) = self
                    .reactor
                    .load_at::<Approval>(&event.tenant, id, event.position)
                    .await?
                else {
                    return Ok(Vec::new());
                };
                let Some(level) = approval.levels.get(usize::from(next)) else {
                    return Ok(Vec::new());
                };
                let kind = approval
                    .subject
                    .map(|s| label(&s.kind).replace('_', " "))
                    .unwrap_or_default();
                vec![waiting(kind, approvers(&level.spec.approvers))]
            }
            ApprovalEvent::Granted(_)
            | ApprovalEvent::Rejected(_)
            | ApprovalEvent::ChangesRequested(_)
            | ApprovalEvent::Cancelled(_) => {
                let Some(requester) = self
                    .reactor
                    .load_at::<Approval>(&event.tenant, id, event.position)
                    .await?
                    .and_then(|a| a.requested_by)
                else {
                    return Ok(Vec::new());
                };
                let outcome = event
                    .event_type
                    .trim_start_matches("approval.")
                    .replace('_', " ");
                vec![Draft {
                    kind: NotificationKind::ApprovalOutcome,
                    subject_type: "approval",
                    subject_id: id,
                    title: format!("Your approval request was {outcome}"),
                    body: format!("See /api/v1/approvals/{id}"),
                    to: vec![To::User(requester)],
                }]
            }
            ApprovalEvent::DecisionRecorded(_) | ApprovalEvent::Escalated(_) => Vec::new(),
        })
    }
}

fn people(b: &mut Batch, event: &RecordedEvent, id: Uuid) -> Result<(), ApplyError> {
    let decoded: UserEvent = decode_event(event)?;
    if let UserEvent::Registered(e) = &decoded {
        b.people.put(PersonRow {
            user_id: id,
            tenant_id: event.tenant.clone(),
            roles: e.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            active: true,
            position: event.position as i64,
        });
        return Ok(());
    }
    let Some(p) = b.people.get_mut(&id) else {
        return Ok(());
    };
    p.position = event.position as i64;
    match decoded {
        UserEvent::RolesChanged(e) => {
            p.roles = e.roles.iter().map(|r| r.as_str().to_owned()).collect()
        }
        UserEvent::Deactivated(_) => p.active = false,
        _ => {}
    }
    Ok(())
}

fn preferences(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let NotificationEvent::PreferencesSet(e) = decode_event(event)?;
    let p = &e.preferences;
    b.preferences.put(PreferencesRow {
        user_id: e.user_id,
        tenant_id: event.tenant.clone(),
        kinds: p.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
        in_app: p.in_app,
        email: p.email.as_ref().map(|e| e.as_str().to_owned()),
        webhook_url: p.webhook_url.as_ref().map(|u| u.as_str().to_owned()),
        position: event.position as i64,
    });
    Ok(())
}

/// Records a new subject (`owner` is a ticket's customer, a contract's
/// owner; a lead's owner comes later).
fn open_subject(
    b: &mut Batch,
    event: &RecordedEvent,
    id: Uuid,
    subject_type: &str,
    owner_id: Option<Uuid>,
    title: &str,
) {
    b.subjects.put(SubjectRow {
        subject_id: id,
        tenant_id: event.tenant.clone(),
        subject_type: subject_type.to_owned(),
        owner_id,
        assignee_id: None,
        title: title.to_owned(),
        position: event.position as i64,
    });
}

/// The subject of a later event, moved to its position; `None` when its
/// first event was never seen.
fn subject<'b>(b: &'b mut Batch, event: &RecordedEvent, id: Uuid) -> Option<&'b mut SubjectRow> {
    let s = b.subjects.get_mut(&id)?;
    s.position = event.position as i64;
    Some(s)
}

fn ticket(b: &mut Batch, event: &RecordedEvent, id: Uuid) -> Result<Vec<Draft>, ApplyError> {
    let decoded: TicketEvent = decode_event(event)?;
    if let TicketEvent::Opened(e) = &decoded {
        open_subject(
            b,
            event,
            id,
            "ticket",
            Some(e.customer_id),
            e.title.as_str(),
        );
        return Ok(Vec::new());
    }
    let Some(s) = subject(b, event, id) else {
        return Ok(Vec::new());
    };
    match &decoded {
        TicketEvent::ExpertAssigned(e) => s.assignee_id = Some(e.expert_id),
        TicketEvent::Rejected(_) => s.assignee_id = None,
        TicketEvent::Reopened(e) => s.assignee_id = Some(e.expert_id),
        _ => {}
    }
    let s = s.clone();
    let draft = |kind, title: String, to: Vec<To>| Draft {
        kind,
        subject_type: "ticket",
        subject_id: id,
        body: format!("Ticket \"{}\": /api/v1/tickets/{id}", s.title),
        title,
        to,
    };
    let customer = || s.owner_id.map(To::User).into_iter().collect::<Vec<_>>();
    let status = |what: &str| {
        draft(
            NotificationKind::StatusChange,
            format!("Your ticket \"{}\" was {what}", s.title),
            customer(),
        )
    };
    Ok(match decoded {
        TicketEvent::ExpertAssigned(e) => vec![draft(
            NotificationKind::Assignment,
            format!("Ticket \"{}\" was assigned to you", s.title),
            vec![To::User(e.expert_id)],
        )],
        TicketEvent::Accepted(_) => vec![status("accepted by an expert")],
        TicketEvent::WorkStarted(_) => vec![status("taken into work")],
        TicketEvent::Resolved(_) => vec![status("resolved")],
        TicketEvent::Reopened(_) => vec![status("reopened")],
        TicketEvent::Closed(_) => vec![status("closed")],
        TicketEvent::Escalated(e) => vec![draft(
            NotificationKind::StatusChange,
            format!(
                "Ticket \"{}\" was escalated (level {}): {}",
                s.title, e.level, e.reason
            ),
            vec![To::Role("manager".into())],
        )],
        TicketEvent::SlaBreached(e) => {
            let mut to: Vec<To> = s.assignee_id.map(To::User).into_iter().collect();
            to.push(To::Role("manager".into()));
            vec![draft(
                NotificationKind::SlaBreach,
                format!(
                    "Ticket \"{}\" missed its {} SLA (due {})",
                    s.title,
                    label(&e.stage).replace('_', " "),
                    e.due.to_rfc3339()
                ),
                to,
            )]
        }
        TicketEvent::SurveySent(_) => vec![draft(
            NotificationKind::Survey,
            format!("How did we do on \"{}\"?", s.title),
            customer(),
        )],
        _ => Vec::new(),
    })
}

fn lead(b: &mut Batch, event: &RecordedEvent, id: Uuid) -> Result<Vec<Draft>, ApplyError> {
    let decoded: LeadEvent = decode_event(event)?;
    if let LeadEvent::Captured(e) = &decoded {
        open_subject(b, event, id, "lead", None, e.company.as_str());
        return Ok(Vec::new());
    }
    let Some(s) = subject(b, event, id) else {
        return Ok(Vec::new());
    };
    if let LeadEvent::OwnerAssigned(e) = &decoded {
        s.owner_id = Some(e.owner);
    }
    let s = s.clone();
    let assigned = |title: String, to: Uuid| Draft {
        kind: NotificationKind::Assignment,
        subject_type: "lead",
        subject_id: id,
        title,
        body: format!("Lead \"{}\": /api/v1/leads/{id}", s.title),
        to: vec![To::User(to)],
    };
    Ok(match decoded {
        LeadEvent::OwnerAssigned(e) => {
            vec![assigned(
                format!("You own the lead \"{}\"", s.title),
                e.owner,
            )]
        }
        LeadEvent::ImplementationTaskAssigned(e) => vec![assigned(
            format!("A task of the lead \"{}\" was assigned to you", s.title),
            e.assignee,
        )],
        _ => Vec::new(),
    })
}

fn contract(b: &mut Batch, event: &RecordedEvent, id: Uuid) -> Result<Vec<Draft>, ApplyError> {
    let decoded: ContractEvent = decode_event(event)?;
    if let ContractEvent::Drafted(e) = &decoded {
        open_subject(b, event, id, "contract", Some(e.owner), e.title.as_str());
        return Ok(Vec::new());
    }
    let Some(s) = subject(b, event, id) else {
        return Ok(Vec::new());
    };
    let s = s.clone();
    let Some(owner) = s.owner_id else {
        return Ok(Vec::new());
    };
    let draft = |kind, title: String| Draft {
        kind,
        subject_type: "contract",
        subject_id: id,
        title,
        body: format!("Contract \"{}\": /api/v1/contracts/{id}", s.title),
        to: vec![To::User(owner)],
    };
    let status = |what: &str| {
        draft(
            NotificationKind::StatusChange,
            format!("The contract \"{}\" was {what}", s.title),
        )
    };
    Ok(match decoded {
        ContractEvent::Approved(_) => vec![status("approved")],
        ContractEvent::Rejected(_) => vec![status("rejected")],
        ContractEvent::Signed(_) => vec![status("signed")],
        ContractEvent::Activated(_) => vec![status("activated")],
        ContractEvent::Renewed(e) => vec![status(&format!("renewed until {}", e.new_end_date))],
        ContractEvent::Terminated(_) => vec![status("terminated")],
        ContractEvent::Expired(_) => vec![status("expired")],
        ContractEvent::RenewalDue(e) => vec![draft(
            NotificationKind::RenewalDue,
            format!(
                "The contract \"{}\" ends on {}: renew it or let it expire",
                s.title, e.end_date
            ),
        )],
        _ => Vec::new(),
    })
}

/// Opens the delivery worker's state row (`pending`) of each new delivery.
/// Existing rows are kept: a rebuild does not send anything again.
async fn open_deliveries(
    conn: &mut PgConnection,
    deliveries: &Rows<DeliveryRow>,
) -> Result<(), sqlx::Error> {
    let (mut ids, mut tenants, mut channels, mut created) = (vec![], vec![], vec![], vec![]);
    for d in deliveries.values() {
        ids.push(d.delivery_id);
        tenants.push(d.tenant_id.as_str());
        channels.push(d.channel.as_str());
        created.push(d.created_at);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO public.notification_delivery_state \
             (delivery_id, tenant_id, channel, status, attempts, created_at, updated_at) \
         SELECT t.id, t.tenant, t.channel, 'pending', 0, t.created, t.created \
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) \
                AS t(id, tenant, channel, created) \
         ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&channels)
    .bind(&created)
    .execute(conn)
    .await?;
    Ok(())
}

impl Batch {
    /// The active people a draft goes to, without repeats, in a stable order.
    fn recipients(&self, tenant: &str, to: &[To]) -> BTreeSet<Uuid> {
        let mut out = BTreeSet::new();
        for t in to {
            match t {
                To::User(u) => {
                    let inactive = self.people.get(u).is_some_and(|p| !p.active);
                    if !inactive {
                        out.insert(*u);
                    }
                }
                To::Role(role) => out.extend(
                    self.people
                        .values()
                        .filter(|p| p.tenant_id == tenant && p.active)
                        .filter(|p| p.roles.iter().any(|r| r == role))
                        .map(|p| p.user_id),
                ),
            }
        }
        out
    }

    fn notify(&mut self, event: &RecordedEvent, draft: Draft) {
        for user in self.recipients(&event.tenant, &draft.to) {
            let prefs = self.preferences.get(&user);
            let wants = prefs.is_none_or(|p| p.kinds.iter().any(|k| k == draft.kind.as_str()));
            if !wants {
                continue;
            }
            let in_app = prefs.is_none_or(|p| p.in_app);
            let email = prefs.and_then(|p| p.email.clone());
            let webhook = prefs.and_then(|p| p.webhook_url.clone());
            if !in_app && email.is_none() && webhook.is_none() {
                continue;
            }
            let notification_id =
                Uuid::new_v5(&event.event_id, format!("notify:{user}").as_bytes());
            self.notifications.put(NotificationRow {
                notification_id,
                tenant_id: event.tenant.clone(),
                user_id: user,
                kind: draft.kind.as_str().to_owned(),
                subject_type: draft.subject_type.to_owned(),
                subject_id: draft.subject_id,
                title: draft.title.clone(),
                body: draft.body.clone(),
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                in_app,
                created_at: event.recorded_at,
                position: event.position as i64,
            });
            for (channel, target) in [("email", email), ("webhook", webhook)] {
                let Some(target) = target else { continue };
                self.deliveries.put(DeliveryRow {
                    delivery_id: Uuid::new_v5(&notification_id, channel.as_bytes()),
                    notification_id,
                    tenant_id: event.tenant.clone(),
                    user_id: user,
                    channel: channel.to_owned(),
                    target,
                    created_at: event.recorded_at,
                    position: event.position as i64,
                });
            }
        }
    }
}
