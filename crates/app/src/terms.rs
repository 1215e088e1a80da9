//! Terms-of-service versions: the version shipped with the platform is seeded at start, and
//! sign-up records acceptance of whichever version is current.

use crate::{App, Result};
use maocloud_datastore::TermsVersion;
use maocloud_types::TermsVersionId;

/// The terms shipped with the platform (the provider's seed, in French).
pub const SHIPPED_VERSION: &str = "2026-01";
const SHIPPED_BODY: &str = include_str!("../terms/2026-01-fr.md");

pub(crate) async fn ensure_seeded(app: &App) -> Result<()> {
    let now = app.now();
    let mut tx = app.db().write().await?;
    let epoch = jiff::Timestamp::UNIX_EPOCH;
    tx.terms_version_ensure(&TermsVersion {
        id: TermsVersionId::new(),
        version: SHIPPED_VERSION.into(),
        title: "Conditions générales de vente et d'utilisation Maocloud".into(),
        body: SHIPPED_BODY.into(),
        published_at: epoch.min(now),
        effective_at: epoch.min(now),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The terms in force now.
pub async fn current(app: &App) -> Result<TermsVersion> {
    let mut tx = app.db().read().await?;
    Ok(tx.terms_version_current(app.now()).await?)
}
