//! `GET /api/v1/approvals` and `GET /api/v1/approvals/{id}` from the read
//! models: filters, sorting, cursors, roles, tenants, and the inbox
//! (`?pending_for=me`).

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

/// Posts and returns the answer's (id, position).
async fn command(app: &TestApp, who: &str, path: &str, body: Value) -> (String, u64) {
    let response = post(app, who, path, body).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.text().await.unwrap()
    );
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

async fn request(app: &TestApp, who: &str, body: Value) -> (String, u64) {
    command(app, who, "/api/v1/approvals", body).await
}

async fn approve(app: &TestApp, who: &str, id: &str) -> u64 {
    let path = format!("/api/v1/approvals/{id}/decisions");
    command(app, who, &path, json!({ "decision": "approve" }))
        .await
        .1
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approval_id"].as_str().unwrap().to_owned())
        .collect()
}

fn one_level(kind: &str, subject: Uuid, approver: Value) -> Value {
    json!({
        "subject": { "kind": kind, "id": subject },
        "value": { "amount_minor": 120_000, "currency": "EUR" },
        "levels": [{ "approvers": [approver], "required": 1, "due_secs": 3600 }]
    })
}

#[tokio::test]
async fn approvals_are_listed_with_filters_sorts_and_cursors_and_read_one_by_one() {
    let app = TestApp::spawn().await;
    let sales_id = Uuid::now_v7();
    let sales = token("acme", &sales_id.to_string(), &["sales"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let approver = token("acme", &Uuid::now_v7().to_string(), &["approver"]);
    let contract = Uuid::now_v7();
    let mut made = Vec::new();
    let mut last = 0;
    for i in 0..5 {
        let (kind, subject, who) = if i < 3 {
            (
                "contract",
                if i == 0 { contract } else { Uuid::now_v7() },
                &sales,
            )
        } else {
            ("lead_design", Uuid::now_v7(), &manager)
        };
        let (id, position) = request(
            &app,
            who,
            one_level(kind, subject, json!({ "role": "approver" })),
        )
        .await;
        made.push(id);
        last = position;
    }
    // The first is granted, the second rejected.
    approve(&app, &approver, &made[0]).await;
    let (_, position) = command(
        &app,
        &approver,
        &format!("/api/v1/approvals/{}/decisions", made[1]),
        json!({ "decision": "reject", "comment": "over budget" }),
    )
    .await;
    last = last.max(position);
    let page = |path: String| {
        let (app, manager) = (&app, &manager);
        async move { json_of(get(app, manager, &path).await).await }
    };

    // Newest first by default; cursors walk every page.
    let first = page(format!("/api/v1/approvals?min_position={last}&limit=2")).await;
    assert!(first["position"].as_u64().unwrap() >= last);
    let mut seen = ids(&first);
    let mut next = first;
    while let Some(cursor) = next["next_cursor"].as_str() {
        next = page(format!("/api/v1/approvals?limit=2&cursor={cursor}")).await;
        seen.extend(ids(&next));
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let oldest_first = page("/api/v1/approvals?sort=requested_at".into()).await;
    assert_eq!(ids(&oldest_first), made);

    let open = page("/api/v1/approvals?status=open&sort=requested_at".into()).await;
    assert_eq!(ids(&open), made[2..]);
    let ended = page("/api/v1/approvals?status=granted,rejected&sort=requested_at".into()).await;
    assert_eq!(ids(&ended), made[..2]);
    assert_eq!(ended["items"][0]["outcome"], "granted");
    assert_eq!(ended["items"][1]["outcome_comment"], "over budget");
    let designs = page("/api/v1/approvals?subject_kind=lead_design&sort=requested_at".into()).await;
    assert_eq!(ids(&designs), made[3..]);
    let of_contract = page(format!("/api/v1/approvals?subject_id={contract}")).await;
    assert_eq!(ids(&of_contract), made[..1]);
    let by_sales = page(format!(
        "/api/v1/approvals?requested_by={sales_id}&sort=requested_at"
    ))
    .await;
    assert_eq!(ids(&by_sales), made[..3]);
    let mine = json_of(
        get(
            &app,
            &sales,
            "/api/v1/approvals?requested_by=me&sort=requested_at",
        )
        .await,
    )
    .await;
    assert_eq!(ids(&mine), made[..3]);
    let future = page("/api/v1/approvals?requested_from=2999-01-01T00:00:00Z".into()).await;
    assert!(ids(&future).is_empty());
    let past = page("/api/v1/approvals?requested_to=2999-01-01T00:00:00Z".into()).await;
    assert_eq!(ids(&past).len(), 5);

    // One approval: the read model's row, with its version as ETag.
    let response = get(&app, &approver, &format!("/api/v1/approvals/{}", made[0])).await;
    assert_eq!(response.headers()["etag"], "\"4\"");
    let one = json_of(response).await;
    assert_eq!(one["status"], "granted");
    assert_eq!(one["subject_id"], contract.to_string());
    assert_eq!(one["value_minor"], 120_000);
    assert_eq!(one["level_count"], 1);

    // Roles and tenants.
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    assert_error(
        get(&app, &customer, "/api/v1/approvals").await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        get(&app, &customer, &format!("/api/v1/approvals/{}", made[0])).await,
        403,
        "auth.forbidden",
    )
    .await;
    for role in ["approver", "sales", "analyst", "admin"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_eq!(
            ids(&json_of(get(&app, &who, "/api/v1/approvals").await).await).len(),
            5
        );
    }
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["manager"]);
    assert!(ids(&json_of(get(&app, &stranger, "/api/v1/approvals").await).await).is_empty());
    assert_error(
        get(&app, &stranger, &format!("/api/v1/approvals/{}", made[0])).await,
        404,
        "approval.not_found",
    )
    .await;
    assert_error(
        get(&app, &manager, "/api/v1/approvals?sort=value_minor").await,
        400,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn pending_for_me_lists_the_approvals_awaiting_the_caller() {
    let app = TestApp::spawn().await;
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    let approver_a = token("acme", &Uuid::now_v7().to_string(), &["approver"]);
    let approver_b = token("acme", &Uuid::now_v7().to_string(), &["approver"]);
    let director_id = Uuid::now_v7();
    let director = token("acme", &director_id.to_string(), &["sales"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    // Two approvers by role, then the director by name.
    let (two_levels, _) = request(
        &app,
        &sales,
        json!({
            "subject": { "kind": "contract", "id": Uuid::now_v7() },
            "levels": [
                { "approvers": [{ "role": "approver" }], "required": 2 },
                { "approvers": [{ "user_id": director_id }], "required": 1 }
            ]
        }),
    )
    .await;
    let (for_director, last) = request(
        &app,
        &sales,
        one_level(
            "lead_design",
            Uuid::now_v7(),
            json!({ "user_id": director_id }),
        ),
    )
    .await;
    let pending = |who: &String, min: u64| {
        let (app, who) = (&app, who.clone());
        async move {
            ids(&json_of(
                get(
                    app,
                    &who,
                    &format!("/api/v1/approvals?pending_for=me&min_position={min}"),
                )
                .await,
            )
            .await)
        }
    };
    assert_eq!(pending(&approver_a, last).await, [two_levels.as_str()]);
    assert_eq!(pending(&approver_b, last).await, [two_levels.as_str()]);
    assert_eq!(pending(&director, last).await, [for_director.as_str()]);
    assert!(pending(&manager, last).await.is_empty());

    // Approver a decided at level 0: no longer theirs; b is still asked.
    let last = approve(&app, &approver_a, &two_levels).await;
    assert!(pending(&approver_a, last).await.is_empty());
    assert_eq!(pending(&approver_b, last).await, [two_levels.as_str()]);
    // b completes level 0: the director is asked for both now (newest first).
    let last = approve(&app, &approver_b, &two_levels).await;
    assert!(pending(&approver_b, last).await.is_empty());
    assert_eq!(
        pending(&director, last).await,
        [for_director.clone(), two_levels.clone()]
    );
    // The director decides one; the other stays.
    let last = approve(&app, &director, &for_director).await;
    assert_eq!(pending(&director, last).await, [two_levels.as_str()]);
    // Combined with other filters.
    let designs = json_of(
        get(
            &app,
            &director,
            "/api/v1/approvals?pending_for=me&subject_kind=lead_design",
        )
        .await,
    )
    .await;
    assert!(ids(&designs).is_empty());
    let body = assert_error(
        get(&app, &manager, "/api/v1/approvals?pending_for=someone").await,
        400,
        "invalid_query",
    )
    .await;
    assert!(body["error"]["message"].as_str().unwrap().contains("me"));
}
