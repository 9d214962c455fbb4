//! Test support: a PostgreSQL server for the whole test process and a
//! fresh, migrated database for each test.
//!
//! With `DATABASE_URL` set, tests create their databases on that server (the
//! role needs CREATEDB). Without it, the first test starts a private
//! PostgreSQL ([`chronicle_store::embedded`]) in a temporary directory; it
//! stops when the test process exits. No test depends on a server someone
//! else started.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use chronicle_store::embedded::{self, EmbeddedPostgres};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

struct Server {
    /// URL of a maintenance database on the server (template creation etc).
    admin_url: String,
    /// A migrated database that each test's database is copied from.
    template: String,
    _embedded: Option<EmbeddedPostgres>,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();
static NEXT: AtomicU32 = AtomicU32::new(0);

fn prefix() -> String {
    format!("chronicle_test_{}", std::process::id())
}

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let (admin_url, embedded) = match std::env::var("DATABASE_URL") {
                Ok(url) if !url.is_empty() => (url, None),
                _ => {
                    let dir = cluster_dir();
                    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
                        .await
                        .expect("embedded PostgreSQL start panicked")
                        .unwrap_or_else(|e| panic!("cannot start the embedded PostgreSQL: {e}"));
                    (pg.url("postgres"), Some(pg))
                }
            };
            let template = format!("{}_template", prefix());
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
            drop_stale_databases(&mut admin).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {template}"))
                .execute(&mut admin)
                .await
                .expect("drop old template");
            sqlx::query(&format!("CREATE DATABASE {template}"))
                .execute(&mut admin)
                .await
                .expect("create template database");
            let template_opts: PgConnectOptions = admin_url
                .parse::<PgConnectOptions>()
                .expect("DATABASE_URL is not a valid PostgreSQL URL")
                .database(&template);
            let mut conn = PgConnection::connect_with(&template_opts)
                .await
                .expect("connect to template");
            chronicle_store::MIGRATOR
                .run(&mut conn)
                .await
                .expect("migrations apply to a fresh database");
            conn.close().await.ok();
            admin.close().await.ok();
            Server {
                admin_url,
                template,
                _embedded: embedded,
            }
        })
        .await
}

/// A temporary directory for this process's cluster; removes those of test
/// processes that are gone.
fn cluster_dir() -> PathBuf {
    let root = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_prefix("chronicle-test-pg-")
                .and_then(|p| p.parse::<i32>().ok())
            {
                // SAFETY: signal 0 only checks whether the process exists.
                if unsafe { libc_kill(pid) } != 0 {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    root.join(format!("chronicle-test-pg-{}", std::process::id()))
}

unsafe fn libc_kill(pid: i32) -> i32 {
    libc::kill(pid, 0)
}

/// Drops databases left behind by test processes that no longer run (only
/// matters with a shared `DATABASE_URL` server).
async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'chronicle\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for name in names {
        let pid = name
            .trim_start_matches("chronicle_test_")
            .split('_')
            .next()
            .and_then(|p| p.parse::<i32>().ok());
        // SAFETY: signal 0 only checks whether the process exists.
        if let Some(pid) = pid {
            if pid != std::process::id() as i32 && unsafe { libc_kill(pid) } != 0 {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut *admin)
                    .await;
            }
        }
    }
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    /// Creates a new database from the migrated template, with a pool of up
    /// to `max_connections`.
    pub async fn new() -> Self {
        Self::with_pool_size(32).await
    }

    pub async fn with_pool_size(max_connections: u32) -> Self {
        let server = server().await;
        let name = format!("{}_{}", prefix(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = PgConnection::connect(&server.admin_url)
            .await
            .expect("connect to test server");
        sqlx::query(&format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            server.template
        ))
        .execute(&mut admin)
        .await
        .expect("create test database");
        admin.close().await.ok();
        let options = server
            .admin_url
            .parse::<PgConnectOptions>()
            .expect("valid URL")
            .database(&name);
        let url = url_with_database(&server.admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .expect("connect to test database");
        Self { name, url, pool }
    }

    /// The URL of the server's maintenance database (to create or inspect
    /// other databases).
    pub async fn admin_url() -> String {
        server().await.admin_url.clone()
    }
}

pub use embedded::{create_database_if_missing, url_with_database};
