//! SEPA direct debit records: mandates, scheduled collections, exported batches, and the
//! reversal of a collected payment when the bank rejects it.

use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{Cents, InvoiceId, PaymentId, SubscriberId, Timestamp};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Mandate {
    pub id: String,
    pub subscriber_id: SubscriberId,
    /// The unique mandate reference (UMR).
    pub reference: String,
    pub iban: String,
    pub bic: Option<String>,
    pub holder: String,
    pub signed_on: String,
    pub accepted_at: Timestamp,
    /// How the electronic acceptance was given (source, address).
    pub acceptance: String,
    pub status: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub id: String,
    pub mandate_id: String,
    pub subscriber_id: SubscriberId,
    pub invoice_id: InvoiceId,
    pub amount: Cents,
    pub collection_date: String,
    pub end_to_end_id: String,
    pub sequence: String,
    pub status: String,
    pub payment_id: Option<PaymentId>,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub message_id: String,
    pub created_at: Timestamp,
    pub transactions: i64,
    pub total: Cents,
    pub xml: String,
}

fn mandate(r: &AnyRow) -> Result<Mandate> {
    Ok(Mandate {
        id: col::get(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        reference: col::get(r, "reference")?,
        iban: col::get(r, "iban")?,
        bic: col::get(r, "bic")?,
        holder: col::get(r, "holder")?,
        signed_on: col::get(r, "signed_on")?,
        accepted_at: col::ts(r, "accepted_at")?,
        acceptance: col::get(r, "acceptance")?,
        status: col::get(r, "status")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn collection(r: &AnyRow) -> Result<Collection> {
    Ok(Collection {
        id: col::get(r, "id")?,
        mandate_id: col::get(r, "mandate_id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        invoice_id: col::id(r, "invoice_id")?,
        amount: Cents(col::get(r, "amount")?),
        collection_date: col::get(r, "collection_date")?,
        end_to_end_id: col::get(r, "end_to_end_id")?,
        sequence: col::get(r, "sequence")?,
        status: col::get(r, "status")?,
        payment_id: col::opt_id(r, "payment_id")?,
    })
}

fn batch(r: &AnyRow) -> Result<Batch> {
    Ok(Batch {
        id: col::get(r, "id")?,
        message_id: col::get(r, "message_id")?,
        created_at: col::ts(r, "created_at")?,
        transactions: col::get(r, "transactions")?,
        total: Cents(col::get(r, "total")?),
        xml: col::get(r, "xml")?,
    })
}

const M_COLS: &str = "id, subscriber_id, reference, iban, bic, holder, signed_on, accepted_at, acceptance, status, created_at";
const C_COLS: &str = "id, mandate_id, subscriber_id, invoice_id, amount, collection_date, end_to_end_id, sequence, status, payment_id";

impl Tx {
    pub async fn mandate_create(&mut self, m: &Mandate) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO mandates ({M_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&m.id)
        .bind(m.subscriber_id.to_string())
        .bind(&m.reference)
        .bind(&m.iban)
        .bind(&m.bic)
        .bind(&m.holder)
        .bind(&m.signed_on)
        .bind(us(m.accepted_at))
        .bind(&m.acceptance)
        .bind(&m.status)
        .bind(us(m.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn mandate_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<Mandate>> {
        let q = format!("SELECT {M_COLS} FROM mandates WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC");
        let rows = sqlx::query(&q)
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(mandate).collect()
    }

    pub async fn mandate_fetch(&mut self, scope: &Scope, id: &str) -> Result<Mandate> {
        let q = format!(
            "SELECT {M_COLS} FROM mandates WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        );
        mandate(
            &sqlx::query(&q)
                .bind(id)
                .bind(scope.owner())
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    /// The subscriber's active mandate, if any.
    pub async fn mandate_active(&mut self, subscriber: SubscriberId) -> Result<Option<Mandate>> {
        let q = format!("SELECT {M_COLS} FROM mandates WHERE subscriber_id = $1 AND status = 'active' ORDER BY id DESC LIMIT 1");
        sqlx::query(&q)
            .bind(subscriber.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(mandate)
            .transpose()
    }

    /// Revokes the subscriber's active mandates (all but `keep`).
    pub async fn mandate_revoke(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<u64> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE mandates SET status = 'revoked', revoked_at = $4 WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) \
             AND ($3 IS NULL OR id = $3) AND status = 'active'",
        )
        .bind(subscriber.to_string())
        .bind(scope.owner())
        .bind(only)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected())
    }

    /// Whether a mandate was already used for a collection sent to the bank (FRST then RCUR).
    pub async fn mandate_used(&mut self, mandate: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sepa_collections WHERE mandate_id = $1 AND status <> 'rejected'")
            .bind(mandate)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(col::get::<i64>(&row, "n")? > 0)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn collection_create(&mut self, c: &Collection, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO sepa_collections (id, mandate_id, subscriber_id, invoice_id, amount, collection_date, end_to_end_id, sequence, status, prenotified_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', $9, $9)",
        )
        .bind(&c.id)
        .bind(&c.mandate_id)
        .bind(c.subscriber_id.to_string())
        .bind(c.invoice_id.to_string())
        .bind(c.amount.0)
        .bind(&c.collection_date)
        .bind(&c.end_to_end_id)
        .bind(&c.sequence)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Scheduled collections due on or before `through`, oldest first.
    pub async fn collection_due(&mut self, through: &str) -> Result<Vec<Collection>> {
        let q = format!("SELECT {C_COLS} FROM sepa_collections WHERE status = 'scheduled' AND collection_date <= $1 ORDER BY collection_date, id");
        let rows = sqlx::query(&q)
            .bind(through)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(collection).collect()
    }

    pub async fn collection_by_end_to_end(&mut self, e2e: &str) -> Result<Collection> {
        let q = format!("SELECT {C_COLS} FROM sepa_collections WHERE end_to_end_id = $1");
        collection(&sqlx::query(&q).bind(e2e).fetch_one(&mut *self.tx).await?)
    }

    pub async fn collection_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<Collection>> {
        let q = format!("SELECT {C_COLS} FROM sepa_collections WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC");
        let rows = sqlx::query(&q)
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(collection).collect()
    }

    /// Marks a collection sent in a batch, with the payment that records it (none when there was
    /// nothing left to collect).
    pub async fn collection_mark_exported(
        &mut self,
        id: &str,
        batch: &str,
        payment: Option<PaymentId>,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE sepa_collections SET status = 'exported', batch_id = $2, payment_id = $3 WHERE id = $1 AND status = 'scheduled'")
            .bind(id)
            .bind(batch)
            .bind(payment.map(|p| p.to_string()))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Marks an exported collection rejected; false if it was not exported (already handled).
    pub async fn collection_mark_rejected(&mut self, id: &str, reason: &str) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE sepa_collections SET status = 'rejected', reject_reason = $2 WHERE id = $1 AND status = 'exported'")
            .bind(id)
            .bind(reason)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn batch_create(&mut self, b: &Batch) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO sepa_batches (id, message_id, created_at, transactions, total, xml) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&b.id)
            .bind(&b.message_id)
            .bind(us(b.created_at))
            .bind(b.transactions)
            .bind(b.total.0)
            .bind(&b.xml)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn batch_fetch(&mut self, id: &str) -> Result<Batch> {
        batch(&sqlx::query("SELECT id, message_id, created_at, transactions, total, xml FROM sepa_batches WHERE id = $1").bind(id).fetch_one(&mut *self.tx).await?)
    }

    pub async fn batch_list(&mut self) -> Result<Vec<Batch>> {
        let rows = sqlx::query("SELECT id, message_id, created_at, transactions, total, '' AS xml FROM sepa_batches ORDER BY id DESC LIMIT 200").fetch_all(&mut *self.tx).await?;
        rows.iter().map(batch).collect()
    }

    /// Reverses a payment (a rejected direct debit): it no longer counts against its invoices.
    pub async fn payment_reverse(
        &mut self,
        id: PaymentId,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE payments SET reversed_at = $2, reversal_reason = $3 WHERE id = $1 AND reversed_at IS NULL")
            .bind(id.to_string())
            .bind(us(now))
            .bind(reason)
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}
