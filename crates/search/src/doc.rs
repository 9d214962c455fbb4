//! Search documents and how events change them.
//!
//! A [`SearchDoc`] is everything the index knows about one contract,
//! knowledge article or ticket. It is stored whole (as JSON) in the index
//! itself, so the indexer folds the next event into the stored document and
//! never reads another projection's tables: the index is a function of the
//! event log alone, and a rebuild gives the same documents.

use chronicle_domain::contract::{ContractEvent, ContractStatus, Grantee};
use chronicle_domain::knowledge::KnowledgeEvent;
use chronicle_domain::ticket::TicketEvent;
use chronicle_domain::value::ShortText;
use chronicle_projections::read::{decode_event, entity_id, label};
use chronicle_projections::ApplyError;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Contract,
    Kb,
    Ticket,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Contract, Kind::Kb, Kind::Ticket];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Contract => "contract",
            Kind::Kb => "kb",
            Kind::Ticket => "ticket",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The event stream type whose events make documents of this kind.
    pub fn of_stream(stream_type: &str) -> Option<Kind> {
        match stream_type {
            "contract" => Some(Kind::Contract),
            "knowledge_article" => Some(Kind::Kb),
            "ticket" => Some(Kind::Ticket),
            _ => None,
        }
    }
}

/// One searchable entity, as the index holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDoc {
    pub kind: Kind,
    pub id: Uuid,
    pub tenant: String,
    pub title: String,
    /// Contract body, article body, ticket description.
    pub body: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// A ticket's comments and resolutions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
    /// Access: a contract's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Uuid>,
    /// Access: users a contract is shared with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_users: Vec<Uuid>,
    /// Access: roles a contract is shared with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_roles: Vec<String>,
    /// Access: a ticket's customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Uuid>,
    /// When the last event that changed it was recorded.
    pub updated_at: DateTime<Utc>,
    /// The global position of that event.
    pub position: u64,
}

impl SearchDoc {
    /// The unique key: `<type>/<id>`.
    pub fn key(&self) -> String {
        key(self.kind, self.id)
    }
}

/// The unique key of a document.
pub fn key(kind: Kind, id: Uuid) -> String {
    format!("{}/{id}", kind.as_str())
}

/// What an event does to its document.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The document now reads like this.
    Put(Box<SearchDoc>),
    /// The document leaves the index (a closed ticket, a retired article).
    Delete,
    /// Nothing the index holds changed.
    Keep,
}

/// True for events that start a document (no earlier state needed).
pub fn creates(event: &RecordedEvent) -> bool {
    matches!(
        event.event_type.as_str(),
        "contract.drafted" | "knowledge_article.published" | "ticket.opened"
    )
}

/// Folds `event` into `current` (the document as the index holds it, if
/// it does). An event on a document the index does not hold is kept as
/// nothing: its entity was deleted by a closing event, after which the
/// domain allows no change that search shows.
pub fn apply(current: Option<&SearchDoc>, event: &RecordedEvent) -> Result<Change, ApplyError> {
    let Some(kind) = Kind::of_stream(&event.stream_type) else {
        return Ok(Change::Keep);
    };
    let id = entity_id(event)?;
    match kind {
        Kind::Contract => contract(current, id, event),
        Kind::Kb => article(current, id, event),
        Kind::Ticket => ticket(current, id, event),
    }
}

fn touched(doc: &SearchDoc, event: &RecordedEvent) -> SearchDoc {
    let mut doc = doc.clone();
    doc.updated_at = event.recorded_at;
    doc.position = event.position;
    doc
}

fn blank(kind: Kind, id: Uuid, event: &RecordedEvent) -> SearchDoc {
    SearchDoc {
        kind,
        id,
        tenant: event.tenant.clone(),
        title: String::new(),
        body: String::new(),
        status: String::new(),
        parties: Vec::new(),
        counterparty: None,
        value_minor: None,
        currency: None,
        start: None,
        end: None,
        tags: Vec::new(),
        product: None,
        category: None,
        priority: None,
        comments: Vec::new(),
        owner: None,
        shared_users: Vec::new(),
        shared_roles: Vec::new(),
        customer: None,
        updated_at: event.recorded_at,
        position: event.position,
    }
}

fn put(doc: SearchDoc) -> Result<Change, ApplyError> {
    Ok(Change::Put(Box::new(doc)))
}

fn contract(
    current: Option<&SearchDoc>,
    id: Uuid,
    event: &RecordedEvent,
) -> Result<Change, ApplyError> {
    let decoded: ContractEvent = decode_event(event)?;
    if let ContractEvent::Drafted(e) = &decoded {
        let mut doc = blank(Kind::Contract, id, event);
        doc.title = e.title.as_str().to_owned();
        doc.body = e.body.as_str().to_owned();
        doc.status = ContractStatus::Draft.as_str().to_owned();
        doc.parties = e
            .parties
            .iter()
            .map(|p| p.name.as_str().to_owned())
            .collect();
        doc.counterparty = Some(e.counterparty.organisation.as_str().to_owned());
        doc.value_minor = Some(e.value.amount_minor);
        doc.currency = Some(e.value.currency.as_str().to_owned());
        doc.start = Some(e.start_date);
        doc.end = Some(e.end_date);
        doc.owner = Some(e.owner);
        return put(doc);
    }
    let Some(current) = current else {
        return Ok(Change::Keep);
    };
    let mut doc = touched(current, event);
    let status = |s: ContractStatus| s.as_str().to_owned();
    match decoded {
        ContractEvent::Drafted(_) => {}
        ContractEvent::Amended(e) => {
            if let Some(terms) = e.terms {
                doc.value_minor = Some(terms.value.amount_minor);
                doc.currency = Some(terms.value.currency.as_str().to_owned());
                doc.start = Some(terms.start_date);
                doc.end = Some(terms.end_date);
            }
            if let Some(body) = e.body {
                doc.body = body.as_str().to_owned();
            }
            doc.status = status(ContractStatus::Draft);
        }
        ContractEvent::SubmittedForApproval(_) => {
            doc.status = status(ContractStatus::PendingApproval)
        }
        ContractEvent::Approved(_) => doc.status = status(ContractStatus::Approved),
        ContractEvent::Rejected(_) => doc.status = status(ContractStatus::Rejected),
        ContractEvent::Signed(_) => doc.status = status(ContractStatus::Signed),
        ContractEvent::Activated(_) => doc.status = status(ContractStatus::Active),
        ContractEvent::Renewed(e) => doc.end = Some(e.new_end_date),
        ContractEvent::Terminated(_) => doc.status = status(ContractStatus::Terminated),
        ContractEvent::Expired(_) => doc.status = status(ContractStatus::Expired),
        // A notice to the owner: the document does not change.
        ContractEvent::RenewalDue(_) => return Ok(Change::Keep),
        ContractEvent::Shared(e) => match e.grantee {
            Grantee::User(user) => {
                if !doc.shared_users.contains(&user) {
                    doc.shared_users.push(user);
                }
            }
            Grantee::Role(role) => {
                if !doc.shared_roles.contains(&role) {
                    doc.shared_roles.push(role);
                }
            }
        },
        ContractEvent::Unshared(e) => match e.grantee {
            Grantee::User(user) => doc.shared_users.retain(|u| *u != user),
            Grantee::Role(role) => doc.shared_roles.retain(|r| *r != role),
        },
    }
    put(doc)
}

fn tags(tags: &chronicle_domain::knowledge::Tags) -> Vec<String> {
    tags.as_slice()
        .iter()
        .map(ShortText::as_str)
        .map(str::to_owned)
        .collect()
}

fn article(
    current: Option<&SearchDoc>,
    id: Uuid,
    event: &RecordedEvent,
) -> Result<Change, ApplyError> {
    let decoded: KnowledgeEvent = decode_event(event)?;
    match decoded {
        KnowledgeEvent::Published(e) => {
            let mut doc = blank(Kind::Kb, id, event);
            doc.title = e.title.as_str().to_owned();
            doc.body = e.body.as_str().to_owned();
            doc.tags = tags(&e.tags);
            doc.product = Some(e.product.as_str().to_owned());
            doc.status = "published".to_owned();
            put(doc)
        }
        KnowledgeEvent::Revised(e) => {
            let Some(current) = current else {
                return Ok(Change::Keep);
            };
            let mut doc = touched(current, event);
            doc.title = e.title.as_str().to_owned();
            doc.body = e.body.as_str().to_owned();
            doc.tags = tags(&e.tags);
            put(doc)
        }
        KnowledgeEvent::Retired(_) => Ok(Change::Delete),
    }
}

fn ticket(
    current: Option<&SearchDoc>,
    id: Uuid,
    event: &RecordedEvent,
) -> Result<Change, ApplyError> {
    let decoded: TicketEvent = decode_event(event)?;
    if let TicketEvent::Opened(e) = &decoded {
        let mut doc = blank(Kind::Ticket, id, event);
        doc.title = e.title.as_str().to_owned();
        doc.body = e.description.as_str().to_owned();
        doc.status = e.status.as_str().to_owned();
        doc.product = Some(e.product.as_str().to_owned());
        doc.category = Some(e.category.as_str().to_owned());
        doc.priority = Some(label(&e.priority));
        doc.customer = Some(e.customer_id);
        return put(doc);
    }
    if let TicketEvent::Closed(_) = decoded {
        return Ok(Change::Delete);
    }
    let Some(current) = current else {
        return Ok(Change::Keep);
    };
    let mut doc = touched(current, event);
    if let Some(status) = decoded.new_status() {
        doc.status = status.as_str().to_owned();
    }
    match decoded {
        TicketEvent::Commented(e) => doc.comments.push(e.body.as_str().to_owned()),
        TicketEvent::Resolved(e) => doc.comments.push(e.resolution.as_str().to_owned()),
        TicketEvent::PriorityChanged(e) => doc.priority = Some(label(&e.priority)),
        TicketEvent::Opened(_)
        | TicketEvent::ExpertAssigned(_)
        | TicketEvent::Accepted(_)
        | TicketEvent::Rejected(_)
        | TicketEvent::WorkStarted(_)
        | TicketEvent::Reopened(_)
        | TicketEvent::Closed(_) => {}
        // Neither the text nor the status changes.
        TicketEvent::SlaBreached(_)
        | TicketEvent::Escalated(_)
        | TicketEvent::SurveySent(_)
        | TicketEvent::SurveyAnswered(_) => return Ok(Change::Keep),
    }
    put(doc)
}
