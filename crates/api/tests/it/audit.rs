//! Tamper evidence and exports: the seal catches rows changed, deleted,
//! inserted and reordered behind the application's back (as the database
//! superuser), and an export proves itself.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_api::{Config, Projectors};
use chronicle_projections::audit::seal::{Cadence, Seal};
use serde_json::{json, Value};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::helpers::{get, post, token, TestApp};

/// Starts the seal (a checkpoint every 5 events) beside `app`, with the
/// app's audit key.
pub(crate) fn seal(app: &TestApp) -> Projectors {
    let config = Config::from_lookup(|name| {
        (name == "CHRONICLE_DATA_DIR").then(|| app.data.path().display().to_string())
    })
    .unwrap();
    let key = chronicle_api::auth::resolve_audit_key(&config).unwrap();
    Projectors::start(
        &app._db.pool,
        vec![Arc::new(Seal::new(
            key,
            Cadence {
                events: 5,
                interval: Duration::from_secs(3600),
                // A batch per append or so: checkpoints every few events.
                pace: Duration::ZERO,
            },
        ))],
        chronicle_projections::runtime::Options::default(),
    )
}

async fn head(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until the seal covers every event.
async fn sealed(pool: &PgPool) {
    let target = head(pool).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM audit_seal")
            .fetch_one(pool)
            .await
            .unwrap();
        if at >= target {
            return;
        }
        if Instant::now() >= deadline {
            let state: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT state, error FROM projection_checkpoints WHERE name = 'seal'",
            )
            .fetch_optional(pool)
            .await
            .unwrap();
            panic!("the seal did not reach {target}: {state:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn seed(app: &TestApp, tickets: usize) {
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    for n in 0..tickets {
        let response = post(
            app,
            &customer,
            "/api/v1/tickets",
            json!({
                "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                "product": "fibre", "category": "outage", "priority": "P3",
                "required_skill": "networking",
                "title": format!("Outage {n}"), "description": "Down."
            }),
        )
        .await;
        assert_eq!(response.status(), 201);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let comment = post(
            app,
            &customer,
            &format!("/api/v1/tickets/{id}/comments"),
            json!({ "body": "Still down." }),
        )
        .await;
        assert_eq!(comment.status(), 200);
    }
}

async fn api_verify(app: &TestApp) -> Value {
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let response = get(app, &auditor, "/api/v1/audit/verify").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `chronicle audit <args>` on the app's database and data directory:
/// (exit code, standard output).
fn cli(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &app._db.url)
        .env("CHRONICLE_DATA_DIR", app.data.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `sql` as the database superuser with the immutability triggers off
/// (replication role), as an attacker with full access would.
async fn tamper(pool: &PgPool, sql: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for s in sql {
        sqlx::query(s).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn problem(report: &Value) -> (i64, String) {
    assert_eq!(report["ok"], false, "{report}");
    (
        report["problem"]["position"].as_i64().unwrap(),
        report["problem"]["kind"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seal_names_the_first_changed_deleted_inserted_or_moved_row() {
    let app = TestApp::spawn().await;
    let pool = app._db.pool.clone();
    let _seal = seal(&app);
    seed(&app, 6).await;
    // A hole: a position taken by an append that never committed.
    let hole: i64 = sqlx::query_scalar("SELECT nextval('events_position_seq')")
        .fetch_one(&pool)
        .await
        .unwrap();
    seed(&app, 6).await;
    sealed(&pool).await;
    let events = head(&pool).await;

    // Untouched, the log verifies, through the API and the CLI.
    let report = api_verify(&app).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["events_checked"],
        events - 1,
        "every event but the hole"
    );
    assert!(report["checkpoints_checked"].as_i64().unwrap() >= 4);
    let (code, out) = cli(&app, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok:"), "{out}");

    // A payload changed.
    tamper(&pool, &["UPDATE events SET data = jsonb_set(data, '{title}', '\"Nothing happened\"') WHERE position = 3"]).await;
    assert_eq!(problem(&api_verify(&app).await), (3, "modified".into()));
    let (code, out) = cli(&app, &["verify"]);
    assert_eq!(code, 1);
    assert!(out.contains("FAILED at position 3: modified"), "{out}");
    // Verifying from a checkpoint past it starts there and passes; from
    // before it, it fails the same way.
    let (code, out) = cli(&app, &["verify", "--from", "1"]);
    assert_eq!(code, 1, "{out}");
    let late = format!("{}", events - 2);
    let (code, out) = cli(&app, &["verify", "--from", &late]);
    assert_eq!(code, 0, "from {late}: {out}");
    let report: Value = get(
        &app,
        &token("acme", "auditor-1", &["auditor"]),
        &format!("/api/v1/audit/verify?from={late}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["events_checked"].as_i64().unwrap() < events - 1);
    tamper(&pool, &["UPDATE events SET data = jsonb_set(data, '{title}', '\"Outage 1\"') WHERE position = 3"]).await;
    assert_eq!(api_verify(&app).await["ok"], true, "restored");

    // A row deleted (kept aside and put back after).
    tamper(
        &pool,
        &[
            "CREATE TABLE kept AS SELECT * FROM events WHERE position = 5",
            "DELETE FROM events WHERE position = 5",
        ],
    )
    .await;
    assert_eq!(problem(&api_verify(&app).await), (5, "deleted".into()));
    tamper(
        &pool,
        &["INSERT INTO events SELECT * FROM kept", "DROP TABLE kept"],
    )
    .await;
    assert_eq!(api_verify(&app).await["ok"], true, "restored");

    // A row inserted where the seal saw none.
    let insert = format!(
        "INSERT INTO events (position, event_id, tenant_id, stream_id, stream_type, stream_version, \
         event_type, schema_version, data, metadata) \
         SELECT {hole}, gen_random_uuid(), tenant_id, stream_id, stream_type, 99, event_type, \
                schema_version, data, metadata FROM events WHERE position = 1"
    );
    tamper(&pool, &[&insert]).await;
    assert_eq!(problem(&api_verify(&app).await), (hole, "inserted".into()));
    tamper(
        &pool,
        &[&format!("DELETE FROM events WHERE position = {hole}")],
    )
    .await;
    assert_eq!(api_verify(&app).await["ok"], true, "restored");

    // Two rows swapped.
    let swap = [
        "UPDATE events SET position = -8 WHERE position = 8",
        "UPDATE events SET position = 8 WHERE position = 10",
        "UPDATE events SET position = 10 WHERE position = -8",
    ];
    tamper(&pool, &swap).await;
    assert_eq!(problem(&api_verify(&app).await), (8, "modified".into()));
    tamper(&pool, &swap).await;
    assert_eq!(api_verify(&app).await["ok"], true, "restored");

    // The seal's own rows rewritten: a chain that does not follow, and a
    // checkpoint that no longer matches its signature.
    tamper(
        &pool,
        &[
            "CREATE TABLE kept AS SELECT position, chain FROM audit_seal WHERE position = 12",
            "UPDATE audit_seal SET chain = sha256(chain) WHERE position = 12",
        ],
    )
    .await;
    assert_eq!(problem(&api_verify(&app).await), (12, "chain".into()));
    tamper(
        &pool,
        &[
            "UPDATE audit_seal s SET chain = k.chain FROM kept k WHERE s.position = k.position",
            "DROP TABLE kept",
        ],
    )
    .await;
    assert_eq!(api_verify(&app).await["ok"], true, "restored");
    let checkpoint: i64 = sqlx::query_scalar("SELECT min(position) FROM audit_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    tamper(
        &pool,
        &[&format!(
            "UPDATE audit_checkpoints SET events = events + 1 WHERE position = {checkpoint}"
        )],
    )
    .await;
    assert_eq!(
        problem(&api_verify(&app).await),
        (checkpoint, "signature".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_proves_itself_and_a_changed_byte_fails_it() {
    let app = TestApp::spawn().await;
    let pool = app._db.pool.clone();
    let _seal = seal(&app);
    seed(&app, 5).await;
    let other = token("other", &Uuid::now_v7().to_string(), &["customer"]);
    let r = post(
        &app,
        &other,
        "/api/v1/tickets",
        json!({
            "contact": { "name": "Olga", "email": "olga@example.com" },
            "product": "p", "category": "c", "priority": "P4", "required_skill": "s",
            "title": "Another tenant's", "description": "Not in acme's export."
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    sealed(&pool).await;

    // Over HTTP: acme's events only, each with its sealed digest, then the
    // manifest.
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let response = get(&app, &auditor, "/api/v1/events/export").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11, "ten events and the manifest");
    assert!(lines[..10]
        .iter()
        .all(|l| l["event"]["tenant"] == "acme" && l["event"]["sealed_digest"].is_string()));
    let manifest = &lines[10]["manifest"];
    assert_eq!(manifest["count"], 10);
    assert_eq!(manifest["tenant"], "acme");
    assert!(manifest["seal"]["chain"].is_string());
    let file = app.data.path().join("export.ndjson");
    std::fs::write(&file, &body).unwrap();
    let (code, out) = cli(&app, &["verify-export", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 10 events of tenant acme"), "{out}");

    // Pinned to the deployment's public key, it still holds; to another
    // key, it does not.
    let (_, public) = cli(&app, &["public-key"]);
    let (code, _) = cli(
        &app,
        &[
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            public.trim(),
        ],
    );
    assert_eq!(code, 0);
    let stranger = "aa".repeat(32);
    let (code, _) = cli(
        &app,
        &[
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            &stranger,
        ],
    );
    assert_eq!(code, 1);

    // One byte changed anywhere fails it: in an event, or in the manifest.
    for at in [
        body.find("Outage 2").unwrap(),
        body.rfind("\"count\":10").unwrap() + 9,
    ] {
        let mut bytes = body.clone().into_bytes();
        bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
        std::fs::write(&file, &bytes).unwrap();
        let (code, out) = cli(&app, &["verify-export", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
    }
    // A line dropped fails it too.
    let dropped: String = body
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&file, dropped).unwrap();
    assert_eq!(cli(&app, &["verify-export", file.to_str().unwrap()]).0, 1);

    // The CLI's export of a position range verifies as well.
    let first = lines[2]["event"]["position"].as_i64().unwrap().to_string();
    let (code, _) = cli(
        &app,
        &[
            "export",
            "--tenant",
            "acme",
            "--from",
            &first,
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let (code, out) = cli(&app, &["verify-export", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // Ten events from the third on, and the access log's record of the
    // auditor's export: it revealed the tickets' contacts.
    assert!(out.starts_with("ok: 9 events"), "{out}");
    let recorded: Vec<Value> = sqlx::query_scalar(
        "SELECT data FROM events WHERE event_type = 'access_log.personal_data_read'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["resource"], "GET /api/v1/events/export");
    assert_eq!(
        recorded[0]["subjects"].as_array().unwrap().len(),
        1,
        "one customer"
    );

    // Only auditors (and admins) export and verify.
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    assert_eq!(
        get(&app, &sales, "/api/v1/events/export").await.status(),
        403
    );
    assert_eq!(
        get(&app, &sales, "/api/v1/audit/verify").await.status(),
        403
    );
    let checkpoints: Value = get(&app, &auditor, "/api/v1/audit/checkpoints?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(checkpoints["items"].as_array().unwrap().len(), 2);
    assert_eq!(checkpoints["public_key"], public.trim());
    let row = sqlx::query("SELECT count(*) AS n FROM audit_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(row.get::<i64, _>("n") >= 2);
}

#[tokio::test]
async fn an_auditor_reads_history_feeds_exports_and_verification_and_nothing_else() {
    let app = TestApp::spawn().await;
    let _seal = seal(&app);
    seed(&app, 1).await;
    let auditor = token("acme", "auditor-7", &["auditor"]);
    let ticket: String = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE event_type = 'ticket.opened' LIMIT 1",
    )
    .fetch_one(&app._db.pool)
    .await
    .unwrap();
    // Given an auditor, the read models, search and reports are refused
    for path in [
        "/api/v1/tickets".to_owned(),
        format!("/api/v1/tickets/{ticket}"),
        "/api/v1/leads".into(),
        "/api/v1/contracts".into(),
        "/api/v1/approvals".into(),
        "/api/v1/kb/articles".into(),
        "/api/v1/users".into(),
        "/api/v1/experts".into(),
        "/api/v1/search?q=outage".into(),
        "/api/v1/reports/tickets".into(),
        "/api/v1/reports/experts".into(),
        "/api/v1/reports/leads/funnel".into(),
        "/api/v1/reports/approvals".into(),
        "/api/v1/reports/contracts".into(),
        "/api/v1/notifications/deliveries".into(),
        "/api/v1/admin/projections".into(),
    ] {
        let status = get(&app, &auditor, &path).await.status();
        assert_eq!(status, 403, "{path}");
    }
    // and history, the state as of a version, feeds, exports and the seal
    // answer;
    for path in [
        format!("/api/v1/tickets/{ticket}/history"),
        format!("/api/v1/tickets/{ticket}?at_version=1"),
        "/api/v1/events".into(),
        "/api/v1/events/export".into(),
        "/api/v1/audit/verify".into(),
        "/api/v1/audit/checkpoints".into(),
    ] {
        let status = get(&app, &auditor, &path).await.status();
        assert_eq!(status, 200, "{path}");
    }
    // the reads that showed the customer's contact were recorded, each
    // with what was read.
    let log = sqlx::query_scalar::<_, Value>(
        "SELECT data FROM events WHERE stream_type = 'access_log' \
          AND data->>'reader' = 'auditor-7' ORDER BY position",
    )
    .fetch_all(&app._db.pool)
    .await
    .unwrap();
    let resources: Vec<&str> = log
        .iter()
        .map(|d| d["resource"].as_str().unwrap())
        .collect();
    assert!(
        resources.iter().any(|r| r.contains("history")),
        "{resources:?}"
    );
    assert!(
        resources.iter().any(|r| r.contains("(as of)")),
        "{resources:?}"
    );
    assert!(
        resources.iter().any(|r| r.contains("events")),
        "{resources:?}"
    );
}
