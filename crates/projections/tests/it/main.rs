//! The projector runtime and the read models against a real PostgreSQL.

mod approvals;
mod contracts;
mod kb;
mod leads;
mod reporting;
mod runtime;
mod support;
mod users;
