//! Contract finance (seed 004's finance, seed 001), from
//! `reporting.contract_daily` / `_monthly`.

use serde_json::{json, Value};

use super::rollups::{Group, Spec};
use super::{as_read, text, Column, Dimension, KeyColumn, Kind, Report};
use crate::auth::Role;

pub static CONTRACTS: Report = Report {
    path: "contracts",
    summary: "Contract finance",
    description: "Per currency: contracts signed (with their value), renewed, terminated and \
        expired in the period; at the end of the period, the active contracts and their value, \
        and among them those whose term ends within the next 30, 60 and 90 days (a renewal or \
        an expiry is due). Values are minor units of the currency. Who: manager, analyst, sales \
        (and admin).",
    projection: "reporting_contracts",
    spec: Spec {
        daily: "reporting.contract_daily",
        monthly: "reporting.contract_monthly",
        dims: &["owner"],
        keys: &[("currency", "currency")],
        flows: &[
            "signed",
            "signed_value_minor",
            "renewed",
            "renewed_value_minor",
            "terminated",
            "terminated_value_minor",
            "expired",
            "expired_value_minor",
        ],
        stocks: &[
            "active_delta",
            "active_value_delta",
            "due_30_delta",
            "due_30_value_delta",
            "due_60_delta",
            "due_60_value_delta",
            "due_90_delta",
            "due_90_value_delta",
        ],
        sketches: &[],
    },
    dimensions: &[Dimension {
        name: "owner",
        column: Column {
            name: "owner_id",
            kind: Kind::Text,
            description: "The contract's owner (who drafted it)",
        },
        render: text,
    }],
    keys: &[KeyColumn {
        column: Column {
            name: "currency",
            kind: Kind::Text,
            description: "Currency of the values (ISO 4217)",
        },
        render: text,
    }],
    figures: columns![
        "signed": Integer = "Contracts signed",
        "signed_value_minor": Integer = "Their value when signed",
        "renewed": Integer = "Renewals",
        "renewed_value_minor": Integer = "Value of the contracts renewed",
        "terminated": Integer = "Terminations",
        "terminated_value_minor": Integer = "Value of the contracts terminated",
        "expired": Integer = "Expiries",
        "expired_value_minor": Integer = "Value of the contracts expired",
        "active": Integer = "Active contracts at the end of the period",
        "active_value_minor": Integer = "Their value",
        "due_30_days": Integer = "Of those, contracts whose term ends within the next 30 days",
        "due_30_days_value_minor": Integer = "Their value",
        "due_60_days": Integer = "Of those, contracts whose term ends within the next 60 days",
        "due_60_days_value_minor": Integer = "Their value",
        "due_90_days": Integer = "Of those, contracts whose term ends within the next 90 days",
        "due_90_days_value_minor": Integer = "Their value",
    ],
    render,
    default_group_by: &["month"],
    roles: &[Role::Manager, Role::Analyst, Role::Sales],
    order: as_read,
};

fn render(g: &Group) -> Vec<Value> {
    g.flows.iter().chain(&g.stocks).map(|n| json!(n)).collect()
}
