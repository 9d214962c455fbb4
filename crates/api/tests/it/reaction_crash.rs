//! Reactions in `chronicle project` processes killed with SIGKILL while
//! timers fall due and process managers work: after a restart no timer is
//! lost or fired twice and no reaction's command took effect twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{post, token, TestApp};

const REACTIONS: &str = "timers,matching,approval_flow,surveys,notifications";

fn project(url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(["project", "--only", REACTIONS])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .env("CHRONICLE_PROJECTION_BATCH", "50")
        .env(
            "CHRONICLE_DATA_DIR",
            std::env::temp_dir().join("chronicle-reaction-crash-test"),
        )
        .env(
            "CHRONICLE_WEBHOOK_SECRET",
            "crash-test-secret-crash-test-secret-0123",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
}

/// Events of `event_type` per stream: (streams, total).
async fn count(pool: &PgPool, event_type: &str) -> (i64, i64) {
    sqlx::query_as("SELECT count(DISTINCT stream_id), count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A figure that moves when the timer worker fires something.
async fn firing_progress(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM timer_firings) \
              + (SELECT count(*) FROM events WHERE event_type = 'ticket.sla_breached')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A figure that moves whenever a reaction does something.
async fn progress(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM timer_firings) \
              + (SELECT coalesce(sum(position), 0) FROM projection_checkpoints)::bigint",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn command(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = post(app, token, path, body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reactions_killed_mid_flight_lose_and_double_nothing() {
    let app = TestApp::spawn().await;
    let pool = app._db.pool.clone();
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let sales = token("acme", &Uuid::now_v7().to_string(), &["sales"]);

    // P2 tickets: first response due after 3 s, assignment and resolution
    // after 6 s (matching assigns long before).
    let targets = |a: u64, f: u64, r: u64| json!({ "time_to_assign_secs": a, "time_to_first_response_secs": f, "time_to_resolve_secs": r });
    let response = app
        .client
        .put(app.url("/api/v1/sla-policy"))
        .bearer_auth(&manager)
        .json(&json!({
            "p1": targets(3600, 3600, 3600), "p2": targets(6, 3, 6),
            "p3": targets(3600, 3600, 3600), "p4": targets(3600, 3600, 3600),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Five available experts.
    let mut experts = Vec::new();
    for i in 0..5 {
        let id = Uuid::now_v7();
        command(
            &app,
            &admin,
            "/api/v1/users",
            json!({ "id": id, "name": format!("Expert {i}"), "email": format!("e{i}@example.com"), "roles": ["expert"] }),
        )
        .await;
        command(
            &app,
            &admin,
            &format!("/api/v1/users/{id}/skills"),
            json!({ "skills": ["networking"] }),
        )
        .await;
        command(
            &app,
            &admin,
            &format!("/api/v1/users/{id}/availability"),
            json!({ "available": true }),
        )
        .await;
        experts.push(id);
    }
    let ticket = |n: usize| {
        json!({
            "contact": { "name": "Ann Customer", "email": "ann@example.com" },
            "product": "fibre", "category": "outage", "priority": "P2",
            "required_skill": "networking",
            "title": format!("Outage {n}"), "description": "Down since the storm."
        })
    };
    // 40 tickets resolved by hand before any reaction runs: each gets one
    // survey.
    for n in 0..40 {
        let id = command(&app, &customer, "/api/v1/tickets", ticket(n)).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let expert = experts[n % experts.len()];
        let expert_token = token("acme", &expert.to_string(), &["expert"]);
        command(
            &app,
            &manager,
            &format!("/api/v1/tickets/{id}/assign"),
            json!({ "expert_id": expert }),
        )
        .await;
        for action in ["accept", "start"] {
            command(
                &app,
                &expert_token,
                &format!("/api/v1/tickets/{id}/{action}"),
                json!({}),
            )
            .await;
        }
        command(
            &app,
            &expert_token,
            &format!("/api/v1/tickets/{id}/resolve"),
            json!({ "resolution": "Fixed" }),
        )
        .await;
    }
    // 20 contracts submitted: each gets one approval request.
    for n in 0..20 {
        let id = command(
            &app,
            &sales,
            "/api/v1/contracts",
            json!({
                "title": format!("Contract {n}"),
                "parties": [{ "name": "Acme", "kind": "organisation", "role": "supplier" }],
                "counterparty": { "organisation": "Globex", "contact": { "name": "Hank", "email": "hank@globex.example" } },
                "value": { "amount_minor": 100_000, "currency": "EUR" },
                "start_date": "2027-01-01", "end_date": "2027-12-31",
                "body": "Fibre."
            }),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        command(
            &app,
            &sales,
            &format!("/api/v1/contracts/{id}/submit"),
            json!({}),
        )
        .await;
    }
    // 150 open tickets: each is matched, then misses its first response
    // and its resolution SLA while the reactions are being killed.
    for n in 0..150 {
        command(&app, &customer, "/api/v1/tickets", ticket(100 + n)).await;
    }
    let seeded = Instant::now();

    // Kill the reactions' process whenever it has made progress, until
    // every SLA has come due and a kill has landed while they fired (on a
    // busy machine the timers may come due only after the first 8 s).
    let mut kills = 0;
    let mut mid_flight = 0;
    let mut breaches = 0;
    let mut last = progress(&pool).await;
    let mut last_firing = firing_progress(&pool).await;
    while seeded.elapsed() < Duration::from_secs(8)
        || kills < 12
        || (mid_flight == 0 && breaches < 300)
    {
        assert!(
            seeded.elapsed() < Duration::from_secs(120),
            "{kills} kills in 120 s, {breaches} breaches, none mid-flight"
        );
        let mut child = project(&app._db.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Every other life ends right after the timer worker fired
        // something (once timers are due), the others after any progress.
        let wait_for_firing = kills % 2 == 0 && seeded.elapsed() > Duration::from_secs(3);
        loop {
            let now = progress(&pool).await;
            let firing = firing_progress(&pool).await;
            let moved = if wait_for_firing {
                firing != last_firing
            } else {
                now != last
            };
            if moved {
                last = now;
                last_firing = firing;
                break;
            }
            assert!(Instant::now() < deadline, "round {kills}: no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill(&mut child);
        kills += 1;
        breaches = count(&pool, "ticket.sla_breached").await.1;
        if breaches > 0 && breaches < 300 {
            mid_flight += 1;
        }
    }
    assert!(mid_flight > 0, "no kill landed while the timers fired");

    // Restarted, it finishes the work.
    let mut child = project(&app._db.url);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = count(&pool, "ticket.sla_breached").await.1 >= 300
            && count(&pool, "ticket.escalated").await.1
                >= count(&pool, "ticket.sla_breached").await.1
            && count(&pool, "ticket.survey_sent").await.1 >= 40
            && count(&pool, "approval.requested").await.1 >= 20
            && count(&pool, "ticket.expert_assigned").await.1 >= 190;
        let idle: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM read.timers t WHERE t.status = 'pending' \
               AND t.due_at < now() AND NOT EXISTS (SELECT 1 FROM timer_firings f \
               WHERE f.timer_id = t.timer_id AND f.due_at = t.due_at))",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let caught_up: bool = sqlx::query_scalar(
            "SELECT (SELECT min(position) FROM projection_checkpoints WHERE name = ANY($1)) \
                 >= (SELECT max(position) FROM events)",
        )
        .bind(REACTIONS.split(',').collect::<Vec<_>>())
        .fetch_one(&pool)
        .await
        .unwrap();
        if done && idle && caught_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted reactions did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(&mut child);

    // Every timer fired once. The first response and the resolution were
    // missed by every ticket; the assignment only by those the matcher
    // (killed again and again) assigned after its 6 s: each stage
    // breached at most once, each breach escalated once.
    let per_stage: Vec<(String, i64)> = sqlx::query_as(
        "SELECT data->>'stage', count(*) FROM events WHERE event_type = 'ticket.sla_breached' \
          GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let late_assignments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events o JOIN LATERAL ( \
             SELECT min((a.data->>'at')::timestamptz) AS at FROM events a \
              WHERE a.stream_id = o.stream_id AND a.event_type = 'ticket.expert_assigned') a ON true \
          WHERE o.event_type = 'ticket.opened' AND o.data->>'priority' = 'P2' \
            AND a.at > (o.data->>'at')::timestamptz + interval '6 seconds'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut expected = vec![
        ("first_response".to_owned(), 150),
        ("resolve".to_owned(), 150),
    ];
    if late_assignments > 0 {
        expected.insert(0, ("assign".to_owned(), late_assignments));
    }
    assert_eq!(per_stage, expected);
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT stream_id, data->>'stage' FROM events \
          WHERE event_type = 'ticket.sla_breached' GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(doubled, 0);
    let breaches = count(&pool, "ticket.sla_breached").await.1;
    assert_eq!(count(&pool, "ticket.escalated").await.1, breaches);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timer_firings \
          WHERE kind = 'ticket_sla' AND outcome IN ('recorded', 'already_recorded')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(recorded, breaches, "one recorded firing per breach");
    let fired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read.timers WHERE kind = 'ticket_sla' AND status = 'fired'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(fired, breaches, "the projection saw every breach");
    // Every process manager's command took effect once.
    assert_eq!(count(&pool, "ticket.expert_assigned").await, (190, 190));
    assert_eq!(count(&pool, "ticket.survey_sent").await, (40, 40));
    assert_eq!(count(&pool, "approval.requested").await, (20, 20));
    // Matching spread the load: each expert got about a fifth.
    let loads: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ticket.expert_assigned' \
          AND metadata->>'actor' = 'system:matching' \
          GROUP BY data->>'expert_id' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(loads.iter().sum::<i64>(), 150);
    assert!(loads.len() == 5 && loads[4] - loads[0] <= 1, "{loads:?}");
    assert!(kills >= 12);
}
