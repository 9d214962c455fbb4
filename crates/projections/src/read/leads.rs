//! `read.leads` and its history tables: `read.lead_stages` (time in each
//! stage), `read.lead_designs`, `read.lead_design_comments`,
//! `read.lead_tasks`, `read.lead_activation_tests` and `read.lead_defects`.

use async_trait::async_trait;
use chronicle_domain::lead::{LeadEvent, Stage};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, label, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The leads projection.
pub struct Leads;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadRow {
    pub lead_id: Uuid,
    pub tenant_id: String,
    pub company: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub site_address: Option<String>,
    pub service: String,
    pub bandwidth_mbps: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub source: String,
    pub score: Option<i16>,
    pub owner_id: Option<Uuid>,
    pub owner_assigned_at: Option<DateTime<Utc>>,
    pub captured_by: Uuid,
    pub stage: String,
    pub stage_entered_at: DateTime<Utc>,
    pub stage_count: i32,
    pub feasible: Option<bool>,
    pub serviceability_notes: Option<String>,
    pub serviceability_checked_at: Option<DateTime<Utc>>,
    pub design_version: i32,
    pub design_submitted_at: Option<DateTime<Utc>>,
    pub design_comment_count: i32,
    pub approval_state: String,
    pub approval_id: Option<Uuid>,
    pub approved_design_version: Option<i32>,
    pub design_approved_at: Option<DateTime<Utc>>,
    pub task_count: i32,
    pub tasks_completed: i32,
    pub implementation_completed_at: Option<DateTime<Utc>>,
    pub test_count: i32,
    pub tests_passed: i32,
    pub defect_count: i32,
    pub open_defects: i32,
    pub testing_passed_at: Option<DateTime<Utc>>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub handover_notes: Option<String>,
    pub outcome: Option<String>,
    pub close_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub captured_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for LeadRow {
    const TABLE: &'static str = "leads";
    const KEY: &'static [&'static str] = &["lead_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.lead_id
    }
}

/// One stay of a lead in a stage. `duration` and `duration_seconds` are
/// computed by the table (generated columns).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRow {
    pub lead_id: Uuid,
    pub seq: i32,
    pub tenant_id: String,
    pub stage: String,
    pub entered_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    pub next_stage: Option<String>,
}

impl Row for StageRow {
    const TABLE: &'static str = "lead_stages";
    const KEY: &'static [&'static str] = &["lead_id", "seq"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.lead_id, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesignRow {
    pub lead_id: Uuid,
    pub design_version: i32,
    pub tenant_id: String,
    pub summary: String,
    pub specification: String,
    pub documents: Value,
    pub submitted_by: Uuid,
    pub submitted_at: DateTime<Utc>,
    pub approval_id: Option<Uuid>,
    pub approval_requested_by: Option<Uuid>,
    pub approval_requested_at: Option<DateTime<Utc>>,
    pub decision: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub comment_count: i32,
    pub position: i64,
}

impl Row for DesignRow {
    const TABLE: &'static str = "lead_designs";
    const KEY: &'static [&'static str] = &["lead_id", "design_version"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.lead_id, self.design_version)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesignCommentRow {
    pub lead_id: Uuid,
    pub seq: i32,
    pub tenant_id: String,
    pub design_version: i32,
    pub author_id: Uuid,
    pub body: String,
    pub at: DateTime<Utc>,
    pub position: i64,
}

impl Row for DesignCommentRow {
    const TABLE: &'static str = "lead_design_comments";
    const KEY: &'static [&'static str] = &["lead_id", "seq"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.lead_id, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRow {
    pub lead_id: Uuid,
    pub task_id: Uuid,
    pub tenant_id: String,
    pub title: String,
    pub status: String,
    pub assignee_id: Option<Uuid>,
    pub added_by: Uuid,
    pub added_at: DateTime<Utc>,
    pub assigned_by: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub completed_by: Option<Uuid>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Row for TaskRow {
    const TABLE: &'static str = "lead_tasks";
    const KEY: &'static [&'static str] = &["lead_id", "task_id"];
    type Key = (Uuid, Uuid);
    fn key(&self) -> (Uuid, Uuid) {
        (self.lead_id, self.task_id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationTestRow {
    pub lead_id: Uuid,
    pub seq: i32,
    pub tenant_id: String,
    pub name: String,
    pub result: String,
    pub defect_ids: Vec<Uuid>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for ActivationTestRow {
    const TABLE: &'static str = "lead_activation_tests";
    const KEY: &'static [&'static str] = &["lead_id", "seq"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.lead_id, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DefectRow {
    pub lead_id: Uuid,
    pub defect_id: Uuid,
    pub tenant_id: String,
    pub title: String,
    pub status: String,
    pub raised_by: Uuid,
    pub raised_at: DateTime<Utc>,
    pub resolution: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Row for DefectRow {
    const TABLE: &'static str = "lead_defects";
    const KEY: &'static [&'static str] = &["lead_id", "defect_id"];
    type Key = (Uuid, Uuid);
    fn key(&self) -> (Uuid, Uuid) {
        (self.lead_id, self.defect_id)
    }
}

#[derive(Default)]
struct Batch {
    leads: Rows<LeadRow>,
    stages: Rows<StageRow>,
    designs: Rows<DesignRow>,
    comments: Rows<DesignCommentRow>,
    tasks: Rows<TaskRow>,
    tests: Rows<ActivationTestRow>,
    defects: Rows<DefectRow>,
}

#[async_trait]
impl Projection for Leads {
    fn holds_personal_data(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "leads"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "leads",
            "lead_stages",
            "lead_designs",
            "lead_design_comments",
            "lead_tasks",
            "lead_activation_tests",
            "lead_defects",
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "lead");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        b.leads
            .load(&mut *conn, "t.lead_id = ANY($1)", &ids)
            .await?;
        // Only rows that can still change: the open stage, every design
        // (comments may name an old version), open tasks and open defects.
        b.stages
            .load(
                &mut *conn,
                "t.lead_id = ANY($1) AND t.left_at IS NULL",
                &ids,
            )
            .await?;
        b.designs
            .load(&mut *conn, "t.lead_id = ANY($1)", &ids)
            .await?;
        b.tasks
            .load(
                &mut *conn,
                "t.lead_id = ANY($1) AND t.completed_at IS NULL",
                &ids,
            )
            .await?;
        b.defects
            .load(
                &mut *conn,
                "t.lead_id = ANY($1) AND t.resolved_at IS NULL",
                &ids,
            )
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "lead") {
            apply_one(&mut b, event)?;
        }
        b.leads.flush(&mut *conn).await?;
        b.stages.flush(&mut *conn).await?;
        b.designs.flush(&mut *conn).await?;
        b.comments.flush(&mut *conn).await?;
        b.tasks.flush(&mut *conn).await?;
        b.tests.flush(&mut *conn).await?;
        b.defects.flush(&mut *conn).await?;
        Ok(())
    }
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: LeadEvent = decode_event(event)?;
    let tenant = || event.tenant.clone();
    let position = event.position as i64;
    if let LeadEvent::Captured(e) = &decoded {
        b.leads.put(LeadRow {
            lead_id: id,
            tenant_id: tenant(),
            company: e.company.as_str().to_owned(),
            contact_name: Some(e.contact.name.as_str().to_owned()),
            contact_email: Some(e.contact.email.as_str().to_owned()),
            contact_phone: e.contact.phone.as_ref().map(|p| p.as_str().to_owned()),
            site_address: Some(e.site_address.as_str().to_owned()),
            service: e.service.as_str().to_owned(),
            bandwidth_mbps: i64::from(e.bandwidth_mbps.get()),
            amount_minor: e.estimated_value.amount_minor,
            currency: e.estimated_value.currency.as_str().to_owned(),
            source: e.source.as_str().to_owned(),
            score: None,
            owner_id: None,
            owner_assigned_at: None,
            captured_by: e.by,
            stage: e.stage.as_str().to_owned(),
            stage_entered_at: e.at,
            stage_count: 1,
            feasible: None,
            serviceability_notes: None,
            serviceability_checked_at: None,
            design_version: 0,
            design_submitted_at: None,
            design_comment_count: 0,
            approval_state: "none".into(),
            approval_id: None,
            approved_design_version: None,
            design_approved_at: None,
            task_count: 0,
            tasks_completed: 0,
            implementation_completed_at: None,
            test_count: 0,
            tests_passed: 0,
            defect_count: 0,
            open_defects: 0,
            testing_passed_at: None,
            handed_over_at: None,
            handover_notes: None,
            outcome: None,
            close_reason: None,
            closed_at: None,
            captured_at: e.at,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position,
        });
        b.stages.put(StageRow {
            lead_id: id,
            seq: 1,
            tenant_id: tenant(),
            stage: e.stage.as_str().to_owned(),
            entered_at: e.at,
            left_at: None,
            next_stage: None,
        });
        return Ok(());
    }
    let Some(lead) = b.leads.get_mut(&id) else {
        return Err(ApplyError::poison(event, "no lead.captured before it"));
    };
    lead.updated_at = event.recorded_at;
    lead.version = event.stream_version as i64;
    lead.position = position;
    let latest_design = (id, lead.design_version);
    // The stage the event moves the lead to, and when.
    let mut moved: Option<(Stage, DateTime<Utc>)> = None;
    match decoded {
        LeadEvent::Captured(_) => {}
        LeadEvent::Qualified(e) => {
            lead.score = Some(i16::from(e.score.get()));
            moved = Some((e.stage, e.at));
        }
        LeadEvent::OwnerAssigned(e) => {
            lead.owner_id = Some(e.owner);
            lead.owner_assigned_at = Some(e.at);
        }
        LeadEvent::ServiceabilityChecked(e) => {
            lead.feasible = Some(e.feasible);
            lead.serviceability_notes = e.notes.map(|n| n.as_str().to_owned());
            lead.serviceability_checked_at = Some(e.at);
            moved = Some((e.stage, e.at));
        }
        LeadEvent::DesignSubmitted(e) => {
            let version = i32::try_from(e.version)
                .map_err(|_| ApplyError::poison(event, "design version out of range"))?;
            lead.design_version = version;
            lead.design_submitted_at = Some(e.at);
            lead.approval_state = "none".into();
            lead.approval_id = None;
            let documents: Vec<Value> = e
                .documents
                .iter()
                .map(|d| json!({ "document_id": d.document_id, "name": d.name.as_str() }))
                .collect();
            b.designs.put(DesignRow {
                lead_id: id,
                design_version: version,
                tenant_id: tenant(),
                summary: e.summary.as_str().to_owned(),
                specification: e.specification.as_str().to_owned(),
                documents: Value::Array(documents),
                submitted_by: e.by,
                submitted_at: e.at,
                approval_id: None,
                approval_requested_by: None,
                approval_requested_at: None,
                decision: None,
                decided_at: None,
                decision_reason: None,
                comment_count: 0,
                position,
            });
            moved = Some((e.stage, e.at));
        }
        LeadEvent::DesignCommentAdded(e) => {
            lead.design_comment_count += 1;
            let version = i32::try_from(e.design_version)
                .map_err(|_| ApplyError::poison(event, "design version out of range"))?;
            b.comments.put(DesignCommentRow {
                lead_id: id,
                seq: lead.design_comment_count,
                tenant_id: tenant(),
                design_version: version,
                author_id: e.author,
                body: e.body.as_str().to_owned(),
                at: e.at,
                position,
            });
            if let Some(design) = b.designs.get_mut(&(id, version)) {
                design.comment_count += 1;
            }
        }
        LeadEvent::DesignApprovalRequested(e) => {
            lead.approval_state = "pending".into();
            lead.approval_id = Some(e.approval_id);
            if let Some(design) = b.designs.get_mut(&latest_design) {
                design.approval_id = Some(e.approval_id);
                design.approval_requested_by = Some(e.by);
                design.approval_requested_at = Some(e.at);
            }
            moved = Some((e.stage, e.at));
        }
        LeadEvent::DesignApproved(e) => {
            lead.approval_state = "approved".into();
            lead.approved_design_version = i32::try_from(e.design_version).ok();
            lead.design_approved_at = Some(e.at);
            if let Some(design) = b.designs.get_mut(&latest_design) {
                design.decision = Some("approved".into());
                design.decided_at = Some(e.at);
            }
            moved = Some((e.stage, e.at));
        }
        LeadEvent::DesignRejected(e) => {
            lead.approval_state = "rejected".into();
            if let Some(design) = b.designs.get_mut(&latest_design) {
                design.decision = Some("rejected".into());
                design.decided_at = Some(e.at);
                design.decision_reason = e.reason.map(|r| r.as_str().to_owned());
            }
            moved = Some((e.stage, e.at));
        }
        LeadEvent::ImplementationTaskAdded(e) => {
            lead.task_count += 1;
            b.tasks.put(TaskRow {
                lead_id: id,
                task_id: e.task_id,
                tenant_id: tenant(),
                title: e.title.as_str().to_owned(),
                status: "open".into(),
                assignee_id: None,
                added_by: e.by,
                added_at: e.at,
                assigned_by: None,
                assigned_at: None,
                completed_by: None,
                completed_at: None,
            });
        }
        LeadEvent::ImplementationTaskAssigned(e) => {
            let Some(task) = b.tasks.get_mut(&(id, e.task_id)) else {
                return Err(ApplyError::poison(event, "the task is not an open task"));
            };
            task.status = "assigned".into();
            task.assignee_id = Some(e.assignee);
            task.assigned_by = Some(e.by);
            task.assigned_at = Some(e.at);
        }
        LeadEvent::ImplementationTaskCompleted(e) => {
            let Some(task) = b.tasks.get_mut(&(id, e.task_id)) else {
                return Err(ApplyError::poison(event, "the task is not an open task"));
            };
            task.status = "completed".into();
            task.completed_by = Some(e.by);
            task.completed_at = Some(e.at);
            lead.tasks_completed += 1;
        }
        LeadEvent::ImplementationCompleted(e) => {
            lead.implementation_completed_at = Some(e.at);
            moved = Some((e.stage, e.at));
        }
        LeadEvent::ActivationTestRecorded(e) => {
            lead.test_count += 1;
            let result = label(&e.result);
            if result == "passed" {
                lead.tests_passed += 1;
            }
            b.tests.put(ActivationTestRow {
                lead_id: id,
                seq: lead.test_count,
                tenant_id: tenant(),
                name: e.name.as_str().to_owned(),
                result,
                defect_ids: e.defects,
                recorded_by: e.by,
                recorded_at: e.at,
                position,
            });
        }
        LeadEvent::DefectRaised(e) => {
            lead.defect_count += 1;
            lead.open_defects += 1;
            b.defects.put(DefectRow {
                lead_id: id,
                defect_id: e.defect_id,
                tenant_id: tenant(),
                title: e.title.as_str().to_owned(),
                status: "open".into(),
                raised_by: e.by,
                raised_at: e.at,
                resolution: None,
                resolved_by: None,
                resolved_at: None,
            });
        }
        LeadEvent::DefectResolved(e) => {
            let Some(defect) = b.defects.get_mut(&(id, e.defect_id)) else {
                return Err(ApplyError::poison(
                    event,
                    "the defect is not an open defect",
                ));
            };
            defect.status = "resolved".into();
            defect.resolution = e.resolution.map(|r| r.as_str().to_owned());
            defect.resolved_by = Some(e.by);
            defect.resolved_at = Some(e.at);
            lead.open_defects -= 1;
        }
        LeadEvent::TestingPassed(e) => lead.testing_passed_at = Some(e.at),
        LeadEvent::HandedOverToSupport(e) => {
            lead.handed_over_at = Some(e.at);
            lead.handover_notes = e.notes.map(|n| n.as_str().to_owned());
            moved = Some((e.stage, e.at));
        }
        LeadEvent::Closed(e) => {
            lead.outcome = Some(label(&e.outcome));
            lead.close_reason = e.reason.map(|r| r.as_str().to_owned());
            lead.closed_at = Some(e.at);
            if e.pending_approval.is_some() && lead.approval_state == "pending" {
                lead.approval_state = "cancelled".into();
                if let Some(design) = b.designs.get_mut(&latest_design) {
                    design.decision = Some("cancelled".into());
                    design.decided_at = Some(e.at);
                }
            }
            moved = Some((e.stage, e.at));
        }
    }
    if let Some((stage, at)) = moved {
        let stage = stage.as_str();
        if lead.stage != stage {
            if let Some(open) = b.stages.get_mut(&(id, lead.stage_count)) {
                open.left_at = Some(at);
                open.next_stage = Some(stage.to_owned());
            }
            lead.stage = stage.to_owned();
            lead.stage_entered_at = at;
            lead.stage_count += 1;
            b.stages.put(StageRow {
                lead_id: id,
                seq: lead.stage_count,
                tenant_id: tenant(),
                stage: stage.to_owned(),
                entered_at: at,
                left_at: None,
                next_stage: None,
            });
        }
    }
    Ok(())
}
