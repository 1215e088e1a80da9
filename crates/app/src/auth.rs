//! Authentication: Argon2id passwords, TOTP second factor, API tokens and console sessions,
//! sign-in throttling per account and per IP. Secrets are random 256-bit values shown once;
//! only their SHA-256 is stored.

use crate::{App, Ctx, Error, Result};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use maocloud_datastore::{Account, AccountKind, ApiToken, Session};
use maocloud_types::{ApiTokenId, OperatorId, Principal, SessionId, SubscriberId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

const BAD_CREDENTIALS: &str = "wrong email or password";

/// Hashes a password with Argon2id (off the async threads: it is slow on purpose).
pub async fn hash_password(pw: &str) -> Result<String> {
    let pw = pw.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)
}

async fn verify_password(pw: &str, hash: &str) -> bool {
    let (pw, hash) = (pw.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A fresh secret with a readable prefix: `mc_…` (API token), `ms_…` (session), `mo_…` (one-time).
pub fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// What is stored in place of a secret.
pub fn secret_hash(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The principal an account acts as.
pub fn principal_of(a: &Account) -> Principal {
    match (a.kind, a.role) {
        (AccountKind::Operator, Some(role)) => Principal::Operator {
            id: OperatorId(a.id),
            role,
        },
        _ => Principal::Subscriber(SubscriberId(a.id)),
    }
}

fn totp_for(secret_b32: &str) -> Result<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|_| Error::internal("stored TOTP secret is not base32"))?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).map_err(Error::internal)
}

/// A new TOTP secret (base32) and its `otpauth://` URI for authenticator apps.
pub fn totp_new_secret(email: &str) -> (String, String) {
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    let secret = Secret::Raw(b.to_vec()).to_encoded().to_string();
    let uri = totp_uri(email, &secret);
    (secret, uri)
}

/// The `otpauth://` URI of a secret, for authenticator apps.
pub fn totp_uri(email: &str, secret: &str) -> String {
    format!("otpauth://totp/Maocloud:{}?secret={secret}&issuer=Maocloud&algorithm=SHA1&digits=6&period=30", email.replace('@', "%40"))
}

/// The current code of a TOTP secret at `now` (for tests and the CLI's enrolment check).
pub fn totp_code(secret_b32: &str, now: Timestamp) -> Result<String> {
    Ok(totp_for(secret_b32)?.generate(now.as_second().max(0) as u64))
}

/// Checks a code against the secret at `now` (±1 step of 30 s) and returns the matching step.
fn totp_match(secret_b32: &str, code: &str, now: Timestamp) -> Result<Option<i64>> {
    let totp = totp_for(secret_b32)?;
    let code = code.trim().replace(' ', "");
    let step_now = now.as_second() / 30;
    for step in [step_now - 1, step_now, step_now + 1] {
        if step >= 0 && totp.generate((step * 30) as u64) == code {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

/// Verifies a TOTP code for an account and burns its step so it cannot be replayed.
pub(crate) async fn totp_verify(app: &App, account: &Account, code: &str) -> Result<bool> {
    let Some(secret) = crate::accounts::totp_secret_open(app, account.totp_secret.as_deref())?
    else {
        return Ok(false);
    };
    let Some(step) = totp_match(&secret, code, app.now())? else {
        return Ok(false);
    };
    let mut tx = app.db().write().await?;
    let fresh = tx.account_use_totp_step(account.id, step).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// Refuses when the account or the IP has failed too often recently.
async fn throttle(app: &App, email: &str, ip: &str) -> Result<()> {
    let s = app.settings();
    let window = SignedDuration::from_mins(s.throttle_window_minutes);
    let since = app.now() - window;
    let mut tx = app.db().read().await?;
    let (by_email, by_ip) = tx.login_failures_since(email, ip, since).await?;
    if by_email >= s.throttle_per_account || by_ip >= s.throttle_per_ip {
        return Err(Error::TooManyRequests {
            retry_after_secs: window.as_secs() as u64,
        });
    }
    Ok(())
}

async fn record_attempt(app: &App, email: &str, ip: &str, success: bool) -> Result<()> {
    let mut tx = app.db().write().await?;
    tx.login_attempt_record(email, ip, success, app.now())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The outcome of checking an email and a password.
pub enum PasswordCheck {
    /// Signed in.
    Complete(Account),
    /// Right password; a TOTP code is still needed.
    NeedsTotp(Account),
}

/// Checks email and password (throttled, constant work for unknown emails). A TOTP code given
/// here completes the sign-in in one step, as the API does.
pub async fn check_password(
    app: &App,
    ip: &str,
    email: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<PasswordCheck> {
    let email = email.trim().to_lowercase();
    throttle(app, &email, ip).await?;
    let account = {
        let mut tx = app.db().read().await?;
        match tx.account_by_email(&email).await {
            Ok(a) => Some(a),
            Err(maocloud_datastore::Error::NotFound) => None,
            Err(e) => return Err(e.into()),
        }
    };
    // Unknown accounts still pay for a hash, so timing does not reveal which emails exist.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2j5C3z0cvXhF1H0TGa8OTKjLqd9AsKkK3XJ8ndVdxlY";
    let ok = match &account {
        Some(a) => verify_password(password, &a.password_hash).await,
        None => {
            verify_password(password, DUMMY).await;
            false
        }
    };
    let account = match account {
        Some(a) if ok && a.disabled_at.is_none() => a,
        _ => {
            record_attempt(app, &email, ip, false).await?;
            return Err(Error::Unauthenticated(BAD_CREDENTIALS));
        }
    };
    let totp_needed = account.totp_enabled
        || (account.kind == AccountKind::Operator && app.settings().operator_totp_required);
    if !totp_needed {
        record_attempt(app, &email, ip, true).await?;
        return Ok(PasswordCheck::Complete(account));
    }
    if !account.totp_enabled {
        return Err(Error::Unauthenticated(
            "operators must use a TOTP code, and none is set up for this account: ask an admin to reset it",
        ));
    }
    match totp {
        None => Ok(PasswordCheck::NeedsTotp(account)),
        Some(code) => {
            if totp_verify(app, &account, code).await? {
                record_attempt(app, &email, ip, true).await?;
                Ok(PasswordCheck::Complete(account))
            } else {
                record_attempt(app, &email, ip, false).await?;
                Err(Error::invalid("totp", "is not the current code"))
            }
        }
    }
}

/// A newly created API token: the secret is in `token`, shown this once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub info: ApiToken,
}

/// Sign-in for the API and the CLI: email + password (+ TOTP) → a bearer token.
pub async fn token_sign_in(
    app: &App,
    ip: &str,
    email: &str,
    password: &str,
    totp: Option<&str>,
    name: Option<&str>,
    expires_in_days: Option<i64>,
) -> Result<IssuedToken> {
    match check_password(app, ip, email, password, totp).await? {
        PasswordCheck::Complete(account) => {
            let ctx = Ctx {
                principal: principal_of(&account),
                ip: ip.into(),
            };
            token_create(app, &ctx, name.unwrap_or("sign-in"), expires_in_days).await
        }
        PasswordCheck::NeedsTotp(_) => Err(Error::invalid("totp", "is required for this account")),
    }
}

fn account_id(ctx: &Ctx) -> Result<uuid::Uuid> {
    match ctx.principal {
        Principal::Subscriber(id) => Ok(id.0),
        Principal::Operator { id, .. } => Ok(id.0),
        Principal::System => Err(Error::Forbidden("the platform itself holds no tokens")),
    }
}

/// Creates an API token for the caller.
pub async fn token_create(
    app: &App,
    ctx: &Ctx,
    name: &str,
    expires_in_days: Option<i64>,
) -> Result<IssuedToken> {
    let owner = account_id(ctx)?;
    let mut c = crate::error::Checker::default();
    let name = c.check("name", maocloud_types::validate::text(name, 100));
    let days = expires_in_days.unwrap_or(app.settings().token_default_days);
    if !(1..=3650).contains(&days) {
        c.fail("expires_in_days", "must be between 1 and 3650");
    }
    c.finish()?;
    let now = app.now();
    let token = new_secret("mc_");
    let info = ApiToken {
        id: ApiTokenId::new(),
        account_id: owner,
        name: name.unwrap_or_default(),
        prefix: token[..7].to_string(),
        created_at: now,
        expires_at: Some(now + SignedDuration::from_hours(24 * days)),
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = app.db().write().await?;
    tx.api_token_create(&info, &secret_hash(&token)).await?;
    if let Principal::Operator { .. } = ctx.principal {
        crate::audit::record(
            &mut tx,
            ctx,
            now,
            "token.create",
            Some(&info.id.to_string()),
            None,
            serde_json::json!({"name": info.name}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(IssuedToken { token, info })
}

pub async fn token_list(app: &App, ctx: &Ctx) -> Result<Vec<ApiToken>> {
    let owner = account_id(ctx)?;
    let mut tx = app.db().read().await?;
    Ok(tx.api_token_list(owner).await?)
}

/// Revokes one of the caller's tokens; another's token is `NotFound`.
pub async fn token_revoke(app: &App, ctx: &Ctx, id: ApiTokenId) -> Result<()> {
    let owner = account_id(ctx)?;
    let mut tx = app.db().write().await?;
    tx.api_token_revoke(owner, id, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Resolves a bearer token to its principal; any failure is the same 401.
pub async fn principal_from_token(app: &App, token: &str) -> Result<Principal> {
    let now = app.now();
    let mut tx = app.db().read().await?;
    let t = tx
        .api_token_by_hash(&secret_hash(token), now)
        .await
        .map_err(|e| match e {
            maocloud_datastore::Error::NotFound => {
                Error::Unauthenticated("invalid, expired or revoked token")
            }
            other => other.into(),
        })?;
    let account = tx.account_fetch(t.account_id).await?;
    drop(tx);
    if account.disabled_at.is_some() {
        return Err(Error::Unauthenticated("invalid, expired or revoked token"));
    }
    // Recording use costs a write: do it at most once a minute per token.
    if t.last_used_at
        .is_none_or(|at| now.duration_since(at) > SignedDuration::from_mins(1))
    {
        let mut tx = app.db().write().await?;
        tx.api_token_touch(t.id, now).await?;
        tx.commit().await?;
    }
    Ok(principal_of(&account))
}

/// A console session just opened: the cookie value is in `cookie`, shown this once.
pub struct NewSession {
    pub cookie: String,
    pub session: Session,
}

/// Opens a console session for an account whose password was checked; `mfa_pending` when the
/// TOTP step is still to come.
pub async fn session_open(app: &App, account: &Account, mfa_pending: bool) -> Result<NewSession> {
    let now = app.now();
    let cookie = new_secret("ms_");
    let session = Session {
        id: SessionId::new(),
        account_id: account.id,
        csrf_token: new_secret(""),
        mfa_pending,
        created_at: now,
        expires_at: now + SignedDuration::from_hours(app.settings().session_ttl_hours),
        last_seen_at: now,
    };
    let mut tx = app.db().write().await?;
    tx.session_create(&session, &secret_hash(&cookie)).await?;
    tx.commit().await?;
    Ok(NewSession { cookie, session })
}

/// The live session behind a cookie, with its account.
pub async fn session_resolve(app: &App, cookie: &str) -> Result<(Session, Account)> {
    let mut tx = app.db().read().await?;
    let s = tx
        .session_by_hash(&secret_hash(cookie), app.now())
        .await
        .map_err(|e| match e {
            maocloud_datastore::Error::NotFound => {
                Error::Unauthenticated("your session has ended; sign in again")
            }
            other => other.into(),
        })?;
    let a = tx.account_fetch(s.account_id).await?;
    if a.disabled_at.is_some() {
        return Err(Error::Unauthenticated(
            "your session has ended; sign in again",
        ));
    }
    Ok((s, a))
}

/// Completes a session's pending TOTP step.
pub async fn session_complete_totp(
    app: &App,
    ip: &str,
    session: &Session,
    account: &Account,
    code: &str,
) -> Result<()> {
    throttle(app, &account.email, ip).await?;
    if !totp_verify(app, account, code).await? {
        record_attempt(app, &account.email, ip, false).await?;
        return Err(Error::invalid("totp", "is not the current code"));
    }
    record_attempt(app, &account.email, ip, true).await?;
    let mut tx = app.db().write().await?;
    tx.session_complete_mfa(session.id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn session_close(app: &App, id: SessionId) -> Result<()> {
    let mut tx = app.db().write().await?;
    tx.session_revoke(id, app.now()).await?;
    tx.commit().await?;
    Ok(())
}
