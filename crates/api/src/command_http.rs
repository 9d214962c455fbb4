//! From an HTTP request to a command and back: the JSON body, `If-Match`,
//! `Idempotency-Key`, the answer (`id`, `version`, `position`, `ETag`,
//! `Location`) and the mapping of command errors to HTTP.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chronicle_commands::{CommandError, Context};
use chronicle_domain::value::ValueError;
use chronicle_domain::{Aggregate, ErrorCode};
use chronicle_store::StreamId;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::observability::RequestId;
use crate::{idempotency, AppState};

/// Parses a JSON body; the content type must be JSON.
pub fn parse_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.to_ascii_lowercase().ends_with("+json")
        });
    if !json {
        return Err(ApiError::UnsupportedMediaType {
            message: "send the body as JSON with Content-Type: application/json".into(),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "invalid_body",
        message: format!("the JSON body does not match the expected shape: {e}"),
        details: Some(json!({ "line": e.line(), "column": e.column() })),
    })
}

/// `If-Match: "3"` (or `3`, or `W/"3"`): the stream version the client saw.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    if text == "*" {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_if_match",
            "If-Match must be the entity's version as an ETag, e.g. \"3\"",
        )
    })
}

/// Collects field errors while a request is turned into domain values, so
/// that one answer names every bad field.
#[derive(Default)]
pub struct Fields {
    errors: BTreeMap<String, String>,
}

impl Fields {
    /// Keeps a parsed value, or records why it was refused under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, ValueError>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.insert(field.to_owned(), e.reason);
                None
            }
        }
    }

    pub fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.insert(field.to_owned(), reason.into());
    }

    /// `Ok` when every field parsed; otherwise a 400 listing them.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.errors.keys().map(String::as_str).collect();
        Err(ApiError::BadRequest {
            code: "validation_failed",
            message: format!("invalid fields: {}", names.join(", ")),
            details: Some(json!({ "fields": self.errors })),
        })
    }
}

/// Who may run an action; the dispatcher checks it, the OpenAPI document
/// describes it.
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    /// Holders of any of these roles (admin passes every role check).
    Roles(&'static [Role]),
    /// Any authenticated caller; the domain decides who is eligible.
    Anyone,
    /// The expert whose user this is (the caller's user id, with the
    /// `expert` role), or a manager.
    ExpertThemselfOrManager,
}

impl Allowed {
    /// For people: who may run the action.
    pub fn describe(self) -> String {
        match self {
            Allowed::Roles(roles) if roles == [Role::Admin] => "admin only".to_owned(),
            Allowed::Roles(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                format!("{} (and admin)", names.join(", "))
            }
            Allowed::Anyone => {
                "any authenticated caller; the domain decides eligibility".to_owned()
            }
            Allowed::ExpertThemselfOrManager => {
                "the expert themself (the caller's user id, with the expert role), manager \
                 (and admin)"
                    .to_owned()
            }
        }
    }
}

impl Allowed {
    /// Whether `principal` may run the action on entity `id`.
    pub fn check(self, principal: &Principal, id: Uuid) -> Result<(), ApiError> {
        match self {
            Allowed::Roles(roles) => principal.require_any(roles),
            Allowed::Anyone => Ok(()),
            Allowed::ExpertThemselfOrManager => {
                let own = actor_id(principal) == id && principal.has(Role::Expert);
                if own || principal.has(Role::Manager) {
                    return Ok(());
                }
                Err(ApiError::Forbidden {
                    code: "auth.forbidden",
                    message: "experts change their own skills and availability; managers \
                              those of anyone"
                        .into(),
                })
            }
        }
    }
}

/// One action of a collection: `POST /api/v1/<collection>/{id}/<name>`.
/// Each module's table of these is what its dispatcher accepts and what
/// the OpenAPI document lists.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    /// The path after `{id}/`: `assign`, or `tasks/{task_id}/assign` for an
    /// action on an item of the entity.
    pub name: &'static str,
    /// What it does, for the OpenAPI document.
    pub summary: &'static str,
    pub allowed: Allowed,
    /// The body fields it reads (names of the module's action body).
    pub fields: &'static [&'static str],
    /// Those of `fields` it requires.
    pub required: &'static [&'static str],
}

/// The action of `table` named `name`, or 404 naming the valid ones.
pub fn find_action(
    table: &'static [Action],
    what: &str,
    name: &str,
) -> Result<&'static Action, ApiError> {
    table.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|a| a.name).collect();
        ApiError::NotFound {
            code: "not_found",
            message: format!(
                "a {what} has no action {name:?}; the actions are: {}",
                names.join(", ")
            ),
        }
    })
}

/// An action listed in a module's table that its dispatcher does not
/// handle: a bug, caught by the OpenAPI drift test.
pub fn unhandled_action(what: &str, name: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "the {what} action {name:?} is listed but not handled"
    ))
}

/// Parses a path id.
pub fn entity_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("entity"))
}

/// A user's id in the domain: their token's `sub` when it is a UUID, else
/// a UUIDv5 of tenant and `sub` (stable for the same user).
pub fn actor_id(principal: &Principal) -> Uuid {
    Uuid::parse_str(&principal.user).unwrap_or_else(|_| {
        Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("chronicle:{}:{}", principal.tenant, principal.user).as_bytes(),
        )
    })
}

/// Maps a command's failure to HTTP.
pub fn command_error<E: ErrorCode + std::error::Error>(
    what: &str,
    error: CommandError<E>,
) -> ApiError {
    match error {
        CommandError::NotFound => ApiError::not_found(what),
        // A command on an entity that was never created.
        CommandError::Domain(e) if e.code().ends_with(".not_found") => ApiError::NotFound {
            code: e.code(),
            message: e.to_string(),
        },
        CommandError::Domain(e) => ApiError::Conflict {
            code: e.code(),
            message: e.to_string(),
            details: None,
        },
        CommandError::PreconditionFailed { expected, actual } => {
            ApiError::PreconditionFailed { expected, actual }
        }
        CommandError::TooMuchContention { retries } => ApiError::Conflict {
            code: "contention",
            message: format!(
                "the {what} kept changing concurrently ({retries} retries); try again"
            ),
            details: None,
        },
        CommandError::Decode { position, source } => ApiError::Internal(
            anyhow::Error::new(source)
                .context(format!("decoding the event at position {position}")),
        ),
        CommandError::Store(e) => e.into(),
    }
}

/// One command request on one entity.
pub struct Request<'a> {
    pub state: &'a AppState,
    pub principal: &'a Principal,
    pub headers: &'a HeaderMap,
    pub request_id: Option<&'a RequestId>,
    /// `POST /api/v1/tickets/{id}/assign`: for the idempotency key's hash.
    pub path: &'a str,
    pub body: &'a [u8],
    /// The collection, for `Location`: `tickets`.
    pub collection: &'static str,
    /// The entity's singular name, for messages: `ticket`.
    pub what: &'static str,
}

impl Request<'_> {
    /// Runs `command` on entity `id` (created: answer 201 with `Location`),
    /// honouring `If-Match` and `Idempotency-Key`.
    pub async fn run<A: Aggregate>(
        &self,
        id: Uuid,
        created: bool,
        command: A::Command,
    ) -> Result<Response, ApiError> {
        let key = idempotency::key(self.headers)?;
        let claim = match idempotency::begin(
            &self.state.pool,
            self.principal.tenant.as_str(),
            key,
            "POST",
            self.path,
            self.body,
        )
        .await?
        {
            idempotency::Begin::Replay(response) => return Ok(response),
            idempotency::Begin::Claimed(claim) => Some(claim),
            idempotency::Begin::NoKey => None,
        };
        let started = std::time::Instant::now();
        let response = match self.execute::<A>(id, created, &command).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        let outcome = match response.status().as_u16() {
            200..=299 => "accepted",
            409 => "refused",
            412 => "precondition_failed",
            400..=499 => "invalid",
            _ => "error",
        };
        metrics::counter!("chronicle_commands_total", "aggregate" => A::STREAM_TYPE, "outcome" => outcome).increment(1);
        metrics::histogram!("chronicle_command_duration_seconds", "aggregate" => A::STREAM_TYPE)
            .record(started.elapsed().as_secs_f64());
        Ok(match claim {
            Some(claim) => claim.finish(&self.state.pool, response).await,
            None => response,
        })
    }

    async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        created: bool,
        command: &A::Command,
    ) -> Result<Response, ApiError> {
        let mut ctx = Context::new(self.principal.tenant.clone(), self.principal.user.clone());
        ctx.request_id = self.request_id.map(|r| r.0.clone());
        ctx.if_match = if_match(self.headers)?;
        let stream = StreamId::parse(id.to_string())?;
        let outcome = self
            .state
            .commands
            .execute::<A>(&stream, &ctx, command)
            .await
            .map_err(|e| command_error(self.what, e))?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut response = (
            status,
            axum::Json(
                json!({ "id": id, "version": outcome.version, "position": outcome.position }),
            ),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
            headers.insert(header::ETAG, etag);
        }
        if created {
            if let Ok(location) =
                HeaderValue::from_str(&format!("/api/v1/{}/{id}", self.collection))
            {
                headers.insert(header::LOCATION, location);
            }
        }
        Ok(response)
    }
}

/// Query parameters, with malformed ones answered in the error format
/// (400 `invalid_query`) rather than axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        // No parameter holds a NUL character: PostgreSQL text cannot, and a
        // filter bound with one failed in the database (found by the API
        // fuzzer as a 500).
        let query = parts.uri.query().unwrap_or("");
        if query.to_ascii_lowercase().contains("%00") {
            return Err(ApiError::bad_request(
                "invalid_query",
                "query parameters must not contain the NUL character (%00)",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}
