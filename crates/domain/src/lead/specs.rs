//! The lead's entries in the event catalogue.

use schemars::schema_for;
use serde_json::json;

use super::event::*;
use super::Lead;
use crate::aggregate::Aggregate;
use crate::catalog::EventSpec;

fn spec(
    event_type: &'static str,
    schema: schemars::schema::RootSchema,
    example: serde_json::Value,
) -> EventSpec {
    EventSpec {
        stream_type: Lead::STREAM_TYPE,
        event_type,
        version: 1,
        schema,
        example,
    }
}

/// One entry per lead event type and schema version.
pub fn event_specs() -> Vec<EventSpec> {
    vec![
        spec(
            "lead.captured",
            schema_for!(LeadCaptured),
            json!({
                "company": "Nordwind Logistics GmbH",
                "contact": {
                    "name": "Anna Keller",
                    "email": "anna.keller@nordwind-logistics.example",
                    "phone": "+49 40 1234 5678"
                },
                "site_address": "Am Sandtorkai 12, 20457 Hamburg, Germany",
                "service": "Dedicated Internet Access",
                "bandwidth_mbps": 500,
                "estimated_value": { "amount_minor": 1_440_000, "currency": "EUR" },
                "source": "web form",
                "stage": "captured",
                "by": "0190f5a2-7c41-7d8e-9a0b-3c4d5e6f7a81",
                "at": "2026-03-02T09:15:00Z"
            }),
        ),
        spec(
            "lead.qualified",
            schema_for!(LeadQualified),
            json!({
                "score": 72,
                "stage": "qualified",
                "by": "0190f5a2-7c41-7d8e-9a0b-3c4d5e6f7a81",
                "at": "2026-03-03T10:00:00Z"
            }),
        ),
        spec(
            "lead.owner_assigned",
            schema_for!(LeadOwnerAssigned),
            json!({
                "owner": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "previous_owner": null,
                "by": "0190f5a2-7c41-7d8e-9a0b-3c4d5e6f7a81",
                "at": "2026-03-03T10:05:00Z"
            }),
        ),
        spec(
            "lead.serviceability_checked",
            schema_for!(ServiceabilityChecked),
            json!({
                "feasible": true,
                "notes": "Fibre on the street; 40 m of new duct to the building.",
                "stage": "serviceability_checked",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-05T14:30:00Z"
            }),
        ),
        spec(
            "lead.design_submitted",
            schema_for!(DesignSubmitted),
            json!({
                "version": 1,
                "summary": "Dual-homed 500 Mbps DIA with managed CPE",
                "specification": "Primary fibre from the Hamburg-Hafen PoP, LTE backup, BGP with two upstreams, /29 public range.",
                "documents": [
                    {
                        "document_id": "0190f5b0-1a2b-7c3d-8e4f-5a6b7c8d9e03",
                        "name": "network-design-v1.pdf"
                    }
                ],
                "stage": "design",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-09T16:45:00Z"
            }),
        ),
        spec(
            "lead.design_comment_added",
            schema_for!(DesignCommentAdded),
            json!({
                "design_version": 1,
                "author": "0190f5a3-2b3c-7d4e-8f5a-6b7c8d9e0f04",
                "body": "Please confirm the LTE backup covers the basement server room.",
                "at": "2026-03-10T08:20:00Z"
            }),
        ),
        spec(
            "lead.design_approval_requested",
            schema_for!(DesignApprovalRequested),
            json!({
                "approval_id": "0190f5c1-4d5e-7f6a-8b7c-9d0e1f2a3b05",
                "design_version": 1,
                "stage": "design_approval",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-10T11:00:00Z"
            }),
        ),
        spec(
            "lead.design_approved",
            schema_for!(DesignApproved),
            json!({
                "approval_id": "0190f5c1-4d5e-7f6a-8b7c-9d0e1f2a3b05",
                "design_version": 1,
                "stage": "implementation",
                "at": "2026-03-12T15:10:00Z"
            }),
        ),
        spec(
            "lead.design_rejected",
            schema_for!(DesignRejected),
            json!({
                "approval_id": "0190f5c1-4d5e-7f6a-8b7c-9d0e1f2a3b05",
                "design_version": 1,
                "reason": "The backup link must not share the building entry with the primary.",
                "stage": "design",
                "at": "2026-03-12T15:10:00Z"
            }),
        ),
        spec(
            "lead.implementation_task_added",
            schema_for!(ImplementationTaskAdded),
            json!({
                "task_id": "0190f5d2-5e6f-7a8b-9c0d-1e2f3a4b5c06",
                "title": "Lay 40 m duct and pull fibre to the MDF",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-13T09:00:00Z"
            }),
        ),
        spec(
            "lead.implementation_task_assigned",
            schema_for!(ImplementationTaskAssigned),
            json!({
                "task_id": "0190f5d2-5e6f-7a8b-9c0d-1e2f3a4b5c06",
                "assignee": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-13T09:05:00Z"
            }),
        ),
        spec(
            "lead.implementation_task_completed",
            schema_for!(ImplementationTaskCompleted),
            json!({
                "task_id": "0190f5d2-5e6f-7a8b-9c0d-1e2f3a4b5c06",
                "by": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "at": "2026-03-20T17:30:00Z"
            }),
        ),
        spec(
            "lead.implementation_completed",
            schema_for!(ImplementationCompleted),
            json!({
                "stage": "testing",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-23T08:00:00Z"
            }),
        ),
        spec(
            "lead.activation_test_recorded",
            schema_for!(ActivationTestRecorded),
            json!({
                "name": "BGP failover to LTE backup",
                "result": "failed",
                "defects": ["0190f5e3-6f7a-7b8c-9d0e-2f3a4b5c6d08"],
                "by": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "at": "2026-03-23T11:40:00Z"
            }),
        ),
        spec(
            "lead.defect_raised",
            schema_for!(DefectRaised),
            json!({
                "defect_id": "0190f5e3-6f7a-7b8c-9d0e-2f3a4b5c6d08",
                "title": "Failover takes 95 s instead of under 30 s",
                "by": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "at": "2026-03-23T11:40:00Z"
            }),
        ),
        spec(
            "lead.defect_resolved",
            schema_for!(DefectResolved),
            json!({
                "defect_id": "0190f5e3-6f7a-7b8c-9d0e-2f3a4b5c6d08",
                "resolution": "Lowered BGP hold timer to 9 s and enabled BFD.",
                "by": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "at": "2026-03-24T10:15:00Z"
            }),
        ),
        spec(
            "lead.testing_passed",
            schema_for!(TestingPassed),
            json!({
                "by": "0190f5a4-3c4d-7e5f-8a6b-7c8d9e0f1a07",
                "at": "2026-03-24T15:00:00Z"
            }),
        ),
        spec(
            "lead.handed_over_to_support",
            schema_for!(HandedOverToSupport),
            json!({
                "notes": "Monitoring enabled; escalation contact is the NOC on-call.",
                "stage": "support",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-25T09:00:00Z"
            }),
        ),
        spec(
            "lead.closed",
            schema_for!(LeadClosed),
            json!({
                "outcome": "won",
                "reason": "Service live and accepted by the customer",
                "previous_stage": "support",
                "pending_approval": null,
                "stage": "closed",
                "by": "0190f5a2-9e10-7b3c-8d4e-5f6a7b8c9d02",
                "at": "2026-03-31T12:00:00Z"
            }),
        ),
    ]
}
