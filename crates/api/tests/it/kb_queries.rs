//! `GET /api/v1/kb/articles` and `GET /api/v1/kb/articles/{id}` from the
//! read models: who sees retired articles, filters, sorts, cursors, tenants.

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

async fn publish(
    app: &TestApp,
    who: &str,
    title: &str,
    product: &str,
    tags: &[&str],
) -> (String, u64) {
    let body = json!({
        "title": title,
        "body": format!("How to: {title}."),
        "tags": tags,
        "product": product,
    });
    command(app, who, "/api/v1/kb/articles", body).await
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn titles(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn everyone_reads_published_articles_and_writers_also_retired_ones() {
    let app = TestApp::spawn().await;
    let expert_id = Uuid::now_v7();
    let expert = token("acme", &expert_id.to_string(), &["expert"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let (router, _) = publish(
        &app,
        &expert,
        "Restart the router",
        "SmartHub 3",
        &["wi-fi", "router"],
    )
    .await;
    let (cable, _) = publish(
        &app,
        &manager,
        "Check the cable",
        "Fibre 1000",
        &["cabling"],
    )
    .await;
    let (_, _) = publish(
        &app,
        &expert,
        "Update the firmware",
        "SmartHub 3",
        &["firmware", "wi-fi"],
    )
    .await;
    let (_, _) = command(
        &app,
        &expert,
        &format!("/api/v1/kb/articles/{router}/revise"),
        json!({ "title": "Restart the router safely", "body": "Hold it ten seconds.", "tags": ["wi-fi"] }),
    )
    .await;
    let (_, last) = command(
        &app,
        &manager,
        &format!("/api/v1/kb/articles/{cable}/retire"),
        json!({ "reason": "superseded" }),
    )
    .await;
    let list = |who: &String, query: &str| {
        let (app, path) = (
            &app,
            format!("/api/v1/kb/articles?min_position={last}&{query}"),
        );
        let who = who.clone();
        async move { json_of(get(app, &who, &path).await).await }
    };

    // Readers see published articles only, newest change first.
    let seen = list(&customer, "").await;
    assert_eq!(
        titles(&seen),
        ["Restart the router safely", "Update the firmware"]
    );
    assert!(titles(&list(&customer, "status=retired").await).is_empty());
    for role in ["sales", "approver", "analyst"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_eq!(titles(&list(&who, "").await).len(), 2, "{role}");
    }
    // Auditors read history, not the read models.
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let refused = get(&app, &auditor, "/api/v1/kb/articles").await;
    assert_eq!(refused.status(), 403);
    // Writers see retired ones too.
    assert_eq!(
        titles(&list(&expert, "").await),
        [
            "Check the cable",
            "Restart the router safely",
            "Update the firmware"
        ]
    );
    assert_eq!(
        titles(&list(&manager, "status=retired").await),
        ["Check the cable"]
    );

    // Filters and sorts.
    assert_eq!(
        titles(&list(&customer, "tag=wi-fi&sort=title").await),
        ["Restart the router safely", "Update the firmware"]
    );
    assert_eq!(
        titles(&list(&customer, "tag=firmware,cabling").await),
        ["Update the firmware"]
    );
    assert_eq!(
        titles(&list(&expert, "product=Fibre%201000").await),
        ["Check the cable"]
    );
    assert_eq!(
        titles(&list(&expert, "author_id=me&sort=-published_at").await),
        ["Update the firmware", "Restart the router safely"]
    );
    assert_eq!(
        titles(
            &list(
                &expert,
                &format!("author_id={expert_id}&status=published&sort=published_at")
            )
            .await
        ),
        ["Restart the router safely", "Update the firmware"]
    );
    let mut pages = Vec::new();
    let mut page = list(&expert, "sort=-title&limit=1").await;
    loop {
        pages.extend(titles(&page));
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = list(&expert, &format!("sort=-title&limit=1&cursor={cursor}")).await;
    }
    assert_eq!(
        pages,
        [
            "Update the firmware",
            "Restart the router safely",
            "Check the cable"
        ]
    );

    // One article: the current revision; a retired one is not found for
    // readers.
    let response = get(&app, &customer, &format!("/api/v1/kb/articles/{router}")).await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let one = json_of(response).await;
    assert_eq!(one["revision"], 2);
    assert_eq!(one["tags"], json!(["wi-fi"]));
    assert_eq!(one["author_id"], expert_id.to_string());
    assert_error(
        get(&app, &customer, &format!("/api/v1/kb/articles/{cable}")).await,
        404,
        "knowledge_article.not_found",
    )
    .await;
    let retired = json_of(get(&app, &manager, &format!("/api/v1/kb/articles/{cable}")).await).await;
    assert_eq!(retired["status"], "retired");
    assert_eq!(retired["retire_reason"], "superseded");

    // Another tenant sees nothing.
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["manager"]);
    assert!(titles(&json_of(get(&app, &stranger, "/api/v1/kb/articles").await).await).is_empty());
    assert_error(
        get(&app, &stranger, &format!("/api/v1/kb/articles/{router}")).await,
        404,
        "knowledge_article.not_found",
    )
    .await;
    assert_error(
        get(&app, &customer, "/api/v1/kb/articles?sort=revision").await,
        400,
        "invalid_query",
    )
    .await;
}
