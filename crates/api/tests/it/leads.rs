//! Leads through HTTP: capture to closed-won, each error class,
//! idempotency and the auditors' reads.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

struct People {
    sales: String,
    sales_id: Uuid,
    manager: String,
    approver: String,
    auditor: String,
    admin: String,
    customer: String,
}

impl People {
    fn new() -> Self {
        let sales_id = Uuid::now_v7();
        let as_role = |role: &str| token("acme", &Uuid::now_v7().to_string(), &[role]);
        Self {
            sales: token("acme", &sales_id.to_string(), &["sales"]),
            sales_id,
            manager: as_role("manager"),
            approver: as_role("approver"),
            auditor: as_role("auditor"),
            admin: as_role("admin"),
            customer: as_role("customer"),
        }
    }
}

fn lead_body() -> Value {
    json!({
        "company": "Initech GmbH",
        "contact": { "name": "Peter Gibbons", "email": "peter@initech.example", "phone": "+49 30 1234" },
        "site_address": "Hauptstrasse 1, 10115 Berlin",
        "service": "Dedicated Internet Access",
        "bandwidth_mbps": 1000,
        "estimated_value": { "amount_minor": 1_200_000, "currency": "EUR" },
        "source": "web form"
    })
}

async fn capture(app: &TestApp, people: &People) -> String {
    let response = post(app, &people.sales, "/api/v1/leads", lead_body()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Acts on lead `id` and expects 200; answers the new version.
async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> u64 {
    let response = post(app, token, &format!("/api/v1/leads/{id}/{action}"), body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{action}: {text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["id"], id);
    answer["version"].as_u64().unwrap()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = get(
        app,
        token,
        &format!("/api/v1/leads/{id}/history?limit=1000"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

async fn state(app: &TestApp, token: &str, id: &str, version: u64) -> Value {
    let response = get(
        app,
        token,
        &format!("/api/v1/leads/{id}?at_version={version}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_lead_goes_from_capture_to_closed_won() {
    let app = TestApp::spawn().await;
    let p = People::new();
    let response = post(&app, &p.sales, "/api/v1/leads", lead_body()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    assert_eq!(location, format!("/api/v1/leads/{id}"));
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_u64().unwrap() > 0);

    let mut version = 1;
    let mut step = |v: u64, what: &str| {
        assert!(v > version, "{what} recorded an event");
        version = v;
    };
    let owner = json!({ "owner_id": p.sales_id });
    step(act(&app, &p.manager, id, "owner", owner).await, "owner");
    step(
        act(&app, &p.sales, id, "qualify", json!({ "score": 80 })).await,
        "qualify",
    );
    let check = json!({ "feasible": true, "notes": "Fibre in the street" });
    step(
        act(&app, &p.sales, id, "serviceability", check).await,
        "serviceability",
    );
    let design = |summary: &str| {
        json!({
            "summary": summary,
            "specification": "Two diverse fibre paths, BGP, /29.",
            "documents": [{ "document_id": Uuid::now_v7(), "name": "topology.pdf" }]
        })
    };
    step(
        act(&app, &p.sales, id, "designs", design("Dual-homed 1G")).await,
        "designs",
    );
    let comment = json!({ "design_version": 1, "body": "Why not a single path?" });
    step(
        act(&app, &p.approver, id, "design-comments", comment).await,
        "design-comments",
    );
    // The server picks the approval's id; it shows in the state.
    let v = act(&app, &p.sales, id, "design-approval", json!({})).await;
    step(v, "design-approval");
    let first_approval = state(&app, &p.auditor, id, v).await["pending_approval"].clone();
    assert!(first_approval.is_string(), "{first_approval}");
    let rejection = json!({ "approval_id": first_approval, "reason": "Too expensive" });
    step(
        act(&app, &p.admin, id, "design-rejected", rejection).await,
        "design-rejected",
    );
    step(
        act(&app, &p.sales, id, "designs", design("Single 1G path")).await,
        "designs v2",
    );
    // Or the client picks it.
    let approval_id = Uuid::now_v7();
    let request = json!({ "approval_id": approval_id });
    step(
        act(&app, &p.sales, id, "design-approval", request).await,
        "design-approval v2",
    );
    step(
        act(
            &app,
            &p.admin,
            id,
            "design-approved",
            json!({ "approval_id": approval_id }),
        )
        .await,
        "design-approved",
    );
    let task = Uuid::now_v7();
    let add = json!({ "task_id": task, "title": "Install the CPE" });
    step(act(&app, &p.sales, id, "tasks", add).await, "tasks");
    let add = json!({ "title": "Configure BGP" });
    let v = act(&app, &p.sales, id, "tasks", add).await;
    step(v, "tasks (server id)");
    let tasks = state(&app, &p.auditor, id, v).await["tasks"].clone();
    let other_task = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_owned())
        .find(|t| *t != task.to_string())
        .unwrap();
    let assign = json!({ "assignee_id": Uuid::now_v7() });
    step(
        act(&app, &p.sales, id, &format!("tasks/{task}/assign"), assign).await,
        "assign task",
    );
    step(
        act(
            &app,
            &p.sales,
            id,
            &format!("tasks/{task}/complete"),
            json!({}),
        )
        .await,
        "complete task",
    );
    step(
        act(
            &app,
            &p.manager,
            id,
            &format!("tasks/{other_task}/complete"),
            json!({}),
        )
        .await,
        "complete the other task",
    );
    step(
        act(&app, &p.sales, id, "implementation-complete", json!({})).await,
        "implementation-complete",
    );
    let found = Uuid::now_v7();
    let test = json!({
        "name": "Throughput",
        "result": "failed",
        "defects": [{ "defect_id": found, "title": "Only 400 Mbps" }]
    });
    step(
        act(&app, &p.sales, id, "activation-tests", test).await,
        "failed activation test",
    );
    let raised = Uuid::now_v7();
    let defect = json!({ "defect_id": raised, "title": "Wrong reverse DNS" });
    step(act(&app, &p.sales, id, "defects", defect).await, "defects");
    let resolution = json!({ "resolution": "Duplex mismatch fixed" });
    step(
        act(
            &app,
            &p.sales,
            id,
            &format!("defects/{found}/resolve"),
            resolution,
        )
        .await,
        "resolve defect",
    );
    // An empty body is an empty action body.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/leads/{id}/defects/{raised}/resolve")))
        .bearer_auth(&p.sales)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    version = response.json::<Value>().await.unwrap()["version"]
        .as_u64()
        .unwrap();
    let mut step = |v: u64, what: &str| {
        assert!(v > version, "{what} recorded an event");
        version = v;
    };
    let test = json!({ "name": "Throughput", "result": "passed" });
    step(
        act(&app, &p.sales, id, "activation-tests", test).await,
        "passed activation test",
    );
    step(
        act(&app, &p.sales, id, "testing-passed", json!({})).await,
        "testing-passed",
    );
    let notes = json!({ "notes": "Monitoring in place" });
    step(
        act(&app, &p.sales, id, "hand-over", notes).await,
        "hand-over",
    );
    let close = json!({ "outcome": "won", "reason": "Contract signed" });
    step(act(&app, &p.sales, id, "close", close).await, "close");

    let events = history(&app, &p.auditor, id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "lead.captured",
            "lead.owner_assigned",
            "lead.qualified",
            "lead.serviceability_checked",
            "lead.design_submitted",
            "lead.design_comment_added",
            "lead.design_approval_requested",
            "lead.design_rejected",
            "lead.design_submitted",
            "lead.design_approval_requested",
            "lead.design_approved",
            "lead.implementation_task_added",
            "lead.implementation_task_added",
            "lead.implementation_task_assigned",
            "lead.implementation_task_completed",
            "lead.implementation_task_completed",
            "lead.implementation_completed",
            "lead.activation_test_recorded",
            "lead.defect_raised",
            "lead.defect_raised",
            "lead.defect_resolved",
            "lead.defect_resolved",
            "lead.activation_test_recorded",
            "lead.testing_passed",
            "lead.handed_over_to_support",
            "lead.closed",
        ]
    );
    assert_eq!(events.len() as u64, version);
    assert_eq!(events[0]["metadata"]["actor"], p.sales_id.to_string());
    assert_eq!(events[0]["data"]["by"], p.sales_id.to_string());
    assert_eq!(events[10]["data"]["approval_id"], approval_id.to_string());
    assert!(events[0]["metadata"]["request_id"].is_string());

    let end = state(&app, &p.manager, id, version).await;
    assert_eq!(end["stage"], "closed");
    assert_eq!(end["outcome"], "won");
    assert_eq!(end["owner"], p.sales_id.to_string());
    assert_eq!(end["score"], 80);
    assert_eq!(end["feasible"], true);
    assert_eq!(end["design_version"], 2);
    assert_eq!(end["approved_design_version"], 2);
    assert!(end["pending_approval"].is_null());
    assert_eq!(end["tasks"].as_array().unwrap().len(), 2);
    assert!(end["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["completed"] == true));
    assert_eq!(end["passed_tests"], 1);
    assert_eq!(end["open_defects"], json!([]));
    assert_eq!(end["resolved_defects"].as_array().unwrap().len(), 2);
    assert_eq!(end["testing_passed"], true);
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let p = People::new();
    let mut body = lead_body();
    body["company"] = json!("  ");
    body["contact"]["email"] = json!("not-an-email");
    body["bandwidth_mbps"] = json!(0);
    body["estimated_value"]["currency"] = json!("euro");
    let error = assert_error(
        post(&app, &p.sales, "/api/v1/leads", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in [
        "company",
        "contact.email",
        "bandwidth_mbps",
        "estimated_value.currency",
    ] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    let mut body = lead_body();
    body["estimated_value"]["amount_minor"] = json!(-1);
    let error = assert_error(
        post(&app, &p.sales, "/api/v1/leads", body).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["error"]["details"]["fields"]["estimated_value.amount_minor"].is_string());
    let r = post(&app, &p.sales, "/api/v1/leads", json!({ "surprise": 1 })).await;
    assert_error(r, 400, "invalid_body").await;
    let not_json = app
        .client
        .post(app.url("/api/v1/leads"))
        .bearer_auth(&p.sales)
        .body("company=x")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 415, "unsupported_media_type").await;

    let id = capture(&app, &p).await;
    let lead = |action: &str| format!("/api/v1/leads/{id}/{action}");
    let cases = [
        ("qualify", json!({}), vec!["score"]),
        ("qualify", json!({ "score": 101 }), vec!["score"]),
        ("owner", json!({}), vec!["owner_id"]),
        (
            "serviceability",
            json!({ "notes": " " }),
            vec!["feasible", "notes"],
        ),
        (
            "designs",
            json!({ "documents": [{ "document_id": Uuid::now_v7(), "name": "" }] }),
            vec!["summary", "specification", "documents[0].name"],
        ),
        (
            "design-comments",
            json!({ "design_version": 0, "body": "" }),
            vec!["design_version", "body"],
        ),
        ("design-approved", json!({}), vec!["approval_id"]),
        ("tasks", json!({ "title": "" }), vec!["title"]),
        (
            "activation-tests",
            json!({ "name": "x", "result": "meh", "defects": [{ "title": " " }] }),
            vec!["result", "defects[0].title"],
        ),
        ("defects", json!({}), vec!["title"]),
        ("close", json!({ "outcome": "maybe" }), vec!["outcome"]),
    ];
    for (action, body, expected) in cases {
        let who = if action.starts_with("design-approved") || action == "owner" {
            &p.admin
        } else {
            &p.sales
        };
        let error = assert_error(
            post(&app, who, &lead(action), body).await,
            400,
            "validation_failed",
        )
        .await;
        let fields = error["error"]["details"]["fields"].as_object().unwrap();
        for field in expected {
            assert!(
                fields.contains_key(field),
                "{action}: {field} missing in {fields:?}"
            );
        }
    }
    let task = Uuid::now_v7();
    let r = post(
        &app,
        &p.sales,
        &lead(&format!("tasks/{task}/assign")),
        json!({}),
    )
    .await;
    assert_error(r, 400, "validation_failed").await;
    let r = post(
        &app,
        &p.sales,
        &lead("qualify"),
        json!({ "score": 50, "colour": "red" }),
    )
    .await;
    assert_error(r, 400, "invalid_body").await;
    for path in ["teleport", "tasks/not-a-uuid/complete", "defects/x/resolve"] {
        let r = post(&app, &p.sales, &lead(path), json!({})).await;
        assert_error(r, 404, "not_found").await;
    }
    let r = post(
        &app,
        &p.sales,
        &lead(&format!("tasks/{task}/explode")),
        json!({}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(
        history(&app, &p.auditor, &id).await.len(),
        1,
        "nothing written"
    );
}

#[tokio::test]
async fn roles_tenants_and_domain_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let p = People::new();
    // Wrong role.
    for who in [&p.customer, &p.auditor, &p.approver] {
        let r = post(&app, who, "/api/v1/leads", lead_body()).await;
        assert_error(r, 403, "auth.forbidden").await;
    }
    let id = capture(&app, &p).await;
    let lead = |action: &str| format!("/api/v1/leads/{id}/{action}");
    let r = post(
        &app,
        &p.sales,
        &lead("owner"),
        json!({ "owner_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = post(&app, &p.approver, &lead("qualify"), json!({ "score": 10 })).await;
    assert_error(r, 403, "auth.forbidden").await;
    // The approval's outcome is the process manager's: admins only.
    for who in [&p.sales, &p.manager, &p.approver] {
        let r = post(
            &app,
            who,
            &lead("design-approved"),
            json!({ "approval_id": Uuid::now_v7() }),
        )
        .await;
        assert_error(r, 403, "auth.forbidden").await;
        let r = post(
            &app,
            who,
            &lead("design-rejected"),
            json!({ "approval_id": Uuid::now_v7() }),
        )
        .await;
        assert_error(r, 403, "auth.forbidden").await;
    }
    let r = post(
        &app,
        &p.customer,
        &lead(&format!("tasks/{}/complete", Uuid::now_v7())),
        json!({}),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(&app, &p.sales, &format!("/api/v1/leads/{id}/history")).await;
    assert_error(r, 403, "auth.forbidden").await;
    // Another tenant's lead does not exist for them.
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["admin"]);
    let r = post(&app, &stranger, &lead("qualify"), json!({ "score": 10 })).await;
    assert_error(r, 404, "not_found").await;
    let r = post(
        &app,
        &stranger,
        &lead(&format!("defects/{}/resolve", Uuid::now_v7())),
        json!({}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = get(&app, &stranger, &format!("/api/v1/leads/{id}/history")).await;
    assert_error(r, 404, "not_found").await;
    let r = get(&app, &stranger, &format!("/api/v1/leads/{id}?at_version=1")).await;
    assert_error(r, 404, "not_found").await;
    // The domain refuses, with its code.
    let r = post(&app, &p.sales, &lead("implementation-complete"), json!({})).await;
    let error = assert_error(r, 409, "lead.wrong_stage").await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("captured"), "{message}");
    let r = post(&app, &p.sales, &lead("close"), json!({ "outcome": "won" })).await;
    assert_error(r, 409, "lead.wrong_stage").await;
    let comment = json!({ "design_version": 1, "body": "Looks good" });
    let r = post(&app, &p.approver, &lead("design-comments"), comment).await;
    assert_error(r, 409, "lead.no_design").await;
    act(&app, &p.sales, &id, "qualify", json!({ "score": 30 })).await;
    act(
        &app,
        &p.sales,
        &id,
        "serviceability",
        json!({ "feasible": false }),
    )
    .await;
    let design = json!({ "summary": "Anything", "specification": "Anything at all" });
    let r = post(&app, &p.sales, &lead("designs"), design).await;
    assert_error(r, 409, "lead.not_serviceable").await;
    let r = post(
        &app,
        &p.admin,
        &lead("design-approved"),
        json!({ "approval_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 409, "lead.wrong_stage").await;
    act(
        &app,
        &p.sales,
        &id,
        "close",
        json!({ "outcome": "lost", "reason": "No fibre" }),
    )
    .await;
    let r = post(
        &app,
        &p.manager,
        &lead("owner"),
        json!({ "owner_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 409, "lead.closed").await;
    // No token at all.
    let r = app
        .client
        .post(app.url("/api/v1/leads"))
        .json(&lead_body())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "auth.missing_token").await;
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let p = People::new();
    let id = capture(&app, &p).await;
    let qualify = |version: &str| {
        app.client
            .post(app.url(&format!("/api/v1/leads/{id}/qualify")))
            .bearer_auth(&p.sales)
            .header("if-match", version)
            .json(&json!({ "score": 55 }))
            .send()
    };
    let stale = qualify("\"0\"").await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(
        history(&app, &p.auditor, &id).await.len(),
        1,
        "nothing written"
    );
    let ok = qualify("\"1\"").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    // On a task action too.
    let task = Uuid::now_v7();
    let r = app
        .client
        .post(app.url(&format!("/api/v1/leads/{id}/tasks/{task}/complete")))
        .bearer_auth(&p.sales)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_error(r, 412, "version_mismatch").await;
}

#[tokio::test]
async fn an_idempotent_capture_is_recorded_once() {
    let app = TestApp::spawn().await;
    let p = People::new();
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/leads"))
            .bearer_auth(&p.sales)
            .header("idempotency-key", "capture-initech")
            .json(&body)
            .send()
    };
    let first = send(lead_body()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = send(lead_body()).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let id = first["id"].as_str().unwrap();
    assert_eq!(history(&app, &p.auditor, id).await.len(), 1);
    let mut other = lead_body();
    other["company"] = json!("Globex");
    assert_error(send(other).await.unwrap(), 422, "idempotency.key_reused").await;
}

#[tokio::test]
async fn auditors_see_the_state_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let p = People::new();
    let id = capture(&app, &p).await;
    let before_qualifying = chrono::Utc::now();
    act(&app, &p.sales, &id, "qualify", json!({ "score": 72 })).await;
    act(
        &app,
        &p.manager,
        &id,
        "owner",
        json!({ "owner_id": p.sales_id }),
    )
    .await;

    let v1 = state(&app, &p.auditor, &id, 1).await;
    assert_eq!(v1["stage"], "captured");
    assert_eq!(v1["version"], 1);
    assert!(v1["score"].is_null());
    let as_of = before_qualifying.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let r = get(
        &app,
        &p.auditor,
        &format!("/api/v1/leads/{id}?as_of={as_of}"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let then: Value = r.json().await.unwrap();
    assert_eq!(then["stage"], "captured");
    assert_eq!(then["version"], 1);
    let v2 = state(&app, &p.auditor, &id, 2).await;
    assert_eq!(v2["stage"], "qualified");
    assert_eq!(v2["score"], 72);
    assert!(v2["owner"].is_null());
    let v3 = state(&app, &p.manager, &id, 3).await;
    assert_eq!(v3["owner"], p.sales_id.to_string());
    assert_eq!(v3["design_version"], 0);
    assert_eq!(v3["tasks"], json!([]));

    let path = format!("/api/v1/leads/{id}");
    // Without as_of or at_version: the current lead, from the read model.
    let last = history(&app, &p.auditor, &id).await.last().unwrap()["position"].clone();
    let refused = get(&app, &p.auditor, &format!("{path}?min_position={last}")).await;
    assert_error(refused, 403, "auth.forbidden").await;
    let r = get(&app, &p.manager, &format!("{path}?min_position={last}")).await;
    assert_eq!(r.status(), 200);
    let current: Value = r.json().await.unwrap();
    assert_eq!(current["stage"], "qualified");
    assert_eq!(current["owner_id"], p.sales_id.to_string());
    let both = format!("{path}?at_version=1&as_of={as_of}");
    assert_error(get(&app, &p.auditor, &both).await, 400, "invalid_query").await;
    let malformed = format!("{path}?at_version=latest");
    assert_error(
        get(&app, &p.auditor, &malformed).await,
        400,
        "invalid_query",
    )
    .await;
    let r = get(&app, &p.sales, &format!("{path}?at_version=1")).await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(
        &app,
        &p.auditor,
        &format!("/api/v1/leads/{}?at_version=1", Uuid::now_v7()),
    )
    .await;
    assert_error(r, 404, "not_found").await;

    // History pages by stream version.
    let r = get(&app, &p.auditor, &format!("{path}/history?limit=2")).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_from_version"], 3);
    let r = get(&app, &p.auditor, &format!("{path}/history?from_version=3")).await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["events"][0]["type"], "lead.owner_assigned");
    assert_eq!(page["events"][0]["stream_version"], 3);
    assert!(page["next_from_version"].is_null());
    let all = history(&app, &p.auditor, &id).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["data"]["score"], 72);
}
