//! The OpenAPI document at `/openapi.json` and the docs at `/docs`: the
//! document is OpenAPI 3.1, every operation it names exists, and it drifts
//! from neither the router (every `.route(...)` in `src/`) nor the actions
//! each module dispatches (their 404 lists them) nor the fields each action
//! requires.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, token, TestApp};

fn admin() -> String {
    token("acme", &Uuid::now_v7().to_string(), &["admin"])
}

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no token is needed");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    response.json().await.unwrap()
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

/// Replaces every `{param}` with a fresh UUID.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                Uuid::now_v7().to_string()
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_security_examples_and_headers() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
        })
    );
    assert_eq!(doc["security"], json!([{ "bearerAuth": [] }]));
    for public in ["/healthz", "/readyz", "/openapi.json", "/metrics"] {
        assert_eq!(
            doc["paths"][public]["get"]["security"],
            json!([]),
            "{public}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CommandAnswer"]["required"],
        json!(["id", "version", "position"])
    );
    assert_eq!(
        schemas["Error"]["properties"]["error"]["required"],
        json!(["code", "message", "details"])
    );
    let parameters = &doc["components"]["parameters"];
    for (name, header) in [
        ("XRequestId", "X-Request-Id"),
        ("IfMatch", "If-Match"),
        ("IdempotencyKey", "Idempotency-Key"),
    ] {
        assert_eq!(parameters[name]["name"], header);
        assert_eq!(parameters[name]["in"], "header");
    }
    for status in [
        "400", "401", "403", "404", "409", "412", "413", "415", "422", "429",
    ] {
        let example = &doc["components"]["responses"][status]["content"]["application/json"]
            ["examples"]["error"]["value"]["error"];
        assert!(example["code"].is_string(), "{status}: {example}");
    }

    // Every create: a request example, 201 with Location and ETag, and the
    // command answer's example.
    for collection in [
        "tickets",
        "leads",
        "contracts",
        "approvals",
        "kb/articles",
        "users",
    ] {
        let op = &doc["paths"][format!("/api/v1/{collection}")]["post"];
        let content = &op["requestBody"]["content"]["application/json"];
        assert!(
            content["examples"]["example"]["value"].is_object(),
            "{collection}"
        );
        let created = &op["responses"]["201"];
        assert!(created["headers"]["Location"].is_object(), "{collection}");
        assert!(created["headers"]["ETag"].is_object(), "{collection}");
        assert!(
            created["content"]["application/json"]["examples"]["answer"]["value"]["id"].is_string()
        );
        let refs: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["$ref"].as_str())
            .collect();
        assert!(
            refs.contains(&"#/components/parameters/IfMatch"),
            "{collection}"
        );
        assert!(
            refs.contains(&"#/components/parameters/IdempotencyKey"),
            "{collection}"
        );
    }

    // An action: its own body, who may run it, the answer and the errors.
    let assign = &doc["paths"]["/api/v1/tickets/{id}/assign"]["post"];
    let schema = &assign["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(schema["required"], json!(["expert_id"]));
    assert_eq!(
        schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["expert_id"]
    );
    assert!(assign["description"].as_str().unwrap().contains("manager"));
    for status in [
        "200", "400", "401", "403", "404", "409", "412", "415", "422", "429",
    ] {
        assert!(assign["responses"][status].is_object(), "{status}");
    }

    // The example bodies are accepted as they are.
    let admin = admin();
    let example = doc["paths"]["/api/v1/leads"]["post"]["requestBody"]["content"]
        ["application/json"]["examples"]["example"]["value"]
        .clone();
    let response = send(&app, &admin, "POST", "/api/v1/leads", Some(example)).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["id"].is_string() && answer["version"] == 1,
        "{answer}"
    );
}

/// Every operation in the document answers something it documents, never
/// "no such endpoint" or "method not allowed".
#[tokio::test]
async fn every_documented_operation_exists_and_answers_a_documented_status() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let admin = admin();
    let ops = operations(&doc);
    assert!(ops.len() > 70, "{} operations", ops.len());
    for (method, path, op) in ops {
        let body = matches!(method.as_str(), "POST" | "PUT").then(|| json!({}));
        let response = send(&app, &admin, &method, &concrete(&path), body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {text}");
        assert!(
            !text.contains("route_not_found"),
            "{method} {path} is not routed: {text}"
        );
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which it does not document: {text}"
        );
    }
}

/// `(METHOD, path)` of every `.route(path, method(handler)...)` in the
/// crate's source, outside tests.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut routes = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        let mut rest = text;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's text, up to its closing parenthesis.
            let (mut depth, mut end, mut in_string) = (1, 0, false);
            for (i, c) in rest.char_indices() {
                match c {
                    '"' => in_string = !in_string,
                    '(' if !in_string => depth += 1,
                    ')' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &rest[..end];
            let Some(start) = call.find('"') else {
                continue;
            };
            let Some(len) = call[start + 1..].find('"') else {
                continue;
            };
            let route = &call[start + 1..start + 1 + len];
            let handlers = &call[start + 1 + len..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let needle = format!("{method}(");
                let found = handlers.match_indices(&needle).any(|(i, _)| {
                    i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if found {
                    routes.insert((method.to_uppercase(), route.to_owned()));
                }
            }
        }
    }
    routes
}

/// Whether the document's concrete `path` is an instance of the code's
/// `pattern` (`{x}` in the pattern matches any one segment).
fn instance_of(pattern: &str, path: &str) -> bool {
    let (p, d): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == d.len()
        && p.iter()
            .zip(&d)
            .all(|(p, d)| p == d || p.starts_with('{') && !d.is_empty())
}

/// Fails when a route or an action exists in the code but not in the
/// document, or the other way round.
#[tokio::test]
async fn the_document_matches_the_routes_and_actions_in_the_code() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let code = routes_in_code();
    assert!(code.len() > 20, "found only {code:?}");
    // The browsable docs are a page, not part of the API.
    let code: BTreeSet<_> = code
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/docs"))
        .collect();

    // Each documented operation is a route of the code: exactly, or one
    // concrete action of a generic `.../{action}` route.
    let mut actions: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (method, path, _) in operations(&doc) {
        if code.contains(&(method.clone(), path.clone())) {
            continue;
        }
        let generic = code.iter().find(|(m, pattern)| {
            *m == method && pattern.ends_with("{action}") && instance_of(pattern, &path)
        });
        let Some((m, pattern)) = generic else {
            panic!("{method} {path} is documented but no route of the code serves it");
        };
        let prefix = &pattern[..pattern.find("/{id}/").unwrap() + "/{id}/".len()];
        let name = path.strip_prefix(prefix).unwrap().to_owned();
        actions
            .entry((m.clone(), pattern.clone()))
            .or_default()
            .insert(name);
    }
    for (method, path) in &code {
        let documented = doc["paths"][path.as_str()][method.to_lowercase()].is_object()
            || actions.contains_key(&(method.clone(), path.clone()));
        assert!(documented, "{method} {path} is served but not documented");
    }

    // Each generic route's actions, as its dispatcher lists them in the 404
    // for an unknown action, are exactly the documented ones.
    let admin = admin();
    for ((method, pattern), documented) in &actions {
        let unknown = pattern
            .split('/')
            .map(|s| match s {
                "{action}" => "no-such-action".to_owned(),
                "{collection}" => "no-such-items".to_owned(),
                s if s.starts_with('{') => Uuid::now_v7().to_string(),
                s => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let body = assert_error(
            send(&app, &admin, method, &unknown, Some(json!({}))).await,
            404,
            "not_found",
        )
        .await;
        let message = body["error"]["message"].as_str().unwrap();
        let listed: BTreeSet<String> = message
            .split(": ")
            .nth(1)
            .unwrap_or_else(|| panic!("{pattern}: the 404 lists no actions: {message}"))
            .split(", ")
            .map(str::to_owned)
            .collect();
        assert_eq!(&listed, documented, "{pattern}");
    }
}

/// Each action requires exactly the fields its documented body requires:
/// an empty body is refused naming them (or, when it requires none, gets
/// past validation to the missing entity).
#[tokio::test]
async fn each_action_requires_exactly_its_documented_fields() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let admin = admin();
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        // Commands' actions; marking a notification read, retrying a
        // delivery and erasing a subject take no body.
        let bodiless = ["/api/v1/me/", "/api/v1/notifications/", "/api/v1/subjects/"];
        if method != "POST"
            || !path.contains("/{id}/")
            || bodiless.iter().any(|p| path.starts_with(p))
        {
            continue;
        }
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(
            op["requestBody"]["required"],
            !required.is_empty(),
            "{path}"
        );
        let response = send(&app, &admin, "POST", &concrete(&path), Some(json!({}))).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if schema.get("oneOf").is_some() {
            // One of several fields: none given is refused.
            assert_eq!(status, 400, "{path}: {body}");
        } else if required.is_empty() {
            assert_eq!(status, 404, "{path}: an empty body is valid: {body}");
        } else {
            assert_eq!(status, 400, "{path}: {body}");
            let fields: BTreeSet<&str> = body["error"]["details"]["fields"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(fields, required, "{path}");
        }
        checked += 1;
    }
    assert!(checked > 45, "checked {checked} actions");
}

#[tokio::test]
async fn docs_are_served_by_us_without_any_other_host() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "{html}"
    );
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            assets.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in &assets {
        assert!(
            asset.starts_with('/') && !asset.starts_with("//"),
            "{asset}"
        );
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset.ends_with(".js") {
            assert!(
                content_type.starts_with("text/javascript"),
                "{asset}: {content_type}"
            );
        }
        if asset.ends_with(".css") {
            assert!(
                content_type.starts_with("text/css"),
                "{asset}: {content_type}"
            );
        }
        if asset.ends_with("init.js") {
            // The UI reads our own document.
            assert!(body.contains("\"/openapi.json\""), "{body}");
            assert!(body.contains("validatorUrl: null"), "{body}");
        }
    }
}

/// Found by the fuzzer (`.ci/fuzz-api`): a NUL character in a list's text
/// filter reached PostgreSQL, which refused it, and the answer was a 500.
#[tokio::test]
async fn a_nul_character_in_a_query_parameter_is_a_400() {
    let app = TestApp::spawn().await;
    let admin = admin();
    for path in [
        "/api/v1/tickets?priority=%C3%97j%00Z",
        "/api/v1/leads?status=a%00",
        "/api/v1/contracts?counterparty=%00",
        "/api/v1/events?after=1%00",
    ] {
        let response = send(&app, &admin, "GET", path, None).await;
        assert_error(response, 400, "invalid_query").await;
    }
    let response = send(&app, &admin, "GET", "/api/v1/tickets?priority=P1", None).await;
    assert_eq!(response.status(), 200);
}
