//! The projector runtime and every projection.
//!
//! A [`Projection`] is a name, the tables it owns in its schema (`read` for
//! read models, `reporting` for reports) and a handler over batches of
//! events. The runtime ([`runtime`]) feeds it the event log in global order
//! from its checkpoint and commits the handler's writes together with the
//! new checkpoint, so a crash at any point leaves the read models at exactly
//! one batch boundary. Each projection is leased to one process at a time;
//! rebuilds build shadow tables and swap them in.

pub mod audit;
pub mod clock;
pub mod positions;
pub mod reactions;
pub mod read;
pub mod replay;
pub mod reporting;
pub mod rows;
pub mod runtime;
pub mod status;

use std::sync::Arc;

use async_trait::async_trait;
pub use chronicle_store as store;
use chronicle_store::RecordedEvent;
use sqlx::PgConnection;

/// Why a handler could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A database error: transient ones are retried with backoff, the
    /// others stop the projection on the event that caused them.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The event cannot be applied (it does not decode, or contradicts what
    /// the projection knows): the projection stops on it.
    #[error("event at position {position}: {reason}")]
    Poison { position: u64, reason: String },
    /// Worth retrying the batch later (a reaction's command met too much
    /// contention, a dependency was briefly away).
    #[error("transient: {0}")]
    Transient(String),
}

impl ApplyError {
    pub fn poison(event: &RecordedEvent, reason: impl std::fmt::Display) -> Self {
        Self::Poison {
            position: event.position,
            reason: format!("{} ({}): {reason}", event.event_type, event.stream_id),
        }
    }
}

/// A read model kept from the event log.
///
/// `apply` runs inside the batch's transaction with `search_path` set to
/// the schema being written ([`Projection::schema`], or a rebuild's shadow
/// schema), so its SQL names its tables without a schema. It sees every
/// event in order and ignores those it does not need; it must be
/// deterministic: the same events always give the same rows.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint key, `--only` and metrics label.
    fn name(&self) -> &'static str;

    /// The tables of its schema it owns, rebuilt together.
    fn tables(&self) -> &'static [&'static str];

    /// Whether `rebuild` may recreate it from the log. The seal may not:
    /// it records what the log was when sealed.
    fn rebuildable(&self) -> bool {
        true
    }

    /// Whether applying events issues commands (a process manager): such a
    /// projection is not replayed beside itself.
    fn issues_commands(&self) -> bool {
        false
    }

    /// Whether its tables hold personal data (names, emails, ...): erasing
    /// a data subject rebuilds it, so that the erased values leave it.
    fn holds_personal_data(&self) -> bool {
        false
    }

    /// Whether it is handed the events as stored, personal fields still
    /// encrypted, instead of revealed: the seal hashes the log as it is.
    fn sees_stored(&self) -> bool {
        false
    }

    /// The schema its tables live in: `read` for the read models.
    fn schema(&self) -> &'static str {
        "read"
    }

    /// The least time between two live batches once caught up. Zero (the
    /// default) applies each append as it is announced; a projection
    /// nobody reads the instant after an append (the seal) waits, so it
    /// applies a few large batches instead of a transaction per append,
    /// and costs the writers less.
    fn pace(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Applies a batch of events.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError>;
}

/// Every projection that keeps PostgreSQL tables (read models, then
/// reports), in a stable order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(read::tickets::Tickets),
        Arc::new(read::leads::Leads),
        Arc::new(read::contracts::Contracts),
        Arc::new(read::approvals::Approvals),
        Arc::new(read::kb::Kb),
        Arc::new(read::users::Users),
        Arc::new(reporting::tickets::TicketReports),
        Arc::new(reporting::leads::LeadReports),
        Arc::new(reporting::approvals::ApprovalReports),
        Arc::new(reporting::contracts::ContractReports),
    ]
}

/// The projections of `all` named in `only` (all of them when empty); an
/// unknown name is an error that lists the known ones.
pub fn select(
    all: Vec<Arc<dyn Projection>>,
    only: &[String],
) -> Result<Vec<Arc<dyn Projection>>, String> {
    if only.is_empty() {
        return Ok(all);
    }
    let mut chosen = Vec::new();
    for name in only {
        match all.iter().find(|p| p.name() == name) {
            Some(p) => chosen.push(p.clone()),
            None => {
                let known: Vec<_> = all.iter().map(|p| p.name()).collect();
                return Err(format!(
                    "unknown projection {name:?}; known: {}",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(chosen)
}
