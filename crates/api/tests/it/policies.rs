//! A tenant's SLA and approval policies through HTTP: defaults, replacing
//! them, each error class and If-Match.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, token, TestApp};

fn manager_of(tenant: &str) -> String {
    token(tenant, &Uuid::now_v7().to_string(), &["manager"])
}

fn targets(assign: i64, first: i64, resolve: i64) -> Value {
    json!({
        "time_to_assign_secs": assign,
        "time_to_first_response_secs": first,
        "time_to_resolve_secs": resolve,
    })
}

fn sla() -> Value {
    json!({
        "p1": targets(600, 1800, 7200),
        "p2": targets(1800, 7200, 43200),
        "p3": targets(7200, 14400, 172800),
        "p4": targets(14400, 43200, 345600),
    })
}

fn approval() -> Value {
    json!({
        "rules": [
            {
                "kind": "contract",
                "thresholds": [
                    { "min_value_minor": 1_000_000, "levels": [
                        { "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 86400 },
                        { "approvers": [{ "user": "0190a5b2-7c3d-7e4f-8a1b-000000000001" }, { "role": "manager" }],
                          "required": 2, "due_secs": null }
                    ] },
                    { "min_value_minor": 0, "levels": [] }
                ]
            }
        ]
    })
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn read(app: &TestApp, token: &str, path: &str) -> (String, Value) {
    let response = get(app, token, path).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (etag, response.json().await.unwrap())
}

#[tokio::test]
async fn a_tenant_without_policies_reads_the_defaults() {
    let app = TestApp::spawn().await;
    let manager = manager_of("acme");
    let (etag, sla) = read(&app, &manager, "/api/v1/sla-policy").await;
    assert_eq!(etag, "\"0\"");
    assert_eq!(sla["version"], 0);
    assert_eq!(sla["default"], true);
    assert_eq!(sla["policy"]["p1"], targets(900, 3600, 14400));
    assert_eq!(sla["policy"]["p4"], targets(28800, 86400, 432000));
    let (etag, approval) = read(&app, &manager, "/api/v1/approval-policy").await;
    assert_eq!(etag, "\"0\"");
    assert_eq!(approval["default"], true);
    let rules = approval["policy"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0]["thresholds"][0]["levels"][0],
        json!({ "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 172800 })
    );
    // Admins may read as well.
    let admin = token("acme", "root", &["admin"]);
    assert_eq!(read(&app, &admin, "/api/v1/sla-policy").await.1, sla);
}

#[tokio::test]
async fn managers_replace_each_policy_and_reads_follow() {
    let app = TestApp::spawn().await;
    let manager = manager_of("acme");
    let r = put(&app, &manager, "/api/v1/sla-policy", sla()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["etag"], "\"1\"");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["version"], 1);
    assert!(answer["position"].as_u64().unwrap() > 0);
    let (etag, read_sla) = read(&app, &manager, "/api/v1/sla-policy").await;
    assert_eq!(etag, "\"1\"");
    assert_eq!(read_sla["default"], false);
    assert_eq!(read_sla["policy"], sla());
    assert_eq!(read_sla["id"], answer["id"], "one stream per tenant");
    // The approval policy is still the default, in the same stream.
    let (etag, still_default) = read(&app, &manager, "/api/v1/approval-policy").await;
    assert_eq!(etag, "\"1\"");
    assert_eq!(still_default["default"], true);

    let r = put(&app, &manager, "/api/v1/approval-policy", approval()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    let (_, read_approval) = read(&app, &manager, "/api/v1/approval-policy").await;
    assert_eq!(read_approval["default"], false);
    assert_eq!(read_approval["version"], 2);
    let thresholds = &read_approval["policy"]["rules"][0]["thresholds"];
    assert_eq!(read_approval["policy"]["rules"][0]["kind"], "contract");
    // Kept in ascending order of threshold.
    assert_eq!(thresholds[0], json!({ "min_value_minor": 0, "levels": [] }));
    assert_eq!(thresholds[1], approval()["rules"][0]["thresholds"][0]);

    // Setting the same policy again records nothing.
    let r = put(&app, &manager, "/api/v1/sla-policy", sla()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    // Another tenant's policies are its own.
    let (etag, theirs) = read(&app, &manager_of("globex"), "/api/v1/sla-policy").await;
    assert_eq!(etag, "\"0\"");
    assert_eq!(theirs["default"], true);
    assert_ne!(theirs["id"], read_sla["id"]);
}

#[tokio::test]
async fn invalid_policies_name_every_bad_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let manager = manager_of("acme");
    let mut body = sla();
    body["p2"] = targets(90000, 7200, 43200);
    body["p3"]["time_to_resolve_secs"] = json!(-1);
    body["p4"]["time_to_first_response_secs"] = json!(0);
    let error = assert_error(
        put(&app, &manager, "/api/v1/sla-policy", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in [
        "p2.time_to_assign_secs",
        "p3.time_to_resolve_secs",
        "p4.time_to_first_response_secs",
    ] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    assert_eq!(fields.len(), 3, "{fields:?}");
    let mut missing = sla();
    missing.as_object_mut().unwrap().remove("p4");
    assert_error(
        put(&app, &manager, "/api/v1/sla-policy", missing).await,
        400,
        "invalid_body",
    )
    .await;

    let bad = json!({
        "rules": [
            { "kind": "lead", "thresholds": [] },
            { "kind": "contract", "thresholds": [
                { "min_value_minor": -5, "levels": [] },
                { "min_value_minor": 0, "levels": [
                    { "approvers": [{ "role": "wizard" }, { "user": Uuid::nil(), "role": "approver" }],
                      "required": 1, "due_secs": null },
                    { "approvers": [{ "user": Uuid::nil() }], "required": 2, "due_secs": null }
                ] },
                { "min_value_minor": 0, "levels": [] }
            ] },
            { "kind": "contract", "thresholds": [] }
        ]
    });
    let error = assert_error(
        put(&app, &manager, "/api/v1/approval-policy", bad).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in [
        "rules[0].kind",
        "rules[1].thresholds[0].min_value_minor",
        "rules[1].thresholds[1].levels[0].approvers[0].role",
        "rules[1].thresholds[1].levels[0].approvers[1]",
        "rules[1].thresholds[1].levels[1]",
        "rules[1].thresholds[2].min_value_minor",
        "rules[2].kind",
    ] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    assert_error(
        put(
            &app,
            &manager,
            "/api/v1/approval-policy",
            json!({ "rules": [], "x": 1 }),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    let (etag, _) = read(&app, &manager, "/api/v1/sla-policy").await;
    assert_eq!(etag, "\"0\"", "nothing written");
}

#[tokio::test]
async fn only_managers_and_admins_read_and_set_policies() {
    let app = TestApp::spawn().await;
    for role in ["expert", "auditor", "approver", "sales", "customer"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        for path in ["/api/v1/sla-policy", "/api/v1/approval-policy"] {
            assert_error(get(&app, &who, path).await, 403, "auth.forbidden").await;
        }
        let r = put(&app, &who, "/api/v1/sla-policy", sla()).await;
        assert_error(r, 403, "auth.forbidden").await;
        let r = put(&app, &who, "/api/v1/approval-policy", approval()).await;
        assert_error(r, 403, "auth.forbidden").await;
    }
    let admin = token("acme", "root", &["admin"]);
    let r = put(&app, &admin, "/api/v1/approval-policy", approval()).await;
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/api/v1/sla-policy"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "auth.missing_token").await;
    let r = app
        .client
        .post(app.url("/api/v1/sla-policy"))
        .bearer_auth(&admin)
        .json(&sla())
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let manager = manager_of("acme");
    let (etag, _) = read(&app, &manager, "/api/v1/sla-policy").await;
    let set = |etag: String, body: Value| {
        app.client
            .put(app.url("/api/v1/sla-policy"))
            .bearer_auth(&manager)
            .header("if-match", etag)
            .json(&body)
            .send()
    };
    // Nothing set yet: version 0 is the one to match.
    let r = set(etag.clone(), sla()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let mut other = sla();
    other["p1"] = targets(300, 900, 3600);
    let stale = set(etag, other.clone()).await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    let (_, current) = read(&app, &manager, "/api/v1/sla-policy").await;
    assert_eq!(current["policy"], sla(), "nothing written");
    // A change to the approval policy moves the shared version too.
    let r = put(&app, &manager, "/api/v1/approval-policy", approval()).await;
    assert_eq!(r.status(), 200);
    let r = set("\"1\"".into(), other.clone()).await.unwrap();
    assert_error(r, 412, "version_mismatch").await;
    let r = set("\"2\"".into(), other).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"3\"");
}
