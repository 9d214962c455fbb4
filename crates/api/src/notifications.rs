//! Notifications over HTTP.
//!
//! - `GET`/`PUT /api/v1/me/notification-preferences`: the caller's kinds
//!   and channels (event-sourced: stream type `notification_preferences`).
//! - `GET /api/v1/me/notifications`: the caller's in-app notifications,
//!   newest first (`?unread=true`, `?kind=`, `?limit=`, `?cursor=`,
//!   `?min_position=`); `POST /api/v1/me/notifications/{id}/read` marks one.
//! - `GET /api/v1/notifications/deliveries` (manager, admin): email and
//!   webhook deliveries with their state (`?status=`, `?channel=`);
//!   `GET /api/v1/notifications/deliveries/stats`: counts and rates;
//!   `POST /api/v1/notifications/deliveries/{id}/retry`: a dead (or
//!   retrying) delivery is tried again at once with a fresh set of attempts.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronicle_domain::notification::{
    self, NotificationCommand, NotificationKind, NotificationPreferences, NotificationSettings,
    WebhookUrl,
};
use chronicle_domain::value::Email;
use chronicle_store::StreamId;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row as _;
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, command_error, parse_body, ApiQuery, Fields, Request};
use crate::error::ApiError;
use crate::observability::RequestId;
use crate::queries::{self, db};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/me/notification-preferences",
            get(get_preferences).put(put_preferences),
        )
        .route("/api/v1/me/notifications", get(list_mine))
        .route("/api/v1/me/notifications/{id}/read", post(mark_read))
        .route("/api/v1/notifications/deliveries", get(list_deliveries))
        .route("/api/v1/notifications/deliveries/stats", get(stats))
        .route("/api/v1/notifications/deliveries/{id}/retry", post(retry))
}

/// Who sees deliveries.
const MANAGERS: &[Role] = &[Role::Manager];

// ---------------------------------------------------------------------------
// Preferences
// ---------------------------------------------------------------------------

/// A user's notification preferences.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NotificationPreferences")]
pub(crate) struct PreferencesBody {
    /// The kinds wanted: assignment, approval_waiting, approval_outcome,
    /// sla_breach, status_change, survey, renewal_due (the others are not
    /// sent on any channel).
    #[schemars(schema_with = "kinds_schema")]
    kinds: Vec<String>,
    /// List them at `GET /api/v1/me/notifications`.
    in_app: bool,
    /// Mail them to this address (`null`: no email).
    #[schemars(length(max = 254))]
    email: Option<String>,
    /// POST them, signed, to this http(s) URL (`null`: no webhook).
    #[schemars(length(max = 2000))]
    webhook_url: Option<String>,
}

fn kinds_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    let names: Vec<&str> = NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
    serde_json::from_value(json!({
        "type": "array",
        "items": { "type": "string", "enum": names },
        "uniqueItems": true,
    }))
    .expect("a valid schema")
}

fn preferences_json(p: &NotificationPreferences) -> Value {
    json!({
        "kinds": p.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "in_app": p.in_app,
        "email": p.email.as_ref().map(Email::as_str),
        "webhook_url": p.webhook_url.as_ref().map(WebhookUrl::as_str),
    })
}

fn stream_of(principal: &Principal) -> Uuid {
    notification::stream_id(principal.tenant.as_str(), actor_id(principal))
}

async fn get_preferences(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let id = stream_of(&principal);
    let loaded = state
        .commands
        .load::<NotificationSettings>(&principal.tenant, &StreamId::parse(id.to_string())?)
        .await
        .map_err(|e| command_error("notification preferences", e))?;
    let (settings, version, position, updated_at) = match loaded {
        Some(l) => (l.state, l.version, l.position, l.updated_at),
        None => (NotificationSettings::default(), 0, 0, None),
    };
    let mut response = Json(json!({
        "id": id,
        "version": version,
        "position": position,
        "updated_at": updated_at,
        "default": settings.preferences.is_none(),
        "preferences": preferences_json(&settings.effective()),
    }))
    .into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn put_preferences(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: PreferencesBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let mut kinds = BTreeSet::new();
    for (i, name) in b.kinds.iter().enumerate() {
        if let Some(kind) = f.check(
            &format!("kinds[{i}]"),
            NotificationKind::parse("kinds", name),
        ) {
            kinds.insert(kind);
        }
    }
    let email = b
        .email
        .as_deref()
        .and_then(|e| f.check("email", Email::parse("email", e)));
    let webhook_url = b
        .webhook_url
        .as_deref()
        .and_then(|u| f.check("webhook_url", WebhookUrl::parse("webhook_url", u)));
    f.finish()?;
    let user_id = actor_id(&principal);
    let command = NotificationCommand::SetPreferences {
        user_id,
        preferences: NotificationPreferences {
            kinds,
            in_app: b.in_app,
            email,
            webhook_url,
        },
        at: Utc::now(),
    };
    let request = Request {
        state: &state,
        principal: &principal,
        headers: &headers,
        request_id: Some(&request_id),
        path: uri.path(),
        body: &body,
        collection: "me/notification-preferences",
        what: "notification preferences",
    };
    request
        .run::<NotificationSettings>(stream_of(&principal), false, command)
        .await
}

// ---------------------------------------------------------------------------
// In-app notifications
// ---------------------------------------------------------------------------

/// Where the previous page of a list sorted by creation ended.
type After = Option<(DateTime<Utc>, Uuid)>;

/// A page's `limit` and `cursor`; any parameter not in `known` is a 400.
fn page_params(
    params: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(usize, After), ApiError> {
    for name in params.keys() {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "unknown query parameter {name:?}; this list takes: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    let limit = match params.get("limit") {
        None => queries::DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=queries::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("limit must be 1 to {}", queries::MAX_LIMIT),
                )
            })?,
    };
    let cursor = params
        .get("cursor")
        .map(|raw| {
            let (value, id) = queries::decode_cursor_of("created_at", raw)?;
            let at = DateTime::parse_from_rfc3339(&value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        "cursor is not one this API gave out; start again without it",
                    )
                })?;
            Ok::<_, ApiError>((at, id))
        })
        .transpose()?;
    Ok((limit, cursor))
}

fn one_of(
    params: &BTreeMap<String, String>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let values: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if values.is_empty() || values.iter().any(|v| !allowed.contains(&v.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be one or more of: {}", allowed.join(", ")),
        ));
    }
    Ok(Some(values))
}

fn next_cursor(rows: &mut Vec<Value>, limit: usize, id_field: &str) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    let last = rows.last()?;
    let at = last["created_at"].as_str()?.to_owned();
    let id = last[id_field].as_str()?.parse().ok()?;
    Some(queries::encode_cursor_of("created_at", &at, id))
}

const KINDS: [&str; 7] = [
    "assignment",
    "approval_waiting",
    "approval_outcome",
    "sla_breach",
    "status_change",
    "survey",
    "renewal_due",
];

async fn list_mine(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let (limit, cursor) = page_params(
        &params,
        &["unread", "kind", "limit", "cursor", "min_position"],
    )?;
    let unread = match params.get("unread").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "unread must be true or false",
            ))
        }
    };
    let kinds = one_of(&params, "kind", &KINDS)?;
    let min = queries::min_position_of(&params, &headers)?;
    queries::wait_for(&state, &["notifications"], min).await?;
    let (mut tx, position) = queries::snapshot_of(&state, &["notifications"]).await?;
    let (cursor_at, cursor_id) = cursor.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let mut rows: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object( \
             'id', n.notification_id, 'kind', n.kind, 'title', n.title, 'body', n.body, \
             'subject', jsonb_build_object('type', n.subject_type, 'id', n.subject_id), \
             'event', jsonb_build_object('id', n.event_id, 'type', n.event_type, 'position', n.position), \
             'created_at', n.created_at, 'read_at', r.read_at) \
           FROM read.notifications n \
           LEFT JOIN public.notification_reads r ON r.notification_id = n.notification_id \
          WHERE n.tenant_id = $1 AND n.user_id = $2 AND n.in_app \
            AND ($3::boolean IS FALSE OR r.read_at IS NULL) \
            AND ($4::text[] IS NULL OR n.kind = ANY($4)) \
            AND ($5::timestamptz IS NULL OR (n.created_at, n.notification_id) < ($5, $6::uuid)) \
          ORDER BY n.created_at DESC, n.notification_id DESC \
          LIMIT $7",
    )
    .bind(principal.tenant.as_str())
    .bind(actor_id(&principal))
    .bind(unread)
    .bind(kinds)
    .bind(cursor_at)
    .bind(cursor_id)
    .bind((limit + 1) as i64)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let unread_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read.notifications n \
          WHERE n.tenant_id = $1 AND n.user_id = $2 AND n.in_app \
            AND NOT EXISTS (SELECT 1 FROM public.notification_reads r \
                             WHERE r.notification_id = n.notification_id)",
    )
    .bind(principal.tenant.as_str())
    .bind(actor_id(&principal))
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let next = next_cursor(&mut rows, limit, "id");
    Ok(queries::with_position(
        Json(json!({
            "items": rows,
            "next_cursor": next,
            "unread": unread_count,
            "position": position,
        }))
        .into_response(),
        position,
    ))
}

async fn mark_read(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound {
        code: "notification.not_found",
        message: "notification not found".into(),
    };
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let read_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "WITH mine AS ( \
             SELECT n.notification_id FROM read.notifications n \
              WHERE n.notification_id = $1 AND n.tenant_id = $2 AND n.user_id = $3 AND n.in_app), \
         marked AS ( \
             INSERT INTO public.notification_reads (notification_id, tenant_id, user_id, read_at) \
             SELECT notification_id, $2, $3, now() FROM mine \
             ON CONFLICT (notification_id) DO NOTHING \
             RETURNING read_at) \
         SELECT coalesce((SELECT read_at FROM marked), \
                         (SELECT r.read_at FROM public.notification_reads r \
                            JOIN mine USING (notification_id)))",
    )
    .bind(id)
    .bind(principal.tenant.as_str())
    .bind(actor_id(&principal))
    .fetch_one(&state.pool)
    .await
    .map_err(db)?;
    let read_at = read_at.ok_or_else(not_found)?;
    Ok(Json(json!({ "id": id, "read_at": read_at })).into_response())
}

// ---------------------------------------------------------------------------
// Deliveries (managers)
// ---------------------------------------------------------------------------

const STATUSES: [&str; 4] = ["pending", "retrying", "delivered", "dead"];
const CHANNELS: [&str; 2] = ["email", "webhook"];

/// An email address with its local part hidden (`p***@example.com`):
/// managers see where deliveries go without reading addresses.
fn masked(channel: &str, target: &str) -> String {
    if channel != "email" {
        return target.to_owned();
    }
    match target.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require_any(MANAGERS)?;
    let (limit, cursor) = page_params(
        &params,
        &["status", "channel", "limit", "cursor", "min_position"],
    )?;
    let statuses = one_of(&params, "status", &STATUSES)?;
    let channels = one_of(&params, "channel", &CHANNELS)?;
    let min = queries::min_position_of(&params, &headers)?;
    queries::wait_for(&state, &["notifications"], min).await?;
    let (mut tx, position) = queries::snapshot_of(&state, &["notifications"]).await?;
    let (cursor_at, cursor_id) = cursor.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let rows = sqlx::query(
        "SELECT d.delivery_id, d.notification_id, d.user_id, d.channel, d.target, d.created_at, \
                n.kind, n.title, s.status, s.attempts, s.next_attempt_at, s.last_error, \
                s.delivered_at, s.updated_at \
           FROM read.notification_deliveries d \
           JOIN read.notifications n ON n.notification_id = d.notification_id \
           JOIN public.notification_delivery_state s ON s.delivery_id = d.delivery_id \
          WHERE d.tenant_id = $1 \
            AND ($2::text[] IS NULL OR s.status = ANY($2)) \
            AND ($3::text[] IS NULL OR d.channel = ANY($3)) \
            AND ($4::timestamptz IS NULL OR (d.created_at, d.delivery_id) < ($4, $5::uuid)) \
          ORDER BY d.created_at DESC, d.delivery_id DESC \
          LIMIT $6",
    )
    .bind(principal.tenant.as_str())
    .bind(statuses)
    .bind(channels)
    .bind(cursor_at)
    .bind(cursor_id)
    .bind((limit + 1) as i64)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let channel: String = row.try_get("channel").map_err(db)?;
        let target: String = row.try_get("target").map_err(db)?;
        items.push(json!({
            "id": row.try_get::<Uuid, _>("delivery_id").map_err(db)?,
            "notification_id": row.try_get::<Uuid, _>("notification_id").map_err(db)?,
            "user_id": row.try_get::<Uuid, _>("user_id").map_err(db)?,
            "channel": channel,
            "target": masked(&channel, &target),
            "kind": row.try_get::<String, _>("kind").map_err(db)?,
            "title": row.try_get::<String, _>("title").map_err(db)?,
            "status": row.try_get::<String, _>("status").map_err(db)?,
            "attempts": row.try_get::<i32, _>("attempts").map_err(db)?,
            "next_attempt_at": row.try_get::<Option<DateTime<Utc>>, _>("next_attempt_at").map_err(db)?,
            "last_error": row.try_get::<Option<String>, _>("last_error").map_err(db)?,
            "delivered_at": row.try_get::<Option<DateTime<Utc>>, _>("delivered_at").map_err(db)?,
            "created_at": row.try_get::<DateTime<Utc>, _>("created_at").map_err(db)?,
            "updated_at": row.try_get::<DateTime<Utc>, _>("updated_at").map_err(db)?,
        }));
    }
    let next = next_cursor(&mut items, limit, "id");
    Ok(queries::with_position(
        Json(json!({ "items": items, "next_cursor": next, "position": position })).into_response(),
        position,
    ))
}

async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require_any(MANAGERS)?;
    page_params(&params, &[])?;
    let rows = sqlx::query(
        "SELECT channel, status, count(*) AS n, \
                count(*) FILTER (WHERE status = 'delivered' AND delivered_at > now() - interval '1 hour') AS hour, \
                count(*) FILTER (WHERE status = 'delivered' AND delivered_at > now() - interval '1 day') AS day, \
                coalesce(sum(attempts), 0) AS attempts \
           FROM public.notification_delivery_state \
          WHERE tenant_id = $1 \
          GROUP BY channel, status",
    )
    .bind(principal.tenant.as_str())
    .fetch_all(&state.pool)
    .await
    .map_err(db)?;
    let mut channels: BTreeMap<String, Value> = CHANNELS
        .iter()
        .map(|c| {
            (
                (*c).to_owned(),
                json!({
                    "pending": 0, "retrying": 0, "delivered": 0, "dead": 0,
                    "attempts": 0, "delivered_last_hour": 0, "delivered_last_day": 0,
                }),
            )
        })
        .collect();
    for row in rows {
        let channel: String = row.try_get("channel").map_err(db)?;
        let status: String = row.try_get("status").map_err(db)?;
        let entry = channels.entry(channel).or_insert_with(|| json!({}));
        let add = |entry: &mut Value, key: &str, n: i64| {
            entry[key] = json!(entry[key].as_i64().unwrap_or(0) + n);
        };
        add(entry, &status, row.try_get("n").map_err(db)?);
        add(entry, "attempts", row.try_get("attempts").map_err(db)?);
        add(
            entry,
            "delivered_last_hour",
            row.try_get("hour").map_err(db)?,
        );
        add(entry, "delivered_last_day", row.try_get("day").map_err(db)?);
    }
    for entry in channels.values_mut() {
        let delivered = entry["delivered"].as_i64().unwrap_or(0);
        let dead = entry["dead"].as_i64().unwrap_or(0);
        let attempts = entry["attempts"].as_i64().unwrap_or(0);
        let finished = delivered + dead;
        entry["success_rate"] = if finished > 0 {
            json!(delivered as f64 / finished as f64)
        } else {
            Value::Null
        };
        entry["attempts_per_delivery"] = if delivered > 0 {
            json!(attempts as f64 / (delivered + dead).max(1) as f64)
        } else {
            Value::Null
        };
    }
    Ok(Json(json!({ "channels": channels })).into_response())
}

async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_any(MANAGERS)?;
    let not_found = || ApiError::NotFound {
        code: "delivery.not_found",
        message: "delivery not found".into(),
    };
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let row = sqlx::query(
        "WITH found AS ( \
             SELECT delivery_id, status FROM public.notification_delivery_state \
              WHERE delivery_id = $1 AND tenant_id = $2 FOR UPDATE), \
         updated AS ( \
             UPDATE public.notification_delivery_state s \
                SET status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now() \
               FROM found f \
              WHERE s.delivery_id = f.delivery_id AND f.status IN ('dead', 'retrying') \
              RETURNING s.delivery_id) \
         SELECT f.status, EXISTS (SELECT 1 FROM updated) AS requeued FROM found f",
    )
    .bind(id)
    .bind(principal.tenant.as_str())
    .fetch_optional(&state.pool)
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    let status: String = row.try_get("status").map_err(db)?;
    let requeued: bool = row.try_get("requeued").map_err(db)?;
    if !requeued {
        return Err(ApiError::Conflict {
            code: "delivery.not_failed",
            message: format!("the delivery is {status}; only dead or retrying ones are retried"),
            details: None,
        });
    }
    tracing::info!(delivery = %id, by = %principal.user, "delivery retry requested");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "pending" })),
    )
        .into_response())
}
