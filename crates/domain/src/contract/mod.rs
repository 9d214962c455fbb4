//! Contracts (seeds 001, 002): drafted, amended in versions, approved,
//! signed, run for a term, renewed, and finally terminated or expired.
//! Shared with users or roles, which decides who may see them.
//!
//! ```text
//!            amend (version + 1)             amend / submit again
//!              ┌──┐                        ┌──────────────────────┐
//!              │  ▼                        ▼                      │
//! draft ───► draft ──submit──► pending_approval ──reject──► rejected
//!                                   │
//!                                approve
//!                                   ▼
//!                               approved ──sign──► signed ──activate──► active ──terminate──► terminated
//!                                                          (at ≥ start)  │  ▲  │
//!                                                                        └──┘  └──expire (at ≥ end)──► expired
//!                                                          renew (new end after the current end)
//! ```
//!
//! Rules:
//! - A contract has at least one party, and its term ends after it starts
//!   (`end_date > start_date`), in the draft, in every amendment and in every
//!   renewal (the new end date is after the current one).
//! - Only a draft or a rejected contract can be amended; each amendment
//!   bumps the version (the draft is version 1) and makes it a draft again.
//!   A rejected contract may also be submitted again unchanged.
//! - Approval is delegated to an approval request (`crate::approval`): the
//!   submission records its id, and only that approval can approve or
//!   reject the contract.
//! - A contract is activated on or after its start date and expires on or
//!   after its end date (the date of `at`, in UTC). Renewal keeps it active.
//! - Sharing works in any status; a grantee (a user or a role) is shared
//!   once and unshared only if shared.
//!
//! Personal data: the parties' names (a party may be a person), the
//! counterparty contact's name and email, and the signatory's name live in
//! their own fields (see [`DomainEvent::personal_fields`]).
//!
//! Schema history: `contract.drafted` v1 stored the value as a decimal
//! string with a separate currency; v2 stores a [`Money`]. See [`v1`].

pub mod v1;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::{DecodeError, DomainEvent};
use crate::value::{Email, LongText, Money, ShortText};

/// The stream type of contracts.
pub const STREAM_TYPE: &str = "contract";

// ---------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------

/// Where a contract is in its lifecycle.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    Draft,
    PendingApproval,
    Approved,
    Rejected,
    Signed,
    Active,
    Terminated,
    Expired,
}

impl ContractStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Signed => "signed",
            Self::Active => "active",
            Self::Terminated => "terminated",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for ContractStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a party is a person (whose name is personal data) or an
/// organisation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Person,
    Organisation,
}

/// One party to the contract and the role it plays (`supplier`,
/// `customer`, `guarantor`...).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// Personal data when `kind` is `person`.
    pub name: ShortText,
    pub kind: PartyKind,
    pub role: ShortText,
}

/// The person to talk to at the counterparty. Personal data.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub name: ShortText,
    pub email: Email,
}

/// The organisation on the other side of the contract.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct Counterparty {
    pub organisation: ShortText,
    pub contact: Contact,
}

/// The commercial terms: the value and the term (`end_date` after
/// `start_date`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub value: Money,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

/// Who a contract is shared with: one user, or everyone holding a role.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    /// `{"user": "<uuid>"}`
    User(Uuid),
    /// `{"role": "legal"}`
    Role(String),
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user {id}"),
            Self::Role(role) => write!(f, "role {role}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// Everything a new contract starts with. The owner is the user drafting it.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftContract {
    pub title: ShortText,
    pub parties: Vec<Party>,
    pub counterparty: Counterparty,
    pub value: Money,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub body: LongText,
    pub owner: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ContractCommand {
    Draft(DraftContract),
    /// New terms and/or a new body, as a new version.
    Amend {
        terms: Option<Terms>,
        body: Option<LongText>,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    SubmitForApproval {
        approval_id: Uuid,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// Issued when the approval request `approval_id` is approved.
    Approve {
        approval_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Issued when the approval request `approval_id` is rejected.
    Reject {
        approval_id: Uuid,
        reason: LongText,
        at: DateTime<Utc>,
    },
    Sign {
        signatory_name: ShortText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// By a user or a timer on the start date.
    Activate {
        at: DateTime<Utc>,
    },
    Renew {
        new_end_date: NaiveDate,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    Terminate {
        reason: LongText,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    /// By a timer on the end date.
    Expire {
        at: DateTime<Utc>,
    },
    /// By a timer some days before the end date: the owner should decide
    /// on a renewal. Once per end date.
    NoticeRenewal {
        at: DateTime<Utc>,
    },
    Share {
        grantee: Grantee,
        actor: Uuid,
        at: DateTime<Utc>,
    },
    Unshare {
        grantee: Grantee,
        actor: Uuid,
        at: DateTime<Utc>,
    },
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// `contract.drafted` (schema v2): the contract exists, as version 1, in
/// status `draft`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractDrafted {
    pub title: ShortText,
    pub parties: Vec<Party>,
    pub counterparty: Counterparty,
    pub value: Money,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub body: LongText,
    pub owner: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.amended`: a new version with new terms and/or a new body; the
/// contract is a draft again.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractAmended {
    /// The new version number (the draft is version 1).
    pub version: u32,
    /// The new terms, if they changed.
    pub terms: Option<Terms>,
    /// The new body, if it changed.
    pub body: Option<LongText>,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.submitted_for_approval`: status `pending_approval`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractSubmittedForApproval {
    pub approval_id: Uuid,
    /// The version submitted.
    pub version: u32,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.approved`: status `approved`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractApproved {
    pub approval_id: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.rejected`: status `rejected`, amendable again.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractRejected {
    pub approval_id: Uuid,
    pub reason: LongText,
    pub at: DateTime<Utc>,
}

/// `contract.signed`: status `signed`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractSigned {
    /// Personal data.
    pub signatory_name: ShortText,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.activated`: status `active`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractActivated {
    pub at: DateTime<Utc>,
}

/// `contract.renewed`: still `active`, with a later end date.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractRenewed {
    pub new_end_date: NaiveDate,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.terminated`: status `terminated` (final).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractTerminated {
    pub reason: LongText,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.expired`: status `expired` (final).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractExpired {
    pub at: DateTime<Utc>,
}

/// `contract.renewal_due`: the active contract ends on `end_date`; its
/// owner should renew it or let it expire. Status unchanged.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractRenewalDue {
    pub end_date: NaiveDate,
    /// The owner, who is told.
    pub owner: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.shared`: `grantee` may now see the contract.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractShared {
    pub grantee: Grantee,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// `contract.unshared`: `grantee` may no longer see the contract.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ContractUnshared {
    pub grantee: Grantee,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum ContractEvent {
    #[serde(rename = "contract.drafted")]
    Drafted(ContractDrafted),
    #[serde(rename = "contract.amended")]
    Amended(ContractAmended),
    #[serde(rename = "contract.submitted_for_approval")]
    SubmittedForApproval(ContractSubmittedForApproval),
    #[serde(rename = "contract.approved")]
    Approved(ContractApproved),
    #[serde(rename = "contract.rejected")]
    Rejected(ContractRejected),
    #[serde(rename = "contract.signed")]
    Signed(ContractSigned),
    #[serde(rename = "contract.activated")]
    Activated(ContractActivated),
    #[serde(rename = "contract.renewed")]
    Renewed(ContractRenewed),
    #[serde(rename = "contract.terminated")]
    Terminated(ContractTerminated),
    #[serde(rename = "contract.expired")]
    Expired(ContractExpired),
    #[serde(rename = "contract.renewal_due")]
    RenewalDue(ContractRenewalDue),
    #[serde(rename = "contract.shared")]
    Shared(ContractShared),
    #[serde(rename = "contract.unshared")]
    Unshared(ContractUnshared),
}

/// The event type whose schema changed in version 2.
const DRAFTED: &str = "contract.drafted";

impl DomainEvent for ContractEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Drafted(_) => DRAFTED,
            Self::Amended(_) => "contract.amended",
            Self::SubmittedForApproval(_) => "contract.submitted_for_approval",
            Self::Approved(_) => "contract.approved",
            Self::Rejected(_) => "contract.rejected",
            Self::Signed(_) => "contract.signed",
            Self::Activated(_) => "contract.activated",
            Self::Renewed(_) => "contract.renewed",
            Self::Terminated(_) => "contract.terminated",
            Self::Expired(_) => "contract.expired",
            Self::RenewalDue(_) => "contract.renewal_due",
            Self::Shared(_) => "contract.shared",
            Self::Unshared(_) => "contract.unshared",
        }
    }

    fn current_version(event_type: &str) -> u16 {
        if event_type == DRAFTED {
            2
        } else {
            1
        }
    }

    fn upcast(event_type: &str, from_version: u16, data: Value) -> Result<Value, DecodeError> {
        match (event_type, from_version) {
            (DRAFTED, 1) => v1::upcast_drafted(data).map_err(|reason| DecodeError::Invalid {
                event_type: event_type.to_owned(),
                source: serde::de::Error::custom(format!("upcasting from v1: {reason}")),
            }),
            (_, version) if version == Self::current_version(event_type) => Ok(data),
            (_, version) => Err(DecodeError::UnknownVersion {
                event_type: event_type.to_owned(),
                version,
            }),
        }
    }

    fn personal_fields(&self) -> &'static [&'static str] {
        match self {
            // A party may be a person at any index: the whole list is
            // personal (a JSON pointer cannot name every element).
            Self::Drafted(_) => &[
                "/parties",
                "/counterparty/contact/name",
                "/counterparty/contact/email",
            ],
            Self::Signed(_) => &["/signatory_name"],
            _ => &[],
        }
    }

    fn personal_pointers(&self) -> Vec<String> {
        match self {
            // The names of the parties that are people, and the contact.
            Self::Drafted(e) => e
                .parties
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kind == PartyKind::Person)
                .map(|(i, _)| format!("/parties/{i}/name"))
                .chain([
                    "/counterparty/contact/name".to_owned(),
                    "/counterparty/contact/email".to_owned(),
                ])
                .collect(),
            other => other
                .personal_fields()
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// What is known about an existing contract.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractDetails {
    pub status: ContractStatus,
    /// 1 for the draft, bumped by each amendment.
    pub version: u32,
    pub title: ShortText,
    pub parties: Vec<Party>,
    pub counterparty: Counterparty,
    pub terms: Terms,
    pub body: LongText,
    pub owner: Uuid,
    /// The approval request deciding the contract, while pending.
    pub pending_approval: Option<Uuid>,
    /// Why the last approval was rejected, while rejected.
    pub rejection_reason: Option<LongText>,
    pub signatory_name: Option<ShortText>,
    pub signed_at: Option<DateTime<Utc>>,
    pub shared_with: BTreeSet<Grantee>,
    /// The end date a renewal notice was last given for.
    pub renewal_noticed_for: Option<NaiveDate>,
}

/// The contract aggregate. `Contract::default()` is a contract that does
/// not exist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contract {
    details: Option<ContractDetails>,
}

impl Contract {
    /// `None` while the contract does not exist.
    pub fn details(&self) -> Option<&ContractDetails> {
        self.details.as_ref()
    }

    pub fn status(&self) -> Option<ContractStatus> {
        self.details.as_ref().map(|d| d.status)
    }

    fn existing(&self) -> Result<&ContractDetails, ContractError> {
        self.details.as_ref().ok_or(ContractError::NotFound)
    }

    /// The existing contract, if its status is one of `allowed`.
    fn in_status(
        &self,
        action: &'static str,
        allowed: &[ContractStatus],
    ) -> Result<&ContractDetails, ContractError> {
        let details = self.existing()?;
        if allowed.contains(&details.status) {
            Ok(details)
        } else {
            Err(ContractError::WrongStatus {
                action,
                status: details.status,
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("contract does not exist")]
    NotFound,
    #[error("contract already exists")]
    AlreadyExists,
    #[error("cannot {action} a contract that is {status}")]
    WrongStatus {
        action: &'static str,
        status: ContractStatus,
    },
    #[error("the end date {end_date} must be after {after}")]
    InvalidTerm {
        end_date: NaiveDate,
        after: NaiveDate,
    },
    #[error("a contract needs at least one party")]
    NoParties,
    #[error("an amendment needs new terms or a new body")]
    NothingToAmend,
    #[error("the contract has reached the highest version number")]
    VersionLimit,
    #[error("approval {got} does not decide this contract")]
    ApprovalMismatch { got: Uuid },
    #[error("the contract starts on {start_date}")]
    NotYetStarted { start_date: NaiveDate },
    #[error("the contract runs until {end_date}")]
    NotYetEnded { end_date: NaiveDate },
    #[error("the contract is already shared with {0}")]
    AlreadyShared(Grantee),
    #[error("the contract is not shared with {0}")]
    NotShared(Grantee),
}

impl ErrorCode for ContractError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "contract.not_found",
            Self::AlreadyExists => "contract.already_exists",
            Self::WrongStatus { .. } => "contract.wrong_status",
            Self::InvalidTerm { .. } => "contract.invalid_term",
            Self::NoParties => "contract.no_parties",
            Self::NothingToAmend => "contract.nothing_to_amend",
            Self::VersionLimit => "contract.version_limit",
            Self::ApprovalMismatch { .. } => "contract.approval_mismatch",
            Self::NotYetStarted { .. } => "contract.not_yet_started",
            Self::NotYetEnded { .. } => "contract.not_yet_ended",
            Self::AlreadyShared(_) => "contract.already_shared",
            Self::NotShared(_) => "contract.not_shared",
        }
    }
}

fn check_term(start_date: NaiveDate, end_date: NaiveDate) -> Result<(), ContractError> {
    if end_date > start_date {
        Ok(())
    } else {
        Err(ContractError::InvalidTerm {
            end_date,
            after: start_date,
        })
    }
}

// ---------------------------------------------------------------------------
// Decide and evolve
// ---------------------------------------------------------------------------

impl Aggregate for Contract {
    const STREAM_TYPE: &'static str = STREAM_TYPE;

    type Command = ContractCommand;
    type Event = ContractEvent;
    type Error = ContractError;

    fn decide(&self, command: &ContractCommand) -> Result<Vec<ContractEvent>, ContractError> {
        use ContractStatus as S;

        let event = match command {
            ContractCommand::Draft(draft) => {
                if self.details.is_some() {
                    return Err(ContractError::AlreadyExists);
                }
                if draft.parties.is_empty() {
                    return Err(ContractError::NoParties);
                }
                check_term(draft.start_date, draft.end_date)?;
                ContractEvent::Drafted(ContractDrafted {
                    title: draft.title.clone(),
                    parties: draft.parties.clone(),
                    counterparty: draft.counterparty.clone(),
                    value: draft.value,
                    start_date: draft.start_date,
                    end_date: draft.end_date,
                    body: draft.body.clone(),
                    owner: draft.owner,
                    at: draft.at,
                })
            }
            ContractCommand::Amend {
                terms,
                body,
                actor,
                at,
            } => {
                let details = self.in_status("amend", &[S::Draft, S::Rejected])?;
                if terms.is_none() && body.is_none() {
                    return Err(ContractError::NothingToAmend);
                }
                if let Some(terms) = terms {
                    check_term(terms.start_date, terms.end_date)?;
                }
                let version = details
                    .version
                    .checked_add(1)
                    .ok_or(ContractError::VersionLimit)?;
                ContractEvent::Amended(ContractAmended {
                    version,
                    terms: *terms,
                    body: body.clone(),
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::SubmitForApproval {
                approval_id,
                actor,
                at,
            } => {
                let details = self.in_status("submit", &[S::Draft, S::Rejected])?;
                ContractEvent::SubmittedForApproval(ContractSubmittedForApproval {
                    approval_id: *approval_id,
                    version: details.version,
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::Approve { approval_id, at } => {
                let details = self.in_status("approve", &[S::PendingApproval])?;
                if details.pending_approval != Some(*approval_id) {
                    return Err(ContractError::ApprovalMismatch { got: *approval_id });
                }
                ContractEvent::Approved(ContractApproved {
                    approval_id: *approval_id,
                    at: *at,
                })
            }
            ContractCommand::Reject {
                approval_id,
                reason,
                at,
            } => {
                let details = self.in_status("reject", &[S::PendingApproval])?;
                if details.pending_approval != Some(*approval_id) {
                    return Err(ContractError::ApprovalMismatch { got: *approval_id });
                }
                ContractEvent::Rejected(ContractRejected {
                    approval_id: *approval_id,
                    reason: reason.clone(),
                    at: *at,
                })
            }
            ContractCommand::Sign {
                signatory_name,
                actor,
                at,
            } => {
                self.in_status("sign", &[S::Approved])?;
                ContractEvent::Signed(ContractSigned {
                    signatory_name: signatory_name.clone(),
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::Activate { at } => {
                let details = self.in_status("activate", &[S::Signed])?;
                if at.date_naive() < details.terms.start_date {
                    return Err(ContractError::NotYetStarted {
                        start_date: details.terms.start_date,
                    });
                }
                ContractEvent::Activated(ContractActivated { at: *at })
            }
            ContractCommand::Renew {
                new_end_date,
                actor,
                at,
            } => {
                let details = self.in_status("renew", &[S::Active])?;
                check_term(details.terms.end_date, *new_end_date)?;
                ContractEvent::Renewed(ContractRenewed {
                    new_end_date: *new_end_date,
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::Terminate { reason, actor, at } => {
                self.in_status("terminate", &[S::Active])?;
                ContractEvent::Terminated(ContractTerminated {
                    reason: reason.clone(),
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::Expire { at } => {
                let details = self.in_status("expire", &[S::Active])?;
                if at.date_naive() < details.terms.end_date {
                    return Err(ContractError::NotYetEnded {
                        end_date: details.terms.end_date,
                    });
                }
                ContractEvent::Expired(ContractExpired { at: *at })
            }
            ContractCommand::NoticeRenewal { at } => {
                let details = self.in_status("notice a renewal of", &[S::Active])?;
                if details.renewal_noticed_for == Some(details.terms.end_date) {
                    return Ok(vec![]);
                }
                ContractEvent::RenewalDue(ContractRenewalDue {
                    end_date: details.terms.end_date,
                    owner: details.owner,
                    at: *at,
                })
            }
            ContractCommand::Share { grantee, actor, at } => {
                let details = self.existing()?;
                if details.shared_with.contains(grantee) {
                    return Err(ContractError::AlreadyShared(grantee.clone()));
                }
                ContractEvent::Shared(ContractShared {
                    grantee: grantee.clone(),
                    by: *actor,
                    at: *at,
                })
            }
            ContractCommand::Unshare { grantee, actor, at } => {
                let details = self.existing()?;
                if !details.shared_with.contains(grantee) {
                    return Err(ContractError::NotShared(grantee.clone()));
                }
                ContractEvent::Unshared(ContractUnshared {
                    grantee: grantee.clone(),
                    by: *actor,
                    at: *at,
                })
            }
        };
        Ok(vec![event])
    }

    fn evolve(self, event: &ContractEvent) -> Self {
        use ContractStatus as S;

        let details = match (self.details, event) {
            (None, ContractEvent::Drafted(e)) => ContractDetails {
                status: S::Draft,
                version: 1,
                title: e.title.clone(),
                parties: e.parties.clone(),
                counterparty: e.counterparty.clone(),
                terms: Terms {
                    value: e.value,
                    start_date: e.start_date,
                    end_date: e.end_date,
                },
                body: e.body.clone(),
                owner: e.owner,
                pending_approval: None,
                rejection_reason: None,
                signatory_name: None,
                signed_at: None,
                shared_with: BTreeSet::new(),
                renewal_noticed_for: None,
            },
            // Only a drafted event creates a contract; nothing else applies
            // to a stream that does not exist, and a second draft cannot
            // have been decided.
            (None, _) => return Self { details: None },
            (Some(d), ContractEvent::Drafted(_)) => d,
            (Some(mut d), ContractEvent::Amended(e)) => {
                d.status = S::Draft;
                d.version = e.version;
                if let Some(terms) = e.terms {
                    d.terms = terms;
                }
                if let Some(body) = &e.body {
                    d.body = body.clone();
                }
                d.rejection_reason = None;
                d
            }
            (Some(mut d), ContractEvent::SubmittedForApproval(e)) => {
                d.status = S::PendingApproval;
                d.pending_approval = Some(e.approval_id);
                d.rejection_reason = None;
                d
            }
            (Some(mut d), ContractEvent::Approved(_)) => {
                d.status = S::Approved;
                d.pending_approval = None;
                d
            }
            (Some(mut d), ContractEvent::Rejected(e)) => {
                d.status = S::Rejected;
                d.pending_approval = None;
                d.rejection_reason = Some(e.reason.clone());
                d
            }
            (Some(mut d), ContractEvent::Signed(e)) => {
                d.status = S::Signed;
                d.signatory_name = Some(e.signatory_name.clone());
                d.signed_at = Some(e.at);
                d
            }
            (Some(mut d), ContractEvent::Activated(_)) => {
                d.status = S::Active;
                d
            }
            (Some(mut d), ContractEvent::Renewed(e)) => {
                d.terms.end_date = e.new_end_date;
                d
            }
            (Some(mut d), ContractEvent::Terminated(_)) => {
                d.status = S::Terminated;
                d
            }
            (Some(mut d), ContractEvent::Expired(_)) => {
                d.status = S::Expired;
                d
            }
            (Some(mut d), ContractEvent::RenewalDue(e)) => {
                d.renewal_noticed_for = Some(e.end_date);
                d
            }
            (Some(mut d), ContractEvent::Shared(e)) => {
                d.shared_with.insert(e.grantee.clone());
                d
            }
            (Some(mut d), ContractEvent::Unshared(e)) => {
                d.shared_with.remove(&e.grantee);
                d
            }
        };
        Self {
            details: Some(details),
        }
    }
}

// ---------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------

fn spec<T: JsonSchema>(event_type: &'static str, version: u16, example: Value) -> EventSpec {
    EventSpec {
        stream_type: STREAM_TYPE,
        event_type,
        version,
        schema: schemars::schema_for!(T),
        example,
    }
}

/// The fields `contract.drafted` v1 and v2 share, in the golden examples.
fn drafted_example(value: Value, currency: Option<&str>) -> Value {
    let mut example = json!({
        "title": "Managed network services agreement 2025",
        "parties": [
            { "name": "Chronicle Telecom Ltd", "kind": "organisation", "role": "supplier" },
            { "name": "Northwind Logistics GmbH", "kind": "organisation", "role": "customer" },
            { "name": "Sofia Marquez", "kind": "person", "role": "guarantor" }
        ],
        "counterparty": {
            "organisation": "Northwind Logistics GmbH",
            "contact": { "name": "Jonas Weber", "email": "jonas.weber@northwind.example" }
        },
        "value": value,
        "start_date": "2025-03-01",
        "end_date": "2026-02-28",
        "body": "1. Scope. The supplier provides managed WAN and LAN services for the customer's three warehouses as listed in annex A.\n2. Service levels. Availability of 99.9% per calendar month; see annex B.\n3. Fees. Billed monthly in advance.",
        "owner": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
        "at": "2025-02-03T09:15:00Z"
    });
    if let (Some(currency), Value::Object(map)) = (currency, &mut example) {
        map.insert("currency".into(), Value::String(currency.to_owned()));
    }
    example
}

/// Every contract event type and schema version, with its JSON Schema and a
/// realistic example.
pub fn event_specs() -> Vec<EventSpec> {
    vec![
        spec::<v1::ContractDraftedV1>(DRAFTED, 1, drafted_example(json!("12500.50"), Some("EUR"))),
        spec::<ContractDrafted>(
            DRAFTED,
            2,
            drafted_example(
                json!({ "amount_minor": 1_250_050, "currency": "EUR" }),
                None,
            ),
        ),
        spec::<ContractAmended>(
            "contract.amended",
            1,
            json!({
                "version": 2,
                "terms": {
                    "value": { "amount_minor": 1_380_000, "currency": "EUR" },
                    "start_date": "2025-04-01",
                    "end_date": "2026-03-31"
                },
                "body": null,
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2025-02-10T14:02:31Z"
            }),
        ),
        spec::<ContractSubmittedForApproval>(
            "contract.submitted_for_approval",
            1,
            json!({
                "approval_id": "0190f3c4-1b7a-7e02-8d44-5a9c0e6f1b23",
                "version": 2,
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2025-02-10T14:05:00Z"
            }),
        ),
        spec::<ContractApproved>(
            "contract.approved",
            1,
            json!({
                "approval_id": "0190f3c4-1b7a-7e02-8d44-5a9c0e6f1b23",
                "at": "2025-02-12T10:41:17Z"
            }),
        ),
        spec::<ContractRejected>(
            "contract.rejected",
            1,
            json!({
                "approval_id": "0190f3c4-1b7a-7e02-8d44-5a9c0e6f1b23",
                "reason": "The liability cap in clause 9 exceeds the limit of our insurance; cap it at the annual fee.",
                "at": "2025-02-11T16:20:00Z"
            }),
        ),
        spec::<ContractSigned>(
            "contract.signed",
            1,
            json!({
                "signatory_name": "Jonas Weber",
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2025-02-20T11:00:00Z"
            }),
        ),
        spec::<ContractActivated>(
            "contract.activated",
            1,
            json!({ "at": "2025-04-01T00:00:05Z" }),
        ),
        spec::<ContractRenewed>(
            "contract.renewed",
            1,
            json!({
                "new_end_date": "2027-03-31",
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2026-01-15T08:30:00Z"
            }),
        ),
        spec::<ContractTerminated>(
            "contract.terminated",
            1,
            json!({
                "reason": "Customer closed the Hamburg warehouse; terminated by mutual agreement under clause 14.2.",
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2026-06-30T17:00:00Z"
            }),
        ),
        spec::<ContractExpired>(
            "contract.expired",
            1,
            json!({ "at": "2027-03-31T00:00:02Z" }),
        ),
        spec::<ContractRenewalDue>(
            "contract.renewal_due",
            1,
            json!({
                "end_date": "2027-03-31",
                "owner": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2027-03-01T00:00:01Z"
            }),
        ),
        spec::<ContractShared>(
            "contract.shared",
            1,
            json!({
                "grantee": { "role": "legal" },
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2025-02-03T09:20:00Z"
            }),
        ),
        spec::<ContractUnshared>(
            "contract.unshared",
            1,
            json!({
                "grantee": { "user": "0190f3b7-22c9-7a10-b3e5-6c1d9f0a4e88" },
                "by": "0190f3a1-6d2e-7c4b-9a51-3f0e8b2c7d10",
                "at": "2025-03-05T12:00:00Z"
            }),
        ),
    ]
}
