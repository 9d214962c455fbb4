//! The projector runtime and the read models against a real PostgreSQL.

mod runtime;
mod support;
