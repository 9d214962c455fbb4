//! Approval cycle times, outcomes and overdue levels (seed 000), from
//! `reporting.approval_daily` / `_monthly`.

use serde_json::{json, Value};

use super::rollups::{Group, Spec};
use super::{durations, rate, text, Column, Dimension, KeyColumn, Kind, Report};
use crate::auth::Role;

pub static APPROVALS: Report = Report {
    path: "approvals",
    summary: "Approval cycle times and outcomes",
    description: "One row for the approvals as a whole (level null: requested to outcome) and one \
        per level (level 0, 1, ...: opened to decided): started, approved (granted, or the level \
        completed), rejected, changes requested, cancelled, the rejection rate \
        ((rejected + changes_requested) / decided), escalations, the levels overdue at the end of \
        the period, and the cycle times of those decided in the period (cancellations are not \
        timed). Who: manager, analyst (and admin).",
    projection: "reporting_approvals",
    spec: Spec {
        daily: "reporting.approval_daily",
        monthly: "reporting.approval_monthly",
        dims: &["subject_kind"],
        keys: &[("level", "level::text")],
        flows: &[
            "started",
            "approved",
            "rejected",
            "changes_requested",
            "cancelled",
            "escalated",
            "cycle_sum_ms",
        ],
        stocks: &["overdue_delta"],
        sketches: &["cycle"],
    },
    dimensions: &[Dimension {
        name: "subject_kind",
        column: Column {
            name: "subject_kind",
            kind: Kind::Text,
            description: "What was approved: lead_design or contract",
        },
        render: text,
    }],
    keys: &[KeyColumn {
        column: Column {
            name: "level",
            kind: Kind::Integer,
            description: "The level, from 0; null for the approvals as a whole",
        },
        render: level,
    }],
    figures: columns![
        "started": Integer = "Approvals requested, or levels opened",
        "approved": Integer = "Approvals granted, or levels completed",
        "rejected": Integer = "Rejections",
        "changes_requested": Integer = "Requests for changes (they end an approval like a rejection)",
        "cancelled": Integer = "Cancellations",
        "rejection_rate": Number = "(rejected + changes_requested) / (approved + rejected + changes_requested); null when none was decided",
        "escalated": Integer = "Escalations of overdue levels",
        "overdue": Integer = "Open levels past their deadline at the end of the period",
        durations("cycle_time", "cycle times of the approvals or levels decided"),
    ],
    render,
    default_group_by: &[],
    roles: &[Role::Manager, Role::Analyst],
    order,
};

fn level(value: &str) -> Value {
    match value.parse::<i64>() {
        Ok(l) if l >= 0 => json!(l),
        _ => Value::Null,
    }
}

fn render(g: &Group) -> Vec<Value> {
    let f = &g.flows;
    let decided = f[1] + f[2] + f[3];
    let mut out: Vec<Value> = f[..5].iter().map(|n| json!(n)).collect();
    out.push(rate(f[2] + f[3], decided));
    out.push(json!(f[5]));
    out.push(json!(g.stocks[0]));
    out.extend(durations(decided, f[6], &g.sketches[0]));
    out
}

/// The whole first, then the levels in numeric order.
fn order(groups: &mut [Group]) {
    groups.sort_by_cached_key(|g| {
        (
            g.period,
            g.value.clone(),
            g.keys[0].parse::<i64>().unwrap_or(i64::MAX),
        )
    });
}
