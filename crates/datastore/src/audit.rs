//! The audit log: append-only. There is no method to change or delete an entry.

use crate::model::*;
use crate::{col, us, Result, Tx};
use maocloud_types::{PageRequest, SubscriberId, Timestamp};

impl Tx {
    pub async fn audit_append(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        target: Option<&str>,
        subscriber: Option<SubscriberId>,
        detail: &serde_json::Value,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, subscriber_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(us(at))
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(subscriber.map(|s| s.to_string()))
        .bind(detail.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Entries newest first, optionally only those about one subscriber.
    pub async fn audit_list(
        &mut self,
        subscriber: Option<SubscriberId>,
        page: &PageRequest,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, subscriber_id, detail FROM audit_log \
             WHERE ($1 IS NULL OR subscriber_id = $1) AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(subscriber.map(|s| s.to_string()))
        .bind(page.after.clone())
        .bind(page.effective_limit() as i64 + 1)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = col::get(r, "detail")?;
                Ok(AuditEntry {
                    id: col::id(r, "id")?,
                    at: col::ts(r, "at")?,
                    actor: col::get(r, "actor")?,
                    action: col::get(r, "action")?,
                    target: col::get(r, "target")?,
                    subscriber_id: col::opt_id(r, "subscriber_id")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }
}
