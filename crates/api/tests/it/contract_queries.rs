//! `GET /api/v1/contracts` and `GET /api/v1/contracts/{id}` from the read
//! model: who may see which contract, filters, sorts, cursors, tenants.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

fn contract(
    title: &str,
    counterparty: &str,
    amount_minor: i64,
    currency: &str,
    end: &str,
) -> Value {
    json!({
        "title": title,
        "parties": [
            { "name": "Acme Networks Ltd", "kind": "organisation", "role": "supplier" },
            { "name": counterparty, "kind": "organisation", "role": "customer" }
        ],
        "counterparty": {
            "organisation": counterparty,
            "contact": { "name": "Hank Scorpio", "email": "hank@globex.example" }
        },
        "value": { "amount_minor": amount_minor, "currency": currency },
        "start_date": "2026-01-01",
        "end_date": end,
        "body": "The supplier provides managed fibre."
    })
}

/// Drafts a contract as `owner`; returns (id, position).
async fn draft(app: &TestApp, owner: &str, body: Value) -> (String, u64) {
    let response = post(app, owner, "/api/v1/contracts", body).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

/// Acts on a contract; returns the answer's position.
async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> u64 {
    let response = post(
        app,
        token,
        &format!("/api/v1/contracts/{id}/{action}"),
        body,
    )
    .await;
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

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Every title of a list, following `next_cursor` to the end.
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let mut next = page(app, token, path).await;
    let mut seen = titles(&next);
    while let Some(cursor) = next["next_cursor"].as_str() {
        next = page(app, token, &format!("{path}&cursor={cursor}")).await;
        seen.extend(titles(&next));
    }
    seen
}

struct User {
    id: Uuid,
    token: String,
}

fn user(tenant: &str, roles: &[&str]) -> User {
    let id = Uuid::now_v7();
    User {
        id,
        token: token(tenant, &id.to_string(), roles),
    }
}

#[tokio::test]
async fn a_contract_is_seen_by_its_owner_its_grantees_and_the_roles_that_see_all() {
    let app = TestApp::spawn().await;
    let alice = user("acme", &["sales"]);
    let bob = user("acme", &["sales"]);
    let carol = user("acme", &["expert"]);
    let dave = user("acme", &["approver"]);
    let erin = user("acme", &["customer"]);
    let (alices, _) = draft(
        &app,
        &alice.token,
        contract("Alice's", "Globex Corp", 100, "EUR", "2026-12-31"),
    )
    .await;
    let (bobs, _) = draft(
        &app,
        &bob.token,
        contract("Bob's", "Initech", 200, "EUR", "2026-12-31"),
    )
    .await;
    act(
        &app,
        &alice.token,
        &alices,
        "shares",
        json!({ "user_id": carol.id }),
    )
    .await;
    let last = act(
        &app,
        &bob.token,
        &bobs,
        "shares",
        json!({ "role": "approver" }),
    )
    .await;

    let visible = |who: &User, query: &str| {
        let (app, token) = (&app, who.token.clone());
        let path = format!("/api/v1/contracts?sort=drafted_at&min_position={last}{query}");
        async move { titles(&page(app, &token, &path).await) }
    };
    let both = ["Alice's", "Bob's"];
    assert_eq!(visible(&alice, "").await, ["Alice's"], "the owner");
    assert_eq!(visible(&bob, "").await, ["Bob's"], "the owner");
    assert_eq!(
        visible(&carol, "").await,
        ["Alice's"],
        "shared with the user"
    );
    assert_eq!(visible(&dave, "").await, ["Bob's"], "shared with a role");
    assert_eq!(
        visible(&erin, "").await,
        Vec::<String>::new(),
        "nothing shared"
    );
    for role in ["manager", "analyst", "admin"] {
        assert_eq!(visible(&user("acme", &[role]), "").await, both, "{role}");
    }
    // Auditors read history and past states, not the read models.
    let auditor = user("acme", &["auditor"]);
    let r = get(&app, &auditor.token, "/api/v1/contracts").await;
    assert_eq!(r.status(), 403);
    // A role that sees all wins over a narrower one held beside it.
    assert_eq!(
        visible(&user("acme", &["sales", "analyst"]), "").await,
        both
    );
    // Filters never reveal what the scope hides, even exact ones.
    let exact = "&counterparty=Globex%20Corp&status=draft&currency=EUR";
    assert_eq!(visible(&erin, exact).await, Vec::<String>::new());
    assert_eq!(visible(&dave, exact).await, Vec::<String>::new());
    assert_eq!(visible(&bob, exact).await, Vec::<String>::new());
    assert_eq!(
        visible(&erin, &format!("&owner_id={}", alice.id)).await,
        Vec::<String>::new()
    );
    assert_eq!(visible(&carol, exact).await, ["Alice's"]);

    let one = |who: &User, id: &str| {
        let (app, token, path) = (&app, who.token.clone(), format!("/api/v1/contracts/{id}"));
        async move { get(app, &token, &path).await }
    };
    for (who, id) in [
        (&erin, &alices),
        (&dave, &alices),
        (&bob, &alices),
        (&carol, &bobs),
    ] {
        assert_error(one(who, id).await, 404, "contract.not_found").await;
    }
    for (who, id) in [
        (&alice, &alices),
        (&carol, &alices),
        (&dave, &bobs),
        (&bob, &bobs),
    ] {
        let response = one(who, id).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["contract_id"], id.as_str());
    }
    let shared: Value = one(&carol, &alices).await.json().await.unwrap();
    assert_eq!(shared["shared_with_users"], json!([carol.id]));
    assert_eq!(shared["counterparty"], "Globex Corp");

    // Unsharing takes it away again.
    let unshared = act(
        &app,
        &alice.token,
        &alices,
        "unshare",
        json!({ "user_id": carol.id }),
    )
    .await;
    let path = format!("/api/v1/contracts/{alices}?min_position={unshared}");
    assert_error(
        get(&app, &carol.token, &path).await,
        404,
        "contract.not_found",
    )
    .await;
    assert_eq!(visible(&carol, "").await, Vec::<String>::new());

    // Another tenant sees nothing, whatever its roles.
    let stranger = user("globex", &["sales", "manager", "auditor", "admin"]);
    assert_error(one(&stranger, &alices).await, 404, "contract.not_found").await;
    assert_eq!(visible(&stranger, "").await, Vec::<String>::new());
    assert_eq!(
        visible(&stranger, "&counterparty=Globex%20Corp").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn contract_lists_filter_sort_and_page() {
    let app = TestApp::spawn().await;
    let sales = user("acme", &["sales"]);
    let other_sales = user("acme", &["sales"]);
    let manager = user("acme", &["manager"]);
    let admin = user("acme", &["admin"]);
    let (_one, _) = draft(
        &app,
        &sales.token,
        contract("one", "Globex Corp", 1_000_000, "EUR", "2027-06-30"),
    )
    .await;
    let (_two, _) = draft(
        &app,
        &other_sales.token,
        contract("two", "Initech", 5_000_000, "USD", "2027-01-31"),
    )
    .await;
    let (three, _) = draft(
        &app,
        &sales.token,
        contract("three", "Globex Corp", 3_000_000, "EUR", "2028-12-31"),
    )
    .await;
    // Three is approved and signed.
    let response = post(
        &app,
        &sales.token,
        "/api/v1/approvals",
        json!({
            "subject": { "kind": "contract", "id": three },
            "value": { "amount_minor": 3_000_000, "currency": "EUR" },
            "levels": [{ "approvers": [{ "role": "approver" }], "required": 1 }]
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let approval = response.json::<Value>().await.unwrap()["id"].clone();
    act(
        &app,
        &sales.token,
        &three,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &admin.token,
        &three,
        "approve",
        json!({ "approval_id": approval }),
    )
    .await;
    let before_signing = chrono::Utc::now();
    let last = act(
        &app,
        &sales.token,
        &three,
        "sign",
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;

    let m = &manager.token;
    let first = page(
        &app,
        m,
        &format!("/api/v1/contracts?min_position={last}&limit=2"),
    )
    .await;
    assert!(first["position"].as_u64().unwrap() >= last);
    // Newest draft first by default.
    assert_eq!(titles(&first), ["three", "two"]);
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=2").await,
        ["three", "two", "one"]
    );
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=2&sort=value").await,
        ["one", "three", "two"]
    );
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=1&sort=-value").await,
        ["two", "three", "one"]
    );
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=2&sort=end_date").await,
        ["two", "one", "three"]
    );
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=1&sort=-end_date").await,
        ["three", "one", "two"]
    );
    assert_eq!(
        all_pages(&app, m, "/api/v1/contracts?limit=1&sort=-updated_at").await,
        ["three", "two", "one"]
    );

    let list = |query: &str| {
        let path = format!("/api/v1/contracts?sort=value&{query}");
        let app = &app;
        async move { titles(&page(app, m, &path).await) }
    };
    assert_eq!(list("status=signed").await, ["three"]);
    assert_eq!(list("status=draft,signed").await, ["one", "three", "two"]);
    assert_eq!(list("counterparty=Globex%20Corp").await, ["one", "three"]);
    assert_eq!(list("currency=USD").await, ["two"]);
    assert_eq!(
        list(&format!("owner_id={}", sales.id)).await,
        ["one", "three"]
    );
    assert_eq!(
        list("ends_from=2027-03-01T00:00:00Z&ends_to=2028-01-01T00:00:00Z").await,
        ["one"]
    );
    // Dates work too, and a time counts from the first midnight (UTC)
    // at or after it: a term ending on 2027-06-30 ends before 06-30T00:01.
    assert_eq!(list("ends_to=2027-06-30").await, ["two"]);
    assert_eq!(list("ends_to=2027-06-30T00:01:00Z").await, ["one", "two"]);
    assert_eq!(list("ends_from=2027-06-30").await, ["one", "three"]);
    assert_eq!(list("ends_from=2027-06-29T23:00:00-02:00").await, ["three"]);
    let t = before_signing.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(list(&format!("signed_from={t}")).await, ["three"]);
    assert_eq!(list(&format!("signed_to={t}")).await, Vec::<String>::new());
    // `me` is the caller: sales see their own through the filter, too.
    let mine = page(
        &app,
        &sales.token,
        "/api/v1/contracts?owner_id=me&sort=value",
    )
    .await;
    assert_eq!(titles(&mine), ["one", "three"]);

    // The single contract carries what the lists do, with its ETag.
    let response = get(&app, m, &format!("/api/v1/contracts/{three}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"4\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "signed");
    assert_eq!(body["signatory_name"], "Hank Scorpio");
    assert_eq!(body["approval_id"], approval);
    assert_eq!(body["end_date"], "2028-12-31");
    assert_eq!(body["amount_minor"], 3_000_000);
    assert_eq!(body["contract_version"], 1);

    for (path, needle) in [
        ("/api/v1/contracts?priority=P1", "this list takes"),
        ("/api/v1/contracts?sort=title", "sort by one of"),
        ("/api/v1/contracts?owner_id=alice", "UUID"),
        ("/api/v1/contracts?ends_from=soon", "a date"),
        ("/api/v1/contracts?signed_to=2027-01-01", "RFC 3339"),
    ] {
        let body = assert_error(get(&app, m, path).await, 400, "invalid_query").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}
