//! Billing records: offers, subscriptions and their offer changes, usage records, gapless
//! document sequences, invoices and credit notes (written once, never updated or deleted),
//! payments and their allocation to invoices.

use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{
    Cents, InvoiceId, OfferId, PageRequest, PaymentId, SubscriberId, SubscriptionId, Timestamp,
};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Offer {
    pub id: OfferId,
    pub code: String,
    pub description: String,
    /// The contractual terms (JSON of `maocloud_billing::OfferTerms`).
    pub terms: serde_json::Value,
    pub multiple_allowed: bool,
    pub status: String,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub subscriber_id: SubscriberId,
    pub offer_id: OfferId,
    /// A copy of the offer's terms when subscribed (or changed): never rewritten by the offer.
    pub terms: serde_json::Value,
    pub status: String,
    pub start_date: String,
    pub commitment_end: Option<String>,
    /// The last day already charged in advance.
    pub billed_until: String,
    pub created_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct OfferChange {
    pub id: String,
    pub subscription_id: SubscriptionId,
    pub from_terms: serde_json::Value,
    pub to_terms: serde_json::Value,
    pub effective_date: String,
}

/// An issued invoice or credit note.
#[derive(Debug, Clone)]
pub struct InvoiceRecord {
    pub id: InvoiceId,
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub number: String,
    pub subscriber_id: SubscriberId,
    pub subscription_id: Option<SubscriptionId>,
    /// Unique key of what was billed (subscription + month): billing it twice is impossible.
    pub billing_key: Option<String>,
    pub credited_invoice_id: Option<InvoiceId>,
    pub issue_date: String,
    pub due_date: Option<String>,
    pub seller: serde_json::Value,
    pub buyer: serde_json::Value,
    pub lines: serde_json::Value,
    pub vat: serde_json::Value,
    pub total_excl: Cents,
    pub total_vat: Cents,
    pub total_incl: Cents,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

/// What is still owed on one invoice.
#[derive(Debug, Clone)]
pub struct Outstanding {
    pub invoice_id: InvoiceId,
    pub number: String,
    pub due_date: Option<String>,
    pub total_incl: Cents,
    pub paid: Cents,
    pub credited: Cents,
}

impl Outstanding {
    pub fn remaining(&self) -> Cents {
        Cents(self.total_incl.0 - self.paid.0 - self.credited.0)
    }
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub id: PaymentId,
    pub subscriber_id: SubscriberId,
    pub amount: Cents,
    pub method: String,
    pub reference: String,
    pub received_on: String,
    pub recorded_by: String,
    pub created_at: Timestamp,
}

fn json(row: &AnyRow, name: &str) -> Result<serde_json::Value> {
    let s: String = col::get(row, name)?;
    serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("{name}: {e}")))
}

fn offer(row: &AnyRow) -> Result<Offer> {
    Ok(Offer {
        id: col::id(row, "id")?,
        code: col::get(row, "code")?,
        description: col::get(row, "description")?,
        terms: json(row, "terms")?,
        multiple_allowed: col::flag(row, "multiple_allowed")?,
        status: col::get(row, "status")?,
        created_at: col::ts(row, "created_at")?,
        retired_at: col::opt_ts(row, "retired_at")?,
    })
}

fn subscription(row: &AnyRow) -> Result<Subscription> {
    Ok(Subscription {
        id: col::id(row, "id")?,
        subscriber_id: col::id(row, "subscriber_id")?,
        offer_id: col::id(row, "offer_id")?,
        terms: json(row, "terms")?,
        status: col::get(row, "status")?,
        start_date: col::get(row, "start_date")?,
        commitment_end: col::get(row, "commitment_end")?,
        billed_until: col::get(row, "billed_until")?,
        created_at: col::ts(row, "created_at")?,
        ended_at: col::opt_ts(row, "ended_at")?,
    })
}

fn invoice(row: &AnyRow) -> Result<InvoiceRecord> {
    Ok(InvoiceRecord {
        id: col::id(row, "id")?,
        kind: col::get(row, "kind")?,
        number: col::get(row, "number")?,
        subscriber_id: col::id(row, "subscriber_id")?,
        subscription_id: col::opt_id(row, "subscription_id")?,
        billing_key: col::get(row, "billing_key")?,
        credited_invoice_id: col::opt_id(row, "credited_invoice_id")?,
        issue_date: col::get(row, "issue_date")?,
        due_date: col::get(row, "due_date")?,
        seller: json(row, "seller")?,
        buyer: json(row, "buyer")?,
        lines: json(row, "lines")?,
        vat: json(row, "vat")?,
        total_excl: Cents(col::get(row, "total_excl")?),
        total_vat: Cents(col::get(row, "total_vat")?),
        total_incl: Cents(col::get(row, "total_incl")?),
        note: col::get(row, "note")?,
        created_at: col::ts(row, "created_at")?,
    })
}

fn payment(row: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: col::id(row, "id")?,
        subscriber_id: col::id(row, "subscriber_id")?,
        amount: Cents(col::get(row, "amount")?),
        method: col::get(row, "method")?,
        reference: col::get(row, "reference")?,
        received_on: col::get(row, "received_on")?,
        recorded_by: col::get(row, "recorded_by")?,
        created_at: col::ts(row, "created_at")?,
    })
}

const OFFER_COLS: &str =
    "id, code, description, terms, multiple_allowed, status, created_at, retired_at";
const SUB_COLS: &str = "id, subscriber_id, offer_id, terms, status, start_date, commitment_end, billed_until, created_at, ended_at";
const INV_COLS: &str = "id, kind, number, subscriber_id, subscription_id, billing_key, credited_invoice_id, issue_date, due_date, \
    seller, buyer, lines, vat, total_excl, total_vat, total_incl, note, created_at";
const PAY_COLS: &str =
    "id, subscriber_id, amount, method, reference, received_on, recorded_by, created_at";

impl Tx {
    pub async fn offer_create(&mut self, o: &Offer) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO offers (id, code, description, terms, multiple_allowed, status, created_at) VALUES ($1, $2, $3, $4, $5, 'active', $6)",
        )
        .bind(o.id.to_string())
        .bind(&o.code)
        .bind(&o.description)
        .bind(o.terms.to_string())
        .bind(i64::from(o.multiple_allowed))
        .bind(us(o.created_at))
        .execute(&mut *self.tx)
        .await;
        match r.map_err(Error::from) {
            Err(Error::Conflict(_)) => Err(Error::Conflict("code".into())),
            other => other.map(|_| ()),
        }
    }

    pub async fn offer_fetch(&mut self, id: OfferId) -> Result<Offer> {
        let q = format!("SELECT {OFFER_COLS} FROM offers WHERE id = $1");
        offer(
            &sqlx::query(&q)
                .bind(id.to_string())
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    /// Offers in creation order; retired ones only if asked.
    pub async fn offer_list(&mut self, include_retired: bool) -> Result<Vec<Offer>> {
        let q = format!(
            "SELECT {OFFER_COLS} FROM offers WHERE ($1 = 1 OR status = 'active') ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(i64::from(include_retired))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(offer).collect()
    }

    pub async fn offer_retire(&mut self, id: OfferId, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE offers SET status = 'retired', retired_at = $2 WHERE id = $1 AND status = 'active'")
            .bind(id.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    pub async fn subscription_create(&mut self, s: &Subscription) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!("INSERT INTO subscriptions ({SUB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"))
            .bind(s.id.to_string())
            .bind(s.subscriber_id.to_string())
            .bind(s.offer_id.to_string())
            .bind(s.terms.to_string())
            .bind(&s.status)
            .bind(&s.start_date)
            .bind(&s.commitment_end)
            .bind(&s.billed_until)
            .bind(us(s.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn subscription_fetch(
        &mut self,
        scope: &Scope,
        id: SubscriptionId,
    ) -> Result<Subscription> {
        let q = format!("SELECT {SUB_COLS} FROM subscriptions WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)");
        subscription(
            &sqlx::query(&q)
                .bind(id.to_string())
                .bind(scope.owner())
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    /// A subscriber's subscriptions, newest first.
    pub async fn subscription_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<Subscription>> {
        let q = format!("SELECT {SUB_COLS} FROM subscriptions WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC");
        let rows = sqlx::query(&q)
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(subscription).collect()
    }

    /// Replaces the terms of a subscription after an offer change.
    pub async fn subscription_change_offer(
        &mut self,
        id: SubscriptionId,
        offer: OfferId,
        terms: &serde_json::Value,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE subscriptions SET offer_id = $2, terms = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(offer.to_string())
            .bind(terms.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Moves `billed_until` forward, only from the value the caller read (a concurrent run that
    /// already billed this period makes it return false).
    pub async fn subscription_advance_billing(
        &mut self,
        id: SubscriptionId,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE subscriptions SET billed_until = $3 WHERE id = $1 AND billed_until = $2",
        )
        .bind(id.to_string())
        .bind(from)
        .bind(to)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Active subscriptions not yet billed up to `through`, in id order after `after`: of
    /// live subscribers, or of the sandbox subscribers on `test_clock`.
    pub async fn subscription_due(
        &mut self,
        through: &str,
        after: Option<SubscriptionId>,
        limit: i64,
        test_clock: Option<&str>,
    ) -> Result<Vec<Subscription>> {
        let cols = crate::prefixed(SUB_COLS, "s");
        let q = format!(
            "SELECT {cols} FROM subscriptions s JOIN accounts a ON a.id = s.subscriber_id \
             WHERE s.status = 'active' AND s.billed_until < $1 AND ($2 IS NULL OR s.id > $2) \
             AND COALESCE(a.test_clock_id, '') = COALESCE($4, '') ORDER BY s.id LIMIT $3"
        );
        let rows = sqlx::query(&q)
            .bind(through)
            .bind(after.map(|a| a.to_string()))
            .bind(limit)
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(subscription).collect()
    }

    pub async fn offer_change_create(
        &mut self,
        c: &OfferChange,
        subscriber: SubscriberId,
        from_offer: OfferId,
        to_offer: OfferId,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO subscription_changes (id, subscription_id, subscriber_id, from_offer_id, to_offer_id, from_terms, to_terms, effective_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(c.subscription_id.to_string())
        .bind(subscriber.to_string())
        .bind(from_offer.to_string())
        .bind(to_offer.to_string())
        .bind(c.from_terms.to_string())
        .bind(c.to_terms.to_string())
        .bind(&c.effective_date)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Offer changes not yet settled on an invoice, in the order they happened.
    pub async fn offer_change_open(
        &mut self,
        subscription: SubscriptionId,
        effective_before: &str,
    ) -> Result<Vec<OfferChange>> {
        let rows = sqlx::query(
            "SELECT id, subscription_id, from_terms, to_terms, effective_date FROM subscription_changes \
             WHERE subscription_id = $1 AND invoice_id IS NULL AND effective_date < $2 ORDER BY effective_date, id",
        )
        .bind(subscription.to_string())
        .bind(effective_before)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OfferChange {
                    id: col::get(r, "id")?,
                    subscription_id: col::id(r, "subscription_id")?,
                    from_terms: json(r, "from_terms")?,
                    to_terms: json(r, "to_terms")?,
                    effective_date: col::get(r, "effective_date")?,
                })
            })
            .collect()
    }

    pub async fn offer_change_settle(&mut self, change_id: &str, invoice: InvoiceId) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE subscription_changes SET invoice_id = $2 WHERE id = $1 AND invoice_id IS NULL",
        )
        .bind(change_id)
        .bind(invoice.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn usage_record(
        &mut self,
        subscriber: SubscriberId,
        metric: &str,
        quantity: i64,
        day: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO usage_records (id, subscriber_id, metric, quantity, day, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(subscriber.to_string())
            .bind(metric)
            .bind(quantity)
            .bind(day)
            .bind(source)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Usage of a subscriber between two days (inclusive), summed per metric.
    pub async fn usage_totals(
        &mut self,
        subscriber: SubscriberId,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT metric, CAST(SUM(quantity) AS BIGINT) AS total FROM usage_records \
             WHERE subscriber_id = $1 AND day >= $2 AND day <= $3 GROUP BY metric",
        )
        .bind(subscriber.to_string())
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((col::get(r, "metric")?, col::get(r, "total")?)))
            .collect()
    }

    /// The next number of a series, in this transaction: rolled back with it, so numbers have
    /// no gaps (R-6.1e). Concurrent issuers of one series wait for each other.
    pub async fn sequence_next(&mut self, series: &str) -> Result<i64> {
        self.check_writable()?;
        let row = sqlx::query(
            "INSERT INTO document_sequences (series, last_number) VALUES ($1, 1) \
             ON CONFLICT (series) DO UPDATE SET last_number = document_sequences.last_number + 1 RETURNING last_number",
        )
        .bind(series)
        .fetch_one(&mut *self.tx)
        .await?;
        col::get(&row, "last_number")
    }

    /// Issues a document. A second document with the same billing key is a `Conflict`.
    pub async fn invoice_create(&mut self, i: &InvoiceRecord) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO invoices ({INV_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(i.id.to_string())
        .bind(&i.kind)
        .bind(&i.number)
        .bind(i.subscriber_id.to_string())
        .bind(i.subscription_id.map(|s| s.to_string()))
        .bind(&i.billing_key)
        .bind(i.credited_invoice_id.map(|s| s.to_string()))
        .bind(&i.issue_date)
        .bind(&i.due_date)
        .bind(i.seller.to_string())
        .bind(i.buyer.to_string())
        .bind(i.lines.to_string())
        .bind(i.vat.to_string())
        .bind(i.total_excl.0)
        .bind(i.total_vat.0)
        .bind(i.total_incl.0)
        .bind(&i.note)
        .bind(us(i.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The total (including VAT) already credited on an invoice by credit notes.
    pub async fn invoice_credited(&mut self, invoice: InvoiceId) -> Result<Cents> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total_incl), 0) AS BIGINT) AS n FROM invoices WHERE credited_invoice_id = $1",
        )
        .bind(invoice.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Cents(col::get(&row, "n")?))
    }

    /// How many documents of a kind exist.
    pub async fn invoice_count(&mut self, kind: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM invoices WHERE kind = $1")
            .bind(kind)
            .fetch_one(&mut *self.tx)
            .await?;
        col::get(&row, "n")
    }

    pub async fn invoice_fetch(&mut self, scope: &Scope, id: InvoiceId) -> Result<InvoiceRecord> {
        let q = format!(
            "SELECT {INV_COLS} FROM invoices WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        );
        invoice(
            &sqlx::query(&q)
                .bind(id.to_string())
                .bind(scope.owner())
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    /// Documents of one kind, newest first; for one subscriber or (operators) everyone;
    /// only those issued on or after `since` when given.
    pub async fn invoice_list(
        &mut self,
        scope: &Scope,
        subscriber: Option<SubscriberId>,
        kind: &str,
        since: Option<&str>,
        page: &PageRequest,
    ) -> Result<Vec<InvoiceRecord>> {
        let q = format!(
            "SELECT {INV_COLS} FROM invoices WHERE kind = $1 AND ($2 IS NULL OR subscriber_id = $2) AND ($3 IS NULL OR subscriber_id = $3) \
             AND ($4 IS NULL OR issue_date >= $4) AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6"
        );
        let rows = sqlx::query(&q)
            .bind(kind)
            .bind(scope.owner())
            .bind(subscriber.map(|s| s.to_string()))
            .bind(since)
            .bind(page.after.clone())
            .bind(page.effective_limit() as i64 + 1)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(invoice).collect()
    }

    /// Invoices with something left to pay, oldest first.
    pub async fn invoice_outstanding(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<Outstanding>> {
        let rows = sqlx::query(
            "SELECT i.id, i.number, i.due_date, i.total_incl, \
             CAST(COALESCE((SELECT SUM(a.amount) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id WHERE a.invoice_id = i.id AND p.reversed_at IS NULL), 0) AS BIGINT) AS paid, \
             CAST(COALESCE((SELECT SUM(c.total_incl) FROM invoices c WHERE c.credited_invoice_id = i.id), 0) AS BIGINT) AS credited \
             FROM invoices i WHERE i.kind = 'invoice' AND i.subscriber_id = $1 AND ($2 IS NULL OR i.subscriber_id = $2) ORDER BY i.id",
        )
        .bind(subscriber.to_string())
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        let all: Vec<Outstanding> = rows
            .iter()
            .map(|r| {
                Ok(Outstanding {
                    invoice_id: col::id(r, "id")?,
                    number: col::get(r, "number")?,
                    due_date: col::get(r, "due_date")?,
                    total_incl: Cents(col::get(r, "total_incl")?),
                    paid: Cents(col::get(r, "paid")?),
                    credited: Cents(col::get(r, "credited")?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(all.into_iter().filter(|o| o.remaining().0 > 0).collect())
    }

    pub async fn payment_create(&mut self, p: &Payment) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO payments ({PAY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(p.id.to_string())
        .bind(p.subscriber_id.to_string())
        .bind(p.amount.0)
        .bind(&p.method)
        .bind(&p.reference)
        .bind(&p.received_on)
        .bind(&p.recorded_by)
        .bind(us(p.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn payment_allocate(
        &mut self,
        payment: PaymentId,
        invoice: InvoiceId,
        amount: Cents,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO payment_allocations (id, payment_id, invoice_id, amount) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(payment.to_string())
            .bind(invoice.to_string())
            .bind(amount.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn payment_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<Vec<Payment>> {
        let q = format!("SELECT {PAY_COLS} FROM payments WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC");
        let rows = sqlx::query(&q)
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(payment).collect()
    }
}

/// One entry of the print-and-mail queue (R-6.1c).
#[derive(Debug, Clone)]
pub struct PrintItem {
    pub invoice_id: InvoiceId,
    pub number: String,
    pub subscriber_id: SubscriberId,
    pub queued_at: Timestamp,
    pub mailed_at: Option<Timestamp>,
}

impl Tx {
    /// `electronic` or `paper` (R-6.1c).
    pub async fn invoice_delivery_fetch(&mut self, subscriber: SubscriberId) -> Result<String> {
        let row =
            sqlx::query("SELECT invoice_delivery FROM subscriber_profiles WHERE account_id = $1")
                .bind(subscriber.to_string())
                .fetch_one(&mut *self.tx)
                .await?;
        col::get(&row, "invoice_delivery")
    }

    pub async fn invoice_delivery_set(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
        delivery: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE subscriber_profiles SET invoice_delivery = $3, updated_at = $4 WHERE account_id = $1 AND ($2 IS NULL OR account_id = $2)")
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .bind(delivery)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    pub async fn print_queue_add(
        &mut self,
        invoice: InvoiceId,
        subscriber: SubscriberId,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO print_queue (invoice_id, subscriber_id, queued_at) VALUES ($1, $2, $3)",
        )
        .bind(invoice.to_string())
        .bind(subscriber.to_string())
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The queue, waiting items first, oldest first.
    pub async fn print_queue_list(&mut self, include_mailed: bool) -> Result<Vec<PrintItem>> {
        let rows = sqlx::query(
            "SELECT q.invoice_id, i.number, q.subscriber_id, q.queued_at, q.mailed_at FROM print_queue q JOIN invoices i ON i.id = q.invoice_id \
             WHERE ($1 = 1 OR q.mailed_at IS NULL) ORDER BY q.mailed_at IS NOT NULL, q.queued_at, q.invoice_id",
        )
        .bind(i64::from(include_mailed))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PrintItem {
                    invoice_id: col::id(r, "invoice_id")?,
                    number: col::get(r, "number")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    queued_at: col::ts(r, "queued_at")?,
                    mailed_at: col::opt_ts(r, "mailed_at")?,
                })
            })
            .collect()
    }

    pub async fn print_queue_mark_mailed(
        &mut self,
        invoice: InvoiceId,
        by: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE print_queue SET mailed_at = $2, mailed_by = $3 WHERE invoice_id = $1 AND mailed_at IS NULL")
            .bind(invoice.to_string())
            .bind(us(now))
            .bind(by)
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}
