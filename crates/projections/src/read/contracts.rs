//! `read.contracts` and `read.contract_versions`.

use async_trait::async_trait;
use chronicle_domain::contract::{ContractEvent, ContractStatus, Grantee, PartyKind};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The contracts projection.
pub struct Contracts;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContractRow {
    pub contract_id: Uuid,
    pub tenant_id: String,
    pub title: String,
    pub parties: Value,
    pub counterparty: String,
    pub counterparty_contact_name: Option<String>,
    pub counterparty_contact_email: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub original_end_date: NaiveDate,
    pub status: String,
    pub owner_id: Uuid,
    pub contract_version: i32,
    pub body: String,
    pub approval_id: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub signatory_name: Option<String>,
    pub signed_by: Option<Uuid>,
    pub signed_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub renewal_count: i32,
    pub renewed_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
    pub terminated_by: Option<Uuid>,
    pub termination_reason: Option<String>,
    pub expired_at: Option<DateTime<Utc>>,
    pub shared_with_users: Vec<Uuid>,
    pub shared_with_roles: Vec<String>,
    pub drafted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for ContractRow {
    const TABLE: &'static str = "contracts";
    const KEY: &'static [&'static str] = &["contract_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.contract_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRow {
    pub contract_id: Uuid,
    pub version_no: i32,
    pub tenant_id: String,
    pub title: String,
    pub body: String,
    pub amount_minor: i64,
    pub currency: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub changed_by: Uuid,
    pub at: DateTime<Utc>,
    pub position: i64,
}

impl Row for VersionRow {
    const TABLE: &'static str = "contract_versions";
    const KEY: &'static [&'static str] = &["contract_id", "version_no"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.contract_id, self.version_no)
    }
}

impl VersionRow {
    /// The contract's current version as a history row.
    fn of(c: &ContractRow, changed_by: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            contract_id: c.contract_id,
            version_no: c.contract_version,
            tenant_id: c.tenant_id.clone(),
            title: c.title.clone(),
            body: c.body.clone(),
            amount_minor: c.amount_minor,
            currency: c.currency.clone(),
            start_date: c.start_date,
            end_date: c.end_date,
            changed_by,
            at,
            position: c.position,
        }
    }
}

#[derive(Default)]
struct Batch {
    contracts: Rows<ContractRow>,
    versions: Rows<VersionRow>,
}

#[async_trait]
impl Projection for Contracts {
    fn holds_personal_data(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "contracts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["contracts", "contract_versions"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "contract");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        b.contracts
            .load(&mut *conn, "t.contract_id = ANY($1)", &ids)
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "contract") {
            apply_one(&mut b, event)?;
        }
        b.contracts.flush(&mut *conn).await?;
        b.versions.flush(&mut *conn).await?;
        Ok(())
    }
}

fn status(s: ContractStatus) -> String {
    s.as_str().to_owned()
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: ContractEvent = decode_event(event)?;
    if let ContractEvent::Drafted(e) = &decoded {
        let parties: Vec<Value> = e
            .parties
            .iter()
            .map(|p| {
                json!({
                    "name": p.name.as_str(),
                    "kind": match p.kind {
                        PartyKind::Person => "person",
                        PartyKind::Organisation => "organisation",
                    },
                    "role": p.role.as_str(),
                })
            })
            .collect();
        let row = ContractRow {
            contract_id: id,
            tenant_id: event.tenant.clone(),
            title: e.title.as_str().to_owned(),
            parties: Value::Array(parties),
            counterparty: e.counterparty.organisation.as_str().to_owned(),
            counterparty_contact_name: Some(e.counterparty.contact.name.as_str().to_owned()),
            counterparty_contact_email: Some(e.counterparty.contact.email.as_str().to_owned()),
            amount_minor: e.value.amount_minor,
            currency: e.value.currency.as_str().to_owned(),
            start_date: e.start_date,
            end_date: e.end_date,
            original_end_date: e.end_date,
            status: status(ContractStatus::Draft),
            owner_id: e.owner,
            contract_version: 1,
            body: e.body.as_str().to_owned(),
            approval_id: None,
            submitted_at: None,
            approved_at: None,
            rejected_at: None,
            rejection_reason: None,
            signatory_name: None,
            signed_by: None,
            signed_at: None,
            activated_at: None,
            renewal_count: 0,
            renewed_at: None,
            terminated_at: None,
            terminated_by: None,
            termination_reason: None,
            expired_at: None,
            shared_with_users: Vec::new(),
            shared_with_roles: Vec::new(),
            drafted_at: e.at,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position: event.position as i64,
        };
        b.versions.put(VersionRow::of(&row, e.owner, e.at));
        b.contracts.put(row);
        return Ok(());
    }
    let Some(c) = b.contracts.get_mut(&id) else {
        return Err(ApplyError::poison(event, "no contract.drafted before it"));
    };
    c.updated_at = event.recorded_at;
    c.version = event.stream_version as i64;
    c.position = event.position as i64;
    match decoded {
        ContractEvent::Drafted(_) => {}
        ContractEvent::Amended(e) => {
            c.contract_version = i32::try_from(e.version)
                .map_err(|_| ApplyError::poison(event, "contract version out of range"))?;
            if let Some(terms) = e.terms {
                c.amount_minor = terms.value.amount_minor;
                c.currency = terms.value.currency.as_str().to_owned();
                c.start_date = terms.start_date;
                c.end_date = terms.end_date;
                c.original_end_date = terms.end_date;
            }
            if let Some(body) = e.body {
                c.body = body.as_str().to_owned();
            }
            c.status = status(ContractStatus::Draft);
            c.rejection_reason = None;
            b.versions.put(VersionRow::of(c, e.by, e.at));
        }
        ContractEvent::SubmittedForApproval(e) => {
            c.status = status(ContractStatus::PendingApproval);
            c.approval_id = Some(e.approval_id);
            c.submitted_at = Some(e.at);
            c.rejection_reason = None;
        }
        ContractEvent::Approved(e) => {
            c.status = status(ContractStatus::Approved);
            c.approved_at = Some(e.at);
        }
        ContractEvent::Rejected(e) => {
            c.status = status(ContractStatus::Rejected);
            c.rejected_at = Some(e.at);
            c.rejection_reason = Some(e.reason.as_str().to_owned());
        }
        ContractEvent::Signed(e) => {
            c.status = status(ContractStatus::Signed);
            c.signatory_name = Some(e.signatory_name.as_str().to_owned());
            c.signed_by = Some(e.by);
            c.signed_at = Some(e.at);
        }
        ContractEvent::Activated(e) => {
            c.status = status(ContractStatus::Active);
            c.activated_at = Some(e.at);
        }
        ContractEvent::Renewed(e) => {
            c.end_date = e.new_end_date;
            c.renewal_count += 1;
            c.renewed_at = Some(e.at);
        }
        ContractEvent::Terminated(e) => {
            c.status = status(ContractStatus::Terminated);
            c.terminated_at = Some(e.at);
            c.terminated_by = Some(e.by);
            c.termination_reason = Some(e.reason.as_str().to_owned());
        }
        ContractEvent::Expired(e) => {
            c.status = status(ContractStatus::Expired);
            c.expired_at = Some(e.at);
        }
        // A notice to the owner; the contract's terms and status stay.
        ContractEvent::RenewalDue(_) => {}
        ContractEvent::Shared(e) => match e.grantee {
            Grantee::User(user) => {
                if !c.shared_with_users.contains(&user) {
                    c.shared_with_users.push(user);
                }
            }
            Grantee::Role(role) => {
                if !c.shared_with_roles.contains(&role) {
                    c.shared_with_roles.push(role);
                }
            }
        },
        ContractEvent::Unshared(e) => match e.grantee {
            Grantee::User(user) => c.shared_with_users.retain(|u| *u != user),
            Grantee::Role(role) => c.shared_with_roles.retain(|r| *r != role),
        },
    }
    Ok(())
}
