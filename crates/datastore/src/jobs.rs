//! Durable background jobs. A job is claimed with a lease (`locked_by`, `locked_until`) by one
//! conditional UPDATE, so at most one runner holds it even with several replicas on PostgreSQL;
//! a runner that dies simply lets its lease expire and another picks the job up.

use crate::model::*;
use crate::{col, us, Result, Tx};
use maocloud_types::{JobId, Timestamp};

/// What to enqueue.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    pub run_at: Timestamp,
    pub max_attempts: i64,
    /// Jobs sharing a dedupe key are enqueued once.
    pub dedupe_key: Option<&'a str>,
}

impl Tx {
    /// Enqueues a job; returns false if its dedupe key already exists.
    pub async fn job_enqueue(&mut self, j: &NewJob<'_>, now: Timestamp) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO jobs (id, kind, payload, dedupe_key, state, attempts, max_attempts, run_at, created_at) \
             VALUES ($1, $2, $3, $4, 'ready', 0, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(JobId::new().to_string())
        .bind(j.kind)
        .bind(j.payload.to_string())
        .bind(j.dedupe_key)
        .bind(j.max_attempts)
        .bind(us(j.run_at))
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claims the next due job for `worker` until `lease_until`, or `None` if nothing is due
    /// (or another runner won the race).
    pub async fn job_claim(
        &mut self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>> {
        self.check_writable()?;
        // On PostgreSQL two replicas may pick the same row; without SKIP LOCKED the loser waits,
        // re-checks the row (now leased) and gets nothing although other jobs are due, so its
        // runner would go idle. SQLite has one writer at a time and needs no such clause.
        let skip_locked = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET locked_by = $1, locked_until = $3, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'ready' AND run_at <= $2 \
                         AND (locked_until IS NULL OR locked_until < $2) ORDER BY run_at, id LIMIT 1{skip_locked}) \
             AND state = 'ready' AND (locked_until IS NULL OR locked_until < $2) \
             RETURNING id, kind, payload, attempts, max_attempts, run_at"
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(us(now))
            .bind(us(lease_until))
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| {
            let payload: String = col::get(&r, "payload")?;
            Ok(Job {
                id: col::id(&r, "id")?,
                kind: col::get(&r, "kind")?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                attempts: col::get(&r, "attempts")?,
                max_attempts: col::get(&r, "max_attempts")?,
                run_at: col::ts(&r, "run_at")?,
            })
        })
        .transpose()
    }

    /// Marks a claimed job done. Returns false if `worker` no longer holds it.
    pub async fn job_complete(&mut self, id: JobId, worker: &str, now: Timestamp) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'done', finished_at = $3, locked_by = NULL, locked_until = NULL \
             WHERE id = $1 AND locked_by = $2 AND state = 'ready'",
        )
        .bind(id.to_string())
        .bind(worker)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Releases a claimed job after a failure: to run again at `retry_at`, or failed for good.
    pub async fn job_fail(
        &mut self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE jobs SET run_at = $3, last_error = $4, locked_by = NULL, locked_until = NULL \
                 WHERE id = $1 AND locked_by = $2 AND state = 'ready'",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(us(at))
            .bind(error),
            None => sqlx::query(
                "UPDATE jobs SET state = 'failed', finished_at = $3, last_error = $4, locked_by = NULL, locked_until = NULL \
                 WHERE id = $1 AND locked_by = $2 AND state = 'ready'",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(us(now))
            .bind(error),
        }
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Counts of jobs by state, for metrics and the back office.
    pub async fn job_counts(&mut self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&mut *self.tx)
                .await?;
        rows.iter()
            .map(|r| Ok((col::get(r, "state")?, col::get(r, "n")?)))
            .collect()
    }
}
