//! The audit trail: every operator action and every operator access to a subscriber's
//! personal data is appended here, in the same transaction as the access. Only admins read it.

use crate::{Ctx, Result};
use maocloud_datastore::{AuditEntry, Tx};
use maocloud_types::{OperatorRole, Page, PageRequest, SubscriberId};

/// Appends an entry for `ctx`'s principal.
pub async fn record(
    tx: &mut Tx,
    ctx: &Ctx,
    now: jiff::Timestamp,
    action: &str,
    target: Option<&str>,
    subscriber: Option<SubscriberId>,
    detail: serde_json::Value,
) -> Result<()> {
    let detail = match detail {
        serde_json::Value::Object(mut m) => {
            m.insert("ip".into(), ctx.ip.clone().into());
            serde_json::Value::Object(m)
        }
        other => serde_json::json!({ "ip": ctx.ip, "detail": other }),
    };
    tx.audit_append(
        now,
        &ctx.principal.label(),
        action,
        target,
        subscriber,
        &detail,
    )
    .await?;
    Ok(())
}

/// The audit log, newest first; admins only.
pub async fn list(
    app: &crate::App,
    ctx: &Ctx,
    subscriber: Option<SubscriberId>,
    page: &PageRequest,
) -> Result<Page<AuditEntry>> {
    ctx.require_operator(&[OperatorRole::Admin])?;
    let mut tx = app.db().read().await?;
    let rows = tx.audit_list(subscriber, page).await?;
    Ok(Page::from_rows(rows, page.effective_limit(), |e| {
        e.id.to_string()
    }))
}
