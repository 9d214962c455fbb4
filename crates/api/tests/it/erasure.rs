//! Erasure by crypto-shredding: after a subject is erased and the
//! projections rebuilt, no copy of their personal data is left in the
//! database, history, the export and search show the fields as erased,
//! and the seal still verifies (it covers the ciphertext, which did not
//! change).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{get, post, token, TestApp};

async fn command(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = post(app, token, path, body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

impl TestApp {
    /// The total of a search once `done` holds for it (polled: the index
    /// follows the log within a second).
    async fn eventually_search(&self, token: &str, q: &str, done: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = self
                .client
                .get(self.url("/api/v1/search"))
                .query(&[("q", q)])
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "search {q}");
            let body: Value = response.json().await.unwrap();
            let total = body["total"].as_u64().unwrap();
            if done(total) || Instant::now() > deadline {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every row of the database as `pg_dump --data-only` writes it.
fn dump(url: &str) -> String {
    let binaries = chronicle_store::embedded::Binaries::find().unwrap();
    let pg_dump = binaries.postgres.parent().unwrap().join("pg_dump");
    let out = Command::new(pg_dump)
        .args(["--data-only", "--dbname", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_subject_leaves_no_personal_data_after_a_rebuild() {
    // The read models and the search index, as `chronicle up` runs them.
    let app = crate::search::spawn().await.app;
    let _seal = crate::audit::seal(&app);
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let auditor = token("acme", &Uuid::now_v7().to_string(), &["auditor"]);
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);

    // A customer, registered, who opens a ticket and sets an email for
    // notifications; a lead's contact; a contract's guarantor and contact;
    // and someone who is not erased.
    let zelda = Uuid::now_v7();
    command(
        &app,
        &admin,
        "/api/v1/users",
        json!({ "id": zelda, "name": "Zelda Quartermain", "email": "zelda.quartermain@example.com", "roles": ["customer"] }),
    )
    .await;
    let customer = token("acme", &zelda.to_string(), &["customer"]);
    let ticket = command(
        &app,
        &customer,
        "/api/v1/tickets",
        json!({
            "contact": { "name": "Zelda Quartermain", "email": "zelda.quartermain@example.com" },
            "product": "fibre", "category": "outage", "priority": "P3",
            "required_skill": "networking",
            "title": "No signal", "description": "Since this morning."
        }),
    )
    .await;
    let ticket = ticket["id"].as_str().unwrap().to_owned();
    let prefs = app
        .client
        .put(app.url("/api/v1/me/notification-preferences"))
        .bearer_auth(&customer)
        .json(&json!({ "kinds": ["survey"], "in_app": true, "email": "zq.alerts@example.com", "webhook_url": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(prefs.status(), 200);
    let lead = command(
        &app,
        &sales,
        "/api/v1/leads",
        json!({
            "company": "Initech GmbH",
            "contact": { "name": "Quincy Vandersloot", "email": "quincy.vandersloot@initech.example", "phone": "+49 30 9876543" },
            "site_address": "Vandersloot-Allee 7, 10115 Berlin",
            "service": "Dedicated Internet Access",
            "bandwidth_mbps": 1000,
            "estimated_value": { "amount_minor": 1_200_000, "currency": "EUR" },
            "source": "web form"
        }),
    )
    .await;
    let lead = lead["id"].as_str().unwrap().to_owned();
    let contract = command(
        &app,
        &sales,
        "/api/v1/contracts",
        json!({
            "title": "Managed fibre with a personal guarantee",
            "parties": [
                { "name": "Acme Networks Ltd", "kind": "organisation", "role": "supplier" },
                { "name": "Ulrike Kessler-Baum", "kind": "person", "role": "guarantor" }
            ],
            "counterparty": {
                "organisation": "Globex Corp",
                "contact": { "name": "Ignatius Fairweather", "email": "ignatius.fairweather@globex.example" }
            },
            "value": { "amount_minor": 500_000, "currency": "EUR" },
            "start_date": "2027-01-01", "end_date": "2027-12-31",
            "body": "Fibre to the Globex campus."
        }),
    )
    .await;
    let contract = contract["id"].as_str().unwrap().to_owned();
    let kept = Uuid::now_v7();
    let last = command(
        &app,
        &admin,
        "/api/v1/users",
        json!({ "id": kept, "name": "Bartholomew Stays", "email": "bartholomew.stays@example.com", "roles": ["expert"] }),
    )
    .await;
    // The read models have caught up and hold the plaintext.
    let min = last["position"].as_u64().unwrap();
    let t: Value = get(
        &app,
        &manager,
        &format!("/api/v1/tickets/{ticket}?min_position={min}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(t["contact_name"], "Zelda Quartermain");

    let personal = [
        "Zelda Quartermain",
        "zelda.quartermain@example.com",
        "zq.alerts@example.com",
        "Quincy Vandersloot",
        "quincy.vandersloot@initech.example",
        "+49 30 9876543",
        "Vandersloot-Allee 7",
        "Ulrike Kessler-Baum",
        "Ignatius Fairweather",
        "ignatius.fairweather@globex.example",
    ];
    // Stored encrypted: no event holds the plaintext, even now.
    for p in personal {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'",
        )
        .bind(p)
        .fetch_one(&app._db.pool)
        .await
        .unwrap();
        assert_eq!(n, 0, "{p} is in an event in plaintext");
    }
    assert!(
        dump(&app._db.url).contains("Zelda Quartermain"),
        "the read models hold it"
    );
    // The search index holds the contract's people.
    let names_in_contracts = ["Kessler-Baum", "Ulrike"];
    for name in names_in_contracts {
        let found = app
            .eventually_search(&admin, &format!("\"{name}\""), |hits| hits >= 1)
            .await;
        assert_eq!(found, 1, "{name} is searchable before the erasure");
    }

    // Erase the customer, the lead's contact and the contract's people.
    let started = chrono::Utc::now();
    let mut rebuilding: Vec<String> = Vec::new();
    for subject in [zelda.to_string(), lead.clone(), contract.clone()] {
        let answer = command(
            &app,
            &admin,
            &format!("/api/v1/subjects/{subject}/erase"),
            json!({}),
        )
        .await;
        assert!(answer["keys_destroyed"].as_u64().unwrap() >= 1, "{answer}");
        rebuilding = answer["rebuilding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    }
    for name in ["tickets", "leads", "contracts", "users"] {
        assert!(rebuilding.iter().any(|r| r == name), "{rebuilding:?}");
    }
    let sales_only = post(
        &app,
        &sales,
        &format!("/api/v1/subjects/{zelda}/erase"),
        json!({}),
    )
    .await;
    assert_eq!(sales_only.status(), 403);

    // History shows the fields as erased at once.
    let history: Value = get(&app, &auditor, &format!("/api/v1/tickets/{ticket}/history"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["events"][0]["data"]["contact"],
        json!({ "name": "[erased]", "email": "erased@erased.invalid" })
    );

    // Once the rebuilds have swapped in, nothing is left anywhere.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = get(&app, &admin, "/api/v1/admin/projections")
            .await
            .json()
            .await
            .unwrap();
        // The read models and the index (this test runs no reactions).
        let mut read_models: Vec<&str> = chronicle_projections::all()
            .iter()
            .map(|p| p.name())
            .collect();
        read_models.push(chronicle_search::NAME);
        let done = status["projections"].as_array().unwrap().iter().all(|p| {
            !rebuilding.iter().any(|r| p["name"] == r.as_str())
                || !read_models.iter().any(|m| p["name"] == *m)
                || (p["rebuild_requested"] == false
                    && p["rebuilt_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t >= started))
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuilds did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = dump(&app._db.url);
    let left: Vec<&str> = personal
        .iter()
        .copied()
        .filter(|p| after.contains(p))
        .collect();
    if !left.is_empty() {
        let mut table = "";
        let mut found = Vec::new();
        for line in after.lines() {
            if line.starts_with("COPY ") {
                table = line;
            }
            if left.iter().any(|p| line.contains(p)) {
                found.push(format!("{table} :: {line}"));
            }
        }
        panic!(
            "personal data left after erasure: {left:?}\n{}",
            found.join("\n")
        );
    }
    assert!(after.contains("Bartholomew Stays"), "others' data stays");
    assert!(after.contains("data_subject.erased"));
    let t: Value = get(&app, &manager, &format!("/api/v1/tickets/{ticket}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["contact_name"], "[erased]");

    // Search finds the contract, and none of its erased people.
    for name in names_in_contracts {
        let found = app
            .eventually_search(&admin, &format!("\"{name}\""), |hits| hits == 0)
            .await;
        assert_eq!(found, 0, "{name} is still searchable");
    }
    let found = app
        .eventually_search(&admin, "Globex", |hits| hits >= 1)
        .await;
    assert_eq!(found, 1);
    // The export shows the fields as erased and holds none of them.
    let response = get(&app, &auditor, "/api/v1/events/export").await;
    assert_eq!(response.status(), 200);
    let export = response.text().await.unwrap();
    let leaked: Vec<&str> = personal
        .iter()
        .copied()
        .filter(|p| export.contains(p))
        .collect();
    assert!(leaked.is_empty(), "the export holds {leaked:?}");
    assert!(export.contains("[erased]"));
    assert!(export.contains("Bartholomew Stays"), "others' data stays");

    // The seal still verifies: the events did not change.
    let report: Value = get(&app, &auditor, "/api/v1/audit/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
}
