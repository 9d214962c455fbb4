//! `GET /api/v1/leads` and `GET /api/v1/leads/{id}` from the read model:
//! filters, sorts, cursors, roles, tenants.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

fn lead(company: &str, source: &str, service: &str, amount_minor: i64) -> Value {
    json!({
        "company": company,
        "contact": { "name": "Peter Gibbons", "email": "peter@initech.example" },
        "site_address": "Hauptstrasse 1, 10115 Berlin",
        "service": service,
        "bandwidth_mbps": 1000,
        "estimated_value": { "amount_minor": amount_minor, "currency": "EUR" },
        "source": source
    })
}

/// Captures a lead; returns (id, position).
async fn capture(app: &TestApp, sales: &str, body: Value) -> (String, u64) {
    let response = post(app, sales, "/api/v1/leads", body).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

/// Acts on a lead; returns the answer's position.
async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> u64 {
    let response = post(app, token, &format!("/api/v1/leads/{id}/{action}"), body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{action}: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["position"]
        .as_u64()
        .unwrap()
}

async fn page(app: &TestApp, token: &str, path: &str) -> Value {
    let response = get(app, token, path).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn companies(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["company"].as_str().unwrap().to_owned())
        .collect()
}

/// Follows `next_cursor` from `first` to the end; the companies in order.
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut next = page(app, token, path).await;
    let mut seen = companies(&next);
    while let Some(cursor) = next["next_cursor"].as_str() {
        next = page(app, token, &format!("{path}{sep}cursor={cursor}")).await;
        seen.extend(companies(&next));
    }
    seen
}

#[tokio::test]
async fn lead_lists_filter_sort_and_page() {
    let app = TestApp::spawn().await;
    let sales_id = Uuid::now_v7();
    let sales = token("acme", &sales_id.to_string(), &["sales"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let dia = "Dedicated Internet Access";
    let (a, _) = capture(&app, &sales, lead("Alpha", "web form", dia, 300)).await;
    let (b, _) = capture(&app, &sales, lead("Bravo", "partner", dia, 100)).await;
    let between = chrono::Utc::now();
    let (c, _) = capture(&app, &sales, lead("Charlie", "partner", "SD-WAN", 500)).await;
    let (_d, _) = capture(&app, &sales, lead("Delta", "web form", "SD-WAN", 200)).await;
    act(&app, &manager, &a, "owner", json!({ "owner_id": sales_id })).await;
    act(&app, &manager, &c, "owner", json!({ "owner_id": sales_id })).await;
    act(&app, &sales, &b, "qualify", json!({ "score": 55 })).await;
    let before_close = chrono::Utc::now();
    let close = json!({ "outcome": "lost", "reason": "Went with a competitor" });
    let last = act(&app, &sales, &c, "close", close).await;

    // Newest first by default, two per page.
    let first = page(
        &app,
        &manager,
        &format!("/api/v1/leads?min_position={last}&limit=2"),
    )
    .await;
    assert!(first["position"].as_u64().unwrap() >= last);
    assert_eq!(companies(&first), ["Delta", "Charlie"]);
    assert_eq!(
        all_pages(&app, &manager, "/api/v1/leads?limit=2").await,
        ["Delta", "Charlie", "Bravo", "Alpha"]
    );
    // By estimated value, both ways, across pages.
    assert_eq!(
        all_pages(&app, &manager, "/api/v1/leads?limit=3&sort=estimated_value").await,
        ["Bravo", "Delta", "Alpha", "Charlie"]
    );
    assert_eq!(
        all_pages(
            &app,
            &manager,
            "/api/v1/leads?limit=1&sort=-estimated_value"
        )
        .await,
        ["Charlie", "Alpha", "Delta", "Bravo"]
    );
    assert_eq!(
        all_pages(&app, &manager, "/api/v1/leads?limit=3&sort=-company").await,
        ["Delta", "Charlie", "Bravo", "Alpha"]
    );
    let by_update = all_pages(&app, &manager, "/api/v1/leads?limit=3&sort=-updated_at").await;
    assert_eq!(by_update[0], "Charlie", "closed last");

    let list = |query: &str| {
        let (app, manager) = (&app, &manager);
        let path = format!("/api/v1/leads?sort=company&{query}");
        async move { companies(&page(app, manager, &path).await) }
    };
    assert_eq!(list("stage=qualified").await, ["Bravo"]);
    assert_eq!(
        list("status=captured,closed").await,
        ["Alpha", "Charlie", "Delta"]
    );
    assert_eq!(list("source=partner").await, ["Bravo", "Charlie"]);
    assert_eq!(list("service=SD-WAN").await, ["Charlie", "Delta"]);
    assert_eq!(
        list(&format!("owner_id={sales_id}")).await,
        ["Alpha", "Charlie"]
    );
    assert_eq!(list("outcome=lost").await, ["Charlie"]);
    assert_eq!(list("outcome=won").await, Vec::<String>::new());
    let t = |time: chrono::DateTime<chrono::Utc>| {
        time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    assert_eq!(
        list(&format!("captured_from={}", t(between))).await,
        ["Charlie", "Delta"]
    );
    assert_eq!(
        list(&format!("captured_to={}", t(between))).await,
        ["Alpha", "Bravo"]
    );
    assert_eq!(
        list(&format!("closed_from={}", t(before_close))).await,
        ["Charlie"]
    );
    assert_eq!(
        list(&format!("closed_to={}", t(before_close))).await,
        Vec::<String>::new()
    );
    // `me` is the caller.
    let mine = page(&app, &sales, "/api/v1/leads?owner_id=me&sort=company").await;
    assert_eq!(companies(&mine), ["Alpha", "Charlie"]);

    for (path, needle) in [
        ("/api/v1/leads?priority=P1", "this list takes"),
        ("/api/v1/leads?sort=score", "sort by one of"),
        ("/api/v1/leads?owner_id=bob", "UUID"),
        ("/api/v1/leads?closed_from=yesterday", "RFC 3339"),
    ] {
        let body = assert_error(get(&app, &manager, path).await, 400, "invalid_query").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_lead_by_id_comes_from_the_read_model_at_a_known_position() {
    let app = TestApp::spawn().await;
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let (id, _) = capture(
        &app,
        &sales,
        lead("Initech GmbH", "web form", "DIA", 1_200_000),
    )
    .await;
    act(&app, &sales, &id, "qualify", json!({ "score": 80 })).await;
    let check = json!({ "feasible": true, "notes": "Fibre in the street" });
    let position = act(&app, &sales, &id, "serviceability", check).await;

    let response = get(
        &app,
        &sales,
        &format!("/api/v1/leads/{id}?min_position={position}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"3\"");
    let reflected: u64 = response.headers()["x-chronicle-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reflected >= position);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["lead_id"], id.as_str());
    assert_eq!(body["company"], "Initech GmbH");
    assert_eq!(body["stage"], "serviceability_checked");
    assert_eq!(body["score"], 80);
    assert_eq!(body["feasible"], true);
    assert_eq!(body["serviceability_notes"], "Fibre in the street");
    assert_eq!(body["amount_minor"], 1_200_000);
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["contact_email"], "peter@initech.example");
    assert_eq!(body["stage_count"], 3);
    assert_eq!(body["version"], 3);
    // The header works as well as the parameter.
    let response = app
        .client
        .get(app.url(&format!("/api/v1/leads/{id}")))
        .bearer_auth(&sales)
        .header("x-chronicle-min-position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The auditors' fold is still there, beside it.
    let then = page(&app, &auditor, &format!("/api/v1/leads/{id}?at_version=1")).await;
    assert_eq!(then["stage"], "captured");
    assert_error(
        get(&app, &sales, &format!("/api/v1/leads/{}", Uuid::now_v7())).await,
        404,
        "lead.not_found",
    )
    .await;
    assert_error(
        get(&app, &sales, "/api/v1/leads/not-a-uuid").await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn leads_are_read_by_sales_managers_approvers_and_analysts_of_the_tenant() {
    let app = TestApp::spawn().await;
    let as_role = |tenant: &str, role: &str| token(tenant, &Uuid::now_v7().to_string(), &[role]);
    let sales = as_role("acme", "sales");
    let (id, position) = capture(&app, &sales, lead("Initech GmbH", "web form", "DIA", 1)).await;
    for role in ["sales", "manager", "approver", "analyst", "admin"] {
        let reader = as_role("acme", role);
        let list = page(
            &app,
            &reader,
            &format!("/api/v1/leads?min_position={position}"),
        )
        .await;
        assert_eq!(companies(&list), ["Initech GmbH"], "{role}");
        let one = page(&app, &reader, &format!("/api/v1/leads/{id}")).await;
        assert_eq!(one["lead_id"], id.as_str(), "{role}");
    }
    // Auditors read history and past states, not the read models.
    for role in ["customer", "expert", "auditor"] {
        let outsider = as_role("acme", role);
        assert_error(
            get(&app, &outsider, "/api/v1/leads").await,
            403,
            "auth.forbidden",
        )
        .await;
        assert_error(
            get(&app, &outsider, &format!("/api/v1/leads/{id}")).await,
            403,
            "auth.forbidden",
        )
        .await;
    }
    // Another tenant: not found, and an empty list, whatever the role.
    let stranger = token(
        "globex",
        &Uuid::now_v7().to_string(),
        &["manager", "auditor", "admin"],
    );
    assert_error(
        get(&app, &stranger, &format!("/api/v1/leads/{id}")).await,
        404,
        "lead.not_found",
    )
    .await;
    let theirs = page(
        &app,
        &stranger,
        &format!("/api/v1/leads?min_position={position}&source=web%20form"),
    )
    .await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let unauthenticated = app
        .client
        .get(app.url("/api/v1/leads"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}
