//! Accounts (subscribers and operators) and subscriber profiles.

use crate::model::*;
use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{OperatorRole, PageRequest, SubscriberId, Timestamp};
use sqlx::any::AnyRow;
use uuid::Uuid;

const ACCOUNT_COLS: &str = "id, kind, email, password_hash, role, display_name, locale, \
    email_verified_at, totp_secret, totp_enabled, totp_last_step, credentials_changed_at, \
    disabled_at, created_at, updated_at";

fn account(row: &AnyRow) -> Result<Account> {
    let kind: String = col::get(row, "kind")?;
    let role: Option<String> = col::get(row, "role")?;
    Ok(Account {
        id: col::id(row, "id")?,
        kind: match kind.as_str() {
            "operator" => AccountKind::Operator,
            _ => AccountKind::Subscriber,
        },
        email: col::get(row, "email")?,
        password_hash: col::get(row, "password_hash")?,
        role: role
            .map(|r| r.parse().map_err(Error::Corrupt))
            .transpose()?,
        display_name: col::get(row, "display_name")?,
        locale: col::get(row, "locale")?,
        email_verified_at: col::opt_ts(row, "email_verified_at")?,
        totp_secret: col::get(row, "totp_secret")?,
        totp_enabled: col::flag(row, "totp_enabled")?,
        totp_last_step: col::get(row, "totp_last_step")?,
        credentials_changed_at: col::ts(row, "credentials_changed_at")?,
        disabled_at: col::opt_ts(row, "disabled_at")?,
        created_at: col::ts(row, "created_at")?,
        updated_at: col::ts(row, "updated_at")?,
    })
}

const PROFILE_COLS: &str = "account_id, customer_kind, full_name, company_name, company_id, \
    vat_number, address_line1, address_line2, postal_code, city, country, phone, status, \
    created_at, updated_at";

fn profile(row: &AnyRow) -> Result<SubscriberProfile> {
    profile_as(row, "")
}

/// A profile from a row where its `status`, `created_at` and `updated_at` carry `prefix`
/// (a join with `accounts`, which has columns of the same names).
fn profile_as(row: &AnyRow, prefix: &str) -> Result<SubscriberProfile> {
    Ok(SubscriberProfile {
        id: col::id(row, "account_id")?,
        customer_kind: col::get(row, "customer_kind")?,
        full_name: col::get(row, "full_name")?,
        company_name: col::get(row, "company_name")?,
        company_id: col::get(row, "company_id")?,
        vat_number: col::get(row, "vat_number")?,
        address_line1: col::get(row, "address_line1")?,
        address_line2: col::get(row, "address_line2")?,
        postal_code: col::get(row, "postal_code")?,
        city: col::get(row, "city")?,
        country: col::get(row, "country")?,
        phone: col::get(row, "phone")?,
        status: col::get(row, &format!("{prefix}status"))?,
        created_at: col::ts(row, &format!("{prefix}created_at"))?,
        updated_at: col::ts(row, &format!("{prefix}updated_at"))?,
    })
}

/// What a new account needs.
pub struct NewAccount<'a> {
    pub id: Uuid,
    pub kind: AccountKind,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Option<OperatorRole>,
    pub display_name: &'a str,
    pub locale: &'a str,
    pub email_verified: bool,
}

impl Tx {
    /// Creates an account; a taken email gives `Conflict("email")`.
    pub async fn account_create(&mut self, a: &NewAccount<'_>, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO accounts (id, kind, email, password_hash, role, display_name, locale, \
             email_verified_at, totp_enabled, credentials_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $9)",
        )
        .bind(a.id.to_string())
        .bind(a.kind.as_str())
        .bind(a.email)
        .bind(a.password_hash)
        .bind(a.role.map(|r| r.as_str()))
        .bind(a.display_name)
        .bind(a.locale)
        .bind(a.email_verified.then(|| us(now)))
        .bind(us(now))
        .execute(&mut *self.tx)
        .await;
        match r {
            Err(e) => match Error::from(e) {
                Error::Conflict(_) => Err(Error::Conflict("email".into())),
                other => Err(other),
            },
            Ok(_) => Ok(()),
        }
    }

    pub async fn account_fetch(&mut self, id: Uuid) -> Result<Account> {
        let q = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        let row = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_one(&mut *self.tx)
            .await?;
        account(&row)
    }

    pub async fn account_by_email(&mut self, email: &str) -> Result<Account> {
        let q = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE email = $1");
        let row = sqlx::query(&q).bind(email).fetch_one(&mut *self.tx).await?;
        account(&row)
    }

    /// The active operators holding `role` (whom the support desk emails).
    pub async fn operators_with_role(&mut self, role: OperatorRole) -> Result<Vec<Account>> {
        let q = format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE kind = 'operator' AND role = $1 AND disabled_at IS NULL ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(role.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(account).collect()
    }

    /// Sets a new password hash and marks every older credential as stale.
    pub async fn account_set_password(
        &mut self,
        id: Uuid,
        hash: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE accounts SET password_hash = $2, credentials_changed_at = $3, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(hash)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn account_set_email_verified(&mut self, id: Uuid, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE accounts SET email_verified_at = $2, updated_at = $2 WHERE id = $1 AND email_verified_at IS NULL")
            .bind(id.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Stores a TOTP secret (pending until `enabled`) or clears it (`None`).
    pub async fn account_set_totp(
        &mut self,
        id: Uuid,
        secret: Option<&str>,
        enabled: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE accounts SET totp_secret = $2, totp_enabled = $3, totp_last_step = NULL, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(secret)
        .bind(i64::from(enabled))
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records the TOTP time step just used, refusing a step already used (replay).
    /// Returns false when the step is not newer than the last one.
    pub async fn account_use_totp_step(&mut self, id: Uuid, step: i64) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE accounts SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(id.to_string())
        .bind(step)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn account_set_locale(
        &mut self,
        id: Uuid,
        locale: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE accounts SET locale = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(locale)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn operator_count(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE kind = 'operator'")
            .fetch_one(&mut *self.tx)
            .await?;
        col::get(&row, "n")
    }

    /// Rewrites a profile's identity and billing details (rectification) and the account's
    /// display name with it. Issued invoices keep the copy they were issued with.
    pub async fn subscriber_profile_update(&mut self, p: &SubscriberProfile) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE subscriber_profiles SET customer_kind = $2, full_name = $3, company_name = $4, \
             company_id = $5, vat_number = $6, address_line1 = $7, address_line2 = $8, postal_code = $9, \
             city = $10, country = $11, phone = $12, updated_at = $13 WHERE account_id = $1 AND status <> 'erased'",
        )
        .bind(p.id.to_string())
        .bind(&p.customer_kind)
        .bind(&p.full_name)
        .bind(&p.company_name)
        .bind(&p.company_id)
        .bind(&p.vat_number)
        .bind(&p.address_line1)
        .bind(&p.address_line2)
        .bind(&p.postal_code)
        .bind(&p.city)
        .bind(&p.country)
        .bind(&p.phone)
        .bind(us(p.updated_at))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE accounts SET display_name = $2, updated_at = $3 WHERE id = $1")
            .bind(p.id.to_string())
            .bind(&p.full_name)
            .bind(us(p.updated_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn subscriber_profile_create(&mut self, p: &SubscriberProfile) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO subscriber_profiles (account_id, customer_kind, full_name, company_name, \
             company_id, vat_number, address_line1, address_line2, postal_code, city, country, \
             phone, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(p.id.to_string())
        .bind(&p.customer_kind)
        .bind(&p.full_name)
        .bind(&p.company_name)
        .bind(&p.company_id)
        .bind(&p.vat_number)
        .bind(&p.address_line1)
        .bind(&p.address_line2)
        .bind(&p.postal_code)
        .bind(&p.city)
        .bind(&p.country)
        .bind(&p.phone)
        .bind(&p.status)
        .bind(us(p.created_at))
        .bind(us(p.updated_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A subscriber's profile, if the scope may see it.
    /// What a document needs of its buyer, in one read: the account (email, language), the
    /// profile (identity, address) and the invoice delivery choice (`electronic` or `paper`).
    pub async fn billing_party(
        &mut self,
        id: SubscriberId,
    ) -> Result<(Account, SubscriberProfile, String)> {
        let q = format!(
            "SELECT {}, p.account_id, p.customer_kind, p.full_name, p.company_name, p.company_id, \
             p.vat_number, p.address_line1, p.address_line2, p.postal_code, p.city, p.country, \
             p.phone, p.status AS p_status, p.created_at AS p_created_at, \
             p.updated_at AS p_updated_at, p.invoice_delivery \
             FROM accounts a JOIN subscriber_profiles p ON p.account_id = a.id WHERE a.id = $1",
            crate::prefixed(ACCOUNT_COLS, "a")
        );
        let row = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok((
            account(&row)?,
            profile_as(&row, "p_")?,
            col::get(&row, "invoice_delivery")?,
        ))
    }

    pub async fn subscriber_profile_fetch(
        &mut self,
        scope: &Scope,
        id: SubscriberId,
    ) -> Result<SubscriberProfile> {
        let q = format!(
            "SELECT {PROFILE_COLS} FROM subscriber_profiles WHERE account_id = $1 \
             AND ($2 IS NULL OR account_id = $2)"
        );
        let row = sqlx::query(&q)
            .bind(id.to_string())
            .bind(scope.owner())
            .fetch_one(&mut *self.tx)
            .await?;
        profile(&row)
    }

    /// Subscribers, newest first, optionally filtered by a search on email or name.
    pub async fn subscriber_list(
        &mut self,
        scope: &Scope,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<Vec<SubscriberSummary>> {
        let pattern = search.map(|s| format!("%{}%", s.to_lowercase().replace(['%', '_'], "")));
        let rows = sqlx::query(
            "SELECT p.account_id, a.email, p.full_name, p.customer_kind, p.company_name, p.status, \
             a.email_verified_at, p.created_at FROM subscriber_profiles p \
             JOIN accounts a ON a.id = p.account_id \
             WHERE ($1 IS NULL OR p.account_id = $1) \
             AND ($2 IS NULL OR p.account_id < $2) \
             AND ($3 IS NULL OR LOWER(a.email) LIKE $3 OR LOWER(p.full_name) LIKE $3 OR LOWER(COALESCE(p.company_name, '')) LIKE $3) \
             ORDER BY p.account_id DESC LIMIT $4",
        )
        .bind(scope.owner())
        .bind(page.after.clone())
        .bind(pattern)
        .bind(page.effective_limit() as i64 + 1)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                let verified: Option<i64> = col::get(row, "email_verified_at")?;
                Ok(SubscriberSummary {
                    id: col::id(row, "account_id")?,
                    email: col::get(row, "email")?,
                    full_name: col::get(row, "full_name")?,
                    customer_kind: col::get(row, "customer_kind")?,
                    company_name: col::get(row, "company_name")?,
                    status: col::get(row, "status")?,
                    email_verified: verified.is_some(),
                    created_at: col::ts(row, "created_at")?,
                })
            })
            .collect()
    }
}
