//! What happened to a lead. Every payload carries `at`, the acting user
//! (`by`) where a user acts, and the new `stage` where the stage changes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{BandwidthMbps, Contact, DocumentRef, Outcome, Stage, TestResult};
use crate::event::DomainEvent;
use crate::value::{LeadScore, LongText, Money, ShortText};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum LeadEvent {
    #[serde(rename = "lead.captured")]
    Captured(LeadCaptured),
    #[serde(rename = "lead.qualified")]
    Qualified(LeadQualified),
    #[serde(rename = "lead.owner_assigned")]
    OwnerAssigned(LeadOwnerAssigned),
    #[serde(rename = "lead.serviceability_checked")]
    ServiceabilityChecked(ServiceabilityChecked),
    #[serde(rename = "lead.design_submitted")]
    DesignSubmitted(DesignSubmitted),
    #[serde(rename = "lead.design_comment_added")]
    DesignCommentAdded(DesignCommentAdded),
    #[serde(rename = "lead.design_approval_requested")]
    DesignApprovalRequested(DesignApprovalRequested),
    #[serde(rename = "lead.design_approved")]
    DesignApproved(DesignApproved),
    #[serde(rename = "lead.design_rejected")]
    DesignRejected(DesignRejected),
    #[serde(rename = "lead.implementation_task_added")]
    ImplementationTaskAdded(ImplementationTaskAdded),
    #[serde(rename = "lead.implementation_task_assigned")]
    ImplementationTaskAssigned(ImplementationTaskAssigned),
    #[serde(rename = "lead.implementation_task_completed")]
    ImplementationTaskCompleted(ImplementationTaskCompleted),
    #[serde(rename = "lead.implementation_completed")]
    ImplementationCompleted(ImplementationCompleted),
    #[serde(rename = "lead.activation_test_recorded")]
    ActivationTestRecorded(ActivationTestRecorded),
    #[serde(rename = "lead.defect_raised")]
    DefectRaised(DefectRaised),
    #[serde(rename = "lead.defect_resolved")]
    DefectResolved(DefectResolved),
    #[serde(rename = "lead.testing_passed")]
    TestingPassed(TestingPassed),
    #[serde(rename = "lead.handed_over_to_support")]
    HandedOverToSupport(HandedOverToSupport),
    #[serde(rename = "lead.closed")]
    Closed(LeadClosed),
}

/// A new lead with all its initial fields. `contact` and `site_address`
/// are personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeadCaptured {
    pub company: ShortText,
    pub contact: Contact,
    pub site_address: ShortText,
    /// The requested service, e.g. "Dedicated Internet Access".
    pub service: ShortText,
    pub bandwidth_mbps: BandwidthMbps,
    pub estimated_value: Money,
    /// Where the lead came from, e.g. "web form", "partner referral".
    pub source: ShortText,
    /// Always `captured`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeadQualified {
    pub score: LeadScore,
    /// Always `qualified`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeadOwnerAssigned {
    pub owner: Uuid,
    pub previous_owner: Option<Uuid>,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceabilityChecked {
    pub feasible: bool,
    pub notes: Option<LongText>,
    /// Always `serviceability_checked`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesignSubmitted {
    /// 1 for the first design, then one more per submission.
    pub version: u32,
    pub summary: ShortText,
    pub specification: LongText,
    pub documents: Vec<DocumentRef>,
    /// Always `design`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesignCommentAdded {
    pub design_version: u32,
    pub author: Uuid,
    pub body: LongText,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesignApprovalRequested {
    pub approval_id: Uuid,
    pub design_version: u32,
    /// Always `design_approval`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesignApproved {
    pub approval_id: Uuid,
    pub design_version: u32,
    /// Always `implementation`.
    pub stage: Stage,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesignRejected {
    pub approval_id: Uuid,
    pub design_version: u32,
    pub reason: Option<LongText>,
    /// Always `design`: the lead goes back to design.
    pub stage: Stage,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImplementationTaskAdded {
    pub task_id: Uuid,
    pub title: ShortText,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImplementationTaskAssigned {
    pub task_id: Uuid,
    pub assignee: Uuid,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImplementationTaskCompleted {
    pub task_id: Uuid,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImplementationCompleted {
    /// Always `testing`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

/// One activation test. The defects it found follow as `lead.defect_raised`
/// events in the same commit; `defects` lists their ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActivationTestRecorded {
    pub name: ShortText,
    pub result: TestResult,
    pub defects: Vec<Uuid>,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DefectRaised {
    pub defect_id: Uuid,
    pub title: ShortText,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DefectResolved {
    pub defect_id: Uuid,
    pub resolution: Option<LongText>,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestingPassed {
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HandedOverToSupport {
    pub notes: Option<LongText>,
    /// Always `support`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LeadClosed {
    pub outcome: Outcome,
    pub reason: Option<ShortText>,
    /// The stage the lead was in when it closed.
    pub previous_stage: Stage,
    /// The design approval still pending when the lead closed (in
    /// `design_approval`), which is now moot and should be cancelled.
    pub pending_approval: Option<Uuid>,
    /// Always `closed`.
    pub stage: Stage,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

impl DomainEvent for LeadEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Captured(_) => "lead.captured",
            Self::Qualified(_) => "lead.qualified",
            Self::OwnerAssigned(_) => "lead.owner_assigned",
            Self::ServiceabilityChecked(_) => "lead.serviceability_checked",
            Self::DesignSubmitted(_) => "lead.design_submitted",
            Self::DesignCommentAdded(_) => "lead.design_comment_added",
            Self::DesignApprovalRequested(_) => "lead.design_approval_requested",
            Self::DesignApproved(_) => "lead.design_approved",
            Self::DesignRejected(_) => "lead.design_rejected",
            Self::ImplementationTaskAdded(_) => "lead.implementation_task_added",
            Self::ImplementationTaskAssigned(_) => "lead.implementation_task_assigned",
            Self::ImplementationTaskCompleted(_) => "lead.implementation_task_completed",
            Self::ImplementationCompleted(_) => "lead.implementation_completed",
            Self::ActivationTestRecorded(_) => "lead.activation_test_recorded",
            Self::DefectRaised(_) => "lead.defect_raised",
            Self::DefectResolved(_) => "lead.defect_resolved",
            Self::TestingPassed(_) => "lead.testing_passed",
            Self::HandedOverToSupport(_) => "lead.handed_over_to_support",
            Self::Closed(_) => "lead.closed",
        }
    }

    fn personal_fields(&self) -> &'static [&'static str] {
        match self {
            Self::Captured(_) => &[
                "/contact/name",
                "/contact/email",
                "/contact/phone",
                "/site_address",
            ],
            _ => &[],
        }
    }
}
