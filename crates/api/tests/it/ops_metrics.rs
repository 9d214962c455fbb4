//! Every metric the Grafana dashboard (`ops/grafana/dashboards/`) and the
//! alert rules (`ops/prometheus/alerts.yml`) query is one the binary really
//! exports: the names come from parsing their PromQL, and a `chronicle
//! serve` and a `chronicle project` process (the two scrape jobs) are
//! driven until each name is on their `/metrics`: commands, queries, a
//! search, a version conflict, reactions, a timer firing, a notification
//! delivery that fails, an auditor's read of personal data, an erasure and
//! the rebuilds it starts, and last a poison event that stops a projection.
//!
//! Names of features merged separately are listed, with the reason, in
//! `ops/metrics-merged-separately.txt`; nothing else may be missing, and a
//! name listed there that the binary exports fails the test too (the list
//! must then shrink).
//!
//! The same processes check the projector's probe listener
//! (`CHRONICLE_METRICS_LISTEN`) and `chronicle healthcheck`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chronicle_testkit::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{token, SECRET};

/// Series Prometheus makes itself for every target.
const PROMETHEUS_BUILTINS: &[&str] = &["up"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A PromQL token.
#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    /// A Grafana variable (`$__rate_interval`, `${x}`), a string, a number
    /// or a duration: never a metric.
    Other,
    Punct(char),
}

fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            tokens.push(Token::Other);
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
            }
            tokens.push(Token::Other);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Other);
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// The metric names a PromQL expression selects: identifiers outside
/// label matchers and ranges that are not functions, aggregations,
/// keywords, or the label lists of `by`, `without`, `on`, `ignoring`,
/// `group_left` and `group_right`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let tokens = tokenize(expr);
    let mut names = BTreeSet::new();
    let (mut braces, mut brackets) = (0i32, 0i32);
    let mut k = 0;
    while k < tokens.len() {
        match &tokens[k] {
            Token::Punct('{') => braces += 1,
            Token::Punct('}') => braces -= 1,
            Token::Punct('[') => brackets += 1,
            Token::Punct(']') => brackets -= 1,
            Token::Ident(name) if braces == 0 && brackets == 0 => {
                let call = tokens.get(k + 1) == Some(&Token::Punct('('));
                let lower = name.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if call {
                        // Skip the label list.
                        let mut depth = 0;
                        k += 1;
                        while k < tokens.len() {
                            match tokens[k] {
                                Token::Punct('(') => depth += 1,
                                Token::Punct(')') => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            k += 1;
                        }
                    }
                } else if !call && !KEYWORDS.contains(&lower.as_str()) {
                    names.insert(name.clone());
                }
            }
            _ => {}
        }
        k += 1;
    }
    names
}

/// Every `expr` of the dashboard's panels, with the panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((format!("dashboard panel {title:?}"), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let dir = repo().join("ops/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let dashboard: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            walk(&dashboard["panels"], &mut out);
        }
    }
    out
}

/// Every alert's `expr`, with the alert's name.
fn alert_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("ops/prometheus/alerts.yml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("a named rule");
            let expr = rule["expr"].as_str().expect("an expr");
            out.push((format!("alert {name}"), expr.to_owned()));
        }
    }
    out
}

/// Metric names of features merged separately (`#` starts a comment).
fn merged_separately() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("ops/metrics-merged-separately.txt")).unwrap();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The base name of a histogram or summary series.
fn base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The series names of a Prometheus text exposition.
fn series_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="chronicle-api",route!~"/metrics|/healthz"}[$__rate_interval])))"#
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(r#"sum(up{job="a"}) == 0 or absent(up{job="a"})"#),
        ["up"]
    );
    assert_eq!(
        names("(max by (projection) (lag) > 0) unless on (projection) (sum by (projection) (increase(events_total{target=\"live\"}[10m])) > 0) unless on(projection) failed == 1"),
        ["events_total", "failed", "lag"]
    );
    assert_eq!(
        names("sum(rate(a_total[5m])) by (job) / ignoring(x) group_left(y) b offset 1h + count(c) * 2.5e3"),
        ["a_total", "b", "c"]
    );
    assert_eq!(base("x_seconds_bucket"), "x_seconds");
    assert_eq!(
        series_names("# TYPE a counter\na{x=\"1\"} 2\nb 3\n"),
        ["a".to_owned(), "b".to_owned()].into()
    );
}

/// A `chronicle` process over the test database, killed when dropped.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    fn spawn(db: &TestDb, data: &Path, args: &[&str], port_var: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env(port_var, format!("127.0.0.1:{port}"))
            .env("CHRONICLE_DATA_DIR", data)
            .env("CHRONICLE_JWT_SECRET", SECRET)
            .env(
                "CHRONICLE_WEBHOOK_SECRET",
                "metrics-test-webhook-secret-0123456789ab",
            )
            .env("CHRONICLE_AUDIT_SIGNING_KEY", "4d".repeat(32))
            .env("CHRONICLE_DELIVERY_MAX_ATTEMPTS", "1")
            .env("CHRONICLE_RATE_LIMIT", "100000000")
            .env("CHRONICLE_DB_POOL", "8")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn healthcheck(args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .arg("healthcheck")
        .args(args)
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

async fn wait_ready(client: &reqwest::Client, process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            process.child.try_wait().unwrap().is_none(),
            "the process exited"
        );
        if let Ok(r) = client.get(process.url("/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{} never ready", process.url(""));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_and_the_alerts_query_only_metrics_the_binary_exports() {
    // What the dashboard and the alerts need.
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .chain(alert_queries())
        .collect();
    assert!(queries.len() > 40, "found only {} queries", queries.len());
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for (origin, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{origin}: no metric in {expr:?}");
        referenced.extend(names);
    }
    let allowed = merged_separately();
    let required: BTreeSet<String> = referenced
        .iter()
        .filter(|n| !PROMETHEUS_BUILTINS.contains(&n.as_str()))
        .filter(|n| !allowed.contains(n.as_str()) && !allowed.contains(base(n)))
        .cloned()
        .collect();

    // The two scrape jobs' processes.
    let db = TestDb::new().await;
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut api = Process::spawn(&db, data.path(), &["serve"], "CHRONICLE_LISTEN");
    let mut projector = Process::spawn(&db, data.path(), &["project"], "CHRONICLE_METRICS_LISTEN");
    wait_ready(&client, &mut api).await;
    wait_ready(&client, &mut projector).await;

    // The projector's probe listener, and `chronicle healthcheck`.
    let health = client.get(projector.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = client
        .get(projector.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(healthcheck(&["--url", &api.url("/readyz")]));
    assert!(healthcheck(&["--url", &projector.url("/healthz")]));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(!healthcheck(&[
        "--url",
        &format!("http://127.0.0.1:{closed}/healthz")
    ]));
    assert!(!healthcheck(&["--url", &api.url("/no-such-route")]));

    // The workload.
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let get = reqwest::Method::GET;
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let manager_id = Uuid::now_v7();
    let manager = token("acme", &manager_id.to_string(), &["manager"]);
    let customer_id = Uuid::now_v7();
    let customer = token("acme", &customer_id.to_string(), &["customer"]);
    let (status, body) = send(
        &client,
        post.clone(),
        api.url("/api/v1/users"),
        &admin,
        Some(json!({ "id": manager_id, "name": "Mia", "email": "mia@example.com", "roles": ["manager"] })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Webhooks to a closed port: one failed attempt makes a dead letter.
    let (status, body) = send(
        &client,
        put.clone(),
        api.url("/api/v1/me/notification-preferences"),
        &manager,
        Some(json!({
            "kinds": ["status_change", "sla_breach"], "in_app": true, "email": null,
            "webhook_url": format!("http://127.0.0.1:{closed}/hook"),
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // P4 tickets must be assigned within a second: nobody can take them,
    // so the SLA timer fires.
    let targets = |a: u64| json!({ "time_to_assign_secs": a, "time_to_first_response_secs": 3600, "time_to_resolve_secs": 3600 });
    let (status, body) = send(
        &client,
        put,
        api.url("/api/v1/sla-policy"),
        &manager,
        Some(json!({ "p1": targets(3600), "p2": targets(3600), "p3": targets(3600), "p4": targets(1) })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &client,
        post.clone(),
        api.url("/api/v1/tickets"),
        &customer,
        Some(json!({
            "contact": { "name": "Ann Customer", "email": "ann@example.com" },
            "product": "fibre", "category": "outage", "priority": "P4",
            "required_skill": "underwater-welding",
            "title": "Outage", "description": "Down since the storm."
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ticket = body["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &client,
        get.clone(),
        api.url("/api/v1/tickets?status=open"),
        &manager,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &client,
        get.clone(),
        api.url(&format!("/api/v1/tickets/{ticket}/history")),
        &auditor,
        None,
    )
    .await;
    assert_eq!(status, 200);

    let scrape = || async {
        let mut names = BTreeSet::new();
        for p in [&api, &projector] {
            if let Ok(r) = client.get(p.url("/metrics")).send().await {
                names.extend(series_names(&r.text().await.unwrap_or_default()));
            }
        }
        names
    };
    // Erasing starts rebuilds; the poison event stops a projection: both
    // come once everything else is there.
    let after_erasure: BTreeSet<&str> = [
        "chronicle_subjects_erased_total",
        "chronicle_projection_rebuild_position",
        "chronicle_projection_errors_total",
    ]
    .into();
    let after_poison: BTreeSet<&str> = ["chronicle_projection_errors_total"].into();
    let (mut erased, mut poisoned) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(90);
    let exported = loop {
        let exported = scrape().await;
        let missing: BTreeSet<String> = required.difference(&exported).cloned().collect();
        if missing.is_empty() {
            break exported;
        }
        assert!(
            Instant::now() < deadline,
            "metrics the dashboard or the alerts query that the binary did not export: {missing:?}\n\
             queried by: {:?}",
            queries
                .iter()
                .filter(|(_, e)| metric_names(e).iter().any(|n| missing.contains(n)))
                .map(|(o, _)| o)
                .collect::<Vec<_>>()
        );
        // A search, once the index is there (the projector builds it in
        // the data directory the API reads too).
        if missing
            .iter()
            .any(|n| n.starts_with("chronicle_search_query"))
        {
            let (status, body) = send(
                &client,
                get.clone(),
                api.url("/api/v1/search?q=outage&type=ticket"),
                &manager,
                None,
            )
            .await;
            assert!(status == 200 || status == 503, "{status} {body}");
        }
        // A burst of comments on one ticket until two of them collide.
        if missing.contains("chronicle_command_conflicts_total") {
            let burst: Vec<_> = (0..16)
                .map(|n| {
                    send(
                        &client,
                        post.clone(),
                        api.url(&format!("/api/v1/tickets/{ticket}/comments")),
                        &customer,
                        Some(json!({ "body": format!("still down ({n})") })),
                    )
                })
                .collect();
            for (status, body) in futures::future::join_all(burst).await {
                assert_eq!(status, 200, "{body}");
            }
        }
        let only = |set: &BTreeSet<&str>| missing.iter().all(|n| set.contains(n.as_str()));
        if !erased && only(&after_erasure) {
            let (status, body) = send(
                &client,
                post.clone(),
                api.url(&format!("/api/v1/subjects/{customer_id}/erase")),
                &admin,
                Some(json!({})),
            )
            .await;
            assert_eq!(status, 202, "{body}");
            erased = true;
        }
        if erased && !poisoned && only(&after_poison) {
            poison(&db).await;
            poisoned = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The poison event shows as the alert expects it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = client
            .get(projector.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stopped = text
            .lines()
            .any(|l| l == "chronicle_projection_failed{projection=\"tickets\"} 1");
        let counted = text.lines().any(|l| {
            l.starts_with("chronicle_projection_errors_total{")
                && l.contains("projection=\"tickets\"")
                && l.contains("kind=\"poison\"")
        });
        if stopped && counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped projection is not reported: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Names of features merged separately must not be exported yet.
    let stale: Vec<_> = allowed
        .iter()
        .filter(|n| exported.iter().any(|e| base(e) == n.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "exported now, remove from ops/metrics-merged-separately.txt: {stale:?}"
    );
}

/// Appends a `ticket.commented` the tickets projection cannot apply.
async fn poison(db: &TestDb) {
    let store = chronicle_store::postgres::PgEventStore::new(db.pool.clone());
    chronicle_store::EventStore::append(
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
    .unwrap();
}
