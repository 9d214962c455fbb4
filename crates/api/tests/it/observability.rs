//! Request ids, metrics, limits and the error-format fallbacks.

use crate::helpers::{assert_error, token, TestApp};

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-chosen-42");

    let generated = reqwest::get(app.url("/healthz")).await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);

    let insane = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    let id = insane.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an overlong id is replaced"
    );

    let error = app.me(None).await;
    assert!(
        error.headers().contains_key("x-request-id"),
        "errors carry it too"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    let me = app.me(Some(&token("acme", "ann", &[]))).await;
    assert_eq!(me.status(), 200);
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let counted = |route: &str| {
        text.lines().any(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains("status=\"200\"")
        })
    };
    assert!(counted("/healthz"), "{text}");
    assert!(
        counted("/api/v1/me"),
        "the matched route, not the raw path: {text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "a latency histogram: {text}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_in_the_error_format() {
    let app = TestApp::spawn_with(&[("CHRONICLE_MAX_BODY_BYTES", "2048")]).await;
    let response = app
        .client
        .post(app.url("/api/v1/me"))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 413, "payload_too_large").await;
    assert_eq!(body["error"]["details"]["limit_bytes"], 2048);
    // A command with a body past the limit: refused, and nothing written.
    let customer = token("acme", &uuid::Uuid::now_v7().to_string(), &["customer"]);
    let description = "x".repeat(4096);
    let response = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&customer)
        .json(&serde_json::json!({
            "contact": { "name": "Ann", "email": "ann@example.com" },
            "product": "fibre", "category": "outage", "priority": "P3",
            "required_skill": "networking",
            "title": "Too long", "description": description
        }))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app._db.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_error_format() {
    let app = TestApp::spawn().await;
    let missing = reqwest::get(app.url("/api/v1/nothing-here")).await.unwrap();
    assert!(missing.headers().contains_key("x-request-id"));
    assert_error(missing, 404, "route_not_found").await;
    let wrong = app
        .client
        .delete(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_error(wrong, 405, "method_not_allowed").await;
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("nothing-here"),
        "unmatched paths do not become labels"
    );
}
