//! The reporting projections: aggregates in the `reporting` schema for the
//! report endpoints and for analysts (ADR 0004).
//!
//! Each projection keeps three kinds of table:
//!
//! - `*_facts`: one row per entity (ticket, lead, approval, contract), the
//!   state the handler needs to turn the next event into figures (the
//!   ticket's priority now, when its current assignment started, ...);
//! - `*_daily` and `*_monthly`: additive figures per tenant, period (a day,
//!   or a month's first day) and group; every event counts in its day and
//!   in its month. Flow columns count what happened in the period;
//!   `*_delta` columns change a stock (backlog, active contracts) whose
//!   value at a day's end is the sum of the deltas up to it; `*_keys` /
//!   `*_counts` are duration sketches ([`sketch`]).
//!
//! A batch folds its events into the facts in memory and gathers the
//! rollup deltas it causes ([`Deltas`]); then it loads the rollup rows they
//! touch, adds the deltas and writes them back, one statement per table.
//! Everything commits with the checkpoint, so each event is counted exactly
//! once, whatever the batch boundaries. Days are the UTC dates of the
//! events' business time (`at`). Handlers read only their own tables.

pub mod approvals;
pub mod contracts;
pub mod leads;
pub mod sketch;
pub mod tickets;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;

use crate::rows::{Row, Rows};

/// The schema of the reporting tables.
pub const SCHEMA: &str = "reporting";

/// The dimension every rollup table has: everything, `value` = `''`.
pub const ALL: &str = "all";

/// The UTC day of a business time.
pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Milliseconds from `from` to `to`, 0 when `to` is earlier.
pub fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// A row of a daily rollup table: a key (with its `period`) and additive
/// figures. The same row type is stored per month in [`Rollup::MONTHLY`].
pub trait Rollup: Row + Clone {
    /// The monthly table of the same columns.
    const MONTHLY: &'static str;

    /// Adds the figures of another row of the same key.
    fn merge(&mut self, other: &Self);

    /// The same row for another period (figures kept).
    fn with_period(&self, period: NaiveDate) -> Self;
}

/// A row of [`Rollup::MONTHLY`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Monthly<R>(pub R);

impl<R: Rollup> Row for Monthly<R> {
    const TABLE: &'static str = R::MONTHLY;
    const KEY: &'static [&'static str] = R::KEY;
    type Key = R::Key;
    fn key(&self) -> R::Key {
        self.0.key()
    }
}

/// The deltas a batch causes to one rollup, per day and per month.
pub struct Deltas<R: Rollup> {
    days: HashMap<R::Key, R>,
    months: HashMap<R::Key, Monthly<R>>,
}

impl<R: Rollup> Default for Deltas<R> {
    fn default() -> Self {
        Self {
            days: HashMap::new(),
            months: HashMap::new(),
        }
    }
}

impl<R: Rollup> Deltas<R> {
    /// Adds `delta` (a row of `day`) to its day and to its month.
    pub fn add(&mut self, delta: R, day: NaiveDate) {
        let month = Monthly(delta.with_period(month_of(day)));
        match self.months.get_mut(&month.key()) {
            Some(row) => row.0.merge(&month.0),
            None => {
                self.months.insert(month.key(), month);
            }
        }
        let delta = delta.with_period(day);
        match self.days.get_mut(&delta.key()) {
            Some(row) => row.merge(&delta),
            None => {
                self.days.insert(delta.key(), delta);
            }
        }
    }

    /// Adds the deltas to the stored rows: loads the rows they touch, adds,
    /// writes back (one statement per table).
    pub async fn flush(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        add_to_stored(&mut *conn, self.days, |row, delta| row.merge(delta)).await?;
        add_to_stored(conn, self.months, |row, delta| row.0.merge(&delta.0)).await
    }
}

/// Loads the stored rows of `deltas`' keys, adds each delta with `merge`
/// (or stores it as a new row) and writes them back.
async fn add_to_stored<T: Row>(
    conn: &mut PgConnection,
    deltas: HashMap<T::Key, T>,
    merge: impl Fn(&mut T, &T),
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let keys: Vec<Value> = deltas
        .values()
        .map(|r| serde_json::to_value(r).map_err(|e| sqlx::Error::Encode(Box::new(e))))
        .collect::<Result<_, _>>()?;
    let columns = |prefix: &str| {
        T::KEY
            .iter()
            .map(|c| format!("{prefix}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let filter = format!(
        "({}) IN (SELECT {} FROM jsonb_populate_recordset(NULL::{}, $1) k)",
        columns("t"),
        columns("k"),
        T::TABLE
    );
    let mut stored = Rows::<T>::default();
    stored
        .load(&mut *conn, &filter, sqlx::types::Json(keys))
        .await?;
    for (key, delta) in deltas {
        match stored.get_mut(&key) {
            Some(row) => merge(row, &delta),
            None => stored.put(delta),
        }
    }
    stored.flush(conn).await?;
    Ok(())
}

/// Adds the fields listed after `from` of `from` into `into`.
macro_rules! add_fields {
    ($into:expr, $from:expr, $($field:ident),+ $(,)?) => {
        $( $into.$field += $from.$field; )+
    };
}
pub(crate) use add_fields;

/// Adds the sketch of `(keys, counts)` fields of `from` into `into`.
pub(crate) fn add_sketch(
    into_keys: &mut Vec<i32>,
    into_counts: &mut Vec<i64>,
    keys: &[i32],
    counts: &[i64],
) {
    if keys.is_empty() {
        return;
    }
    let mut sketch = sketch::Sketch::from_arrays(into_keys, into_counts);
    sketch.merge_arrays(keys, counts, 1);
    let (k, c) = sketch.to_arrays();
    *into_keys = k;
    *into_counts = c;
}

/// A one-duration sketch delta (`n` = 1 to add, -1 to withdraw).
pub(crate) fn one_duration(ms: i64, n: i64) -> (Vec<i32>, Vec<i64>) {
    (vec![sketch::key(ms)], vec![n])
}
