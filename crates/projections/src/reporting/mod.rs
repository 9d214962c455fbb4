//! The reporting projections: aggregates in the `reporting` schema for the
//! report endpoints and for analysts (ADR 0004).
//!
//! Each projection keeps two kinds of table:
//!
//! - `*_facts`: one row per entity (ticket, lead, approval, contract), the
//!   state the handler needs to turn the next event into figures (the
//!   ticket's priority now, when its current assignment started, ...);
//! - `*_rollups`: additive figures per tenant, grain (`day` and `month`:
//!   every event counts in both), period and group. Flow columns count what
//!   happened in the period; `*_delta` columns change a stock (backlog,
//!   active contracts) whose value at a day's end is the sum of the deltas
//!   up to it; `*_keys` / `*_counts` are duration sketches
//!   ([`sketch`]).
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
use serde_json::Value;
use sqlx::PgConnection;

use crate::rows::{Row, Rows};

/// The schema of the reporting tables.
pub const SCHEMA: &str = "reporting";

/// The grain of rollup rows per day.
pub const DAY: &str = "day";
/// The grain of rollup rows per month (period: the month's first day).
pub const MONTH: &str = "month";

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

/// A row of a rollup table: a key and additive figures.
pub trait Rollup: Row + Clone {
    /// Adds the figures of another row of the same key.
    fn merge(&mut self, other: &Self);

    /// The same row for another grain and period (figures kept).
    fn at_period(&self, grain: &'static str, period: NaiveDate) -> Self;
}

/// The deltas a batch causes to one rollup table.
pub struct Deltas<R: Rollup> {
    rows: HashMap<R::Key, R>,
}

impl<R: Rollup> Default for Deltas<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
        }
    }
}

impl<R: Rollup> Deltas<R> {
    /// Adds `delta` (a row of grain `day`) to its day and to its month.
    pub fn add(&mut self, delta: R, day: NaiveDate) {
        self.add_one(delta.at_period(MONTH, month_of(day)));
        self.add_one(delta.at_period(DAY, day));
    }

    fn add_one(&mut self, delta: R) {
        match self.rows.get_mut(&delta.key()) {
            Some(row) => row.merge(&delta),
            None => {
                self.rows.insert(delta.key(), delta);
            }
        }
    }

    /// Adds the deltas to the stored rows: loads the rows they touch, adds,
    /// writes back (one statement each).
    pub async fn flush(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let keys: Vec<Value> = self
            .rows
            .values()
            .map(|r| serde_json::to_value(r).map_err(|e| sqlx::Error::Encode(Box::new(e))))
            .collect::<Result<_, _>>()?;
        let k_columns: Vec<String> = R::KEY.iter().map(|c| format!("k.{c}")).collect();
        let filter = format!(
            "({}) IN (SELECT {} FROM jsonb_populate_recordset(NULL::{}, $1) k)",
            R::KEY
                .iter()
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            k_columns.join(", "),
            R::TABLE
        );
        let mut stored = Rows::<R>::default();
        stored
            .load(&mut *conn, &filter, sqlx::types::Json(keys))
            .await?;
        for (key, delta) in self.rows {
            match stored.get_mut(&key) {
                Some(row) => row.merge(&delta),
                None => stored.put(delta),
            }
        }
        stored.flush(conn).await?;
        Ok(())
    }
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
