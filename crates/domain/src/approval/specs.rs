//! The approval's entries in the event catalogue.

use schemars::schema_for;
use serde_json::json;

use super::event::*;
use super::Approval;
use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;

fn spec(
    event_type: &'static str,
    schema: schemars::schema::RootSchema,
    example: serde_json::Value,
) -> EventSpec {
    EventSpec {
        stream_type: Approval::STREAM_TYPE,
        event_type,
        version: 1,
        schema,
        example,
    }
}

/// One entry per approval event type and schema version.
pub fn event_specs() -> Vec<EventSpec> {
    vec![
        spec(
            "approval.requested",
            schema_for!(ApprovalRequested),
            json!({
                "subject": {
                    "kind": "lead_design",
                    "id": "0190f5a1-0b1c-7d2e-8f3a-4b5c6d7e8f90"
                },
                "value": { "amount_minor": 1_440_000, "currency": "EUR" },
                "levels": [
                    {
                        "approvers": [{ "role": "approver" }],
                        "required": 1,
                        "due_secs": 172_800
                    },
                    {
                        "approvers": [
                            { "user": "0190f5a5-4d5e-7f6a-8b7c-9d0e1f2a3b11" },
                            { "user": "0190f5a5-5e6f-7a8b-9c0d-1e2f3a4b5c12" },
                            { "role": "manager" }
                        ],
                        "required": 2,
                        "due_secs": null
                    }
                ],
                "requested_by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "status": "open",
                "at": "2026-03-10T11:00:00Z"
            }),
        ),
        spec(
            "approval.decision_recorded",
            schema_for!(DecisionRecorded),
            json!({
                "level": 0,
                "approver": "0190f5a3-2b3c-7d4e-8f5a-6b7c8d9e0f04",
                "decision": "approve",
                "comment": "Routing and backup look sound.",
                "at": "2026-03-11T09:30:00Z"
            }),
        ),
        spec(
            "approval.level_completed",
            schema_for!(LevelCompleted),
            json!({
                "level": 0,
                "approvals": 1,
                "next_level": 1,
                "at": "2026-03-11T09:30:00Z"
            }),
        ),
        spec(
            "approval.granted",
            schema_for!(ApprovalGranted),
            json!({
                "subject": {
                    "kind": "lead_design",
                    "id": "0190f5a1-0b1c-7d2e-8f3a-4b5c6d7e8f90"
                },
                "status": "granted",
                "at": "2026-03-12T15:10:00Z"
            }),
        ),
        spec(
            "approval.rejected",
            schema_for!(ApprovalRejected),
            json!({
                "subject": {
                    "kind": "contract",
                    "id": "0190f5f4-7a8b-7c9d-8e0f-3a4b5c6d7e21"
                },
                "level": 1,
                "by": "0190f5a5-4d5e-7f6a-8b7c-9d0e1f2a3b11",
                "comment": "The liability cap is below our minimum.",
                "status": "rejected",
                "at": "2026-03-12T15:10:00Z"
            }),
        ),
        spec(
            "approval.changes_requested",
            schema_for!(ChangesRequested),
            json!({
                "subject": {
                    "kind": "lead_design",
                    "id": "0190f5a1-0b1c-7d2e-8f3a-4b5c6d7e8f90"
                },
                "level": 0,
                "by": "0190f5a3-2b3c-7d4e-8f5a-6b7c8d9e0f04",
                "comment": "Route the backup through a separate building entry.",
                "status": "changes_requested",
                "at": "2026-03-11T09:30:00Z"
            }),
        ),
        spec(
            "approval.escalated",
            schema_for!(ApprovalEscalated),
            json!({
                "level": 0,
                "due_at": "2026-03-12T11:00:00Z",
                "at": "2026-03-12T11:00:05Z"
            }),
        ),
        spec(
            "approval.cancelled",
            schema_for!(ApprovalCancelled),
            json!({
                "subject": {
                    "kind": "lead_design",
                    "id": "0190f5a1-0b1c-7d2e-8f3a-4b5c6d7e8f90"
                },
                "reason": "Lead cancelled by the customer",
                "by": "0190f5a2-7c41-7d8e-9a0b-3c4d5e6f7a81",
                "status": "cancelled",
                "at": "2026-03-11T08:00:00Z"
            }),
        ),
    ]
}
