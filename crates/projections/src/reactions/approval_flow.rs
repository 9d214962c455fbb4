//! Approval outcomes (seed 000): submitting a lead's design or a contract
//! opens its approval with the levels the tenant's approval policy asks
//! for the subject's value; the approval's outcome drives the subject.
//!
//! | event | command |
//! |---|---|
//! | `lead.design_approval_requested` | `approval` Request (the policy's levels for the lead's estimated value); no levels: the lead's ApproveDesign |
//! | `contract.submitted_for_approval` | `approval` Request (levels for the contract's value); no levels: the contract's Approve |
//! | `approval.granted` | lead ApproveDesign / contract Approve |
//! | `approval.rejected`, `approval.changes_requested`, `approval.cancelled` | lead RejectDesign (back to design) / contract Reject |
//!
//! The approval's id is the one the subject recorded, so an approval
//! requested by hand under that id (`POST /api/v1/approvals`) is used as
//! it is: the request from the policy is then refused as a duplicate.

use async_trait::async_trait;
use chronicle_domain::approval::{
    Approval, ApprovalCommand, ApprovalEvent, Subject, SubjectKind as ApprovalSubject,
};
use chronicle_domain::contract::{Contract, ContractCommand, ContractEvent};
use chronicle_domain::lead::{Lead, LeadCommand, LeadEvent};
use chronicle_domain::policy::SubjectKind;
use chronicle_domain::value::{LongText, Money};
use chronicle_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Cause, Policies, Reactor};
use crate::read::{decode_event, entity_id};
use crate::{ApplyError, Projection};

const NAME: &str = "approval_flow";

/// The approval process manager.
pub struct ApprovalFlow {
    reactor: Reactor,
}

impl ApprovalFlow {
    pub fn new(reactor: Reactor) -> Self {
        Self { reactor }
    }
}

#[async_trait]
impl Projection for ApprovalFlow {
    fn issues_commands(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut policies = Policies::default();
        for event in events {
            policies.observe(event)?;
            match event.event_type.as_str() {
                "lead.design_approval_requested" => {
                    self.lead_submitted(&mut policies, event).await?
                }
                "contract.submitted_for_approval" => {
                    self.contract_submitted(&mut policies, event).await?
                }
                "approval.granted"
                | "approval.rejected"
                | "approval.changes_requested"
                | "approval.cancelled" => self.decided(event).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// What an approval decided about its subject.
enum Outcome {
    Granted,
    Refused(Option<LongText>),
}

impl ApprovalFlow {
    async fn lead_submitted(
        &self,
        policies: &mut Policies,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let LeadEvent::DesignApprovalRequested(e) = decode_event(event)? else {
            return Ok(());
        };
        let lead_id = entity_id(event)?;
        let value = self
            .reactor
            .load_at::<Lead>(&event.tenant, lead_id, event.position)
            .await?
            .and_then(|lead| lead.estimated_value);
        let subject = Subject {
            kind: ApprovalSubject::LeadDesign,
            id: lead_id,
        };
        self.request(policies, event, subject, value, e.approval_id, e.by)
            .await
    }

    async fn contract_submitted(
        &self,
        policies: &mut Policies,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let ContractEvent::SubmittedForApproval(e) = decode_event(event)? else {
            return Ok(());
        };
        let contract_id = entity_id(event)?;
        let value = self
            .reactor
            .load_at::<Contract>(&event.tenant, contract_id, event.position)
            .await?
            .and_then(|c| c.details().map(|d| d.terms.value));
        let subject = Subject {
            kind: ApprovalSubject::Contract,
            id: contract_id,
        };
        self.request(policies, event, subject, value, e.approval_id, e.by)
            .await
    }

    /// Opens the approval the policy asks for, or approves the subject at
    /// once when the policy asks for none.
    async fn request(
        &self,
        policies: &mut Policies,
        event: &RecordedEvent,
        subject: Subject,
        value: Option<Money>,
        approval_id: Uuid,
        requested_by: Uuid,
    ) -> Result<(), ApplyError> {
        let kind = match subject.kind {
            ApprovalSubject::LeadDesign => SubjectKind::LeadDesign,
            ApprovalSubject::Contract => SubjectKind::Contract,
        };
        let levels = policies
            .at(&self.reactor, event)
            .await?
            .approval_policy()
            .levels_for(kind, value.map_or(0, |v| v.amount_minor));
        if levels.is_empty() {
            return self
                .drive(event, subject, approval_id, Outcome::Granted)
                .await;
        }
        self.reactor
            .issue::<Approval>(
                NAME,
                Cause::event(event),
                "request",
                approval_id,
                ApprovalCommand::Request {
                    subject,
                    value,
                    levels,
                    requested_by,
                    at: self.reactor.clock().now(),
                },
            )
            .await?;
        Ok(())
    }

    async fn decided(&self, event: &RecordedEvent) -> Result<(), ApplyError> {
        let approval_id = entity_id(event)?;
        let (subject, outcome) = match decode_event::<ApprovalEvent>(event)? {
            ApprovalEvent::Granted(e) => (e.subject, Outcome::Granted),
            ApprovalEvent::Rejected(e) => (e.subject, Outcome::Refused(e.comment)),
            ApprovalEvent::ChangesRequested(e) => (e.subject, Outcome::Refused(e.comment)),
            ApprovalEvent::Cancelled(e) => {
                let reason = e
                    .reason
                    .and_then(|r| LongText::parse("reason", r.as_str()).ok())
                    .or_else(|| LongText::parse("reason", "the approval was cancelled").ok());
                (e.subject, Outcome::Refused(reason))
            }
            _ => return Ok(()),
        };
        self.drive(event, subject, approval_id, outcome).await
    }

    /// Tells the subject the approval's outcome.
    async fn drive(
        &self,
        event: &RecordedEvent,
        subject: Subject,
        approval_id: Uuid,
        outcome: Outcome,
    ) -> Result<(), ApplyError> {
        let at = self.reactor.clock().now();
        let cause = Cause::event(event);
        match (subject.kind, outcome) {
            (ApprovalSubject::LeadDesign, Outcome::Granted) => {
                self.reactor
                    .issue::<Lead>(
                        NAME,
                        cause,
                        "outcome",
                        subject.id,
                        LeadCommand::ApproveDesign { approval_id, at },
                    )
                    .await?;
            }
            (ApprovalSubject::LeadDesign, Outcome::Refused(reason)) => {
                self.reactor
                    .issue::<Lead>(
                        NAME,
                        cause,
                        "outcome",
                        subject.id,
                        LeadCommand::RejectDesign {
                            approval_id,
                            reason,
                            at,
                        },
                    )
                    .await?;
            }
            (ApprovalSubject::Contract, Outcome::Granted) => {
                self.reactor
                    .issue::<Contract>(
                        NAME,
                        cause,
                        "outcome",
                        subject.id,
                        ContractCommand::Approve { approval_id, at },
                    )
                    .await?;
            }
            (ApprovalSubject::Contract, Outcome::Refused(reason)) => {
                let reason = reason
                    .or_else(|| LongText::parse("reason", "the approval was rejected").ok())
                    .ok_or_else(|| ApplyError::Transient("no rejection reason".into()))?;
                self.reactor
                    .issue::<Contract>(
                        NAME,
                        cause,
                        "outcome",
                        subject.id,
                        ContractCommand::Reject {
                            approval_id,
                            reason,
                            at,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
