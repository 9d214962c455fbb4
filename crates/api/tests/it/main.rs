//! Black-box tests of the `chronicle` binary and its HTTP surface.

mod approvals;
mod auth;
mod contract_queries;
mod contracts;
mod events;
mod health;
mod helpers;
mod kb;
mod lead_queries;
mod leads;
mod observability;
mod policies;
mod projector;
mod queries;
mod tickets;
mod up;
mod users;
