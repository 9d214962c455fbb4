//! Tests of the search projection: documents from events, exactly-once
//! commits, rebuilds, queries, and relevance on real text.

mod fast_path;
mod indexing;
mod queries;
mod relevance;
mod support;
