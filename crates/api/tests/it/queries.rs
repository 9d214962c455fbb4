//! The query side through HTTP: lists with filters, sorting and cursors,
//! single entities, scoping by role, read-your-writes.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

fn ticket(priority: &str, title: &str) -> Value {
    json!({
        "contact": { "name": "Ann Customer", "email": "ann@example.com" },
        "product": "fibre-1000",
        "category": "connectivity",
        "priority": priority,
        "required_skill": "networking",
        "title": title,
        "description": "Loss of 2-5 % during business hours since Monday."
    })
}

/// Opens a ticket as `customer`; returns (id, position).
async fn open(app: &TestApp, customer: &str, priority: &str, title: &str) -> (String, u64) {
    let response = post(app, customer, "/api/v1/tickets", ticket(priority, title)).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_command_then_a_query_with_its_position_sees_the_change_every_time() {
    let app = TestApp::spawn_with(&[("CHRONICLE_RATE_LIMIT", "100000")]).await;
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let tries = 1000;
    for i in 0..tries {
        let (id, position) = open(&app, &customer, "P3", &format!("ticket {i}")).await;
        let response = get(
            &app,
            &customer,
            &format!("/api/v1/tickets/{id}?min_position={position}"),
        )
        .await;
        assert_eq!(response.status(), 200, "try {i}");
        let reflected: u64 = response.headers()["x-chronicle-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reflected >= position);
        let body = json_of(response).await;
        assert_eq!(body["ticket_id"], id.as_str(), "try {i}");
        assert_eq!(body["title"], format!("ticket {i}"));
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page_with_cursors() {
    let app = TestApp::spawn().await;
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let mut last = 0;
    for i in 0..7 {
        let priority = if i % 2 == 0 { "P1" } else { "P4" };
        last = open(&app, &customer, priority, &format!("t{i}")).await.1;
    }
    let page = |path: String| {
        let (app, manager) = (&app, &manager);
        async move { json_of(get(app, manager, &path).await).await }
    };
    let first = page(format!("/api/v1/tickets?min_position={last}&limit=3")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert!(first["position"].as_u64().unwrap() >= last);
    // Newest first by default.
    assert_eq!(first["items"][0]["title"], "t6");
    let mut seen: Vec<String> = Vec::new();
    let mut next = first.clone();
    loop {
        for item in next["items"].as_array().unwrap() {
            seen.push(item["title"].as_str().unwrap().to_owned());
        }
        let Some(cursor) = next["next_cursor"].as_str() else {
            break;
        };
        next = page(format!("/api/v1/tickets?limit=3&cursor={cursor}")).await;
    }
    assert_eq!(seen, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);

    let p1 = page("/api/v1/tickets?priority=P1&sort=opened_at".into()).await;
    let titles: Vec<_> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["t0", "t2", "t4", "t6"]);
    let both = page("/api/v1/tickets?priority=P1,P4&status=open".into()).await;
    assert_eq!(both["items"].as_array().unwrap().len(), 7);
    let none = page("/api/v1/tickets?opened_from=2999-01-01T00:00:00Z".into()).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    assert!(none["next_cursor"].is_null());
}

#[tokio::test]
async fn customers_see_only_their_own_tickets_and_other_tenants_see_nothing() {
    let app = TestApp::spawn().await;
    let ann = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let bob = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let other_tenant = token("globex", &Uuid::now_v7().to_string(), &["manager"]);
    let (anns, _) = open(&app, &ann, "P2", "ann's").await;
    let (_, last) = open(&app, &bob, "P2", "bob's").await;

    let list =
        json_of(get(&app, &ann, &format!("/api/v1/tickets?min_position={last}")).await).await;
    let titles: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["ann's"]);
    assert_error(
        get(&app, &bob, &format!("/api/v1/tickets/{anns}")).await,
        404,
        "ticket.not_found",
    )
    .await;
    assert_error(
        get(&app, &other_tenant, &format!("/api/v1/tickets/{anns}")).await,
        404,
        "ticket.not_found",
    )
    .await;
    let theirs = json_of(get(&app, &other_tenant, "/api/v1/tickets").await).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    assert_error(
        get(&app, &sales, "/api/v1/tickets").await,
        403,
        "auth.forbidden",
    )
    .await;
}

#[tokio::test]
async fn bad_query_parameters_are_400_with_what_is_accepted() {
    let app = TestApp::spawn().await;
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    for (path, needle) in [
        ("/api/v1/tickets?colour=red", "this list takes"),
        ("/api/v1/tickets?limit=0", "limit"),
        ("/api/v1/tickets?limit=x", "limit"),
        ("/api/v1/tickets?sort=title", "sort by one of"),
        ("/api/v1/tickets?cursor=not-a-cursor", "cursor"),
        ("/api/v1/tickets?expert_id=bob", "UUID"),
        ("/api/v1/tickets?opened_from=yesterday", "RFC 3339"),
        ("/api/v1/tickets?min_position=-1", "min_position"),
    ] {
        let body = assert_error(get(&app, &manager, path).await, 400, "invalid_query").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_position_the_read_models_cannot_reach_is_a_503_and_one_past_the_log_a_400() {
    let app = TestApp::spawn().await;
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let body = assert_error(
        get(&app, &manager, "/api/v1/tickets?min_position=999999999").await,
        400,
        "invalid_query",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("past the last recorded event"));

    // An event the tickets projection cannot apply stops it there.
    let store = chronicle_store::postgres::PgEventStore::new(app._db.pool.clone());
    let poison = chronicle_store::EventStore::append(
        &store,
        &chronicle_store::StreamRef {
            tenant: chronicle_store::TenantId::parse("acme").unwrap(),
            stream_type: chronicle_store::TypeName::parse("ticket").unwrap(),
            id: chronicle_store::StreamId::parse(Uuid::now_v7().to_string()).unwrap(),
        },
        chronicle_store::ExpectedVersion::NoStream,
        &[chronicle_store::NewEvent {
            event_id: Uuid::now_v7(),
            event_type: chronicle_store::TypeName::parse("ticket.commented").unwrap(),
            schema_version: 1,
            data: json!({ "not": "a comment" }),
            metadata: Default::default(),
            personal: None,
        }],
    )
    .await
    .unwrap()
    .last_position();
    let started = std::time::Instant::now();
    let response = get(
        &app,
        &manager,
        &format!("/api/v1/tickets?min_position={poison}"),
    )
    .await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = assert_error(response, 503, "projection_lagging").await;
    assert_eq!(body["error"]["details"]["min_position"], poison);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn admins_see_projection_status_and_trigger_rebuilds() {
    let app = TestApp::spawn().await;
    let admin = token("acme", "root", &["admin"]);
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let (_, position) = open(&app, &customer, "P2", "before the rebuild").await;
    assert_error(
        get(&app, &customer, "/api/v1/admin/projections").await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        post(
            &app,
            &admin,
            "/api/v1/admin/projections/nope/rebuild",
            json!({}),
        )
        .await,
        404,
        "projection.not_found",
    )
    .await;
    let response = post(
        &app,
        &admin,
        "/api/v1/admin/projections/tickets/rebuild",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let body = json_of(get(&app, &admin, "/api/v1/admin/projections").await).await;
        let tickets = body["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "tickets")
            .unwrap()
            .clone();
        assert!(tickets["head"].as_u64().unwrap() >= position);
        if tickets["rebuild_requested"] == false && !tickets["rebuilt_at"].is_null() {
            assert_eq!(tickets["state"], "running");
            assert!(tickets["position"].as_u64().unwrap() >= position);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{tickets}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = json_of(get(&app, &customer, "/api/v1/tickets").await).await;
    assert_eq!(list["items"][0]["title"], "before the rebuild");
}
