//! Tenant policies: the SLA policy and the approval policy of one tenant.
//!
//! One stream per tenant: stream type `tenant_policy`, stream id = the
//! tenant id. Each `set` replaces that policy as a whole; the other policy is
//! untouched. A tenant without a stream (or without one of the two policies)
//! uses the defaults ([`SlaPolicy::default`], [`ApprovalPolicy::default`]).
//!
//! ```text
//!   (no stream) ──set_sla_policy──────► exists ──set_sla_policy──────► exists
//!               └─set_approval_policy─►        └─set_approval_policy─►
//! ```
//!
//! Rules:
//! - the policies are value objects: they cannot be built invalid
//!   ([`SlaTargets::new`], [`ApprovalPolicy::new`]), including when
//!   deserialised, so `decide` has nothing left to refuse ([`PolicyError`]
//!   has no variant);
//! - setting a policy equal to the current one produces no event (a retried
//!   or repeated command is harmless);
//! - [`SlaPolicy::due`] and [`ApprovalPolicy::levels_for`] are pure functions
//!   used by the ticket timers and the approval process manager.
//!
//! SLA targets are all measured from the moment the ticket was opened, so
//! the first response and the assignment are never due after the
//! resolution.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;
use crate::error::ErrorCode;
use crate::event::DomainEvent;
use crate::user::Role;
use crate::value::{Priority, ValueError};

/// The longest duration a policy may hold: ten years, in seconds. Keeps every
/// due-date computation far from overflow.
pub const MAX_DURATION_SECS: u64 = 10 * 366 * 24 * 3600;

// ---------------------------------------------------------------------------
// SLA policy
// ---------------------------------------------------------------------------

/// A stage of a ticket's life that has its own SLA.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SlaStage {
    /// From opening until an expert is first assigned.
    Assign,
    /// From opening until the expert's first response (acceptance or comment).
    FirstResponse,
    /// From opening until the ticket is resolved.
    Resolve,
}

impl SlaStage {
    pub const ALL: [SlaStage; 3] = [Self::Assign, Self::FirstResponse, Self::Resolve];
}

/// The SLA targets of one priority, in seconds from the ticket's opening.
/// All positive, at most [`MAX_DURATION_SECS`], and neither the assignment
/// nor the first response due after the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "RawSlaTargets")]
pub struct SlaTargets {
    time_to_assign_secs: u64,
    time_to_first_response_secs: u64,
    time_to_resolve_secs: u64,
}

#[derive(Deserialize)]
struct RawSlaTargets {
    time_to_assign_secs: u64,
    time_to_first_response_secs: u64,
    time_to_resolve_secs: u64,
}

impl TryFrom<RawSlaTargets> for SlaTargets {
    type Error = ValueError;

    fn try_from(raw: RawSlaTargets) -> Result<Self, ValueError> {
        Self::new(
            raw.time_to_assign_secs,
            raw.time_to_first_response_secs,
            raw.time_to_resolve_secs,
        )
    }
}

fn check_duration(field: &'static str, secs: u64) -> Result<u64, ValueError> {
    if secs == 0 {
        return Err(ValueError::new(field, "must be greater than 0"));
    }
    if secs > MAX_DURATION_SECS {
        return Err(ValueError::new(
            field,
            format!("must be at most {MAX_DURATION_SECS} seconds"),
        ));
    }
    Ok(secs)
}

impl SlaTargets {
    pub fn new(
        time_to_assign_secs: u64,
        time_to_first_response_secs: u64,
        time_to_resolve_secs: u64,
    ) -> Result<Self, ValueError> {
        let assign = check_duration("time_to_assign_secs", time_to_assign_secs)?;
        let first = check_duration("time_to_first_response_secs", time_to_first_response_secs)?;
        let resolve = check_duration("time_to_resolve_secs", time_to_resolve_secs)?;
        if assign > resolve {
            return Err(ValueError::new(
                "time_to_assign_secs",
                "must not exceed time_to_resolve_secs",
            ));
        }
        if first > resolve {
            return Err(ValueError::new(
                "time_to_first_response_secs",
                "must not exceed time_to_resolve_secs",
            ));
        }
        Ok(Self {
            time_to_assign_secs: assign,
            time_to_first_response_secs: first,
            time_to_resolve_secs: resolve,
        })
    }

    pub fn time_to_assign_secs(&self) -> u64 {
        self.time_to_assign_secs
    }

    pub fn time_to_first_response_secs(&self) -> u64 {
        self.time_to_first_response_secs
    }

    pub fn time_to_resolve_secs(&self) -> u64 {
        self.time_to_resolve_secs
    }

    /// The target of one stage, in seconds.
    pub fn secs(&self, stage: SlaStage) -> u64 {
        match stage {
            SlaStage::Assign => self.time_to_assign_secs,
            SlaStage::FirstResponse => self.time_to_first_response_secs,
            SlaStage::Resolve => self.time_to_resolve_secs,
        }
    }
}

/// A tenant's SLA targets for each priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlaPolicy {
    pub p1: SlaTargets,
    pub p2: SlaTargets,
    pub p3: SlaTargets,
    pub p4: SlaTargets,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

fn default_targets(assign: u64, first: u64, resolve: u64) -> SlaTargets {
    // The defaults below satisfy every rule of `SlaTargets::new`; building
    // them directly keeps `Default` infallible.
    SlaTargets {
        time_to_assign_secs: assign,
        time_to_first_response_secs: first,
        time_to_resolve_secs: resolve,
    }
}

impl Default for SlaPolicy {
    /// P1: assign 15 min, respond 1 h, resolve 4 h; P2: 1 h, 4 h, 24 h;
    /// P3: 4 h, 8 h, 72 h; P4: 8 h, 24 h, 120 h.
    fn default() -> Self {
        Self {
            p1: default_targets(15 * MINUTE, HOUR, 4 * HOUR),
            p2: default_targets(HOUR, 4 * HOUR, 24 * HOUR),
            p3: default_targets(4 * HOUR, 8 * HOUR, 72 * HOUR),
            p4: default_targets(8 * HOUR, 24 * HOUR, 120 * HOUR),
        }
    }
}

impl SlaPolicy {
    pub fn targets(&self, priority: Priority) -> &SlaTargets {
        match priority {
            Priority::P1 => &self.p1,
            Priority::P2 => &self.p2,
            Priority::P3 => &self.p3,
            Priority::P4 => &self.p4,
        }
    }

    /// When `stage` of a ticket of `priority` is due, counting from `from`
    /// (the ticket's opening). Saturates at the largest representable
    /// instant instead of overflowing.
    pub fn due(&self, priority: Priority, stage: SlaStage, from: DateTime<Utc>) -> DateTime<Utc> {
        let secs = self.targets(priority).secs(stage);
        i64::try_from(secs)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .and_then(|delta| from.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

// ---------------------------------------------------------------------------
// Approval policy
// ---------------------------------------------------------------------------

/// Who may approve at one level: a named user or anyone holding a role.
///
/// Serialised as `{"user": "<uuid>"}` or `{"role": "approver"}`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    User(Uuid),
    /// A role name from [`Role`] (`approver`, `manager`, ...).
    Role(String),
}

/// One level of an approval chain: `required` of the eligible `approvers`
/// must approve, optionally within `due_secs` of the level opening.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct LevelSpec {
    pub approvers: Vec<Approver>,
    pub required: u16,
    pub due_secs: Option<u64>,
}

impl LevelSpec {
    /// Checks one level: at least one approver, no duplicates, role names
    /// known, `required >= 1`, and when only users are listed, `required` at
    /// most their number; `due_secs`, when given, positive and bounded.
    pub fn validate(&self, field: &'static str) -> Result<(), ValueError> {
        if self.approvers.is_empty() {
            return Err(ValueError::new(
                field,
                "a level needs at least one approver",
            ));
        }
        let mut seen = Vec::with_capacity(self.approvers.len());
        for approver in &self.approvers {
            if seen.contains(&approver) {
                return Err(ValueError::new(field, "an approver is listed twice"));
            }
            if let Approver::Role(name) = approver {
                Role::parse(field, name)?;
            }
            seen.push(approver);
        }
        if self.required == 0 {
            return Err(ValueError::new(field, "required must be at least 1"));
        }
        let only_users = self
            .approvers
            .iter()
            .all(|a| matches!(a, Approver::User(_)));
        if only_users && usize::from(self.required) > self.approvers.len() {
            return Err(ValueError::new(
                field,
                format!(
                    "required ({}) exceeds the {} listed approvers",
                    self.required,
                    self.approvers.len()
                ),
            ));
        }
        if let Some(due) = self.due_secs {
            check_duration(field, due)?;
        }
        Ok(())
    }
}

/// What an approval is about, as far as the policy is concerned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    LeadDesign,
    Contract,
}

/// From `min_value_minor` (inclusive, in minor currency units) upwards, these
/// ordered levels apply, until the next higher threshold takes over. An empty
/// `levels` list means no approval is needed in that value band.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ValueThreshold {
    pub min_value_minor: i64,
    pub levels: Vec<LevelSpec>,
}

/// The value thresholds of one subject kind.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRule {
    pub kind: SubjectKind,
    pub thresholds: Vec<ValueThreshold>,
}

/// A tenant's approval chains: at most one rule per subject kind; within a
/// rule, distinct non-negative thresholds kept in ascending order; every
/// level valid ([`LevelSpec::validate`]).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(try_from = "RawApprovalPolicy")]
pub struct ApprovalPolicy {
    rules: Vec<ApprovalRule>,
}

#[derive(Deserialize)]
struct RawApprovalPolicy {
    rules: Vec<ApprovalRule>,
}

impl TryFrom<RawApprovalPolicy> for ApprovalPolicy {
    type Error = ValueError;

    fn try_from(raw: RawApprovalPolicy) -> Result<Self, ValueError> {
        Self::new(raw.rules)
    }
}

impl ApprovalPolicy {
    /// Validates the rules and orders them (by kind) and their thresholds
    /// (ascending).
    pub fn new(mut rules: Vec<ApprovalRule>) -> Result<Self, ValueError> {
        let mut kinds = BTreeSet::new();
        for rule in &mut rules {
            if !kinds.insert(rule.kind) {
                return Err(ValueError::new(
                    "rules",
                    "at most one rule per subject kind",
                ));
            }
            rule.thresholds.sort_by_key(|t| t.min_value_minor);
            let mut previous: Option<i64> = None;
            for threshold in &rule.thresholds {
                if threshold.min_value_minor < 0 {
                    return Err(ValueError::new("min_value_minor", "must not be negative"));
                }
                if previous == Some(threshold.min_value_minor) {
                    return Err(ValueError::new(
                        "min_value_minor",
                        "thresholds of one rule must be distinct",
                    ));
                }
                previous = Some(threshold.min_value_minor);
                for level in &threshold.levels {
                    level.validate("levels")?;
                }
            }
        }
        rules.sort_by_key(|r| r.kind);
        Ok(Self { rules })
    }

    /// A policy that never asks for approval.
    pub fn none() -> Self {
        Self { rules: Vec::new() }
    }

    pub fn rules(&self) -> &[ApprovalRule] {
        &self.rules
    }

    /// The ordered levels that a subject of `kind` worth `value_minor` must
    /// pass: those of the highest threshold not above the value. Empty when
    /// no threshold applies (no approval needed).
    pub fn levels_for(&self, kind: SubjectKind, value_minor: i64) -> Vec<LevelSpec> {
        self.rules
            .iter()
            .find(|r| r.kind == kind)
            .and_then(|r| {
                r.thresholds
                    .iter()
                    .rev()
                    .find(|t| t.min_value_minor <= value_minor)
            })
            .map(|t| t.levels.clone())
            .unwrap_or_default()
    }
}

impl Default for ApprovalPolicy {
    /// Lead designs and contracts of any value need one approval by anyone
    /// holding the `approver` role, within two days.
    fn default() -> Self {
        let one_approver = || ValueThreshold {
            min_value_minor: 0,
            levels: vec![LevelSpec {
                approvers: vec![Approver::Role(Role::Approver.as_str().to_owned())],
                required: 1,
                due_secs: Some(48 * HOUR),
            }],
        };
        Self {
            rules: vec![
                ApprovalRule {
                    kind: SubjectKind::LeadDesign,
                    thresholds: vec![one_approver()],
                },
                ApprovalRule {
                    kind: SubjectKind::Contract,
                    thresholds: vec![one_approver()],
                },
            ],
        }
    }
}

// ---------------------------------------------------------------------------
// The aggregate
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    SetSlaPolicy {
        actor: Uuid,
        policy: SlaPolicy,
        at: DateTime<Utc>,
    },
    SetApprovalPolicy {
        actor: Uuid,
        policy: ApprovalPolicy,
        at: DateTime<Utc>,
    },
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SlaPolicySet {
    pub policy: SlaPolicy,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ApprovalPolicySet {
    pub policy: ApprovalPolicy,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(tag = "type", content = "data")]
pub enum PolicyEvent {
    #[serde(rename = "tenant_policy.sla_policy_set")]
    SlaPolicySet(SlaPolicySet),
    #[serde(rename = "tenant_policy.approval_policy_set")]
    ApprovalPolicySet(ApprovalPolicySet),
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::SlaPolicySet(_) => "tenant_policy.sla_policy_set",
            Self::ApprovalPolicySet(_) => "tenant_policy.approval_policy_set",
        }
    }
}

/// A tenant policy command is never refused: the policies it carries are
/// valid by construction. The enum exists for the [`Aggregate`] contract.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {}

impl ErrorCode for PolicyError {
    fn code(&self) -> &'static str {
        match *self {}
    }
}

/// The id of the stream holding `tenant`'s policies: the UUIDv5 (URL
/// namespace) of `chronicle-policy:<tenant>`, so that every tenant has
/// exactly one and none can reach another's.
pub fn stream_id(tenant: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("chronicle-policy:{tenant}").as_bytes(),
    )
}

/// The policies of one tenant. `None` = never set (use the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPolicy {
    pub sla: Option<SlaPolicy>,
    pub approval: Option<ApprovalPolicy>,
}

impl TenantPolicy {
    pub fn exists(&self) -> bool {
        self.sla.is_some() || self.approval.is_some()
    }

    /// The SLA policy in force: the one set, or the default.
    pub fn sla_policy(&self) -> SlaPolicy {
        self.sla.unwrap_or_default()
    }

    /// The approval policy in force: the one set, or the default.
    pub fn approval_policy(&self) -> ApprovalPolicy {
        self.approval.clone().unwrap_or_default()
    }
}

impl Aggregate for TenantPolicy {
    const STREAM_TYPE: &'static str = "tenant_policy";

    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = PolicyError;

    fn decide(&self, command: &PolicyCommand) -> Result<Vec<PolicyEvent>, PolicyError> {
        Ok(match command {
            PolicyCommand::SetSlaPolicy { actor, policy, at } => {
                if self.sla.as_ref() == Some(policy) {
                    vec![]
                } else {
                    vec![PolicyEvent::SlaPolicySet(SlaPolicySet {
                        policy: *policy,
                        by: *actor,
                        at: *at,
                    })]
                }
            }
            PolicyCommand::SetApprovalPolicy { actor, policy, at } => {
                if self.approval.as_ref() == Some(policy) {
                    vec![]
                } else {
                    vec![PolicyEvent::ApprovalPolicySet(ApprovalPolicySet {
                        policy: policy.clone(),
                        by: *actor,
                        at: *at,
                    })]
                }
            }
        })
    }

    fn evolve(mut self, event: &PolicyEvent) -> Self {
        match event {
            PolicyEvent::SlaPolicySet(e) => self.sla = Some(e.policy),
            PolicyEvent::ApprovalPolicySet(e) => self.approval = Some(e.policy.clone()),
        }
        self
    }
}

/// The catalogue entries of the tenant policy events.
pub fn event_specs() -> Vec<EventSpec> {
    let targets = |a: u64, f: u64, r: u64| {
        json!({
            "time_to_assign_secs": a,
            "time_to_first_response_secs": f,
            "time_to_resolve_secs": r,
        })
    };
    vec![
        EventSpec {
            stream_type: TenantPolicy::STREAM_TYPE,
            event_type: "tenant_policy.sla_policy_set",
            version: 1,
            schema: schemars::schema_for!(SlaPolicySet),
            example: json!({
                "policy": {
                    "p1": targets(900, 3600, 14400),
                    "p2": targets(3600, 14400, 86400),
                    "p3": targets(14400, 28800, 259200),
                    "p4": targets(28800, 86400, 432000),
                },
                "by": "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b",
                "at": "2024-06-03T09:15:00Z",
            }),
        },
        EventSpec {
            stream_type: TenantPolicy::STREAM_TYPE,
            event_type: "tenant_policy.approval_policy_set",
            version: 1,
            schema: schemars::schema_for!(ApprovalPolicySet),
            example: json!({
                "policy": {
                    "rules": [
                        {
                            "kind": "lead_design",
                            "thresholds": [
                                {
                                    "min_value_minor": 0,
                                    "levels": [
                                        {"approvers": [{"role": "approver"}], "required": 1, "due_secs": 172800}
                                    ]
                                },
                                {
                                    "min_value_minor": 5_000_000,
                                    "levels": [
                                        {"approvers": [{"role": "approver"}], "required": 1, "due_secs": 172800},
                                        {
                                            "approvers": [
                                                {"user": "0190a5b2-7c3d-7e4f-8a1b-000000000001"},
                                                {"user": "0190a5b2-7c3d-7e4f-8a1b-000000000002"},
                                                {"role": "manager"}
                                            ],
                                            "required": 2,
                                            "due_secs": null
                                        }
                                    ]
                                }
                            ]
                        },
                        {
                            "kind": "contract",
                            "thresholds": [
                                {"min_value_minor": 0, "levels": []},
                                {
                                    "min_value_minor": 1_000_000,
                                    "levels": [
                                        {"approvers": [{"role": "sales"}, {"role": "manager"}], "required": 1, "due_secs": 86400}
                                    ]
                                }
                            ]
                        }
                    ]
                },
                "by": "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b",
                "at": "2024-06-03T09:20:00Z",
            }),
        },
    ]
}

#[cfg(test)]
mod tests;
