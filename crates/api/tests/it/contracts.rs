//! Contracts through HTTP: the lifecycle from draft to renewal, the
//! process-manager commands (admin only), each error class and the
//! auditors' reads.

use chrono::{Days, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, get, post, token, TestApp};

struct People {
    sales: String,
    approver: String,
    manager: String,
    auditor: String,
    admin: String,
    customer: String,
}

impl People {
    fn new() -> Self {
        let user = || Uuid::now_v7().to_string();
        Self {
            sales: token("acme", &user(), &["sales"]),
            approver: token("acme", &user(), &["approver"]),
            manager: token("acme", &user(), &["manager"]),
            auditor: token("acme", &user(), &["auditor"]),
            admin: token("acme", &user(), &["admin"]),
            customer: token("acme", &user(), &["customer"]),
        }
    }
}

fn day(offset: i64) -> String {
    let today = Utc::now().date_naive();
    let d = if offset >= 0 {
        today.checked_add_days(Days::new(offset as u64))
    } else {
        today.checked_sub_days(Days::new(offset.unsigned_abs()))
    };
    d.unwrap().format("%Y-%m-%d").to_string()
}

/// A contract that started a month ago and ends yesterday, so it can be
/// activated, and expired, today.
fn contract_body() -> Value {
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
        "start_date": day(-30),
        "end_date": day(-1),
        "body": "The supplier provides managed fibre to the customer's three sites."
    })
}

async fn draft(app: &TestApp, people: &People) -> String {
    let response = post(app, &people.sales, "/api/v1/contracts", contract_body()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// `POST /api/v1/contracts/{id}/{action}`, expecting 200.
async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let response = post(
        app,
        token,
        &format!("/api/v1/contracts/{id}/{action}"),
        body,
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "{action}: {}",
        response.text().await.unwrap()
    );
    response.json().await.unwrap()
}

/// An approval of contract `id` with one level any approver may decide.
async fn request_approval(app: &TestApp, people: &People, id: &str) -> String {
    let response = post(
        app,
        &people.sales,
        "/api/v1/approvals",
        json!({
            "subject": { "kind": "contract", "id": id },
            "value": { "amount_minor": 12_000_000, "currency": "EUR" },
            "levels": [{ "approvers": [{ "role": "approver" }], "required": 1 }]
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = get(app, token, &format!("/api/v1/contracts/{id}/history")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

async fn state_at(app: &TestApp, token: &str, id: &str, query: &str) -> Value {
    let response = get(app, token, &format!("/api/v1/contracts/{id}?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_contract_is_drafted_amended_approved_signed_activated_and_renewed() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let response = post(&app, &people.sales, "/api/v1/contracts", contract_body()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/contracts/{id}"));
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_u64().unwrap() > 0);

    let amended = act(
        &app,
        &people.sales,
        &id,
        "amend",
        json!({
            "terms": {
                "value": { "amount_minor": 15_000_000, "currency": "EUR" },
                "start_date": day(-30),
                "end_date": day(-1)
            },
            "body": "The supplier provides managed fibre to four sites."
        }),
    )
    .await;
    assert_eq!(amended["version"], 2);

    // The approval is granted by an approver; the process manager (here an
    // admin) then approves the contract.
    let approval = request_approval(&app, &people, &id).await;
    act(
        &app,
        &people.sales,
        &id,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    let decided = post(
        &app,
        &people.approver,
        &format!("/api/v1/approvals/{approval}/decisions"),
        json!({ "decision": "approve" }),
    )
    .await;
    assert_eq!(decided.status(), 200);
    act(
        &app,
        &people.admin,
        &id,
        "approve",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.sales,
        &id,
        "sign",
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;
    act(&app, &people.manager, &id, "activate", json!({})).await;
    let renewed = act(
        &app,
        &people.sales,
        &id,
        "renew",
        json!({ "new_end_date": day(365) }),
    )
    .await;
    assert_eq!(renewed["version"], 7);

    let events = history(&app, &people.auditor, &id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "contract.drafted",
            "contract.amended",
            "contract.submitted_for_approval",
            "contract.approved",
            "contract.signed",
            "contract.activated",
            "contract.renewed"
        ]
    );
    assert_eq!(events[2]["data"]["approval_id"], approval.as_str());
    assert!(events[0]["metadata"]["request_id"].is_string());

    let now = state_at(&app, &people.auditor, &id, "at_version=7").await;
    assert_eq!(now["status"], "active");
    assert_eq!(now["contract_version"], 2);
    assert_eq!(now["terms"]["end_date"], day(365));
    assert_eq!(now["terms"]["value"]["amount_minor"], 15_000_000);
    assert_eq!(now["signatory_name"], "Hank Scorpio");
}

#[tokio::test]
async fn sharing_termination_rejection_and_expiry() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = draft(&app, &people).await;
    let user = Uuid::now_v7();
    act(
        &app,
        &people.sales,
        &id,
        "shares",
        json!({ "user_id": user }),
    )
    .await;
    act(
        &app,
        &people.sales,
        &id,
        "shares",
        json!({ "role": "Legal" }),
    )
    .await;
    let twice = post(
        &app,
        &people.sales,
        &format!("/api/v1/contracts/{id}/shares"),
        json!({ "user_id": user }),
    )
    .await;
    assert_error(twice, 409, "contract.already_shared").await;
    act(
        &app,
        &people.sales,
        &id,
        "unshare",
        json!({ "role": "legal" }),
    )
    .await;
    let state = state_at(&app, &people.manager, &id, "at_version=4").await;
    assert_eq!(
        state["shared_with"],
        json!([{ "user_id": user }]),
        "roles are lower-cased"
    );

    // Rejected by the approval's outcome, amended, submitted again.
    let approval = request_approval(&app, &people, &id).await;
    act(
        &app,
        &people.sales,
        &id,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    let wrong = post(
        &app,
        &people.admin,
        &format!("/api/v1/contracts/{id}/approve"),
        json!({ "approval_id": Uuid::now_v7() }),
    )
    .await;
    assert_error(wrong, 409, "contract.approval_mismatch").await;
    act(
        &app,
        &people.admin,
        &id,
        "reject",
        json!({ "approval_id": approval, "reason": "Value above the regional limit." }),
    )
    .await;
    let rejected = state_at(&app, &people.auditor, &id, "at_version=6").await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(
        rejected["rejection_reason"],
        "Value above the regional limit."
    );
    act(
        &app,
        &people.sales,
        &id,
        "amend",
        json!({ "body": "Reduced scope: two sites." }),
    )
    .await;

    // A contract whose term has ended expires (the timer's command).
    let ended = draft(&app, &people).await;
    let approval = request_approval(&app, &people, &ended).await;
    act(
        &app,
        &people.sales,
        &ended,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.admin,
        &ended,
        "approve",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.sales,
        &ended,
        "sign",
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;
    act(&app, &people.sales, &ended, "activate", json!({})).await;
    let sales_expiry = post(
        &app,
        &people.sales,
        &format!("/api/v1/contracts/{ended}/expire"),
        json!({}),
    )
    .await;
    assert_error(sales_expiry, 403, "auth.forbidden").await;
    act(&app, &people.admin, &ended, "expire", json!({})).await;
    let terminate = post(
        &app,
        &people.sales,
        &format!("/api/v1/contracts/{ended}/terminate"),
        json!({ "reason": "Customer moved." }),
    )
    .await;
    assert_error(terminate, 409, "contract.wrong_status").await;

    // A running contract is terminated.
    let running = draft(&app, &people).await;
    let approval = request_approval(&app, &people, &running).await;
    act(
        &app,
        &people.sales,
        &running,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.admin,
        &running,
        "approve",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.sales,
        &running,
        "sign",
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;
    act(&app, &people.sales, &running, "activate", json!({})).await;
    act(
        &app,
        &people.manager,
        &running,
        "terminate",
        json!({ "reason": "Customer moved." }),
    )
    .await;
    let last = history(&app, &people.auditor, &running).await;
    assert_eq!(last.last().unwrap()["type"], "contract.terminated");
}

#[tokio::test]
async fn invalid_input_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let mut body = contract_body();
    body["title"] = json!("  ");
    body["parties"][1]["kind"] = json!("robot");
    body["counterparty"]["contact"]["email"] = json!("hank-at-globex");
    body["value"]["currency"] = json!("euro");
    body["end_date"] = json!("next year");
    let error = assert_error(
        post(&app, &people.sales, "/api/v1/contracts", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    for field in [
        "title",
        "parties[1].kind",
        "counterparty.contact.email",
        "value.currency",
        "end_date",
    ] {
        assert!(fields.contains_key(field), "{field} missing in {fields:?}");
    }
    let mut body = contract_body();
    body["parties"] = json!([]);
    let error = assert_error(
        post(&app, &people.sales, "/api/v1/contracts", body).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(error["error"]["details"]["fields"]["parties"].is_string());
    // Years of five digits or below one are not RFC 3339 dates.
    let mut body = contract_body();
    body["start_date"] = json!("-4000-01-01");
    body["end_date"] = json!("+12345-01-01");
    let error = assert_error(
        post(&app, &people.sales, "/api/v1/contracts", body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    assert!(fields.contains_key("start_date"), "{fields:?}");
    assert!(fields.contains_key("end_date"), "{fields:?}");
    let unknown = post(
        &app,
        &people.sales,
        "/api/v1/contracts",
        json!({ "surprise": 1 }),
    )
    .await;
    assert_error(unknown, 400, "invalid_body").await;

    let id = draft(&app, &people).await;
    let path = |action: &str| format!("/api/v1/contracts/{id}/{action}");
    let error = assert_error(
        post(
            &app,
            &people.sales,
            &path("amend"),
            json!({ "terms": {
                "value": { "amount_minor": -1, "currency": "EUR" },
                "start_date": "2026-01-01",
                "end_date": "2026-13-01"
            }}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let fields = error["error"]["details"]["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("terms.value.amount_minor"),
        "{fields:?}"
    );
    assert!(fields.contains_key("terms.end_date"), "{fields:?}");
    for (action, field) in [
        ("sign", "signatory_name"),
        ("renew", "new_end_date"),
        ("terminate", "reason"),
        ("shares", "user_id"),
    ] {
        let error = assert_error(
            post(&app, &people.sales, &path(action), json!({})).await,
            400,
            "validation_failed",
        )
        .await;
        assert!(
            error["error"]["details"]["fields"][field].is_string(),
            "{action}: {error}"
        );
    }
    // Submitting to an approval about something else is a bad approval_id
    // (one that does not exist yet is opened by the approval flow).
    let other = draft(&app, &people).await;
    let approval = request_approval(&app, &people, &other).await;
    assert_error(
        post(
            &app,
            &people.sales,
            &path("submit"),
            json!({ "approval_id": approval }),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        post(&app, &people.sales, &path("teleport"), json!({})).await,
        404,
        "not_found",
    )
    .await;
    // Nothing to amend is the domain's refusal.
    assert_error(
        post(&app, &people.sales, &path("amend"), json!({})).await,
        409,
        "contract.nothing_to_amend",
    )
    .await;
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
}

#[tokio::test]
async fn roles_tenants_and_domain_rules_are_enforced() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = draft(&app, &people).await;
    let path = |action: &str| format!("/api/v1/contracts/{id}/{action}");
    // Wrong role.
    assert_error(
        post(&app, &people.customer, "/api/v1/contracts", contract_body()).await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        post(
            &app,
            &people.approver,
            &path("sign"),
            json!({ "signatory_name": "Hank Scorpio" }),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    // Approving and rejecting are the process manager's: admins only.
    for token in [&people.sales, &people.manager] {
        assert_error(
            post(
                &app,
                token,
                &path("approve"),
                json!({ "approval_id": Uuid::now_v7() }),
            )
            .await,
            403,
            "auth.forbidden",
        )
        .await;
    }
    assert_error(
        post(
            &app,
            &people.manager,
            &path("reject"),
            json!({ "approval_id": Uuid::now_v7(), "reason": "no" }),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        get(
            &app,
            &people.sales,
            &format!("/api/v1/contracts/{id}/history"),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    assert_error(
        get(
            &app,
            &people.sales,
            &format!("/api/v1/contracts/{id}?at_version=1"),
        )
        .await,
        403,
        "auth.forbidden",
    )
    .await;
    // Another tenant's contract does not exist for them.
    let stranger = token(
        "globex",
        &Uuid::now_v7().to_string(),
        &["sales", "auditor", "admin"],
    );
    assert_error(
        post(
            &app,
            &stranger,
            &path("sign"),
            json!({ "signatory_name": "Hank Scorpio" }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        get(&app, &stranger, &format!("/api/v1/contracts/{id}/history")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        get(
            &app,
            &stranger,
            &format!("/api/v1/contracts/{id}?at_version=1"),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // The domain refuses: signing a draft, activating before the start.
    assert_error(
        post(
            &app,
            &people.sales,
            &path("sign"),
            json!({ "signatory_name": "Hank Scorpio" }),
        )
        .await,
        409,
        "contract.wrong_status",
    )
    .await;
    let mut future = contract_body();
    future["start_date"] = json!(day(30));
    future["end_date"] = json!(day(395));
    let r = post(&app, &people.sales, "/api/v1/contracts", future).await;
    let later: Value = r.json().await.unwrap();
    let later = later["id"].as_str().unwrap();
    let approval = request_approval(&app, &people, later).await;
    act(
        &app,
        &people.sales,
        later,
        "submit",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.admin,
        later,
        "approve",
        json!({ "approval_id": approval }),
    )
    .await;
    act(
        &app,
        &people.sales,
        later,
        "sign",
        json!({ "signatory_name": "Hank Scorpio" }),
    )
    .await;
    assert_error(
        post(
            &app,
            &people.sales,
            &format!("/api/v1/contracts/{later}/activate"),
            json!({}),
        )
        .await,
        409,
        "contract.not_yet_started",
    )
    .await;
    // No token at all.
    let r = app
        .client
        .post(app.url("/api/v1/contracts"))
        .json(&contract_body())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "auth.missing_token").await;
}

#[tokio::test]
async fn if_match_and_idempotency_keys_guard_contract_commands() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = draft(&app, &people).await;
    let amend = |version: &str, key: Option<&str>| {
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/contracts/{id}/amend")))
            .bearer_auth(&people.sales)
            .header("if-match", version)
            .json(&json!({ "body": "Revised body." }));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let stale = amend("\"2\"", None).await.unwrap();
    let error = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(error["error"]["details"]["actual"], 1);
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 1);
    let ok = amend("\"1\"", Some("amend-1")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let first: Value = ok.json().await.unwrap();
    let retry = amend("\"1\"", Some("amend-1")).await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(history(&app, &people.auditor, &id).await.len(), 2);
}

#[tokio::test]
async fn auditors_see_the_contract_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let people = People::new();
    let id = draft(&app, &people).await;
    let before_amendment = Utc::now();
    let amended = act(
        &app,
        &people.sales,
        &id,
        "amend",
        json!({ "body": "Revised body." }),
    )
    .await;
    let v1 = state_at(&app, &people.auditor, &id, "at_version=1").await;
    assert_eq!(v1["status"], "draft");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["contract_version"], 1);
    assert_eq!(v1["parties"][0]["kind"], "organisation");
    assert_eq!(
        v1["counterparty"]["contact"]["email"],
        "hank@globex.example"
    );
    assert_eq!(v1["terms"]["value"]["currency"], "EUR");
    let then = state_at(
        &app,
        &people.auditor,
        &id,
        &format!(
            "as_of={}",
            before_amendment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    assert_eq!(then["contract_version"], 1);
    assert_eq!(
        then["body"],
        "The supplier provides managed fibre to the customer's three sites."
    );
    let now = state_at(&app, &people.auditor, &id, "at_version=2").await;
    assert_eq!(now["contract_version"], 2);
    assert_eq!(now["body"], "Revised body.");
    // Without as_of or at_version: the current contract, from the read
    // model, which auditors do not read; managers do.
    let refused = get(&app, &people.auditor, &format!("/api/v1/contracts/{id}")).await;
    assert_error(refused, 403, "auth.forbidden").await;
    let current = get(
        &app,
        &people.manager,
        &format!(
            "/api/v1/contracts/{id}?min_position={}",
            amended["position"]
        ),
    )
    .await;
    assert_eq!(current.status(), 200);
    let current: Value = current.json().await.unwrap();
    assert_eq!(current["contract_version"], 2);
    assert_eq!(current["body"], "Revised body.");
    assert_error(
        get(
            &app,
            &people.auditor,
            &format!("/api/v1/contracts/{id}?as_of=2020-01-01T00:00:00Z"),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let events = history(&app, &people.manager, &id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "contract.amended");
    assert_eq!(events[1]["stream_version"], 2);
}
