//! `read.approvals`, `read.approval_levels`, `read.approval_decisions` and
//! `read.approval_inbox`.
//!
//! The inbox holds one row per approver of the level deciding now: the
//! level's listed users (`user`, the user id) and roles (`role`, the role
//! name). A user's row goes when that user decides; every row of a level
//! goes when the level completes (the next level's rows come in) or the
//! approval ends. A role's row stays until then: whether one holder of the
//! role already decided is for the query to check against
//! `read.approval_decisions`.

use async_trait::async_trait;
use chronicle_domain::approval::{ApprovalEvent, Decision, SubjectKind};
use chronicle_domain::policy::{Approver, LevelSpec};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{decode_event, entity_id, label, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The approvals projection.
pub struct Approvals;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRow {
    pub approval_id: Uuid,
    pub tenant_id: String,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub requested_by: Uuid,
    pub status: String,
    pub current_level: i32,
    pub level_count: i32,
    pub value_minor: Option<i64>,
    pub value_currency: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub current_due_at: Option<DateTime<Utc>>,
    pub escalation_count: i32,
    pub decided_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub outcome_by: Option<Uuid>,
    pub outcome_comment: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl Row for ApprovalRow {
    const TABLE: &'static str = "approvals";
    const KEY: &'static [&'static str] = &["approval_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.approval_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelRow {
    pub approval_id: Uuid,
    pub level_no: i32,
    pub tenant_id: String,
    pub required: i32,
    pub approver_users: Vec<Uuid>,
    pub approver_roles: Vec<String>,
    pub status: String,
    pub approvals: i32,
    pub decisions: i32,
    pub due_secs: Option<i64>,
    pub due_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
}

impl Row for LevelRow {
    const TABLE: &'static str = "approval_levels";
    const KEY: &'static [&'static str] = &["approval_id", "level_no"];
    type Key = (Uuid, i32);
    fn key(&self) -> (Uuid, i32) {
        (self.approval_id, self.level_no)
    }
}

impl LevelRow {
    /// Opens the level at `at`: it takes decisions from now, until `due_at`.
    fn open(&mut self, at: DateTime<Utc>) {
        self.status = "open".into();
        self.started_at = Some(at);
        self.due_at = self
            .due_secs
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|d| at.checked_add_signed(d));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRow {
    pub approval_id: Uuid,
    pub level_no: i32,
    pub approver_id: Uuid,
    pub tenant_id: String,
    pub decision: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    pub position: i64,
}

impl Row for DecisionRow {
    const TABLE: &'static str = "approval_decisions";
    const KEY: &'static [&'static str] = &["approval_id", "level_no", "approver_id"];
    type Key = (Uuid, i32, Uuid);
    fn key(&self) -> (Uuid, i32, Uuid) {
        (self.approval_id, self.level_no, self.approver_id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxRow {
    pub approval_id: Uuid,
    pub level_no: i32,
    pub approver_kind: String,
    pub approver: String,
    pub tenant_id: String,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub requested_by: Uuid,
    pub since: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
}

impl Row for InboxRow {
    const TABLE: &'static str = "approval_inbox";
    const KEY: &'static [&'static str] = &["approval_id", "level_no", "approver_kind", "approver"];
    type Key = (Uuid, i32, String, String);
    fn key(&self) -> Self::Key {
        (
            self.approval_id,
            self.level_no,
            self.approver_kind.clone(),
            self.approver.clone(),
        )
    }
}

#[derive(Default)]
struct Batch {
    approvals: Rows<ApprovalRow>,
    levels: Rows<LevelRow>,
    decisions: Rows<DecisionRow>,
    inbox: Rows<InboxRow>,
}

#[async_trait]
impl Projection for Approvals {
    fn name(&self) -> &'static str {
        "approvals"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "approvals",
            "approval_levels",
            "approval_decisions",
            "approval_inbox",
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "approval");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        let filter = "t.approval_id = ANY($1)";
        b.approvals.load(&mut *conn, filter, &ids).await?;
        b.levels.load(&mut *conn, filter, &ids).await?;
        b.inbox.load(&mut *conn, filter, &ids).await?;
        for event in events.iter().filter(|e| e.stream_type == "approval") {
            apply_one(&mut b, event)?;
        }
        b.approvals.flush(&mut *conn).await?;
        b.levels.flush(&mut *conn).await?;
        b.decisions.flush(&mut *conn).await?;
        b.inbox.flush(&mut *conn).await?;
        Ok(())
    }
}

fn subject_kind(kind: SubjectKind) -> String {
    label(&kind)
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: ApprovalEvent = decode_event(event)?;
    if let ApprovalEvent::Requested(e) = &decoded {
        let level_count = i32::try_from(e.levels.len())
            .map_err(|_| ApplyError::poison(event, "too many levels"))?;
        let approval = ApprovalRow {
            approval_id: id,
            tenant_id: event.tenant.clone(),
            subject_kind: subject_kind(e.subject.kind),
            subject_id: e.subject.id,
            requested_by: e.requested_by,
            status: e.status.as_str().to_owned(),
            current_level: 0,
            level_count,
            value_minor: e.value.map(|m| m.amount_minor),
            value_currency: e.value.map(|m| m.currency.as_str().to_owned()),
            requested_at: e.at,
            current_due_at: None,
            escalation_count: 0,
            decided_at: None,
            outcome: None,
            outcome_by: None,
            outcome_comment: None,
            updated_at: event.recorded_at,
            version: event.stream_version as i64,
            position: event.position as i64,
        };
        for (index, spec) in (0..).zip(&e.levels) {
            b.levels.put(level_row(&approval, index, spec));
        }
        let mut approval = approval;
        open_level(b, &mut approval, 0, e.at);
        b.approvals.put(approval);
        return Ok(());
    }
    let Some(mut a) = b.approvals.get(&id).cloned() else {
        return Err(ApplyError::poison(event, "no approval.requested before it"));
    };
    a.updated_at = event.recorded_at;
    a.version = event.stream_version as i64;
    a.position = event.position as i64;
    match decoded {
        ApprovalEvent::Requested(_) => {}
        ApprovalEvent::DecisionRecorded(e) => {
            let level = i32::from(e.level);
            if let Some(l) = b.levels.get_mut(&(id, level)) {
                l.decisions += 1;
                if e.decision == Decision::Approve {
                    l.approvals += 1;
                }
            }
            b.inbox
                .remove(&(id, level, "user".into(), e.approver.to_string()))?;
            b.decisions.put(DecisionRow {
                approval_id: id,
                level_no: level,
                approver_id: e.approver,
                tenant_id: event.tenant.clone(),
                decision: label(&e.decision),
                comment: e.comment.map(|c| c.as_str().to_owned()),
                at: e.at,
                position: event.position as i64,
            });
        }
        ApprovalEvent::LevelCompleted(e) => {
            let level = i32::from(e.level);
            if let Some(l) = b.levels.get_mut(&(id, level)) {
                l.status = "completed".into();
                l.completed_at = Some(e.at);
            }
            clear_inbox(b, id)?;
            a.current_due_at = None;
            if let Some(next) = e.next_level {
                open_level(b, &mut a, i32::from(next), e.at);
            }
        }
        ApprovalEvent::Granted(e) => end(b, &mut a, "granted", None, None, e.at)?,
        ApprovalEvent::Rejected(e) => {
            let comment = e.comment.map(|c| c.as_str().to_owned());
            end(b, &mut a, "rejected", Some(e.by), comment, e.at)?;
        }
        ApprovalEvent::ChangesRequested(e) => {
            let comment = e.comment.map(|c| c.as_str().to_owned());
            end(b, &mut a, "changes_requested", Some(e.by), comment, e.at)?;
        }
        ApprovalEvent::Escalated(e) => {
            a.escalation_count += 1;
            if let Some(l) = b.levels.get_mut(&(id, i32::from(e.level))) {
                l.escalated_at.get_or_insert(e.at);
            }
        }
        ApprovalEvent::Cancelled(e) => {
            let reason = e.reason.map(|r| r.as_str().to_owned());
            end(b, &mut a, "cancelled", Some(e.by), reason, e.at)?;
        }
    }
    b.approvals.put(a);
    Ok(())
}

fn level_row(approval: &ApprovalRow, index: i32, spec: &LevelSpec) -> LevelRow {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    for approver in &spec.approvers {
        match approver {
            Approver::User(user) => users.push(*user),
            Approver::Role(role) => roles.push(role.clone()),
        }
    }
    LevelRow {
        approval_id: approval.approval_id,
        level_no: index,
        tenant_id: approval.tenant_id.clone(),
        required: i32::from(spec.required),
        approver_users: users,
        approver_roles: roles,
        status: "waiting".into(),
        approvals: 0,
        decisions: 0,
        due_secs: spec.due_secs.and_then(|s| i64::try_from(s).ok()),
        due_at: None,
        started_at: None,
        completed_at: None,
        escalated_at: None,
    }
}

/// Makes `level` the approval's current one and fills the inbox with its
/// approvers.
fn open_level(b: &mut Batch, a: &mut ApprovalRow, level: i32, at: DateTime<Utc>) {
    a.current_level = level;
    let Some(l) = b.levels.get_mut(&(a.approval_id, level)) else {
        return;
    };
    l.open(at);
    a.current_due_at = l.due_at;
    let l = l.clone();
    let approvers = l
        .approver_users
        .iter()
        .map(|u| ("user", u.to_string()))
        .chain(l.approver_roles.iter().map(|r| ("role", r.clone())));
    for (kind, approver) in approvers {
        b.inbox.put(InboxRow {
            approval_id: a.approval_id,
            level_no: level,
            approver_kind: kind.into(),
            approver,
            tenant_id: a.tenant_id.clone(),
            subject_kind: a.subject_kind.clone(),
            subject_id: a.subject_id,
            requested_by: a.requested_by,
            since: at,
            due_at: l.due_at,
        });
    }
}

/// Empties the approval's inbox rows.
fn clear_inbox(b: &mut Batch, id: Uuid) -> Result<(), sqlx::Error> {
    let keys: Vec<_> = b
        .inbox
        .values()
        .filter(|r| r.approval_id == id)
        .map(Row::key)
        .collect();
    for key in keys {
        b.inbox.remove(&key)?;
    }
    Ok(())
}

/// The approval ended (`outcome`): the open level stops, the later ones
/// never open, and nobody is asked any more.
fn end(
    b: &mut Batch,
    a: &mut ApprovalRow,
    outcome: &str,
    by: Option<Uuid>,
    comment: Option<String>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    a.status = outcome.into();
    a.outcome = Some(outcome.into());
    a.outcome_by = by;
    a.outcome_comment = comment;
    a.decided_at = Some(at);
    a.current_due_at = None;
    for level in 0..a.level_count {
        if let Some(l) = b.levels.get_mut(&(a.approval_id, level)) {
            match l.status.as_str() {
                "open" => l.status = "stopped".into(),
                "waiting" => l.status = "skipped".into(),
                _ => {}
            }
        }
    }
    clear_inbox(b, a.approval_id)
}
