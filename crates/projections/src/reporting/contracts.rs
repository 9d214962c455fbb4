//! `reporting.contract_facts` and `reporting.contract_daily` / `_monthly`: contract
//! finance per currency.
//!
//! Flows: signed (with the value at signing), renewed, terminated and
//! expired, with the contracts' values. Stocks, as of the end of a day D:
//! the active contracts (activated on or before D, not terminated or
//! expired on or before D) and, among them, those whose term ends within
//! the next 30, 60 or 90 days (`D < end ≤ D + N`: a renewal or an expiry
//! is due). A term runs from the activation (or a renewal) until the next
//! renewal, termination or expiry, with one end date; it counts as due
//! `N` days on the days `max(start, end − N) ≤ D < min(close, end)`, which
//! the `due_N_delta` columns record as +1 and -1 at the two ends.

use async_trait::async_trait;
use chronicle_domain::contract::{ContractEvent, ContractStatus};
use chronicle_store::RecordedEvent;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{add_fields, day_of, Deltas, Rollup, ALL};
use crate::read::{decode_event, entity_id, stream_ids};
use crate::rows::{Row, Rows};
use crate::{ApplyError, Projection};

/// The projection of contract reports.
pub struct ContractReports;

/// The horizons of the "due within N days" stocks.
pub const HORIZONS: [i64; 3] = [30, 60, 90];

/// One row of `reporting.contract_facts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContractFact {
    pub contract_id: Uuid,
    pub tenant_id: String,
    pub owner_id: Uuid,
    pub status: String,
    pub currency: String,
    pub value_minor: i64,
    pub end_date: NaiveDate,
    pub signed_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub term_started_on: Option<NaiveDate>,
    pub ended_at: Option<DateTime<Utc>>,
    pub position: i64,
}

impl Row for ContractFact {
    const TABLE: &'static str = "contract_facts";
    const KEY: &'static [&'static str] = &["contract_id"];
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.contract_id
    }
}

/// One row of `reporting.contract_daily` / `_monthly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContractRollup {
    pub tenant_id: String,
    pub dim: String,
    pub period: NaiveDate,
    pub value: String,
    pub currency: String,
    pub signed: i64,
    pub signed_value_minor: i64,
    pub renewed: i64,
    pub renewed_value_minor: i64,
    pub terminated: i64,
    pub terminated_value_minor: i64,
    pub expired: i64,
    pub expired_value_minor: i64,
    pub active_delta: i64,
    pub active_value_delta: i64,
    pub due_30_delta: i64,
    pub due_30_value_delta: i64,
    pub due_60_delta: i64,
    pub due_60_value_delta: i64,
    pub due_90_delta: i64,
    pub due_90_value_delta: i64,
}

impl Row for ContractRollup {
    const TABLE: &'static str = "contract_daily";
    const KEY: &'static [&'static str] = &["tenant_id", "dim", "period", "value", "currency"];
    type Key = (String, String, NaiveDate, String, String);
    fn key(&self) -> Self::Key {
        (
            self.tenant_id.clone(),
            self.dim.clone(),
            self.period,
            self.value.clone(),
            self.currency.clone(),
        )
    }
}

impl ContractRollup {
    fn new(tenant: &str, day: NaiveDate, dim: &str, value: &str, currency: &str) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            dim: dim.to_owned(),
            period: day,
            value: value.to_owned(),
            currency: currency.to_owned(),
            signed: 0,
            signed_value_minor: 0,
            renewed: 0,
            renewed_value_minor: 0,
            terminated: 0,
            terminated_value_minor: 0,
            expired: 0,
            expired_value_minor: 0,
            active_delta: 0,
            active_value_delta: 0,
            due_30_delta: 0,
            due_30_value_delta: 0,
            due_60_delta: 0,
            due_60_value_delta: 0,
            due_90_delta: 0,
            due_90_value_delta: 0,
        }
    }

    /// Adds `n` contracts worth `value` to the due stock of `horizon` days.
    fn due(&mut self, horizon: i64, n: i64, value: i64) {
        let (count, sum) = match horizon {
            30 => (&mut self.due_30_delta, &mut self.due_30_value_delta),
            60 => (&mut self.due_60_delta, &mut self.due_60_value_delta),
            _ => (&mut self.due_90_delta, &mut self.due_90_value_delta),
        };
        *count += n;
        *sum += n * value;
    }
}

impl Rollup for ContractRollup {
    const MONTHLY: &'static str = "contract_monthly";

    fn merge(&mut self, o: &Self) {
        add_fields!(
            self,
            o,
            signed,
            signed_value_minor,
            renewed,
            renewed_value_minor,
            terminated,
            terminated_value_minor,
            expired,
            expired_value_minor,
            active_delta,
            active_value_delta,
            due_30_delta,
            due_30_value_delta,
            due_60_delta,
            due_60_value_delta,
            due_90_delta,
            due_90_value_delta,
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
    facts: Rows<ContractFact>,
    rollups: Deltas<ContractRollup>,
}

impl Batch {
    /// Applies `change` to the rows of `day`, for everything and for the
    /// contract's owner, in the contract's currency.
    fn bump(&mut self, f: &ContractFact, day: NaiveDate, change: impl Fn(&mut ContractRollup)) {
        let owner = f.owner_id.to_string();
        for (dim, value) in [(ALL, ""), ("owner", owner.as_str())] {
            let mut row = ContractRollup::new(&f.tenant_id, day, dim, value, &f.currency);
            change(&mut row);
            self.rollups.add(row, day);
        }
    }

    /// Counts (`n` = 1) or takes back (`n` = -1) a term's days of being
    /// due within each horizon: `[max(start, end - N), min(close, end))`.
    fn term(&mut self, f: &ContractFact, start: NaiveDate, close: Option<NaiveDate>, n: i64) {
        let end = f.end_date;
        let until = close.map_or(end, |c| c.min(end));
        for horizon in HORIZONS {
            let from = end
                .checked_sub_signed(TimeDelta::days(horizon))
                .map_or(start, |d| d.max(start));
            if from < until {
                let value = f.value_minor;
                self.bump(f, from, |r| r.due(horizon, n, value));
                self.bump(f, until, |r| r.due(horizon, -n, value));
            }
        }
    }

    /// Ends the current term on `day`.
    fn close_term(&mut self, f: &ContractFact, day: NaiveDate) {
        if let Some(start) = f.term_started_on {
            self.term(f, start, None, -1);
            self.term(f, start, Some(day), 1);
        }
    }
}

#[async_trait]
impl Projection for ContractReports {
    fn name(&self) -> &'static str {
        "reporting_contracts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["contract_facts", "contract_daily", "contract_monthly"]
    }

    fn schema(&self) -> &'static str {
        super::SCHEMA
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let ids = stream_ids(events, "contract");
        if ids.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        b.facts
            .load(&mut *conn, "t.contract_id = ANY($1)", &ids)
            .await?;
        for event in events.iter().filter(|e| e.stream_type == "contract") {
            apply_one(&mut b, event)?;
        }
        b.facts.flush(&mut *conn).await?;
        b.rollups.flush(&mut *conn).await?;
        Ok(())
    }
}

fn apply_one(b: &mut Batch, event: &RecordedEvent) -> Result<(), ApplyError> {
    let id = entity_id(event)?;
    let decoded: ContractEvent = decode_event(event)?;
    if let ContractEvent::Drafted(e) = &decoded {
        b.facts.put(ContractFact {
            contract_id: id,
            tenant_id: event.tenant.as_str().to_owned(),
            owner_id: e.owner,
            status: ContractStatus::Draft.as_str().to_owned(),
            currency: e.value.currency.as_str().to_owned(),
            value_minor: e.value.amount_minor,
            end_date: e.end_date,
            signed_at: None,
            activated_at: None,
            term_started_on: None,
            ended_at: None,
            position: event.position as i64,
        });
        return Ok(());
    }
    let Some(mut f) = b.facts.get(&id).cloned() else {
        return Err(ApplyError::poison(event, "no contract.drafted before it"));
    };
    f.position = event.position as i64;
    let value = f.value_minor;
    match decoded {
        ContractEvent::Drafted(_)
        | ContractEvent::Shared(_)
        | ContractEvent::Unshared(_)
        | ContractEvent::RenewalDue(_) => {}
        ContractEvent::Amended(e) => {
            f.status = ContractStatus::Draft.as_str().to_owned();
            if let Some(terms) = e.terms {
                f.currency = terms.value.currency.as_str().to_owned();
                f.value_minor = terms.value.amount_minor;
                f.end_date = terms.end_date;
            }
        }
        ContractEvent::SubmittedForApproval(_) => {
            f.status = ContractStatus::PendingApproval.as_str().to_owned();
        }
        ContractEvent::Approved(_) => f.status = ContractStatus::Approved.as_str().to_owned(),
        ContractEvent::Rejected(_) => f.status = ContractStatus::Rejected.as_str().to_owned(),
        ContractEvent::Signed(e) => {
            f.status = ContractStatus::Signed.as_str().to_owned();
            f.signed_at = Some(e.at);
            b.bump(&f, day_of(e.at), |r| {
                r.signed += 1;
                r.signed_value_minor += value;
            });
        }
        ContractEvent::Activated(e) => {
            let day = day_of(e.at);
            f.status = ContractStatus::Active.as_str().to_owned();
            f.activated_at = Some(e.at);
            f.term_started_on = Some(day);
            b.bump(&f, day, |r| {
                r.active_delta += 1;
                r.active_value_delta += value;
            });
            b.term(&f, day, None, 1);
        }
        ContractEvent::Renewed(e) => {
            let day = day_of(e.at);
            b.bump(&f, day, |r| {
                r.renewed += 1;
                r.renewed_value_minor += value;
            });
            b.close_term(&f, day);
            f.end_date = e.new_end_date;
            f.term_started_on = Some(day);
            b.term(&f, day, None, 1);
        }
        ContractEvent::Terminated(e) => {
            let day = day_of(e.at);
            f.status = ContractStatus::Terminated.as_str().to_owned();
            f.ended_at = Some(e.at);
            b.bump(&f, day, |r| {
                r.terminated += 1;
                r.terminated_value_minor += value;
                r.active_delta -= 1;
                r.active_value_delta -= value;
            });
            b.close_term(&f, day);
            f.term_started_on = None;
        }
        ContractEvent::Expired(e) => {
            let day = day_of(e.at);
            f.status = ContractStatus::Expired.as_str().to_owned();
            f.ended_at = Some(e.at);
            b.bump(&f, day, |r| {
                r.expired += 1;
                r.expired_value_minor += value;
                r.active_delta -= 1;
                r.active_value_delta -= value;
            });
            b.close_term(&f, day);
            f.term_started_on = None;
        }
    }
    b.facts.put(f);
    Ok(())
}
