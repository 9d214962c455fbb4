//! Bulk reads and writes of read-model rows for one batch.
//!
//! A handler loads the rows its batch touches in one query per table, folds
//! the events into them in memory, and writes every changed row back with
//! one `INSERT ... ON CONFLICT DO UPDATE` per table: a batch of a thousand
//! events costs a handful of statements, not thousands. Rows travel as JSON
//! (`to_jsonb` out, `jsonb_populate_recordset` in), so a row struct's field
//! names are its table's column names and nothing else needs to be kept in
//! step with the DDL.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

/// A row of a read-model table.
pub trait Row: Serialize + DeserializeOwned + Send + Sync {
    /// The table, unqualified (the batch's `search_path` picks the schema).
    const TABLE: &'static str;
    /// The columns of its primary key.
    const KEY: &'static [&'static str];
    type Key: Hash + Eq + Clone + Send + Sync;
    fn key(&self) -> Self::Key;
}

/// The rows of one table that a batch reads and writes.
pub struct Rows<R: Row> {
    rows: HashMap<R::Key, R>,
    dirty: HashSet<R::Key>,
    removed: Vec<Value>,
}

impl<R: Row> Default for Rows<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            dirty: HashSet::new(),
            removed: Vec::new(),
        }
    }
}

impl<R: Row> Rows<R> {
    /// Loads the rows matching `filter`, a SQL condition on the table
    /// aliased `t` whose `$1` is bound to `ids` (e.g. `t.ticket_id = ANY($1)`).
    pub async fn load<T>(
        &mut self,
        conn: &mut PgConnection,
        filter: &str,
        ids: T,
    ) -> Result<(), sqlx::Error>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let sql = format!("SELECT to_jsonb(t) FROM {} t WHERE {filter}", R::TABLE);
        let found: Vec<Value> = sqlx::query_scalar(&sql).bind(ids).fetch_all(conn).await?;
        for value in found {
            let row: R = serde_json::from_value(value).map_err(|e| {
                sqlx::Error::Decode(format!("a row of {} does not decode: {e}", R::TABLE).into())
            })?;
            self.rows.insert(row.key(), row);
        }
        Ok(())
    }

    pub fn get(&self, key: &R::Key) -> Option<&R> {
        self.rows.get(key)
    }

    /// The row to change; it is written back on [`Rows::flush`].
    pub fn get_mut(&mut self, key: &R::Key) -> Option<&mut R> {
        let row = self.rows.get_mut(key)?;
        self.dirty.insert(key.clone());
        Some(row)
    }

    /// Adds or replaces a row.
    pub fn put(&mut self, row: R) {
        let key = row.key();
        self.dirty.insert(key.clone());
        self.rows.insert(key, row);
    }

    /// Deletes a loaded (or put) row on [`Rows::flush`].
    pub fn remove(&mut self, key: &R::Key) -> Result<(), sqlx::Error> {
        self.dirty.remove(key);
        if let Some(row) = self.rows.remove(key) {
            self.removed.push(encode::<R>(&row)?);
        }
        Ok(())
    }

    /// Rows loaded or put so far.
    pub fn values(&self) -> impl Iterator<Item = &R> {
        self.rows.values()
    }

    /// Deletes the removed rows and writes every changed one, one statement
    /// each; returns how many rows were written.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            let matches: Vec<String> = R::KEY.iter().map(|k| format!("t.{k} = d.{k}")).collect();
            let sql = format!(
                "DELETE FROM {table} t USING jsonb_populate_recordset(NULL::{table}, $1) d WHERE {}",
                matches.join(" AND "),
                table = R::TABLE,
            );
            sqlx::query(&sql)
                .bind(sqlx::types::Json(removed))
                .execute(&mut *conn)
                .await?;
        }
        if self.dirty.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(self.dirty.len());
        let mut columns: Vec<String> = Vec::new();
        for key in self.dirty.drain() {
            let value = encode::<R>(&self.rows[&key])?;
            if columns.is_empty() {
                if let Value::Object(map) = &value {
                    columns = map.keys().cloned().collect();
                }
            }
            batch.push(value);
        }
        let sql = upsert_sql(R::TABLE, R::KEY, &columns);
        let written = sqlx::query(&sql)
            .bind(sqlx::types::Json(batch))
            .execute(conn)
            .await?
            .rows_affected();
        Ok(written)
    }
}

fn encode<R: Row>(row: &R) -> Result<Value, sqlx::Error> {
    serde_json::to_value(row).map_err(|e| {
        sqlx::Error::Encode(format!("a row of {} does not encode: {e}", R::TABLE).into())
    })
}

fn upsert_sql(table: &str, key: &[&str], columns: &[String]) -> String {
    let list = columns.join(", ");
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(&c.as_str()))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    let action = if updates.is_empty() {
        "NOTHING".to_owned()
    } else {
        format!("UPDATE SET {}", updates.join(", "))
    };
    format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{table}, $1) \
         ON CONFLICT ({}) DO {action}",
        key.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_updates_every_column_but_the_key() {
        let sql = upsert_sql(
            "ticket_assignments",
            &["ticket_id", "seq"],
            &["ticket_id".into(), "seq".into(), "expert_id".into()],
        );
        assert_eq!(
            sql,
            "INSERT INTO ticket_assignments (ticket_id, seq, expert_id) SELECT ticket_id, seq, expert_id \
             FROM jsonb_populate_recordset(NULL::ticket_assignments, $1) \
             ON CONFLICT (ticket_id, seq) DO UPDATE SET expert_id = EXCLUDED.expert_id"
        );
    }

    #[test]
    fn a_key_only_table_does_nothing_on_conflict() {
        let sql = upsert_sql("shares", &["a", "b"], &["a".into(), "b".into()]);
        assert!(sql.ends_with("ON CONFLICT (a, b) DO NOTHING"), "{sql}");
    }
}
