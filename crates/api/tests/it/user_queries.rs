//! `GET /api/v1/users`, `GET /api/v1/users/{id}`, `GET /api/v1/experts` and
//! `GET /api/v1/experts/{id}` from the read models: filters, sorts,
//! cursors, roles, tenants, and experts' load against a count kept by the
//! test itself.

use std::collections::HashMap;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

/// Posts and returns the answer's position.
async fn command(app: &TestApp, who: &str, path: &str, body: Value) -> u64 {
    let response = post(app, who, path, body).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.text().await.unwrap()
    );
    let body: Value = response.json().await.unwrap();
    body["position"].as_u64().unwrap()
}

async fn register(app: &TestApp, admin: &str, id: Uuid, email: &str, roles: &[&str]) -> u64 {
    let body = json!({ "id": id, "name": "Priya Raman", "email": email, "roles": roles });
    command(app, admin, "/api/v1/users", body).await
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn ids(list: &Value, column: &str) -> Vec<Uuid> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[column].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn users_are_listed_by_role_status_and_email_for_staff_only() {
    let app = TestApp::spawn().await;
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let manager = token("acme", &Uuid::now_v7().to_string(), &["manager"]);
    let (u1, u2, u3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    register(&app, &admin, u1, "ann@example.com", &["customer"]).await;
    register(
        &app,
        &admin,
        u2,
        "Priya.Raman@example.com",
        &["expert", "manager"],
    )
    .await;
    register(&app, &admin, u3, "kim@example.com", &["expert"]).await;
    let last = command(
        &app,
        &admin,
        &format!("/api/v1/users/{u1}/deactivate"),
        json!({}),
    )
    .await;
    let list = |who: &String, query: &str| {
        let (app, path) = (&app, format!("/api/v1/users?min_position={last}&{query}"));
        let who = who.clone();
        async move { json_of(get(app, &who, &path).await).await }
    };

    let all = list(&manager, "").await;
    assert_eq!(ids(&all, "user_id"), [u3, u2, u1]);
    assert!(all["position"].as_u64().unwrap() >= last);
    assert_eq!(
        ids(&list(&manager, "role=expert").await, "user_id"),
        [u3, u2]
    );
    assert_eq!(
        ids(
            &list(&manager, "role=customer,manager&sort=registered_at").await,
            "user_id"
        ),
        [u1, u2]
    );
    assert_eq!(
        ids(&list(&manager, "status=deactivated").await, "user_id"),
        [u1]
    );
    assert_eq!(
        ids(
            &list(&manager, "status=active&role=expert&sort=registered_at").await,
            "user_id"
        ),
        [u2, u3]
    );
    let by_email = list(&manager, "email=priya.raman@EXAMPLE.com").await;
    assert_eq!(ids(&by_email, "user_id"), [u2]);
    assert_eq!(by_email["items"][0]["name"], "Priya Raman");
    assert_eq!(by_email["items"][0]["roles"], json!(["expert", "manager"]));
    let mut walked = Vec::new();
    let mut page = list(&manager, "sort=registered_at&limit=2").await;
    loop {
        walked.extend(ids(&page, "user_id"));
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = list(
            &manager,
            &format!("sort=registered_at&limit=2&cursor={cursor}"),
        )
        .await;
    }
    assert_eq!(walked, [u1, u2, u3]);

    // One user from the read model (no as_of): name, email, status.
    let response = get(&app, &manager, &format!("/api/v1/users/{u1}")).await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let one = json_of(response).await;
    assert_eq!(one["status"], "deactivated");
    assert_eq!(one["email"], "ann@example.com");
    assert!(one["deactivated_at"].is_string());

    // Staff only, own tenant only.
    for role in ["admin", "analyst"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_eq!(ids(&list(&who, "").await, "user_id").len(), 3, "{role}");
    }
    for role in ["expert", "customer", "sales", "approver", "auditor"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_error(
            get(&app, &who, "/api/v1/users").await,
            403,
            "auth.forbidden",
        )
        .await;
        assert_error(
            get(&app, &who, &format!("/api/v1/users/{u2}")).await,
            403,
            "auth.forbidden",
        )
        .await;
    }
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["manager"]);
    assert!(ids(
        &json_of(get(&app, &stranger, "/api/v1/users").await).await,
        "user_id"
    )
    .is_empty());
    assert_error(
        get(&app, &stranger, &format!("/api/v1/users/{u2}")).await,
        404,
        "user.not_found",
    )
    .await;
    assert_error(
        get(&app, &manager, "/api/v1/users?email=").await,
        400,
        "invalid_query",
    )
    .await;
    assert_error(
        get(&app, &manager, "/api/v1/users?sort=email").await,
        400,
        "invalid_query",
    )
    .await;
}

/// What the test knows of a ticket: who holds it, and whether it counts
/// against them.
#[derive(Default, Clone, Copy)]
struct Held {
    expert: Option<usize>,
    open: bool,
}

struct Desk<'a> {
    app: &'a TestApp,
    manager: String,
    customer: String,
    experts: Vec<(Uuid, String)>,
    tickets: HashMap<String, Held>,
    last: u64,
}

impl Desk<'_> {
    async fn act(&mut self, who: &str, ticket: &str, action: &str, body: Value) {
        let path = format!("/api/v1/tickets/{ticket}/{action}");
        self.last = command(self.app, who, &path, body).await;
    }

    async fn open(&mut self) -> String {
        let body = json!({
            "contact": { "name": "Ann Customer", "email": "ann@example.com" },
            "product": "fibre-1000",
            "category": "connectivity",
            "priority": "P3",
            "required_skill": "networking",
            "title": "slow line",
            "description": "Slow since Monday."
        });
        let response = post(self.app, &self.customer, "/api/v1/tickets", body).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        self.tickets.insert(id.clone(), Held::default());
        id
    }

    async fn assign(&mut self, ticket: &str, expert: usize) {
        let manager = self.manager.clone();
        let body = json!({ "expert_id": self.experts[expert].0 });
        self.act(&manager, ticket, "assign", body).await;
        self.tickets.insert(
            ticket.to_owned(),
            Held {
                expert: Some(expert),
                open: true,
            },
        );
    }

    fn holder(&self, ticket: &str) -> (usize, String) {
        let e = self.tickets[ticket].expert.unwrap();
        (e, self.experts[e].1.clone())
    }

    async fn reject(&mut self, ticket: &str) {
        let (_, expert) = self.holder(ticket);
        self.act(
            &expert,
            ticket,
            "reject",
            json!({ "reason": "not my area" }),
        )
        .await;
        self.tickets.get_mut(ticket).unwrap().open = false;
    }

    async fn resolve(&mut self, ticket: &str) {
        let (_, expert) = self.holder(ticket);
        for action in ["accept", "start"] {
            self.act(&expert, ticket, action, json!({})).await;
        }
        self.act(&expert, ticket, "resolve", json!({ "resolution": "fixed" }))
            .await;
        self.tickets.get_mut(ticket).unwrap().open = false;
    }

    async fn reopen(&mut self, ticket: &str) {
        let customer = self.customer.clone();
        self.act(
            &customer,
            ticket,
            "reopen",
            json!({ "reason": "still slow" }),
        )
        .await;
        self.tickets.get_mut(ticket).unwrap().open = true;
    }

    async fn resolve_again_and_close(&mut self, ticket: &str) {
        let (_, expert) = self.holder(ticket);
        self.act(
            &expert,
            ticket,
            "resolve",
            json!({ "resolution": "really fixed" }),
        )
        .await;
        let customer = self.customer.clone();
        self.act(&customer, ticket, "close", json!({})).await;
        self.tickets.get_mut(ticket).unwrap().open = false;
    }

    /// Open tickets per expert, counted from what the test did.
    fn expected(&self) -> Vec<i64> {
        let mut load = vec![0; self.experts.len()];
        for held in self.tickets.values() {
            if let (Some(e), true) = (held.expert, held.open) {
                load[e] += 1;
            }
        }
        load
    }
}

#[tokio::test]
async fn an_experts_load_equals_the_open_tickets_the_test_counted() {
    let app = TestApp::spawn().await;
    let admin = token("acme", &Uuid::now_v7().to_string(), &["admin"]);
    let mut experts = Vec::new();
    for (i, skills) in [
        json!(["networking", "fibre"]),
        json!(["networking"]),
        json!(["billing"]),
    ]
    .into_iter()
    .enumerate()
    {
        let id = Uuid::now_v7();
        let who = token("acme", &id.to_string(), &["expert"]);
        register(&app, &admin, id, &format!("e{i}@example.com"), &["expert"]).await;
        command(
            &app,
            &who,
            &format!("/api/v1/users/{id}/skills"),
            json!({ "skills": skills }),
        )
        .await;
        if i < 2 {
            command(
                &app,
                &who,
                &format!("/api/v1/users/{id}/availability"),
                json!({ "available": true }),
            )
            .await;
        }
        experts.push((id, who));
    }
    let mut desk = Desk {
        app: &app,
        manager: token("acme", &Uuid::now_v7().to_string(), &["manager"]),
        customer: token("acme", &Uuid::now_v7().to_string(), &["customer"]),
        experts,
        tickets: HashMap::new(),
        last: 0,
    };
    // A spread of life cycles over 15 tickets and three experts.
    for i in 0..15_usize {
        let t = desk.open().await;
        desk.assign(&t, i % 3).await;
        match i % 5 {
            0 => {}
            1 => {
                desk.reject(&t).await;
                desk.assign(&t, (i + 1) % 3).await;
            }
            2 => desk.resolve(&t).await,
            3 => {
                desk.resolve(&t).await;
                desk.reopen(&t).await;
            }
            _ => {
                desk.resolve(&t).await;
                desk.reopen(&t).await;
                desk.resolve_again_and_close(&t).await;
            }
        }
        if i == 6 {
            // Rejected again by the expert it went to: nobody holds it.
            desk.reject(&t).await;
        }
    }
    let expected = desk.expected();
    assert!(expected.iter().sum::<i64>() > 0);
    let manager = desk.manager.clone();
    let last = desk.last;
    let experts = desk.experts.clone();
    let list = json_of(
        get(
            &app,
            &manager,
            &format!("/api/v1/experts?min_position={last}&sort=-open_tickets"),
        )
        .await,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let loads: Vec<i64> = items
        .iter()
        .map(|x| x["open_tickets"].as_i64().unwrap())
        .collect();
    let mut sorted = loads.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(loads, sorted, "sorted by load, highest first");
    for (i, (id, _)) in experts.iter().enumerate() {
        let one = json_of(
            get(
                &app,
                &manager,
                &format!("/api/v1/experts/{id}?min_position={last}"),
            )
            .await,
        )
        .await;
        assert_eq!(
            one["open_tickets"].as_i64(),
            Some(expected[i]),
            "expert {i}"
        );
        let listed = items
            .iter()
            .find(|x| x["expert_id"] == id.to_string())
            .unwrap();
        assert_eq!(
            listed["open_tickets"].as_i64(),
            Some(expected[i]),
            "expert {i}"
        );
    }

    // Filters, the default sort (least loaded first) and cursors.
    let skilled = json_of(get(&app, &manager, "/api/v1/experts?skill=networking").await).await;
    let mut skilled_ids = ids(&skilled, "expert_id");
    skilled_ids.sort();
    let mut want = vec![experts[0].0, experts[1].0];
    want.sort();
    assert_eq!(skilled_ids, want);
    let available =
        json_of(get(&app, &manager, "/api/v1/experts?availability=unavailable").await).await;
    assert_eq!(ids(&available, "expert_id"), [experts[2].0]);
    assert_eq!(available["items"][0]["skills"], json!(["billing"]));
    let mut walked = Vec::new();
    let mut page = json_of(get(&app, &manager, "/api/v1/experts?limit=1").await).await;
    loop {
        walked.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["open_tickets"].as_i64().unwrap()),
        );
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = json_of(
            get(
                &app,
                &manager,
                &format!("/api/v1/experts?limit=1&cursor={cursor}"),
            )
            .await,
        )
        .await;
    }
    sorted.reverse();
    assert_eq!(walked, sorted);

    // Roles and tenants.
    for role in ["expert", "admin", "analyst"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_eq!(
            ids(
                &json_of(get(&app, &who, "/api/v1/experts").await).await,
                "expert_id"
            )
            .len(),
            3
        );
    }
    for role in ["customer", "sales", "auditor"] {
        let who = token("acme", &Uuid::now_v7().to_string(), &[role]);
        assert_error(
            get(&app, &who, "/api/v1/experts").await,
            403,
            "auth.forbidden",
        )
        .await;
        assert_error(
            get(&app, &who, &format!("/api/v1/experts/{}", experts[0].0)).await,
            403,
            "auth.forbidden",
        )
        .await;
    }
    let stranger = token("globex", &Uuid::now_v7().to_string(), &["manager"]);
    assert_error(
        get(
            &app,
            &stranger,
            &format!("/api/v1/experts/{}", experts[0].0),
        )
        .await,
        404,
        "expert.not_found",
    )
    .await;
    assert_error(
        get(
            &app,
            &manager,
            &format!("/api/v1/experts/{}", Uuid::now_v7()),
        )
        .await,
        404,
        "expert.not_found",
    )
    .await;
    assert_error(
        get(
            &app,
            &manager,
            &format!("/api/v1/experts/{}?colour=red", experts[0].0),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
}
