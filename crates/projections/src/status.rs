//! What operators see and do: status, rebuild requests, resume, and
//! per-table checksums (to compare a live read model with a rebuild).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row as _};

use crate::runtime::LEASE_CLASS;
use crate::Projection;

/// One projection's health.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectionStatus {
    pub name: String,
    /// Last applied position.
    pub position: u64,
    /// Highest position in the log.
    pub head: u64,
    /// Events behind the head.
    pub lag_events: u64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    /// `running`, `failed`, or `idle` (no process holds its lease).
    pub state: String,
    pub error: Option<String>,
    pub error_position: Option<u64>,
    /// The process holding the lease, if any.
    pub owner: Option<String>,
    /// While a rebuild runs: how far it is.
    pub rebuild_position: Option<u64>,
    pub rebuild_requested: bool,
    pub rebuilt_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Status of each projection in `projections`, in their order.
pub async fn status(
    pool: &PgPool,
    projections: &[std::sync::Arc<dyn Projection>],
) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    status_of(pool, &names).await
}

/// Status of each projection named, in order (also those that keep no
/// PostgreSQL tables, such as the search index).
pub async fn status_of(
    pool: &PgPool,
    names: &[&str],
) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = sqlx::query(
            "SELECT c.position, c.state, c.error, c.error_position, c.owner, c.rebuild_position, \
                    c.rebuild_requested, c.rebuilt_at, c.updated_at, \
                    EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' \
                            AND l.classid = $2::int::oid AND l.objid = hashtext($1)::oid \
                            AND l.objsubid = 2 AND l.granted \
                            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) \
                        AS leased, \
                    (SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM events e \
                     WHERE e.position > c.position ORDER BY e.position LIMIT 1) AS lag_seconds \
             FROM projection_checkpoints c WHERE c.name = $1",
        )
        .bind(name)
        .bind(LEASE_CLASS)
        .fetch_optional(pool)
        .await?;
        let status = match row {
            None => ProjectionStatus {
                name: (*name).to_owned(),
                position: 0,
                head: head as u64,
                lag_events: head as u64,
                lag_seconds: 0.0,
                state: "idle".into(),
                error: None,
                error_position: None,
                owner: None,
                rebuild_position: None,
                rebuild_requested: false,
                rebuilt_at: None,
                updated_at: None,
            },
            Some(row) => {
                let position = row.get::<i64, _>("position") as u64;
                let leased: bool = row.get("leased");
                let state: String = row.get("state");
                ProjectionStatus {
                    name: (*name).to_owned(),
                    position,
                    head: head as u64,
                    lag_events: (head as u64).saturating_sub(position),
                    lag_seconds: row
                        .get::<Option<f64>, _>("lag_seconds")
                        .unwrap_or(0.0)
                        .max(0.0),
                    state: if state == "running" && !leased {
                        "idle".into()
                    } else {
                        state
                    },
                    error: row.get("error"),
                    error_position: row
                        .get::<Option<i64>, _>("error_position")
                        .map(|p| p as u64),
                    owner: if leased { row.get("owner") } else { None },
                    rebuild_position: row
                        .get::<Option<i64>, _>("rebuild_position")
                        .map(|p| p as u64),
                    rebuild_requested: row.get("rebuild_requested"),
                    rebuilt_at: row.get("rebuilt_at"),
                    updated_at: row.get("updated_at"),
                }
            }
        };
        out.push(status);
    }
    Ok(out)
}

/// Asks the projection's owner to rebuild it (a running rebuild restarts).
pub async fn request_rebuild(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, rebuild_requested) VALUES ($1, true) \
         ON CONFLICT (name) DO UPDATE SET rebuild_requested = true, rebuild_position = NULL, \
             updated_at = now()",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Clears a failed state so the projection retries its poison event (after
/// a fix was deployed). Returns false when it was not failed.
pub async fn resume(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE projection_checkpoints SET state = 'running', error = NULL, error_position = NULL, \
             updated_at = now() \
         WHERE name = $1 AND state = 'failed'",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An order-independent checksum of each table the projection owns in
/// `read`: equal checksums mean equal contents.
pub async fn checksums(
    pool: &PgPool,
    projection: &dyn Projection,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut out = Vec::new();
    for table in projection.tables() {
        let sum: String = sqlx::query_scalar(&format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') \
             FROM read.{table} t"
        ))
        .fetch_one(pool)
        .await?;
        out.push(((*table).to_owned(), sum));
    }
    Ok(out)
}
