//! Tickets through HTTP: every command, each error class, idempotency,
//! concurrency and the auditors' reads.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, post, token, TestApp};

struct People {
    customer: String,
    expert: String,
    manager: String,
    auditor: String,
}

impl People {
    fn new() -> Self {
        Self {
            customer: token("acme", &Uuid::now_v7().to_string(), &["customer"]),
            expert: token("acme", &Uuid::now_v7().to_string(), &["expert"]),
            manager: token("acme", &Uuid::now_v7().to_string(), &["manager"]),
            auditor: token("acme", &Uuid::now_v7().to_string(), &["auditor"]),
        }
    }
}

fn sub(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    use base64_decode::decode;
    let claims: Value = serde_json::from_slice(&decode(payload)).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

/// A tiny base64url decoder for reading test tokens' claims.
mod base64_decode {
    pub fn decode(input: &str) -> Vec<u8> {
        let value = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'-' | b'+' => 62,
                _ => 63,
            }
        };
        let bytes: Vec<u8> = input.bytes().filter(|&b| b != b'=').collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= value(c) << (18 - 6 * i);
            }
            let n = chunk.len() * 6 / 8;
            for i in 0..n {
                out.push((acc >> (16 - 8 * i)) as u8);
            }
        }
        out
    }
}

fn ticket_body() -> Value {
    json!({
        "contact": { "name": "Ann Customer", "email": "ann@example.com" },
        "product": "fibre-1000",
        "category": "connectivity",
        "priority": "P2",
        "required_skill": "networking",
        "title": "Packet loss on the uplink",
        "description": "Loss of 2-5 % during business hours since Monday."
    })
}

async fn open(app: &TestApp, people: &People) -> String {
    let response = post(app, &people.customer, "/api/v1/tickets", ticket_body()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/tickets/{id}/history")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_ticket_goes_from_open_to_closed() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let response = post(&app, &people.customer, "/api/v1/tickets", ticket_body()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/tickets/{id}"));
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_u64().unwrap() > 0);

    let steps = [
        (
            &people.manager,
            "assign",
            json!({ "expert_id": sub(&people.expert) }),
        ),
        (&people.expert, "accept", json!({})),
        (&people.expert, "start", json!({})),
        (
            &people.customer,
            "comments",
            json!({ "body": "Still failing this morning." }),
        ),
        (&people.expert, "priority", json!({ "priority": "P1" })),
        (
            &people.expert,
            "resolve",
            json!({ "resolution": "Replaced the faulty SFP." }),
        ),
        (&people.customer, "close", json!({})),
    ];
    let mut version = 1;
    for (who, action, body) in steps {
        let response = post(&app, who, &format!("/api/v1/tickets/{id}/{action}"), body).await;
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
    assert_eq!(types.first(), Some(&"ticket.opened"));
    assert!(
        types.contains(&"ticket.resolved") && types.contains(&"ticket.closed"),
        "{types:?}"
    );
    assert_eq!(events[0]["metadata"]["actor"], sub(&people.customer));
    assert!(events[0]["metadata"]["request_id"].is_string());

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "chronicle_commands_total{",
        "chronicle_command_duration_seconds",
        "chronicle_append_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let mut body = ticket_body();
    body["contact"]["email"] = json!("not-an-email");
    body["title"] = json!("   ");
    body["priority"] = json!("P9");
    let error = assert_error(
        post(&app, &people.customer, "/api/v1/tickets", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in ["contact.email", "title", "priority"] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    let unknown = post(
        &app,
        &people.customer,
        "/api/v1/tickets",
        json!({ "surprise": 1 }),
    )
    .await;
    assert_error(unknown, 400, "invalid_body").await;
    let not_json = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&people.customer)
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 415, "unsupported_media_type").await;
    let id = open(&app, &people).await;
    let missing = post(
        &app,
        &people.expert,
        &format!("/api/v1/tickets/{id}/reject"),
        json!({}),
    )
    .await;
    assert_error(missing, 400, "validation_failed").await;
    let unknown_action = post(
        &app,
        &people.manager,
        &format!("/api/v1/tickets/{id}/teleport"),
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
    let id = open(&app, &people).await;
    // Wrong role.
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/tickets/{id}/assign"),
        json!({ "expert_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 403, "auth.forbidden").await;
    let r = post(&app, &people.auditor, "/api/v1/tickets", ticket_body()).await;
    assert_error(r, 403, "auth.forbidden").await;
    // Another tenant's ticket does not exist for them.
    let stranger = token(
        "globex",
        &Uuid::now_v7().to_string(),
        &["manager", "auditor"],
    );
    let r = post(
        &app,
        &stranger,
        &format!("/api/v1/tickets/{id}/assign"),
        json!({ "expert_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/tickets/{id}/history")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    // Another customer's ticket does not exist for this customer.
    let other_customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let r = post(
        &app,
        &other_customer,
        &format!("/api/v1/tickets/{id}/comments"),
        json!({ "body": "hi" }),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    // The domain refuses: accepting a ticket assigned to someone else.
    post(
        &app,
        &people.manager,
        &format!("/api/v1/tickets/{id}/assign"),
        json!({ "expert_id": Uuid::now_v7() }),
    )
    .await;
    let r = post(
        &app,
        &people.expert,
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
    )
    .await;
    assert_error(r, 409, "ticket.not_assigned_expert").await;
    // A ticket that was never opened.
    let r = post(
        &app,
        &people.manager,
        &format!("/api/v1/tickets/{}/assign", Uuid::now_v7()),
        json!({ "expert_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(r, 404, "ticket.not_found").await;
    // No token at all.
    let r = app
        .client
        .post(app.url("/api/v1/tickets"))
        .json(&ticket_body())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "auth.missing_token").await;
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = open(&app, &people).await;
    let comment = |version: &str| {
        app.client
            .post(app.url(&format!("/api/v1/tickets/{id}/comments")))
            .bearer_auth(&people.customer)
            .header("if-match", version)
            .json(&json!({ "body": "checking in" }))
            .send()
    };
    let stale = comment("\"0\"").await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(
        history(&app, &people.auditor, &id).await.len(),
        1,
        "nothing written"
    );
    let ok = comment("\"1\"").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let garbage = comment("yesterday").await.unwrap();
    assert_error(garbage, 400, "invalid_if_match").await;
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_first_answer_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(&people.customer)
            .header("idempotency-key", "open-ticket-42")
            .json(&body)
            .send()
    };
    let first = send(ticket_body()).await.unwrap();
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let retry = send(ticket_body()).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the same answer, so the same ticket");
    let id = first["id"].as_str().unwrap();
    assert_eq!(history(&app, &people.auditor, id).await.len(), 1);
    let mut other = ticket_body();
    other["title"] = json!("A different ticket");
    assert_error(send(other).await.unwrap(), 422, "idempotency.key_reused").await;
    // Keys belong to a tenant: another tenant may use the same key.
    let elsewhere = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(token("globex", &Uuid::now_v7().to_string(), &["customer"]))
        .header("idempotency-key", "open-ticket-42")
        .json(&ticket_body())
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_conflicting_commands_lose_nothing() {
    let app = TestApp::spawn_with(&[("CHRONICLE_RATE_LIMIT", "100000")]).await;
    let people = People::new();
    let id = open(&app, &people).await;
    let requests = (0..50).map(|i| {
        app.client
            .post(app.url(&format!("/api/v1/tickets/{id}/comments")))
            .bearer_auth(&people.customer)
            .json(&json!({ "body": format!("comment {i}") }))
            .send()
    });
    let answers = futures::future::join_all(requests).await;
    let mut accepted = 0;
    for answer in answers {
        let answer = answer.unwrap();
        assert!(
            answer.status() == 200 || answer.status() == 409,
            "{}",
            answer.status()
        );
        accepted += usize::from(answer.status() == 200);
    }
    let events = history(&app, &people.auditor, &id).await;
    let comments = events
        .iter()
        .filter(|e| e["type"] == "ticket.commented")
        .count();
    assert_eq!(
        comments, accepted,
        "every accepted command is in the history"
    );
    assert_eq!(accepted, 50, "retries absorbed the contention");
}

#[tokio::test]
async fn auditors_see_the_state_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = open(&app, &people).await;
    let before_assignment = chrono::Utc::now();
    let expert = sub(&people.expert);
    let r = post(
        &app,
        &people.manager,
        &format!("/api/v1/tickets/{id}/assign"),
        json!({ "expert_id": expert }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let get = |query: String| {
        app.client
            .get(app.url(&format!("/api/v1/tickets/{id}?{query}")))
            .bearer_auth(&people.auditor)
            .send()
    };
    let v1: Value = get("at_version=1".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["status"], "open");
    assert_eq!(v1["version"], 1);
    let then: Value = get(format!(
        "as_of={}",
        before_assignment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(then["status"], "open");
    assert!(then["expert_id"].is_null());
    let now: Value = get("at_version=2".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], "assigned");
    assert_eq!(now["expert_id"], expert);
    assert_error(
        get("as_of=yesterday".into()).await.unwrap(),
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        get("at_version=latest".into()).await.unwrap(),
        400,
        "invalid_query",
    )
    .await;
    let customer_view = app
        .client
        .get(app.url(&format!("/api/v1/tickets/{id}?at_version=1")))
        .bearer_auth(&people.customer)
        .send()
        .await
        .unwrap();
    assert_error(customer_view, 403, "auth.forbidden").await;
}
