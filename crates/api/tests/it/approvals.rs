//! Approvals through HTTP: multi-level decisions by eligible approvers,
//! rejections, requests for changes, cancellation, escalation, each error
//! class and the auditors' reads.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

struct People {
    sales: String,
    approver_a: String,
    approver_b: String,
    /// The named approver of the second level.
    director_id: Uuid,
    director: String,
    manager: String,
    auditor: String,
    customer: String,
}

impl People {
    fn new() -> Self {
        let user = || Uuid::now_v7().to_string();
        let director_id = Uuid::now_v7();
        Self {
            sales: token("acme", &user(), &["sales"]),
            approver_a: token("acme", &user(), &["approver"]),
            approver_b: token("acme", &user(), &["approver"]),
            director_id,
            director: token("acme", &director_id.to_string(), &["sales"]),
            manager: token("acme", &user(), &["manager"]),
            auditor: token("acme", &user(), &["auditor"]),
            customer: token("acme", &user(), &["customer"]),
        }
    }
}

/// Two levels: two of the approvers, then the director by name.
fn two_levels(people: &People) -> Value {
    json!({
        "subject": { "kind": "contract", "id": Uuid::now_v7() },
        "value": { "amount_minor": 5_000_000, "currency": "EUR" },
        "levels": [
            { "approvers": [{ "role": "approver" }], "required": 2, "due_secs": 86_400 },
            { "approvers": [{ "user_id": people.director_id }], "required": 1 }
        ]
    })
}

fn one_level(due_secs: Option<u64>) -> Value {
    json!({
        "subject": { "kind": "lead_design", "id": Uuid::now_v7() },
        "levels": [{ "approvers": [{ "role": "approver" }], "required": 1, "due_secs": due_secs }]
    })
}

async fn request(app: &TestApp, token: &str, body: Value) -> String {
    let response = post(app, token, "/api/v1/approvals", body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn decide(
    app: &TestApp,
    token: &str,
    id: &str,
    decision: &str,
    comment: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "decision": decision });
    if let Some(comment) = comment {
        body["comment"] = json!(comment);
    }
    post(
        app,
        token,
        &format!("/api/v1/approvals/{id}/decisions"),
        body,
    )
    .await
}

async fn state_at(app: &TestApp, token: &str, id: &str, query: &str) -> Value {
    let response = get(app, token, &format!("/api/v1/approvals/{id}?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = get(app, token, &format!("/api/v1/approvals/{id}/history")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_two_level_approval_is_granted_by_eligible_approvers() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let response = post(
        &app,
        &people.sales,
        "/api/v1/approvals",
        two_levels(&people),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/approvals/{id}"));
    assert!(body["position"].as_u64().unwrap() > 0);

    let first = decide(
        &app,
        &people.approver_a,
        &id,
        "approve",
        Some("Fine by me."),
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["etag"], "\"2\"");
    // The same approver again, at the same level.
    assert_error(
        decide(&app, &people.approver_a, &id, "approve", None).await,
        409,
        "approval.already_decided",
    )
    .await;
    // Neither listed nor holding a listed role.
    assert_error(
        decide(&app, &people.sales, &id, "approve", None).await,
        409,
        "approval.not_eligible",
    )
    .await;
    assert_error(
        decide(&app, &people.director, &id, "approve", None).await,
        409,
        "approval.not_eligible",
    )
    .await;
    // The second approval completes level 0 and opens level 1.
    let second = decide(&app, &people.approver_b, &id, "approve", None).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["version"], 4);
    // Level 1 is the director's alone.
    assert_error(
        decide(&app, &people.approver_b, &id, "approve", None).await,
        409,
        "approval.not_eligible",
    )
    .await;
    let last = decide(&app, &people.director, &id, "approve", None).await;
    assert_eq!(last.status(), 200);
    let last: Value = last.json().await.unwrap();
    assert_eq!(last["version"], 7);

    let events = history(&app, &people.auditor, &id).await;
    assert_eq!(
        types(&events),
        [
            "approval.requested",
            "approval.decision_recorded",
            "approval.decision_recorded",
            "approval.level_completed",
            "approval.decision_recorded",
            "approval.level_completed",
            "approval.granted"
        ]
    );
    assert_eq!(
        events[4]["data"]["approver"],
        people.director_id.to_string()
    );
    let granted = state_at(&app, &people.auditor, &id, "at_version=7").await;
    assert_eq!(granted["status"], "granted");
    assert_eq!(granted["current_level"], 1);
    assert_eq!(granted["levels"][0]["completed"], true);
    assert_eq!(
        granted["levels"][0]["approvals"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        granted["levels"][1]["approvers"],
        json!([{ "user_id": people.director_id }])
    );
    // A granted approval takes no more decisions.
    assert_error(
        decide(
            &app,
            &people.director,
            &id,
            "reject",
            Some("Changed my mind."),
        )
        .await,
        409,
        "approval.closed",
    )
    .await;
}

#[tokio::test]
async fn rejection_request_for_changes_and_cancellation_end_an_approval() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let rejected = request(&app, &people.sales, one_level(None)).await;
    let error = assert_error(
        decide(&app, &people.approver_a, &rejected, "reject", None).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["error"]["details"]["fields"]["comment"].is_string());
    let r = decide(
        &app,
        &people.approver_a,
        &rejected,
        "reject",
        Some("Too expensive."),
    )
    .await;
    assert_eq!(r.status(), 200);
    let state = state_at(&app, &people.manager, &rejected, "at_version=3").await;
    assert_eq!(state["status"], "rejected");
    let events = history(&app, &people.auditor, &rejected).await;
    assert_eq!(events[2]["type"], "approval.rejected");
    assert_eq!(events[2]["data"]["comment"], "Too expensive.");

    let changes = request(&app, &people.sales, one_level(None)).await;
    let r = decide(
        &app,
        &people.approver_b,
        &changes,
        "request_changes",
        Some("Add the site survey."),
    )
    .await;
    assert_eq!(r.status(), 200);
    let state = state_at(&app, &people.auditor, &changes, "at_version=3").await;
    assert_eq!(state["status"], "changes_requested");

    let cancelled = request(&app, &people.manager, one_level(None)).await;
    let path = format!("/api/v1/approvals/{cancelled}/cancel");
    let r = post(
        &app,
        &people.sales,
        &path,
        json!({ "reason": "Deal withdrawn" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_error(
        post(&app, &people.sales, &path, json!({})).await,
        409,
        "approval.closed",
    )
    .await;
    assert_error(
        decide(&app, &people.approver_a, &cancelled, "approve", None).await,
        409,
        "approval.closed",
    )
    .await;
    let state = state_at(&app, &people.auditor, &cancelled, "at_version=2").await;
    assert_eq!(state["status"], "cancelled");
}

#[tokio::test]
async fn an_overdue_level_is_escalated_once_by_a_manager() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let undated = request(&app, &people.sales, one_level(None)).await;
    assert_error(
        post(
            &app,
            &people.manager,
            &format!("/api/v1/approvals/{undated}/escalate"),
            json!({}),
        )
        .await,
        409,
        "approval.no_deadline",
    )
    .await;

    let id = request(&app, &people.sales, one_level(Some(1))).await;
    let path = format!("/api/v1/approvals/{id}/escalate");
    assert_error(
        post(&app, &people.sales, &path, json!({})).await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        post(&app, &people.manager, &path, json!({ "level": 3 })).await,
        409,
        "approval.wrong_level",
    )
    .await;
    // Due one second after it opened: poll until the domain agrees.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = post(&app, &people.manager, &path, json!({})).await;
        if r.status() == 200 {
            break;
        }
        assert_error(r, 409, "approval.not_due").await;
        assert!(Instant::now() < deadline, "never became due");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_error(
        post(&app, &people.manager, &path, json!({ "level": 0 })).await,
        409,
        "approval.already_escalated",
    )
    .await;
    let state = state_at(&app, &people.auditor, &id, "at_version=2").await;
    assert_eq!(state["levels"][0]["escalated"], true);
    assert_eq!(state["status"], "open");
    let events = history(&app, &people.auditor, &id).await;
    assert_eq!(types(&events), ["approval.requested", "approval.escalated"]);
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let body = json!({
        "subject": { "kind": "spaceship", "id": Uuid::now_v7() },
        "value": { "amount_minor": 100, "currency": "eur" },
        "levels": [
            { "approvers": [{ "role": "wizard" }], "required": 1 },
            { "approvers": [{ "user_id": Uuid::now_v7(), "role": "approver" }], "required": 1 },
            { "approvers": [{ "user_id": Uuid::now_v7() }], "required": 2 },
            { "approvers": [{ "role": "approver" }], "required": 0 },
            { "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 0 }
        ]
    });
    let error = assert_error(
        post(&app, &people.sales, "/api/v1/approvals", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in [
        "subject.kind",
        "value.currency",
        "levels[0]",
        "levels[1].approvers[0]",
        "levels[2]",
        "levels[3]",
        "levels[4]",
    ] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    let error = assert_error(
        post(
            &app,
            &people.sales,
            "/api/v1/approvals",
            json!({ "subject": { "kind": "contract", "id": Uuid::now_v7() }, "levels": [] }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["error"]["details"]["fields"]["levels"].is_string());
    assert_error(
        post(
            &app,
            &people.sales,
            "/api/v1/approvals",
            json!({ "surprise": 1 }),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;

    let id = request(&app, &people.sales, one_level(None)).await;
    let error = assert_error(
        decide(&app, &people.approver_a, &id, "maybe", None).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["error"]["details"]["fields"]["decision"].is_string());
    assert_error(
        post(
            &app,
            &people.approver_a,
            &format!("/api/v1/approvals/{id}/decisions"),
            json!({}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        post(
            &app,
            &people.approver_a,
            &format!("/api/v1/approvals/{id}/decisions"),
            json!({ "decision": "approve", "comment": " " }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        post(
            &app,
            &people.manager,
            &format!("/api/v1/approvals/{id}/teleport"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
}

#[tokio::test]
async fn roles_tenants_and_if_match_are_enforced() {
    let app = TestApp::spawn().await;
    let people = People::new();
    for token in [&people.customer, &people.approver_a, &people.auditor] {
        assert_error(
            post(&app, token, "/api/v1/approvals", one_level(None)).await,
            403,
            "auth.forbidden",
        )
        .await;
    }
    let id = request(&app, &people.sales, one_level(None)).await;
    assert_error(
        post(
            &app,
            &people.approver_a,
            &format!("/api/v1/approvals/{id}/cancel"),
            json!({}),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        get(
            &app,
            &people.approver_a,
            &format!("/api/v1/approvals/{id}/history"),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    // Another tenant's approval does not exist for them, even for an
    // approver who would be eligible by role.
    let stranger = token(
        "globex",
        &Uuid::now_v7().to_string(),
        &["approver", "manager", "auditor"],
    );
    assert_error(
        decide(&app, &stranger, &id, "approve", None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        post(
            &app,
            &stranger,
            &format!("/api/v1/approvals/{id}/escalate"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        get(&app, &stranger, &format!("/api/v1/approvals/{id}/history")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        get(
            &app,
            &stranger,
            &format!("/api/v1/approvals/{id}?at_version=1"),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // If-Match: a decision on a version the approver did not see.
    let stale = app
        .client
        .post(app.url(&format!("/api/v1/approvals/{id}/decisions")))
        .bearer_auth(&people.approver_a)
        .header("if-match", "\"3\"")
        .json(&json!({ "decision": "approve" }))
        .send()
        .await
        .unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
    let fresh = app
        .client
        .post(app.url(&format!("/api/v1/approvals/{id}/decisions")))
        .bearer_auth(&people.approver_a)
        .header("if-match", "\"1\"")
        .json(&json!({ "decision": "approve" }))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
}

#[tokio::test]
async fn auditors_see_the_approval_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = request(&app, &people.sales, two_levels(&people)).await;
    let before_decisions = chrono::Utc::now();
    for token in [&people.approver_a, &people.approver_b] {
        assert_eq!(
            decide(&app, token, &id, "approve", None).await.status(),
            200
        );
    }
    let v1 = state_at(&app, &people.auditor, &id, "at_version=1").await;
    assert_eq!(v1["status"], "open");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["current_level"], 0);
    assert_eq!(v1["subject"]["kind"], "contract");
    assert_eq!(v1["levels"][0]["required"], 2);
    assert_eq!(
        v1["levels"][0]["approvers"],
        json!([{ "role": "approver" }])
    );
    assert!(v1["levels"][0]["due_at"].is_string());
    assert!(v1["levels"][1]["opened_at"].is_null());
    let then = state_at(
        &app,
        &people.auditor,
        &id,
        &format!(
            "as_of={}",
            before_decisions.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    assert_eq!(then["version"], 1);
    assert_eq!(then["levels"][0]["decided"], json!([]));
    let now = state_at(&app, &people.manager, &id, "at_version=4").await;
    assert_eq!(now["current_level"], 1);
    assert!(now["levels"][1]["opened_at"].is_string());
    assert_error(
        get(
            &app,
            &people.auditor,
            &format!("/api/v1/approvals/{id}?as_of=now&at_version=1"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        get(
            &app,
            &people.auditor,
            &format!("/api/v1/approvals/{id}?as_of=2026-01-01T00:00:00Z&at_version=1"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    let events = history(&app, &people.manager, &id).await;
    assert_eq!(events.len(), 4);
}
