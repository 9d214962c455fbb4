//! `/api/v1/sla-policy` and `/api/v1/approval-policy`: a tenant's two
//! policies, read and replaced as whole documents.
//!
//! Roles (see README "Roles"): managers read and set both policies; admins
//! do everything. Nobody else reads them through these endpoints.
//!
//! | method | path | roles |
//! |---|---|---|
//! | `GET` | `/api/v1/sla-policy` | manager |
//! | `PUT` | `/api/v1/sla-policy` | manager |
//! | `GET` | `/api/v1/approval-policy` | manager |
//! | `PUT` | `/api/v1/approval-policy` | manager |
//!
//! Both policies live in one stream per tenant (stream type
//! `tenant_policy`). Its stream id is deterministic: the UUIDv5, in the URL
//! namespace, of `chronicle-policy:<tenant>` ([`stream_id`]), so every
//! process finds a tenant's policies without a lookup, and no tenant can
//! reach another's (stream ids are unique across the store; the prefix
//! cannot collide with the `chronicle:<tenant>:<sub>` names of derived user
//! ids).
//!
//! `GET` answers the policy in force: the one last set, or the domain's
//! default (`"default": true`) when none was set, with `version` (and an
//! `ETag`) being the stream's version, 0 before anything was set. The
//! version covers both policies, so `If-Match` on a `PUT` fails when either
//! changed since the read. `PUT` replaces the policy; setting the same
//! policy again records nothing. The domain refuses no valid policy, so
//! these endpoints answer 400 (invalid fields), 403, 412 but never 409.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chronicle_domain::policy::{
    ApprovalPolicy, ApprovalRule, Approver, LevelSpec, PolicyCommand, SlaPolicy, SlaTargets,
    SubjectKind, TenantPolicy, ValueThreshold,
};
use chronicle_domain::user::Role as DomainRole;
use chronicle_store::{StreamId, TenantId};
use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{Principal, Role};
use crate::command_http::{actor_id, command_error, parse_body, Fields, Request};
use crate::error::ApiError;
use crate::observability::RequestId;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sla-policy", get(get_sla).put(put_sla))
        .route(
            "/api/v1/approval-policy",
            get(get_approval).put(put_approval),
        )
}

/// The id of the stream holding `tenant`'s policies.
pub fn stream_id(tenant: &TenantId) -> Uuid {
    chronicle_domain::policy::stream_id(tenant.as_str())
}

const WHO: &[Role] = &[Role::Manager];

/// A policy read: the folded stream, or nothing set yet (version 0).
async fn load(state: &AppState, tenant: &TenantId) -> Result<(TenantPolicy, Value), ApiError> {
    let id = stream_id(tenant);
    let stream = StreamId::parse(id.to_string())?;
    let loaded = state
        .commands
        .load::<TenantPolicy>(tenant, &stream)
        .await
        .map_err(|e| command_error("tenant policy", e))?;
    let (policy, version, position, updated_at) = match loaded {
        Some(l) => (l.state, l.version, l.position, l.updated_at),
        None => (TenantPolicy::default(), 0, 0, None),
    };
    let meta = json!({
        "id": id,
        "version": version,
        "position": position,
        "updated_at": updated_at,
    });
    Ok((policy, meta))
}

/// `meta` plus the policy and whether it is the default, with the version
/// as `ETag`.
fn answer(mut meta: Value, default: bool, policy: Value) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", meta["version"]));
    meta["default"] = json!(default);
    meta["policy"] = policy;
    let mut response = Json(meta).into_response();
    if let Ok(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

// ---------------------------------------------------------------------------
// SLA policy
// ---------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SlaPolicy")]
pub(crate) struct SlaBody {
    p1: TargetsBody,
    p2: TargetsBody,
    p3: TargetsBody,
    p4: TargetsBody,
}

/// Seconds from a ticket's opening.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SlaTargets")]
struct TargetsBody {
    /// At most `time_to_resolve_secs`.
    #[schemars(range(min = 1, max = 316_224_000))]
    time_to_assign_secs: i64,
    /// At most `time_to_resolve_secs`.
    #[schemars(range(min = 1, max = 316_224_000))]
    time_to_first_response_secs: i64,
    /// At most `MAX_DURATION_SECS` (ten years).
    #[schemars(range(min = 1, max = 316_224_000))]
    time_to_resolve_secs: i64,
}

fn targets_json(t: &SlaTargets) -> Value {
    json!({
        "time_to_assign_secs": t.time_to_assign_secs(),
        "time_to_first_response_secs": t.time_to_first_response_secs(),
        "time_to_resolve_secs": t.time_to_resolve_secs(),
    })
}

fn sla_json(p: &SlaPolicy) -> Value {
    json!({
        "p1": targets_json(&p.p1),
        "p2": targets_json(&p.p2),
        "p3": targets_json(&p.p3),
        "p4": targets_json(&p.p4),
    })
}

/// Parses one priority's targets; a bad one is named `p2.time_to_resolve_secs`.
fn parse_targets(f: &mut Fields, priority: &str, t: TargetsBody) -> Option<SlaTargets> {
    let mut secs = |name: &str, value: i64| match u64::try_from(value) {
        Ok(v) => Some(v),
        Err(_) => {
            f.fail(&format!("{priority}.{name}"), "must be greater than 0");
            None
        }
    };
    let assign = secs("time_to_assign_secs", t.time_to_assign_secs);
    let first = secs("time_to_first_response_secs", t.time_to_first_response_secs);
    let resolve = secs("time_to_resolve_secs", t.time_to_resolve_secs);
    let (assign, first, resolve) = (assign?, first?, resolve?);
    match SlaTargets::new(assign, first, resolve) {
        Ok(t) => Some(t),
        Err(e) => {
            f.fail(&format!("{priority}.{}", e.field), e.reason);
            None
        }
    }
}

async fn get_sla(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require_any(WHO)?;
    let (policy, meta) = load(&state, &principal.tenant).await?;
    Ok(answer(
        meta,
        policy.sla.is_none(),
        sla_json(&policy.sla_policy()),
    ))
}

async fn put_sla(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(WHO)?;
    let b: SlaBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let p1 = parse_targets(&mut f, "p1", b.p1);
    let p2 = parse_targets(&mut f, "p2", b.p2);
    let p3 = parse_targets(&mut f, "p3", b.p3);
    let p4 = parse_targets(&mut f, "p4", b.p4);
    let (Some(p1), Some(p2), Some(p3), Some(p4)) = (p1, p2, p3, p4) else {
        return Err(f.finish().unwrap_err());
    };
    let command = PolicyCommand::SetSlaPolicy {
        actor: actor_id(&principal),
        policy: SlaPolicy { p1, p2, p3, p4 },
        at: Utc::now(),
    };
    run(
        &state,
        &principal,
        &request_id,
        &uri,
        &headers,
        &body,
        command,
    )
    .await
}

async fn run(
    state: &AppState,
    principal: &Principal,
    request_id: &RequestId,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    command: PolicyCommand,
) -> Result<Response, ApiError> {
    let request = Request {
        state,
        principal,
        headers,
        request_id: Some(request_id),
        path: uri.path(),
        body,
        collection: "tenant-policy",
        what: "tenant policy",
    };
    request
        .run::<TenantPolicy>(stream_id(&principal.tenant), false, command)
        .await
}

// ---------------------------------------------------------------------------
// Approval policy
// ---------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalPolicy")]
pub(crate) struct ApprovalBody {
    rules: Vec<RuleBody>,
}

/// The value thresholds of one subject kind (`lead_design`, `contract`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ApprovalRule")]
struct RuleBody {
    /// `lead_design` or `contract`.
    #[schemars(regex(pattern = "^(lead_design|contract)$"))]
    kind: String,
    thresholds: Vec<ThresholdBody>,
}

/// From `min_value_minor` upwards, these levels apply (none: no approval).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ValueThreshold")]
struct ThresholdBody {
    min_value_minor: i64,
    levels: Vec<LevelBody>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PolicyLevel")]
struct LevelBody {
    #[schemars(length(min = 1))]
    approvers: Vec<ApproverBody>,
    /// Approvals needed (1 to the number of approvers).
    #[schemars(range(min = 1, max = 65535))]
    required: i64,
    /// Seconds the level may take (at most `MAX_DURATION_SECS`, ten years).
    #[schemars(range(min = 1, max = 316_224_000))]
    due_secs: Option<u64>,
}

/// `{"user": "<uuid>"}` or `{"role": "approver"}`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PolicyApprover")]
struct ApproverBody {
    user: Option<Uuid>,
    #[schemars(schema_with = "crate::openapi::opt_role_name")]
    role: Option<String>,
}

fn kind_str(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::LeadDesign => "lead_design",
        SubjectKind::Contract => "contract",
    }
}

fn approval_json(p: &ApprovalPolicy) -> Value {
    let rules: Vec<Value> = p
        .rules()
        .iter()
        .map(|rule| {
            let thresholds: Vec<Value> = rule
                .thresholds
                .iter()
                .map(|t| {
                    let levels: Vec<Value> = t
                        .levels
                        .iter()
                        .map(|level| {
                            let approvers: Vec<Value> = level
                                .approvers
                                .iter()
                                .map(|a| match a {
                                    Approver::User(id) => json!({ "user": id }),
                                    Approver::Role(name) => json!({ "role": name }),
                                })
                                .collect();
                            json!({
                                "approvers": approvers,
                                "required": level.required,
                                "due_secs": level.due_secs,
                            })
                        })
                        .collect();
                    json!({ "min_value_minor": t.min_value_minor, "levels": levels })
                })
                .collect();
            json!({ "kind": kind_str(rule.kind), "thresholds": thresholds })
        })
        .collect();
    json!({ "rules": rules })
}

fn parse_level(f: &mut Fields, at: &str, level: LevelBody) -> Option<LevelSpec> {
    let mut approvers = Vec::with_capacity(level.approvers.len());
    let mut ok = true;
    for (i, a) in level.approvers.into_iter().enumerate() {
        let field = format!("{at}.approvers[{i}]");
        match (a.user, a.role) {
            (Some(user), None) => approvers.push(Approver::User(user)),
            (None, Some(role)) => match DomainRole::parse("role", &role) {
                Ok(r) => approvers.push(Approver::Role(r.as_str().to_owned())),
                Err(e) => {
                    f.fail(&format!("{field}.role"), e.reason);
                    ok = false;
                }
            },
            _ => {
                f.fail(&field, "give either user or role");
                ok = false;
            }
        }
    }
    let required = match u16::try_from(level.required) {
        Ok(r) => Some(r),
        Err(_) => {
            f.fail(
                &format!("{at}.required"),
                format!("must be between 1 and {}", u16::MAX),
            );
            None
        }
    };
    let (true, Some(required)) = (ok, required) else {
        return None;
    };
    let spec = LevelSpec {
        approvers,
        required,
        due_secs: level.due_secs,
    };
    match spec.validate("levels") {
        Ok(()) => Some(spec),
        Err(e) => {
            f.fail(at, e.reason);
            None
        }
    }
}

fn parse_approval(f: &mut Fields, body: ApprovalBody) -> Option<ApprovalPolicy> {
    let mut rules = Vec::with_capacity(body.rules.len());
    let mut kinds = Vec::new();
    let mut ok = true;
    for (i, rule) in body.rules.into_iter().enumerate() {
        let kind = match rule.kind.as_str() {
            "lead_design" => Some(SubjectKind::LeadDesign),
            "contract" => Some(SubjectKind::Contract),
            _ => {
                f.fail(
                    &format!("rules[{i}].kind"),
                    "must be lead_design or contract",
                );
                None
            }
        };
        if let Some(kind) = kind {
            if kinds.contains(&kind) {
                f.fail(
                    &format!("rules[{i}].kind"),
                    "at most one rule per subject kind",
                );
                ok = false;
            }
            kinds.push(kind);
        }
        let mut thresholds = Vec::with_capacity(rule.thresholds.len());
        let mut minima = Vec::new();
        for (j, t) in rule.thresholds.into_iter().enumerate() {
            let at = format!("rules[{i}].thresholds[{j}]");
            if t.min_value_minor < 0 {
                f.fail(&format!("{at}.min_value_minor"), "must not be negative");
                ok = false;
            } else if minima.contains(&t.min_value_minor) {
                f.fail(
                    &format!("{at}.min_value_minor"),
                    "thresholds of one rule must be distinct",
                );
                ok = false;
            }
            minima.push(t.min_value_minor);
            let mut levels = Vec::with_capacity(t.levels.len());
            for (k, level) in t.levels.into_iter().enumerate() {
                match parse_level(f, &format!("{at}.levels[{k}]"), level) {
                    Some(l) => levels.push(l),
                    None => ok = false,
                }
            }
            thresholds.push(ValueThreshold {
                min_value_minor: t.min_value_minor,
                levels,
            });
        }
        match kind {
            Some(kind) => rules.push(ApprovalRule { kind, thresholds }),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    // Everything was checked above; the domain has the last word.
    match ApprovalPolicy::new(rules) {
        Ok(p) => Some(p),
        Err(e) => {
            f.fail(e.field, e.reason);
            None
        }
    }
}

async fn get_approval(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require_any(WHO)?;
    let (policy, meta) = load(&state, &principal.tenant).await?;
    Ok(answer(
        meta,
        policy.approval.is_none(),
        approval_json(&policy.approval_policy()),
    ))
}

async fn put_approval(
    State(state): State<AppState>,
    principal: Principal,
    request_id: RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_any(WHO)?;
    let b: ApprovalBody = parse_body(&headers, &body)?;
    let mut f = Fields::default();
    let Some(policy) = parse_approval(&mut f, b) else {
        return Err(f.finish().unwrap_err());
    };
    let command = PolicyCommand::SetApprovalPolicy {
        actor: actor_id(&principal),
        policy,
        at: Utc::now(),
    };
    run(
        &state,
        &principal,
        &request_id,
        &uri,
        &headers,
        &body,
        command,
    )
    .await
}
