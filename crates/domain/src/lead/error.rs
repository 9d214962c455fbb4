//! Why a lead refused a command.

use uuid::Uuid;

use super::values::{Stage, Stages};
use crate::error::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    #[error("lead not found")]
    NotFound,
    #[error("lead already exists")]
    AlreadyExists,
    #[error("lead is closed")]
    Closed,
    #[error("wrong stage: expected {expected}, lead is {actual}")]
    WrongStage { expected: Stages, actual: Stage },
    #[error("the site is not serviceable: the lead can only be closed as lost or cancelled")]
    NotServiceable,
    #[error("too many design versions")]
    TooManyDesignVersions,
    #[error("no design has been submitted")]
    NoDesign,
    #[error("unknown design version {version}: the latest is {latest}")]
    UnknownDesignVersion { version: u32, latest: u32 },
    #[error("design version {version} was rejected: submit a new version first")]
    DesignRejected { version: u32 },
    #[error("approval {approval_id} is not the pending design approval")]
    UnknownApproval { approval_id: Uuid },
    #[error("implementation task {task_id} already exists")]
    TaskExists { task_id: Uuid },
    #[error("implementation task {task_id} not found")]
    TaskNotFound { task_id: Uuid },
    #[error("implementation task {task_id} is already completed")]
    TaskCompleted { task_id: Uuid },
    #[error("implementation has no tasks")]
    NoTasks,
    #[error("{open} implementation task(s) still open")]
    TasksOpen { open: usize },
    #[error("defect {defect_id} already exists")]
    DefectExists { defect_id: Uuid },
    #[error("defect {defect_id} not found")]
    DefectNotFound { defect_id: Uuid },
    #[error("defect {defect_id} is already resolved")]
    DefectResolved { defect_id: Uuid },
    #[error("no activation test has passed")]
    NoPassedTest,
    #[error("{open} defect(s) still open")]
    DefectsOpen { open: usize },
    #[error("testing has already passed")]
    TestingPassed,
    #[error("testing has not passed yet")]
    TestingNotPassed,
}

impl ErrorCode for LeadError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "lead.not_found",
            Self::AlreadyExists => "lead.already_exists",
            Self::Closed => "lead.closed",
            Self::WrongStage { .. } => "lead.wrong_stage",
            Self::NotServiceable => "lead.not_serviceable",
            Self::TooManyDesignVersions => "lead.too_many_design_versions",
            Self::NoDesign => "lead.no_design",
            Self::UnknownDesignVersion { .. } => "lead.unknown_design_version",
            Self::DesignRejected { .. } => "lead.design_rejected",
            Self::UnknownApproval { .. } => "lead.unknown_approval",
            Self::TaskExists { .. } => "lead.task_exists",
            Self::TaskNotFound { .. } => "lead.task_not_found",
            Self::TaskCompleted { .. } => "lead.task_completed",
            Self::NoTasks => "lead.no_tasks",
            Self::TasksOpen { .. } => "lead.tasks_open",
            Self::DefectExists { .. } => "lead.defect_exists",
            Self::DefectNotFound { .. } => "lead.defect_not_found",
            Self::DefectResolved { .. } => "lead.defect_resolved",
            Self::NoPassedTest => "lead.no_passed_test",
            Self::DefectsOpen { .. } => "lead.defects_open",
            Self::TestingPassed => "lead.testing_passed",
            Self::TestingNotPassed => "lead.testing_not_passed",
        }
    }
}
