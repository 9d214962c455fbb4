//! The report endpoints through HTTP: JSON and CSV, read-your-writes with
//! the position, who may read which report, tenants, parameter errors.
//! (Whether the figures are right is `reports_check.rs`.)

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

const REPORTS: [&str; 5] = [
    "tickets",
    "experts",
    "leads/funnel",
    "approvals",
    "contracts",
];

fn ticket(priority: &str) -> Value {
    json!({
        "contact": { "name": "Ann Customer", "email": "ann@example.com" },
        "product": "fibre-1000",
        "category": "connectivity",
        "priority": priority,
        "required_skill": "networking",
        "title": "Packet loss",
        "description": "Loss of 2-5 % during business hours since Monday."
    })
}

/// Opens a ticket in `tenant`; returns the command's position.
async fn open(app: &TestApp, tenant: &str, priority: &str) -> u64 {
    let customer = token(tenant, &Uuid::now_v7().to_string(), &["customer"]);
    let response = post(app, &customer, "/api/v1/tickets", ticket(priority)).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["position"].as_u64().unwrap()
}

#[tokio::test]
async fn a_report_answers_json_or_csv_and_reflects_a_commands_position() {
    let app = TestApp::spawn().await;
    let before = Utc::now().date_naive().to_string();
    open(&app, "acme", "P1").await;
    let position = open(&app, "acme", "P3").await;
    let analyst = token("acme", "ann", &["analyst"]);

    // Given two tickets opened today, when the analyst asks the default
    // report (the last 30 days per day) as of their position ...
    let response = get(
        &app,
        &analyst,
        &format!("/api/v1/reports/tickets?min_position={position}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let reflected: u64 = response.headers()["x-chronicle-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reflected >= position);
    let body: Value = response.json().await.unwrap();
    let today = Utc::now().date_naive().to_string();
    if today != before {
        // The test ran across midnight (UTC); the row may be yesterday's.
        return;
    }
    // ... then today's row counts both, and they are the backlog.
    assert_eq!(body["report"], "tickets");
    assert_eq!(body["to"], today.as_str());
    assert_eq!(body["group_by"], json!(["day"]));
    assert!(body["position"].as_u64().unwrap() >= position);
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["period"], today.as_str());
    assert_eq!(rows[0]["opened"], 2);
    assert_eq!(rows[0]["backlog"], 2);
    assert_eq!(rows[0]["time_to_assign_count"], 0);
    assert_eq!(rows[0]["time_to_assign_p50_secs"], Value::Null);
    assert_eq!(rows[0]["sla_assign_compliance"], Value::Null);

    // Per priority, as CSV.
    let response = app
        .client
        .get(app.url("/api/v1/reports/tickets?group_by=priority"))
        .bearer_auth(&analyst)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(response.headers().contains_key("x-chronicle-position"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv:?}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..3], ["priority", "opened", "assigned"]);
    assert!(header.contains(&"time_to_resolve_p90_secs"));
    let backlog = header.iter().position(|c| *c == "backlog").unwrap();
    let p50 = header
        .iter()
        .position(|c| *c == "time_to_assign_p50_secs")
        .unwrap();
    for (line, priority) in lines[1..3].iter().zip(["P1", "P3"]) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len());
        assert_eq!((cells[0], cells[1], cells[backlog]), (priority, "1", "1"));
        assert_eq!(cells[p50], "", "null is an empty cell");
    }
    assert_eq!(lines[3], "");

    // One total for a range of whole months.
    let body: Value = get(
        &app,
        &analyst,
        "/api/v1/reports/tickets?from=2020-01-01&to=2020-12-31&group_by=",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["rows"], json!([]), "nothing then");
    assert_eq!(body["group_by"], json!([]));
}

#[tokio::test]
async fn each_report_is_read_by_the_roles_of_the_role_matrix() {
    let app = TestApp::spawn().await;
    let with = |roles: &[&str]| token("acme", &Uuid::now_v7().to_string(), roles);
    let allowed: [(&str, &[&str]); 6] = [
        ("manager", &REPORTS),
        ("analyst", &REPORTS),
        ("admin", &REPORTS),
        ("sales", &["leads/funnel", "contracts"]),
        ("expert", &[]),
        ("customer", &[]),
    ];
    for (role, reports) in allowed {
        let token = with(&[role]);
        for report in REPORTS {
            let response = get(&app, &token, &format!("/api/v1/reports/{report}")).await;
            if reports.contains(&report) {
                assert_eq!(response.status(), 200, "{role} {report}");
            } else {
                let body = assert_error(response, 403, "auth.forbidden").await;
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("analyst"),
                    "{body}"
                );
            }
        }
    }
    let response = app
        .client
        .get(app.url("/api/v1/reports/tickets"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "auth.missing_token").await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_figures() {
    let app = TestApp::spawn().await;
    open(&app, "acme", "P2").await;
    open(&app, "acme", "P2").await;
    let position = open(&app, "globex", "P2").await;
    for (tenant, opened) in [("acme", 2), ("globex", 1), ("initech", 0)] {
        let analyst = token(tenant, "ann", &["analyst"]);
        let body: Value = get(
            &app,
            &analyst,
            &format!("/api/v1/reports/tickets?group_by=&min_position={position}"),
        )
        .await
        .json()
        .await
        .unwrap();
        let total: i64 = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["opened"].as_i64().unwrap())
            .sum();
        assert_eq!(total, opened, "{tenant}: {body}");
    }
}

#[tokio::test]
async fn bad_parameters_are_400s_that_say_what_is_accepted() {
    let app = TestApp::spawn().await;
    let analyst = token("acme", "ann", &["analyst"]);
    for (query, needle) in [
        ("tickets?from=2026-13-01", "from must be a date"),
        ("tickets?to=yesterday", "to must be a date"),
        (
            "tickets?from=1969-12-31&to=1970-01-01",
            "from must be a date from 1970-01-01",
        ),
        ("tickets?from=2026-05-01&to=2026-04-30", "is after"),
        ("tickets?from=2000-01-01&to=2026-01-01", "at most 3660 days"),
        ("tickets?group_by=owner", "group_by takes"),
        (
            "tickets?group_by=day,week",
            "at most one of day, week, month",
        ),
        ("experts?group_by=priority", "day, week, month"),
        ("leads/funnel?group_by=owner,owner", "at most one of owner"),
        (
            "contracts?limit=5",
            "reports take: from, to, group_by, min_position",
        ),
        ("approvals?min_position=abc", "min_position"),
    ] {
        let response = get(&app, &analyst, &format!("/api/v1/reports/{query}")).await;
        let body = assert_error(response, 400, "invalid_query").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query}: {message}");
    }
}
