//! The projector runtime and the read models against a real PostgreSQL.

mod contracts;
mod leads;
mod runtime;
mod support;
