//! Deterministic replay: rebuild a projection beside the live one, from the
//! log, to the very position the live tables reflect, and compare the two
//! table by table. Nothing is swapped; the live projection keeps running.

use std::sync::Arc;

use chronicle_store::postgres::PgEventStore;
use chronicle_store::EventStore;
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool, Row as _};

use crate::{ApplyError, Projection};

/// Events applied per replay batch.
const BATCH: usize = 5000;

/// One table compared.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableCheck {
    pub table: String,
    /// `rows:md5` of the live table.
    pub live: String,
    /// `rows:md5` of the table rebuilt from the log.
    pub replayed: String,
}

impl TableCheck {
    pub fn differs(&self) -> bool {
        self.live != self.replayed
    }
}

/// A projection replayed and compared.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub projection: String,
    /// The live position both sides reflect.
    pub position: u64,
    pub tables: Vec<TableCheck>,
}

impl Replay {
    pub fn differences(&self) -> impl Iterator<Item = &TableCheck> {
        self.tables.iter().filter(|t| t.differs())
    }
}

/// Why a replay could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] chronicle_store::StoreError),
    #[error("applying an event: {0}")]
    Apply(#[from] ApplyError),
    #[error("the projection {0} cannot be replayed: {1}")]
    Unsupported(&'static str, &'static str),
    #[error("the live projection kept moving; gave up after {0} rounds")]
    Moving(usize),
}

/// Whether `projection` can be replayed beside itself: it has tables, may
/// be rebuilt, and issues no commands.
pub fn replayable(projection: &dyn Projection) -> Result<(), ReplayError> {
    let name = projection.name();
    if projection.tables().is_empty() {
        return Err(ReplayError::Unsupported(name, "it keeps no tables"));
    }
    if !projection.rebuildable() {
        return Err(ReplayError::Unsupported(name, "it is never rebuilt"));
    }
    if projection.issues_commands() {
        return Err(ReplayError::Unsupported(
            name,
            "it issues commands (a replay would issue them again)",
        ));
    }
    Ok(())
}

/// The checksum query of `schema.table`: row count and an
/// order-independent digest of every row.
fn checksum_sql(schema: &str, table: &str) -> String {
    format!(
        "SELECT count(*)::text || ':' || \
                coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') \
           FROM {schema}.{table} t"
    )
}

async fn live_position(conn: &mut PgConnection, name: &str) -> Result<u64, sqlx::Error> {
    let p: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(p.unwrap_or(0).max(0) as u64)
}

/// Rebuilds `projection` into `verify_<name>` up to the position its live
/// tables are at, then compares both in one snapshot (catching up again if
/// the live side moved meanwhile). Drops the shadow tables after.
pub async fn replay(
    pool: &PgPool,
    store: &Arc<PgEventStore>,
    projection: &dyn Projection,
) -> Result<Replay, ReplayError> {
    replayable(projection)?;
    let name = projection.name();
    let schema = format!("verify_{name}");
    let live = projection.schema();
    let mut conn = pool.acquire().await?.detach();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    for table in projection.tables() {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE {live}.{table} INCLUDING ALL)"
        ))
        .execute(&mut conn)
        .await?;
    }
    let result = replay_into(&mut conn, store, projection, &schema, live).await;
    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn replay_into(
    conn: &mut PgConnection,
    store: &Arc<PgEventStore>,
    projection: &dyn Projection,
    schema: &str,
    live: &str,
) -> Result<Replay, ReplayError> {
    let name = projection.name();
    let mut at = 0u64;
    for _round in 0..20 {
        let target = live_position(conn, name).await?;
        while at < target {
            let batch = store.read_batch(at, BATCH).await?;
            let blocked = batch.blocked;
            let events: Vec<_> = batch
                .events
                .into_iter()
                .filter(|e| e.position <= target)
                .collect();
            let Some(last) = events.last().map(|e| e.position) else {
                if blocked {
                    // A position below the target not yet proven a hole by
                    // this reader: it will be in a moment.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                // Only holes are left up to the target.
                break;
            };
            let mut tx = conn.begin().await?;
            sqlx::query(&format!("SET LOCAL search_path TO {schema}"))
                .execute(&mut *tx)
                .await?;
            projection.apply(&mut tx, &events).await?;
            tx.commit().await?;
            at = last;
        }
        // Compare in one snapshot, if the live side is still where we are.
        let mut tx = conn.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let now = live_position(&mut tx, name).await?;
        if now != target {
            tx.rollback().await?;
            continue;
        }
        let mut tables = Vec::new();
        for table in projection.tables() {
            let live_sum: String = sqlx::query(&checksum_sql(live, table))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            let replayed: String = sqlx::query(&checksum_sql(schema, table))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            tables.push(TableCheck {
                table: (*table).to_owned(),
                live: live_sum,
                replayed,
            });
        }
        tx.commit().await?;
        return Ok(Replay {
            projection: name.to_owned(),
            position: target,
            tables,
        });
    }
    Err(ReplayError::Moving(20))
}
