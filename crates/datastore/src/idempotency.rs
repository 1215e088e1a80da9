//! Stored responses for `Idempotency-Key`: the first response to a (scope, key) is kept and
//! replayed to any retry with the same request.

use crate::{col, us, Result, Tx};
use maocloud_types::Timestamp;

/// A response kept for replay.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

impl Tx {
    pub async fn idempotency_fetch(
        &mut self,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredResponse>> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            let status: i64 = col::get(&r, "status")?;
            Ok(StoredResponse {
                request_hash: col::get(&r, "request_hash")?,
                status: status as u16,
                body: col::get(&r, "body")?,
            })
        })
        .transpose()
    }

    /// Keeps a response; a concurrent first writer wins (`Conflict`).
    pub async fn idempotency_store(
        &mut self,
        scope: &str,
        key: &str,
        resp: &StoredResponse,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(scope)
        .bind(key)
        .bind(&resp.request_hash)
        .bind(resp.status as i64)
        .bind(&resp.body)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
