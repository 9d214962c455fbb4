//! Black-box tests of the `chronicle` binary and its HTTP surface.

mod approval_queries;
mod approvals;
mod audit;
mod auth;
mod contract_queries;
mod contracts;
mod deployment;
mod erasure;
mod events;
mod health;
mod helpers;
mod kb;
mod kb_queries;
mod lead_queries;
mod leads;
mod observability;
mod openapi;
mod ops_metrics;
mod policies;
mod projector;
mod queries;
mod reaction_crash;
mod reactions;
mod replay;
mod reports;
mod reports_check;
mod search;
mod tickets;
mod up;
mod user_queries;
mod users;

// The workload generator of `chronicle-bench reports`, shared with the
// reports' acceptance check.
#[path = "../../src/bin/bench/workload.rs"]
mod workload;
