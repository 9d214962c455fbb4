//! Reading the `reporting.*_daily` and `*_monthly` tables: one engine for
//! every report.
//!
//! A report names its table, the dimensions it may be grouped by (`dim` in
//! the table), the key columns it is always grouped by (a currency, a
//! stage, a level), its flow, stock-delta and sketch columns. A request
//! asks for a range of days, an optional time grain and an optional
//! dimension. The engine reads as few rows as it can: when the answer is
//! per month or for the whole range, `month` rows for every month wholly
//! inside the range, and for a month partly inside either its `day` rows
//! or its `month` row less the `day` rows outside the range, whichever are
//! fewer; per day or week, `day` rows. It then adds the rows up per group
//! (subtracting those read to be taken away): flows and sketches over the
//! group's days; stocks as the sum of every delta up to the end of the
//! group's period (rows before the range included, read as one sum per
//! series).

use std::collections::BTreeMap;

use chronicle_projections::reporting::sketch::Sketch;
use chrono::{Datelike, Days as ChronoDays, Months, NaiveDate};
use futures::TryStreamExt as _;
use sqlx::{Postgres, QueryBuilder, Row as _};

/// How a report's rollup table is laid out.
pub struct Spec {
    /// Schema-qualified tables: the rows per day, and per month.
    pub daily: &'static str,
    pub monthly: &'static str,
    /// The dimensions (values of its `dim` column) a request may group by;
    /// empty when the table has no `dim` column.
    pub dims: &'static [&'static str],
    /// Columns every answer is grouped by, as SQL text expressions, with
    /// their names.
    pub keys: &'static [(&'static str, &'static str)],
    /// Columns summed over a group's days.
    pub flows: &'static [&'static str],
    /// `*_delta` columns, summed over every day up to a period's end.
    pub stocks: &'static [&'static str],
    /// Sketch column prefixes (`<p>_keys`, `<p>_counts`).
    pub sketches: &'static [&'static str],
}

/// A time grain of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl Grain {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The first day of the period holding `day`.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => day,
            Self::Week => day - ChronoDays::new(u64::from(day.weekday().num_days_from_monday())),
            Self::Month => first_of_month(day),
        }
    }

    /// The last day of the period starting on `start`.
    pub fn end(self, start: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => start,
            Self::Week => start + ChronoDays::new(6),
            Self::Month => last_of_month(start),
        }
    }
}

pub fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

pub fn last_of_month(day: NaiveDate) -> NaiveDate {
    let first = first_of_month(day);
    first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(day)
}

/// What a request asks of a report.
#[derive(Debug, Clone)]
pub struct Request {
    pub tenant: String,
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    pub grain: Option<Grain>,
    /// One of the spec's `dims`, or none (everything).
    pub dim: Option<&'static str>,
}

/// One group of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The period's first day (its natural start: a Monday, the 1st),
    /// when the answer has a time grain. Figures cover its days within the
    /// requested range; stocks are as of the end of its last such day.
    pub period: Option<NaiveDate>,
    /// The dimension's value, when grouped by one.
    pub value: Option<String>,
    /// The spec's key columns' values.
    pub keys: Vec<String>,
    pub flows: Vec<i64>,
    pub stocks: Vec<i64>,
    pub sketches: Vec<Sketch>,
}

/// Day rows of `[from, to]` to add (`sign` 1) or to subtract (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Days {
    from: NaiveDate,
    to: NaiveDate,
    sign: i64,
}

/// Which rows add up to `[from, to]`: month rows of the months
/// `months.0 ..= months.1` (their first days), and day rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Plan {
    months: Option<(NaiveDate, NaiveDate)>,
    days: Vec<Days>,
}

fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days() + 1
}

/// The rows to read for `[from, to]`. With `months`, a month partly in
/// the range is read as its month row minus the day rows outside the
/// range when those are fewer than the days inside: at most 15 day rows
/// per group at each end, whatever the range.
fn plan(from: NaiveDate, to: NaiveDate, months: bool) -> Plan {
    if !months {
        return Plan {
            months: None,
            days: vec![Days { from, to, sign: 1 }],
        };
    }
    let mut whole: Vec<NaiveDate> = Vec::new();
    let mut days = Vec::new();
    let mut month = first_of_month(from);
    while month <= to {
        let end = last_of_month(month);
        let (inside_from, inside_to) = (from.max(month), to.min(end));
        let inside = days_between(inside_from, inside_to);
        let outside = days_between(month, end) - inside;
        if outside < inside {
            whole.push(month);
            if month < inside_from {
                days.push(Days {
                    from: month,
                    to: inside_from - ChronoDays::new(1),
                    sign: -1,
                });
            }
            if inside_to < end {
                days.push(Days {
                    from: inside_to + ChronoDays::new(1),
                    to: end,
                    sign: -1,
                });
            }
        } else {
            days.push(Days {
                from: inside_from,
                to: inside_to,
                sign: 1,
            });
        }
        match end.succ_opt() {
            Some(next) => month = next,
            None => break,
        }
    }
    Plan {
        months: whole.first().zip(whole.last()).map(|(a, b)| (*a, *b)),
        days,
    }
}
/// Per series (dimension value and keys): its figures per period.
type Series = BTreeMap<(String, Vec<String>), BTreeMap<Option<NaiveDate>, Acc>>;

#[derive(Debug, Clone)]
struct Acc {
    flows: Vec<i64>,
    stocks: Vec<i64>,
    sketches: Vec<Sketch>,
}

impl Acc {
    fn new(spec: &Spec) -> Self {
        Self {
            flows: vec![0; spec.flows.len()],
            stocks: vec![0; spec.stocks.len()],
            sketches: vec![Sketch::default(); spec.sketches.len()],
        }
    }
}

fn push_where(q: &mut QueryBuilder<'_, Postgres>, spec: &Spec, r: &Request) {
    q.push(" WHERE tenant_id = ");
    q.push_bind(r.tenant.clone());
    if !spec.dims.is_empty() {
        q.push(" AND dim = ");
        q.push_bind(r.dim.unwrap_or("all"));
    }
}

fn key_columns(spec: &Spec, r: &Request) -> String {
    let value = if r.dim.is_some() { "value" } else { "''" };
    let mut columns = vec![format!("{value} AS value")];
    columns.extend(
        spec.keys
            .iter()
            .map(|(name, expr)| format!("{expr} AS {name}")),
    );
    columns.join(", ")
}

/// `AND (<the days of the spans>)`.
fn push_days(q: &mut QueryBuilder<'_, Postgres>, days: &[Days]) {
    q.push(" AND (false");
    for span in days {
        q.push(" OR period BETWEEN ");
        q.push_bind(span.from);
        q.push(" AND ");
        q.push_bind(span.to);
    }
    q.push(")");
}

/// The elements of a one-dimensional array of 2-, 4- or 8-byte integers
/// without nulls, from PostgreSQL's binary form (`array_send`): the number
/// of dimensions, a has-nulls flag, the element type, each dimension's
/// length and lower bound, then each element's length and big-endian
/// bytes. Read lazily, without copying.
fn int_array(bytes: &[u8]) -> Result<IntArray<'_>, sqlx::Error> {
    let header = |at: usize| -> Result<i32, sqlx::Error> {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
            .ok_or_else(|| bad_array("truncated"))
    };
    let left = match header(0)? {
        0 => 0,
        1 => usize::try_from(header(12)?).map_err(|_| bad_array("negative length"))?,
        _ => return Err(bad_array("more than one dimension")),
    };
    Ok(IntArray {
        bytes,
        at: 20,
        left,
    })
}

fn bad_array(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("array_send: {what}").into())
}

struct IntArray<'a> {
    bytes: &'a [u8],
    at: usize,
    left: usize,
}

impl Iterator for IntArray<'_> {
    type Item = Result<i64, sqlx::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (bytes, at) = (self.bytes, self.at);
        let field = |from: usize, len: usize| bytes.get(from..from + len);
        let value = field(at, 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
            .and_then(|len| {
                let v = match len {
                    2 => field(at + 4, 2)
                        .and_then(|b| b.try_into().ok())
                        .map(|b| i64::from(i16::from_be_bytes(b))),
                    4 => field(at + 4, 4)
                        .and_then(|b| b.try_into().ok())
                        .map(|b| i64::from(i32::from_be_bytes(b))),
                    8 => field(at + 4, 8)
                        .and_then(|b| b.try_into().ok())
                        .map(i64::from_be_bytes),
                    _ => None,
                };
                v.map(|v| (v, len as usize))
            });
        match value {
            Some((v, len)) => {
                self.at = at + 4 + len;
                Some(Ok(v))
            }
            None => {
                self.left = 0;
                Some(Err(bad_array("not an integer array")))
            }
        }
    }
}

/// Whether a row of `grain` and `period` is added (1) or subtracted (-1).
fn sign(plan: &Plan, grain: &str, period: NaiveDate) -> i64 {
    if grain == "day" {
        plan.days
            .iter()
            .find(|d| d.from <= period && period <= d.to)
            .map_or(1, |d| d.sign)
    } else {
        1
    }
}

/// Runs the report's query in `conn` (the caller's snapshot).
pub async fn read(
    conn: &mut sqlx::PgConnection,
    spec: &Spec,
    r: &Request,
) -> Result<Vec<Group>, sqlx::Error> {
    let months = !matches!(r.grain, Some(Grain::Day | Grain::Week));
    let plan = plan(r.from, r.to, months);
    let sketch_columns: Vec<(String, String)> = spec
        .sketches
        .iter()
        .map(|s| (format!("{s}_keys"), format!("{s}_counts")))
        .collect();

    // One SELECT per table: the whole months, then the days.
    let select = |q: &mut QueryBuilder<'_, Postgres>, grain: &str, table: &str| {
        q.push(format!("SELECT '{grain}' AS grain, period, "));
        q.push(key_columns(spec, r));
        for column in spec.flows.iter().chain(spec.stocks) {
            q.push(format!(", {column}"));
        }
        for (keys, counts) in &sketch_columns {
            // The binary form, decoded here: several times faster than
            // decoding the arrays element by element.
            q.push(format!(
                ", array_send({keys}) AS {keys}, array_send({counts}) AS {counts}"
            ));
        }
        q.push(" FROM ");
        q.push(table);
        push_where(q, spec, r);
    };
    let mut q = QueryBuilder::<Postgres>::new("");
    if let Some((first, last)) = plan.months {
        select(&mut q, "month", spec.monthly);
        q.push(" AND period BETWEEN ");
        q.push_bind(first);
        q.push(" AND ");
        q.push_bind(last);
    }
    if !plan.days.is_empty() {
        if plan.months.is_some() {
            q.push(" UNION ALL ");
        }
        select(&mut q, "day", spec.daily);
        push_days(&mut q, &plan.days);
    }
    // Columns by position: grain, period, value, the keys, the flows, the
    // stocks, then each sketch's keys and counts. Rows are added up as
    // they arrive.
    let k = spec.keys.len();
    let (flows, stocks) = (3 + k, 3 + k + spec.flows.len());
    let sketches = stocks + spec.stocks.len();
    let mut rows = q.build().fetch(&mut *conn);
    let mut series: Series = BTreeMap::new();
    let mut pairs: Vec<(i32, i64)> = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let grain: &str = row.try_get(0)?;
        let period: NaiveDate = row.try_get(1)?;
        let sign = sign(&plan, grain, period);
        let bucket = r.grain.map(|g| g.start(period));
        let value: String = row.try_get(2)?;
        let keys = (0..k)
            .map(|i| row.try_get::<String, _>(3 + i))
            .collect::<Result<Vec<_>, _>>()?;
        let acc = series
            .entry((value, keys))
            .or_default()
            .entry(bucket)
            .or_insert_with(|| Acc::new(spec));
        for (i, a) in acc.flows.iter_mut().enumerate() {
            *a += sign * row.try_get::<i64, _>(flows + i)?;
        }
        for (i, a) in acc.stocks.iter_mut().enumerate() {
            *a += sign * row.try_get::<i64, _>(stocks + i)?;
        }
        for i in 0..sketch_columns.len() {
            pairs.clear();
            let keys = int_array(row.try_get(sketches + 2 * i)?)?;
            let counts = int_array(row.try_get(sketches + 2 * i + 1)?)?;
            for (key, count) in keys.zip(counts) {
                pairs.push((key? as i32, count?));
            }
            acc.sketches[i].merge_pairs(&pairs, sign);
        }
    }
    drop(rows);

    // Stocks start from everything before the range: the sum of every
    // delta up to the day before `from`.
    let mut baseline: BTreeMap<(String, Vec<String>), Vec<i64>> = BTreeMap::new();
    if !spec.stocks.is_empty() {
        let month = first_of_month(r.from);
        let mut before = plan_until(r.from);
        let sums: Vec<String> = spec
            .stocks
            .iter()
            .map(|s| format!("coalesce(sum({s} * sign), 0)::int8"))
            .collect();
        let names: Vec<&str> = spec.keys.iter().map(|(name, _)| *name).collect();
        let mut q = QueryBuilder::<Postgres>::new("SELECT value");
        for name in &names {
            q.push(format!(", {name}"));
        }
        q.push(format!(
            ", ARRAY[{}]::int8[] AS stocks FROM (",
            sums.join(", ")
        ));
        // Every month before `from`'s, or up to it when it is cheaper to
        // take its month row less its days from `from` on.
        let whole = before.months.take();
        let stocks = spec.stocks.join(", ");
        q.push(format!(
            "SELECT {}, {stocks}, 1 AS sign FROM ",
            key_columns(spec, r)
        ));
        q.push(spec.monthly);
        push_where(&mut q, spec, r);
        q.push(if whole.is_some() {
            " AND period <= "
        } else {
            " AND period < "
        });
        q.push_bind(month);
        for days in &before.days {
            q.push(format!(
                " UNION ALL SELECT {}, {stocks}, {} AS sign FROM ",
                key_columns(spec, r),
                days.sign
            ));
            q.push(spec.daily);
            push_where(&mut q, spec, r);
            q.push(" AND period BETWEEN ");
            q.push_bind(days.from);
            q.push(" AND ");
            q.push_bind(days.to);
        }
        q.push(") t GROUP BY 1");
        for i in 0..spec.keys.len() {
            q.push(format!(", {}", i + 2));
        }
        for row in q.build().fetch_all(&mut *conn).await? {
            let value: String = row.try_get("value")?;
            let keys = spec
                .keys
                .iter()
                .map(|(name, _)| row.try_get::<String, _>(*name))
                .collect::<Result<Vec<_>, _>>()?;
            let stocks: Vec<i64> = row.try_get("stocks")?;
            if stocks.iter().any(|s| *s != 0) {
                series.entry((value.clone(), keys.clone())).or_default();
                baseline.insert((value, keys), stocks);
            }
        }
    }

    // Every period of the range, in order.
    let periods: Vec<Option<NaiveDate>> = match r.grain {
        None => vec![None],
        Some(g) => {
            let mut out = Vec::new();
            let mut start = g.start(r.from);
            while start <= r.to {
                out.push(Some(start));
                match g.end(start).succ_opt() {
                    Some(next) => start = next,
                    None => break,
                }
            }
            out
        }
    };

    let mut groups = Vec::new();
    for ((value, keys), mut by_period) in series {
        let mut stock = baseline
            .remove(&(value.clone(), keys.clone()))
            .unwrap_or_else(|| vec![0; spec.stocks.len()]);
        for period in &periods {
            let acc = by_period.remove(period);
            if let Some(acc) = &acc {
                for (s, d) in stock.iter_mut().zip(&acc.stocks) {
                    *s += d;
                }
            }
            let active = acc.as_ref().is_some_and(|a| {
                a.flows.iter().any(|f| *f != 0) || a.sketches.iter().any(|s| !s.is_empty())
            }) || stock.iter().any(|s| *s != 0);
            if !active {
                continue;
            }
            let acc = acc.unwrap_or_else(|| Acc::new(spec));
            groups.push(Group {
                period: *period,
                value: r.dim.map(|_| value.clone()),
                keys: keys.clone(),
                flows: acc.flows,
                stocks: stock.clone(),
                sketches: acc.sketches,
            });
        }
    }
    groups.sort_by(|a, b| (a.period, &a.value, &a.keys).cmp(&(b.period, &b.value, &b.keys)));
    Ok(groups)
}

/// The rows holding every day before `day`, in its month: the days from
/// the 1st (`days`), or the month row less the days from `day` on
/// (`months` and a day span to subtract) when those are fewer.
fn plan_until(day: NaiveDate) -> Plan {
    let month = first_of_month(day);
    if day == month {
        return Plan::default();
    }
    let before = days_between(month, day) - 1;
    let rest = days_between(day, last_of_month(day));
    if rest < before {
        Plan {
            months: Some((month, month)),
            days: vec![Days {
                from: day,
                to: last_of_month(day),
                sign: -1,
            }],
        }
    } else {
        Plan {
            months: None,
            days: vec![Days {
                from: month,
                to: day - ChronoDays::new(1),
                sign: 1,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn days(from: &str, to: &str, sign: i64) -> Days {
        Days {
            from: d(from),
            to: d(to),
            sign,
        }
    }

    #[test]
    fn whole_months_are_read_from_month_rows_and_the_edges_from_the_fewest_day_rows() {
        // Jan 15-31: 17 days in, 14 out: the month less Jan 1-14. Apr 1-10:
        // 10 in, 20 out: the days.
        let p = plan(d("2026-01-15"), d("2026-04-10"), true);
        assert_eq!(p.months, Some((d("2026-01-01"), d("2026-03-01"))));
        assert_eq!(
            p.days,
            [
                days("2026-01-01", "2026-01-14", -1),
                days("2026-04-01", "2026-04-10", 1)
            ]
        );
        let p = plan(d("2026-01-01"), d("2026-12-31"), true);
        assert_eq!(p.months, Some((d("2026-01-01"), d("2026-12-01"))));
        assert!(p.days.is_empty());
        // A year from the 30th to the 29th: one day, and a month less one.
        let p = plan(d("2025-11-30"), d("2026-11-29"), true);
        assert_eq!(p.months, Some((d("2025-12-01"), d("2026-11-01"))));
        assert_eq!(
            p.days,
            [
                days("2025-11-30", "2025-11-30", 1),
                days("2026-11-30", "2026-11-30", -1)
            ]
        );
        // Inside one month: whichever is fewer.
        let p = plan(d("2026-02-10"), d("2026-02-15"), true);
        assert_eq!(p.months, None);
        assert_eq!(p.days, [days("2026-02-10", "2026-02-15", 1)]);
        let p = plan(d("2026-03-02"), d("2026-03-30"), true);
        assert_eq!(p.months, Some((d("2026-03-01"), d("2026-03-01"))));
        assert_eq!(
            p.days,
            [
                days("2026-03-01", "2026-03-01", -1),
                days("2026-03-31", "2026-03-31", -1)
            ]
        );
        // Per day or week: days only.
        let p = plan(d("2026-01-01"), d("2026-12-31"), false);
        assert_eq!(
            (p.months, p.days),
            (None, vec![days("2026-01-01", "2026-12-31", 1)])
        );
    }

    #[test]
    fn the_days_before_a_day_come_from_the_fewest_rows() {
        assert_eq!(plan_until(d("2026-03-01")), Plan::default());
        assert_eq!(
            plan_until(d("2026-03-05")),
            Plan {
                months: None,
                days: vec![days("2026-03-01", "2026-03-04", 1)]
            }
        );
        assert_eq!(
            plan_until(d("2026-03-29")),
            Plan {
                months: Some((d("2026-03-01"), d("2026-03-01"))),
                days: vec![days("2026-03-29", "2026-03-31", -1)]
            }
        );
    }

    #[test]
    fn binary_integer_arrays_decode() {
        // array_send(ARRAY[7, -1]::int4[]) and array_send('{}'::int8[]).
        let mut bytes = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 2, 0, 0, 0, 1];
        bytes.extend([0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 4, 255, 255, 255, 255]);
        let all = |bytes: &[u8]| -> Result<Vec<i64>, sqlx::Error> { int_array(bytes)?.collect() };
        assert_eq!(all(&bytes).unwrap(), [7, -1]);
        let empty = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20];
        assert_eq!(all(&empty).unwrap(), Vec::<i64>::new());
        assert!(all(&bytes[..30]).is_err());
    }

    #[test]
    fn periods_start_on_mondays_and_firsts() {
        assert_eq!(Grain::Week.start(d("2026-11-29")), d("2026-11-23"));
        assert_eq!(Grain::Week.end(d("2026-11-23")), d("2026-11-29"));
        assert_eq!(Grain::Month.start(d("2026-02-17")), d("2026-02-01"));
        assert_eq!(Grain::Month.end(d("2024-02-01")), d("2024-02-29"));
        assert_eq!(Grain::Day.end(d("2026-02-17")), d("2026-02-17"));
    }
}
