//! The ticketing and expert efficiency reports (seed 004's Reporting
//! Service), from `reporting.ticket_daily` / `_monthly` and `reporting.expert_daily` / `_monthly`.

use serde_json::{json, Value};

use super::rollups::{Group, Spec};
use super::{as_read, durations, rate, text, Column, Dimension, KeyColumn, Kind, Report};
use crate::auth::Role;

const STAGES: [&str; 3] = ["assign", "first_response", "resolve"];

/// Flow columns: the counters, then per stage count, sum, met, breached.
const TICKET_FLOWS: &[&str] = &[
    "opened",
    "assigned",
    "rejected",
    "resolved",
    "reopened",
    "closed",
    "escalated",
    "assign_count",
    "assign_sum_ms",
    "assign_met",
    "assign_breached",
    "first_response_count",
    "first_response_sum_ms",
    "first_response_met",
    "first_response_breached",
    "resolve_count",
    "resolve_sum_ms",
    "resolve_met",
    "resolve_breached",
];

pub static TICKETS: Report = Report {
    path: "tickets",
    summary: "Ticketing efficiency",
    description: "Tickets opened, assigned, rejected, resolved, reopened, closed and escalated; \
        the backlog (unresolved tickets) at the end of each period; time to assign, to first \
        response and to resolve (from the opening; count, mean, p50, p90) of the stage \
        completions in the period; and SLA compliance per stage (met: completed with no breach \
        recorded; breached: breaches recorded in the period). Each event counts under the \
        ticket's priority at that moment. Days are UTC days of the events' business time. Who: \
        manager, analyst (and admin).",
    projection: "reporting_tickets",
    spec: Spec {
        daily: "reporting.ticket_daily",
        monthly: "reporting.ticket_monthly",
        dims: &["priority", "category", "product"],
        keys: &[],
        flows: TICKET_FLOWS,
        stocks: &["backlog_delta"],
        sketches: &STAGES,
    },
    dimensions: &[
        Dimension {
            name: "priority",
            column: Column {
                name: "priority",
                kind: Kind::Text,
                description: "The ticket's priority at the time of the event, P1 to P4",
            },
            render: text,
        },
        Dimension {
            name: "category",
            column: Column {
                name: "category",
                kind: Kind::Text,
                description: "The ticket's category",
            },
            render: text,
        },
        Dimension {
            name: "product",
            column: Column {
                name: "product",
                kind: Kind::Text,
                description: "The ticket's product",
            },
            render: text,
        },
    ],
    keys: &[],
    figures: columns![
        "opened": Integer = "Tickets opened",
        "assigned": Integer = "Expert assignments (re-assignments after a rejection included)",
        "rejected": Integer = "Rejections by the assigned expert",
        "resolved": Integer = "Resolutions (later reopened ones included)",
        "reopened": Integer = "Reopenings",
        "closed": Integer = "Closings",
        "escalated": Integer = "Escalations",
        "backlog": Integer = "Unresolved tickets at the end of the period",
        durations("time_to_assign", "times from opening to first assignment"),
        durations("time_to_first_response", "times from opening to first response"),
        durations("time_to_resolve", "times from opening to resolution (current resolutions)"),
        "sla_assign_met": Integer = "First assignments with no SLA breach recorded",
        "sla_assign_breached": Integer = "SLA breaches of the assign stage recorded",
        "sla_assign_compliance": Number = "met / (met + breached); null when both are 0",
        "sla_first_response_met": Integer = "First responses with no SLA breach recorded",
        "sla_first_response_breached": Integer = "SLA breaches of the first response stage recorded",
        "sla_first_response_compliance": Number = "met / (met + breached); null when both are 0",
        "sla_resolve_met": Integer = "Resolutions with no SLA breach recorded",
        "sla_resolve_breached": Integer = "SLA breaches of the resolve stage recorded",
        "sla_resolve_compliance": Number = "met / (met + breached); null when both are 0",
    ],
    render: render_tickets,
    default_group_by: &["day"],
    roles: &[Role::Manager, Role::Analyst],
    order: as_read,
};

fn render_tickets(g: &Group) -> Vec<Value> {
    let f = &g.flows;
    let mut out: Vec<Value> = f[..7].iter().map(|n| json!(n)).collect();
    out.push(json!(g.stocks[0]));
    for (i, _) in STAGES.iter().enumerate() {
        let base = 7 + 4 * i;
        out.extend(durations(f[base], f[base + 1], &g.sketches[i]));
    }
    for (i, _) in STAGES.iter().enumerate() {
        let (met, breached) = (f[7 + 4 * i + 2], f[7 + 4 * i + 3]);
        out.push(json!(met));
        out.push(json!(breached));
        out.push(rate(met, met + breached));
    }
    out
}

pub static EXPERTS: Report = Report {
    path: "experts",
    summary: "Expert efficiency",
    description: "Per expert: assignments received in the period, and of those the ones accepted \
        and rejected (the rejection rate); tickets handled (resolutions in the period) with their \
        resolution times (from the expert's assignment to the resolution); satisfaction surveys \
        answered in the period with the mean score and the distribution of scores 1 to 5. Who: \
        manager, analyst (and admin).",
    projection: "reporting_tickets",
    spec: Spec {
        daily: "reporting.expert_daily",
        monthly: "reporting.expert_monthly",
        dims: &[],
        keys: &[("expert_id", "expert_id::text")],
        flows: &[
            "assigned",
            "accepted",
            "rejected",
            "handled",
            "resolution_sum_ms",
            "surveys",
            "score_sum",
            "score_1",
            "score_2",
            "score_3",
            "score_4",
            "score_5",
        ],
        stocks: &[],
        sketches: &["resolution"],
    },
    dimensions: &[],
    keys: &[KeyColumn {
        column: Column {
            name: "expert_id",
            kind: Kind::Text,
            description: "The expert",
        },
        render: text,
    }],
    figures: columns![
        "assigned": Integer = "Assignments to the expert made in the period",
        "accepted": Integer = "Of those, the ones the expert accepted",
        "rejected": Integer = "Of those, the ones the expert rejected",
        "rejection_rate": Number = "rejected / assigned; null when nothing was assigned",
        "tickets_handled": Integer = "Resolutions by the expert in the period",
        "resolution_time_mean_secs": Number = "Mean time from the expert's assignment to the resolution, seconds (exact)",
        "resolution_time_p50_secs": Number = "Median of those times, seconds (within 1 % of the exact percentile_disc(0.5))",
        "resolution_time_p90_secs": Number = "90th percentile of those times, seconds (within 1 % of the exact percentile_disc(0.9))",
        "surveys": Integer = "Satisfaction surveys answered about the expert's tickets",
        "survey_score_mean": Number = "Their mean score, 1 to 5; null when none",
        "survey_score_1": Integer = "Surveys scored 1",
        "survey_score_2": Integer = "Surveys scored 2",
        "survey_score_3": Integer = "Surveys scored 3",
        "survey_score_4": Integer = "Surveys scored 4",
        "survey_score_5": Integer = "Surveys scored 5",
    ],
    render: render_experts,
    default_group_by: &[],
    roles: &[Role::Manager, Role::Analyst],
    order: as_read,
};

fn render_experts(g: &Group) -> Vec<Value> {
    let f = &g.flows;
    let [_, mean, p50, p90] = durations(f[3], f[4], &g.sketches[0]);
    vec![
        json!(f[0]),
        json!(f[1]),
        json!(f[2]),
        rate(f[2], f[0]),
        json!(f[3]),
        mean,
        p50,
        p90,
        json!(f[5]),
        rate(f[6], f[5]),
        json!(f[7]),
        json!(f[8]),
        json!(f[9]),
        json!(f[10]),
        json!(f[11]),
    ]
}
