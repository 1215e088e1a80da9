//! Terms-of-service versions and each subscriber's acceptance of them.

use crate::model::*;
use crate::{col, us, Result, Scope, Tx};
use maocloud_types::{SubscriberId, Timestamp};
use sqlx::any::AnyRow;

fn version(row: &AnyRow) -> Result<TermsVersion> {
    Ok(TermsVersion {
        id: col::id(row, "id")?,
        version: col::get(row, "version")?,
        title: col::get(row, "title")?,
        body: col::get(row, "body")?,
        published_at: col::ts(row, "published_at")?,
        effective_at: col::ts(row, "effective_at")?,
    })
}

impl Tx {
    /// Inserts a terms version unless one with that version string exists; returns whether it did.
    pub async fn terms_version_ensure(&mut self, t: &TermsVersion) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO terms_versions (id, version, title, body, published_at, effective_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (version) DO NOTHING",
        )
        .bind(t.id.to_string())
        .bind(&t.version)
        .bind(&t.title)
        .bind(&t.body)
        .bind(us(t.published_at))
        .bind(us(t.effective_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The version in force at `now`: the latest whose effective date has come.
    pub async fn terms_version_current(&mut self, now: Timestamp) -> Result<TermsVersion> {
        let row = sqlx::query(
            "SELECT id, version, title, body, published_at, effective_at FROM terms_versions \
             WHERE effective_at <= $1 ORDER BY effective_at DESC, id DESC LIMIT 1",
        )
        .bind(us(now))
        .fetch_one(&mut *self.tx)
        .await?;
        version(&row)
    }

    pub async fn terms_acceptance_create(
        &mut self,
        subscriber: SubscriberId,
        version: &TermsVersion,
        at: Timestamp,
        source: &str,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO terms_acceptances (id, subscriber_id, terms_version_id, accepted_at, source) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(subscriber.to_string())
        .bind(version.id.to_string())
        .bind(us(at))
        .bind(source)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn terms_acceptance_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<TermsAcceptance>> {
        let rows = sqlx::query(
            "SELECT v.version, a.accepted_at, a.source FROM terms_acceptances a \
             JOIN terms_versions v ON v.id = a.terms_version_id \
             WHERE a.subscriber_id = $1 AND ($2 IS NULL OR a.subscriber_id = $2) ORDER BY a.id",
        )
        .bind(subscriber.to_string())
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TermsAcceptance {
                    version: col::get(r, "version")?,
                    accepted_at: col::ts(r, "accepted_at")?,
                    source: col::get(r, "source")?,
                })
            })
            .collect()
    }
}
