//! Application services: every use case of the platform (sign-up, sign-in, tokens, profiles,
//! the back office, notifications, background jobs) with its authorisation. The HTTP API, the
//! web console and the CLI all call these; this crate is the only caller of the datastore.
//!
//! It knows nothing about HTTP: callers pass a [`Ctx`] saying who acts, and get an [`Error`]
//! that the transport maps to its own form.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod compute;
pub mod config;
pub mod daily;
pub mod demo;
pub mod error;
pub mod i18n;
pub mod incidents;
pub mod jobs;
pub mod notify;
pub mod privacy;
pub mod proofs;
pub mod seal;
pub mod sepa;
pub mod storage;
pub mod support;
pub mod suspension;
pub mod termination;
pub mod terms;
pub mod test_clocks;

use maocloud_datastore::{Datastore, Scope};
use maocloud_mail::Mailer;
use maocloud_types::{Clock, OperatorRole, Principal, Timestamp};
use std::sync::Arc;

pub use config::{Seller, Settings};
pub use error::{Error, FieldError, Result};

/// The root object: owns the datastore, the clock, the mailer and the settings. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    db: Datastore,
    clock: Arc<dyn Clock>,
    mailer: Arc<dyn Mailer>,
    settings: Settings,
    agents: compute::Agents,
    /// Wakes the job runner when work was just enqueued (VM changes), instead of at its next poll.
    jobs_wakeup: tokio::sync::Notify,
    /// Where objects' bytes live, once object storage is attached.
    blob_store: std::sync::OnceLock<Arc<dyn maocloud_objstore::BlobStore>>,
    meter: storage::Meter,
    scrubber: storage::Scrubber,
    keys: storage::KeyCache,
    /// The platform's data key, read once from `<data_dir>/data.key` (see `seal`).
    sealing_key: std::sync::OnceLock<[u8; 32]>,
}

impl App {
    pub fn new(
        db: Datastore,
        clock: Arc<dyn Clock>,
        mailer: Arc<dyn Mailer>,
        settings: Settings,
    ) -> App {
        App {
            inner: Arc::new(Inner {
                db,
                clock,
                mailer,
                settings,
                agents: compute::Agents::default(),
                jobs_wakeup: tokio::sync::Notify::new(),
                blob_store: std::sync::OnceLock::new(),
                meter: storage::Meter::default(),
                scrubber: storage::Scrubber::default(),
                keys: storage::KeyCache::default(),
                sealing_key: std::sync::OnceLock::new(),
            }),
        }
    }
    pub fn db(&self) -> &Datastore {
        &self.inner.db
    }
    /// Now, to the microsecond the datastore keeps: what a use case returns equals what a
    /// later read of the same row returns.
    pub fn now(&self) -> Timestamp {
        let t = self.inner.clock.now();
        Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
    }
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
    /// Tells the job runner that a job is due now.
    pub fn wake_jobs(&self) {
        self.inner.jobs_wakeup.notify_one();
    }
    /// Resolves when [`App::wake_jobs`] was called.
    pub async fn jobs_woken(&self) {
        self.inner.jobs_wakeup.notified().await
    }
    /// The hypervisor agents this control plane talks to.
    pub fn agents(&self) -> &compute::Agents {
        &self.inner.agents
    }
    /// Attaches object storage's blob store (once; later calls are ignored).
    pub fn attach_blob_store(&self, store: Arc<dyn maocloud_objstore::BlobStore>) {
        let _ = self.inner.blob_store.set(store);
    }
    pub fn blob_store(&self) -> Option<&Arc<dyn maocloud_objstore::BlobStore>> {
        self.inner.blob_store.get()
    }
    pub(crate) fn meter(&self) -> &storage::Meter {
        &self.inner.meter
    }
    pub(crate) fn scrubber(&self) -> &storage::Scrubber {
        &self.inner.scrubber
    }
    pub(crate) fn storage_keys(&self) -> &storage::KeyCache {
        &self.inner.keys
    }
    pub(crate) fn mailer(&self) -> &dyn Mailer {
        &*self.inner.mailer
    }

    /// Health of the platform's dependencies: `Err(Unavailable)` when the database is down.
    pub async fn health(&self) -> Result<()> {
        self.db().ping().await.map_err(Error::from)
    }

    /// Prepares a fresh or existing database: migrations, the current terms version.
    pub async fn bootstrap(&self) -> Result<()> {
        self.db().migrate().await?;
        terms::ensure_seeded(self).await
    }
}

/// Who is acting, and from where: passed to every use case.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    /// The client's address as the transport saw it (for throttling and the audit log).
    pub ip: String,
}

impl Ctx {
    pub fn system() -> Ctx {
        Ctx {
            principal: Principal::System,
            ip: "-".into(),
        }
    }
    pub fn scope(&self) -> Scope {
        Scope::of(&self.principal)
    }
    /// Allows operators holding one of `roles` (admins may do everything an operator may) and
    /// the platform itself.
    pub fn require_operator(&self, roles: &[OperatorRole]) -> Result<()> {
        match self.principal {
            Principal::System => Ok(()),
            Principal::Operator { role, .. }
                if role == OperatorRole::Admin || roles.contains(&role) =>
            {
                Ok(())
            }
            Principal::Operator { .. } => {
                Err(Error::Forbidden("your operator role does not allow this"))
            }
            _ => Err(Error::Forbidden("this is for operators only")),
        }
    }
    pub fn require_subscriber(&self) -> Result<maocloud_types::SubscriberId> {
        self.principal
            .subscriber()
            .ok_or(Error::Forbidden("this is for subscribers only"))
    }
}

/// The records use cases return, for transports to turn into their own views.
pub use maocloud_datastore::model;

/// Stored responses for `Idempotency-Key` (the transport decides what a request is).
pub mod idempotency {
    use crate::{App, Result};
    pub use maocloud_datastore::StoredResponse;

    pub async fn fetch(app: &App, scope: &str, key: &str) -> Result<Option<StoredResponse>> {
        let mut tx = app.db().read().await?;
        Ok(tx.idempotency_fetch(scope, key).await?)
    }

    /// Keeps the first response; a concurrent duplicate that lost the race is ignored.
    pub async fn store(app: &App, scope: &str, key: &str, resp: &StoredResponse) -> Result<()> {
        let mut tx = app.db().write().await?;
        match tx.idempotency_store(scope, key, resp, app.now()).await {
            Ok(()) => Ok(tx.commit().await?),
            Err(maocloud_datastore::Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Counts for the platform's own metrics.
pub async fn job_counts(app: &App) -> Result<Vec<(String, i64)>> {
    let mut tx = app.db().read().await?;
    Ok(tx.job_counts().await?)
}

impl App {
    /// `sqlite` or `postgres`.
    pub fn database_kind(&self) -> &'static str {
        match self.db().backend() {
            maocloud_datastore::Backend::Sqlite => "sqlite",
            maocloud_datastore::Backend::Postgres => "postgres",
        }
    }
}
