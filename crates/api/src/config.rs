//! Configuration from the environment (see README "Configuration").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The shortest `CHRONICLE_JWT_SECRET` accepted, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Settings shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: use this server; unset = the embedded database.
    pub database_url: Option<String>,
    /// `CHRONICLE_DATA_DIR`: embedded database, search index, secrets.
    pub data_dir: PathBuf,
    /// `CHRONICLE_LISTEN`: the HTTP address.
    pub listen: SocketAddr,
    /// `CHRONICLE_METRICS_LISTEN`: where `chronicle project` serves
    /// `/metrics`, `/healthz` and `/readyz`; unset = it serves nothing.
    pub metrics_listen: Option<SocketAddr>,
    /// `CHRONICLE_DB_POOL`: connections in the pool.
    pub pool_size: u32,
    /// `CHRONICLE_JWT_SECRET`: the HS256 key; unset = generated once into
    /// `<data dir>/jwt-secret`.
    pub jwt_secret: Option<Secret>,
    /// `CHRONICLE_OIDC_*`: an OIDC provider whose RS256/ES256 tokens are
    /// accepted; `None` when `CHRONICLE_OIDC_ISSUER` is unset.
    pub oidc: Option<OidcConfig>,
    /// `CHRONICLE_RATE_LIMIT`: requests per hour per user (tenant + sub).
    pub rate_limit_per_hour: u32,
    /// `CHRONICLE_MAX_BODY_BYTES`: the largest request body accepted.
    pub max_body_bytes: usize,
    /// `CHRONICLE_REQUEST_TIMEOUT_SECS`: how long a request may take.
    pub request_timeout: Duration,
    /// `CHRONICLE_SMTP_URL`: where notification emails go
    /// (`smtp://host:port`, `smtps://user:password@host`, ...); unset =
    /// email deliveries fail and end as dead letters.
    pub smtp_url: Option<Secret>,
    /// `CHRONICLE_SMTP_FROM`: the sender of notification emails.
    pub smtp_from: String,
    /// `CHRONICLE_WEBHOOK_SECRET`: the HMAC key webhooks are signed with;
    /// unset = generated once into `<data dir>/webhook-secret`.
    pub webhook_secret: Option<Secret>,
    /// `CHRONICLE_DELIVERY_MAX_ATTEMPTS`: attempts before a delivery is dead.
    pub delivery_max_attempts: u32,
    /// `CHRONICLE_DELIVERY_BACKOFF_SECS`: the pause after a delivery's
    /// first failure, doubled after each further one (at most an hour).
    pub delivery_backoff: Duration,
    /// `CHRONICLE_AUDIT_SIGNING_KEY`: the audit Ed25519 seed (64 hex
    /// characters); unset = generated once into
    /// `<data dir>/audit-signing-key`.
    pub audit_signing_key: Option<Secret>,
}

/// Where RS256/ES256 tokens come from and how their claims are named.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `CHRONICLE_OIDC_ISSUER`: the exact `iss` of accepted tokens.
    pub issuer: String,
    /// `CHRONICLE_OIDC_AUDIENCE`: the `aud` accepted tokens must carry.
    pub audience: String,
    /// `CHRONICLE_OIDC_JWKS_URL`: the provider's signing keys.
    pub jwks_url: String,
    /// `CHRONICLE_OIDC_TENANT_CLAIM` (default `tenant`; Microsoft Entra ID: `tid`).
    pub tenant_claim: String,
    /// `CHRONICLE_OIDC_ROLES_CLAIM` (default `roles`).
    pub roles_claim: String,
}

/// A secret string whose `Debug` output does not show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let listen_raw = var("CHRONICLE_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_raw
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError {
                var: "CHRONICLE_LISTEN",
                value: listen_raw.clone(),
                reason: format!("{e} (expected host:port, e.g. 127.0.0.1:8080)"),
            })?;
        let metrics_listen = match var("CHRONICLE_METRICS_LISTEN") {
            None => None,
            Some(raw) => Some(
                raw.parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError {
                        var: "CHRONICLE_METRICS_LISTEN",
                        value: raw.clone(),
                        reason: format!("{e} (expected host:port, e.g. 0.0.0.0:9464)"),
                    })?,
            ),
        };
        let pool_size = number(
            &var,
            "CHRONICLE_DB_POOL",
            32,
            1..=1000,
            "expected a number of connections from 1 to 1000",
        )?;
        let jwt_secret = match var("CHRONICLE_JWT_SECRET") {
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError {
                    var: "CHRONICLE_JWT_SECRET",
                    value: "***".into(),
                    reason: format!(
                        "too short: {} bytes, at least {MIN_JWT_SECRET_BYTES} needed \
                         (or unset it to have one generated)",
                        s.len()
                    ),
                })
            }
            other => other.map(Secret),
        };
        let rate_limit_per_hour = number(
            &var,
            "CHRONICLE_RATE_LIMIT",
            1000,
            1..=100_000_000,
            "expected requests per hour per user, from 1 to 100000000",
        )?;
        let max_body_bytes = number(
            &var,
            "CHRONICLE_MAX_BODY_BYTES",
            1024 * 1024,
            1024..=(1 << 30),
            "expected a size in bytes from 1024 to 1073741824",
        )? as usize;
        let timeout_secs = number(
            &var,
            "CHRONICLE_REQUEST_TIMEOUT_SECS",
            30,
            1..=3600,
            "expected seconds from 1 to 3600",
        )?;
        let webhook_secret = match var("CHRONICLE_WEBHOOK_SECRET") {
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError {
                    var: "CHRONICLE_WEBHOOK_SECRET",
                    value: "***".into(),
                    reason: format!(
                        "too short: {} bytes, at least {MIN_JWT_SECRET_BYTES} needed \
                         (or unset it to have one generated)",
                        s.len()
                    ),
                })
            }
            other => other.map(Secret),
        };
        let audit_signing_key = match var("CHRONICLE_AUDIT_SIGNING_KEY") {
            Some(s) if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Err(ConfigError {
                    var: "CHRONICLE_AUDIT_SIGNING_KEY",
                    value: "***".into(),
                    reason: format!(
                        "expected an Ed25519 seed as 64 hex characters, got {} characters \
                         (or unset it to have one generated)",
                        s.len()
                    ),
                });
            }
            other => other.map(Secret),
        };
        let smtp_url = var("CHRONICLE_SMTP_URL");
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError {
                    var: "CHRONICLE_SMTP_URL",
                    value: "***".into(),
                    reason: "expected smtp://host:port or smtps://user:password@host".into(),
                });
            }
        }
        let delivery_max_attempts = number(
            &var,
            "CHRONICLE_DELIVERY_MAX_ATTEMPTS",
            8,
            1..=100,
            "expected a number of attempts from 1 to 100",
        )?;
        let delivery_backoff = number(
            &var,
            "CHRONICLE_DELIVERY_BACKOFF_SECS",
            5,
            1..=3600,
            "expected seconds from 1 to 3600",
        )?;
        Ok(Self {
            smtp_url: smtp_url.map(Secret),
            smtp_from: var("CHRONICLE_SMTP_FROM")
                .unwrap_or_else(|| "Chronicle <chronicle@localhost>".into()),
            webhook_secret,
            delivery_max_attempts: delivery_max_attempts as u32,
            delivery_backoff: Duration::from_secs(delivery_backoff),
            database_url: var("DATABASE_URL"),
            data_dir: var("CHRONICLE_DATA_DIR")
                .map_or_else(|| PathBuf::from(".chronicle"), PathBuf::from),
            listen,
            metrics_listen,
            audit_signing_key,
            pool_size: pool_size as u32,
            jwt_secret,
            oidc: oidc(&var)?,
            rate_limit_per_hour: rate_limit_per_hour as u32,
            max_body_bytes,
            request_timeout: Duration::from_secs(timeout_secs),
        })
    }
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    expected: &str,
) -> Result<u64, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ConfigError {
            var: name,
            value: raw.clone(),
            reason: expected.into(),
        })
}

fn oidc(var: &impl Fn(&str) -> Option<String>) -> Result<Option<OidcConfig>, ConfigError> {
    let issuer = var("CHRONICLE_OIDC_ISSUER");
    let audience = var("CHRONICLE_OIDC_AUDIENCE");
    let jwks_url = var("CHRONICLE_OIDC_JWKS_URL");
    let (issuer, audience, jwks_url) = match (issuer, audience, jwks_url) {
        (None, None, None) => return Ok(None),
        (Some(i), Some(a), Some(j)) => (i, a, j),
        (i, a, j) => {
            let (var, value) = [
                ("CHRONICLE_OIDC_ISSUER", i),
                ("CHRONICLE_OIDC_AUDIENCE", a),
                ("CHRONICLE_OIDC_JWKS_URL", j),
            ]
            .into_iter()
            .find(|(_, v)| v.is_none())
            .expect("one is missing");
            return Err(ConfigError {
                var,
                value: value.unwrap_or_default(),
                reason: "CHRONICLE_OIDC_ISSUER, CHRONICLE_OIDC_AUDIENCE and \
                         CHRONICLE_OIDC_JWKS_URL are needed together"
                    .into(),
            });
        }
    };
    let parsed = reqwest::Url::parse(&jwks_url).map_err(|e| ConfigError {
        var: "CHRONICLE_OIDC_JWKS_URL",
        value: jwks_url.clone(),
        reason: format!("{e} (expected an https:// URL)"),
    })?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(ConfigError {
            var: "CHRONICLE_OIDC_JWKS_URL",
            value: jwks_url,
            reason: "expected an https:// (or http://) URL".into(),
        });
    }
    let claim = |name: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = var(name).unwrap_or_else(|| default.into());
        if value.len() <= 100 && value.chars().all(|c| c.is_ascii_graphic()) {
            Ok(value)
        } else {
            Err(ConfigError {
                var: name,
                value,
                reason: "expected a claim name (visible ASCII, at most 100 characters)".into(),
            })
        }
    };
    Ok(Some(OidcConfig {
        issuer,
        audience,
        jwks_url,
        tenant_claim: claim("CHRONICLE_OIDC_TENANT_CLAIM", "tenant")?,
        roles_claim: claim("CHRONICLE_OIDC_ROLES_CLAIM", "roles")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.rate_limit_per_hour, 1000);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert!(c.oidc.is_none() && c.jwt_secret.is_none());
        assert!(c.metrics_listen.is_none() && c.audit_signing_key.is_none());
    }

    #[test]
    fn the_metrics_listener_and_the_audit_key_are_checked() {
        let c = config(&[
            ("CHRONICLE_METRICS_LISTEN", "0.0.0.0:9464"),
            ("CHRONICLE_AUDIT_SIGNING_KEY", &"ab".repeat(32)),
        ])
        .unwrap();
        assert_eq!(c.metrics_listen, Some("0.0.0.0:9464".parse().unwrap()));
        assert!(!format!("{c:?}").contains("abab"));
        let e = config(&[("CHRONICLE_METRICS_LISTEN", "9464")]).unwrap_err();
        assert_eq!(e.var, "CHRONICLE_METRICS_LISTEN");
        for bad in ["ab".repeat(31), "zz".repeat(32)] {
            let e = config(&[("CHRONICLE_AUDIT_SIGNING_KEY", &bad)]).unwrap_err();
            assert_eq!(e.var, "CHRONICLE_AUDIT_SIGNING_KEY");
            assert!(!e.to_string().contains(&bad));
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let e = config(&[("CHRONICLE_RATE_LIMIT", "lots")]).unwrap_err();
        assert_eq!(e.var, "CHRONICLE_RATE_LIMIT");
        let e = config(&[("CHRONICLE_JWT_SECRET", "short")]).unwrap_err();
        assert!(e.to_string().contains("too short") && !e.to_string().contains("short\""));
        let e = config(&[("CHRONICLE_OIDC_ISSUER", "https://idp")]).unwrap_err();
        assert_eq!(e.var, "CHRONICLE_OIDC_AUDIENCE");
        let e = config(&[
            ("CHRONICLE_OIDC_ISSUER", "https://idp"),
            ("CHRONICLE_OIDC_AUDIENCE", "chronicle"),
            ("CHRONICLE_OIDC_JWKS_URL", "ftp://idp/keys"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "CHRONICLE_OIDC_JWKS_URL");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = config(&[("CHRONICLE_JWT_SECRET", &"s".repeat(40))]).unwrap();
        assert!(!format!("{c:?}").contains("sssss"));
    }
}
