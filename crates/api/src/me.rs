//! `GET /api/v1/me`: who the token says the caller is.

use axum::Json;
use serde::Serialize;

use crate::auth::Principal;

/// The caller as the API sees them.
#[derive(Debug, Serialize)]
pub struct Me {
    pub user: String,
    pub tenant: String,
    pub roles: Vec<&'static str>,
}

pub async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        user: principal.user,
        tenant: principal.tenant.to_string(),
        roles: principal.roles.iter().map(|r| r.as_str()).collect(),
    })
}
