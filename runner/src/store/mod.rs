//! SQL storage through sqlx's `Any` driver: one code path for SQLite (the embedded default) and PostgreSQL.
//!
//! Queries use `$n` placeholders, which both backends accept. Timestamps are milliseconds since the epoch;
//! JSON documents are stored as text.

pub mod outbox;
pub mod proposal_writer;
pub mod proposals;
pub mod runs;
pub mod training;
pub mod trials;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::{DatabaseKind, DatabaseUrl};
use proposal_writer::ProposalWriter;

pub use proposal_writer::NewProposal;
pub use proposals::PendingProposal;
pub use runs::RunRecord;
pub use trials::TrialRecord;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Handle to the runner's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
    proposal_writer: ProposalWriter,
    /// Counts committed changes to runs and trials (and settled proposals) made through this handle's
    /// process, so caches of run state know when to reload. New pending proposals do not count.
    generation: Arc<AtomicU64>,
}

impl Store {
    /// Connects, creating the SQLite file and its directory when needed, and runs the migrations.
    pub async fn connect(db: &DatabaseUrl) -> anyhow::Result<Self> {
        install_default_drivers();
        if db.kind == DatabaseKind::Sqlite {
            create_sqlite_parent_dir(&db.url)?;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match db.kind {
            // A few connections: readers run beside the single writer (WAL); every write transaction starts
            // with a write, so it waits on the busy timeout instead of failing a read-to-write upgrade.
            DatabaseKind::Sqlite => {
                options
                    .max_connections(4)
                    // An embedded file cannot drop the connection: no round trip to check it on every acquire.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // A 64 MiB page cache and memory-mapped reads: index pages stay in memory
                            // instead of being read back with a system call per page.
                            conn.execute("PRAGMA cache_size = -65536").await?;
                            conn.execute("PRAGMA mmap_size = 268435456").await?;
                            Ok(())
                        })
                    })
                    .connect(&db.url)
                    .await?
            }
            DatabaseKind::Postgres => options.max_connections(16).connect(&db.url).await?,
        };
        let migrator = match db.kind {
            DatabaseKind::Sqlite => &SQLITE_MIGRATIONS,
            DatabaseKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        proposals::hash_unhashed(&pool).await?;
        Ok(Self {
            proposal_writer: ProposalWriter::spawn(pool.clone(), db.kind),
            pool,
            kind: db.kind,
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The change counter: it moves after every committed write to runs, trials or settled proposals.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records that a write to runs or trials was committed.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this store talks to.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes the pool, waiting for in-flight queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn create_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Serialises a JSON value for a text column.
pub(crate) fn to_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// Reads a JSON text column, tolerating NULL and damage (as `null`).
pub(crate) fn from_text(text: Option<String>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}
