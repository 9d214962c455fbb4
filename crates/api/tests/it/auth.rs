//! Bearer tokens: local HS256, OIDC RS256/ES256 against a JWKS this test
//! serves, rate limits, and `chronicle token`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{assert_error, hs256, now, token, TestApp, SECRET};

#[tokio::test]
async fn a_valid_local_token_shows_the_caller() {
    let app = TestApp::spawn().await;
    let response = app
        .me(Some(&token(
            "acme",
            "ann",
            &["sales", "approver", "wizard"],
        )))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"user": "ann", "tenant": "acme", "roles": ["approver", "sales"]}),
        "unknown roles are dropped"
    );
}

#[tokio::test]
async fn a_token_speaks_for_its_own_tenant_only() {
    let app = TestApp::spawn().await;
    for tenant in ["acme", "globex"] {
        let body: Value = app
            .me(Some(&token(tenant, "ann", &["customer"])))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["tenant"], tenant);
    }
    let bad_tenant = token("Not A Tenant", "ann", &["customer"]);
    assert_error(app.me(Some(&bad_tenant)).await, 401, "auth.invalid_token").await;
}

#[tokio::test]
async fn missing_malformed_expired_and_badly_signed_tokens_are_401() {
    let app = TestApp::spawn().await;
    assert_error(app.me(None).await, 401, "auth.missing_token").await;
    let basic = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "auth.missing_token").await;
    assert_error(app.me(Some("not-a-jwt")).await, 401, "auth.invalid_token").await;

    let expired = hs256(
        SECRET,
        &json!({"sub": "ann", "tenant": "acme", "roles": [], "exp": now() - 3600}),
    );
    assert_error(app.me(Some(&expired)).await, 401, "auth.expired").await;

    let forged = hs256(
        "another-secret-another-secret-another-secret",
        &json!({"sub": "ann", "tenant": "acme", "roles": ["admin"], "exp": now() + 600}),
    );
    let body = assert_error(app.me(Some(&forged)).await, 401, "auth.invalid_token").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signature"));

    let no_exp = hs256(SECRET, &json!({"sub": "ann", "tenant": "acme"}));
    assert_error(app.me(Some(&no_exp)).await, 401, "auth.invalid_token").await;

    let not_yet = hs256(
        SECRET,
        &json!({"sub": "ann", "tenant": "acme", "exp": now() + 7200, "nbf": now() + 3600}),
    );
    assert_error(app.me(Some(&not_yet)).await, 401, "auth.invalid_token").await;

    // RS256 without an OIDC provider configured.
    let idp = Idp::new();
    let rs = idp.sign_rs256(&idp.claims("acme"));
    assert_error(app.me(Some(&rs)).await, 401, "auth.invalid_token").await;
}

#[tokio::test]
async fn rate_limits_apply_per_user_with_retry_after() {
    let app = TestApp::spawn_with(&[("CHRONICLE_RATE_LIMIT", "3")]).await;
    let ann = token("acme", "ann", &["customer"]);
    for _ in 0..3 {
        assert_eq!(app.me(Some(&ann)).await.status(), 200);
    }
    let limited = app.me(Some(&ann)).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1200).contains(&retry_after), "{retry_after}");
    assert_error(limited, 429, "rate_limited").await;
    let bob = token("acme", "bob", &["customer"]);
    assert_eq!(app.me(Some(&bob)).await.status(), 200, "another user");
    let ann_elsewhere = token("globex", "ann", &["customer"]);
    assert_eq!(
        app.me(Some(&ann_elsewhere)).await.status(),
        200,
        "the same sub in another tenant"
    );
}

/// A test identity provider: RS256 and ES256 keys (test-only fixtures)
/// and a JWKS endpoint that counts its fetches.
struct Idp {
    rsa: EncodingKey,
    ec: EncodingKey,
    other_rsa: EncodingKey,
}

const ISSUER: &str = "https://idp.example.test/tenant-1/v2.0";
const AUDIENCE: &str = "api://chronicle";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Idp {
    fn new() -> Self {
        Self {
            rsa: EncodingKey::from_rsa_der(&fixture("test-only-rs256-private-key.pkcs1.der")),
            ec: EncodingKey::from_ec_der(&fixture("test-only-es256-private-key.pkcs8.der")),
            other_rsa: EncodingKey::from_rsa_der(&fixture(
                "test-only-other-rs256-private-key.pkcs1.der",
            )),
        }
    }

    fn jwks(&self) -> JwkSet {
        let mut rsa = Jwk::from_encoding_key(&self.rsa, Algorithm::RS256).unwrap();
        rsa.common.key_id = Some("rsa-1".into());
        let mut ec = Jwk::from_encoding_key(&self.ec, Algorithm::ES256).unwrap();
        ec.common.key_id = Some("ec-1".into());
        JwkSet {
            keys: vec![rsa, ec],
        }
    }

    /// Serves `/jwks.json` on 127.0.0.1:0; returns its address and fetch count.
    async fn serve(&self) -> (SocketAddr, Arc<AtomicUsize>) {
        let jwks = serde_json::to_value(self.jwks()).unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                counter.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (addr, fetches)
    }

    /// Claims the way Microsoft Entra ID names them (`tid`, `roles`).
    fn claims(&self, tenant: &str) -> Value {
        json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "oid-123", "tid": tenant,
            "roles": ["Approver", "Auditor"], "iat": now(), "nbf": now() - 10, "exp": now() + 600,
        })
    }

    fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn sign_rs256(&self, claims: &Value) -> String {
        Self::sign(Algorithm::RS256, "rsa-1", &self.rsa, claims)
    }

    fn sign_es256(&self, claims: &Value) -> String {
        Self::sign(Algorithm::ES256, "ec-1", &self.ec, claims)
    }
}

async fn oidc_app(jwks: SocketAddr) -> TestApp {
    let url = format!("http://{jwks}/jwks.json");
    TestApp::spawn_with(&[
        ("CHRONICLE_OIDC_ISSUER", ISSUER),
        ("CHRONICLE_OIDC_AUDIENCE", AUDIENCE),
        ("CHRONICLE_OIDC_JWKS_URL", &url),
        ("CHRONICLE_OIDC_TENANT_CLAIM", "tid"),
    ])
    .await
}

#[tokio::test]
async fn oidc_rs256_and_es256_tokens_verify_against_the_providers_jwks() {
    let idp = Idp::new();
    let (jwks, fetches) = idp.serve().await;
    let app = oidc_app(jwks).await;

    for token in [
        idp.sign_rs256(&idp.claims("acme")),
        idp.sign_es256(&idp.claims("acme")),
    ] {
        let response = app.me(Some(&token)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"user": "oid-123", "tenant": "acme", "roles": ["approver", "auditor"]})
        );
    }
    let globex: Value = app
        .me(Some(&idp.sign_es256(&idp.claims("globex"))))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(globex["tenant"], "globex");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the JWKS is cached");

    // Local HS256 tokens keep working next to OIDC.
    assert_eq!(app.me(Some(&token("acme", "ann", &[]))).await.status(), 200);
}

#[tokio::test]
async fn oidc_tokens_with_the_wrong_audience_issuer_key_or_age_are_401() {
    let idp = Idp::new();
    let (jwks, fetches) = idp.serve().await;
    let app = oidc_app(jwks).await;
    let with = |field: &str, value: Value| {
        let mut claims = idp.claims("acme");
        claims[field] = value;
        claims
    };

    let wrong_aud = idp.sign_rs256(&with("aud", json!("api://someone-else")));
    let body = assert_error(app.me(Some(&wrong_aud)).await, 401, "auth.invalid_token").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("aud"));

    let wrong_iss = idp.sign_es256(&with("iss", json!("https://evil.example.test/")));
    let body = assert_error(app.me(Some(&wrong_iss)).await, 401, "auth.invalid_token").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("iss"));

    let expired = idp.sign_rs256(&with("exp", json!(now() - 3600)));
    assert_error(app.me(Some(&expired)).await, 401, "auth.expired").await;

    // Claims to be the provider's key, signed by another.
    let forged = Idp::sign(
        Algorithm::RS256,
        "rsa-1",
        &idp.other_rsa,
        &idp.claims("acme"),
    );
    assert_error(app.me(Some(&forged)).await, 401, "auth.invalid_token").await;

    let unknown_kid = Idp::sign(Algorithm::RS256, "rsa-9", &idp.rsa, &idp.claims("acme"));
    assert_error(app.me(Some(&unknown_kid)).await, 401, "auth.invalid_token").await;

    // An ES256 header over the RSA key id: algorithm confusion is refused.
    let confused = Idp::sign(Algorithm::ES256, "rsa-1", &idp.ec, &idp.claims("acme"));
    assert_error(app.me(Some(&confused)).await, 401, "auth.invalid_token").await;

    let no_tenant = idp.sign_rs256(&with("tid", Value::Null));
    assert_error(app.me(Some(&no_tenant)).await, 401, "auth.invalid_token").await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "an unknown kid right after a fetch does not refetch"
    );
}

fn chronicle(data_dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args(args)
        .env_remove("CHRONICLE_JWT_SECRET")
        .env("CHRONICLE_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn chronicle_token_mints_tokens_the_api_accepts() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let args = [
        "token",
        "--tenant",
        "acme",
        "--user",
        "ann",
        "--roles",
        "sales,manager",
    ];
    let output = chronicle(&data_dir, &args);
    assert!(output.status.success(), "{output:?}");
    let minted = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let secret_file = data_dir.join("jwt-secret");
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the generated secret is private");
    let secret = std::fs::read_to_string(&secret_file).unwrap();

    // A second run reuses the secret.
    assert!(chronicle(&data_dir, &args).status.success());
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);

    // An app resolving its secret from the same data directory accepts it.
    let db = chronicle_testkit::TestDb::new().await;
    let vars = [
        ("CHRONICLE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "CHRONICLE_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
    ]
    .into();
    let app = TestApp::spawn_config(db, vars).await;
    let response = app.me(Some(&minted)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"user": "ann", "tenant": "acme", "roles": ["sales", "manager"]})
    );

    for (bad, needle) in [
        (["--tenant", "Acme Corp", "--roles", "sales"], "tenant"),
        (["--tenant", "acme", "--roles", "sales,wizard"], "wizard"),
    ] {
        let mut args = vec!["token", "--user", "ann"];
        args.extend(bad);
        let output = chronicle(&data_dir, &args);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}
