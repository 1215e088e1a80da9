//! Durable background jobs: a registry of handlers by kind and a runner that claims due jobs
//! with a lease, runs them, and completes, retries (exponential backoff) or fails them. Several
//! runners (several `serve` replicas) never run the same job at once.

use crate::{App, Result};
use futures_like::BoxFuture;
use jiff::SignedDuration;
use maocloud_datastore::Job;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod futures_like {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// What a handler says of its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// A transient failure: run again later (until the job's attempts run out).
    Retry(String),
    /// A permanent failure: never run again.
    Fail(String),
}

type Handler = Arc<dyn Fn(App, Job) -> BoxFuture<JobOutcome> + Send + Sync>;

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Handler>,
}

impl Registry {
    pub fn register(
        &mut self,
        kind: &'static str,
        f: impl Fn(App, Job) -> BoxFuture<JobOutcome> + Send + Sync + 'static,
    ) {
        self.handlers.insert(kind, Arc::new(f));
    }
    /// The platform's handlers.
    pub fn standard() -> Registry {
        let mut r = Registry::default();
        crate::notify::register(&mut r);
        crate::compute::vms::register(&mut r);
        crate::privacy::register(&mut r);
        r
    }
}

/// Delay before attempt `n + 1`: 5 s, 10 s, 20 s … capped at one hour.
pub fn backoff(attempts: i64) -> SignedDuration {
    let secs = 5i64
        .saturating_mul(1i64 << attempts.clamp(0, 20) as u32 >> 1)
        .min(3600);
    SignedDuration::from_secs(secs.max(5))
}

const LEASE: SignedDuration = SignedDuration::from_secs(120);

/// Claims and runs due jobs until none is due; returns how many ran. Tests call this directly.
pub async fn run_due(app: &App, registry: &Registry, worker: &str) -> Result<usize> {
    let mut ran = 0;
    loop {
        let now = app.now();
        let job = {
            let mut tx = app.db().write().await?;
            let j = tx.job_claim(worker, now, now + LEASE).await?;
            tx.commit().await?;
            j
        };
        let Some(job) = job else { return Ok(ran) };
        ran += 1;
        let outcome = match registry.handlers.get(job.kind.as_str()) {
            Some(h) => h(app.clone(), job.clone()).await,
            None => JobOutcome::Fail(format!("no handler for job kind {}", job.kind)),
        };
        let now = app.now();
        let mut tx = app.db().write().await?;
        let held = match &outcome {
            JobOutcome::Done => tx.job_complete(job.id, worker, now).await?,
            JobOutcome::Retry(e) if job.attempts < job.max_attempts => {
                tx.job_fail(job.id, worker, e, Some(now + backoff(job.attempts)), now)
                    .await?
            }
            JobOutcome::Retry(e) | JobOutcome::Fail(e) => {
                tx.job_fail(job.id, worker, e, None, now).await?
            }
        };
        tx.commit().await?;
        if !held {
            tracing::warn!(job = %job.id, kind = %job.kind, "lease lost before the job finished");
        }
        if let JobOutcome::Retry(e) | JobOutcome::Fail(e) = &outcome {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
        }
    }
}

/// Runs jobs forever, polling every `every`; stops when `shutdown` fires.
pub async fn run_forever(
    app: App,
    registry: Registry,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let worker = format!("worker-{}", uuid::Uuid::now_v7());
    loop {
        if let Err(e) = run_due(&app, &registry, &worker).await {
            tracing::warn!(error = %e, "job runner could not reach the database");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = app.jobs_woken() => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff(1).as_secs(), 5);
        assert_eq!(super::backoff(2).as_secs(), 10);
        assert_eq!(super::backoff(3).as_secs(), 20);
        assert_eq!(super::backoff(30).as_secs(), 3600);
    }
}
