//! Credentials other than the password: API tokens, console sessions, one-time tokens (email
//! verification, password reset) and the login-attempt record that throttling reads.
//! Only hashes of secrets are stored; callers hash before asking.

use crate::model::*;
use crate::{col, us, Result, Tx};
use maocloud_types::{ApiTokenId, SessionId, Timestamp};
use sqlx::any::AnyRow;
use uuid::Uuid;

fn api_token(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: col::id(row, "id")?,
        account_id: col::id(row, "account_id")?,
        name: col::get(row, "name")?,
        prefix: col::get(row, "prefix")?,
        created_at: col::ts(row, "created_at")?,
        expires_at: col::opt_ts(row, "expires_at")?,
        last_used_at: col::opt_ts(row, "last_used_at")?,
        revoked_at: col::opt_ts(row, "revoked_at")?,
    })
}

fn session(row: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: col::id(row, "id")?,
        account_id: col::id(row, "account_id")?,
        csrf_token: col::get(row, "csrf_token")?,
        mfa_pending: col::flag(row, "mfa_pending")?,
        created_at: col::ts(row, "created_at")?,
        expires_at: col::ts(row, "expires_at")?,
        last_seen_at: col::ts(row, "last_seen_at")?,
    })
}

const TOKEN_COLS: &str =
    "id, account_id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

impl Tx {
    pub async fn api_token_create(&mut self, t: &ApiToken, token_hash: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id.to_string())
        .bind(t.account_id.to_string())
        .bind(&t.name)
        .bind(token_hash)
        .bind(&t.prefix)
        .bind(us(t.created_at))
        .bind(t.expires_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The live token with this hash: not revoked, not expired at `now`.
    pub async fn api_token_by_hash(&mut self, hash: &str, now: Timestamp) -> Result<ApiToken> {
        let q = format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row = sqlx::query(&q)
            .bind(hash)
            .bind(us(now))
            .fetch_one(&mut *self.tx)
            .await?;
        api_token(&row)
    }

    /// An account's tokens that are not revoked, newest first.
    pub async fn api_token_list(&mut self, account: Uuid) -> Result<Vec<ApiToken>> {
        let q = format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE account_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
        );
        let rows = sqlx::query(&q)
            .bind(account.to_string())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(api_token).collect()
    }

    /// Revokes one of the account's tokens; `NotFound` if it is not theirs or already revoked.
    pub async fn api_token_revoke(
        &mut self,
        account: Uuid,
        id: ApiTokenId,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
        )
        .bind(id.to_string())
        .bind(account.to_string())
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(crate::Error::NotFound);
        }
        Ok(())
    }

    pub async fn api_token_touch(&mut self, id: ApiTokenId, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Revokes every token and session of an account (password reset, credential loss).
    pub async fn credentials_revoke_all(&mut self, account: Uuid, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        for table in ["api_tokens", "sessions"] {
            sqlx::query(&format!(
                "UPDATE {table} SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL"
            ))
            .bind(account.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    pub async fn session_create(&mut self, s: &Session, token_hash: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO sessions (id, account_id, token_hash, csrf_token, mfa_pending, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id.to_string())
        .bind(s.account_id.to_string())
        .bind(token_hash)
        .bind(&s.csrf_token)
        .bind(i64::from(s.mfa_pending))
        .bind(us(s.created_at))
        .bind(us(s.expires_at))
        .bind(us(s.last_seen_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn session_by_hash(&mut self, hash: &str, now: Timestamp) -> Result<Session> {
        let row = sqlx::query(
            "SELECT id, account_id, csrf_token, mfa_pending, created_at, expires_at, last_seen_at \
             FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(hash)
        .bind(us(now))
        .fetch_one(&mut *self.tx)
        .await?;
        session(&row)
    }

    pub async fn session_complete_mfa(&mut self, id: SessionId) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE sessions SET mfa_pending = 0 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn session_revoke(&mut self, id: SessionId, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn one_time_token_create(
        &mut self,
        account: Uuid,
        purpose: OneTimePurpose,
        token_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO one_time_tokens (id, account_id, purpose, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(account.to_string())
        .bind(purpose.as_str())
        .bind(token_hash)
        .bind(us(now))
        .bind(us(expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Ends every unused emailed link of an account (R-5a: a stolen mailbox's pending links).
    pub async fn one_time_tokens_revoke(&mut self, account: Uuid, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE one_time_tokens SET expires_at = $2 WHERE account_id = $1 AND used_at IS NULL AND expires_at > $2")
            .bind(account.to_string())
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many one-time tokens of a purpose an account was sent since `since`.
    pub async fn one_time_token_count_since(
        &mut self,
        account: Uuid,
        purpose: OneTimePurpose,
        since: Timestamp,
    ) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM one_time_tokens WHERE account_id = $1 AND purpose = $2 AND created_at >= $3")
            .bind(account.to_string())
            .bind(purpose.as_str())
            .bind(us(since))
            .fetch_one(&mut *self.tx)
            .await?;
        col::get(&row, "n")
    }

    /// Uses a one-time token: returns its account if it exists, has this purpose, is unused and
    /// unexpired; marks it used in the same statement so it can never be used twice.
    pub async fn one_time_token_consume(
        &mut self,
        purpose: OneTimePurpose,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Uuid> {
        self.check_writable()?;
        let row = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3 RETURNING account_id",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(us(now))
        .fetch_one(&mut *self.tx)
        .await?;
        col::id(&row, "account_id")
    }

    pub async fn login_attempt_record(
        &mut self,
        email: &str,
        ip: &str,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO login_attempts (id, email, ip, at, success) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(email)
        .bind(ip)
        .bind(us(now))
        .bind(i64::from(success))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Failed attempts since `since` for this email and for this IP: `(per_email, per_ip)`.
    /// A success resets the email's count: only failures recorded after the last success count
    /// (ids are time-ordered, so this holds even when the injected clock stands still).
    pub async fn login_failures_since(
        &mut self,
        email: &str,
        ip: &str,
        since: Timestamp,
    ) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM login_attempts WHERE email = $1 AND at >= $3 AND success = 0 \
               AND id > COALESCE((SELECT MAX(id) FROM login_attempts WHERE email = $1 AND success = 1), '')) AS by_email, \
             (SELECT COUNT(*) FROM login_attempts WHERE ip = $2 AND at >= $3 AND success = 0) AS by_ip",
        )
        .bind(email)
        .bind(ip)
        .bind(us(since))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((col::get(&row, "by_email")?, col::get(&row, "by_ip")?))
    }
}
