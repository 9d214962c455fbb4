//! `GET /api/v1/kb/articles` and `GET /api/v1/kb/articles/{id}` from
//! `read.kb_articles`.
//!
//! Every authenticated user of the tenant reads published articles;
//! experts, managers and admins (who write them) also see retired ones.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{no_custom, Condition, Filter, FilterKind, Resource, SortKey};
use crate::auth::{Principal, Role};
use crate::command_http::ApiQuery;
use crate::error::ApiError;
use crate::AppState;

pub static ARTICLES: Resource = Resource {
    what: "knowledge article",
    code_not_found: "knowledge_article.not_found",
    table: "read.kb_articles",
    id_column: "article_id",
    projections: &["kb"],
    filters: &[
        Filter {
            param: "status",
            column: "status",
            kind: FilterKind::Text,
        },
        Filter {
            param: "product",
            column: "product",
            kind: FilterKind::Text,
        },
        Filter {
            param: "tag",
            column: "tags",
            kind: FilterKind::TextIn,
        },
        Filter {
            param: "author_id",
            column: "author_id",
            kind: FilterKind::Uuid,
        },
        Filter {
            param: "published",
            column: "published_at",
            kind: FilterKind::TimeRange,
        },
        Filter {
            param: "updated",
            column: "updated_at",
            kind: FilterKind::TimeRange,
        },
    ],
    sorts: &[
        SortKey {
            name: "updated_at",
            column: "updated_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "published_at",
            column: "published_at",
            sql_type: "timestamptz",
        },
        SortKey {
            name: "title",
            column: "title",
            sql_type: "text",
        },
    ],
    default_sort: "-updated_at",
    scope,
    custom: no_custom,
};

fn scope(principal: &Principal) -> Result<Option<Condition>, ApiError> {
    if [Role::Expert, Role::Manager, Role::Admin]
        .iter()
        .any(|r| principal.has(*r))
    {
        return Ok(None);
    }
    Ok(Some(Condition::default().sql("t.status = 'published'")))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/kb/articles", get(list))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    super::list(&state, &principal, &ARTICLES, params, &headers).await
}
