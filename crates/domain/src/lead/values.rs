//! The lead's own value objects and enums.

use std::fmt;
use std::num::NonZeroU32;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::value::{Email, ShortText, ValueError};

/// Where a lead is in its lifecycle. The declaration order is the order of
/// the lifecycle: a lead only moves forward, except that a rejected design
/// goes back from `design_approval` to `design`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Captured,
    Qualified,
    ServiceabilityChecked,
    Design,
    DesignApproval,
    Implementation,
    Testing,
    Support,
    Closed,
}

impl Stage {
    /// The stable name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Qualified => "qualified",
            Self::ServiceabilityChecked => "serviceability_checked",
            Self::Design => "design",
            Self::DesignApproval => "design_approval",
            Self::Implementation => "implementation",
            Self::Testing => "testing",
            Self::Support => "support",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stages a command accepts, for the `lead.wrong_stage` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages(pub &'static [Stage]);

impl fmt::Display for Stages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(stage.as_str())?;
        }
        Ok(())
    }
}

/// The customer's contact person. Every field is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    pub name: ShortText,
    pub email: Email,
    /// A phone number as given by the customer (free format).
    pub phone: Option<ShortText>,
}

/// Requested bandwidth in Mbps: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct BandwidthMbps(NonZeroU32);

impl BandwidthMbps {
    pub fn parse(field: &'static str, mbps: i64) -> Result<Self, ValueError> {
        u32::try_from(mbps)
            .ok()
            .and_then(NonZeroU32::new)
            .map(Self)
            .ok_or_else(|| {
                ValueError::new(
                    field,
                    format!("must be a positive number of Mbps, got {mbps}"),
                )
            })
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A document of a design, kept by the file service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentRef {
    pub document_id: Uuid,
    pub name: ShortText,
}

/// The result of one activation test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    Passed,
    Failed,
}

/// How a lead ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Won,
    Lost,
    Cancelled,
}

/// A defect found by an activation test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewDefect {
    pub defect_id: Uuid,
    pub title: ShortText,
}
