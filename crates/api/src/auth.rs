//! Bearer JWT authentication and roles.
//!
//! Two kinds of token are accepted:
//! - **HS256**, signed with the local secret (`CHRONICLE_JWT_SECRET`, or one
//!   generated once into `<data dir>/jwt-secret`); `chronicle token` mints
//!   them. Claims: `sub`, `tenant`, `roles`, `exp`.
//! - **RS256 / ES256** from an OIDC provider (`CHRONICLE_OIDC_*`), verified
//!   against its JWKS (fetched, cached, refetched on an unknown `kid` at most
//!   every [`JWKS_MIN_REFETCH`]). Issuer and audience must match; the tenant
//!   and roles claim names are configurable.
//!
//! [`Principal`] is the extractor handlers take; it also applies the
//! per-user rate limit.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chronicle_store::TenantId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::config::{Config, OidcConfig, Secret};
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// A cached JWKS is refetched after this long.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWKS at most this often.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// The file under the data directory holding the generated HS256 secret.
pub const SECRET_FILE: &str = "jwt-secret";

/// What a user may do. Role names are lowercase (`approver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Customer,
    Expert,
    Approver,
    Sales,
    Manager,
    Auditor,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Customer,
        Role::Expert,
        Role::Approver,
        Role::Sales,
        Role::Manager,
        Role::Auditor,
        Role::Analyst,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Expert => "expert",
            Role::Approver => "approver",
            Role::Sales => "sales",
            Role::Manager => "manager",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; known roles: customer, expert, approver, sales, manager, auditor, analyst, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Parses a lowercase role name; identity providers that capitalise
    /// (`Approver`) are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == lower)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub user: String,
    pub tenant: TenantId,
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Whether the caller holds `role` (admins hold every role).
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }

    /// Ok when the caller holds one of `roles` or is an admin; otherwise 403
    /// naming the roles that would do.
    /// Refuses callers whose only role is `auditor`: auditors read
    /// history, past states, the event feed, exports and the seal's
    /// verification, not the read models.
    pub fn refuse_auditors_only(&self) -> Result<(), ApiError> {
        if !self.roles.is_empty() && self.roles.iter().all(|r| *r == Role::Auditor) {
            return Err(ApiError::Forbidden {
                code: "auth.forbidden",
                message: "auditors read history (/{id}/history), past states (?as_of=, \
                          ?at_version=), the event feed, exports and verification, not the \
                          read models"
                    .into(),
            });
        }
        Ok(())
    }

    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) || roles.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden {
            code: "auth.forbidden",
            message: if needed.is_empty() {
                "this needs the admin role".to_owned()
            } else {
                format!("this needs one of the roles: {}", needed.join(", "))
            },
        })
    }
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
    Arc<RateLimiter>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Extracted once per request, so the rate limit counts it once.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts)?;
        let auth = Arc::<Authenticator>::from_ref(state);
        let principal = auth.authenticate(token).await?;
        let span = tracing::Span::current();
        span.record("tenant", principal.tenant.as_str());
        span.record("user", principal.user.as_str());
        Arc::<RateLimiter>::from_ref(state).check(&principal.tenant, &principal.user)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized {
        code: "auth.missing_token",
        message: "this needs an `Authorization: Bearer <token>` header".into(),
    };
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| invalid("the token is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(missing()),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        code: "auth.invalid_token",
        message: message.into(),
    }
}

/// Verifies tokens and turns their claims into a [`Principal`].
pub struct Authenticator {
    local_key: DecodingKey,
    local_validation: Validation,
    oidc: Option<Oidc>,
}

impl Authenticator {
    /// `secret` verifies HS256 tokens; `oidc`, when set, RS256/ES256 ones,
    /// with keys fetched through `http`.
    pub fn new(secret: &JwtSecret, oidc: Option<OidcConfig>, http: reqwest::Client) -> Self {
        let mut local_validation = Validation::new(Algorithm::HS256);
        local_validation.leeway = LEEWAY_SECS;
        local_validation.validate_nbf = true;
        local_validation.validate_aud = false;
        local_validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            local_key: DecodingKey::from_secret(secret.as_bytes()),
            local_validation,
            oidc: oidc.map(|config| Oidc::new(config, http)),
        }
    }

    /// Verifies `token` and reads its caller.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is malformed"))?;
        match header.alg {
            Algorithm::HS256 => {
                let claims = decode(token, &self.local_key, &self.local_validation)?;
                principal(&claims, "tenant", "roles")
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let Some(oidc) = &self.oidc else {
                    return Err(invalid(format!(
                        "{:?} tokens are not accepted: no OIDC provider is configured",
                        header.alg
                    )));
                };
                let claims = oidc
                    .verify(token, header.alg, header.kid.as_deref())
                    .await?;
                principal(&claims, &oidc.config.tenant_claim, &oidc.config.roles_claim)
            }
            other => Err(invalid(format!(
                "{other:?} tokens are not accepted (HS256, RS256 or ES256 are)"
            ))),
        }
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Map<String, Value>, ApiError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => ApiError::Unauthorized {
                code: "auth.expired",
                message: "the token has expired".into(),
            },
            ErrorKind::ImmatureSignature => invalid("the token is not valid yet (nbf)"),
            ErrorKind::InvalidSignature => invalid("the token's signature does not verify"),
            ErrorKind::InvalidAudience => invalid("the token is not meant for this service (aud)"),
            ErrorKind::InvalidIssuer => invalid("the token's issuer is not accepted (iss)"),
            ErrorKind::MissingRequiredClaim(claim) => {
                invalid(format!("the token lacks the `{claim}` claim"))
            }
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                invalid("the token's algorithm does not match its key")
            }
            _ => {
                tracing::debug!(error = %e, "token rejected");
                invalid("the token is malformed")
            }
        })
}

fn principal(
    claims: &Map<String, Value>,
    tenant_claim: &str,
    roles_claim: &str,
) -> Result<Principal, ApiError> {
    let user = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
        _ => {
            return Err(invalid(
                "the token's `sub` claim must be a non-empty string",
            ))
        }
    };
    let tenant = match claims.get(tenant_claim) {
        Some(Value::String(s)) => TenantId::parse(s.as_str()).map_err(|_| {
            invalid(format!(
                "the token's `{tenant_claim}` claim is not a valid tenant id \
                 (1 to 63 lowercase letters, digits, - or _)"
            ))
        })?,
        _ => {
            return Err(invalid(format!(
                "the token lacks the `{tenant_claim}` claim"
            )))
        }
    };
    let names: Vec<&str> = match claims.get(roles_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split([' ', ',']).filter(|s| !s.is_empty()).collect(),
        Some(_) => {
            return Err(invalid(format!(
                "the token's `{roles_claim}` claim must be an array of role names"
            )))
        }
    };
    let roles = names
        .into_iter()
        .filter_map(|name| match name.parse::<Role>() {
            Ok(role) => Some(role),
            Err(_) => {
                tracing::debug!(role = name, "ignoring an unknown role in a token");
                None
            }
        })
        .collect();
    Ok(Principal {
        user,
        tenant,
        roles,
    })
}

/// The OIDC provider: its settings and cached signing keys.
struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    min_refetch: Duration,
    cache: tokio::sync::RwLock<KeyCache>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<CachedKey>,
    fetched_at: Option<Instant>,
}

#[derive(Clone)]
struct CachedKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl KeyCache {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        self.keys
            .iter()
            .find(|k| {
                kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
                    && k.alg.is_none_or(|a| a == alg)
            })
            .map(|k| k.key.clone())
    }

    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < JWKS_MAX_AGE)
    }
}

impl Oidc {
    fn new(config: OidcConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            min_refetch: JWKS_MIN_REFETCH,
            cache: Default::default(),
            refresh: Default::default(),
        }
    }

    async fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Map<String, Value>, ApiError> {
        let key = self.key(kid, alg).await?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        decode(token, &key, &validation)
    }

    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, ApiError> {
        {
            let cache = self.cache.read().await;
            if cache.fresh() {
                if let Some(key) = cache.find(kid, alg) {
                    return Ok(key);
                }
            }
        }
        let _refreshing = self.refresh.lock().await;
        let stale = {
            let cache = self.cache.read().await;
            let recently = cache
                .fetched_at
                .is_some_and(|t| t.elapsed() < self.min_refetch);
            match cache.find(kid, alg) {
                Some(key) if cache.fresh() => return Ok(key),
                None if recently => return Err(unknown_key(kid)),
                found => found,
            }
        };
        match self.fetch().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                *cache = KeyCache {
                    keys,
                    fetched_at: Some(Instant::now()),
                };
                cache.find(kid, alg).ok_or_else(|| unknown_key(kid))
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), url = %self.config.jwks_url, "cannot fetch the OIDC JWKS");
                stale.ok_or_else(|| ApiError::Unavailable {
                    message:
                        "the identity provider's signing keys cannot be fetched; try again later"
                            .into(),
                })
            }
        }
    }

    #[tracing::instrument(skip(self), fields(url = %self.config.jwks_url))]
    async fn fetch(&self) -> Result<Vec<CachedKey>, JwksError> {
        let set: JwkSet = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let keys: Vec<CachedKey> = set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk)
                    .inspect_err(
                        |e| tracing::debug!(error = %e, kid = ?jwk.common.key_id, "skipping a JWK"),
                    )
                    .ok()?;
                let alg = match jwk.common.key_algorithm {
                    None => None,
                    Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
                };
                Some(CachedKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                })
            })
            .collect();
        tracing::info!(keys = keys.len(), "fetched the OIDC JWKS");
        Ok(keys)
    }
}

fn unknown_key(kid: Option<&str>) -> ApiError {
    invalid(match kid {
        Some(kid) => {
            format!("the token's signing key {kid:?} is not one of the identity provider's")
        }
        None => "no signing key of the identity provider fits the token".to_owned(),
    })
}

#[derive(Debug, thiserror::Error)]
enum JwksError {
    #[error("fetching the JWKS")]
    Http(#[from] reqwest::Error),
}

/// The HS256 key.
#[derive(Clone)]
pub struct JwtSecret(Secret);

impl JwtSecret {
    pub fn new(secret: Secret) -> Self {
        Self(secret)
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }
}

/// A generated secret (the JWT or the webhook signing key) cannot be read
/// or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("creating the data directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the generated secret to {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the secret from {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret in {path} is too short (at least {min} bytes); delete it to have a new one generated")]
    TooShort { path: PathBuf, min: usize },
}

/// `CHRONICLE_JWT_SECRET`, or the secret in `<data dir>/jwt-secret`,
/// generating it (32 random bytes, hex, mode 0600) on first use. Blocking.
pub fn resolve_secret(config: &Config) -> Result<JwtSecret, SecretError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(JwtSecret(secret.clone()));
    }
    load_or_create_secret(&config.data_dir, SECRET_FILE).map(JwtSecret)
}

/// The webhook signing key: `CHRONICLE_WEBHOOK_SECRET`, or the secret in
/// `<data dir>/webhook-secret`, generated like the JWT secret. Blocking.
pub fn resolve_webhook_secret(config: &Config) -> Result<Secret, SecretError> {
    if let Some(secret) = &config.webhook_secret {
        return Ok(secret.clone());
    }
    load_or_create_secret(&config.data_dir, WEBHOOK_SECRET_FILE)
}

/// The file in the data directory holding the generated webhook key.
pub const WEBHOOK_SECRET_FILE: &str = "webhook-secret";

/// The file in the data directory holding the audit signing key's seed.
pub const AUDIT_KEY_FILE: &str = "audit-signing-key";

/// The Ed25519 key that signs seal checkpoints and exports: the seed (64
/// hex characters) in `CHRONICLE_AUDIT_SIGNING_KEY`, or in
/// `<data dir>/audit-signing-key`, generated like the JWT secret on first
/// use. Every process running the seal or exporting must share it.
/// Blocking.
pub fn resolve_audit_key(
    config: &Config,
) -> Result<chronicle_projections::audit::AuditKey, SecretError> {
    let path = config.data_dir.join(AUDIT_KEY_FILE);
    let secret = match &config.audit_signing_key {
        Some(secret) => secret.clone(),
        None => load_or_create_secret(&config.data_dir, AUDIT_KEY_FILE)?,
    };
    let seed: [u8; 32] = chronicle_projections::audit::unhex(secret.expose())
        .and_then(|b| b.try_into().ok())
        .ok_or(SecretError::TooShort { path, min: 32 })?;
    Ok(chronicle_projections::audit::AuditKey::from_seed(seed))
}

/// The secret in `<data_dir>/<file>`, generating it (32 random bytes, hex,
/// mode 0600) on first use.
fn load_or_create_secret(data_dir: &Path, file: &str) -> Result<Secret, SecretError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let path = data_dir.join(file);
    std::fs::create_dir_all(data_dir).map_err(|source| SecretError::CreateDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let generated: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let written = file
                .write_all(generated.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all());
            if let Err(source) = written {
                let _ = std::fs::remove_file(&path);
                return Err(SecretError::Write { path, source });
            }
            tracing::info!(path = %path.display(), "generated a secret");
            return Ok(Secret::new(generated));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(SecretError::Write { path, source }),
    }
    let read = |source| SecretError::Read {
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(read)?;
    let mode = std::fs::metadata(&path).map_err(read)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the secret file is readable by others; chmod 600 it");
    }
    let secret = text.trim();
    if secret.len() < crate::config::MIN_JWT_SECRET_BYTES {
        return Err(SecretError::TooShort {
            path,
            min: crate::config::MIN_JWT_SECRET_BYTES,
        });
    }
    Ok(Secret::new(secret))
}

/// Mints an HS256 token for local use (`chronicle token`).
pub fn mint_token(
    secret: &JwtSecret,
    tenant: &TenantId,
    user: &str,
    roles: &[Role],
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let claims = serde_json::json!({
        "sub": user,
        "tenant": tenant,
        "roles": roles,
        "iat": now,
        "exp": now + ttl.as_secs() as i64,
        "iss": "chronicle",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role]) -> Principal {
        Principal {
            user: "u".into(),
            tenant: TenantId::parse("acme").unwrap(),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn require_any_names_the_roles_needed_and_admins_pass() {
        let expert = principal(&[Role::Expert]);
        assert!(expert.require_any(&[Role::Expert, Role::Manager]).is_ok());
        let err = expert
            .require_any(&[Role::Approver, Role::Manager])
            .unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
        assert_eq!(err.code(), "auth.forbidden");
        assert!(err.to_string().contains("approver, manager"), "{err}");
        assert!(principal(&[Role::Admin])
            .require_any(&[Role::Auditor])
            .is_ok());
        assert!(principal(&[]).require_any(&[Role::Customer]).is_err());
    }

    #[test]
    fn roles_parse_from_their_names_and_unknown_ones_are_ignored() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert_eq!("Approver".parse::<Role>().unwrap(), Role::Approver);
        assert!("root".parse::<Role>().is_err());
        let claims = serde_json::json!({"sub": "u", "tenant": "acme", "roles": ["sales", "root"]});
        let p = super::principal(claims.as_object().unwrap(), "tenant", "roles").unwrap();
        assert_eq!(p.roles, BTreeSet::from([Role::Sales]));
    }

    /// A JWKS endpoint whose key set the test can change.
    async fn jwks_server(keys: Arc<std::sync::Mutex<Value>>) -> String {
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let keys = keys.lock().unwrap().clone();
                async move { axum::Json(keys) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/jwks.json")
    }

    fn fixture_key(name: &str) -> EncodingKey {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        EncodingKey::from_rsa_der(&std::fs::read(path).unwrap())
    }

    async fn verify(oidc: &Oidc, token: String) -> Result<Map<String, Value>, ApiError> {
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
        oidc.verify(&token, Algorithm::RS256, kid.as_deref()).await
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_the_jwks_at_most_every_min_refetch() {
        let old = fixture_key("test-only-rs256-private-key.pkcs1.der");
        let new = fixture_key("test-only-other-rs256-private-key.pkcs1.der");
        let jwk = |key: &EncodingKey, kid: &str| {
            let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
            jwk.common.key_id = Some(kid.into());
            jwk
        };
        let set = |keys| serde_json::to_value(JwkSet { keys }).unwrap();
        let served = Arc::new(std::sync::Mutex::new(set(vec![jwk(&old, "old")])));
        let config = OidcConfig {
            issuer: "https://idp".into(),
            audience: "chronicle".into(),
            jwks_url: jwks_server(served.clone()).await,
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
        };
        let mut oidc = Oidc::new(config, reqwest::Client::new());
        let claims = serde_json::json!({
            "iss": "https://idp", "aud": "chronicle", "sub": "u", "tenant": "acme",
            "exp": chrono::Utc::now().timestamp() + 600,
        });
        let sign = |key: &EncodingKey, kid: &str| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims, key).unwrap()
        };
        verify(&oidc, sign(&old, "old")).await.unwrap();

        // The provider rotates its key.
        *served.lock().unwrap() = set(vec![jwk(&old, "old"), jwk(&new, "new")]);
        let err = verify(&oidc, sign(&new, "new")).await.unwrap_err();
        assert_eq!(
            err.code(),
            "auth.invalid_token",
            "no refetch within the minimum interval"
        );
        oidc.min_refetch = Duration::ZERO;
        verify(&oidc, sign(&new, "new")).await.unwrap();
        verify(&oidc, sign(&old, "old")).await.unwrap();
    }

    #[test]
    fn the_generated_secret_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create_secret(&data, SECRET_FILE).unwrap();
        let mode = std::fs::metadata(data.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.expose().len(), 64);
        let second = load_or_create_secret(&data, SECRET_FILE).unwrap();
        assert_eq!(first.expose(), second.expose());
    }

    #[test]
    fn the_audit_key_comes_from_the_environment_when_given() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let seed = "0f".repeat(32);
        let config = Config::from_lookup(|name| match name {
            "CHRONICLE_DATA_DIR" => Some(data.display().to_string()),
            "CHRONICLE_AUDIT_SIGNING_KEY" => Some(seed.clone()),
            _ => None,
        })
        .unwrap();
        let key = resolve_audit_key(&config).unwrap();
        let expected = chronicle_projections::audit::AuditKey::from_seed([0x0f; 32]);
        assert_eq!(key.public().to_hex(), expected.public().to_hex());
        assert!(!data.join(AUDIT_KEY_FILE).exists(), "nothing generated");
    }
}
