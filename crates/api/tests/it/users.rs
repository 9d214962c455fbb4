//! Users and experts through HTTP: registration, roles, deactivation, an
//! expert's skills and availability, each error class and the auditors'
//! reads.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

struct People {
    admin: String,
    manager: String,
    auditor: String,
    /// An expert whose token `sub` is a UUID: their user id.
    expert: String,
    expert_id: Uuid,
}

impl People {
    fn new() -> Self {
        let expert_id = Uuid::now_v7();
        Self {
            admin: token("acme", &Uuid::now_v7().to_string(), &["admin"]),
            manager: token("acme", &Uuid::now_v7().to_string(), &["manager"]),
            auditor: token("acme", &Uuid::now_v7().to_string(), &["auditor"]),
            expert: token("acme", &expert_id.to_string(), &["expert"]),
            expert_id,
        }
    }
}

fn user(id: Uuid, roles: &[&str]) -> Value {
    json!({
        "id": id,
        "name": "Priya Raman",
        "email": "Priya.Raman@example.com",
        "roles": roles,
    })
}

async fn register(app: &TestApp, people: &People, id: Uuid, roles: &[&str]) {
    let response = post(app, &people.admin, "/api/v1/users", user(id, roles)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn history(app: &TestApp, token: &str, id: Uuid) -> Vec<Value> {
    let response = get(app, token, &format!("/api/v1/users/{id}/history")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_user_is_registered_becomes_available_and_is_deactivated() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = people.expert_id;
    let response = post(&app, &people.admin, "/api/v1/users", user(id, &["expert"])).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    assert_eq!(
        response.headers()["location"],
        format!("/api/v1/users/{id}")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["version"], 1);

    let steps = [
        (
            &people.expert,
            "skills",
            json!({ "skills": ["networking", "Smart TV", "Networking"] }),
        ),
        (&people.expert, "availability", json!({ "available": true })),
        (
            &people.manager,
            "skills",
            json!({ "skills": ["networking"] }),
        ),
        (
            &people.admin,
            "roles",
            json!({ "roles": ["expert", "manager"] }),
        ),
        (
            &people.manager,
            "availability",
            json!({ "available": false }),
        ),
        (&people.expert, "availability", json!({ "available": true })),
        (&people.admin, "deactivate", json!({})),
    ];
    let mut version = 1;
    for (who, action, body) in steps {
        let response = post(&app, who, &format!("/api/v1/users/{id}/{action}"), body).await;
        assert_eq!(
            response.status(),
            200,
            "{action}: {}",
            response.text().await.unwrap()
        );
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["version"].as_u64().unwrap() > version,
            "{action} recorded an event"
        );
        version = answer["version"].as_u64().unwrap();
    }
    let events = history(&app, &people.auditor, id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "user.registered",
            "user.expert_skills_set",
            "user.availability_changed",
            "user.expert_skills_set",
            "user.roles_changed",
            "user.availability_changed",
            "user.availability_changed",
            // Deactivating an available expert first makes them unavailable.
            "user.availability_changed",
            "user.deactivated",
        ]
    );
    assert_eq!(events[0]["data"]["email"], "priya.raman@example.com");
    assert_eq!(
        events[1]["data"]["skills"],
        json!(["networking", "Smart TV"])
    );
    assert_eq!(events[2]["data"]["by"], id.to_string());
}

#[tokio::test]
async fn a_user_registered_by_token_subject_acts_as_themself() {
    let app = TestApp::spawn().await;
    let people = People::new();
    // An identity provider's subject that is not a UUID.
    let response = post(
        &app,
        &people.admin,
        "/api/v1/users",
        json!({
            "sub": "erin@sso.example",
            "name": "Erin Expert",
            "email": "erin@example.com",
            "roles": ["expert"],
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let erin = token("acme", "erin@sso.example", &["expert"]);
    let r = post(
        &app,
        &erin,
        &format!("/api/v1/users/{id}/availability"),
        json!({ "available": true }),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Without id or sub, a new id is made.
    let mut body = user(Uuid::nil(), &["customer"]);
    body.as_object_mut().unwrap().remove("id");
    let r = post(&app, &people.admin, "/api/v1/users", body).await;
    assert_eq!(r.status(), 201);
    let new_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_id, id);
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = Uuid::now_v7();
    let error = assert_error(
        post(
            &app,
            &people.admin,
            "/api/v1/users",
            json!({
                "id": id,
                "sub": "someone",
                "name": " ",
                "email": "not-an-email",
                "roles": ["expert", "wizard"],
            }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in ["sub", "name", "email", "roles"] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    let no_roles = post(&app, &people.admin, "/api/v1/users", user(id, &[])).await;
    let error = assert_error(no_roles, 400, "validation_failed").await;
    assert!(error["error"]["details"]["fields"]["roles"].is_string());
    let unknown = post(
        &app,
        &people.admin,
        "/api/v1/users",
        json!({ "nickname": "x" }),
    )
    .await;
    assert_error(unknown, 400, "invalid_body").await;

    register(&app, &people, id, &["expert"]).await;
    let cases = [
        ("skills", json!({ "skills": ["ok", " "] }), "skills[1]"),
        ("skills", json!({}), "skills"),
        ("availability", json!({}), "available"),
        ("roles", json!({ "roles": [] }), "roles"),
    ];
    for (action, body, field) in cases {
        let r = post(
            &app,
            &people.admin,
            &format!("/api/v1/users/{id}/{action}"),
            body,
        )
        .await;
        let error = assert_error(r, 400, "validation_failed").await;
        assert!(
            error["error"]["details"]["fields"][field].is_string(),
            "{action}: {error}"
        );
    }
    let r = post(
        &app,
        &people.admin,
        &format!("/api/v1/users/{id}/availability"),
        json!({ "available": "yes" }),
    )
    .await;
    assert_error(r, 400, "invalid_body").await;
    let r = post(
        &app,
        &people.admin,
        &format!("/api/v1/users/{id}/promote"),
        json!({}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(history(&app, &people.auditor, id).await.len(), 1);
}

#[tokio::test]
async fn roles_tenants_and_domain_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let people = People::new();
    // Only admins register, change roles and deactivate.
    let r = post(
        &app,
        &people.manager,
        "/api/v1/users",
        user(Uuid::now_v7(), &["customer"]),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    register(&app, &people, people.expert_id, &["expert"]).await;
    let other_expert = Uuid::now_v7();
    register(&app, &people, other_expert, &["expert"]).await;
    for (action, body) in [
        ("roles", json!({ "roles": ["manager"] })),
        ("deactivate", json!({})),
    ] {
        let r = post(
            &app,
            &people.expert,
            &format!("/api/v1/users/{}/{action}", people.expert_id),
            body.clone(),
        )
        .await;
        assert_error(r, 403, "auth.forbidden").await;
        let r = post(
            &app,
            &people.manager,
            &format!("/api/v1/users/{other_expert}/{action}"),
            body,
        )
        .await;
        assert_error(r, 403, "auth.forbidden").await;
    }
    // An expert changes only their own skills and availability.
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/users/{other_expert}/availability"),
        json!({ "available": true }),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/users/{other_expert}/skills"),
        json!({ "skills": ["networking"] }),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(
        &app,
        &people.expert,
        &format!("/api/v1/users/{}/history", people.expert_id),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;

    // Another tenant's user does not exist for them.
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["admin"]);
    let r = post(
        &app,
        &stranger,
        &format!("/api/v1/users/{other_expert}/deactivate"),
        json!({}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = post(
        &app,
        &stranger,
        "/api/v1/users",
        user(other_expert, &["expert"]),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = get(
        &app,
        &stranger,
        &format!("/api/v1/users/{other_expert}/history"),
    )
    .await;
    assert_error(r, 404, "not_found").await;

    // The domain refuses.
    let r = post(
        &app,
        &people.admin,
        "/api/v1/users",
        user(other_expert, &["expert"]),
    )
    .await;
    assert_error(r, 409, "user.already_exists").await;
    let customer = Uuid::now_v7();
    register(&app, &people, customer, &["customer"]).await;
    let r = post(
        &app,
        &people.manager,
        &format!("/api/v1/users/{customer}/skills"),
        json!({ "skills": ["networking"] }),
    )
    .await;
    assert_error(r, 409, "user.not_expert").await;
    let r = post(
        &app,
        &people.admin,
        &format!("/api/v1/users/{other_expert}/deactivate"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        &app,
        &people.manager,
        &format!("/api/v1/users/{other_expert}/availability"),
        json!({ "available": true }),
    )
    .await;
    assert_error(r, 409, "user.deactivated").await;
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = Uuid::now_v7();
    register(&app, &people, id, &["customer"]).await;
    let change = |version: &str| {
        app.client
            .post(app.url(&format!("/api/v1/users/{id}/roles")))
            .bearer_auth(&people.admin)
            .header("if-match", version)
            .json(&json!({ "roles": ["customer", "sales"] }))
            .send()
    };
    let stale = change("\"2\"").await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(history(&app, &people.auditor, id).await.len(), 1);
    let ok = change("\"1\"").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
}

#[tokio::test]
async fn auditors_see_a_user_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = people.expert_id;
    register(&app, &people, id, &["expert"]).await;
    let before = chrono::Utc::now();
    for (action, body) in [
        ("skills", json!({ "skills": ["networking"] })),
        ("availability", json!({ "available": true })),
    ] {
        let r = post(
            &app,
            &people.expert,
            &format!("/api/v1/users/{id}/{action}"),
            body,
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let read = |query: String| {
        let request = app
            .client
            .get(app.url(&format!("/api/v1/users/{id}?{query}")))
            .bearer_auth(&people.auditor);
        async move { request.send().await.unwrap() }
    };
    let v1: Value = read("at_version=1".into()).await.json().await.unwrap();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "active");
    assert_eq!(v1["roles"], json!(["expert"]));
    assert_eq!(v1["skills"], json!([]));
    assert_eq!(v1["available"], false);
    let then: Value = read(format!(
        "as_of={}",
        before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(then["version"], 1);
    assert_eq!(then["available"], false);
    let v3: Value = read("at_version=3".into()).await.json().await.unwrap();
    assert_eq!(v3["skills"], json!(["networking"]));
    assert_eq!(v3["available"], true);
    assert_error(read("at_version=latest".into()).await, 400, "invalid_query").await;
    let r = get(
        &app,
        &people.expert,
        &format!("/api/v1/users/{id}?at_version=1"),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = get(
        &app,
        &people.manager,
        &format!("/api/v1/users/{}?at_version=1", Uuid::now_v7()),
    )
    .await;
    assert_error(r, 404, "not_found").await;
}
