//! Full-text search over contracts, knowledge articles and tickets, with
//! tantivy.
//!
//! - [`schema`]: the fields, their analysis, which a user may name;
//! - [`doc`]: search documents and how events change them;
//! - [`index`]: the index on disk, its writer ([`index::Indexer`], whose
//!   commits carry the log position) and readers ([`index::Reader`]);
//! - [`query`]: parsing and checking a user's query, the access filter,
//!   hits, snippets, facets; `conjunction`: the fast path of words ANDed
//!   together;
//! - `stem`: English stemming with a per-thread memo of recent words;
//! - [`indexer`]: the projection process: lease, catch-up, live updates,
//!   rebuilds, status and metrics.
//!
//! Decisions are in `docs/adr/0002-search-index.md`.

mod conjunction;
pub mod corpus;
pub mod doc;
pub mod index;
pub mod indexer;
pub mod query;
pub mod schema;
mod stem;

/// The projection's name: lease key, status row, `--only search`.
pub const NAME: &str = "search";
