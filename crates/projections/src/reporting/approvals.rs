//! `reporting.approval_facts` and `reporting.approval_daily` / `_monthly`: approval
//! cycle times, outcomes and overdue levels.
//!
//! Level -1 of the rollups is the approval as a whole: requested, then
//! granted, rejected, changes requested or cancelled; its cycle time runs
//! from the request to the outcome. Levels 0, 1, ... open when the request
//! is made or the previous level completes, and are decided by completing
//! (approved), a rejection or a request for changes; a cancellation closes
//! the open level untimed. A level with a deadline is overdue from the day
//! its deadline passes until the day it is closed: `overdue_delta` is +1
//! on the deadline's day and -1 on the closing day (never before the
//! deadline's: closed in time, the two cancel out).

use async_trait::async_trait;
use chronicle_domain::approval::ApprovalEvent;
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{add_fields, add_sketch, day_of, millis, one_duration, Deltas, Rollup, ALL};
use crate::read::{decode_event, entity_id, label, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The projection of approval reports.
pub struct ApprovalReports;

/// The `level` of rollup rows about the approval as a whole.
pub const WHOLE: i16 = -1;

/// One row of `reporting.approval_facts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalFact {
    pub approval_id: Uuid,
    pub tenant_id: String,
    pub subject_kind: String,
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub level: i16,
    pub level_opened_at: DateTime<Utc>,
    pub level_due_at: Option<DateTime<Utc>>,
    pub due_secs: Vec<Option<i64>>,
    pub position: i64,
}

impl Row for ApprovalFact {
    const TABLE: &'static str = "approval_facts";
    const KEY: &'static [&'static str] = &["approval_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.approval_id
    }
}

/// One row of `reporting.approval_daily` / `_monthly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRollup {
    pub tenant_id: String,
    pub dim: String,
    pub period: NaiveDate,
    pub value: String,
    pub level: i16,
    pub started: i64,
    pub approved: i64,
    pub rejected: i64,
    pub changes_requested: i64,
    pub cancelled: i64,
    pub escalated: i64,
    pub cycle_sum_ms: i64,
    pub cycle_keys: Vec<i32>,
    pub cycle_counts: Vec<i64>,
    pub overdue_delta: i64,
}

impl Row for ApprovalRollup {
    const TABLE: &'static str = "approval_daily";
    const KEY: &'static [&'static str] = &["tenant_id", "dim", "period", "value", "level"];
    type Key = (String, String, NaiveDate, String, i16);
    fn key(&self) -> Self::Key {
        (
            self.tenant_id.clone(),
            self.dim.clone(),
            self.period,
            self.value.clone(),
            self.level,
        )
    }
}

impl ApprovalRollup {
    fn new(tenant: &str, day: NaiveDate, dim: &str, value: &str, level: i16) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            dim: dim.to_owned(),
            period: day,
            value: value.to_owned(),
            level,
            started: 0,
            approved: 0,
            rejected: 0,
            changes_requested: 0,
            cancelled: 0,
            escalated: 0,
            cycle_sum_ms: 0,
            cycle_keys: Vec::new(),
            cycle_counts: Vec::new(),
            overdue_delta: 0,
        }
    }

    /// Times one decided cycle of `ms`.
    fn cycle(&mut self, ms: i64) {
        let (keys, counts) = one_duration(ms, 1);
        self.cycle_sum_ms += ms;
        add_sketch(&mut self.cycle_keys, &mut self.cycle_counts, &keys, &counts);
    }
}

impl Rollup for ApprovalRollup {
    const MONTHLY: &'static str = "approval_monthly";

    fn merge(&mut self, o: &Self) {
        add_fields!(
            self,
            o,
            started,
            approved,
            rejected,
            changes_requested,
            cancelled,
            escalated,
            cycle_sum_ms,
            overdue_delta,
        );
        add_sketch(
            &mut self.cycle_keys,
            &mut self.cycle_counts,
            &o.cycle_keys,
            &o.cycle_counts,
        );
    }

    fn with_period(&self, period: NaiveDate) -> Self {
        Self {
            period,
            ..self.clone()
        }
    }
}

#[derive(Default)]
struct Batch {
    facts: Rows<ApprovalFact>,
    rollups: Deltas<ApprovalRollup>,
}

impl Batch {
    /// Applies `change` to the rows of `day` and `level`, for everything
    /// and for the approval's subject kind.
    fn bump(
        &mut self,
        f: &ApprovalFact,
        day: NaiveDate,
        level: i16,
        change: impl Fn(&mut ApprovalRollup),
    ) {
        for (dim, value) in [(ALL, ""), ("subject_kind", f.subject_kind.as_str())] {
            let mut row = ApprovalRollup::new(&f.tenant_id, day, dim, value, level);
            change(&mut row);
            self.rollups.add(row, day);
        }
    }

    /// Opens level `level` of `f` at `at`: started, and overdue from its
    /// deadline's day, if it has one.
    fn open_level(&mut self, f: &mut ApprovalFact, level: i16, at: DateTime<Utc>) {
        f.level = level;
        f.level_opened_at = at;
        f.level_due_at = f
            .due_secs
            .get(level as usize)
            .copied()
            .flatten()
            .and_then(TimeDelta::try_seconds)
            .and_then(|d| at.checked_add_signed(d));
        self.bump(f, day_of(at), level, |r| r.started += 1);
        if let Some(due) = f.level_due_at {
            for l in [level, WHOLE] {
                self.bump(f, day_of(due), l, |r| r.overdue_delta += 1);
            }
        }
    }

    /// Closes the open level at `at`: it stops being overdue.
    fn close_level(&mut self, f: &ApprovalFact, at: DateTime<Utc>) {
        if let Some(due) = f.level_due_at {
            let day = day_of(at).max(day_of(due));
            for l in [f.level, WHOLE] {
                self.bump(f, day, l, |r| r.overdue_delta -= 1);
            }
        }
    }
}

#[async_trait]
impl Projection for ApprovalReports {
    fn name(&self) -> &'static str {
        "reporting_approvals"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["approval_facts", "approval_daily", "approval_monthly"]
    }

    fn schema(&self) -> &'static str {
        super::SCHEMA
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
        b.facts
            .load(&mut *conn, "t.approval_id = ANY($1)", &ids)
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "approval") {
            apply_one(&mut b, event)?;
        }
        b.facts.flush(&mut *conn).await?;
        b.rollups.flush(&mut *conn).await?;
        Ok(())
    }
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: ApprovalEvent = decode_event(event)?;
    if let ApprovalEvent::Requested(e) = &decoded {
        let mut fact = ApprovalFact {
            approval_id: id,
            tenant_id: event.tenant.as_str().to_owned(),
            subject_kind: label(&e.subject.kind),
            status: e.status.as_str().to_owned(),
            requested_at: e.at,
            level: 0,
            level_opened_at: e.at,
            level_due_at: None,
            due_secs: e
                .levels
                .iter()
                .map(|l| l.due_secs.and_then(|s| i64::try_from(s).ok()))
                .collect(),
            position: event.position as i64,
        };
        b.bump(&fact, day_of(e.at), WHOLE, |r| r.started += 1);
        b.open_level(&mut fact, 0, e.at);
        b.facts.put(fact);
        return Ok(());
    }
    let Some(mut f) = b.facts.get(&id).cloned() else {
        return Err(ApplyError::poison(event, "no approval.requested before it"));
    };
    f.position = event.position as i64;
    let requested_at = f.requested_at;
    let whole_ms = |at: DateTime<Utc>| millis(requested_at, at);
    match decoded {
        ApprovalEvent::Requested(_) | ApprovalEvent::DecisionRecorded(_) => {}
        ApprovalEvent::LevelCompleted(e) => {
            let level = level_index(e.level, event)?;
            if level != f.level {
                return Err(ApplyError::poison(
                    event,
                    "the level completed is not the open one",
                ));
            }
            let ms = millis(f.level_opened_at, e.at);
            b.bump(&f, day_of(e.at), level, |r| {
                r.approved += 1;
                r.cycle(ms);
            });
            b.close_level(&f, e.at);
            if let Some(next) = e.next_level {
                let next = level_index(next, event)?;
                b.open_level(&mut f, next, e.at);
            }
        }
        ApprovalEvent::Granted(e) => {
            f.status = e.status.as_str().to_owned();
            let ms = whole_ms(e.at);
            b.bump(&f, day_of(e.at), WHOLE, |r| {
                r.approved += 1;
                r.cycle(ms);
            });
        }
        ApprovalEvent::Rejected(e) => {
            f.status = e.status.as_str().to_owned();
            let (level_ms, ms) = (millis(f.level_opened_at, e.at), whole_ms(e.at));
            b.bump(&f, day_of(e.at), f.level, |r| {
                r.rejected += 1;
                r.cycle(level_ms);
            });
            b.bump(&f, day_of(e.at), WHOLE, |r| {
                r.rejected += 1;
                r.cycle(ms);
            });
            b.close_level(&f, e.at);
        }
        ApprovalEvent::ChangesRequested(e) => {
            f.status = e.status.as_str().to_owned();
            let (level_ms, ms) = (millis(f.level_opened_at, e.at), whole_ms(e.at));
            b.bump(&f, day_of(e.at), f.level, |r| {
                r.changes_requested += 1;
                r.cycle(level_ms);
            });
            b.bump(&f, day_of(e.at), WHOLE, |r| {
                r.changes_requested += 1;
                r.cycle(ms);
            });
            b.close_level(&f, e.at);
        }
        ApprovalEvent::Escalated(e) => {
            let level = level_index(e.level, event)?;
            for l in [level, WHOLE] {
                b.bump(&f, day_of(e.at), l, |r| r.escalated += 1);
            }
        }
        ApprovalEvent::Cancelled(e) => {
            f.status = e.status.as_str().to_owned();
            for l in [f.level, WHOLE] {
                b.bump(&f, day_of(e.at), l, |r| r.cancelled += 1);
            }
            b.close_level(&f, e.at);
        }
    }
    b.facts.put(f);
    Ok(())
}

fn level_index(level: u16, event: &RecordedEvent) -> Result<i16, ApplyError> {
    i16::try_from(level).map_err(|_| ApplyError::poison(event, "level out of range"))
}
