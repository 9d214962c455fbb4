//! The reports' acceptance check: a seeded random workload of at least
//! 100,000 events (every event type the reports read, SLA breaches,
//! escalations, surveys and approval outcomes included) is appended
//! through the store while `chronicle project` runs the reporting
//! projections in small batches and is killed with SIGKILL and restarted
//! several times, during the load and during the final catch-up. Then every
//! report, for several groupings and two ranges (whole months and partial
//! ones), must equal the figures computed here straight from the events
//! table by separate SQL: window functions over each stream's events, no
//! rollups, no projection code. Counts and sums are compared exactly, means
//! to 1e-9, p50 and p90 within the sketch's documented 1 % of the exact
//! `percentile_disc`.
//!
//! The seed is printed; `CHRONICLE_REPORTS_SEED=<seed>` repeats a run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_api::{Application, Config};
use chronicle_projections::reporting::sketch::ALPHA;
use chronicle_projections::status;
use chronicle_store::postgres::PgEventStore;
use chronicle_store::EventStore;
use chronicle_testkit::TestDb;
use chrono::{NaiveDate, TimeZone, Utc};
use futures::StreamExt as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{token, SECRET};
use crate::workload::{self, Executor};

const TENANT: &str = "acme";
const REPORTING: [&str; 4] = [
    "reporting_tickets",
    "reporting_leads",
    "reporting_approvals",
    "reporting_contracts",
];

/// `chronicle project` for the reporting projections; killed on drop.
struct Projector(Child);

impl Projector {
    fn start(db: &TestDb, batch: usize) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(["project", "--only", &REPORTING.join(",")])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .env("CHRONICLE_PROJECTION_BATCH", batch.to_string())
            .env(
                "CHRONICLE_DATA_DIR",
                std::env::temp_dir().join("chronicle-reports-check"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn kill(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn projections() -> Vec<Arc<dyn chronicle_projections::Projection>> {
    chronicle_projections::select(chronicle_projections::all(), &REPORTING.map(String::from))
        .unwrap()
}

async fn lowest(pool: &PgPool) -> u64 {
    let rows = status::status(pool, &projections()).await.unwrap();
    if let Some(failed) = rows.iter().find(|r| r.state == "failed") {
        panic!("{} stopped: {:?}", failed.name, failed.error);
    }
    rows.iter().map(|r| r.position).min().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_report_equals_the_events_recomputed_after_projector_crashes() {
    let seed: u64 = std::env::var("CHRONICLE_REPORTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("reports check: seed {seed} (CHRONICLE_REPORTS_SEED={seed} repeats this run)");
    let mut rng = StdRng::seed_from_u64(seed);

    let db = TestDb::new().await;
    // The workload is test data: appends need not wait for the disk.
    sqlx::query(&format!(
        "ALTER DATABASE {} SET synchronous_commit = off",
        db.name
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(12)
        .connect(&db.url)
        .await
        .unwrap();
    let store = Arc::new(PgEventStore::new(pool.clone()));

    let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    let days = 75;
    let config = workload::Config {
        seed,
        start,
        days,
        commands: 100_000,
    };
    let (steps, planned) = workload::plan_at_least(&config, TENANT, 100_000).unwrap();
    let windows = workload::windows(&steps, chrono::Duration::hours(6));

    // Five crashes during the load, at random windows.
    let mut kills = BTreeSet::new();
    while kills.len() < 5 {
        kills.insert(rng.gen_range(windows.len() / 10..windows.len() * 9 / 10));
    }
    let mut projector = Projector::start(&db, rng.gen_range(200..2_000));
    let mut executor = Executor::new(TENANT);
    let mut crashed_at = Vec::new();
    for (i, window) in windows.iter().enumerate() {
        let appends = executor.window(window).unwrap();
        futures::stream::iter(appends)
            .for_each_concurrent(8, |a| {
                let store = store.clone();
                async move {
                    store
                        .append(&a.stream, a.expected, &a.events)
                        .await
                        .unwrap();
                }
            })
            .await;
        if kills.contains(&i) {
            projector.kill();
            crashed_at.push((lowest(&pool).await, store.head_position().await.unwrap()));
            projector = Projector::start(&db, rng.gen_range(200..2_000));
        }
    }
    let head = store.head_position().await.unwrap();
    // One more during the catch-up, past a third of the log.
    let deadline = Instant::now() + Duration::from_secs(600);
    while lowest(&pool).await < head / 3 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    projector.kill();
    crashed_at.push((lowest(&pool).await, head));
    let mut projector = Projector::start(&db, rng.gen_range(200..2_000));
    while lowest(&pool).await < head {
        assert!(
            Instant::now() < deadline,
            "the projections did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    projector.kill();
    eprintln!(
        "reports check: {planned} events, {} refused timer commands, crashes at (position, head) {crashed_at:?}",
        executor.refused
    );
    let midway = crashed_at
        .iter()
        .filter(|(at, head)| 0 < *at && at < head)
        .count();
    assert!(
        midway >= 3,
        "too few crashes landed mid-way: {crashed_at:?}"
    );

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(events >= 100_000, "{events} events");
    let types: BTreeSet<String> = sqlx::query_scalar("SELECT DISTINCT event_type FROM events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for needed in [
        "ticket.opened",
        "ticket.expert_assigned",
        "ticket.accepted",
        "ticket.rejected",
        "ticket.commented",
        "ticket.priority_changed",
        "ticket.resolved",
        "ticket.reopened",
        "ticket.closed",
        "ticket.sla_breached",
        "ticket.escalated",
        "ticket.survey_sent",
        "ticket.survey_answered",
        "lead.captured",
        "lead.owner_assigned",
        "lead.qualified",
        "lead.serviceability_checked",
        "lead.design_submitted",
        "lead.design_approval_requested",
        "lead.design_approved",
        "lead.design_rejected",
        "lead.implementation_completed",
        "lead.handed_over_to_support",
        "lead.closed",
        "approval.requested",
        "approval.level_completed",
        "approval.granted",
        "approval.rejected",
        "approval.changes_requested",
        "approval.escalated",
        "approval.cancelled",
        "contract.drafted",
        "contract.amended",
        "contract.signed",
        "contract.activated",
        "contract.renewed",
        "contract.terminated",
        "contract.expired",
    ] {
        assert!(types.contains(needed), "the workload has no {needed}");
    }

    // The API, without projectors of its own.
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("CHRONICLE_LISTEN", "127.0.0.1:0".to_owned()),
        ("CHRONICLE_JWT_SECRET", SECRET.to_owned()),
        ("CHRONICLE_RATE_LIMIT", "100000000".to_owned()),
        ("CHRONICLE_DATA_DIR", data.path().display().to_string()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let app = Application::build(&config, pool.clone()).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let token = token(TENANT, "analyst-1", &["analyst"]);
    let client = reqwest::Client::new();

    let mut sql = PgConnection::connect(&db.url).await.unwrap();
    let t = Instant::now();
    prepare(&mut sql).await;
    eprintln!(
        "reports check: recomputation prepared in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let last = (start + chrono::Duration::days(days - 1)).date_naive();
    let first = start.date_naive();
    let ranges = [
        (first, last),
        (first + chrono::Days::new(9), last - chrono::Days::new(20)),
    ];
    let cases: &[(&str, &[&str])] = &[
        (
            "tickets",
            &["day", "week,priority", "month,category", "product", ""],
        ),
        ("experts", &["", "month"]),
        ("leads/funnel", &["", "month,owner", "week"]),
        ("approvals", &["", "month,subject_kind", "day"]),
        ("contracts", &["month", "owner", "week", ""]),
    ];
    let (mut compared, mut quantiles_compared) = (0, 0);
    for (from, to) in ranges {
        for (report, groupings) in cases {
            for group_by in *groupings {
                let url = format!(
                    "http://{addr}/api/v1/reports/{report}?from={from}&to={to}&group_by={group_by}"
                );
                let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(response.status(), 200, "{url}");
                let body: Value = response.json().await.unwrap();
                let request = Grouping::new(report, group_by, from, to);
                let actual = actual_rows(&request, &body);
                let expected = expected_rows(&mut sql, &request).await;
                assert!(
                    !actual.is_empty() && !expected.is_empty(),
                    "{request:?}: nothing to compare"
                );
                let (figures, quantiles) = compare(&request, &actual, &expected);
                compared += figures;
                quantiles_compared += quantiles;
            }
        }
    }
    eprintln!(
        "reports check: {compared} figures compared ({quantiles_compared} quantiles) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(compared > 20_000, "only {compared} figures compared");
    assert!(
        quantiles_compared > 1_000,
        "only {quantiles_compared} quantiles"
    );
}

// ---------------------------------------------------------------------------
// What is asked, and the answer as comparable rows
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Grouping {
    report: &'static str,
    grain: Option<&'static str>,
    dim: Option<&'static str>,
    from: NaiveDate,
    to: NaiveDate,
}

impl Grouping {
    fn new(report: &'static str, group_by: &'static str, from: NaiveDate, to: NaiveDate) -> Self {
        let mut grain = None;
        let mut dim = None;
        for part in group_by.split(',').filter(|p| !p.is_empty()) {
            if ["day", "week", "month"].contains(&part) {
                grain = Some(part);
            } else {
                dim = Some(part);
            }
        }
        Self {
            report,
            grain,
            dim,
            from,
            to,
        }
    }

    /// The answer's column holding the dimension's value.
    fn dim_column(&self) -> Option<&'static str> {
        self.dim.map(|d| match d {
            "owner" => "owner_id",
            other => other,
        })
    }

    /// The columns (besides period and dimension) rows are keyed by.
    fn keys(&self) -> &'static [&'static str] {
        match self.report {
            "experts" => &["expert_id"],
            "leads/funnel" => &["currency", "stage"],
            "approvals" => &["level"],
            "contracts" => &["currency"],
            _ => &[],
        }
    }
}

type Rows = BTreeMap<Vec<String>, BTreeMap<String, Value>>;

fn key_text(column: &str, value: &Value) -> String {
    match (column, value) {
        ("owner_id", Value::Null) => "none".into(),
        ("level", Value::Null) => "-1".into(),
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn actual_rows(g: &Grouping, body: &Value) -> Rows {
    let mut out = Rows::new();
    for row in body["rows"].as_array().unwrap() {
        let mut key = vec![
            row.get("period")
                .map_or(String::new(), |p| key_text("period", p)),
            g.dim_column()
                .map_or(String::new(), |c| key_text(c, &row[c])),
        ];
        for k in g.keys() {
            key.push(key_text(k, &row[*k]));
        }
        let mut figures: BTreeMap<String, Value> = row
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        figures.remove("period");
        if let Some(c) = g.dim_column() {
            figures.remove(c);
        }
        for k in g.keys() {
            figures.remove(*k);
        }
        assert!(out.insert(key.clone(), figures).is_none(), "{key:?} twice");
    }
    out
}

/// Compares figure by figure (a missing row is all zeros and nulls);
/// returns how many figures were compared, and how many of them were
/// quantiles with a value.
fn compare(g: &Grouping, actual: &Rows, expected: &Rows) -> (usize, usize) {
    let keys: BTreeSet<&Vec<String>> = actual.keys().chain(expected.keys()).collect();
    let empty = BTreeMap::new();
    let (mut compared, mut quantiles) = (0, 0);
    for key in keys {
        let a = actual.get(key).unwrap_or(&empty);
        let e = expected.get(key).unwrap_or(&empty);
        let columns: BTreeSet<&String> = a.keys().chain(e.keys()).collect();
        for column in columns {
            let zero = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
            let (x, y) = (zero(a.get(column)), zero(e.get(column)));
            let context = || format!("{g:?} {key:?} {column}: API {x}, expected {y}");
            let num = |v: &Value| v.as_f64().unwrap_or(0.0);
            if column.ends_with("_p50_secs") || column.ends_with("_p90_secs") {
                assert_eq!(x.is_null(), y.is_null(), "{}", context());
                quantiles += usize::from(!y.is_null());
                let (x, y) = (num(&x), num(&y));
                assert!((x - y).abs() <= ALPHA * y + 1e-9, "{}", context());
            } else if column.ends_with("_mean_secs")
                || column.ends_with("_rate")
                || column.ends_with("_compliance")
                || column == "survey_score_mean"
            {
                assert_eq!(x.is_null(), y.is_null(), "{}", context());
                let (x, y) = (num(&x), num(&y));
                assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{}", context());
            } else {
                assert_eq!(
                    x.as_i64().unwrap_or(0),
                    y.as_i64().unwrap_or(0),
                    "{}",
                    context()
                );
            }
            compared += 1;
        }
    }
    (compared, quantiles)
}

// ---------------------------------------------------------------------------
// The same figures, straight from the events table
// ---------------------------------------------------------------------------

/// Per stream, each event with what was true after it (the last value set
/// by an earlier or this event, by stream version) and before it.
const PREPARE: &str = r#"
CREATE TEMP TABLE x_tev AS
WITH e AS (
    SELECT stream_id AS id, stream_version AS v, event_type AS type, data,
           (data->>'at')::timestamptz AS at,
           CASE WHEN event_type IN ('ticket.opened', 'ticket.priority_changed') THEN data->>'priority' END AS set_prio,
           data->>'status' AS set_status,
           CASE event_type WHEN 'ticket.expert_assigned' THEN data->>'expert_id' WHEN 'ticket.rejected' THEN '' END AS set_expert
    FROM events WHERE tenant_id = 'acme' AND stream_type = 'ticket'
), g AS (
    SELECT *, count(set_prio) OVER w AS pg, count(set_status) OVER w AS sg, count(set_expert) OVER w AS eg
    FROM e WINDOW w AS (PARTITION BY id ORDER BY v)
), s AS (
    SELECT *, first_value(set_prio) OVER (PARTITION BY id, pg ORDER BY v) AS prio,
              first_value(set_status) OVER (PARTITION BY id, sg ORDER BY v) AS status,
              first_value(set_expert) OVER (PARTITION BY id, eg ORDER BY v) AS expert
    FROM g
)
SELECT id, v, type, data, at, (at AT TIME ZONE 'UTC')::date AS day, prio, status, coalesce(expert, '') AS expert,
       lag(prio) OVER w AS prio_before, lag(status) OVER w AS status_before,
       first_value(data->>'category') OVER w AS category,
       first_value(data->>'product') OVER w AS product,
       first_value(at) OVER w AS opened_at
FROM s WINDOW w AS (PARTITION BY id ORDER BY v);
CREATE INDEX ON x_tev (id, v);
ANALYZE x_tev;

-- Stage completions: first assignment; first response (acceptance, or a
-- comment by the expert holding the ticket); the last resolution when no
-- reopen follows it. Breached: a breach of the stage was recorded.
CREATE TEMP TABLE x_stage AS
WITH c AS (
    (SELECT DISTINCT ON (id) id, 'assign' AS stage, day, prio, category, product, at, opened_at
     FROM x_tev WHERE type = 'ticket.expert_assigned' ORDER BY id, v)
    UNION ALL
    (SELECT DISTINCT ON (id) id, 'first_response', day, prio, category, product, at, opened_at
     FROM x_tev
     WHERE type = 'ticket.accepted' OR (type = 'ticket.commented' AND data->>'author_id' = expert)
     ORDER BY id, v)
    UNION ALL
    (SELECT id, 'resolve', day, prio, category, product, at, opened_at FROM x_tev r
     WHERE type = 'ticket.resolved'
       AND NOT EXISTS (SELECT 1 FROM x_tev o WHERE o.id = r.id AND o.v > r.v AND o.type = 'ticket.reopened'))
)
SELECT c.*, (extract(epoch FROM at - opened_at) * 1000)::bigint AS ms,
       EXISTS (SELECT 1 FROM x_tev b WHERE b.id = c.id AND b.type = 'ticket.sla_breached'
               AND b.data->>'stage' = c.stage) AS breached
FROM c;

-- Unresolved tickets: +1 / -1 as an event changes whether the ticket is
-- unresolved, under its priority before and after.
CREATE TEMP TABLE x_backlog AS
WITH t AS (
    SELECT day, category, product,
           (status NOT IN ('resolved', 'closed'))::int
               - coalesce((status_before NOT IN ('resolved', 'closed'))::int, 0) AS delta
    FROM x_tev
)
SELECT day, 'all' AS dim, '' AS value, delta FROM t
UNION ALL
SELECT day, 'category', category, delta FROM t
UNION ALL
SELECT day, 'product', product, delta FROM t
UNION ALL
SELECT day, 'priority', prio_before, -1 FROM x_tev WHERE status_before NOT IN ('resolved', 'closed')
UNION ALL
SELECT day, 'priority', prio, 1 FROM x_tev WHERE status NOT IN ('resolved', 'closed');

-- Experts: assignments on their day; acceptances and rejections on the
-- day of the assignment they answer; resolutions timed from it.
CREATE TEMP TABLE x_experts AS
SELECT day, data->>'expert_id' AS expert, 1 AS assigned, 0 AS accepted, 0 AS rejected
FROM x_tev WHERE type = 'ticket.expert_assigned'
UNION ALL
SELECT a.day, t.data->>'expert_id', 0, (t.type = 'ticket.accepted')::int, (t.type = 'ticket.rejected')::int
FROM x_tev t
JOIN LATERAL (SELECT day FROM x_tev a WHERE a.id = t.id AND a.v < t.v AND a.type = 'ticket.expert_assigned'
              ORDER BY a.v DESC LIMIT 1) a ON true
WHERE t.type IN ('ticket.accepted', 'ticket.rejected');

CREATE TEMP TABLE x_resolutions AS
SELECT t.day, t.data->>'expert_id' AS expert, (extract(epoch FROM t.at - a.at) * 1000)::bigint AS ms
FROM x_tev t
JOIN LATERAL (SELECT at FROM x_tev a WHERE a.id = t.id AND a.v < t.v AND a.type = 'ticket.expert_assigned'
              ORDER BY a.v DESC LIMIT 1) a ON true
WHERE t.type = 'ticket.resolved';

-- Leads: owner and stage after each event.
CREATE TEMP TABLE x_lev AS
WITH e AS (
    SELECT stream_id AS id, stream_version AS v, event_type AS type, data,
           (data->>'at')::timestamptz AS at,
           CASE WHEN event_type = 'lead.owner_assigned' THEN data->>'owner' END AS set_owner,
           data->>'stage' AS set_stage
    FROM events WHERE tenant_id = 'acme' AND stream_type = 'lead'
), g AS (
    SELECT *, count(set_owner) OVER w AS og, count(set_stage) OVER w AS sg
    FROM e WINDOW w AS (PARTITION BY id ORDER BY v)
), s AS (
    SELECT *, coalesce(first_value(set_owner) OVER (PARTITION BY id, og ORDER BY v), 'none') AS owner,
              first_value(set_stage) OVER (PARTITION BY id, sg ORDER BY v) AS stage
    FROM g
)
SELECT id, v, type, data, at, (at AT TIME ZONE 'UTC')::date AS day, owner, stage,
       lag(owner) OVER w AS owner_before, lag(stage) OVER w AS stage_before,
       first_value(data->'estimated_value'->>'currency') OVER w AS currency,
       first_value((data->'estimated_value'->>'amount_minor')::bigint) OVER w AS value
FROM s WINDOW w AS (PARTITION BY id ORDER BY v);
CREATE INDEX ON x_lev (id, v);

-- Stage moves (the capture is the move into captured), with the time
-- spent in the stage left.
CREATE TEMP TABLE x_moves AS
WITH m AS (
    SELECT id, v, at, day, owner, currency, value, stage AS to_stage, stage_before AS from_stage,
           data->>'outcome' AS outcome
    FROM x_lev
    WHERE type = 'lead.captured' OR (data ? 'stage' AND data->>'stage' <> stage_before)
)
SELECT *, (extract(epoch FROM at - lag(at) OVER (PARTITION BY id ORDER BY v)) * 1000)::bigint AS ms,
       array_position(ARRAY['captured', 'qualified', 'serviceability_checked', 'design', 'design_approval',
                            'implementation', 'testing', 'support', 'closed'], to_stage)
     > array_position(ARRAY['captured', 'qualified', 'serviceability_checked', 'design', 'design_approval',
                            'implementation', 'testing', 'support', 'closed'], from_stage) AS forward
FROM m;

-- Approvals: each level's opening, closing and deadline.
CREATE TEMP TABLE x_aev AS
SELECT stream_id AS id, stream_version AS v, event_type AS type, data,
       (data->>'at')::timestamptz AS at, ((data->>'at')::timestamptz AT TIME ZONE 'UTC')::date AS day,
       first_value(data->'subject'->>'kind') OVER w AS kind,
       first_value((data->>'at')::timestamptz) OVER w AS requested_at,
       first_value(data->'levels') OVER w AS levels
FROM events WHERE tenant_id = 'acme' AND stream_type = 'approval'
WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version);
CREATE INDEX ON x_aev (id, v);
ANALYZE x_aev;

CREATE TEMP TABLE x_levels AS
WITH opened AS (
    SELECT id, kind, 0 AS level, at AS opened_at, levels FROM x_aev WHERE type = 'approval.requested'
    UNION ALL
    SELECT id, kind, (data->>'next_level')::int, at, levels FROM x_aev
    WHERE type = 'approval.level_completed' AND data->>'next_level' IS NOT NULL
), closed AS (
    SELECT id, (data->>'level')::int AS level, at AS closed_at, 'approved' AS how
    FROM x_aev WHERE type = 'approval.level_completed'
    UNION ALL
    SELECT id, (data->>'level')::int, at, 'rejected' FROM x_aev WHERE type = 'approval.rejected'
    UNION ALL
    SELECT id, (data->>'level')::int, at, 'changes_requested' FROM x_aev WHERE type = 'approval.changes_requested'
    UNION ALL
    SELECT c.id, (SELECT max(o.level) FROM opened o WHERE o.id = c.id), c.at, 'cancelled'
    FROM x_aev c WHERE type = 'approval.cancelled'
)
SELECT o.id, o.kind, o.level, o.opened_at, (o.opened_at AT TIME ZONE 'UTC')::date AS opened_day,
       c.closed_at, (c.closed_at AT TIME ZONE 'UTC')::date AS closed_day, c.how,
       ((o.opened_at + make_interval(secs => (o.levels->o.level->>'due_secs')::double precision))
           AT TIME ZONE 'UTC')::date AS due_day,
       (extract(epoch FROM c.closed_at - o.opened_at) * 1000)::bigint AS ms
FROM opened o LEFT JOIN closed c USING (id, level);

-- Contracts: value, currency and end date in force after each event.
CREATE TEMP TABLE x_cev AS
WITH e AS (
    SELECT stream_id AS id, stream_version AS v, event_type AS type, data,
           (data->>'at')::timestamptz AS at,
           CASE event_type WHEN 'contract.drafted' THEN data->'value'
                           WHEN 'contract.amended' THEN data->'terms'->'value' END AS set_money,
           CASE event_type WHEN 'contract.drafted' THEN data->>'end_date'
                           WHEN 'contract.amended' THEN data->'terms'->>'end_date'
                           WHEN 'contract.renewed' THEN data->>'new_end_date' END AS set_end
    FROM events WHERE tenant_id = 'acme' AND stream_type = 'contract'
), g AS (
    SELECT *, count(set_money) OVER w AS mg, count(set_end) OVER w AS eg
    FROM e WINDOW w AS (PARTITION BY id ORDER BY v)
)
SELECT id, v, type, at, (at AT TIME ZONE 'UTC')::date AS day,
       first_value(set_money) OVER (PARTITION BY id, mg ORDER BY v)->>'currency' AS currency,
       (first_value(set_money) OVER (PARTITION BY id, mg ORDER BY v)->>'amount_minor')::bigint AS value,
       (first_value(set_end) OVER (PARTITION BY id, eg ORDER BY v))::date AS end_date,
       first_value(data->>'owner') OVER (PARTITION BY id ORDER BY v) AS owner
FROM g;
CREATE INDEX ON x_cev (id, v);
ANALYZE x_cev;

CREATE TEMP TABLE x_active AS
SELECT a.id, a.owner, a.currency, a.value, a.day AS activated,
       (SELECT min(x.day) FROM x_cev x WHERE x.id = a.id AND x.type IN ('contract.terminated', 'contract.expired')) AS ended
FROM x_cev a WHERE a.type = 'contract.activated';
"#;

async fn prepare(sql: &mut PgConnection) {
    sqlx::raw_sql(PREPARE).execute(&mut *sql).await.unwrap();
    sqlx::query("ANALYZE").execute(&mut *sql).await.unwrap();
}

/// The period expression over `day`, and the end of that period.
fn periods(g: &Grouping) -> (&'static str, &'static str) {
    match g.grain {
        Some("day") => ("day", "b"),
        Some("week") => ("date_trunc('week', day)::date", "b + 6"),
        Some("month") => (
            "date_trunc('month', day)::date",
            "(date_trunc('month', b) + interval '1 month' - interval '1 day')::date",
        ),
        _ => ("NULL::date", "$2::date"),
    }
}

/// Runs `query` (with `{p}` the period over `day` and `{v}` the dimension
/// value expression) over `[$1, $2]`; each row is `key text[]` and
/// `figures jsonb`, merged into `rows`.
async fn merge(
    sql: &mut PgConnection,
    g: &Grouping,
    rows: &mut Rows,
    query: &str,
    dims: &[(&str, &str)],
) {
    let (p, e) = periods(g);
    let v = g.dim.map_or("''".to_owned(), |d| {
        dims.iter()
            .find(|(name, _)| *name == d)
            .unwrap_or_else(|| panic!("{d}"))
            .1
            .to_owned()
    });
    let text = query.replace("{p}", p).replace("{e}", e).replace("{v}", &v);
    let found: Vec<(Vec<String>, Value)> = sqlx::query_as(&text)
        .bind(g.from)
        .bind(g.to)
        .fetch_all(&mut *sql)
        .await
        .unwrap_or_else(|err| panic!("{err}: {text}"));
    for (key, figures) in found {
        let row = rows.entry(key).or_default();
        for (k, v) in figures.as_object().unwrap() {
            row.insert(k.clone(), v.clone());
        }
    }
}

fn ratio(n: &Value, d: &Value) -> Value {
    let (n, d) = (n.as_i64().unwrap_or(0), d.as_i64().unwrap_or(0));
    if d == 0 {
        Value::Null
    } else {
        json!(n as f64 / d as f64)
    }
}

fn int(row: &BTreeMap<String, Value>, k: &str) -> i64 {
    row.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// `name_{count,mean_secs,p50_secs,p90_secs}` from `name_count`,
/// `name_sum_ms`, `name_p50_ms`, `name_p90_ms`.
fn finish_durations(row: &mut BTreeMap<String, Value>, name: &str) {
    let count = int(row, &format!("{name}_count"));
    let sum = int(row, &format!("{name}_sum_ms"));
    row.remove(&format!("{name}_sum_ms"));
    row.insert(format!("{name}_count"), json!(count));
    row.insert(
        format!("{name}_mean_secs"),
        if count == 0 {
            Value::Null
        } else {
            json!(sum as f64 / count as f64 / 1000.0)
        },
    );
    for q in ["p50", "p90"] {
        let ms = row.remove(&format!("{name}_{q}_ms")).unwrap_or(Value::Null);
        row.insert(
            format!("{name}_{q}_secs"),
            ms.as_f64().map_or(Value::Null, |ms| json!(ms / 1000.0)),
        );
    }
}

async fn expected_rows(sql: &mut PgConnection, g: &Grouping) -> Rows {
    let mut rows = Rows::new();
    match g.report {
        "tickets" => {
            let dims = [
                ("priority", "prio"),
                ("category", "category"),
                ("product", "product"),
            ];
            merge(
                sql,
                g,
                &mut rows,
                r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}], jsonb_build_object(
                    'opened', count(*) FILTER (WHERE type = 'ticket.opened'),
                    'assigned', count(*) FILTER (WHERE type = 'ticket.expert_assigned'),
                    'rejected', count(*) FILTER (WHERE type = 'ticket.rejected'),
                    'resolved', count(*) FILTER (WHERE type = 'ticket.resolved'),
                    'reopened', count(*) FILTER (WHERE type = 'ticket.reopened'),
                    'closed', count(*) FILTER (WHERE type = 'ticket.closed'),
                    'escalated', count(*) FILTER (WHERE type = 'ticket.escalated'))
                FROM x_tev WHERE day BETWEEN $1 AND $2 GROUP BY 1"#,
                &dims,
            )
            .await;
            for stage in ["assign", "first_response", "resolve"] {
                let name = match stage {
                    "assign" => "time_to_assign",
                    "first_response" => "time_to_first_response",
                    _ => "time_to_resolve",
                };
                merge(
                    sql,
                    g,
                    &mut rows,
                    &format!(
                        r#"
                    SELECT ARRAY[coalesce(({{p}})::text, ''), {{v}}], jsonb_build_object(
                        '{name}_count', count(*),
                        '{name}_sum_ms', sum(ms),
                        '{name}_p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY ms),
                        '{name}_p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY ms),
                        'sla_{stage}_met', count(*) FILTER (WHERE NOT breached))
                    FROM x_stage WHERE stage = '{stage}' AND day BETWEEN $1 AND $2 GROUP BY 1"#
                    ),
                    &dims,
                )
                .await;
                merge(
                    sql,
                    g,
                    &mut rows,
                    &format!(
                        r#"
                    SELECT ARRAY[coalesce(({{p}})::text, ''), {{v}}],
                           jsonb_build_object('sla_{stage}_breached', count(*))
                    FROM (SELECT day, data->>'priority' AS prio, category, product FROM x_tev
                          WHERE type = 'ticket.sla_breached' AND data->>'stage' = '{stage}') b
                    WHERE day BETWEEN $1 AND $2 GROUP BY 1"#
                    ),
                    &dims,
                )
                .await;
            }
            {
                let dim = g.dim.unwrap_or("all");
                merge(sql, g, &mut rows, &format!(r#"
                    WITH ends AS (SELECT DISTINCT {{p}} AS b FROM (SELECT g::date AS day FROM generate_series($1::date, $2::date, interval '1 day') AS g) AS s),
                         d AS (SELECT day, value, sum(delta) AS delta FROM x_backlog WHERE dim = '{dim}' GROUP BY 1, 2)
                    SELECT ARRAY[coalesce(ends.b::text, ''), d.value], jsonb_build_object('backlog', sum(d.delta))
                    FROM ends JOIN d ON d.day <= least({{e}}, $2::date)
                    GROUP BY ends.b, d.value HAVING sum(d.delta) <> 0"#),
                    &[("priority", "value"), ("category", "value"), ("product", "value")]).await;
            }
            for row in rows.values_mut() {
                for name in [
                    "time_to_assign",
                    "time_to_first_response",
                    "time_to_resolve",
                ] {
                    finish_durations(row, name);
                }
                for stage in ["assign", "first_response", "resolve"] {
                    let met = int(row, &format!("sla_{stage}_met"));
                    let breached = int(row, &format!("sla_{stage}_breached"));
                    row.insert(
                        format!("sla_{stage}_compliance"),
                        ratio(&json!(met), &json!(met + breached)),
                    );
                }
            }
        }
        "experts" => {
            merge(
                sql,
                g,
                &mut rows,
                r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, expert], jsonb_build_object(
                    'assigned', sum(assigned), 'accepted', sum(accepted), 'rejected', sum(rejected))
                FROM x_experts WHERE day BETWEEN $1 AND $2 GROUP BY 1"#,
                &[],
            )
            .await;
            merge(
                sql,
                g,
                &mut rows,
                r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, expert], jsonb_build_object(
                    'tickets_handled', count(*), 'resolution_time_sum_ms', sum(ms),
                    'resolution_time_p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY ms),
                    'resolution_time_p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY ms))
                FROM x_resolutions WHERE day BETWEEN $1 AND $2 GROUP BY 1"#,
                &[],
            )
            .await;
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, data->>'expert_id'], jsonb_build_object(
                    'surveys', count(*), 'score_sum', sum((data->>'score')::int),
                    'survey_score_1', count(*) FILTER (WHERE data->>'score' = '1'),
                    'survey_score_2', count(*) FILTER (WHERE data->>'score' = '2'),
                    'survey_score_3', count(*) FILTER (WHERE data->>'score' = '3'),
                    'survey_score_4', count(*) FILTER (WHERE data->>'score' = '4'),
                    'survey_score_5', count(*) FILTER (WHERE data->>'score' = '5'))
                FROM x_tev WHERE type = 'ticket.survey_answered' AND data->>'expert_id' IS NOT NULL
                  AND day BETWEEN $1 AND $2 GROUP BY 1"#, &[]).await;
            for row in rows.values_mut() {
                let handled = int(row, "tickets_handled");
                row.insert("resolution_time_count".into(), json!(handled));
                finish_durations(row, "resolution_time");
                row.remove("resolution_time_count");
                let rate = ratio(&json!(int(row, "rejected")), &json!(int(row, "assigned")));
                row.insert("rejection_rate".into(), rate);
                let mean = ratio(&json!(int(row, "score_sum")), &json!(int(row, "surveys")));
                row.remove("score_sum");
                row.insert("survey_score_mean".into(), mean);
            }
        }
        "leads/funnel" => {
            let dims = [("owner", "owner")];
            merge(
                sql,
                g,
                &mut rows,
                r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, currency, to_stage],
                       jsonb_build_object('entered', count(*))
                FROM x_moves WHERE day BETWEEN $1 AND $2 GROUP BY 1"#,
                &dims,
            )
            .await;
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, currency, from_stage], jsonb_build_object(
                    'exited', count(*),
                    'advanced', count(*) FILTER (WHERE to_stage <> 'closed' AND forward),
                    'returned', count(*) FILTER (WHERE to_stage <> 'closed' AND NOT forward),
                    'won', count(*) FILTER (WHERE outcome = 'won'),
                    'lost', count(*) FILTER (WHERE outcome = 'lost'),
                    'cancelled', count(*) FILTER (WHERE outcome = 'cancelled'),
                    'won_value_minor', coalesce(sum(value) FILTER (WHERE outcome = 'won'), 0),
                    'lost_value_minor', coalesce(sum(value) FILTER (WHERE outcome = 'lost'), 0),
                    'time_in_stage_count', count(*), 'time_in_stage_sum_ms', sum(ms),
                    'time_in_stage_p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY ms),
                    'time_in_stage_p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY ms))
                FROM x_moves WHERE from_stage IS NOT NULL AND day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            // Leads in each stage at the end of each period: -1 where a
            // lead was before an event, +1 where it is after (closed not
            // counted).
            merge(sql, g, &mut rows, r#"
                WITH d AS (
                    SELECT day, owner_before AS owner, currency, stage_before AS stage, -1 AS delta FROM x_lev
                    WHERE stage_before IS NOT NULL AND stage_before <> 'closed'
                    UNION ALL
                    SELECT day, owner, currency, stage, 1 FROM x_lev WHERE stage <> 'closed'
                ), ends AS (SELECT DISTINCT {p} AS b FROM (SELECT g::date AS day FROM generate_series($1::date, $2::date, interval '1 day') AS g) AS s)
                SELECT ARRAY[coalesce(ends.b::text, ''), {v}, currency, stage], jsonb_build_object('in_stage', sum(delta))
                FROM ends JOIN d ON d.day <= least({e}, $2::date)
                GROUP BY 1 HAVING sum(delta) <> 0"#, &dims).await;
            for row in rows.values_mut() {
                finish_durations(row, "time_in_stage");
                let converted = int(row, "advanced") + int(row, "won");
                let rate = ratio(&json!(converted), &json!(int(row, "exited")));
                row.insert("conversion_rate".into(), rate);
            }
        }
        "approvals" => {
            let dims = [("subject_kind", "kind")];
            // The approvals as a whole (level -1).
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, '-1'], jsonb_build_object(
                    'started', count(*) FILTER (WHERE type = 'approval.requested'),
                    'approved', count(*) FILTER (WHERE type = 'approval.granted'),
                    'rejected', count(*) FILTER (WHERE type = 'approval.rejected'),
                    'changes_requested', count(*) FILTER (WHERE type = 'approval.changes_requested'),
                    'cancelled', count(*) FILTER (WHERE type = 'approval.cancelled'),
                    'escalated', count(*) FILTER (WHERE type = 'approval.escalated'),
                    'cycle_time_sum_ms', coalesce(sum(ms) FILTER (WHERE decided), 0),
                    'cycle_time_p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE decided),
                    'cycle_time_p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY ms) FILTER (WHERE decided))
                FROM (SELECT *, type IN ('approval.granted', 'approval.rejected', 'approval.changes_requested') AS decided,
                             (extract(epoch FROM at - requested_at) * 1000)::bigint AS ms
                      FROM x_aev) a
                WHERE day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            // Each level.
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, level::text], jsonb_build_object('started', count(*))
                FROM (SELECT *, opened_day AS day FROM x_levels) l WHERE day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, level::text], jsonb_build_object(
                    'approved', count(*) FILTER (WHERE how = 'approved'),
                    'rejected', count(*) FILTER (WHERE how = 'rejected'),
                    'changes_requested', count(*) FILTER (WHERE how = 'changes_requested'),
                    'cancelled', count(*) FILTER (WHERE how = 'cancelled'),
                    'cycle_time_sum_ms', coalesce(sum(ms) FILTER (WHERE how <> 'cancelled'), 0),
                    'cycle_time_p50_ms', percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE how <> 'cancelled'),
                    'cycle_time_p90_ms', percentile_disc(0.9) WITHIN GROUP (ORDER BY ms) FILTER (WHERE how <> 'cancelled'))
                FROM (SELECT *, closed_day AS day FROM x_levels WHERE closed_at IS NOT NULL) l
                WHERE day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, data->>'level'], jsonb_build_object('escalated', count(*))
                FROM x_aev WHERE type = 'approval.escalated' AND day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            // Levels past their deadline and still open at each period's
            // end, per level and in all.
            for level in ["level::text", "'-1'"] {
                merge(sql, g, &mut rows, &format!(r#"
                    WITH ends AS (SELECT DISTINCT {{p}} AS b FROM (SELECT g::date AS day FROM generate_series($1::date, $2::date, interval '1 day') AS g) AS s)
                    SELECT ARRAY[coalesce(ends.b::text, ''), {{v}}, {level}], jsonb_build_object('overdue', count(*))
                    FROM ends JOIN x_levels l ON l.due_day <= least({{e}}, $2::date)
                        AND (l.closed_day IS NULL OR l.closed_day > least({{e}}, $2::date))
                    GROUP BY 1"#), &dims).await;
            }
            for row in rows.values_mut() {
                let decided =
                    int(row, "approved") + int(row, "rejected") + int(row, "changes_requested");
                row.insert("cycle_time_count".into(), json!(decided));
                finish_durations(row, "cycle_time");
                let rate = ratio(
                    &json!(int(row, "rejected") + int(row, "changes_requested")),
                    &json!(decided),
                );
                row.insert("rejection_rate".into(), rate);
            }
        }
        "contracts" => {
            let dims = [("owner", "owner")];
            merge(sql, g, &mut rows, r#"
                SELECT ARRAY[coalesce(({p})::text, ''), {v}, currency], jsonb_build_object(
                    'signed', count(*) FILTER (WHERE type = 'contract.signed'),
                    'signed_value_minor', coalesce(sum(value) FILTER (WHERE type = 'contract.signed'), 0),
                    'renewed', count(*) FILTER (WHERE type = 'contract.renewed'),
                    'renewed_value_minor', coalesce(sum(value) FILTER (WHERE type = 'contract.renewed'), 0),
                    'terminated', count(*) FILTER (WHERE type = 'contract.terminated'),
                    'terminated_value_minor', coalesce(sum(value) FILTER (WHERE type = 'contract.terminated'), 0),
                    'expired', count(*) FILTER (WHERE type = 'contract.expired'),
                    'expired_value_minor', coalesce(sum(value) FILTER (WHERE type = 'contract.expired'), 0))
                FROM x_cev WHERE day BETWEEN $1 AND $2 GROUP BY 1"#, &dims).await;
            // As of each period's end: active contracts, and those whose
            // end date in force then is within 30 / 60 / 90 days.
            merge(sql, g, &mut rows, r#"
                WITH ends AS (SELECT DISTINCT {p} AS b FROM (SELECT g::date AS day FROM generate_series($1::date, $2::date, interval '1 day') AS g) AS s),
                     a AS (
                         SELECT ends.b, least({e}, $2::date) AS d, x.*,
                                (SELECT c.end_date FROM x_cev c WHERE c.id = x.id AND c.day <= least({e}, $2::date)
                                 ORDER BY c.v DESC LIMIT 1) AS end_date
                         FROM ends JOIN x_active x ON x.activated <= least({e}, $2::date)
                             AND (x.ended IS NULL OR x.ended > least({e}, $2::date))
                     )
                SELECT ARRAY[coalesce(b::text, ''), {v}, currency], jsonb_build_object(
                    'active', count(*), 'active_value_minor', sum(value),
                    'due_30_days', count(*) FILTER (WHERE end_date > d AND end_date <= d + 30),
                    'due_30_days_value_minor', coalesce(sum(value) FILTER (WHERE end_date > d AND end_date <= d + 30), 0),
                    'due_60_days', count(*) FILTER (WHERE end_date > d AND end_date <= d + 60),
                    'due_60_days_value_minor', coalesce(sum(value) FILTER (WHERE end_date > d AND end_date <= d + 60), 0),
                    'due_90_days', count(*) FILTER (WHERE end_date > d AND end_date <= d + 90),
                    'due_90_days_value_minor', coalesce(sum(value) FILTER (WHERE end_date > d AND end_date <= d + 90), 0))
                FROM a GROUP BY 1"#, &dims).await;
        }
        other => panic!("{other}"),
    }
    rows
}
