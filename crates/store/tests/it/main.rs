//! The event store's tests: one conformance suite run against every
//! backend, plus the PostgreSQL mechanism's own tests (no holes,
//! immutability).

mod conformance;
mod postgres;

use std::sync::Arc;

use chronicle_store::memory::MemoryEventStore;
use chronicle_store::postgres::PgEventStore;
use chronicle_testkit::TestDb;

/// Runs each conformance test against the in-memory and the PostgreSQL
/// backend.
macro_rules! conformance_suite {
    ($($name:ident),* $(,)?) => {
        mod memory_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::conformance::$name(std::sync::Arc::new(super::MemoryEventStore::new())).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::new().await;
                    crate::conformance::$name(super::Arc::new(super::PgEventStore::new(db.pool.clone()))).await;
                }
            )*
        }
    };
}

conformance_suite!(
    read_after_append,
    expected_version_rules,
    one_winner_per_version,
    idempotent_retries,
    completeness_under_concurrent_writers,
    batch_of_a_thousand,
    unicode_and_large_payloads,
    absent_stream,
    bad_input_is_refused_and_writes_nothing,
    any_expected_version_under_contention,
    events_are_found_by_id,
    personal_data_reads_back_until_its_subject_is_erased,
);
