//! The datastore: the only place SQL lives. One `Datastore` over SQLite (embedded default, WAL)
//! or PostgreSQL (several `serve` replicas on one database), the same portable SQL for both.
//!
//! Every query runs inside a [`Tx`]. Methods for subscriber-owned data take a [`Scope`], which is
//! built only from the caller's [`Principal`]: owned data cannot be read without saying who asks,
//! and a subscriber's scope filters every such query by owner — another's row is simply absent.

pub mod accounts;
mod audit;
pub mod billing;
pub mod compute;
pub mod contract;
mod credentials;
mod idempotency;
mod jobs;
pub mod privacy;
pub mod sepa;
pub mod storage;
pub mod support;
pub use accounts::NewAccount;
pub use idempotency::StoredResponse;
pub use jobs::NewJob;
pub mod model;
mod outbox;
mod terms;
pub mod test_clocks;

use maocloud_types::{Principal, SubscriberId};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use model::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What can go wrong talking to the database, in the terms the services need.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No row matched (or it belongs to someone else: the caller cannot tell the difference).
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write; the string names the constraint or column.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database cannot be reached or the pool is exhausted: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value could not be read back into its type: a bug or a corrupted row.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Error::Unavailable(e),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                let what = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned());
                Error::Conflict(what)
            }
            other => Error::Other(other),
        }
    }
}

/// Which engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whose owned data a query may see. Built only from a [`Principal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only this subscriber's rows.
    Subscriber(SubscriberId),
    /// Every subscriber's rows: operators (acting through a role) and the platform's own jobs.
    All,
}

impl Scope {
    pub fn of(p: &Principal) -> Scope {
        match p {
            Principal::Subscriber(id) => Scope::Subscriber(*id),
            Principal::Operator { .. } | Principal::System => Scope::All,
        }
    }
    /// The owner filter to bind: `None` means no filter.
    pub(crate) fn owner(&self) -> Option<String> {
        match self {
            Scope::Subscriber(id) => Some(id.to_string()),
            Scope::All => None,
        }
    }
}

/// The handle every service holds. Cheap to clone.
#[derive(Clone)]
pub struct Datastore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: write transactions queue here instead of failing with BUSY
    /// when a reader upgrades. PostgreSQL needs no such lock.
    write_lock: Option<Arc<Mutex<()>>>,
}

impl Datastore {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file if needed.
    pub async fn connect(url: &str) -> Result<Datastore> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::Other(sqlx::Error::Configuration(
                format!("unsupported database URL (use sqlite:// or postgres://): {url}").into(),
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let opts = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                             PRAGMA secure_delete = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = opts.connect(&url).await?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Datastore {
            pool,
            backend,
            write_lock,
        })
    }

    /// After an erasure: on SQLite, moves the write-ahead log into the database file and
    /// truncates it, so no page image of the erased rows stays in the WAL (deleted content is
    /// already zeroed: `secure_delete` is on). PostgreSQL's own storage is its operator's.
    pub async fn reclaim(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Applies the numbered migrations that are not applied yet. Safe to call from every replica.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        if self.backend == Backend::Postgres {
            // S3 lists keys in byte order: an index PostgreSQL can use for `key COLLATE "C"`
            // (a migration can't say it: SQLite has no such collation).
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS objects_key_bytewise ON objects (bucket, key COLLATE \"C\")",
            )
            .execute(&self.pool)
            .await?;
        }
        // the audit trail is append-only, in the database itself (triggers are not
        // portable SQL, hence here rather than in a migration).
        let statements: &[&str] = match self.backend {
            Backend::Sqlite => &[
                "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
                "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
            ],
            Backend::Postgres => &[
                "DO $$ BEGIN \
                   IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'audit_log_append_only') THEN \
                     CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                       'BEGIN RAISE EXCEPTION ''the audit trail is append-only''; END'; \
                   END IF; \
                   IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only') THEN \
                     CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
                       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only(); \
                   END IF; \
                 END $$",
            ],
        };
        for q in statements {
            sqlx::query(q).execute(&self.pool).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A transaction for reading. Writing through it is a bug and is refused.
    pub async fn read(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.pool.begin().await?,
            _writer: None,
            writable: false,
            backend: self.backend,
        })
    }

    /// A transaction that may write. On SQLite it waits for the single writer slot first.
    pub async fn write(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(l) => Some(l.clone().lock_owned().await),
            None => None,
        };
        Ok(Tx {
            tx: self.pool.begin().await?,
            _writer: guard,
            writable: true,
            backend: self.backend,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// One transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    _writer: Option<OwnedMutexGuard<()>>,
    writable: bool,
    backend: Backend,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::Corrupt(
                "write attempted in a read transaction".into(),
            ))
        }
    }
}

/// Helpers to read typed values out of rows.
pub(crate) mod col {
    use super::{Error, Result};
    use maocloud_types::clock::{from_micros, Timestamp};
    use sqlx::Row;
    use std::str::FromStr;

    pub fn id<T: FromStr>(row: &super::AnyRow, name: &str) -> Result<T> {
        let s: String = row.try_get(name)?;
        s.parse()
            .map_err(|_| Error::Corrupt(format!("{name}: not an id: {s}")))
    }
    pub fn opt_id<T: FromStr>(row: &super::AnyRow, name: &str) -> Result<Option<T>> {
        let s: Option<String> = row.try_get(name)?;
        s.map(|s| {
            s.parse()
                .map_err(|_| Error::Corrupt(format!("{name}: not an id: {s}")))
        })
        .transpose()
    }
    pub fn ts(row: &super::AnyRow, name: &str) -> Result<Timestamp> {
        let v: i64 = row.try_get(name)?;
        Ok(from_micros(v))
    }
    pub fn opt_ts(row: &super::AnyRow, name: &str) -> Result<Option<Timestamp>> {
        let v: Option<i64> = row.try_get(name)?;
        Ok(v.map(from_micros))
    }
    pub fn get<'r, T>(row: &'r super::AnyRow, name: &str) -> Result<T>
    where
        T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        Ok(row.try_get(name)?)
    }
    /// Flags are stored as BIGINT 0/1 (the portable driver cannot read SQLite booleans).
    pub fn flag(row: &super::AnyRow, name: &str) -> Result<bool> {
        let v: i64 = row.try_get(name)?;
        Ok(v != 0)
    }
}

/// `"a, b"` with alias `t` → `"t.a, t.b"`, for a column list in a query that joins.
pub(crate) fn prefixed(cols: &str, alias: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn us(t: maocloud_types::Timestamp) -> i64 {
    t.as_microsecond()
}

/// Support for test harnesses: fresh PostgreSQL databases.
pub mod testing {
    use sqlx::Connection;

    /// Creates database `name` on the server of `admin_url` and returns its URL.
    pub async fn postgres_create_database(admin_url: &str, name: &str) -> super::Result<String> {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(super::Error::Corrupt(format!(
                "unsafe database name {name}"
            )));
        }
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
        Ok(format!("{base}/{name}"))
    }
}
