//! Reactions end to end through the HTTP API, in virtual time: expert
//! matching, SLA breaches, surveys, approval flows, and notifications
//! delivered to a webhook receiver and an SMTP sink that the tests run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use chronicle_projections::clock::{Clock, VirtualClock};
use chronicle_projections::reactions::delivery::sign;
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

use crate::helpers::{get, post as post_json, token, TestApp};

const WEBHOOK_SECRET: &str = "webhook-secret-webhook-secret-0123456789";

/// A webhook call as received.
#[derive(Debug, Clone)]
struct Hook {
    delivery: String,
    path: String,
    body: Value,
}

/// Receives webhooks on `/hook/{user}`, checking each signature.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Hook>>>) {
    let received: Arc<Mutex<Vec<Hook>>> = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook/{user}",
        post(
            move |axum::extract::Path(user): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: Bytes| {
                let store = store.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let signature = header("chronicle-signature");
                    let (t, v1) = signature
                        .split_once(',')
                        .map(|(t, v)| {
                            (
                                t.trim_start_matches("t=").to_owned(),
                                v.trim_start_matches("v1=").to_owned(),
                            )
                        })
                        .unwrap_or_default();
                    let body_text = String::from_utf8(body.to_vec()).unwrap();
                    let expected = sign(
                        WEBHOOK_SECRET.as_bytes(),
                        t.parse().unwrap_or(0),
                        &body_text,
                    );
                    if expected != v1 {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    store.lock().unwrap().push(Hook {
                        delivery: header("chronicle-delivery"),
                        path: user,
                        body: serde_json::from_str(&body_text).unwrap(),
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// A mail as the SMTP sink received it.
#[derive(Debug, Clone)]
struct Mail {
    to: String,
    data: String,
}

impl Mail {
    fn message_id(&self) -> String {
        self.data
            .lines()
            .find_map(|l| {
                l.strip_prefix("Message-ID:")
                    .or_else(|| l.strip_prefix("Message-Id:"))
            })
            .unwrap_or("")
            .trim()
            .to_owned()
    }
}

/// A minimal SMTP server that accepts every message.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut to = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to = line[8..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 end with .\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        store.lock().unwrap().push(Mail {
                            to: to.clone(),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, mails)
}

/// The app, its clock, and what its notifications reached.
struct World {
    app: TestApp,
    clock: VirtualClock,
    hooks_url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    mails: Arc<Mutex<Vec<Mail>>>,
    admin: String,
    manager: String,
    auditor: String,
}

impl World {
    async fn new() -> Self {
        let (hooks_url, hooks) = webhook_receiver().await;
        let (smtp_port, mails) = smtp_sink().await;
        let clock = VirtualClock::new(Utc::now());
        let smtp = format!("smtp://127.0.0.1:{smtp_port}");
        let app = TestApp::spawn_reactive(
            clock.clone(),
            &[
                ("CHRONICLE_SMTP_URL", &smtp),
                ("CHRONICLE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
        )
        .await;
        let manager_id = Uuid::now_v7();
        let world = Self {
            app,
            clock,
            hooks_url,
            hooks,
            mails,
            admin: token("acme", &Uuid::now_v7().to_string(), &["admin"]),
            manager: token("acme", &manager_id.to_string(), &["manager"]),
            auditor: token("acme", &Uuid::now_v7().to_string(), &["auditor"]),
        };
        world
            .register(manager_id, "Mia Manager", &["manager"])
            .await;
        world
            .subscribe(&world.manager, manager_id, &["sla_breach", "status_change"])
            .await;
        world
    }

    async fn command(&self, token: &str, path: &str, body: Value) -> Value {
        let response = post_json(&self.app, token, path, body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// `GET path`, `None` unless it answers 200 (e.g. 404 until a read
    /// model has caught up).
    async fn try_read(&self, token: &str, path: &str) -> Option<Value> {
        let response = get(&self.app, token, path).await;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }

    async fn read(&self, token: &str, path: &str) -> Value {
        let response = get(&self.app, token, path).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Registers a user of the tenant with `roles`.
    async fn register(&self, id: Uuid, name: &str, roles: &[&str]) {
        self.command(
            &self.admin,
            "/api/v1/users",
            json!({
                "id": id,
                "name": name,
                "email": format!("{}@example.com", name.split(' ').next().unwrap().to_lowercase()),
                "roles": roles,
            }),
        )
        .await;
    }

    /// A registered user with one role; returns (id, token).
    async fn person(&self, name: &str, role: &str) -> (Uuid, String) {
        let id = Uuid::now_v7();
        self.register(id, name, &[role]).await;
        (id, token("acme", &id.to_string(), &[role]))
    }

    /// An available expert with a skill; returns (id, token).
    async fn expert(&self, name: &str, skill: &str) -> (Uuid, String) {
        let id = Uuid::now_v7();
        self.register(id, name, &["expert"]).await;
        let t = token("acme", &id.to_string(), &["expert"]);
        self.command(
            &t,
            &format!("/api/v1/users/{id}/skills"),
            json!({ "skills": [skill] }),
        )
        .await;
        self.subscribe(&t, id, &["assignment", "sla_breach"]).await;
        self.command(
            &t,
            &format!("/api/v1/users/{id}/availability"),
            json!({ "available": true }),
        )
        .await;
        (id, t)
    }

    /// Sets the caller's preferences: `kinds` in-app, by webhook and email.
    async fn subscribe(&self, token: &str, id: Uuid, kinds: &[&str]) {
        let response = self
            .app
            .client
            .put(self.app.url("/api/v1/me/notification-preferences"))
            .bearer_auth(token)
            .json(&json!({
                "kinds": kinds,
                "in_app": true,
                "email": format!("u{}@example.com", id.simple()),
                "webhook_url": format!("{}/hook/{id}", self.hooks_url),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    /// Polls `check` until it gives a value, for at most 20 s.
    async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn history(&self, collection: &str, id: &str) -> Vec<String> {
        let body = self
            .read(&self.auditor, &format!("/api/v1/{collection}/{id}/history"))
            .await;
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until every delivery is delivered; then checks that each
    /// reached its receiver exactly once. Returns (webhooks, mails).
    async fn all_delivered_once(&self) -> (Vec<Hook>, Vec<Mail>) {
        let stats = self
            .eventually("every delivery delivered", || async {
                let stats = self
                    .read(&self.manager, "/api/v1/notifications/deliveries/stats")
                    .await;
                let settled = ["email", "webhook"].iter().all(|c| {
                    let s = &stats["channels"][c];
                    s["pending"] == 0 && s["retrying"] == 0 && s["dead"] == 0
                });
                settled.then_some(stats)
            })
            .await;
        let hooks = self.hooks.lock().unwrap().clone();
        let mails = self.mails.lock().unwrap().clone();
        let mut by_delivery: BTreeMap<String, usize> = BTreeMap::new();
        for h in &hooks {
            *by_delivery.entry(h.delivery.clone()).or_default() += 1;
        }
        assert!(
            by_delivery.values().all(|n| *n == 1),
            "a webhook delivered twice: {by_delivery:?}"
        );
        assert_eq!(
            hooks.len() as i64,
            stats["channels"]["webhook"]["delivered"].as_i64().unwrap(),
            "every delivered webhook was received once"
        );
        let mut by_message: BTreeMap<String, usize> = BTreeMap::new();
        for m in &mails {
            *by_message.entry(m.message_id()).or_default() += 1;
        }
        assert!(
            by_message.values().all(|n| *n == 1),
            "a mail delivered twice: {by_message:?}"
        );
        assert_eq!(
            mails.len() as i64,
            stats["channels"]["email"]["delivered"].as_i64().unwrap()
        );
        (hooks, mails)
    }
}

/// The kinds of the webhooks `user` received, sorted (deliveries run
/// concurrently, so their order is not the events' order).
fn kinds_for(hooks: &[Hook], user: Uuid) -> Vec<String> {
    let mut kinds: Vec<String> = hooks
        .iter()
        .filter(|h| h.path == user.to_string())
        .map(|h| h.body["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ticket_is_matched_rematched_breached_resolved_and_surveyed() {
    let w = World::new().await;
    let (first, first_token) = w.expert("Ada Expert", "networking").await;
    let (second, second_token) = w.expert("Bob Expert", "networking").await;
    let tokens = BTreeMap::from([(first, first_token), (second, second_token)]);
    let customer_id = Uuid::now_v7();
    let customer = token("acme", &customer_id.to_string(), &["customer"]);
    w.subscribe(&customer, customer_id, &["status_change", "survey"])
        .await;

    // Opened: matched to an available expert with the skill.
    let opened = w
        .command(
            &customer,
            "/api/v1/tickets",
            json!({
                "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                "product": "fibre-1000",
                "category": "connectivity",
                "priority": "P2",
                "required_skill": "Networking",
                "title": "Packet loss on the uplink",
                "description": "Loss of 2-5 % during business hours."
            }),
        )
        .await;
    let id = opened["id"].as_str().unwrap().to_owned();
    let assigned_to = |expected_not: Option<Uuid>| {
        let w = &w;
        let id = id.clone();
        async move {
            let t = w
                .try_read(&w.manager, &format!("/api/v1/tickets/{id}"))
                .await?;
            let expert: Option<Uuid> = t["expert_id"].as_str().and_then(|s| s.parse().ok());
            expert.filter(|e| Some(*e) != expected_not)
        }
    };
    let matched = w
        .eventually("the ticket matched", || assigned_to(None))
        .await;
    assert!(tokens.contains_key(&matched));
    let other = if matched == first { second } else { first };

    // Rejected: matched to the other expert, never back to the first.
    w.command(
        &tokens[&matched],
        &format!("/api/v1/tickets/{id}/reject"),
        json!({ "reason": "Not my region" }),
    )
    .await;
    let rematched = w
        .eventually("the ticket rematched", || assigned_to(Some(matched)))
        .await;
    assert_eq!(rematched, other);
    w.command(
        &tokens[&other],
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
    )
    .await;

    // 25 virtual hours later the 24 h resolution SLA of P2 is breached
    // (assignment and first response were in time).
    w.clock.advance(TimeDelta::hours(25));
    let history = w
        .eventually("the SLA breach", || async {
            let h = w.history("tickets", &id).await;
            h.contains(&"ticket.escalated".to_owned()).then_some(h)
        })
        .await;
    let breaches: Vec<_> = history
        .iter()
        .filter(|t| *t == "ticket.sla_breached")
        .collect();
    assert_eq!(breaches.len(), 1, "{history:?}");

    // Resolved: a survey goes to the customer, who answers it.
    w.command(
        &tokens[&other],
        &format!("/api/v1/tickets/{id}/start"),
        json!({}),
    )
    .await;
    w.command(
        &tokens[&other],
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({ "resolution": "Replaced the faulty SFP." }),
    )
    .await;
    let survey_id = w
        .eventually("the survey", || async {
            let t = w
                .try_read(&w.manager, &format!("/api/v1/tickets/{id}"))
                .await?;
            t["survey_id"].as_str().map(str::to_owned)
        })
        .await;
    w.command(
        &customer,
        &format!("/api/v1/tickets/{id}/survey-answers"),
        json!({ "survey_id": survey_id, "score": 5, "comment": "Fast and friendly" }),
    )
    .await;
    let history = w.history("tickets", &id).await;
    assert_eq!(
        history,
        [
            "ticket.opened",
            "ticket.expert_assigned",
            "ticket.rejected",
            "ticket.expert_assigned",
            "ticket.accepted",
            "ticket.sla_breached",
            "ticket.escalated",
            "ticket.work_started",
            "ticket.resolved",
            "ticket.survey_sent",
            "ticket.survey_answered",
        ]
    );

    // Each notification reached its people once, by webhook and email.
    let (hooks, mails) = w.all_delivered_once().await;
    assert_eq!(kinds_for(&hooks, matched), ["assignment"]);
    assert_eq!(kinds_for(&hooks, other), ["assignment", "sla_breach"]);
    let customer_kinds = kinds_for(&hooks, customer_id);
    assert_eq!(
        customer_kinds,
        ["status_change", "status_change", "status_change", "survey"],
        "accepted, started, resolved; the survey"
    );
    assert!(mails
        .iter()
        .any(|m| m.to == format!("u{}@example.com", customer_id.simple())));
    // In-app, the customer sees them too, and can mark one read.
    let mine = w.read(&customer, "/api/v1/me/notifications").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 4);
    assert_eq!(mine["unread"], 4);
    let first_id = mine["items"][0]["id"].as_str().unwrap();
    w.command(
        &customer,
        &format!("/api/v1/me/notifications/{first_id}/read"),
        json!({}),
    )
    .await;
    let unread = w
        .read(&customer, "/api/v1/me/notifications?unread=true")
        .await;
    assert_eq!(unread["items"].as_array().unwrap().len(), 3);
    assert_eq!(unread["unread"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ticket_nobody_can_take_waits_and_is_matched_when_an_expert_comes() {
    let w = World::new().await;
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let opened = w
        .command(
            &customer,
            "/api/v1/tickets",
            json!({
                "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                "product": "tv", "category": "picture", "priority": "P3",
                "required_skill": "smart-tv",
                "title": "No picture", "description": "Black screen since the update."
            }),
        )
        .await;
    let id = opened["id"].as_str().unwrap().to_owned();
    w.eventually("the escalation", || async {
        let h = w.history("tickets", &id).await;
        h.contains(&"ticket.escalated".to_owned()).then_some(())
    })
    .await;
    let (expert, _) = w.expert("Cy Expert", "Smart-TV").await;
    let t = w
        .eventually("the late match", || async {
            let t = w
                .try_read(&w.manager, &format!("/api/v1/tickets/{id}"))
                .await?;
            t["expert_id"].as_str().is_some().then_some(t)
        })
        .await;
    assert_eq!(t["expert_id"], json!(expert));
    assert_eq!(
        w.history("tickets", &id).await,
        [
            "ticket.opened",
            "ticket.escalated",
            "ticket.expert_assigned"
        ]
    );
}

/// A lead captured by `sales` (who owns it), qualified, feasible and with
/// a design submitted: ready for its design approval. Returns its id.
async fn lead_with_a_design(w: &World, sales: &str, sales_id: Uuid) -> String {
    let lead = w
        .command(
            sales,
            "/api/v1/leads",
            json!({
                "company": "Initech GmbH",
                "contact": { "name": "Peter Gibbons", "email": "peter@initech.example" },
                "site_address": "Hauptstrasse 1, 10115 Berlin",
                "service": "Dedicated Internet Access",
                "bandwidth_mbps": 1000,
                "estimated_value": { "amount_minor": 1_200_000, "currency": "EUR" },
                "source": "web form"
            }),
        )
        .await;
    let id = lead["id"].as_str().unwrap().to_owned();
    let act = |action: &'static str, body: Value| {
        let (id, sales) = (id.clone(), sales.to_owned());
        async move {
            w.command(&sales, &format!("/api/v1/leads/{id}/{action}"), body)
                .await
        }
    };
    w.command(
        &w.manager,
        &format!("/api/v1/leads/{id}/owner"),
        json!({ "owner_id": sales_id }),
    )
    .await;
    act("qualify", json!({ "score": 80 })).await;
    act(
        "serviceability",
        json!({ "feasible": true, "notes": "Fibre in the street" }),
    )
    .await;
    act(
        "designs",
        json!({ "summary": "Dual-homed 1G", "specification": "Two paths, BGP." }),
    )
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdue_design_approval_is_escalated_by_its_timer_and_a_rejection_sends_the_design_back(
) {
    let w = World::new().await;
    let (_, approver) = w.person("Ari Approver", "approver").await;
    let (sales_id, sales) = w.person("Sam Sales", "sales").await;
    let response = w
        .app
        .client
        .put(w.app.url("/api/v1/approval-policy"))
        .bearer_auth(&w.manager)
        .json(&json!({ "rules": [{ "kind": "lead_design", "thresholds": [
            { "min_value_minor": 0, "levels": [
                { "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 3600 }
            ] }
        ] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Given a lead whose design waits for a level due in an hour
    let id = lead_with_a_design(&w, &sales, sales_id).await;
    let approval_id = Uuid::now_v7();
    w.command(
        &sales,
        &format!("/api/v1/leads/{id}/design-approval"),
        json!({ "approval_id": approval_id }),
    )
    .await;
    let path = format!("/api/v1/approvals/{approval_id}");
    w.eventually("the approval request", || async {
        w.try_read(&w.manager, &path).await
    })
    .await;
    // when the hour passes in virtual time, the timer escalates the level once
    w.clock.advance(TimeDelta::minutes(61));
    w.eventually("the escalation", || async {
        let history = w.history("approvals", &approval_id.to_string()).await;
        history
            .contains(&"approval.escalated".to_owned())
            .then_some(())
    })
    .await;
    w.clock.advance(TimeDelta::hours(5));
    // and a rejection then sends the lead back to design.
    w.command(
        &approver,
        &format!("/api/v1/approvals/{approval_id}/decisions"),
        json!({ "decision": "reject", "comment": "Single path only" }),
    )
    .await;
    let stage = w
        .eventually("the lead back in design", || async {
            let l = w.try_read(&sales, &format!("/api/v1/leads/{id}")).await?;
            (l["stage"] == "design").then_some(l["stage"].clone())
        })
        .await;
    assert_eq!(stage, "design");
    let approval = w.history("approvals", &approval_id.to_string()).await;
    assert_eq!(
        approval,
        [
            "approval.requested",
            "approval.escalated",
            "approval.decision_recorded",
            "approval.rejected"
        ],
        "escalated exactly once"
    );
    let lead = w.history("leads", &id).await;
    assert_eq!(
        &lead[lead.len() - 2..],
        ["lead.design_approval_requested", "lead.design_rejected"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_design_passes_two_approval_levels_into_implementation() {
    let w = World::new().await;
    let (approver_id, approver) = w.person("Ari Approver", "approver").await;
    w.subscribe(&approver, approver_id, &["approval_waiting"])
        .await;
    let (director_id, director) = w.person("Dee Director", "sales").await;
    w.subscribe(&director, director_id, &["approval_waiting"])
        .await;
    let (sales_id, sales) = w.person("Sam Sales", "sales").await;
    w.subscribe(&sales, sales_id, &["approval_outcome", "assignment"])
        .await;

    let response = w
        .app
        .client
        .put(w.app.url("/api/v1/approval-policy"))
        .bearer_auth(&w.manager)
        .json(&json!({ "rules": [{ "kind": "lead_design", "thresholds": [
            { "min_value_minor": 0, "levels": [
                { "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 86400 },
                { "approvers": [{ "user": director_id }], "required": 1 }
            ] }
        ] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let id = lead_with_a_design(&w, &sales, sales_id).await;
    let act = |action: &'static str, body: Value| {
        let (w, id, sales) = (&w, id.clone(), sales.clone());
        async move {
            w.command(&sales, &format!("/api/v1/leads/{id}/{action}"), body)
                .await
        }
    };
    let approval_id = Uuid::now_v7();
    act("design-approval", json!({ "approval_id": approval_id })).await;

    // The approval appears with the policy's two levels.
    let approval = w
        .eventually("the approval request", || async {
            let r = get(
                &w.app,
                &w.manager,
                &format!("/api/v1/approvals/{approval_id}"),
            )
            .await;
            if r.status() == 200 {
                r.json::<Value>().await.ok()
            } else {
                None
            }
        })
        .await;
    assert_eq!(approval["status"], "open");
    let decide = |token: String| {
        let w = &w;
        async move {
            w.command(
                &token,
                &format!("/api/v1/approvals/{approval_id}/decisions"),
                json!({ "decision": "approve", "comment": "Fine" }),
            )
            .await
        }
    };
    decide(approver.clone()).await;
    decide(director.clone()).await;
    let stage = w
        .eventually("the lead in implementation", || async {
            let l = w.try_read(&sales, &format!("/api/v1/leads/{id}")).await?;
            (l["stage"] == "implementation").then_some(l["stage"].clone())
        })
        .await;
    assert_eq!(stage, "implementation");
    let history = w.history("leads", &id).await;
    assert_eq!(
        &history[history.len() - 2..],
        ["lead.design_approval_requested", "lead.design_approved"]
    );

    let (hooks, _) = w.all_delivered_once().await;
    assert_eq!(kinds_for(&hooks, approver_id), ["approval_waiting"]);
    assert_eq!(kinds_for(&hooks, director_id), ["approval_waiting"]);
    assert_eq!(
        kinds_for(&hooks, sales_id),
        ["approval_outcome", "assignment"],
        "owner of the lead, and the approval granted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contract_is_rejected_then_approved_and_expires_on_time() {
    let w = World::new().await;
    let (_, approver) = w.person("Ari Approver", "approver").await;
    let (sales_id, sales) = w.person("Sam Sales", "sales").await;
    w.subscribe(
        &sales,
        sales_id,
        &["status_change", "renewal_due", "approval_outcome"],
    )
    .await;
    let today = w.clock.now().date_naive();
    let contract = w
        .command(
            &sales,
            "/api/v1/contracts",
            json!({
                "title": "Managed fibre, 3 sites",
                "parties": [
                    { "name": "Acme Networks Ltd", "kind": "organisation", "role": "supplier" },
                    { "name": "Globex Corp", "kind": "organisation", "role": "customer" }
                ],
                "counterparty": {
                    "organisation": "Globex Corp",
                    "contact": { "name": "Hank Scorpio", "email": "hank@globex.example" }
                },
                "value": { "amount_minor": 12_000_000, "currency": "EUR" },
                "start_date": today.to_string(),
                "end_date": (today + TimeDelta::days(60)).to_string(),
                "body": "The supplier provides managed fibre to three sites."
            }),
        )
        .await;
    let id = contract["id"].as_str().unwrap().to_owned();
    let status = |want: &'static str| {
        let (w, id, sales) = (&w, id.clone(), sales.clone());
        async move {
            w.eventually(want, || async {
                let c = w
                    .try_read(&sales, &format!("/api/v1/contracts/{id}"))
                    .await?;
                (c["status"] == want).then_some(())
            })
            .await
        }
    };
    let decide_on = |approval: Uuid, decision: &'static str| {
        let (w, approver) = (&w, approver.clone());
        async move {
            w.eventually("the approval request", || async {
                let r = get(&w.app, &w.manager, &format!("/api/v1/approvals/{approval}")).await;
                (r.status() == 200).then_some(())
            })
            .await;
            w.command(
                &approver,
                &format!("/api/v1/approvals/{approval}/decisions"),
                json!({ "decision": decision, "comment": "Price too high" }),
            )
            .await
        }
    };

    // The default policy: one approver. Rejected first.
    let first = Uuid::now_v7();
    w.command(
        &sales,
        &format!("/api/v1/contracts/{id}/submit"),
        json!({ "approval_id": first }),
    )
    .await;
    decide_on(first, "reject").await;
    status("rejected").await;
    // Submitted again and approved, signed and activated.
    let second = Uuid::now_v7();
    w.command(
        &sales,
        &format!("/api/v1/contracts/{id}/submit"),
        json!({ "approval_id": second }),
    )
    .await;
    decide_on(second, "approve").await;
    status("approved").await;
    w.command(
        &sales,
        &format!("/api/v1/contracts/{id}/sign"),
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;
    w.command(
        &sales,
        &format!("/api/v1/contracts/{id}/activate"),
        json!({}),
    )
    .await;

    // 31 days on the renewal is due (30 days before the end); past the
    // end date the contract expires.
    w.clock.advance(TimeDelta::days(31));
    w.eventually("the renewal notice", || async {
        let h = w.history("contracts", &id).await;
        h.contains(&"contract.renewal_due".to_owned()).then_some(())
    })
    .await;
    w.clock.advance(TimeDelta::days(31));
    status("expired").await;
    let history = w.history("contracts", &id).await;
    assert_eq!(
        history,
        [
            "contract.drafted",
            "contract.submitted_for_approval",
            "contract.rejected",
            "contract.submitted_for_approval",
            "contract.approved",
            "contract.signed",
            "contract.activated",
            "contract.renewal_due",
            "contract.expired",
        ]
    );
    let (hooks, _) = w.all_delivered_once().await;
    assert_eq!(
        kinds_for(&hooks, sales_id),
        [
            "approval_outcome",
            "approval_outcome",
            "renewal_due",
            "status_change",
            "status_change",
            "status_change",
            "status_change",
            "status_change",
        ],
        "two approval outcomes; rejected, approved, signed, activated, expired; the renewal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn managers_see_deliveries_and_retry_dead_letters() {
    // Webhooks to a closed port fail; one attempt makes them dead.
    let clock = VirtualClock::new(Utc::now());
    let app = TestApp::spawn_reactive(
        clock.clone(),
        &[
            ("CHRONICLE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("CHRONICLE_DELIVERY_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    let manager_id = Uuid::now_v7();
    let manager = token("acme", &manager_id.to_string(), &["manager"]);
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let registered = post_json(
        &app,
        &admin,
        "/api/v1/users",
        json!({ "id": manager_id, "name": "Mia", "email": "mia@example.com", "roles": ["manager"] }),
    )
    .await;
    assert_eq!(registered.status(), 201);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let response = app
        .client
        .put(app.url("/api/v1/me/notification-preferences"))
        .bearer_auth(&manager)
        .json(&json!({
            "kinds": ["status_change"], "in_app": false, "email": null,
            "webhook_url": format!("http://127.0.0.1:{closed}/hook"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    // Nobody can take the ticket: matching escalates it, which tells the
    // managers.
    let customer = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let opened = post_json(
        &app,
        &customer,
        "/api/v1/tickets",
        json!({
            "contact": { "name": "Ann", "email": "ann@example.com" },
            "product": "p", "category": "c", "priority": "P4", "required_skill": "s",
            "title": "T", "description": "D"
        }),
    )
    .await;
    assert_eq!(opened.status(), 201);

    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        // The retry waits a (virtual) second.
        clock.advance(TimeDelta::seconds(2));
        let list: Value = get(
            &app,
            &manager,
            "/api/v1/notifications/deliveries?status=dead",
        )
        .await
        .json()
        .await
        .unwrap();
        if let Some(d) = list["items"].as_array().and_then(|a| a.first().cloned()) {
            break d;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["channel"], "webhook");
    assert_eq!(dead["attempts"], 2);
    assert!(dead["last_error"].as_str().unwrap().contains("reach"));
    let stats: Value = get(&app, &manager, "/api/v1/notifications/deliveries/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["channels"]["webhook"]["dead"], 1);
    assert_eq!(stats["channels"]["webhook"]["success_rate"], 0.0);

    // Customers do not see deliveries; managers retry a dead letter.
    let r = get(&app, &customer, "/api/v1/notifications/deliveries").await;
    assert_eq!(r.status(), 403);
    let retry = format!(
        "/api/v1/notifications/deliveries/{}/retry",
        dead["id"].as_str().unwrap()
    );
    let r = post_json(&app, &manager, &retry, json!({})).await;
    assert_eq!(r.status(), 202);
    let r = post_json(&app, &manager, &retry, json!({})).await;
    assert!(
        r.status() == 202 || r.status() == 409,
        "pending again, or already failed again"
    );
    let other_tenant = token("other", &Uuid::now_v7().to_string(), &["manager"]);
    let r = post_json(&app, &other_tenant, &retry, json!({})).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preferences_are_validated_per_field_and_read_back() {
    let app = TestApp::spawn().await;
    let user = token("acme", &Uuid::now_v7().to_string(), &["customer"]);
    let read: Value = get(&app, &user, "/api/v1/me/notification-preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["default"], true);
    assert_eq!(read["preferences"]["in_app"], true);
    assert_eq!(read["preferences"]["kinds"].as_array().unwrap().len(), 7);
    let bad = app
        .client
        .put(app.url("/api/v1/me/notification-preferences"))
        .bearer_auth(&user)
        .json(&json!({
            "kinds": ["assignment", "gossip"], "in_app": true,
            "email": "not-an-email", "webhook_url": "ftp://x"
        }))
        .send()
        .await
        .unwrap();
    let body = crate::helpers::assert_error(bad, 400, "validation_failed").await;
    let fields = body["error"]["details"]["fields"].as_object().unwrap();
    for f in ["kinds[1]", "email", "webhook_url"] {
        assert!(fields.contains_key(f), "{f} in {fields:?}");
    }
    let good = app
        .client
        .put(app.url("/api/v1/me/notification-preferences"))
        .bearer_auth(&user)
        .json(&json!({ "kinds": ["survey"], "in_app": false, "email": "Ann@Example.com", "webhook_url": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let read: Value = get(&app, &user, "/api/v1/me/notification-preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["default"], false);
    assert_eq!(read["version"], 1);
    assert_eq!(
        read["preferences"],
        json!({ "kinds": ["survey"], "in_app": false, "email": "ann@example.com", "webhook_url": null })
    );
    let unknown = get(&app, &user, "/api/v1/me/notifications?colour=red").await;
    crate::helpers::assert_error(unknown, 400, "invalid_query").await;
}
