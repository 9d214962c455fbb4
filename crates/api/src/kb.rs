//! `/api/v1/kb/articles`: every knowledge-article command as an endpoint,
//! and the auditors' reads (history, state as of a time or version).
//!
//! Roles (see README "Roles"): experts and managers publish, revise and
//! retire articles (any article of their tenant; the domain keeps the
//! revision numbers and refuses changes to a retired article); auditors and
//! managers read history and past states; admins do everything.
//!
//! | method | path | roles |
//! |---|---|---|
//! | `POST` | `/api/v1/kb/articles` (publish) | expert, manager |
//! | `POST` | `/api/v1/kb/articles/{id}/revise` | expert, manager |
//! | `POST` | `/api/v1/kb/articles/{id}/retire` | expert, manager |
//! | `GET` | `/api/v1/kb/articles/{id}?as_of=\|at_version=` | auditor, manager |
//! | `GET` | `/api/v1/kb/articles/{id}/history` | auditor, manager |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::knowledge::{ArticleStatus, KnowledgeArticle, KnowledgeCommand, Tags};
use chronicle_domain::value::{LongText, ShortText};
use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{
    actor_id, entity_id, find_action, parse_body, unhandled_action, Action, Allowed, ApiQuery,
    Fields, Request,
};
use crate::error::ApiError;
use crate::history;
use crate::observability::RequestId;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/kb/articles", post(publish))
        .route("/api/v1/kb/articles/{id}", get(state_at))
        .route("/api/v1/kb/articles/{id}/history", get(history_of))
        .route("/api/v1/kb/articles/{id}/{action}", post(act))
}

/// Who writes articles.
const WRITERS: Allowed = Allowed::Roles(&[Role::Expert, Role::Manager]);

/// A new article. Texts are trimmed and must not be blank: at most 200
/// characters, `body` at most 100,000.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PublishArticle")]
pub(crate) struct PublishBody {
    #[schemars(schema_with = "crate::openapi::short_text")]
    title: String,
    #[schemars(schema_with = "crate::openapi::long_text")]
    body: String,
    /// Tags, each at most 200 characters (duplicates ignored, case-insensitively).
    #[serde(default)]
    tags: Vec<String>,
    /// The product the article is about.
    #[schemars(schema_with = "crate::openapi::short_text")]
    product: String,
}

/// Parses tags, naming a bad one by its index (`tags[2]`).
fn parse_tags(f: &mut Fields, tags: Vec<String>) -> Option<Tags> {
    let mut parsed = Vec::with_capacity(tags.len());
    let mut ok = true;
    for (i, tag) in tags.into_iter().enumerate() {
        let field = format!("tags[{i}]");
        match f.check(&field, ShortText::parse("tags", tag)) {
            Some(t) => parsed.push(t),
            None => ok = false,
        }
    }
    ok.then(|| Tags::new(parsed))
}

async fn publish(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    WRITERS.check(&principal, Uuid::nil())?;
    let b: PublishBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let title = f.check("title", ShortText::parse("title", b.title));
    let text = f.check("body", LongText::parse("body", b.body));
    let tags = parse_tags(&mut f, b.tags);
    let product = f.check("product", ShortText::parse("product", b.product));
    let (Some(title), Some(text), Some(tags), Some(product)) = (title, text, tags, product) else {
        return Err(f.finish().unwrap_err());
    };
    let command = KnowledgeCommand::Publish {
        actor: actor_id(&principal),
        title,
        body: text,
        tags,
        product,
        at: Utc::now(),
    };
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "kb/articles",
        what: "knowledge article",
    };
    request
        .run::<KnowledgeArticle>(Uuid::now_v7(), true, command)
        .await
}

/// Every action's fields in one shape: an action reads the ones it needs
/// (see [`ACTIONS`]) and ignores the others'; a name no action knows is
/// refused.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ArticleActionBody")]
pub(crate) struct ActionBody {
    /// The new title, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    title: Option<String>,
    /// The new text, at most 100,000 characters.
    #[schemars(schema_with = "crate::openapi::opt_long_text")]
    body: Option<String>,
    /// The new tags (none when left out), each at most 200 characters.
    tags: Option<Vec<String>>,
    /// Why the article is retired, at most 200 characters.
    #[schemars(schema_with = "crate::openapi::opt_short_text")]
    reason: Option<String>,
}

/// The actions on an article: `POST /api/v1/kb/articles/{id}/<name>`.
pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "revise",
        summary: "Revise the article (replaces title, body and tags as a whole)",
        allowed: WRITERS,
        fields: &["title", "body", "tags"],
        required: &["title", "body"],
    },
    Action {
        name: "retire",
        summary: "Retire the article",
        allowed: WRITERS,
        fields: &["reason"],
        required: &[],
    },
];

fn required<T>(f: &mut Fields, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        f.fail(field, "required");
    }
    value
}

async fn act(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = entity_id(&id)?;
    let action = find_action(ACTIONS, "knowledge article", &action)?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        parse_body(&headers, &body)?
    };
    let actor = actor_id(&principal);
    let at = Utc::now();
    let mut f = Fields::default();
    let command = match action.name {
        // A revision replaces title, body and tags as a whole.
        "revise" => {
            let title = required(&mut f, "title", b.title)
                .and_then(|t| f.check("title", ShortText::parse("title", t)));
            let text = required(&mut f, "body", b.body)
                .and_then(|t| f.check("body", LongText::parse("body", t)));
            let tags = parse_tags(&mut f, b.tags.unwrap_or_default());
            match (title, text, tags) {
                (Some(title), Some(body), Some(tags)) => Some(KnowledgeCommand::Revise {
                    actor,
                    title,
                    body,
                    tags,
                    at,
                }),
                _ => None,
            }
        }
        "retire" => {
            let reason = match b.reason {
                Some(r) => f.check("reason", ShortText::parse("reason", r)).map(Some),
                None => Some(None),
            };
            reason.map(|reason| KnowledgeCommand::Retire { actor, reason, at })
        }
        other => return Err(unhandled_action("knowledge article", other)),
    };
    action.allowed.check(&principal, id)?;
    f.finish()?;
    let command =
        command.ok_or_else(|| ApiError::bad_request("validation_failed", "invalid body"))?;
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "kb/articles",
        what: "knowledge article",
    };
    request.run::<KnowledgeArticle>(id, false, command).await
}

/// The current article from the read model, or (auditors, managers) its
/// state folded from the events `?as_of=` a time or `?at_version=`.
async fn state_at(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<history::StateQuery>,
) -> Result<Response, ApiError> {
    if q.is_current() {
        let id = entity_id(&id)?;
        return crate::queries::one(
            &state,
            &principal,
            &crate::queries::kb::ARTICLES,
            id,
            q.min_position,
            &headers,
        )
        .await;
    }
    let (id, loaded) =
        history::past_state::<KnowledgeArticle>(&state, &principal, &id, &q, "knowledge article")
            .await?;
    let a = &loaded.state;
    let content = a.content.as_ref();
    Ok(Json(json!({
        "id": id,
        "version": loaded.version,
        "position": loaded.position,
        "updated_at": loaded.updated_at,
        "status": a.status.map(|s| match s {
            ArticleStatus::Published => "published",
            ArticleStatus::Retired => "retired",
        }),
        // The article's own revision number (1 at publication), not the
        // stream version.
        "revision": a.version,
        "title": content.map(|c| c.title.as_str()),
        "body": content.map(|c| c.body.as_str()),
        "tags": content.map(|c| c.tags.as_slice().iter().map(ShortText::as_str).collect::<Vec<_>>()),
    }))
    .into_response())
}

async fn history_of(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<history::Page>,
) -> Result<Json<Value>, ApiError> {
    principal.require_any(&[Role::Auditor, Role::Manager])?;
    let id = entity_id(&id)?;
    history::of_stream(&state, &principal, id, "knowledge_article", page).await
}
