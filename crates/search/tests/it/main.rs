//! Tests of the search projection: documents from events, exactly-once
//! commits, rebuilds, queries, and relevance on real text.

mod indexing;
mod queries;
mod relevance;
mod support;
