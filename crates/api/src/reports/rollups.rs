//! Reading the `reporting.*_rollups` tables: one engine for every report.
//!
//! A report names its table, the dimensions it may be grouped by (`dim` in
//! the table), the key columns it is always grouped by (a currency, a
//! stage, a level), its flow, stock-delta and sketch columns. A request
//! asks for a range of days, an optional time grain and an optional
//! dimension. The engine reads as few rows as it can: `month` rows for
//! every month wholly inside the range when the answer is per month or for
//! the whole range, `day` rows for the rest. It then adds the rows up per
//! group: flows and sketches over the group's days; stocks as the sum of
//! every delta up to the end of the group's period (rows before the range
//! included, read as one sum per series).

use std::collections::BTreeMap;

use chronicle_projections::reporting::sketch::Sketch;
use chrono::{Datelike, Days, Months, NaiveDate};
use sqlx::{Postgres, QueryBuilder, Row as _};

/// How a report's rollup table is laid out.
pub struct Spec {
    /// Schema-qualified table.
    pub table: &'static str,
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
            Self::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Self::Month => first_of_month(day),
        }
    }

    /// The last day of the period starting on `start`.
    pub fn end(self, start: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => start,
            Self::Week => start + Days::new(6),
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

/// A contiguous range of days (`from > to`: none).
#[derive(Debug, Clone, Copy)]
struct Span {
    from: NaiveDate,
    to: NaiveDate,
}

impl Span {
    /// No day (dates PostgreSQL can hold, the wrong way round).
    const NONE: Span = Span {
        from: match NaiveDate::from_ymd_opt(9999, 12, 31) {
            Some(d) => d,
            None => NaiveDate::MAX,
        },
        to: match NaiveDate::from_ymd_opt(1, 1, 1) {
            Some(d) => d,
            None => NaiveDate::MIN,
        },
    };
}

/// Which rows to read for `[from, to]`: day rows of two spans and month
/// rows of one (the whole months inside, when `months` is allowed).
fn plan(from: NaiveDate, to: NaiveDate, months: bool) -> (Span, Span, Span) {
    if !months {
        return (Span { from, to }, Span::NONE, Span::NONE);
    }
    let first = if from.day() == 1 {
        Some(from)
    } else {
        from.checked_add_months(Months::new(1)).map(first_of_month)
    };
    let last = if last_of_month(to) == to {
        Some(first_of_month(to))
    } else {
        to.checked_sub_months(Months::new(1)).map(first_of_month)
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last => {
            let before = match first.pred_opt() {
                Some(end) if from <= end => Span { from, to: end },
                _ => Span::NONE,
            };
            let after = match last_of_month(last).succ_opt() {
                Some(start) if start <= to => Span { from: start, to },
                _ => Span::NONE,
            };
            (
                before,
                after,
                Span {
                    from: first,
                    to: last,
                },
            )
        }
        _ => (Span { from, to }, Span::NONE, Span::NONE),
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

fn array_of(columns: &[&str]) -> String {
    if columns.is_empty() {
        "ARRAY[]::int8[]".to_owned()
    } else {
        format!("ARRAY[{}]::int8[]", columns.join(", "))
    }
}

/// Runs the report's query in `conn` (the caller's snapshot).
pub async fn read(
    conn: &mut sqlx::PgConnection,
    spec: &Spec,
    r: &Request,
) -> Result<Vec<Group>, sqlx::Error> {
    let months = !matches!(r.grain, Some(Grain::Day | Grain::Week));
    let (before, after, whole) = plan(r.from, r.to, months);

    let mut q = QueryBuilder::<Postgres>::new("SELECT grain, period, ");
    q.push(key_columns(spec, r));
    q.push(", ");
    q.push(array_of(spec.flows));
    q.push(" AS flows, ");
    q.push(array_of(spec.stocks));
    q.push(" AS stocks");
    for s in spec.sketches {
        q.push(format!(", {s}_keys, {s}_counts"));
    }
    q.push(" FROM ");
    q.push(spec.table);
    push_where(&mut q, spec, r);
    q.push(" AND ((grain = 'day' AND period BETWEEN ");
    q.push_bind(before.from);
    q.push(" AND ");
    q.push_bind(before.to);
    q.push(") OR (grain = 'day' AND period BETWEEN ");
    q.push_bind(after.from);
    q.push(" AND ");
    q.push_bind(after.to);
    q.push(") OR (grain = 'month' AND period BETWEEN ");
    q.push_bind(whole.from);
    q.push(" AND ");
    q.push_bind(whole.to);
    q.push("))");
    let rows = q.build().fetch_all(&mut *conn).await?;

    let mut series: Series = BTreeMap::new();
    for row in rows {
        let period: NaiveDate = row.try_get("period")?;
        let bucket = r.grain.map(|g| g.start(period));
        let value: String = row.try_get("value")?;
        let keys = spec
            .keys
            .iter()
            .map(|(name, _)| row.try_get::<String, _>(*name))
            .collect::<Result<Vec<_>, _>>()?;
        let acc = series
            .entry((value, keys))
            .or_default()
            .entry(bucket)
            .or_insert_with(|| Acc::new(spec));
        let flows: Vec<i64> = row.try_get("flows")?;
        for (a, f) in acc.flows.iter_mut().zip(flows) {
            *a += f;
        }
        let stocks: Vec<i64> = row.try_get("stocks")?;
        for (a, s) in acc.stocks.iter_mut().zip(stocks) {
            *a += s;
        }
        for (i, s) in spec.sketches.iter().enumerate() {
            let keys: Vec<i32> = row.try_get(format!("{s}_keys").as_str())?;
            let counts: Vec<i64> = row.try_get(format!("{s}_counts").as_str())?;
            acc.sketches[i].merge_arrays(&keys, &counts);
        }
    }

    // Stocks start from everything before the range.
    let mut baseline: BTreeMap<(String, Vec<String>), Vec<i64>> = BTreeMap::new();
    if !spec.stocks.is_empty() {
        let month = first_of_month(r.from);
        let sums: Vec<String> = spec
            .stocks
            .iter()
            .map(|s| format!("coalesce(sum({s}), 0)::int8"))
            .collect();
        let mut q = QueryBuilder::<Postgres>::new("SELECT ");
        q.push(key_columns(spec, r));
        q.push(format!(
            ", ARRAY[{}]::int8[] AS stocks FROM ",
            sums.join(", ")
        ));
        q.push(spec.table);
        push_where(&mut q, spec, r);
        q.push(" AND ((grain = 'month' AND period < ");
        q.push_bind(month);
        q.push(") OR (grain = 'day' AND period >= ");
        q.push_bind(month);
        q.push(" AND period < ");
        q.push_bind(r.from);
        q.push(")) GROUP BY 1");
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
    for ((value, keys), by_period) in series {
        let mut stock = baseline
            .remove(&(value.clone(), keys.clone()))
            .unwrap_or_else(|| vec![0; spec.stocks.len()]);
        for period in &periods {
            let acc = by_period.get(period);
            if let Some(acc) = acc {
                for (s, d) in stock.iter_mut().zip(&acc.stocks) {
                    *s += d;
                }
            }
            let active = acc.is_some_and(|a| {
                a.flows.iter().any(|f| *f != 0) || a.sketches.iter().any(|s| !s.is_empty())
            }) || stock.iter().any(|s| *s != 0);
            if !active {
                continue;
            }
            groups.push(Group {
                period: *period,
                value: r.dim.map(|_| value.clone()),
                keys: keys.clone(),
                flows: acc.map_or_else(|| vec![0; spec.flows.len()], |a| a.flows.clone()),
                stocks: stock.clone(),
                sketches: acc.map_or_else(
                    || vec![Sketch::default(); spec.sketches.len()],
                    |a| a.sketches.clone(),
                ),
            });
        }
    }
    groups.sort_by(|a, b| (a.period, &a.value, &a.keys).cmp(&(b.period, &b.value, &b.keys)));
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_months_are_read_from_month_rows_and_the_edges_from_day_rows() {
        let (before, after, whole) = plan(d("2026-01-15"), d("2026-04-10"), true);
        assert_eq!((before.from, before.to), (d("2026-01-15"), d("2026-01-31")));
        assert_eq!((whole.from, whole.to), (d("2026-02-01"), d("2026-03-01")));
        assert_eq!((after.from, after.to), (d("2026-04-01"), d("2026-04-10")));

        let (before, after, whole) = plan(d("2026-01-01"), d("2026-12-31"), true);
        assert!(before.from > before.to && after.from > after.to);
        assert_eq!((whole.from, whole.to), (d("2026-01-01"), d("2026-12-01")));

        // Inside one month: days only.
        let (before, after, whole) = plan(d("2026-02-03"), d("2026-02-20"), true);
        assert_eq!((before.from, before.to), (d("2026-02-03"), d("2026-02-20")));
        assert!(after.from > after.to && whole.from > whole.to);

        // Per day or week: days only.
        let (before, _, whole) = plan(d("2026-01-01"), d("2026-12-31"), false);
        assert_eq!((before.from, before.to), (d("2026-01-01"), d("2026-12-31")));
        assert!(whole.from > whole.to);
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
