//! `reporting.lead_facts` and `reporting.lead_daily` / `_monthly`: the lead funnel.
//!
//! A stage move (an event that carries a stage other than the lead's
//! current one) counts as exited for the stage left, with the time spent
//! in it and how it was left (advanced to a later stage, returned to an
//! earlier one, closed won, lost or cancelled), and as entered for the
//! stage entered; both in the group of the lead's owner at that moment and
//! in the lead's currency. Repeating a stage (a re-qualification, a new
//! design version) is not a move.

use async_trait::async_trait;
use chronicle_domain::lead::{LeadEvent, Outcome, Stage};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{add_fields, add_sketch, day_of, millis, one_duration, Deltas, Rollup, ALL};
use crate::read::{decode_event, entity_id, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The projection of the lead funnel.
pub struct LeadReports;

/// The `value` of the owner dimension for a lead without an owner.
pub const NO_OWNER: &str = "none";

/// One row of `reporting.lead_facts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadFact {
    pub lead_id: Uuid,
    pub tenant_id: String,
    pub owner_id: Option<Uuid>,
    pub currency: String,
    pub value_minor: i64,
    pub stage: String,
    pub stage_entered_at: DateTime<Utc>,
    pub position: i64,
}

impl Row for LeadFact {
    const TABLE: &'static str = "lead_facts";
    const KEY: &'static [&'static str] = &["lead_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.lead_id
    }
}

/// One row of `reporting.lead_daily` / `_monthly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadRollup {
    pub tenant_id: String,
    pub dim: String,
    pub period: NaiveDate,
    pub value: String,
    pub currency: String,
    pub stage: String,
    pub entered: i64,
    pub exited: i64,
    pub advanced: i64,
    pub returned: i64,
    pub won: i64,
    pub lost: i64,
    pub cancelled: i64,
    pub won_value_minor: i64,
    pub lost_value_minor: i64,
    pub stay_sum_ms: i64,
    pub stay_keys: Vec<i32>,
    pub stay_counts: Vec<i64>,
    pub in_stage_delta: i64,
}

impl Row for LeadRollup {
    const TABLE: &'static str = "lead_daily";
    const KEY: &'static [&'static str] =
        &["tenant_id", "dim", "period", "value", "currency", "stage"];
    type Key = (String, String, NaiveDate, String, String, String);
    fn key(&self) -> Self::Key {
        (
            self.tenant_id.clone(),
            self.dim.clone(),
            self.period,
            self.value.clone(),
            self.currency.clone(),
            self.stage.clone(),
        )
    }
}

impl LeadRollup {
    fn new(
        tenant: &str,
        day: NaiveDate,
        dim: &str,
        value: &str,
        currency: &str,
        stage: &str,
    ) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            dim: dim.to_owned(),
            period: day,
            value: value.to_owned(),
            currency: currency.to_owned(),
            stage: stage.to_owned(),
            entered: 0,
            exited: 0,
            advanced: 0,
            returned: 0,
            won: 0,
            lost: 0,
            cancelled: 0,
            won_value_minor: 0,
            lost_value_minor: 0,
            stay_sum_ms: 0,
            stay_keys: Vec::new(),
            stay_counts: Vec::new(),
            in_stage_delta: 0,
        }
    }
}

impl Rollup for LeadRollup {
    const MONTHLY: &'static str = "lead_monthly";

    fn merge(&mut self, o: &Self) {
        add_fields!(
            self,
            o,
            entered,
            exited,
            advanced,
            returned,
            won,
            lost,
            cancelled,
            won_value_minor,
            lost_value_minor,
            stay_sum_ms,
            in_stage_delta,
        );
        add_sketch(
            &mut self.stay_keys,
            &mut self.stay_counts,
            &o.stay_keys,
            &o.stay_counts,
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
    facts: Rows<LeadFact>,
    rollups: Deltas<LeadRollup>,
}

impl Batch {
    /// Applies `change` to the rows of `day` of the lead's `stage`, for
    /// everything and for the lead's owner.
    fn bump(
        &mut self,
        f: &LeadFact,
        day: NaiveDate,
        stage: &str,
        change: impl Fn(&mut LeadRollup),
    ) {
        let owner = owner_value(f.owner_id);
        for (dim, value) in [(ALL, ""), ("owner", owner.as_str())] {
            let mut row = LeadRollup::new(&f.tenant_id, day, dim, value, &f.currency, stage);
            change(&mut row);
            self.rollups.add(row, day);
        }
    }
}

/// The owner dimension's value.
pub fn owner_value(owner: Option<Uuid>) -> String {
    owner.map_or_else(|| NO_OWNER.to_owned(), |o| o.to_string())
}

#[async_trait]
impl Projection for LeadReports {
    fn name(&self) -> &'static str {
        "reporting_leads"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["lead_facts", "lead_daily", "lead_monthly"]
    }

    fn schema(&self) -> &'static str {
        super::SCHEMA
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
        b.facts
            .load(&mut *conn, "t.lead_id = ANY($1)", &ids)
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "lead") {
            apply_one(&mut b, event)?;
        }
        b.facts.flush(&mut *conn).await?;
        b.rollups.flush(&mut *conn).await?;
        Ok(())
    }
}

fn stage_of(name: &str) -> Option<Stage> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: LeadEvent = decode_event(event)?;
    if let LeadEvent::Captured(e) = &decoded {
        let fact = LeadFact {
            lead_id: id,
            tenant_id: event.tenant.as_str().to_owned(),
            owner_id: None,
            currency: e.estimated_value.currency.as_str().to_owned(),
            value_minor: e.estimated_value.amount_minor,
            stage: e.stage.as_str().to_owned(),
            stage_entered_at: e.at,
            position: event.position as i64,
        };
        b.bump(&fact, day_of(e.at), e.stage.as_str(), |r| {
            r.entered += 1;
            r.in_stage_delta += 1;
        });
        b.facts.put(fact);
        return Ok(());
    }
    let Some(mut f) = b.facts.get(&id).cloned() else {
        return Err(ApplyError::poison(event, "no lead.captured before it"));
    };
    f.position = event.position as i64;
    let moved: Option<(Stage, DateTime<Utc>, Option<Outcome>)> = match decoded {
        LeadEvent::Captured(_) => None,
        LeadEvent::OwnerAssigned(e) => {
            // The lead moves between owners' groups of its stage's count.
            let new = Some(e.owner);
            if new != f.owner_id && f.stage != Stage::Closed.as_str() {
                let day = day_of(e.at);
                let stage = f.stage.clone();
                let mut moved = f.clone();
                b.bump_owner(&f, day, &stage, -1);
                moved.owner_id = new;
                b.bump_owner(&moved, day, &stage, 1);
            }
            f.owner_id = new;
            None
        }
        LeadEvent::Qualified(e) => Some((e.stage, e.at, None)),
        LeadEvent::ServiceabilityChecked(e) => Some((e.stage, e.at, None)),
        LeadEvent::DesignSubmitted(e) => Some((e.stage, e.at, None)),
        LeadEvent::DesignApprovalRequested(e) => Some((e.stage, e.at, None)),
        LeadEvent::DesignApproved(e) => Some((e.stage, e.at, None)),
        LeadEvent::DesignRejected(e) => Some((e.stage, e.at, None)),
        LeadEvent::ImplementationCompleted(e) => Some((e.stage, e.at, None)),
        LeadEvent::HandedOverToSupport(e) => Some((e.stage, e.at, None)),
        LeadEvent::Closed(e) => Some((e.stage, e.at, Some(e.outcome))),
        LeadEvent::DesignCommentAdded(_)
        | LeadEvent::ImplementationTaskAdded(_)
        | LeadEvent::ImplementationTaskAssigned(_)
        | LeadEvent::ImplementationTaskCompleted(_)
        | LeadEvent::ActivationTestRecorded(_)
        | LeadEvent::DefectRaised(_)
        | LeadEvent::DefectResolved(_)
        | LeadEvent::TestingPassed(_) => None,
    };
    if let Some((to, at, outcome)) = moved {
        if to.as_str() != f.stage {
            let Some(from) = stage_of(&f.stage) else {
                return Err(ApplyError::poison(event, "the lead's stage is unknown"));
            };
            let day = day_of(at);
            let ms = millis(f.stage_entered_at, at);
            let (keys, counts) = one_duration(ms, 1);
            let value = f.value_minor;
            b.bump(&f, day, from.as_str(), |r| {
                r.exited += 1;
                r.in_stage_delta -= 1;
                r.stay_sum_ms += ms;
                add_sketch(&mut r.stay_keys, &mut r.stay_counts, &keys, &counts);
                match outcome {
                    Some(Outcome::Won) => {
                        r.won += 1;
                        r.won_value_minor += value;
                    }
                    Some(Outcome::Lost) => {
                        r.lost += 1;
                        r.lost_value_minor += value;
                    }
                    Some(Outcome::Cancelled) => r.cancelled += 1,
                    None if to > from => r.advanced += 1,
                    None => r.returned += 1,
                }
            });
            b.bump(&f, day, to.as_str(), |r| {
                r.entered += 1;
                if to != Stage::Closed {
                    r.in_stage_delta += 1;
                }
            });
            f.stage = to.as_str().to_owned();
            f.stage_entered_at = at;
        }
    }
    b.facts.put(f);
    Ok(())
}

impl Batch {
    /// Moves one lead in or out (`n`) of the owner group's stage count.
    fn bump_owner(&mut self, f: &LeadFact, day: NaiveDate, stage: &str, n: i64) {
        let owner = owner_value(f.owner_id);
        let mut row = LeadRollup::new(&f.tenant_id, day, "owner", &owner, &f.currency, stage);
        row.in_stage_delta += n;
        self.rollups.add(row, day);
    }
}
