//! Deterministic replay: rebuilding from the log gives the same tables, and
//! `chronicle projections rebuild --all --verify` finds a table that no
//! longer matches the log.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{post, token, TestApp};

async fn checksums(pool: &PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in chronicle_projections::all() {
        out.extend(
            chronicle_projections::status::checksums(pool, &*p)
                .await
                .unwrap(),
        );
    }
    out
}

/// Rebuilds every read model and waits for the swaps.
async fn rebuild_all(pool: &PgPool) {
    let started = chrono::Utc::now();
    let all = chronicle_projections::all();
    for p in &all {
        chronicle_projections::status::request_rebuild(pool, p.name())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = chronicle_projections::status::status(pool, &all)
            .await
            .unwrap();
        if rows
            .iter()
            .all(|r| !r.rebuild_requested && r.rebuilt_at.is_some_and(|t| t >= started))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rebuilds did not finish: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn verify(app: &TestApp) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["projections", "rebuild", "--all", "--verify"])
        .env("DATABASE_URL", &app._db.url)
        .env("CHRONICLE_DATA_DIR", app.data.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilds_agree_and_verify_finds_a_hand_made_difference() {
    let app = TestApp::spawn().await;
    let pool = app._db.pool.clone();
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    let mut last = 0;
    for n in 0..8 {
        let r = post(
            &app,
            &customer,
            "/api/v1/tickets",
            json!({
                "contact": { "name": "Ann", "email": "ann@example.com" },
                "product": "fibre", "category": "outage", "priority": "P3",
                "required_skill": "networking", "title": format!("Outage {n}"), "description": "Down."
            }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let r = post(
            &app,
            &sales,
            "/api/v1/leads",
            json!({
                "company": format!("Initech {n}"),
                "contact": { "name": "Peter", "email": "peter@initech.example" },
                "site_address": "Hauptstrasse 1", "service": "DIA", "bandwidth_mbps": 100,
                "estimated_value": { "amount_minor": 1000, "currency": "EUR" }, "source": "web"
            }),
        )
        .await;
        assert_eq!(r.status(), 201);
        last = r.json::<Value>().await.unwrap()["position"]
            .as_u64()
            .unwrap();
    }
    // Wait for the read models.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lowest: i64 = sqlx::query_scalar(
            "SELECT min(position) FROM projection_checkpoints WHERE name = ANY($1)",
        )
        .bind(
            chronicle_projections::all()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if lowest as u64 >= last {
            break;
        }
        assert!(Instant::now() < deadline, "read models did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Two rebuilds give the same tables as the live ones.
    let live = checksums(&pool).await;
    rebuild_all(&pool).await;
    let first = checksums(&pool).await;
    rebuild_all(&pool).await;
    let second = checksums(&pool).await;
    assert_eq!(first, live);
    assert_eq!(second, first);

    // A replay beside the live tables finds them equal...
    let (code, out) = verify(&app);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tickets.tickets: same (8 rows"), "{out}");
    // The reporting aggregates live in their own schema and are compared too.
    assert!(
        out.contains("reporting_tickets.ticket_facts: same (8 rows"),
        "{out}"
    );
    assert!(
        out.contains("every replayed table equals its live table"),
        "{out}"
    );

    // ...until someone edits a read model by hand.
    sqlx::query("UPDATE read.tickets SET title = 'Edited by hand' WHERE title = 'Outage 3'")
        .execute(&pool)
        .await
        .unwrap();
    let (code, out) = verify(&app);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tickets.tickets: DIFFERS"), "{out}");
    assert!(out.contains("leads.leads: same"), "{out}");
}
