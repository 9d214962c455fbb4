//! A spawned app over a fresh database, and token helpers.

use std::collections::HashMap;
use std::net::SocketAddr;

use chronicle_api::{every_projection, Application, Config, Projectors, Workers};
use chronicle_testkit::TestDb;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// The HS256 secret test apps are configured with.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub _db: TestDb,
    pub _projectors: Projectors,
    /// The data directory (generated keys), unless the settings name one.
    pub data: tempfile::TempDir,
}

impl TestApp {
    /// An app with the test secret and otherwise default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// An app with the test secret plus `vars` (environment-style settings).
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let mut map: HashMap<String, String> = HashMap::from([
            ("CHRONICLE_LISTEN".into(), "127.0.0.1:0".into()),
            ("CHRONICLE_JWT_SECRET".into(), SECRET.into()),
        ]);
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        Self::spawn_config(db, map).await
    }

    pub async fn spawn_config(db: TestDb, mut vars: HashMap<String, String>) -> Self {
        let data = tempfile::tempdir().unwrap();
        vars.entry("CHRONICLE_DATA_DIR".into())
            .or_insert_with(|| data.path().display().to_string());
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let app = Application::build(&config, db.pool.clone()).await.unwrap();
        let addr = app.local_addr().unwrap();
        tokio::spawn(app.run_until(std::future::pending()));
        let projectors = Projectors::start(
            &db.pool,
            chronicle_projections::all(),
            chronicle_projections::runtime::Options::default(),
        );
        Self {
            addr,
            client: reqwest::Client::new(),
            _db: db,
            _projectors: projectors,
            data,
        }
    }

    /// An app that also runs the reactions (matching, approval flow,
    /// surveys, timers, notifications) and the timer and delivery workers
    /// on `clock`, with the settings in `vars` (e.g. `CHRONICLE_SMTP_URL`,
    /// `CHRONICLE_WEBHOOK_SECRET`).
    pub async fn spawn_reactive(
        clock: chronicle_projections::clock::VirtualClock,
        vars: &[(&str, &str)],
    ) -> Self {
        let db = TestDb::new().await;
        let data = tempfile::tempdir().unwrap();
        let mut map: HashMap<String, String> = HashMap::from([
            ("CHRONICLE_LISTEN".into(), "127.0.0.1:0".into()),
            ("CHRONICLE_JWT_SECRET".into(), SECRET.into()),
            ("CHRONICLE_DELIVERY_BACKOFF_SECS".into(), "1".into()),
            (
                "CHRONICLE_DATA_DIR".into(),
                data.path().display().to_string(),
            ),
        ]);
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_lookup(|name| map.get(name).cloned()).unwrap();
        let app = Application::build(&config, db.pool.clone()).await.unwrap();
        let addr = app.local_addr().unwrap();
        tokio::spawn(app.run_until(std::future::pending()));
        let clock: std::sync::Arc<dyn chronicle_projections::clock::Clock> =
            std::sync::Arc::new(clock);
        let store = std::sync::Arc::new(chronicle_store::postgres::PgEventStore::new(
            db.pool.clone(),
        ));
        let mut workers = Workers::from_config(&config).await.unwrap();
        workers.clock = clock.clone();
        let projectors = Projectors::start_with(
            &db.pool,
            every_projection(
                store,
                clock,
                chronicle_api::auth::resolve_audit_key(&config).unwrap(),
            ),
            chronicle_projections::runtime::Options {
                poll_interval: std::time::Duration::from_millis(200),
                ..Default::default()
            },
            Some(workers),
        );
        Self {
            addr,
            client: reqwest::Client::new(),
            _db: db,
            _projectors: projectors,
            data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /api/v1/me` with `token` (if any).
    pub async fn me(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url("/api/v1/me"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `claims` with HS256 and `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A valid local token.
pub fn token(tenant: &str, user: &str, roles: &[&str]) -> String {
    hs256(
        SECRET,
        &serde_json::json!({ "sub": user, "tenant": tenant, "roles": roles, "exp": now() + 600 }),
    )
}

/// Asserts an error answer: status, the documented body shape and code.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["details"].is_object(), "{body}");
    body
}

/// `POST path` with `token` and a JSON body.
pub async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `GET path` with `token`.
pub async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
