//! `GET /api/v1/reports/{tickets,experts,leads/funnel,approvals,contracts}`:
//! reports from the `reporting` schema's rollups (ADR 0004).
//!
//! Every report takes `from` and `to` (days, inclusive, UTC; by default the
//! 30 days up to today), `group_by` (a time grain, `day`, `week` or `month`,
//! and/or one of the report's dimensions, comma-separated; `group_by=` for
//! one total) and `min_position` (read-your-writes, as the lists). It
//! answers JSON, or CSV with `Accept: text/csv`, from one read-only
//! snapshot, and says which event position it reflects
//! (`X-Chronicle-Position`). Nothing is computed from the events at query
//! time: rows are added up from the projections' rollups.

/// A static list of [`Column`]s: `"name": Kind = "description",` items,
/// and `durations("name", "what"),` for the four columns of a duration
/// (`name_count`, `name_mean_secs`, `name_p50_secs`, `name_p90_secs`).
macro_rules! columns {
    (@acc [$($out:expr,)*]) => { &[$($out,)*] };
    (@acc [$($out:expr,)*] durations($name:literal, $what:literal), $($rest:tt)*) => {
        columns!(@acc [$($out,)*
            crate::reports::Column {
                name: concat!($name, "_count"),
                kind: crate::reports::Kind::Integer,
                description: concat!("How many ", $what, " were measured"),
            },
            crate::reports::Column {
                name: concat!($name, "_mean_secs"),
                kind: crate::reports::Kind::Number,
                description: concat!("Mean of the ", $what, ", seconds (exact)"),
            },
            crate::reports::Column {
                name: concat!($name, "_p50_secs"),
                kind: crate::reports::Kind::Number,
                description: concat!(
                    "Median of the ", $what,
                    ", seconds (within 1 % of the exact percentile_disc(0.5))"
                ),
            },
            crate::reports::Column {
                name: concat!($name, "_p90_secs"),
                kind: crate::reports::Kind::Number,
                description: concat!(
                    "90th percentile of the ", $what,
                    ", seconds (within 1 % of the exact percentile_disc(0.9))"
                ),
            },
        ] $($rest)*)
    };
    (@acc [$($out:expr,)*] $name:literal : $kind:ident = $description:literal, $($rest:tt)*) => {
        columns!(@acc [$($out,)*
            crate::reports::Column {
                name: $name,
                kind: crate::reports::Kind::$kind,
                description: $description,
            },
        ] $($rest)*)
    };
    ($($items:tt)*) => { columns!(@acc [] $($items)*) };
}

mod approvals;
mod contracts;
mod leads;
pub mod rollups;
mod tickets;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chronicle_projections::reporting::sketch::Sketch;
use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};

use self::rollups::{Grain, Group, Request, Spec};
use crate::auth::{Principal, Role};
use crate::command_http::ApiQuery;
use crate::error::ApiError;
use crate::queries;
use crate::AppState;

/// The longest range a report covers, in days (about ten years).
pub const MAX_DAYS: i64 = 3_660;
/// How many days a report covers when `from` is not given.
pub const DEFAULT_DAYS: i64 = 30;

/// The type of a column, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count or an amount: always a whole number.
    Integer,
    /// A rate or a duration: null when there is nothing to measure.
    Number,
    /// Text (null for "none").
    Text,
    /// A calendar date.
    Date,
}

/// One column of a report.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
}

/// A column the answer is always grouped by (besides period and dimension).
#[derive(Debug, Clone, Copy)]
pub struct KeyColumn {
    pub column: Column,
    /// How to render the stored text.
    pub render: fn(&str) -> Value,
}

/// A dimension a report may be grouped by.
#[derive(Debug, Clone, Copy)]
pub struct Dimension {
    /// Its `group_by` name (and `dim` in the table).
    pub name: &'static str,
    pub column: Column,
    pub render: fn(&str) -> Value,
}

/// A report: where its figures come from and how they read.
pub struct Report {
    /// Under `/api/v1/reports/`.
    pub path: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// The projection keeping its rollups.
    pub projection: &'static str,
    pub spec: Spec,
    pub dimensions: &'static [Dimension],
    pub keys: &'static [KeyColumn],
    pub figures: &'static [Column],
    /// The figures of a group, in the order of `figures`.
    pub render: fn(&Group) -> Vec<Value>,
    pub default_group_by: &'static [&'static str],
    /// Who may read it (admins always may).
    pub roles: &'static [Role],
    /// Puts the groups in the report's order (they come sorted by period,
    /// dimension value and keys as text).
    pub order: fn(&mut [Group]),
}

/// Keeps the groups as they come.
pub fn as_read(_: &mut [Group]) {}

/// Every report, in the order of the document.
pub static REPORTS: [&Report; 5] = [
    &tickets::TICKETS,
    &tickets::EXPERTS,
    &leads::FUNNEL,
    &approvals::APPROVALS,
    &contracts::CONTRACTS,
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/reports/tickets",
            get(|s, p, h, q| serve(s, p, h, q, &tickets::TICKETS)),
        )
        .route(
            "/api/v1/reports/experts",
            get(|s, p, h, q| serve(s, p, h, q, &tickets::EXPERTS)),
        )
        .route(
            "/api/v1/reports/leads/funnel",
            get(|s, p, h, q| serve(s, p, h, q, &leads::FUNNEL)),
        )
        .route(
            "/api/v1/reports/approvals",
            get(|s, p, h, q| serve(s, p, h, q, &approvals::APPROVALS)),
        )
        .route(
            "/api/v1/reports/contracts",
            get(|s, p, h, q| serve(s, p, h, q, &contracts::CONTRACTS)),
        )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// The parameters every report takes.
pub const PARAMETERS: [&str; 4] = ["from", "to", "group_by", "min_position"];

/// A report request, validated.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub grain: Option<Grain>,
    pub dimension: Option<&'static Dimension>,
    /// As asked (normalised), for the answer.
    pub group_by: Vec<&'static str>,
}

fn date(param: &str, value: &str) -> Result<NaiveDate, ApiError> {
    let bad = || {
        invalid(format!(
            "{param} must be a date from 1970-01-01 to 9999-12-31, like 2026-01-31"
        ))
    };
    let day = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| bad())?;
    let earliest = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(bad)?;
    let latest = NaiveDate::from_ymd_opt(9999, 12, 31).ok_or_else(bad)?;
    if day < earliest || day > latest {
        return Err(bad());
    }
    Ok(day)
}

impl Report {
    /// The `group_by` values it accepts.
    pub fn group_by_names(&self) -> Vec<&'static str> {
        let mut names = vec!["day", "week", "month"];
        names.extend(self.dimensions.iter().map(|d| d.name));
        names
    }

    /// Validates a request's parameters (`today` for the default range).
    pub fn query(
        &'static self,
        params: &BTreeMap<String, String>,
        today: NaiveDate,
    ) -> Result<Query, ApiError> {
        if let Some(unknown) = params.keys().find(|k| !PARAMETERS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown query parameter {unknown:?}; reports take: {}",
                PARAMETERS.join(", ")
            )));
        }
        let to = match params.get("to") {
            Some(v) => date("to", v)?,
            None => today,
        };
        let from = match params.get("from") {
            Some(v) => date("from", v)?,
            None => to - chrono::Days::new((DEFAULT_DAYS - 1) as u64),
        };
        if from > to {
            return Err(invalid(format!("from ({from}) is after to ({to})")));
        }
        if (to - from).num_days() + 1 > MAX_DAYS {
            return Err(invalid(format!(
                "a report covers at most {MAX_DAYS} days; narrow from and to"
            )));
        }
        let names: Vec<String> = match params.get("group_by") {
            None => self
                .default_group_by
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        let mut grain = None;
        let mut dimension = None;
        let mut group_by = Vec::new();
        for name in &names {
            if let Some(g) = Grain::parse(name) {
                if grain.replace(g).is_some() {
                    return Err(invalid("group_by takes at most one of day, week, month"));
                }
                group_by.push(g.name());
            } else if let Some(d) = self.dimensions.iter().find(|d| d.name == name) {
                if dimension.replace(d).is_some() {
                    let names: Vec<_> = self.dimensions.iter().map(|d| d.name).collect();
                    return Err(invalid(format!(
                        "group_by takes at most one of {}",
                        names.join(", ")
                    )));
                }
                group_by.push(d.name);
            } else {
                return Err(invalid(format!(
                    "cannot group the {} report by {name:?}; group_by takes a comma-separated \
                     list of at most one time grain and one dimension from: {}",
                    self.path,
                    self.group_by_names().join(", ")
                )));
            }
        }
        Ok(Query {
            from,
            to,
            grain,
            dimension,
            group_by,
        })
    }

    /// The columns of an answer to `query`, in order.
    pub fn columns(&self, query: &Query) -> Vec<Column> {
        let mut columns = Vec::new();
        if query.grain.is_some() {
            columns.push(PERIOD);
        }
        if let Some(d) = query.dimension {
            columns.push(d.column);
        }
        columns.extend(self.keys.iter().map(|k| k.column));
        columns.extend(self.figures.iter().copied());
        columns
    }

    /// The values of one group, in the order of [`Report::columns`].
    pub fn values(&self, query: &Query, group: &Group) -> Vec<Value> {
        let mut values = Vec::new();
        if query.grain.is_some() {
            values.push(group.period.map_or(Value::Null, |p| json!(p.to_string())));
        }
        if let Some(d) = query.dimension {
            values.push(group.value.as_deref().map_or(Value::Null, d.render));
        }
        for (key, value) in self.keys.iter().zip(&group.keys) {
            values.push((key.render)(value));
        }
        values.extend((self.render)(group));
        values
    }
}

/// The `period` column.
pub const PERIOD: Column = Column {
    name: "period",
    kind: Kind::Date,
    description:
        "First day of the period (a Monday for weeks, the 1st for months); its figures \
                  cover its days within from..to, and stocks are as of the end of its last such day",
};

/// Renders stored text as is.
pub fn text(value: &str) -> Value {
    json!(value)
}

/// Whether the caller prefers CSV: `text/csv` (or `text/*`) acceptable with
/// a higher quality than JSON.
fn wants_csv(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut csv, mut json) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/csv" | "text/*" => csv = csv.max(q),
            "application/json" | "application/*" | "*/*" => json = json.max(q),
            _ => {}
        }
    }
    csv > json
}

/// One CSV field (RFC 4180). Text that a spreadsheet would take for a
/// formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The answer as CSV: a header row, then one row per group, CRLF ends.
pub fn csv(columns: &[Column], rows: &[Vec<Value>]) -> String {
    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|c| csv_field(&json!(c.name))).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(csv_field).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

async fn serve(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
    report: &'static Report,
) -> Result<Response, ApiError> {
    principal.require_any(report.roles)?;
    let query = report.query(&params, Utc::now().date_naive())?;
    let min = queries::min_position(&params, &headers)?;
    queries::wait_for(&state, &[report.projection], min).await?;
    let (mut tx, position) = queries::snapshot_of(&state, &[report.projection]).await?;
    let request = Request {
        tenant: principal.tenant.as_str().to_owned(),
        from: query.from,
        to: query.to,
        grain: query.grain,
        dim: query.dimension.map(|d| d.name),
    };
    let mut groups = rollups::read(&mut tx, &report.spec, &request)
        .await
        .map_err(queries::db)?;
    (report.order)(&mut groups);
    tx.commit().await.map_err(queries::db)?;
    let columns = report.columns(&query);
    let rows: Vec<Vec<Value>> = groups.iter().map(|g| report.values(&query, g)).collect();
    let response = if wants_csv(&headers) {
        let mut response = csv(&columns, &rows).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        response
    } else {
        Json(Answer {
            report: report.path,
            from: query.from,
            to: query.to,
            group_by: &query.group_by,
            position,
            rows: Rows {
                columns: &columns,
                rows: &rows,
            },
        })
        .into_response()
    };
    Ok(queries::with_position(response, position))
}

/// The JSON answer: the request as understood, and one object per group
/// (written straight from the rows, without building maps).
#[derive(serde::Serialize)]
struct Answer<'a> {
    report: &'static str,
    from: NaiveDate,
    to: NaiveDate,
    group_by: &'a [&'static str],
    position: u64,
    rows: Rows<'a>,
}

struct Rows<'a> {
    columns: &'a [Column],
    rows: &'a [Vec<Value>],
}

impl serde::Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for values in self.rows {
            seq.serialize_element(&RowObject {
                columns: self.columns,
                values,
            })?;
        }
        seq.end()
    }
}

struct RowObject<'a> {
    columns: &'a [Column],
    values: &'a [Value],
}

impl serde::Serialize for RowObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (column, value) in self.columns.iter().zip(self.values) {
            map.serialize_entry(column.name, value)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

/// `numerator / denominator`, null when the denominator is 0.
pub fn rate(numerator: i64, denominator: i64) -> Value {
    if denominator == 0 {
        Value::Null
    } else {
        json!(numerator as f64 / denominator as f64)
    }
}

/// The mean of durations summing to `sum_ms` in seconds, null when none.
pub fn mean_secs(sum_ms: i64, count: i64) -> Value {
    if count == 0 {
        Value::Null
    } else {
        json!(sum_ms as f64 / count as f64 / 1000.0)
    }
}

/// A quantile of a sketch in seconds, null when empty.
pub fn quantile_secs(sketch: &Sketch, numerator: i64, denominator: i64) -> Value {
    sketch
        .quantile(numerator, denominator)
        .map_or(Value::Null, |ms| json!(ms / 1000.0))
}

/// The count, mean, p50 and p90 columns of a duration.
pub fn durations(count: i64, sum_ms: i64, sketch: &Sketch) -> [Value; 4] {
    [
        json!(count),
        mean_secs(sum_ms, count),
        quantile_secs(sketch, 1, 2),
        quantile_secs(sketch, 9, 10),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_as_rfc_4180_and_defuses_formulas() {
        let columns = [
            Column {
                name: "a",
                kind: Kind::Text,
                description: "",
            },
            Column {
                name: "b",
                kind: Kind::Number,
                description: "",
            },
        ];
        let rows = vec![
            vec![json!("plain"), json!(1.5)],
            vec![json!("with, comma"), Value::Null],
            vec![json!("say \"hi\"\nthere"), json!(-2)],
            vec![json!("=SUM(A1)"), json!(0)],
        ];
        assert_eq!(
            csv(&columns, &rows),
            "a,b\r\nplain,1.5\r\n\"with, comma\",\r\n\"say \"\"hi\"\"\nthere\",-2\r\n'=SUM(A1),0\r\n"
        );
    }

    #[test]
    fn accept_picks_csv_only_when_preferred() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            wants_csv(&h)
        };
        assert!(with("text/csv"));
        assert!(with("text/csv, */*;q=0.1"));
        assert!(with("text/*"));
        assert!(!with("application/json"));
        assert!(!with("*/*"));
        assert!(!with("application/json, text/csv;q=0.5"));
        assert!(!with("application/json, text/csv"));
        assert!(!wants_csv(&HeaderMap::new()));
    }

    #[test]
    fn every_report_renders_as_many_figures_as_it_documents() {
        for report in REPORTS {
            let group = Group {
                period: None,
                value: None,
                keys: report.keys.iter().map(|_| "0".to_owned()).collect(),
                flows: vec![1; report.spec.flows.len()],
                stocks: vec![1; report.spec.stocks.len()],
                sketches: vec![Sketch::default(); report.spec.sketches.len()],
            };
            assert_eq!(
                (report.render)(&group).len(),
                report.figures.len(),
                "{}",
                report.path
            );
            assert_eq!(report.keys.len(), report.spec.keys.len(), "{}", report.path);
            assert_eq!(
                report.dimensions.len(),
                report.spec.dims.len(),
                "{}",
                report.path
            );
        }
    }

    #[test]
    fn parameters_are_validated_with_useful_messages() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let q = tickets::TICKETS.query(&params(&[]), today).unwrap();
        assert_eq!(q.to, today);
        assert_eq!((q.to - q.from).num_days(), DEFAULT_DAYS - 1);
        assert_eq!(q.group_by, ["day"]);
        let q = tickets::TICKETS
            .query(&params(&[("group_by", " priority , month ")]), today)
            .unwrap();
        assert_eq!(
            (q.grain, q.dimension.map(|d| d.name)),
            (Some(Grain::Month), Some("priority"))
        );
        let q = tickets::TICKETS
            .query(&params(&[("group_by", "")]), today)
            .unwrap();
        assert!(q.grain.is_none() && q.dimension.is_none());
        for (pairs, needle) in [
            (vec![("from", "2026-02-30")], "from must be a date"),
            (vec![("to", "yesterday")], "to must be a date"),
            (
                vec![("from", "2026-12-01"), ("to", "2026-11-01")],
                "is after",
            ),
            (
                vec![("from", "2000-01-01"), ("to", "2026-01-01")],
                "at most",
            ),
            (
                vec![("group_by", "owner")],
                "cannot group the tickets report by \"owner\"",
            ),
            (vec![("group_by", "day,month")], "at most one of day"),
            (
                vec![("group_by", "priority,product")],
                "at most one of priority",
            ),
            (vec![("sort", "x")], "unknown query parameter"),
        ] {
            let error = tickets::TICKETS.query(&params(&pairs), today).unwrap_err();
            assert!(error.to_string().contains(needle), "{pairs:?}: {error}");
        }
    }
}
