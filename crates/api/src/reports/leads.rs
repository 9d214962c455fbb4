//! The lead funnel (seed 002's analytics, seed 000's stages), from
//! `reporting.lead_daily` / `_monthly`.

use chronicle_domain::lead::Stage;
use chronicle_projections::reporting::leads::NO_OWNER;
use serde_json::{json, Value};

use super::rollups::{Group, Spec};
use super::{durations, rate, text, Column, Dimension, KeyColumn, Kind, Report};
use crate::auth::Role;

pub static FUNNEL: Report = Report {
    path: "leads/funnel",
    summary: "Lead funnel",
    description: "Per currency and stage, in lifecycle order: leads entering and leaving the \
        stage, how they left (advanced to a later stage, returned to an earlier one, won, lost, \
        cancelled), the conversion rate ((advanced + won) / exited), the time spent in the stage \
        by those leaving it, the estimated value won and lost, and the leads in the stage at the \
        end of the period. A move counts under the lead's owner at that moment. Who: manager, \
        analyst, sales (and admin).",
    projection: "reporting_leads",
    spec: Spec {
        daily: "reporting.lead_daily",
        monthly: "reporting.lead_monthly",
        dims: &["owner"],
        keys: &[("currency", "currency"), ("stage", "stage")],
        flows: &[
            "entered",
            "exited",
            "advanced",
            "returned",
            "won",
            "lost",
            "cancelled",
            "won_value_minor",
            "lost_value_minor",
            "stay_sum_ms",
        ],
        stocks: &["in_stage_delta"],
        sketches: &["stay"],
    },
    dimensions: &[Dimension {
        name: "owner",
        column: Column {
            name: "owner_id",
            kind: Kind::Text,
            description: "The lead's owner at the time of the move; null for leads without one",
        },
        render: owner,
    }],
    keys: &[
        KeyColumn {
            column: Column {
                name: "currency",
                kind: Kind::Text,
                description: "Currency of the leads' estimated value (ISO 4217)",
            },
            render: text,
        },
        KeyColumn {
            column: Column {
                name: "stage",
                kind: Kind::Text,
                description: "captured, qualified, serviceability_checked, design, \
                    design_approval, implementation, testing, support or closed",
            },
            render: text,
        },
    ],
    figures: columns![
        "entered": Integer = "Leads entering the stage (captured: new leads; closed: closings)",
        "exited": Integer = "Leads leaving the stage",
        "advanced": Integer = "Of those, moved on to a later stage",
        "returned": Integer = "Of those, sent back to an earlier stage (a rejected design)",
        "won": Integer = "Of those, closed won",
        "lost": Integer = "Of those, closed lost",
        "cancelled": Integer = "Of those, closed cancelled",
        "conversion_rate": Number = "(advanced + won) / exited; null when none left",
        "won_value_minor": Integer = "Estimated value of the leads won, minor units of currency",
        "lost_value_minor": Integer = "Estimated value of the leads lost, minor units of currency",
        "in_stage": Integer = "Leads in the stage at the end of the period (0 for closed)",
        durations("time_in_stage", "times spent in the stage by the leads leaving it"),
    ],
    render,
    default_group_by: &[],
    roles: &[Role::Manager, Role::Analyst, Role::Sales],
    order: lifecycle,
};

fn owner(value: &str) -> Value {
    if value == NO_OWNER {
        Value::Null
    } else {
        json!(value)
    }
}

fn render(g: &Group) -> Vec<Value> {
    let f = &g.flows;
    let mut out: Vec<Value> = f[..7].iter().map(|n| json!(n)).collect();
    out.push(rate(f[2] + f[4], f[1]));
    out.push(json!(f[7]));
    out.push(json!(f[8]));
    out.push(json!(g.stocks[0]));
    out.extend(durations(f[1], f[9], &g.sketches[0]));
    out
}

/// The lifecycle order of the stages, as stored.
const STAGES: [Stage; 9] = [
    Stage::Captured,
    Stage::Qualified,
    Stage::ServiceabilityChecked,
    Stage::Design,
    Stage::DesignApproval,
    Stage::Implementation,
    Stage::Testing,
    Stage::Support,
    Stage::Closed,
];

fn stage_rank(name: &str) -> usize {
    STAGES
        .iter()
        .position(|s| s.as_str() == name)
        .unwrap_or(usize::MAX)
}

/// Stages in lifecycle order within each period, owner and currency.
fn lifecycle(groups: &mut [Group]) {
    groups.sort_by_cached_key(|g| {
        (
            g.period,
            g.value.clone(),
            g.keys[0].clone(),
            stage_rank(&g.keys[1]),
        )
    });
}
