//! Getting a database: the configured server, or the embedded one.

use std::time::Duration;

use anyhow::Context;
use chronicle_store::embedded::{self, EmbeddedPostgres};
use chronicle_store::MIGRATOR;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::Config;

/// A connected database, and the embedded server behind it if we started
/// one (stopped when this is dropped).
pub struct Database {
    pub pool: PgPool,
    pub url: String,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded PostgreSQL under
    /// the data directory and connects to it.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (url, embedded) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let dir = config.data_dir.join("postgres");
                let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
                    .await
                    .context("starting the embedded PostgreSQL")??;
                embedded::create_database_if_missing(&pg.url("postgres"), embedded::DATABASE)
                    .await
                    .context("creating the chronicle database")?;
                (pg.url(embedded::DATABASE), Some(pg))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: it doubled the round trips of every
            // query (1,450 to 1,900 commands/s in `chronicle-bench load`).
            // A connection that broke (a database restart) fails its next
            // query once, a 503 with Retry-After, and is dropped.
            .test_before_acquire(false)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to the database at {}", redact(&url)))?;
        Ok(Self {
            pool,
            url,
            embedded,
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying migrations")?;
        Ok(())
    }

    /// Closes the pool, then stops the embedded server if we started one.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(pg) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
        }
    }
}

/// How many of this binary's migrations the database lacks.
pub async fn pending_migrations(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(v) => v,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e),
        };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .count())
}

/// A URL with its password hidden, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}
