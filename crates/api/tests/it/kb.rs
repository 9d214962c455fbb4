//! Knowledge articles through HTTP: publish, revise, retire, each error
//! class and the auditors' reads.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

struct People {
    expert: String,
    expert_id: Uuid,
    manager: String,
    auditor: String,
    customer: String,
}

impl People {
    fn new() -> Self {
        let expert_id = Uuid::now_v7();
        Self {
            expert: token("acme", &expert_id.to_string(), &["expert"]),
            expert_id,
            manager: token("acme", &Uuid::now_v7().to_string(), &["manager"]),
            auditor: token("acme", &Uuid::now_v7().to_string(), &["auditor"]),
            customer: token("acme", &Uuid::now_v7().to_string(), &["customer"]),
        }
    }
}

fn article() -> Value {
    json!({
        "title": "SmartHub 3 loses Wi-Fi after firmware 2.4",
        "body": "Roll back to firmware 2.3.9 and disable band steering.",
        "tags": ["wi-fi", "firmware", "Wi-Fi"],
        "product": "SmartHub 3"
    })
}

fn revision() -> Value {
    json!({
        "title": "SmartHub 3 loses Wi-Fi after firmware 2.4 (fixed in 2.4.1)",
        "body": "Update to firmware 2.4.1.",
        "tags": ["wi-fi", "firmware"]
    })
}

async fn publish(app: &TestApp, people: &People) -> String {
    let response = post(app, &people.expert, "/api/v1/kb/articles", article()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = get(app, token, &format!("/api/v1/kb/articles/{id}/history")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_article_is_published_revised_and_retired() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let response = post(&app, &people.expert, "/api/v1/kb/articles", article()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/kb/articles/{id}"));
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_u64().unwrap() > 0);

    let revised = post(
        &app,
        &people.manager,
        &format!("/api/v1/kb/articles/{id}/revise"),
        revision(),
    )
    .await;
    assert_eq!(revised.status(), 200);
    assert_eq!(revised.headers()["etag"], "\"2\"");
    // The same revision again changes nothing and records nothing.
    let again = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/revise"),
        revision(),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["version"], 2);
    let retired = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/retire"),
        json!({ "reason": "superseded by 2.4.1 notes" }),
    )
    .await;
    assert_eq!(retired.status(), 200);
    assert_eq!(retired.json::<Value>().await.unwrap()["version"], 3);

    let events = history(&app, &people.auditor, id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "knowledge_article.published",
            "knowledge_article.revised",
            "knowledge_article.retired"
        ]
    );
    assert_eq!(events[0]["data"]["author_id"], people.expert_id.to_string());
    assert_eq!(events[0]["data"]["tags"], json!(["wi-fi", "firmware"]));
    assert_eq!(events[0]["metadata"]["actor"], people.expert_id.to_string());
    // Retiring without a reason works too (on another article).
    let other = publish(&app, &people).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/kb/articles/{other}/retire")))
        .bearer_auth(&people.manager)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let mut body = article();
    body["title"] = json!("  ");
    body["tags"] = json!(["ok", ""]);
    body["product"] = json!("x".repeat(201));
    let error = assert_error(
        post(&app, &people.expert, "/api/v1/kb/articles", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in ["title", "tags[1]", "product"] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    assert!(!fields.contains_key("body"), "{fields:?}");
    let unknown = post(
        &app,
        &people.expert,
        "/api/v1/kb/articles",
        json!({ "headline": "x" }),
    )
    .await;
    assert_error(unknown, 400, "invalid_body").await;

    let id = publish(&app, &people).await;
    let missing = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/revise"),
        json!({ "tags": [] }),
    )
    .await;
    let error = assert_error(missing, 400, "validation_failed").await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    assert!(fields.contains_key("title") && fields.contains_key("body"));
    let blank_reason = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/retire"),
        json!({ "reason": " " }),
    )
    .await;
    assert_error(blank_reason, 400, "validation_failed").await;
    let unknown_action = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/archive"),
        json!({}),
    )
    .await;
    assert_error(unknown_action, 404, "not_found").await;
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
}

#[tokio::test]
async fn roles_tenants_and_domain_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let people = People::new();
    // Wrong role.
    let r = post(&app, &people.customer, "/api/v1/kb/articles", article()).await;
    assert_error(r, 403, "auth.forbidden").await;
    let id = publish(&app, &people).await;
    let r = post(
        &app,
        &people.auditor,
        &format!("/api/v1/kb/articles/{id}/revise"),
        revision(),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/history"),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    // Another tenant's article does not exist for them.
    let stranger = token(
        "globex",
        &Uuid::now_v7().to_string(),
        &["expert", "auditor"],
    );
    let r = post(
        &app,
        &stranger,
        &format!("/api/v1/kb/articles/{id}/retire"),
        json!({}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = get(
        &app,
        &stranger,
        &format!("/api/v1/kb/articles/{id}/history"),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = get(
        &app,
        &stranger,
        &format!("/api/v1/kb/articles/{id}?at_version=1"),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    // The domain refuses: a retired article is neither revised nor retired.
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/revise"),
        revision(),
    )
    .await;
    assert_error(r, 409, "knowledge_article.retired").await;
    let r = post(
        &app,
        &people.manager,
        &format!("/api/v1/kb/articles/{id}/retire"),
        json!({}),
    )
    .await;
    assert_error(r, 409, "knowledge_article.retired").await;
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 2);
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = publish(&app, &people).await;
    let revise = |version: &str| {
        app.client
            .post(app.url(&format!("/api/v1/kb/articles/{id}/revise")))
            .bearer_auth(&people.expert)
            .header("if-match", version)
            .json(&revision())
            .send()
    };
    let stale = revise("\"0\"").await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
    let ok = revise("\"1\"").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
}

#[tokio::test]
async fn auditors_see_an_article_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = publish(&app, &people).await;
    let before_revision = chrono::Utc::now();
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}/revise"),
        revision(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let read = |query: String| {
        let request = app
            .client
            .get(app.url(&format!("/api/v1/kb/articles/{id}?{query}")))
            .bearer_auth(&people.auditor);
        async move { request.send().await.unwrap() }
    };
    let v1: Value = read("at_version=1".into()).await.json().await.unwrap();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "published");
    assert_eq!(v1["revision"], 1);
    assert_eq!(v1["title"], article()["title"]);
    assert_eq!(v1["tags"], json!(["wi-fi", "firmware"]));
    let then: Value = read(format!(
        "as_of={}",
        before_revision.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(then["revision"], 1);
    assert_eq!(then["body"], article()["body"]);
    let v2: Value = read("at_version=2".into()).await.json().await.unwrap();
    assert_eq!(v2["revision"], 2);
    assert_eq!(v2["title"], revision()["title"]);
    // Managers read past states too.
    let r = get(
        &app,
        &people.manager,
        &format!("/api/v1/kb/articles/{id}?at_version=2"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_error(read("at_version=latest".into()).await, 400, "invalid_query").await;
    assert_error(
        read("at_version=1&as_of=2024-01-01T00:00:00Z".into()).await,
        400,
        "invalid_query",
    )
    .await;
    let r = get(
        &app,
        &people.expert,
        &format!("/api/v1/kb/articles/{id}?at_version=1"),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(
        &app,
        &people.auditor,
        &format!("/api/v1/kb/articles/{}?at_version=1", Uuid::now_v7()),
    )
    .await;
    assert_error(r, 404, "not_found").await;
}
