//! `GET /api/v1/search` against a spawned app whose search projection
//! writes the index under a temporary data directory: what each user may
//! find (and what no field, filter, facet or cursor reveals), errors that
//! say where, read-your-writes and freshness, status and rebuild.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chronicle_api::{Application, Config, Projectors, Workers};
use chronicle_testkit::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp, SECRET};

/// An app with the search projection, and its data directory.
pub(crate) struct SearchApp {
    pub(crate) app: TestApp,
}

pub(crate) async fn spawn() -> SearchApp {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new().await;
    let vars: HashMap<String, String> = HashMap::from([
        ("CHRONICLE_LISTEN".into(), "127.0.0.1:0".into()),
        ("CHRONICLE_JWT_SECRET".into(), SECRET.into()),
        (
            "CHRONICLE_DATA_DIR".into(),
            dir.path().to_string_lossy().into_owned(),
        ),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let app = Application::build(&config, db.pool.clone()).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let projectors = Projectors::start_with(
        &db.pool,
        chronicle_projections::all(),
        chronicle_projections::runtime::Options::default(),
        Some(Workers {
            clock: std::sync::Arc::new(chronicle_projections::clock::SystemClock),
            search: Some(chronicle_search::indexer::Options::new(
                dir.path().to_owned(),
            )),
            timers: None,
            delivery: None,
        }),
    );
    let app = TestApp {
        addr,
        client: reqwest::Client::new(),
        _db: db,
        _projectors: projectors,
        data: dir,
    };
    // Ready once the projection has created the index (polled).
    let probe = token("acme", "probe", &["admin"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&app, &probe, "/api/v1/search").await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "the search index was not created"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    SearchApp { app }
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

fn contract(title: &str, counterparty: &str, body: &str) -> Value {
    json!({
        "title": title,
        "parties": [{ "name": counterparty, "kind": "organisation", "role": "customer" }],
        "counterparty": {
            "organisation": counterparty,
            "contact": { "name": "Hank Scorpio", "email": "hank@globex.example" }
        },
        "value": { "amount_minor": 5_000_000, "currency": "EUR" },
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "body": body
    })
}

fn ticket(title: &str, description: &str) -> Value {
    json!({
        "contact": { "name": "Ann Customer", "email": "ann@example.com" },
        "product": "fibre-1000",
        "category": "connectivity",
        "priority": "P2",
        "required_skill": "networking",
        "title": title,
        "description": description
    })
}

/// A command; returns (id, position).
async fn command(app: &TestApp, token: &str, path: &str, body: Value) -> (String, u64) {
    let response = post(app, token, path, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

fn query_string(params: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://x/api/v1/search").unwrap();
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    format!("{}?{}", url.path(), url.query().unwrap_or(""))
}

async fn search(app: &TestApp, token: &str, params: &[(&str, &str)]) -> Value {
    let path = query_string(params);
    let response = get(app, token, &path).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every hit's id, following `next_cursor` one hit at a time; checks that
/// totals and facets agree with what the pages hold.
async fn everything(app: &TestApp, token: &str, params: &[(&str, &str)]) -> BTreeSet<String> {
    let mut with_limit: Vec<(&str, &str)> = params.to_vec();
    with_limit.push(("limit", "1"));
    let first = search(app, token, &with_limit).await;
    let total = first["total"].as_u64().unwrap();
    for facet in ["type", "status"] {
        let sum: u64 = first["facets"][facet]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            sum, total,
            "facet {facet} counts what the total counts: {first}"
        );
    }
    let mut seen: Vec<String> = ids(&first);
    let mut page = first;
    while let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) {
        let mut next = with_limit.clone();
        next.push(("cursor", &cursor));
        page = search(app, token, &next).await;
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len() as u64, total, "the pages hold the total");
    let set: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(set.len(), seen.len(), "no hit twice");
    set
}

#[tokio::test]
async fn nobody_finds_what_they_may_not_see_through_any_field_filter_facet_or_cursor() {
    let s = spawn().await;
    let app = &s.app;
    let alice = user("acme", &["sales"]);
    let bob = user("acme", &["sales"]);
    let carol = user("acme", &["expert"]);
    let dave = user("acme", &["approver"]);
    let erin = user("acme", &["customer"]);
    let frank = user("acme", &["customer"]);
    let manager = user("acme", &["manager"]);
    let stranger = user("globex", &["admin"]);

    let word = "zanzibar";
    let (alices, _) = command(
        app,
        &alice.token,
        "/api/v1/contracts",
        contract(
            "Alice's zanzibar deal",
            "Zanzibar Ltd",
            "Fibre to zanzibar, alice only.",
        ),
    )
    .await;
    let (bobs, _) = command(
        app,
        &bob.token,
        "/api/v1/contracts",
        contract("Bob's zanzibar deal", "Zanzibar Ltd", "Copper to zanzibar."),
    )
    .await;
    command(
        app,
        &alice.token,
        &format!("/api/v1/contracts/{alices}/shares"),
        json!({ "user_id": carol.id }),
    )
    .await;
    command(
        app,
        &bob.token,
        &format!("/api/v1/contracts/{bobs}/shares"),
        json!({ "role": "approver" }),
    )
    .await;
    let (erins, _) = command(
        app,
        &erin.token,
        "/api/v1/tickets",
        ticket("Erin's zanzibar line", "The zanzibar line is down."),
    )
    .await;
    let (franks, _) = command(
        app,
        &frank.token,
        "/api/v1/tickets",
        ticket("Frank's zanzibar line", "The zanzibar line is slow."),
    )
    .await;
    let (article, _) = command(app, &manager.token, "/api/v1/kb/articles", json!({
        "title": "Zanzibar links", "body": "How to test a zanzibar link.", "tags": ["zanzibar"], "product": "fibre-1000"
    })).await;
    // Another tenant, the same words, owned by a user with Alice's id.
    let alice_elsewhere = token("globex", &alice.id.to_string(), &["sales"]);
    let (other, _) = command(
        app,
        &alice_elsewhere,
        "/api/v1/contracts",
        contract("Globex zanzibar deal", "Zanzibar Ltd", "zanzibar"),
    )
    .await;
    let (_, last) = command(app, &stranger.token, "/api/v1/kb/articles", json!({
        "title": "Globex zanzibar links", "body": "zanzibar", "tags": ["zanzibar"], "product": "fibre-1000"
    })).await;
    let min = last.to_string();
    search(app, &manager.token, &[("q", word), ("min_position", &min)]).await;

    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let cases: Vec<(&str, &str, BTreeSet<String>)> = vec![
        ("alice (owner)", &alice.token, set(&[&alices, &article])),
        ("bob (owner)", &bob.token, set(&[&bobs, &article])),
        (
            "carol (shared user, expert: all tickets)",
            &carol.token,
            set(&[&alices, &article, &erins, &franks]),
        ),
        ("dave (shared role)", &dave.token, set(&[&bobs, &article])),
        ("erin (customer)", &erin.token, set(&[&article, &erins])),
        ("frank (customer)", &frank.token, set(&[&article, &franks])),
        (
            "manager (sees all)",
            &manager.token,
            set(&[&alices, &bobs, &article, &erins, &franks]),
        ),
        ("alice's id in another tenant", &alice_elsewhere, {
            let mut mine = set(&[&other]);
            mine.extend(ids(&search(
                app,
                &stranger.token,
                &[("q", "links"), ("type", "kb")],
            )
            .await));
            mine
        }),
    ];
    let alice_id = alice.id.to_string();
    for (who, token, visible) in &cases {
        // The same word everywhere, in every field it is in, with filters.
        for params in [
            vec![("q", word)],
            vec![("q", "")],
            vec![],
            vec![("q", "zanz*")],
            vec![("q", "title:zanzibar")],
            vec![("q", "body:zanzibar OR comments:zanzibar")],
            vec![(
                "q",
                "counterparty:zanzibar OR parties:zanzibar OR tags:zanzibar",
            )],
            vec![("q", "zanzibar OR deal OR line OR links")],
            vec![(
                "q",
                "\"zanzibar deal\" OR \"zanzibar line\" OR \"zanzibar links\"",
            )],
            vec![("q", "status:draft OR status:open OR status:published")],
            vec![("q", "type:contract OR type:ticket OR type:kb")],
            vec![("q", "value:[0 TO *] OR NOT value:[0 TO *]")],
            vec![("q", word), ("type", "contract,ticket,kb")],
            vec![("q", word), ("status", "draft,open,published")],
        ] {
            let found = everything(app, token, &params).await;
            assert!(
                found.is_subset(visible),
                "{who} with {params:?}: found {found:?}, may see {visible:?}"
            );
        }
        assert_eq!(
            &everything(app, token, &[("q", word)]).await,
            visible,
            "{who}"
        );
        // Per type: each filter only narrows what the caller sees.
        for kind in ["contract", "ticket", "kb"] {
            let found = everything(app, token, &[("type", kind)]).await;
            assert!(found.is_subset(visible), "{who}, type {kind}");
        }
        // Hidden fields cannot be named, whatever their value.
        for field in [
            "owner",
            "shared_users",
            "shared_roles",
            "tenant",
            "customer",
            "key",
            "id",
            "source",
        ] {
            for value in [alice_id.as_str(), "acme", "approver", "*"] {
                let q = format!("{field}:{value}");
                let response = get(app, token, &query_string(&[("q", &q)])).await;
                let body = assert_error(response, 400, "search.invalid_query").await;
                assert!(
                    body["error"]["message"].as_str().unwrap().contains(field),
                    "{body}"
                );
                let q = format!("zanzibar OR {field}:{value}");
                let response = get(app, token, &query_string(&[("q", &q)])).await;
                assert_error(response, 400, "search.invalid_query").await;
            }
        }
    }

    // A cursor made for one search does not continue another, and one
    // made by another user only pages through what this user may see.
    let managers = search(app, &manager.token, &[("q", word), ("limit", "1")]).await;
    let cursor = managers["next_cursor"].as_str().unwrap().to_owned();
    let response = get(
        app,
        &erin.token,
        &query_string(&[("q", "line"), ("limit", "1"), ("cursor", &cursor)]),
    )
    .await;
    assert_error(response, 400, "invalid_query").await;
    let page = search(
        app,
        &erin.token,
        &[("q", word), ("limit", "1"), ("cursor", &cursor)],
    )
    .await;
    for id in ids(&page) {
        assert!(cases[4].2.contains(&id), "erin, another's cursor: {id}");
    }
    assert_eq!(page["total"], 2);
    // Facets count only the visible.
    let erins_view = search(app, &erin.token, &[("q", word)]).await;
    assert_eq!(
        erins_view["facets"]["type"],
        json!({ "kb": 1, "ticket": 1 })
    );
    assert_eq!(
        erins_view["facets"]["status"],
        json!({ "open": 1, "published": 1 })
    );

    // Unsharing takes a contract out of the grantee's results.
    let (_, at) = command(
        app,
        &alice.token,
        &format!("/api/v1/contracts/{alices}/unshare"),
        json!({ "user_id": carol.id }),
    )
    .await;
    let page = search(
        app,
        &carol.token,
        &[("q", word), ("min_position", &at.to_string())],
    )
    .await;
    assert!(!ids(&page).contains(&alices), "unshared: {page}");
}

#[tokio::test]
async fn hits_carry_type_id_title_highlighted_snippet_score_and_facets() {
    let s = spawn().await;
    let app = &s.app;
    let sales = user("acme", &["sales"]);
    let (id, _) = command(
        app,
        &sales.token,
        "/api/v1/contracts",
        contract(
            "Managed fibre",
            "Globex Corp",
            "The supplier provides managed fibre to <three> sites.",
        ),
    )
    .await;
    let (_, at) = command(
        app,
        &sales.token,
        &format!("/api/v1/contracts/{id}/amend"),
        json!({ "body": "The supplier provides dark fibre to four depots." }),
    )
    .await;
    let response = get(
        app,
        &sales.token,
        &query_string(&[("q", "depot"), ("min_position", &at.to_string())]),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-chronicle-position"],
        at.to_string().as_str()
    );
    let page: Value = response.json().await.unwrap();
    let hit = &page["hits"][0];
    assert_eq!(hit["type"], "contract");
    assert_eq!(hit["id"], id.as_str());
    assert_eq!(hit["title"], "Managed fibre");
    assert_eq!(hit["status"], "draft");
    assert!(
        hit["snippet"].as_str().unwrap().contains("<b>depots</b>"),
        "{hit}"
    );
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    assert_eq!(page["total"], 1);
    assert_eq!(
        page["facets"],
        json!({ "type": { "contract": 1 }, "status": { "draft": 1 } })
    );
    assert!(page["position"].as_u64().unwrap() >= at);
    // The amended text replaced the old one.
    assert_eq!(
        search(app, &sales.token, &[("q", "three")]).await["total"],
        0
    );
    // Titles outrank bodies.
    let (_, at) = command(
        app,
        &sales.token,
        "/api/v1/contracts",
        contract("Depot maintenance", "Initech", "Maintenance."),
    )
    .await;
    let page = search(
        app,
        &sales.token,
        &[("q", "depot"), ("min_position", &at.to_string())],
    )
    .await;
    assert_eq!(page["hits"][0]["title"], "Depot maintenance");
}

#[tokio::test]
async fn malformed_searches_are_400s_that_say_what_and_where() {
    let s = spawn().await;
    let app = &s.app;
    let sales = user("acme", &["sales"]);
    let bad = |params: Vec<(&'static str, &'static str)>| {
        let token = sales.token.clone();
        async move { get(app, &token, &query_string(&params)).await }
    };
    let body = assert_error(
        bad(vec![("q", "fibre AND (copper")]).await,
        400,
        "search.invalid_query",
    )
    .await;
    assert_eq!(body["error"]["details"]["position"], 17, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected ')'"),
        "{body}"
    );
    let body = assert_error(
        bad(vec![("q", "fibre value:abc")]).await,
        400,
        "search.invalid_query",
    )
    .await;
    assert_eq!(body["error"]["details"]["position"], 6, "{body}");
    let body = assert_error(
        bad(vec![("q", "owner:me")]).await,
        400,
        "search.invalid_query",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `owner`"),
        "{body}"
    );
    for params in [
        vec![("sort", "title")],
        vec![("type", "lead")],
        vec![("limit", "0")],
        vec![("limit", "101")],
        vec![("cursor", "nope")],
        vec![("min_position", "-1")],
        vec![("min_position", "99999999")],
    ] {
        let shown = format!("{params:?}");
        let body = assert_error(bad(params).await, 400, "invalid_query").await;
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{shown}"
        );
    }
    let body = assert_error(
        bad(vec![("q", "a"), ("bogus", "1")]).await,
        400,
        "invalid_query",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("q, type, status, limit, cursor, min_position"));
    let response = app
        .client
        .get(app.url("/api/v1/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "auth.missing_token").await;
}

#[tokio::test]
async fn a_change_is_searchable_within_a_second_of_its_command() {
    let s = spawn().await;
    let app = &s.app;
    let sales = user("acme", &["sales"]);
    // Polls with a deadline until the change shows; no waiting on positions.
    let mut latencies = Vec::new();
    for i in 0..20 {
        // Words of 40 characters or more are not indexed: keep it short.
        let random = Uuid::new_v4().simple().to_string();
        let word = format!("fresh{i}x{}", &random[..12]);
        let started = Instant::now();
        command(
            app,
            &sales.token,
            "/api/v1/contracts",
            contract(&format!("Deal {word}"), "Globex", "Body."),
        )
        .await;
        let deadline = started + Duration::from_secs(10);
        loop {
            if search(app, &sales.token, &[("q", &word)]).await["total"] == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{word} not searchable after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p95 = latencies[18];
    println!(
        "command -> searchable over 20: p50 {:?}, p95 {:?}, max {:?}",
        latencies[10], p95, latencies[19]
    );
    assert!(p95 <= Duration::from_secs(1), "p95 {p95:?}: {latencies:?}");
}

#[tokio::test]
async fn the_search_projection_shows_in_status_and_rebuilds_by_swapping() {
    let s = spawn().await;
    let app = &s.app;
    let admin = user("acme", &["admin"]);
    let (_, at) = command(
        app,
        &admin.token,
        "/api/v1/contracts",
        contract("Rebuilt deal", "Globex", "Survives a rebuild."),
    )
    .await;
    search(
        app,
        &admin.token,
        &[("q", "rebuilt"), ("min_position", &at.to_string())],
    )
    .await;
    let status: Value = get(app, &admin.token, "/api/v1/admin/projections")
        .await
        .json()
        .await
        .unwrap();
    let rows: BTreeMap<String, Value> = status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let search_row = &rows["search"];
    assert!(
        search_row["position"].as_u64().unwrap() >= at,
        "{search_row}"
    );
    assert_eq!(search_row["state"], "running");
    let started = chrono::Utc::now();
    let response = post(
        app,
        &admin.token,
        "/api/v1/admin/projections/search/rebuild",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = get(app, &admin.token, "/api/v1/admin/projections")
            .await
            .json()
            .await
            .unwrap();
        let row = status["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "search")
            .unwrap()
            .clone();
        let done = row["rebuild_requested"] == false
            && row["rebuilt_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t >= started);
        if done {
            break;
        }
        // Searches keep answering while it rebuilds.
        assert_eq!(
            search(app, &admin.token, &[("q", "rebuilt")]).await["total"],
            1
        );
        assert!(
            Instant::now() < deadline,
            "the rebuild did not finish: {row}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while search(app, &admin.token, &[("q", "rebuilt")]).await["total"] != 1 {
        assert!(Instant::now() < deadline, "not found after the swap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = post(
        app,
        &admin.token,
        "/api/v1/admin/projections/nope/rebuild",
        json!({}),
    )
    .await;
    assert_error(response, 404, "projection.not_found").await;
}

/// Kills the child process when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_separate_projector_process_writes_the_index_the_api_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new().await;
    let _projector = ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(["project", "--only", "search"])
            .env("DATABASE_URL", &db.url)
            .env("CHRONICLE_DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // This process only serves HTTP and reads the index.
    let vars: HashMap<String, String> = HashMap::from([
        ("CHRONICLE_LISTEN".into(), "127.0.0.1:0".into()),
        ("CHRONICLE_JWT_SECRET".into(), SECRET.into()),
        (
            "CHRONICLE_DATA_DIR".into(),
            dir.path().to_string_lossy().into_owned(),
        ),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let app = Application::build(&config, db.pool.clone()).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let app = TestApp {
        addr,
        client: reqwest::Client::new(),
        _projectors: Projectors::start(&db.pool, Vec::new(), Default::default()),
        _db: db,
        data: dir,
    };
    let sales = user("acme", &["sales"]);
    let (id, at) = command(
        &app,
        &sales.token,
        "/api/v1/contracts",
        contract(
            "Cross-process deal",
            "Globex",
            "Written by another process.",
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let response = get(
            &app,
            &sales.token,
            &query_string(&[("q", "cross process"), ("min_position", &at.to_string())]),
        )
        .await;
        if response.status() == 200 {
            break response.json::<Value>().await.unwrap();
        }
        // 503 until the other process has created the index.
        assert_eq!(response.status(), 503);
        assert!(
            Instant::now() < deadline,
            "the projector process never created the index"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ids(&page), [id]);
    // Later changes arrive through the other process's commits too.
    let (_, at) = command(
        &app,
        &sales.token,
        &format!(
            "/api/v1/contracts/{}/amend",
            page["hits"][0]["id"].as_str().unwrap()
        ),
        json!({ "body": "Amended elsewhere." }),
    )
    .await;
    let page = search(
        &app,
        &sales.token,
        &[("q", "elsewhere"), ("min_position", &at.to_string())],
    )
    .await;
    assert_eq!(page["total"], 1);
}
