//! Personal-data records: marketing consents and their history, restriction and
//! objection, the register of processors and recipients, access exports
//! and the anonymised statistics' group counts. The rules live in the app crate.

use crate::{col, us, Result, Tx};
use maocloud_types::{SubscriberId, Timestamp};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub purpose: String,
    pub granted: bool,
    pub source: String,
    pub ip: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyEvent {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub choice: String,
    pub active: bool,
    pub reason: Option<String>,
    pub source: String,
    pub created_at: Timestamp,
}

/// A subscriber's current restriction and objection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivacyState {
    pub restricted: bool,
    pub objected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processor {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub purpose: String,
    pub data_categories: String,
    pub country: String,
    pub safeguards: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub removed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyExport {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub status: String,
    pub requested_at: Timestamp,
    pub ready_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub size: Option<i64>,
    pub error: Option<String>,
}

/// One group of a statistic: its key, how many distinct subscribers it counts, and a sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatGroup {
    pub key: String,
    pub label: String,
    pub subscribers: i64,
    pub total: i64,
}

const PROC_COLS: &str = "id, kind, name, purpose, data_categories, country, safeguards, created_at, updated_at, removed_at";

fn processor(r: &AnyRow) -> Result<Processor> {
    Ok(Processor {
        id: col::get(r, "id")?,
        kind: col::get(r, "kind")?,
        name: col::get(r, "name")?,
        purpose: col::get(r, "purpose")?,
        data_categories: col::get(r, "data_categories")?,
        country: col::get(r, "country")?,
        safeguards: col::get(r, "safeguards")?,
        created_at: col::ts(r, "created_at")?,
        updated_at: col::ts(r, "updated_at")?,
        removed_at: col::opt_ts(r, "removed_at")?,
    })
}

const EXPORT_COLS: &str =
    "id, subscriber_id, status, requested_at, ready_at, expires_at, size, error";

fn export(r: &AnyRow) -> Result<PrivacyExport> {
    Ok(PrivacyExport {
        id: col::get(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        status: col::get(r, "status")?,
        requested_at: col::ts(r, "requested_at")?,
        ready_at: col::opt_ts(r, "ready_at")?,
        expires_at: col::opt_ts(r, "expires_at")?,
        size: col::get(r, "size")?,
        error: col::get(r, "error")?,
    })
}

/// Subscribers whose data statistics may not use: restricted or objecting.
const OPTED_OUT: &str =
    "SELECT subscriber_id FROM privacy_state WHERE restricted = 1 OR objected = 1";

impl Tx {
    /// Records a consent change: the new state and its history line, in this transaction.
    pub async fn consent_set(&mut self, e: &ConsentEvent) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO consents (subscriber_id, purpose, granted, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subscriber_id, purpose) DO UPDATE SET granted = $3, updated_at = $4",
        )
        .bind(e.subscriber_id.to_string())
        .bind(&e.purpose)
        .bind(i64::from(e.granted))
        .bind(us(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO consent_events (id, subscriber_id, purpose, granted, source, ip, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(e.subscriber_id.to_string())
        .bind(&e.purpose)
        .bind(i64::from(e.granted))
        .bind(&e.source)
        .bind(&e.ip)
        .bind(us(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The purposes a subscriber currently consents to.
    pub async fn consents_granted(&mut self, subscriber: SubscriberId) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT purpose FROM consents WHERE subscriber_id = $1 AND granted = 1 ORDER BY purpose",
        )
        .bind(subscriber.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| col::get(r, "purpose")).collect()
    }

    /// Every consent change of a subscriber, oldest first.
    pub async fn consent_history(&mut self, subscriber: SubscriberId) -> Result<Vec<ConsentEvent>> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, purpose, granted, source, ip, created_at FROM consent_events \
             WHERE subscriber_id = $1 ORDER BY id",
        )
        .bind(subscriber.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentEvent {
                    id: col::get(r, "id")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    purpose: col::get(r, "purpose")?,
                    granted: col::flag(r, "granted")?,
                    source: col::get(r, "source")?,
                    ip: col::get(r, "ip")?,
                    created_at: col::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    /// The subscribers marketing for `purpose` may reach: consenting, not restricted, live
    /// (verified, not disabled), not in a sandbox.
    pub async fn marketing_audience(&mut self, purpose: &str) -> Result<Vec<SubscriberId>> {
        let rows = sqlx::query(
            "SELECT c.subscriber_id FROM consents c JOIN accounts a ON a.id = c.subscriber_id \
             WHERE c.purpose = $1 AND c.granted = 1 AND a.disabled_at IS NULL AND a.test_clock_id IS NULL \
             AND a.email_verified_at IS NOT NULL \
             AND c.subscriber_id NOT IN (SELECT subscriber_id FROM privacy_state WHERE restricted = 1) \
             ORDER BY c.subscriber_id",
        )
        .bind(purpose)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| col::id(r, "subscriber_id")).collect()
    }

    /// Records a restriction or objection change: the new state and its history line.
    pub async fn privacy_choice_set(&mut self, e: &PrivacyEvent) -> Result<()> {
        self.check_writable()?;
        let column = if e.choice == "restriction" {
            "restricted"
        } else {
            "objected"
        };
        sqlx::query(&format!(
            "INSERT INTO privacy_state (subscriber_id, {column}, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subscriber_id) DO UPDATE SET {column} = $2, updated_at = $3"
        ))
        .bind(e.subscriber_id.to_string())
        .bind(i64::from(e.active))
        .bind(us(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO privacy_events (id, subscriber_id, choice, active, reason, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(e.subscriber_id.to_string())
        .bind(&e.choice)
        .bind(i64::from(e.active))
        .bind(&e.reason)
        .bind(&e.source)
        .bind(us(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn privacy_state(&mut self, subscriber: SubscriberId) -> Result<PrivacyState> {
        let row =
            sqlx::query("SELECT restricted, objected FROM privacy_state WHERE subscriber_id = $1")
                .bind(subscriber.to_string())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(match row {
            Some(r) => PrivacyState {
                restricted: col::flag(&r, "restricted")?,
                objected: col::flag(&r, "objected")?,
            },
            None => PrivacyState::default(),
        })
    }

    pub async fn privacy_history(&mut self, subscriber: SubscriberId) -> Result<Vec<PrivacyEvent>> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, choice, active, reason, source, created_at FROM privacy_events \
             WHERE subscriber_id = $1 ORDER BY id",
        )
        .bind(subscriber.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PrivacyEvent {
                    id: col::get(r, "id")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    choice: col::get(r, "choice")?,
                    active: col::flag(r, "active")?,
                    reason: col::get(r, "reason")?,
                    source: col::get(r, "source")?,
                    created_at: col::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    pub async fn processor_create(&mut self, p: &Processor) -> Result<()> {
        self.check_writable()?;
        let q = format!(
            "INSERT INTO processors ({PROC_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(&q)
            .bind(&p.id)
            .bind(&p.kind)
            .bind(&p.name)
            .bind(&p.purpose)
            .bind(&p.data_categories)
            .bind(&p.country)
            .bind(&p.safeguards)
            .bind(us(p.created_at))
            .bind(us(p.updated_at))
            .bind(p.removed_at.map(us))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Rewrites a processor's entry (not a removed one); `NotFound` otherwise.
    pub async fn processor_update(&mut self, p: &Processor) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE processors SET kind = $2, name = $3, purpose = $4, data_categories = $5, country = $6, \
             safeguards = $7, updated_at = $8, removed_at = $9 WHERE id = $1 AND removed_at IS NULL",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.name)
        .bind(&p.purpose)
        .bind(&p.data_categories)
        .bind(&p.country)
        .bind(&p.safeguards)
        .bind(us(p.updated_at))
        .bind(p.removed_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(crate::Error::NotFound);
        }
        Ok(())
    }

    /// The register: current entries (and removed ones, for operators, when asked).
    pub async fn processor_list(&mut self, with_removed: bool) -> Result<Vec<Processor>> {
        let q = format!(
            "SELECT {PROC_COLS} FROM processors WHERE ($1 = 1 OR removed_at IS NULL) ORDER BY kind, name, id"
        );
        let rows = sqlx::query(&q)
            .bind(i64::from(with_removed))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(processor).collect()
    }

    pub async fn processor_fetch(&mut self, id: &str) -> Result<Processor> {
        let q = format!("SELECT {PROC_COLS} FROM processors WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_one(&mut *self.tx).await?;
        processor(&row)
    }

    pub async fn privacy_export_create(&mut self, e: &PrivacyExport) -> Result<()> {
        self.check_writable()?;
        let q = format!(
            "INSERT INTO privacy_exports ({EXPORT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(&q)
            .bind(&e.id)
            .bind(e.subscriber_id.to_string())
            .bind(&e.status)
            .bind(us(e.requested_at))
            .bind(e.ready_at.map(us))
            .bind(e.expires_at.map(us))
            .bind(e.size)
            .bind(&e.error)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn privacy_export_save(&mut self, e: &PrivacyExport) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE privacy_exports SET status = $2, ready_at = $3, expires_at = $4, size = $5, error = $6 WHERE id = $1",
        )
        .bind(&e.id)
        .bind(&e.status)
        .bind(e.ready_at.map(us))
        .bind(e.expires_at.map(us))
        .bind(e.size)
        .bind(&e.error)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// One export, only its subscriber's (`None`: any, for the job).
    pub async fn privacy_export_fetch(
        &mut self,
        owner: Option<SubscriberId>,
        id: &str,
    ) -> Result<PrivacyExport> {
        let q = format!(
            "SELECT {EXPORT_COLS} FROM privacy_exports WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        );
        let row = sqlx::query(&q)
            .bind(id)
            .bind(owner.map(|s| s.to_string()))
            .fetch_one(&mut *self.tx)
            .await?;
        export(&row)
    }

    pub async fn privacy_export_list(&mut self, owner: SubscriberId) -> Result<Vec<PrivacyExport>> {
        let q = format!(
            "SELECT {EXPORT_COLS} FROM privacy_exports WHERE subscriber_id = $1 ORDER BY id DESC LIMIT 20"
        );
        let rows = sqlx::query(&q)
            .bind(owner.to_string())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(export).collect()
    }

    /// Ready exports whose download window closed at `now`.
    pub async fn privacy_exports_expired(&mut self, now: Timestamp) -> Result<Vec<PrivacyExport>> {
        let q = format!(
            "SELECT {EXPORT_COLS} FROM privacy_exports WHERE status = 'ready' AND expires_at <= $1 ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(us(now))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(export).collect()
    }

    /// Live subscribers per offer (active subscriptions), leaving out restricted and objecting
    /// subscribers and sandboxes.
    pub async fn stats_subscribers_per_offer(&mut self) -> Result<Vec<StatGroup>> {
        let rows = sqlx::query(&format!(
            "SELECT o.code AS k, o.description AS label, COUNT(DISTINCT s.subscriber_id) AS n FROM subscriptions s \
             JOIN offers o ON o.id = s.offer_id JOIN accounts a ON a.id = s.subscriber_id \
             WHERE s.status = 'active' AND a.test_clock_id IS NULL AND s.subscriber_id NOT IN ({OPTED_OUT}) \
             GROUP BY o.code, o.description ORDER BY o.code"
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatGroup {
                    key: col::get(r, "k")?,
                    label: col::get(r, "label")?,
                    subscribers: col::get(r, "n")?,
                    total: col::get(r, "n")?,
                })
            })
            .collect()
    }

    /// Invoiced revenue (excluding VAT, credit notes deducted) per month and offer, with how
    /// many distinct subscribers make each group; the same exclusions.
    pub async fn stats_revenue_per_month(&mut self, since: &str) -> Result<Vec<StatGroup>> {
        let rows = sqlx::query(&format!(
            "SELECT substr(i.issue_date, 1, 7) || ' ' || COALESCE(o.code, '-') AS k, COALESCE(o.description, '-') AS label, \
             COUNT(DISTINCT i.subscriber_id) AS n, \
             CAST(SUM(CASE WHEN i.kind = 'credit_note' THEN -i.total_excl ELSE i.total_excl END) AS BIGINT) AS total \
             FROM invoices i JOIN accounts a ON a.id = i.subscriber_id \
             LEFT JOIN subscriptions s ON s.id = i.subscription_id LEFT JOIN offers o ON o.id = s.offer_id \
             WHERE i.issue_date >= $1 AND a.test_clock_id IS NULL AND i.subscriber_id NOT IN ({OPTED_OUT}) \
             GROUP BY substr(i.issue_date, 1, 7) || ' ' || COALESCE(o.code, '-'), COALESCE(o.description, '-') ORDER BY 1"
        ))
        .bind(since)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatGroup {
                    key: col::get(r, "k")?,
                    label: col::get(r, "label")?,
                    subscribers: col::get(r, "n")?,
                    total: col::get(r, "total")?,
                })
            })
            .collect()
    }

    /// Live VMs per size, with how many distinct subscribers run them; the same exclusions.
    pub async fn stats_vms_per_size(&mut self) -> Result<Vec<StatGroup>> {
        let rows = sqlx::query(&format!(
            "SELECT v.size AS k, v.size AS label, COUNT(DISTINCT v.subscriber_id) AS n, COUNT(*) AS total FROM vms v \
             JOIN accounts a ON a.id = v.subscriber_id \
             WHERE v.deleted_at IS NULL AND a.test_clock_id IS NULL AND v.subscriber_id NOT IN ({OPTED_OUT}) \
             GROUP BY v.size ORDER BY v.size"
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatGroup {
                    key: col::get(r, "k")?,
                    label: col::get(r, "label")?,
                    subscribers: col::get(r, "n")?,
                    total: col::get(r, "total")?,
                })
            })
            .collect()
    }
}

/// What an erasure leaves for the caller to remove outside the database.
#[derive(Debug, Clone, Default)]
pub struct Erased {
    /// The ids of the emails sent to the subscriber (their Maildir copies).
    pub email_ids: Vec<String>,
    /// The subscriber's export archives.
    pub export_ids: Vec<String>,
    /// The address they had (to find their mail in the support intake).
    pub former_email: String,
}

impl Tx {
    /// Erases or pseudonymises a subscriber's personal data everywhere the database holds it
    /// in this transaction: the account becomes `erased_email` with a password nobody
    /// knows, disabled; the profile, SEPA mandates' IBANs and holders, proof documents, ticket
    /// contents and attachments, inbox, emails, keys, tokens, sessions, links, sign-in
    /// attempts, consents' addresses and VMs' keys and user-data are blanked or deleted.
    /// Invoices stay (the law keeps them); their buyer block is sealed by the caller.
    pub async fn subscriber_erase(
        &mut self,
        who: SubscriberId,
        erased_email: &str,
        unknowable_hash: &str,
        now: Timestamp,
    ) -> Result<Erased> {
        self.check_writable()?;
        let id = who.to_string();
        let former: String = col::get(
            &sqlx::query("SELECT email FROM accounts WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *self.tx)
                .await?,
            "email",
        )?;
        let former_name: String = col::get(
            &sqlx::query("SELECT display_name FROM accounts WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *self.tx)
                .await?,
            "display_name",
        )?;
        let email_ids = sqlx::query(
            "SELECT id FROM emails WHERE account_id = $1 OR about_subscriber = $1 OR to_addr = $2",
        )
        .bind(&id)
        .bind(&former)
        .fetch_all(&mut *self.tx)
        .await?
        .iter()
        .map(|r| col::get(r, "id"))
        .collect::<Result<Vec<String>>>()?;
        let export_ids = sqlx::query("SELECT id FROM privacy_exports WHERE subscriber_id = $1")
            .bind(&id)
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|r| col::get(r, "id"))
            .collect::<Result<Vec<String>>>()?;
        let t = us(now);
        sqlx::query(
            "UPDATE accounts SET email = $2, display_name = '-', password_hash = $3, totp_secret = NULL, \
             totp_enabled = 0, totp_last_step = NULL, disabled_at = COALESCE(disabled_at, $4), updated_at = $4 WHERE id = $1",
        )
        .bind(&id)
        .bind(erased_email)
        .bind(unknowable_hash)
        .bind(t)
        .execute(&mut *self.tx)
        .await?;
        // Each statement binds the subscriber ($1) and now ($2).
        let statements: &[&str] = &[
            "UPDATE subscriber_profiles SET full_name = '-', company_name = NULL, company_id = NULL, vat_number = NULL, \
             address_line1 = '-', address_line2 = NULL, postal_code = '-', city = '-', phone = NULL, status = 'erased', \
             updated_at = $2 WHERE account_id = $1",
            "UPDATE mandates SET iban = '', bic = NULL, holder = '-', acceptance = '{}' WHERE subscriber_id = $1 AND $2 > 0",
            "UPDATE proof_requests SET sealed = NULL, file_name = NULL WHERE subscriber_id = $1 AND $2 > 0",
            "DELETE FROM ticket_attachments WHERE ticket_id IN (SELECT id FROM tickets WHERE subscriber_id = $1) AND $2 > 0",
            "UPDATE ticket_messages SET body = '-', external_id = NULL, \
             author_label = CASE WHEN author_kind = 'subscriber' THEN '-' ELSE author_label END \
             WHERE ticket_id IN (SELECT id FROM tickets WHERE subscriber_id = $1) AND $2 > 0",
            "UPDATE tickets SET subject = '-', resources = '[]', detail = '{}', rating_comment = NULL, updated_at = $2 \
             WHERE subscriber_id = $1",
            "DELETE FROM messages WHERE subscriber_id = $1 AND $2 > 0",
            "DELETE FROM storage_keys WHERE subscriber_id = $1 AND $2 > 0",
            "DELETE FROM ssh_keys WHERE subscriber_id = $1 AND $2 > 0",
            "UPDATE api_tokens SET name = '-', revoked_at = COALESCE(revoked_at, $2) WHERE account_id = $1",
            "DELETE FROM sessions WHERE account_id = $1 AND $2 > 0",
            "DELETE FROM one_time_tokens WHERE account_id = $1 AND $2 > 0",
            "UPDATE consent_events SET ip = '-' WHERE subscriber_id = $1 AND $2 > 0",
            "UPDATE privacy_events SET reason = NULL WHERE subscriber_id = $1 AND $2 > 0",
            "UPDATE vms SET ssh_keys = '[]', user_data = NULL WHERE subscriber_id = $1 AND $2 > 0",
            "UPDATE privacy_exports SET status = 'expired' WHERE subscriber_id = $1 AND status <> 'expired' AND $2 > 0",
        ];
        for q in statements {
            sqlx::query(q)
                .bind(&id)
                .bind(t)
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query(
            "UPDATE ticket_events SET actor = '-' WHERE actor = $2 \
             AND ticket_id IN (SELECT id FROM tickets WHERE subscriber_id = $1)",
        )
        .bind(&id)
        .bind(&former_name)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM login_attempts WHERE email = $1")
            .bind(&former)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "UPDATE emails SET to_addr = CASE WHEN account_id = $1 OR to_addr = $2 THEN $3 ELSE to_addr END, \
             subject = '-', body_text = '-', reply_to = NULL, last_error = NULL \
             WHERE account_id = $1 OR about_subscriber = $1 OR to_addr = $2",
        )
            .bind(&id)
            .bind(&former)
            .bind(erased_email)
            .execute(&mut *self.tx)
            .await?;
        Ok(Erased {
            email_ids,
            export_ids,
            former_email: former,
        })
    }

    /// A subscriber's issued documents whose buyer block is not sealed yet: (id, buyer JSON).
    pub async fn invoice_buyers_open(
        &mut self,
        who: SubscriberId,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, buyer FROM invoices WHERE subscriber_id = $1 AND buyer NOT LIKE '{\"sealed\":%' ORDER BY id",
        )
        .bind(who.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((col::get(r, "id")?, col::get(r, "buyer")?)))
            .collect()
    }

    /// Seals an issued document's buyer block at rest after its subscriber's erasure: the
    /// document's content does not change (the billing role reads it unsealed); only a buyer
    /// block not sealed yet can be replaced, and only by `{"sealed": …}`.
    pub async fn invoice_buyer_seal(&mut self, id: &str, sealed: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE invoices SET buyer = $2 WHERE id = $1 AND buyer NOT LIKE '{\"sealed\":%'",
        )
        .bind(id)
        .bind(serde_json::json!({ "sealed": sealed }).to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Tx {
    /// Records (or replaces) a subscriber's pending erasure request.
    pub async fn erasure_request_set(
        &mut self,
        who: SubscriberId,
        code_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO erasure_requests (subscriber_id, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subscriber_id) DO UPDATE SET code_hash = $2, created_at = $3, expires_at = $4",
        )
        .bind(who.to_string())
        .bind(code_hash)
        .bind(us(now))
        .bind(us(expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes a pending erasure request whose code matches and has not expired (once).
    pub async fn erasure_request_take(
        &mut self,
        who: SubscriberId,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "DELETE FROM erasure_requests WHERE subscriber_id = $1 AND code_hash = $2 AND expires_at > $3",
        )
        .bind(who.to_string())
        .bind(code_hash)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Subscribers whose every contract ended on or before `before` and who are not erased yet
    /// (the retention job's work list, R-9.3); sandboxes excluded.
    pub async fn subscribers_past_retention(
        &mut self,
        before: Timestamp,
    ) -> Result<Vec<SubscriberId>> {
        let rows = sqlx::query(
            "SELECT s.subscriber_id FROM subscriptions s JOIN accounts a ON a.id = s.subscriber_id \
             JOIN subscriber_profiles p ON p.account_id = a.id \
             WHERE a.test_clock_id IS NULL AND p.status <> 'erased' \
             GROUP BY s.subscriber_id \
             HAVING SUM(CASE WHEN s.status = 'active' OR s.ended_at IS NULL THEN 1 ELSE 0 END) = 0 \
             AND MAX(s.ended_at) <= $1 ORDER BY s.subscriber_id",
        )
        .bind(us(before))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| col::id(r, "subscriber_id")).collect()
    }
}
