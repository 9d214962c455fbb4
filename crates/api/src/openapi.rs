//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP surface, built
//! from the code.
//!
//! Request bodies are the JSON Schemas (2020-12, which OpenAPI 3.1 uses)
//! that `schemars` derives from each module's body structs, with nested
//! types under `components/schemas`. The actions come from each module's
//! `ACTIONS` table, the same table its dispatcher accepts: one concrete
//! path per action (`/api/v1/tickets/{id}/assign`) with the fields that
//! action reads, the ones it requires and who may run it. Answers, errors
//! and the auditors' read shapes are written once here, by small helpers.
//! `tests/it/openapi.rs` fails when a route or an action of the code is
//! missing here, or the other way round.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chronicle_domain::lead::Outcome;
use chronicle_domain::policy::SlaStage;
use chronicle_domain::value::Priority;
use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::command_http::{Action, Allowed};
use crate::queries::{self, FilterKind, Resource};
use crate::{approvals, contracts, kb, leads, notifications, policies, tickets, users};

/// `GET /openapi.json`.
pub async fn openapi_json() -> Response {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| serde_json::to_vec(document()).unwrap_or_default());
    let mut response = bytes.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// For `#[schemars(schema_with = ...)]` on a body's text fields: what
/// `ShortText` accepts (not blank, at most 200 characters after trimming).
pub(crate) fn short_text(_: &mut SchemaGenerator) -> Schema {
    text(200, false)
}

/// An optional [`short_text`].
pub(crate) fn opt_short_text(_: &mut SchemaGenerator) -> Schema {
    text(200, true)
}

/// What `LongText` accepts (not blank, at most 100,000 characters).
pub(crate) fn long_text(_: &mut SchemaGenerator) -> Schema {
    text(100_000, false)
}

/// An optional [`long_text`].
pub(crate) fn opt_long_text(_: &mut SchemaGenerator) -> Schema {
    text(100_000, true)
}

/// An ISO 8601 calendar date in a `String` field (`2026-01-31`).
pub(crate) fn date(_: &mut SchemaGenerator) -> Schema {
    serde_json::from_value(json!({ "type": "string", "format": "date" }))
        .unwrap_or(Schema::Bool(true))
}

/// An optional [`date`].
pub(crate) fn opt_date(_: &mut SchemaGenerator) -> Schema {
    serde_json::from_value(json!({ "type": ["string", "null"], "format": "date" }))
        .unwrap_or(Schema::Bool(true))
}

/// Role names as the domain parses them (exact, lowercase).
fn role_name() -> Value {
    json!({ "type": "string", "enum": chronicle_domain::user::Role::ALL.map(|r| r.as_str()) })
}

/// An optional role name (`{"role": "approver"}`).
pub(crate) fn opt_role_name(_: &mut SchemaGenerator) -> Schema {
    serde_json::from_value(json!({ "anyOf": [role_name(), { "type": "null" }] }))
        .unwrap_or(Schema::Bool(true))
}

/// A non-empty set of role names.
pub(crate) fn role_names(_: &mut SchemaGenerator) -> Schema {
    serde_json::from_value(json!({ "type": "array", "items": role_name(), "minItems": 1 }))
        .unwrap_or(Schema::Bool(true))
}

/// An optional [`role_names`].
pub(crate) fn opt_role_names(_: &mut SchemaGenerator) -> Schema {
    serde_json::from_value(
        json!({ "type": ["array", "null"], "items": role_name(), "minItems": 1 }),
    )
    .unwrap_or(Schema::Bool(true))
}

fn text(max: usize, optional: bool) -> Schema {
    let kind = if optional {
        json!(["string", "null"])
    } else {
        json!("string")
    };
    let mut schema = json!({
        "type": kind,
        "minLength": 1,
        "pattern": "\\S",
        "description": format!("Not blank; at most {max} characters after trimming"),
    });
    // Long texts' limit is described, not declared: fuzzers would send
    // (and store) texts of that length for every field of every case.
    if max <= 200 {
        schema["maxLength"] = json!(max);
    }
    serde_json::from_value(schema).unwrap_or(Schema::Bool(true))
}

/// Fields of which a body must hold exactly one (the handlers check it
/// with `grantee`): `(collection, action, fields)`.
const EXACTLY_ONE_OF: &[(&str, &str, &[&str])] = &[
    ("contracts", "shares", &["user_id", "role"]),
    ("contracts", "unshare", &["user_id", "role"]),
];

/// Body types of which an instance must hold exactly one of these fields
/// (the handlers refuse none and both): `(schema name, fields)`.
const COMPONENTS_EXACTLY_ONE_OF: &[(&str, &[&str])] = &[
    ("ApprovalApprover", &["user_id", "role"]),
    ("PolicyApprover", &["user", "role"]),
];

/// A collection with commands: create, act, and the auditors' reads.
struct Collection {
    /// Under `/api/v1/`: `tickets`, `kb/articles`.
    path: &'static str,
    tag: &'static str,
    /// Singular, for text: `ticket`.
    what: &'static str,
    create_summary: &'static str,
    create_allowed: Allowed,
    create_body: Value,
    create_example: Value,
    actions: &'static [Action],
    action_body: Value,
    state: Value,
    /// The read model that answers `GET .../{id}` without `as_of` or
    /// `at_version`, and its list, when the collection has one.
    current: Option<&'static Resource>,
}

fn build() -> Value {
    let mut settings = SchemaSettings::draft2019_09();
    settings.definitions_path = "#/components/schemas/".to_owned();
    settings.meta_schema = None;
    let mut gen = SchemaGenerator::new(settings);
    let staff = Allowed::Roles(&[crate::auth::Role::Sales, crate::auth::Role::Manager]);
    let collections = [
        Collection {
            path: "tickets",
            tag: "Tickets",
            what: "ticket",
            create_summary: "Open a ticket",
            create_allowed: Allowed::Roles(&[
                crate::auth::Role::Customer,
                crate::auth::Role::Manager,
            ]),
            create_body: reference::<tickets::OpenBody>(&mut gen),
            create_example: json!({
                "contact": { "name": "Ann Customer", "email": "ann@example.com" },
                "product": "fibre-1000",
                "category": "connectivity",
                "priority": "P2",
                "required_skill": "networking",
                "title": "Packet loss on the uplink",
                "description": "Loss of 2-5 % during business hours since Monday."
            }),
            actions: tickets::ACTIONS,
            action_body: inline::<tickets::ActionBody>(&mut gen),
            state: ticket_state(&mut gen),
            current: Some(&queries::tickets::TICKETS),
        },
        Collection {
            path: "leads",
            tag: "Leads",
            what: "lead",
            create_summary: "Capture a lead",
            create_allowed: staff,
            create_body: reference::<leads::CaptureBody>(&mut gen),
            create_example: json!({
                "company": "Initech GmbH",
                "contact": { "name": "Peter Gibbons", "email": "peter@initech.example", "phone": "+49 30 1234" },
                "site_address": "Hauptstrasse 1, 10115 Berlin",
                "service": "Dedicated Internet Access",
                "bandwidth_mbps": 1000,
                "estimated_value": { "amount_minor": 1_200_000, "currency": "EUR" },
                "source": "web form"
            }),
            actions: leads::ACTIONS,
            action_body: inline::<leads::ActionBody>(&mut gen),
            state: lead_state(&mut gen),
            current: Some(&queries::leads::LEADS),
        },
        Collection {
            path: "contracts",
            tag: "Contracts",
            what: "contract",
            create_summary: "Draft a contract",
            create_allowed: staff,
            create_body: reference::<contracts::DraftBody>(&mut gen),
            create_example: json!({
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
                "start_date": "2026-01-01",
                "end_date": "2026-12-31",
                "body": "The supplier provides managed fibre to the customer's three sites."
            }),
            actions: contracts::ACTIONS,
            action_body: inline::<contracts::ActionBody>(&mut gen),
            state: contract_state(),
            current: Some(&queries::contracts::CONTRACTS),
        },
        Collection {
            path: "approvals",
            tag: "Approvals",
            what: "approval",
            create_summary: "Request an approval",
            create_allowed: staff,
            create_body: reference::<approvals::RequestBody>(&mut gen),
            create_example: json!({
                "subject": { "kind": "contract", "id": "0190a5b2-7c3d-7e4f-8a1b-00000000c0de" },
                "value": { "amount_minor": 5_000_000, "currency": "EUR" },
                "levels": [
                    { "approvers": [{ "role": "approver" }], "required": 2, "due_secs": 86_400 },
                    { "approvers": [{ "user_id": "0190a5b2-7c3d-7e4f-8a1b-000000000001" }], "required": 1 }
                ]
            }),
            actions: approvals::ACTIONS,
            action_body: inline::<approvals::ActionBody>(&mut gen),
            state: approval_state(),
            current: Some(&queries::approvals::APPROVALS),
        },
        Collection {
            path: "kb/articles",
            tag: "Knowledge base",
            what: "knowledge article",
            create_summary: "Publish a knowledge article",
            create_allowed: Allowed::Roles(&[
                crate::auth::Role::Expert,
                crate::auth::Role::Manager,
            ]),
            create_body: reference::<kb::PublishBody>(&mut gen),
            create_example: json!({
                "title": "SmartHub 3 loses Wi-Fi after firmware 2.4",
                "body": "Roll back to firmware 2.3.9 and disable band steering.",
                "tags": ["wi-fi", "firmware"],
                "product": "SmartHub 3"
            }),
            actions: kb::ACTIONS,
            action_body: inline::<kb::ActionBody>(&mut gen),
            state: article_state(),
            current: Some(&queries::kb::ARTICLES),
        },
        Collection {
            path: "users",
            tag: "Users",
            what: "user",
            create_summary: "Register a user",
            create_allowed: Allowed::Roles(&[crate::auth::Role::Admin]),
            create_body: reference::<users::RegisterBody>(&mut gen),
            create_example: json!({
                "sub": "priya",
                "name": "Priya Raman",
                "email": "priya.raman@example.com",
                "roles": ["expert"]
            }),
            actions: users::ACTIONS,
            action_body: inline::<users::ActionBody>(&mut gen),
            state: user_state(),
            current: Some(&queries::users::USERS),
        },
    ];

    let mut paths = Map::new();
    paths.insert(
        "/healthz".into(),
        json!({ "get": {
            "tags": ["Operations"],
            "operationId": "healthz",
            "summary": "Liveness: 200 while the process runs",
            "security": [],
            "parameters": [header_ref("XRequestId")],
            "responses": {
                "200": json_response("The process is alive", json!({
                    "type": "object", "required": ["status"],
                    "properties": { "status": { "const": "ok" } }
                })),
            },
        }}),
    );
    paths.insert(
        "/readyz".into(),
        json!({ "get": {
            "tags": ["Operations"],
            "operationId": "readyz",
            "summary": "Readiness: the database answers and every migration is applied",
            "security": [],
            "parameters": [header_ref("XRequestId")],
            "responses": {
                "200": json_response("Ready", json!({
                    "type": "object", "required": ["status"],
                    "properties": { "status": { "const": "ready" } }
                })),
                "503": json_response("Not ready, with the reason", json!({
                    "type": "object", "required": ["status", "reason"],
                    "properties": { "status": { "const": "not_ready" }, "reason": { "type": "string" } }
                })),
            },
        }}),
    );
    paths.insert(
        "/metrics".into(),
        json!({ "get": {
            "tags": ["Operations"],
            "operationId": "metrics",
            "summary": "Prometheus text exposition",
            "security": [],
            "parameters": [header_ref("XRequestId")],
            "responses": {
                "200": {
                    "description": "The metrics",
                    "headers": { "X-Request-Id": { "$ref": "#/components/headers/XRequestId" } },
                    "content": { "text/plain": { "schema": { "type": "string" } } },
                },
            },
        }}),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "tags": ["Operations"],
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "parameters": [header_ref("XRequestId")],
            "responses": {
                "200": json_response("The OpenAPI 3.1 document", json!({ "type": "object" })),
            },
        }}),
    );
    paths.insert(
        "/api/v1/me".into(),
        json!({ "get": {
            "tags": ["Identity"],
            "operationId": "me",
            "summary": "Who the token says the caller is",
            "parameters": [header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "200": json_response("The caller", object(&[
                    ("user", json!({ "type": "string" })),
                    ("tenant", json!({ "type": "string" })),
                    ("roles", json!({ "type": "array", "items": { "type": "string" } })),
                ])) }),
                &[401, 429, 503],
            ),
        }}),
    );
    for c in &collections {
        add_collection(&mut paths, c);
    }
    for action in leads::ITEM_ACTIONS {
        let (item, _) = item_param(action.name);
        let mut operation = action_operation(
            "leads",
            "Leads",
            "lead",
            action,
            &inline::<leads::ActionBody>(&mut gen),
        );
        push_parameter(
            &mut operation,
            json!({
                "name": item, "in": "path", "required": true,
                "description": "The item's id",
                "schema": { "type": "string", "format": "uuid" },
            }),
        );
        paths.insert(
            format!("/api/v1/leads/{{id}}/{}", action.name),
            json!({ "post": operation }),
        );
    }
    for c in &collections {
        let mut actions: Vec<&Action> = c.actions.iter().collect();
        if c.path == "leads" {
            actions.extend(leads::ITEM_ACTIONS);
        }
        add_links(&mut paths, c.path, &actions);
    }
    add_item_links(&mut paths);
    add_policies(&mut paths, &mut gen);
    add_events(&mut paths);
    add_admin(&mut paths);
    add_experts(&mut paths);
    add_notifications(&mut paths, &mut gen);
    add_audit(&mut paths);
    add_search(&mut paths);

    let mut schemas = Map::new();
    for (name, schema) in gen.take_definitions() {
        schemas.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    for (name, fields) in COMPONENTS_EXACTLY_ONE_OF {
        if let Some(schema) = schemas.get_mut(*name) {
            schema["oneOf"] = fields.iter().map(|f| json!({ "required": [f] })).collect();
        }
    }
    schemas.extend(shared_schemas());

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Chronicle",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of Chronicle, an event-sourced backend for sales and \
                service delivery. Everything under `/api/v1` needs a bearer JWT and is scoped \
                to the token's tenant; another tenant's entity answers 404. Commands answer \
                `{id, version, position}` with the stream version as `ETag`; send `If-Match` \
                for optimistic concurrency and `Idempotency-Key` for safe retries. Every \
                error is `{\"error\": {\"code\", \"message\", \"details\"}}`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "tags": [
            { "name": "Tickets" }, { "name": "Leads" }, { "name": "Contracts" },
            { "name": "Approvals" }, { "name": "Knowledge base" }, { "name": "Users" },
            { "name": "Policies" }, { "name": "Search" }, { "name": "Notifications" },
            { "name": "Audit" }, { "name": "Admin" }, { "name": "Identity" },
            { "name": "Operations" },
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT with `sub`, `tenant`, `roles` and `exp`: a local \
                        HS256 token (`chronicle token`) or an OIDC token (RS256, ES256).",
                },
            },
            "schemas": schemas,
            "parameters": parameters(),
            "headers": headers(),
            "responses": error_responses(),
        },
    })
}

/// `T`'s schema as a `$ref` into `components/schemas`.
fn reference<T: JsonSchema>(gen: &mut SchemaGenerator) -> Value {
    serde_json::to_value(gen.subschema_for::<T>()).unwrap_or_default()
}

/// `T`'s own schema inline (nested types as `$ref`s).
fn inline<T: JsonSchema>(gen: &mut SchemaGenerator) -> Value {
    serde_json::to_value(T::json_schema(gen)).unwrap_or_default()
}

fn add_collection(paths: &mut Map<String, Value>, c: &Collection) {
    let base = format!("/api/v1/{}", c.path);
    let create = json!({
        "tags": [c.tag],
        "operationId": format!("{}.create", c.path.replace('/', ".")),
        "summary": c.create_summary,
        "description": format!("Who: {}.", c.create_allowed.describe()),
        "parameters": command_parameters(),
        "requestBody": {
            "required": true,
            "content": { "application/json": {
                "schema": c.create_body,
                "examples": { "example": { "value": c.create_example } },
            } },
        },
        "responses": with_errors(
            json!({ "201": command_answer(true) }),
            &[400, 401, 403, 409, 412, 413, 415, 422, 429, 503],
        ),
    });
    paths.insert(base.clone(), json!({ "post": create }));
    let mut parameters = vec![
        id_param(c.what),
        header_ref("XRequestId"),
        json!({
            "name": "as_of", "in": "query",
            "description": "An RFC 3339 time: the state folded from the events recorded \
                until then",
            "schema": { "type": "string", "format": "date-time" },
        }),
        json!({
            "name": "at_version", "in": "query",
            "description": "A stream version: the state folded from the events up to it",
            "schema": { "type": "integer", "minimum": 0 },
        }),
    ];
    let (summary, description, answer) = match c.current {
        Some(resource) => {
            parameters.extend(min_position_parameters());
            (
                format!("The {}: current, or as of a time or stream version", c.what),
                format!(
                    "Without `as_of` and `at_version`: the current {} from the read model \
                    `{}` (who sees which: as its list), with `ETag` and \
                    `X-Chronicle-Position`; `min_position` waits for a command's \
                    position. With one of them (not both): the state folded from the \
                    events (auditor, manager, and admin).",
                    c.what, resource.table
                ),
                json!({ "anyOf": [
                    c.state.clone(),
                    read_row(resource),
                ] }),
            )
        }
        None => (
            format!("The {} as of a time or stream version", c.what),
            "Folded from the entity's events up to `as_of` or `at_version` (give exactly \
                one). Who: auditor, manager (and admin)."
                .to_owned(),
            c.state.clone(),
        ),
    };
    let mut ok = json_response(&format!("The {}'s state", c.what), answer);
    ok["headers"]["ETag"] = json!({ "$ref": "#/components/headers/ETag" });
    ok["headers"]["X-Chronicle-Position"] =
        json!({ "$ref": "#/components/headers/XChroniclePosition" });
    paths.insert(
        format!("{base}/{{id}}"),
        json!({ "get": {
            "tags": ["Audit", c.tag],
            "operationId": format!("{}.state_at", c.path.replace('/', ".")),
            "summary": summary,
            "description": description,
            "parameters": parameters,
            "responses": with_errors(json!({ "200": ok }), &[400, 401, 403, 404, 429, 503]),
        }}),
    );
    if let Some(resource) = c.current {
        let mut list = list_operation(c.path, c.tag, resource);
        list["operationId"] = json!(format!("{}.list", c.path.replace('/', ".")));
        if let Some(item) = paths.get_mut(&base) {
            item["get"] = list;
        }
    }
    paths.insert(
        format!("{base}/{{id}}/history"),
        json!({ "get": {
            "tags": ["Audit", c.tag],
            "operationId": format!("{}.history", c.path.replace('/', ".")),
            "summary": format!("Every event of the {} with its metadata", c.what),
            "description": "Paginated by stream version. Who: auditor, manager (and admin).",
            "parameters": [
                id_param(c.what),
                header_ref("XRequestId"),
                {
                    "name": "from_version", "in": "query",
                    "description": "The first stream version to return (default 1)",
                    "schema": { "type": "integer", "minimum": 0 },
                },
                {
                    "name": "limit", "in": "query",
                    "description": "At most this many events (default 100)",
                    "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                },
            ],
            "responses": with_errors(
                json!({ "200": json_response("A page of the history", json!({ "$ref": "#/components/schemas/History" })) }),
                &[400, 401, 403, 404, 429, 503],
            ),
        }}),
    );
    for action in c.actions {
        paths.insert(
            format!("{base}/{{id}}/{}", action.name),
            json!({ "post": action_operation(c.path, c.tag, c.what, action, &c.action_body) }),
        );
    }
}

/// `POST /api/v1/<collection>/{id}/<action>`.
fn action_operation(
    collection: &str,
    tag: &str,
    what: &str,
    action: &Action,
    body: &Value,
) -> Value {
    let mut properties = Map::new();
    for field in action.fields {
        if let Some(schema) = body["properties"].get(*field) {
            properties.insert((*field).to_owned(), schema.clone());
        }
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "required": action.required,
        "additionalProperties": false,
    });
    if let Some((_, _, fields)) = EXACTLY_ONE_OF
        .iter()
        .find(|(c, a, _)| *c == collection && *a == action.name)
    {
        schema["oneOf"] = fields.iter().map(|f| json!({ "required": [f] })).collect();
    }
    if collection == "approvals" && action.name == "decisions" {
        // The handler requires a comment to reject or request changes.
        schema["anyOf"] = json!([
            { "properties": { "decision": { "const": "approve" } } },
            { "required": ["comment"] },
        ]);
    }
    let operation_id = format!(
        "{}.{}",
        collection.replace('/', "."),
        action.name.replace(['{', '}'], "").replace(['/', '-'], "_")
    );
    let description = format!(
        "Who: {}. {}",
        action.allowed.describe(),
        if action.required.is_empty() {
            "The body is optional.".to_owned()
        } else {
            format!("Required: {}.", action.required.join(", "))
        }
    );
    let parameters: Vec<Value> = [id_param(what)]
        .into_iter()
        .chain(command_parameters())
        .collect();
    json!({
        "tags": [tag],
        "operationId": operation_id,
        "summary": action.summary,
        "description": description,
        "parameters": parameters,
        "requestBody": {
            "required": !action.required.is_empty(),
            "content": { "application/json": { "schema": schema } },
        },
        "responses": with_errors(
            json!({ "200": command_answer(false) }),
            &[400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503],
        ),
    })
}

/// `tickets.assign`, `leads.tasks_task_id_assign`.
fn action_operation_id(collection: &str, action: &Action) -> String {
    format!(
        "{}.{}",
        collection.replace('/', "."),
        action.name.replace(['{', '}'], "").replace(['/', '-'], "_")
    )
}

/// OpenAPI links from every command answer of a collection to its reads
/// and its actions, so that clients (and the fuzzer) can follow an entity
/// from its creation: the entity's id is the answer's `id`.
fn add_links(paths: &mut Map<String, Value>, collection: &str, actions: &[&Action]) {
    let prefix = collection.replace('/', ".");
    let id = "$response.body#/id";
    let mut links = Map::new();
    links.insert(
        "state".into(),
        json!({
            "operationId": format!("{prefix}.state_at"),
            "parameters": { "id": id, "at_version": "$response.body#/version" },
            "description": "The entity as of the version this command made",
        }),
    );
    links.insert(
        "history".into(),
        json!({ "operationId": format!("{prefix}.history"), "parameters": { "id": id } }),
    );
    for action in actions {
        if action.name.contains('/') {
            continue;
        }
        let operation_id = action_operation_id(collection, action);
        links.insert(
            operation_id.clone(),
            json!({ "operationId": operation_id, "parameters": { "id": id } }),
        );
    }
    let base = format!("/api/v1/{collection}");
    for (path, item) in paths.iter_mut() {
        let own = path == &base
            || path
                .strip_prefix(&format!("{base}/{{id}}/"))
                .is_some_and(|rest| rest != "history");
        if !own {
            continue;
        }
        for status in ["200", "201"] {
            if let Some(response) = item
                .get_mut("post")
                .and_then(|op| op["responses"].get_mut(status))
            {
                response["links"] = Value::Object(links.clone());
            }
        }
    }
}

/// Links from the actions that add an item to a lead (`tasks`, `defects`)
/// to the actions on that item, by the item id the request chose.
fn add_item_links(paths: &mut Map<String, Value>) {
    for action in leads::ITEM_ACTIONS {
        let (item, collection) = item_param(action.name);
        let from = format!("/api/v1/leads/{{id}}/{collection}");
        let operation_id = action_operation_id("leads", action);
        if let Some(response) = paths
            .get_mut(&from)
            .and_then(|p| p.get_mut("post"))
            .and_then(|op| op["responses"].get_mut("200"))
        {
            response["links"][operation_id.as_str()] = json!({
                "operationId": operation_id,
                "parameters": { "id": "$response.body#/id", item: format!("$request.body#/{item}") },
            });
        }
    }
}

/// `tasks/{task_id}/assign` → (`task_id`, `tasks`).
fn item_param(name: &str) -> (&str, &str) {
    let mut parts = name.split('/');
    let collection = parts.next().unwrap_or("");
    let item = parts
        .next()
        .unwrap_or("")
        .trim_start_matches('{')
        .trim_end_matches('}');
    (item, collection)
}

fn push_parameter(operation: &mut Value, parameter: Value) {
    if let Some(list) = operation["parameters"].as_array_mut() {
        list.insert(1, parameter);
    }
}

/// `?min_position=` and its header: read-your-writes on the read models.
fn min_position_parameters() -> Vec<Value> {
    vec![
        json!({
            "name": "min_position", "in": "query",
            "description": format!(
                "Wait (at most {} s) until the read model has applied the event at this \
                global position (a command's `position`); 503 `projection_lagging` if it \
                has not",
                queries::MAX_WAIT.as_secs()
            ),
            "schema": { "type": "integer", "minimum": 0 },
        }),
        json!({
            "name": queries::MIN_POSITION_HEADER, "in": "header",
            "description": "The same as `min_position`",
            "schema": { "type": "string", "pattern": "^\\s*[0-9]+\\s*$" },
        }),
    ]
}

/// A row of a read model, as the database renders it.
fn read_row(resource: &Resource) -> Value {
    json!({
        "type": "object",
        "description": format!(
            "A row of `{}` (its columns are described in `migrations/`), keyed by `{}`",
            resource.table, resource.id_column
        ),
        "required": [resource.id_column],
    })
}

/// `GET /api/v1/<collection>`: a page of a read model, with its filters and
/// sorts as [`Resource`] declares them.
fn list_operation(collection: &str, tag: &str, resource: &Resource) -> Value {
    let mut sorts: Vec<String> = Vec::new();
    for sort in resource.sorts {
        sorts.push(sort.name.to_owned());
        sorts.push(format!("-{}", sort.name));
    }
    let mut parameters = vec![
        header_ref("XRequestId"),
        json!({
            "name": "limit", "in": "query",
            "description": format!("At most this many items (default {})", queries::DEFAULT_LIMIT),
            "schema": { "type": "integer", "minimum": 1, "maximum": queries::MAX_LIMIT },
        }),
        json!({
            "name": "cursor", "in": "query",
            "description": "Where the previous page ended: its `next_cursor` (with the same `sort`)",
            "schema": { "type": "string" },
        }),
        json!({
            "name": "sort", "in": "query",
            "description": format!(
                "The order: a key, `-` first for descending (default `{}`)",
                resource.default_sort
            ),
            "schema": { "type": "string", "enum": sorts },
        }),
    ];
    parameters.extend(min_position_parameters());
    for filter in resource.filters {
        match filter.kind {
            FilterKind::TimeRange => {
                for (suffix, what) in [("from", "at or after"), ("to", "before")] {
                    parameters.push(json!({
                        "name": format!("{}_{suffix}", filter.param), "in": "query",
                        "description": format!("`{}` {what} this RFC 3339 time", filter.column),
                        "schema": { "type": "string", "format": "date-time" },
                    }));
                }
            }
            FilterKind::Uuid => parameters.push(json!({
                "name": filter.param, "in": "query",
                "description": format!(
                    "`{}` is one of these comma-separated UUIDs (`me`: the caller)",
                    filter.column
                ),
                "schema": { "type": "string" },
            })),
            FilterKind::Text | FilterKind::TextIn => parameters.push(json!({
                "name": filter.param, "in": "query",
                "description": format!("`{}` is one of these comma-separated values", filter.column),
                "schema": { "type": "string" },
            })),
        }
    }
    for (name, description) in LIST_EXTRAS
        .iter()
        .filter(|(c, _, _)| *c == collection)
        .map(|(_, n, d)| (n, d))
    {
        parameters.push(json!({
            "name": name, "in": "query", "description": description,
            "schema": { "type": "string" },
        }));
    }
    let mut ok = json_response(
        "A page",
        object(&[
            ("items", array(read_row(resource))),
            (
                "next_cursor",
                json!({ "type": ["string", "null"], "description": "The next page's `cursor`; null on the last page" }),
            ),
            (
                "position",
                json!({ "type": "integer", "minimum": 0, "description": "The global position the page reflects" }),
            ),
        ]),
    );
    ok["headers"]["X-Chronicle-Position"] =
        json!({ "$ref": "#/components/headers/XChroniclePosition" });
    json!({
        "tags": [tag],
        "summary": format!("List {}s from the read model", resource.what),
        "description": format!(
            "Rows of `{}` the caller may see, keyset-paginated. Unknown parameters are \
            refused (400).",
            resource.table
        ),
        "parameters": parameters,
        "responses": with_errors(json!({ "200": ok }), &[400, 401, 403, 429, 503]),
    })
}

/// Parameters a list's `custom` function takes:
/// `(collection, name, description)`.
const LIST_EXTRAS: &[(&str, &str, &str)] = &[
    (
        "approvals",
        "pending_for",
        "`me`: the open approvals whose current level awaits the caller's decision",
    ),
    (
        "users",
        "email",
        "The user's email is one of these comma-separated addresses (ignoring case)",
    ),
    (
        "contracts",
        "ends_from",
        "The term ends on or after this date (`2027-01-31`, or an RFC 3339 time: the first \
         midnight UTC at or after it)",
    ),
    (
        "contracts",
        "ends_to",
        "The term ends before this date (`2027-01-31`, or an RFC 3339 time: the first \
         midnight UTC at or after it)",
    ),
];

/// `/api/v1/experts`: the experts' read model (skills, availability).
fn add_experts(paths: &mut Map<String, Value>) {
    let resource = &queries::users::EXPERTS;
    let mut list = list_operation("experts", "Users", resource);
    list["operationId"] = json!("experts.list");
    paths.insert("/api/v1/experts".into(), json!({ "get": list }));
    let mut parameters = vec![id_param("expert"), header_ref("XRequestId")];
    parameters.extend(min_position_parameters());
    let mut ok = json_response("The expert", read_row(resource));
    ok["headers"]["ETag"] = json!({ "$ref": "#/components/headers/ETag" });
    ok["headers"]["X-Chronicle-Position"] =
        json!({ "$ref": "#/components/headers/XChroniclePosition" });
    paths.insert(
        "/api/v1/experts/{id}".into(),
        json!({ "get": {
            "tags": ["Users"],
            "operationId": "experts.one",
            "summary": "One expert from the read model",
            "description": format!("A row of `{}`.", resource.table),
            "parameters": parameters,
            "responses": with_errors(json!({ "200": ok }), &[400, 401, 403, 404, 429, 503]),
        }}),
    );
}

/// `/api/v1/admin/projections`: operating the projections (admins).
fn add_admin(paths: &mut Map<String, Value>) {
    let name = json!({
        "name": "name", "in": "path", "required": true,
        "description": "The projection's name",
        "schema": { "type": "string" },
    });
    paths.insert(
        "/api/v1/admin/projections".into(),
        json!({ "get": {
            "tags": ["Admin"],
            "operationId": "admin.projections",
            "summary": "Position, head, lag and state of each projection",
            "description": "Who: admin only.",
            "parameters": [header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "200": json_response("The projections", object(&[
                    ("projections", array(json!({ "type": "object" }))),
                ])) }),
                &[401, 403, 429, 503],
            ),
        }}),
    );
    paths.insert(
        "/api/v1/admin/projections/{name}/rebuild".into(),
        json!({ "post": {
            "tags": ["Admin"],
            "operationId": "admin.rebuild",
            "summary": "Rebuild a projection into new tables and swap them in",
            "description": "Who: admin only. The projection's owner does the work; follow \
                it in the status list. 409 `projection.not_rebuildable` for the seal.",
            "parameters": [name.clone(), header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "202": json_response("Requested", object(&[
                    ("projection", string()),
                    ("rebuild_requested", json!({ "const": true })),
                    ("status", string()),
                ])) }),
                &[401, 403, 404, 409, 429, 503],
            ),
        }}),
    );
    paths.insert(
        "/api/v1/admin/projections/{name}/resume".into(),
        json!({ "post": {
            "tags": ["Admin"],
            "operationId": "admin.resume",
            "summary": "Retry the event a stopped projection could not apply",
            "description": "Who: admin only.",
            "parameters": [name, header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "200": json_response("Done", object(&[
                    ("projection", string()),
                    ("resumed", boolean()),
                ])) }),
                &[401, 403, 404, 429, 503],
            ),
        }}),
    );
}

/// `/api/v1/audit/*` and `/api/v1/events/export`.
fn add_audit(paths: &mut Map<String, Value>) {
    let hex64 = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let problem = nullable(object(&[
        ("position", count()),
        (
            "kind",
            json!({ "type": "string", "enum": ["modified", "deleted", "inserted", "chain", "signature"] }),
        ),
        ("detail", string()),
    ]));
    paths.insert(
        "/api/v1/audit/verify".into(),
        json!({ "get": {
            "tags": ["Audit"],
            "operationId": "audit.verify",
            "summary": "Verify the event log against its seal",
            "description": "Who: auditor (and admin). Recomputes every event's digest and the \
                chain from the signed checkpoint at or before `from` and compares them with the \
                seal; `ok` false names the first position where they part (`modified`, \
                `deleted`, `inserted`, `chain`, `signature`). Reads the whole log from there: \
                pass `from` to verify what is new since a checkpoint you hold.",
            "parameters": [
                header_ref("XRequestId"),
                {
                    "name": "from", "in": "query",
                    "description": "Start at the signed checkpoint at or before this position",
                    "schema": { "type": "integer", "minimum": 0 },
                },
            ],
            "responses": with_errors(
                json!({ "200": json_response("The verification", object(&[
                    ("ok", boolean()),
                    ("key_id", string()),
                    ("from", count()),
                    ("sealed_through", count()),
                    ("events_checked", count()),
                    ("checkpoints_checked", count()),
                    ("problem", problem),
                ])) }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
    let checkpoint = object(&[
        ("position", count()),
        ("events", count()),
        ("chain", hex64.clone()),
        ("sealed_at", date_time()),
        ("sealed_at_us", json!({ "type": "integer" })),
        ("key_id", string()),
        (
            "signature",
            json!({ "type": "string", "pattern": "^[0-9a-f]{128}$" }),
        ),
    ]);
    paths.insert(
        "/api/v1/audit/checkpoints".into(),
        json!({ "get": {
            "tags": ["Audit"],
            "operationId": "audit.checkpoints",
            "summary": "The seal's signed checkpoints, with the public key",
            "description": "Who: auditor (and admin). Keep them outside the system: each \
                signature (Ed25519, `public_key`) covers \
                `chronicle-seal-v1|<position>|<events>|<chain hex>|<sealed_at_us>`.",
            "parameters": [
                header_ref("XRequestId"),
                {
                    "name": "after", "in": "query",
                    "description": "Checkpoints after this position",
                    "schema": { "type": "integer", "minimum": 0 },
                },
                {
                    "name": "limit", "in": "query",
                    "description": "At most this many (1 to 1000, default 100)",
                    "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                },
            ],
            "responses": with_errors(
                json!({ "200": json_response("A page of checkpoints", object(&[
                    ("public_key", hex64),
                    ("key_id", string()),
                    ("signed_message", string()),
                    ("items", array(checkpoint)),
                    ("next_after", count()),
                ])) }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
    paths.insert(
        "/api/v1/subjects/{id}/erase".into(),
        json!({ "post": {
            "tags": ["Audit"],
            "operationId": "subjects.erase",
            "summary": "Erase a data subject's personal data (crypto-shredding)",
            "description": "Who: admin only. Records `data_subject.erased`, destroys the \
                subject's data keys (a person's id, or a lead's or contract's for its \
                contacts): their personal fields in every stored event read as erased from \
                then on (history, exports, folds), and the projections that hold personal \
                data are rebuilt (`rebuilding`; follow them in the projection status). The \
                events and the seal are unchanged.",
            "parameters": [id_param("subject"), header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "202": json_response("Erased; rebuilds requested", object(&[
                    ("subject", uuid()),
                    ("keys_destroyed", count()),
                    ("position", count()),
                    ("rebuilding", array(string())),
                    ("status", string()),
                ])) }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
    let bound = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "description": description,
            "schema": { "type": "string", "pattern": "^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}T.+)$" },
        })
    };
    paths.insert(
        "/api/v1/events/export".into(),
        json!({ "get": {
            "tags": ["Audit"],
            "operationId": "events.export",
            "summary": "Export the tenant's events as self-verifying NDJSON",
            "description": "Who: auditor (and admin). One `{\"event\": {...}}` line per event \
                in global order (with its sealed digest), then one `{\"manifest\": {...}}` line: \
                count, first and last position, the SHA-256 chain of the event lines, the seal's \
                chain at the last position, the public key and an Ed25519 signature. \
                `chronicle audit verify-export FILE` checks it.",
            "parameters": [
                header_ref("XRequestId"),
                bound("from", "From this position or RFC 3339 time (inclusive)"),
                bound("to", "Up to this position or RFC 3339 time (inclusive)"),
            ],
            "responses": with_errors(
                json!({ "200": {
                    "description": "The export, streamed",
                    "headers": { "X-Request-Id": { "$ref": "#/components/headers/XRequestId" } },
                    "content": { "application/x-ndjson": { "schema": { "type": "string" } } },
                } }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
}

/// `/api/v1/me/notification*` and `/api/v1/notifications/deliveries*`.
fn add_notifications(paths: &mut Map<String, Value>, gen: &mut SchemaGenerator) {
    let schema = reference::<notifications::PreferencesBody>(gen);
    let kinds: Vec<&str> = chronicle_domain::notification::NotificationKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let kind = json!({ "type": "string", "enum": kinds });
    let page = |name: &str, description: &str, values: Option<&[&str]>| {
        let schema = match values {
            Some(values) => {
                json!({ "type": "string", "pattern": format!("^({0})(,({0}))*$", values.join("|")) })
            }
            None => json!({ "type": "string" }),
        };
        json!({ "name": name, "in": "query", "description": description, "schema": schema })
    };
    let limit = json!({
        "name": "limit", "in": "query",
        "description": format!("Items per page (1 to {}, default {})", queries::MAX_LIMIT, queries::DEFAULT_LIMIT),
        "schema": { "type": "integer", "minimum": 1, "maximum": queries::MAX_LIMIT },
    });
    let cursor = page(
        "cursor",
        "Where the previous page ended (its `next_cursor`)",
        None,
    );
    let with_headers = |description: &str, schema: Value| {
        let mut ok = json_response(description, schema);
        ok["headers"]["X-Chronicle-Position"] =
            json!({ "$ref": "#/components/headers/XChroniclePosition" });
        ok
    };

    let read = object(&[
        ("id", uuid()),
        ("version", count()),
        ("position", count()),
        ("updated_at", nullable(date_time())),
        (
            "default",
            json!({ "type": "boolean", "description": "Never set: every kind, in-app only" }),
        ),
        ("preferences", schema.clone()),
    ]);
    paths.insert(
        "/api/v1/me/notification-preferences".into(),
        json!({
            "get": {
                "tags": ["Notifications"],
                "operationId": "notification_preferences.get",
                "summary": "The caller's notification preferences",
                "description": "Who: any authenticated caller, for themself.",
                "parameters": [header_ref("XRequestId")],
                "responses": with_errors(
                    json!({ "200": {
                        "description": "The preferences in force",
                        "headers": {
                            "ETag": { "$ref": "#/components/headers/ETag" },
                            "X-Request-Id": { "$ref": "#/components/headers/XRequestId" },
                        },
                        "content": { "application/json": { "schema": read } },
                    } }),
                    &[401, 429, 503],
                ),
            },
            "put": {
                "tags": ["Notifications"],
                "operationId": "notification_preferences.put",
                "summary": "Replace the caller's notification preferences",
                "description": "Who: any authenticated caller, for themself. Kinds not listed \
                    are not sent on any channel. Webhooks are POSTed with \
                    `Chronicle-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">` and \
                    `Chronicle-Delivery: <id>`.",
                "parameters": command_parameters(),
                "requestBody": {
                    "required": true,
                    "content": { "application/json": {
                        "schema": schema,
                        "examples": { "example": { "value": {
                            "kinds": ["assignment", "sla_breach", "survey"],
                            "in_app": true,
                            "email": "priya.raman@example.com",
                            "webhook_url": "https://hooks.example.com/chronicle"
                        } } },
                    } },
                },
                "responses": with_errors(
                    json!({ "200": command_answer(false) }),
                    &[400, 401, 409, 412, 413, 415, 422, 429, 503],
                ),
            },
        }),
    );

    let notification = object(&[
        ("id", uuid()),
        ("kind", kind.clone()),
        ("title", string()),
        ("body", string()),
        ("subject", object(&[("type", string()), ("id", uuid())])),
        (
            "event",
            object(&[("id", uuid()), ("type", string()), ("position", count())]),
        ),
        ("created_at", date_time()),
        ("read_at", nullable(date_time())),
    ]);
    let mut list_params = vec![
        header_ref("XRequestId"),
        json!({
            "name": "unread", "in": "query",
            "description": "Only those not marked read",
            "schema": { "type": "string", "enum": ["true", "false"] },
        }),
        page("kind", "Only these comma-separated kinds", Some(&kinds)),
        limit.clone(),
        cursor.clone(),
    ];
    list_params.extend(min_position_parameters());
    paths.insert(
        "/api/v1/me/notifications".into(),
        json!({ "get": {
            "tags": ["Notifications"],
            "operationId": "notifications.mine",
            "summary": "The caller's in-app notifications, newest first",
            "description": "Who: any authenticated caller, for themself. From \
                `read.notifications` (projection `notifications`).",
            "parameters": list_params,
            "responses": with_errors(
                json!({ "200": with_headers("A page of notifications", object(&[
                    ("items", array(notification)),
                    ("next_cursor", nullable(string())),
                    ("unread", count()),
                    ("position", count()),
                ])) }),
                &[400, 401, 429, 503],
            ),
        }}),
    );
    paths.insert(
        "/api/v1/me/notifications/{id}/read".into(),
        json!({ "post": {
            "tags": ["Notifications"],
            "operationId": "notifications.read",
            "summary": "Mark one of the caller's notifications read",
            "description": "Who: the person it is for. Marking it again keeps the first time.",
            "parameters": [id_param("notification"), header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "200": json_response("Marked", object(&[
                    ("id", uuid()),
                    ("read_at", date_time()),
                ])) }),
                &[401, 404, 429, 503],
            ),
        }}),
    );

    let delivery = object(&[
        ("id", uuid()),
        ("notification_id", uuid()),
        ("user_id", uuid()),
        (
            "channel",
            json!({ "type": "string", "enum": ["email", "webhook"] }),
        ),
        (
            "target",
            json!({ "type": "string", "description": "The webhook URL, or the email address with its local part hidden" }),
        ),
        ("kind", kind),
        ("title", string()),
        (
            "status",
            json!({ "type": "string", "enum": ["pending", "retrying", "delivered", "dead"] }),
        ),
        ("attempts", count()),
        ("next_attempt_at", nullable(date_time())),
        ("last_error", nullable(string())),
        ("delivered_at", nullable(date_time())),
        ("created_at", date_time()),
        ("updated_at", date_time()),
    ]);
    let mut delivery_params = vec![
        header_ref("XRequestId"),
        page(
            "status",
            "Only these comma-separated states",
            Some(&["pending", "retrying", "delivered", "dead"]),
        ),
        page(
            "channel",
            "Only these comma-separated channels",
            Some(&["email", "webhook"]),
        ),
        limit,
        cursor,
    ];
    delivery_params.extend(min_position_parameters());
    paths.insert(
        "/api/v1/notifications/deliveries".into(),
        json!({ "get": {
            "tags": ["Notifications"],
            "operationId": "deliveries.list",
            "summary": "Email and webhook deliveries with their state, newest first",
            "description": "Who: manager (and admin).",
            "parameters": delivery_params,
            "responses": with_errors(
                json!({ "200": with_headers("A page of deliveries", object(&[
                    ("items", array(delivery)),
                    ("next_cursor", nullable(string())),
                    ("position", count()),
                ])) }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
    let per_channel = json!({
        "type": "object",
        "properties": {
            "pending": count(), "retrying": count(), "delivered": count(), "dead": count(),
            "attempts": count(), "delivered_last_hour": count(), "delivered_last_day": count(),
            "success_rate": nullable(json!({ "type": "number", "minimum": 0, "maximum": 1 })),
            "attempts_per_delivery": nullable(json!({ "type": "number", "minimum": 0 })),
        },
    });
    paths.insert(
        "/api/v1/notifications/deliveries/stats".into(),
        json!({ "get": {
            "tags": ["Notifications"],
            "operationId": "deliveries.stats",
            "summary": "Deliveries by channel and state, with rates",
            "description": "Who: manager (and admin). `success_rate` is delivered over \
                finished (delivered or dead).",
            "parameters": [header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "200": json_response("The figures", object(&[
                    ("channels", json!({ "type": "object", "additionalProperties": per_channel })),
                ])) }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
    paths.insert(
        "/api/v1/notifications/deliveries/{id}/retry".into(),
        json!({ "post": {
            "tags": ["Notifications"],
            "operationId": "deliveries.retry",
            "summary": "Try a dead (or retrying) delivery again now, with fresh attempts",
            "description": "Who: manager (and admin). 409 `delivery.not_failed` for a \
                pending or delivered one.",
            "parameters": [id_param("delivery"), header_ref("XRequestId")],
            "responses": with_errors(
                json!({ "202": json_response("Requeued", object(&[
                    ("id", uuid()),
                    ("status", json!({ "const": "pending" })),
                ])) }),
                &[401, 403, 404, 409, 429, 503],
            ),
        }}),
    );
}

/// `GET /api/v1/search`: full-text search (see `search.rs`).
fn add_search(paths: &mut Map<String, Value>) {
    use chronicle_search::query::{DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_CHARS};
    use chronicle_search::schema::USER_FIELDS;
    let fields: Vec<String> = USER_FIELDS
        .iter()
        .map(|(name, what)| format!("`{name}` ({what})"))
        .collect();
    let mut parameters = vec![
        header_ref("XRequestId"),
        json!({
            "name": "q", "in": "query",
            "description": format!(
                "The query: words (all must match, stemmed, in titles, bodies, parties, \
                tags, products, categories and comments; titles count most), \
                \"phrases\", prefix*, field:value, ranges (value:[100000 TO *]), \
                AND, OR, NOT or -, parentheses. Empty: everything the caller may see. \
                A malformed query is a 400 `search.invalid_query` whose message and \
                `details.position` say where. Fields: {}.",
                fields.join(", ")
            ),
            "schema": { "type": "string", "maxLength": MAX_QUERY_CHARS },
            "examples": {
                "words": { "value": "managed fibre" },
                "fields": { "value": "title:fibre AND status:active" },
            },
        }),
        json!({
            "name": "type", "in": "query",
            "description": "Only these types, comma-separated: `contract`, `kb`, `ticket`",
            "schema": { "type": "string", "pattern": "^\\s*(contract|kb|ticket)\\s*(,\\s*(contract|kb|ticket)\\s*)*$" },
        }),
        json!({
            "name": "status", "in": "query",
            "description": "Only these statuses, comma-separated (e.g. `active,signed`)",
            "schema": { "type": "string" },
        }),
        json!({
            "name": "limit", "in": "query",
            "description": format!("At most this many hits (default {DEFAULT_LIMIT})"),
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT },
        }),
        json!({
            "name": "cursor", "in": "query",
            "description": "The previous page's `next_cursor` (with the same q, type and status)",
            "schema": { "type": "string" },
        }),
    ];
    parameters.extend(min_position_parameters());
    let count_map = json!({ "type": "object", "additionalProperties": count() });
    let hit = object(&[
        (
            "type",
            json!({ "type": "string", "enum": ["contract", "kb", "ticket"] }),
        ),
        ("id", uuid()),
        ("title", string()),
        ("status", string()),
        (
            "snippet",
            json!({ "type": "string", "description": "HTML: the matching passage, escaped, \
                matched words in `<b>...</b>`" }),
        ),
        ("score", json!({ "type": "number" })),
    ]);
    let mut ok = json_response(
        "A page of hits, best first",
        object(&[
            ("hits", array(hit)),
            (
                "total",
                json!({ "type": "integer", "minimum": 0, "description": "Matching documents in all" }),
            ),
            (
                "facets",
                object(&[("type", count_map.clone()), ("status", count_map)]),
            ),
            (
                "next_cursor",
                json!({ "type": ["string", "null"], "description": "The next page's `cursor`; null on the last page" }),
            ),
            (
                "position",
                json!({ "type": "integer", "minimum": 0, "description": "The global position the index reflects" }),
            ),
        ]),
    );
    ok["headers"]["X-Chronicle-Position"] =
        json!({ "$ref": "#/components/headers/XChroniclePosition" });
    paths.insert(
        "/api/v1/search".into(),
        json!({ "get": {
            "tags": ["Search"],
            "operationId": "search",
            "summary": "Full-text search over contracts, knowledge articles and tickets",
            "description": "Who: every user, seeing only what they may: their tenant; \
                contracts as `GET /api/v1/contracts` lists them (managers, analysts \
                and admins all; others those they own or that are shared with \
                them or one of their roles); knowledge articles (retired ones leave the \
                index); tickets as `GET /api/v1/tickets` lists them (closed ones leave \
                the index). Hits, totals, facets and scores count only those. Unknown \
                parameters are refused (400). 503 while the index is not built yet.",
            "parameters": parameters,
            "responses": with_errors(json!({ "200": ok }), &[400, 401, 429, 503]),
        }}),
    );
}

fn add_policies(paths: &mut Map<String, Value>, gen: &mut SchemaGenerator) {
    let policies = [
        (
            "sla-policy",
            "SLA policy",
            reference::<policies::SlaBody>(gen),
            json!({
                "p1": { "time_to_assign_secs": 600, "time_to_first_response_secs": 1800, "time_to_resolve_secs": 7200 },
                "p2": { "time_to_assign_secs": 1800, "time_to_first_response_secs": 7200, "time_to_resolve_secs": 43200 },
                "p3": { "time_to_assign_secs": 7200, "time_to_first_response_secs": 14400, "time_to_resolve_secs": 172800 },
                "p4": { "time_to_assign_secs": 14400, "time_to_first_response_secs": 43200, "time_to_resolve_secs": 345600 }
            }),
        ),
        (
            "approval-policy",
            "approval policy",
            reference::<policies::ApprovalBody>(gen),
            json!({
                "rules": [{
                    "kind": "contract",
                    "thresholds": [
                        { "min_value_minor": 1_000_000, "levels": [
                            { "approvers": [{ "role": "approver" }], "required": 1, "due_secs": 86400 }
                        ] },
                        { "min_value_minor": 0, "levels": [] }
                    ]
                }]
            }),
        ),
    ];
    for (path, what, schema, example) in policies {
        let read = object(&[
            ("id", uuid()),
            ("version", count()),
            ("position", count()),
            ("updated_at", nullable(date_time())),
            (
                "default",
                json!({ "type": "boolean", "description": "No policy was set: the domain's default" }),
            ),
            ("policy", schema.clone()),
        ]);
        let operation_id = path.replace('-', "_");
        paths.insert(
            format!("/api/v1/{path}"),
            json!({
                "get": {
                    "tags": ["Policies"],
                    "operationId": format!("{operation_id}.get"),
                    "summary": format!("The tenant's {what} in force"),
                    "description": "Who: manager (and admin). `version` (and the `ETag`) \
                        covers both policies; 0 before anything was set.",
                    "parameters": [header_ref("XRequestId")],
                    "responses": with_errors(
                        json!({ "200": {
                            "description": format!("The {what}"),
                            "headers": {
                                "ETag": { "$ref": "#/components/headers/ETag" },
                                "X-Request-Id": { "$ref": "#/components/headers/XRequestId" },
                            },
                            "content": { "application/json": { "schema": read } },
                        } }),
                        &[401, 403, 429, 503],
                    ),
                },
                "put": {
                    "tags": ["Policies"],
                    "operationId": format!("{operation_id}.put"),
                    "summary": format!("Replace the tenant's {what}"),
                    "description": "Who: manager (and admin). Setting the same policy again \
                        records nothing.",
                    "parameters": command_parameters(),
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": {
                            "schema": schema,
                            "examples": { "example": { "value": example } },
                        } },
                    },
                    "responses": with_errors(
                        json!({ "200": command_answer(false) }),
                        &[400, 401, 403, 409, 412, 413, 415, 422, 429, 503],
                    ),
                },
            }),
        );
    }
}

fn add_events(paths: &mut Map<String, Value>) {
    paths.insert(
        "/api/v1/events".into(),
        json!({ "get": {
            "tags": ["Audit"],
            "operationId": "events",
            "summary": "The tenant's events in global order",
            "description": "Who: auditor (and admin). JSON by default; NDJSON (one event \
                per line, the next position in `X-Next-After`) with \
                `Accept: application/x-ndjson`. An empty page with `next_after` equal to \
                `after` means the feed is at its end for now.",
            "parameters": [
                header_ref("XRequestId"),
                {
                    "name": "after", "in": "query",
                    "description": "Return events after this global position (default 0)",
                    "schema": { "type": "integer", "minimum": 0, "maximum": crate::events::MAX_AFTER },
                },
                {
                    "name": "limit", "in": "query",
                    "description": "At most this many events (default 100)",
                    "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                },
            ],
            "responses": with_errors(
                json!({ "200": {
                    "description": "A page of the feed",
                    "headers": {
                        "X-Request-Id": { "$ref": "#/components/headers/XRequestId" },
                        "X-Next-After": {
                            "description": "NDJSON only: where the next page starts",
                            "schema": { "type": "integer", "minimum": 0 },
                        },
                    },
                    "content": {
                        "application/json": { "schema": object(&[
                            ("events", json!({ "type": "array", "items": { "$ref": "#/components/schemas/FeedEvent" } })),
                            ("next_after", count()),
                        ]) },
                        "application/x-ndjson": {
                            "schema": { "type": "string", "description": "One `FeedEvent` per line" },
                        },
                    },
                } }),
                &[400, 401, 403, 429, 503],
            ),
        }}),
    );
}

// ---------------------------------------------------------------------------
// Answers and errors
// ---------------------------------------------------------------------------

/// A command's answer: 201 with `Location` on create, 200 otherwise.
fn command_answer(created: bool) -> Value {
    let mut headers = json!({
        "ETag": { "$ref": "#/components/headers/ETag" },
        "X-Request-Id": { "$ref": "#/components/headers/XRequestId" },
        "Idempotent-Replayed": {
            "description": "`true` when this is the kept answer to an earlier request with \
                the same `Idempotency-Key`",
            "schema": { "type": "string", "const": "true" },
        },
    });
    if created {
        headers["Location"] = json!({
            "description": "The new entity: `/api/v1/<collection>/{id}`",
            "schema": { "type": "string" },
        });
    }
    json!({
        "description": if created { "Created" } else { "Done" },
        "headers": headers,
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/CommandAnswer" },
            "examples": { "answer": { "value": {
                "id": "0190a5b2-7c3d-7e4f-8a1b-0000000000aa", "version": 3, "position": 1042
            } } },
        } },
    })
}

/// `responses` plus the shared error answers for `statuses`.
fn with_errors(mut responses: Value, statuses: &[u16]) -> Value {
    for status in statuses {
        responses[status.to_string()] =
            json!({ "$ref": format!("#/components/responses/{status}") });
    }
    responses
}

fn error_responses() -> Value {
    let errors: [(u16, &str, &str, &str); 11] = [
        (
            400,
            "Malformed or invalid input: not JSON, the wrong shape, or invalid fields \
            (`details.fields` names each)",
            "validation_failed",
            "invalid fields: title",
        ),
        (
            401,
            "No bearer token, or a bad or expired one",
            "auth.missing_token",
            "no bearer token",
        ),
        (
            403,
            "The caller lacks every role that would do",
            "auth.forbidden",
            "this needs one of the roles: sales, manager",
        ),
        (
            404,
            "No such entity in the caller's tenant, or no such action",
            "not_found",
            "ticket not found",
        ),
        (
            409,
            "The domain refuses the command (its stable code), the entity kept changing, \
            or an idempotent request with the same key is still running",
            "ticket.not_assigned_expert",
            "the ticket is not assigned to you",
        ),
        (
            412,
            "`If-Match` named another version; nothing was written",
            "version_mismatch",
            "the entity is at version 4, not 3",
        ),
        (
            413,
            "The body exceeds the server's limit (`details.limit_bytes`)",
            "payload_too_large",
            "request body exceeds 1048576 bytes",
        ),
        (
            415,
            "A body without `Content-Type: application/json`",
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        (
            422,
            "An `Idempotency-Key` reused with another request",
            "idempotency.key_reused",
            "the idempotency key was used for another request",
        ),
        (
            429,
            "Over the per-user rate limit; `Retry-After` says when to retry",
            "rate_limited",
            "rate limit exceeded; retry in 3 s",
        ),
        (
            503,
            "The request took too long (`timeout`), a dependency is down (`unavailable`), or \
            the read models have not reached `min_position` yet (`projection_lagging`, with \
            `Retry-After`)",
            "timeout",
            "the request took longer than 30 s",
        ),
    ];
    let mut responses = Map::new();
    for (status, description, code, message) in errors {
        let details = match status {
            400 => json!({ "fields": { "title": "must not be empty" } }),
            412 => json!({ "expected": 3, "actual": 4 }),
            413 => json!({ "limit_bytes": 1_048_576 }),
            429 => json!({ "retry_after_secs": 3 }),
            _ => json!({}),
        };
        let mut headers = json!({ "X-Request-Id": { "$ref": "#/components/headers/XRequestId" } });
        if status == 429 || status == 503 {
            headers["Retry-After"] = json!({
                "description": "Seconds until a retry may pass",
                "schema": { "type": "integer", "minimum": 0 },
            });
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "headers": headers,
                "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" },
                    "examples": { "error": { "value": {
                        "error": { "code": code, "message": message, "details": details }
                    } } },
                } },
            }),
        );
    }
    Value::Object(responses)
}

fn parameters() -> Value {
    json!({
        "XRequestId": {
            "name": "X-Request-Id", "in": "header",
            "description": "The request's id for logs and event metadata. One of 1 to 128 \
                visible ASCII characters is used and echoed in the answer; any other value is \
                replaced by one the server makes.",
            "schema": { "type": "string" },
        },
        "IfMatch": {
            "name": "If-Match", "in": "header",
            "description": "Act only on this version of the entity, as its `ETag` \
                (`\"3\"`); another version answers 412 and writes nothing.",
            "schema": { "type": "string", "pattern": "^(W/)?\"?[0-9]{1,19}\"?$" },
            "example": "\"3\"",
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header",
            "description": "1 to 255 visible ASCII characters. The first answer is kept \
                per tenant and key for 24 hours and replayed for a retry of the same \
                request (`Idempotent-Replayed: true`); the same key with another request \
                is 422.",
            "schema": { "type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$" },
        },
    })
}

fn headers() -> Value {
    json!({
        "XRequestId": {
            "description": "The client's request id, or one the server made (UUIDv7)",
            "schema": { "type": "string" },
        },
        "ETag": {
            "description": "The entity's stream version, quoted (`\"3\"`)",
            "schema": { "type": "string" },
        },
        "XChroniclePosition": {
            "description": "The global event position the read model answer reflects",
            "schema": { "type": "string" },
        },
    })
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn command_parameters() -> Vec<Value> {
    vec![
        header_ref("XRequestId"),
        header_ref("IfMatch"),
        header_ref("IdempotencyKey"),
    ]
}

fn id_param(what: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("The {what}'s id"),
        "schema": { "type": "string", "format": "uuid" },
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": { "X-Request-Id": { "$ref": "#/components/headers/XRequestId" } },
        "content": { "application/json": { "schema": schema } },
    })
}

// ---------------------------------------------------------------------------
// Shapes of answers
// ---------------------------------------------------------------------------

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// `schema` or `null`.
fn nullable(schema: Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some(t) => {
            let mut schema = schema.clone();
            schema["type"] = json!([t, "null"]);
            schema
        }
        None => json!({ "anyOf": [schema, { "type": "null" }] }),
    }
}

/// An object whose every listed property is always present (`null` when
/// unknown), and no other.
fn object(properties: &[(&str, Value)]) -> Value {
    let names: Vec<&str> = properties.iter().map(|(n, _)| *n).collect();
    let map: Map<String, Value> = properties
        .iter()
        .map(|(n, s)| ((*n).to_owned(), s.clone()))
        .collect();
    json!({
        "type": "object",
        "required": names,
        "properties": map,
        "additionalProperties": false,
    })
}

/// The envelope every past state starts with, plus `fields`.
fn past_state(fields: &[(&str, Value)]) -> Value {
    let mut all = vec![
        ("id", uuid()),
        ("version", count()),
        ("position", count()),
        ("updated_at", nullable(date_time())),
    ];
    all.extend(fields.iter().cloned());
    object(&all)
}

fn money() -> Value {
    object(&[
        ("amount_minor", json!({ "type": "integer", "minimum": 0 })),
        ("currency", string()),
    ])
}

fn grantee() -> Value {
    json!({ "oneOf": [object(&[("user_id", uuid())]), object(&[("role", string())])] })
}

fn ticket_state(gen: &mut SchemaGenerator) -> Value {
    let priority = reference::<Priority>(gen);
    let stage = reference::<SlaStage>(gen);
    past_state(&[
        (
            "status",
            nullable(
                json!({ "type": "string", "enum": ["open", "assigned", "accepted", "in_progress", "resolved", "closed"] }),
            ),
        ),
        ("customer_id", nullable(uuid())),
        ("priority", nullable(priority)),
        ("expert_id", nullable(uuid())),
        ("rejected_by", array(uuid())),
        ("opened_at", nullable(date_time())),
        ("first_assigned_at", nullable(date_time())),
        ("first_response_at", nullable(date_time())),
        ("resolved_at", nullable(date_time())),
        ("sla_breached", array(stage)),
        ("escalation_level", count()),
        ("survey_id", nullable(uuid())),
        ("survey_answered", boolean()),
    ])
}

fn lead_state(gen: &mut SchemaGenerator) -> Value {
    let outcome = reference::<Outcome>(gen);
    past_state(&[
        ("stage", nullable(string())),
        ("owner", nullable(uuid())),
        (
            "score",
            nullable(json!({ "type": "integer", "minimum": 0, "maximum": 100 })),
        ),
        ("feasible", nullable(boolean())),
        ("design_version", count()),
        ("design_rejected", boolean()),
        ("pending_approval", nullable(uuid())),
        ("approved_design_version", nullable(count())),
        (
            "tasks",
            array(object(&[
                ("task_id", uuid()),
                ("assignee", nullable(uuid())),
                ("completed", boolean()),
            ])),
        ),
        ("passed_tests", count()),
        ("open_defects", array(uuid())),
        ("resolved_defects", array(uuid())),
        ("testing_passed", boolean()),
        ("outcome", nullable(outcome)),
    ])
}

fn contract_state() -> Value {
    past_state(&[
        ("status", string()),
        ("contract_version", count()),
        ("title", string()),
        (
            "parties",
            array(object(&[
                ("name", string()),
                (
                    "kind",
                    json!({ "type": "string", "enum": ["person", "organisation"] }),
                ),
                ("role", string()),
            ])),
        ),
        (
            "counterparty",
            object(&[
                ("organisation", string()),
                (
                    "contact",
                    object(&[("name", string()), ("email", string())]),
                ),
            ]),
        ),
        (
            "terms",
            object(&[
                ("value", money()),
                ("start_date", json!({ "type": "string", "format": "date" })),
                ("end_date", json!({ "type": "string", "format": "date" })),
            ]),
        ),
        ("body", string()),
        ("owner", uuid()),
        ("pending_approval", nullable(uuid())),
        ("rejection_reason", nullable(string())),
        ("signatory_name", nullable(string())),
        ("signed_at", nullable(date_time())),
        ("shared_with", array(grantee())),
    ])
}

fn approval_state() -> Value {
    past_state(&[
        ("status", nullable(string())),
        (
            "subject",
            nullable(object(&[
                (
                    "kind",
                    json!({ "type": "string", "enum": ["contract", "lead_design"] }),
                ),
                ("id", uuid()),
            ])),
        ),
        ("current_level", count()),
        (
            "levels",
            array(object(&[
                ("approvers", array(grantee())),
                ("required", count()),
                ("due_secs", nullable(count())),
                ("approvals", array(uuid())),
                ("decided", array(uuid())),
                ("opened_at", nullable(date_time())),
                ("due_at", nullable(date_time())),
                ("escalated", boolean()),
                ("completed", boolean()),
            ])),
        ),
    ])
}

fn article_state() -> Value {
    past_state(&[
        (
            "status",
            nullable(json!({ "type": "string", "enum": ["published", "retired"] })),
        ),
        ("revision", count()),
        ("title", nullable(string())),
        ("body", nullable(string())),
        ("tags", nullable(array(string()))),
    ])
}

fn user_state() -> Value {
    past_state(&[
        (
            "status",
            nullable(json!({ "type": "string", "enum": ["active", "deactivated"] })),
        ),
        ("roles", array(string())),
        ("skills", array(string())),
        ("available", boolean()),
    ])
}

/// Schemas every part of the document shares.
fn shared_schemas() -> Map<String, Value> {
    let metadata = json!({
        "type": "object",
        "description": "Who and what caused the event",
        "properties": {
            "actor": string(),
            "correlation_id": uuid(),
            "causation_id": uuid(),
            "request_id": string(),
            "source": string(),
        },
    });
    let data =
        json!({ "type": "object", "description": "The event's payload (see `event-schemas/`)" });
    let mut schemas = Map::new();
    schemas.insert(
        "CommandAnswer".into(),
        json!({
            "type": "object",
            "description": "A command's answer",
            "required": ["id", "version", "position"],
            "properties": {
                "id": { "type": "string", "format": "uuid", "description": "The entity's id" },
                "version": { "type": "integer", "minimum": 0, "description": "The entity's stream version after the command" },
                "position": { "type": "integer", "minimum": 0, "description": "The global position of the command's last event" },
            },
            "additionalProperties": false,
            "examples": [{ "id": "0190a5b2-7c3d-7e4f-8a1b-0000000000aa", "version": 3, "position": 1042 }],
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "Every error answer",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": { "type": "string", "description": "A stable machine code" },
                        "message": { "type": "string", "description": "For people" },
                        "details": { "type": "object", "description": "Per code, e.g. `fields`" },
                    },
                    "additionalProperties": false,
                },
            },
            "additionalProperties": false,
            "examples": [{ "error": {
                "code": "validation_failed",
                "message": "invalid fields: title",
                "details": { "fields": { "title": "must not be empty" } },
            } }],
        }),
    );
    schemas.insert(
        "History".into(),
        object(&[
            ("id", uuid()),
            (
                "events",
                array(object(&[
                    ("event_id", uuid()),
                    ("type", string()),
                    ("schema_version", count()),
                    ("stream_version", count()),
                    ("position", count()),
                    ("recorded_at", date_time()),
                    ("data", data.clone()),
                    ("metadata", metadata.clone()),
                ])),
            ),
            (
                "next_from_version",
                json!({ "type": ["integer", "null"], "minimum": 0, "description": "Where the next page starts; null on the last page" }),
            ),
        ]),
    );
    schemas.insert(
        "FeedEvent".into(),
        object(&[
            ("position", count()),
            ("event_id", uuid()),
            ("type", string()),
            ("schema_version", count()),
            ("tenant", string()),
            ("stream_id", string()),
            ("stream_type", string()),
            ("stream_version", count()),
            ("recorded_at", date_time()),
            ("data", data),
            ("metadata", metadata),
        ]),
    );
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field an action table names is a field of its body struct.
    #[test]
    fn action_tables_name_real_fields() {
        let mut gen = SchemaGenerator::default();
        let tables: [(&str, &[Action], Value); 7] = [
            (
                "tickets",
                tickets::ACTIONS,
                inline::<tickets::ActionBody>(&mut gen),
            ),
            (
                "leads",
                leads::ACTIONS,
                inline::<leads::ActionBody>(&mut gen),
            ),
            (
                "leads items",
                leads::ITEM_ACTIONS,
                inline::<leads::ActionBody>(&mut gen),
            ),
            (
                "contracts",
                contracts::ACTIONS,
                inline::<contracts::ActionBody>(&mut gen),
            ),
            (
                "approvals",
                approvals::ACTIONS,
                inline::<approvals::ActionBody>(&mut gen),
            ),
            ("kb", kb::ACTIONS, inline::<kb::ActionBody>(&mut gen)),
            (
                "users",
                users::ACTIONS,
                inline::<users::ActionBody>(&mut gen),
            ),
        ];
        for (name, actions, body) in tables {
            for action in actions {
                for field in action.fields {
                    assert!(
                        body["properties"].get(*field).is_some(),
                        "{name}: {} reads {field}, which its body does not have",
                        action.name
                    );
                }
                for field in action.required {
                    assert!(
                        action.fields.contains(field),
                        "{name}: {} requires {field} but does not list it",
                        action.name
                    );
                }
            }
        }
    }

    /// The documented limits are the domain's.
    #[test]
    fn documented_durations_are_the_domains() {
        let max = chronicle_domain::policy::MAX_DURATION_SECS;
        let schemas = &document()["components"]["schemas"];
        for (schema, field) in [
            ("ApprovalLevel", "due_secs"),
            ("PolicyLevel", "due_secs"),
            ("SlaTargets", "time_to_assign_secs"),
            ("SlaTargets", "time_to_first_response_secs"),
            ("SlaTargets", "time_to_resolve_secs"),
        ] {
            assert_eq!(
                schemas[schema]["properties"][field]["maximum"].as_f64(),
                Some(max as f64),
                "{schema}.{field}"
            );
        }
    }

    /// Every `$ref` points at something the document defines.
    #[test]
    fn references_resolve() {
        fn walk(value: &Value, doc: &Value, at: &str) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.trim_start_matches('#');
                        assert!(
                            doc.pointer(pointer).is_some(),
                            "{at}: {target} is undefined"
                        );
                    }
                    for (k, v) in map {
                        walk(v, doc, &format!("{at}/{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc, at)),
                _ => {}
            }
        }
        let doc = document();
        walk(doc, doc, "");
    }
}
