//! Accounts: subscriber sign-up, email verification, password reset, TOTP enrolment,
//! operators, the signed-in caller's own view, and the back office's view of subscribers —
//! every operator read of personal data audited.

use crate::auth::{self, hash_password, new_secret, secret_hash};
use crate::error::Checker;
use crate::i18n::{tf, Lang};
use crate::{audit, notify, App, Ctx, Error, Result};
use jiff::SignedDuration;
use maocloud_datastore::{
    accounts::NewAccount, Account, AccountKind, OneTimePurpose, Scope, SubscriberProfile,
    SubscriberSummary, TermsAcceptance, Tx,
};
use maocloud_types::{
    validate, OperatorId, OperatorRole, Page, PageRequest, Principal, SubscriberId,
};

/// What a person gives to subscribe.
#[derive(Debug, Clone, Default)]
pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub full_name: String,
    /// `consumer` or `professional`.
    pub customer_kind: String,
    pub company_name: Option<String>,
    /// SIREN or SIRET (professionals).
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub phone: Option<String>,
    /// The terms version the person accepted; must be the current one.
    pub accept_terms_version: String,
    pub locale: Option<String>,
}

fn blank_to_none(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// What a subscriber's profile holds: the identity and billing details given at sign-up and
/// editable since (R-9.5 rectification).
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub full_name: String,
    /// `consumer` or `professional`.
    pub customer_kind: String,
    pub company_name: Option<String>,
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub phone: Option<String>,
}

impl ProfileInput {
    fn of(s: &SignupInput) -> ProfileInput {
        ProfileInput {
            full_name: s.full_name.clone(),
            customer_kind: s.customer_kind.clone(),
            company_name: s.company_name.clone(),
            company_id: s.company_id.clone(),
            vat_number: s.vat_number.clone(),
            address_line1: s.address_line1.clone(),
            address_line2: s.address_line2.clone(),
            postal_code: s.postal_code.clone(),
            city: s.city.clone(),
            country: s.country.clone(),
            phone: s.phone.clone(),
        }
    }
}

/// Checks a profile's fields into `c`; the profile built is meaningful once `c` finishes clean.
fn check_profile(
    c: &mut Checker,
    input: &ProfileInput,
    id: SubscriberId,
    now: jiff::Timestamp,
) -> SubscriberProfile {
    let full_name = c.check("full_name", validate::text(&input.full_name, 200));
    let professional = match input.customer_kind.as_str() {
        "consumer" => false,
        "professional" => true,
        _ => {
            c.fail("customer_kind", "must be consumer or professional");
            false
        }
    };
    let (mut company_name, mut company_id, mut vat) = (None, None, None);
    if professional {
        company_name = c.check(
            "company_name",
            validate::text(blank_to_none(&input.company_name).unwrap_or(""), 200),
        );
        company_id = c.check(
            "company_id",
            validate::siren_or_siret(blank_to_none(&input.company_id).unwrap_or("")),
        );
        vat = c.check(
            "vat_number",
            validate::vat_number(blank_to_none(&input.vat_number).unwrap_or("")),
        );
        if let (Some(id), Some(v)) = (&company_id, &vat) {
            if v.starts_with("FR") && !id.starts_with(&v[4..]) {
                c.fail("vat_number", "does not match the SIREN of company_id");
            }
        }
    } else {
        for (field, v) in [
            ("company_name", &input.company_name),
            ("company_id", &input.company_id),
            ("vat_number", &input.vat_number),
        ] {
            if blank_to_none(v).is_some() {
                c.fail(field, "is only for professional subscribers");
            }
        }
    }
    let line1 = c.check("address_line1", validate::text(&input.address_line1, 200));
    let line2 = match blank_to_none(&input.address_line2) {
        Some(l) => c.check("address_line2", validate::text(l, 200)),
        None => None,
    };
    let postal = c.check("postal_code", validate::text(&input.postal_code, 16));
    let city = c.check("city", validate::text(&input.city, 100));
    let country = c.check("country", validate::country(&input.country));
    if let (Some("FR"), Some(pc)) = (country.as_deref(), postal.as_deref()) {
        if pc.len() != 5 || !pc.chars().all(|ch| ch.is_ascii_digit()) {
            c.fail("postal_code", "must be 5 digits in France");
        }
    }
    let phone = match blank_to_none(&input.phone) {
        Some(p) => c.check("phone", validate::text(p, 32)),
        None => None,
    };
    SubscriberProfile {
        id,
        customer_kind: input.customer_kind.clone(),
        full_name: full_name.unwrap_or_default(),
        company_name,
        company_id,
        vat_number: vat,
        address_line1: line1.unwrap_or_default(),
        address_line2: line2,
        postal_code: postal.unwrap_or_default(),
        city: city.unwrap_or_default(),
        country: country.unwrap_or_default(),
        phone,
        status: "active".into(),
        created_at: now,
        updated_at: now,
    }
}

/// The subscriber corrects their identity or billing details (R-9.5 rectification). Invoices
/// already issued keep the details of their day (they hold their own copy); the next ones use
/// the new details. Recorded in the audit trail with the fields changed.
pub async fn profile_update(
    app: &App,
    ctx: &Ctx,
    input: &ProfileInput,
) -> Result<SubscriberProfile> {
    let me = ctx.require_subscriber()?;
    let now = app.now();
    let mut c = Checker::default();
    let mut p = check_profile(&mut c, input, me, now);
    c.finish()?;
    let mut tx = app.db().write().await?;
    let before = tx.subscriber_profile_fetch(&ctx.scope(), me).await?;
    p.status = before.status.clone();
    p.created_at = before.created_at;
    let changed: Vec<&str> = [
        ("full_name", before.full_name != p.full_name),
        ("customer_kind", before.customer_kind != p.customer_kind),
        ("company_name", before.company_name != p.company_name),
        ("company_id", before.company_id != p.company_id),
        ("vat_number", before.vat_number != p.vat_number),
        (
            "address",
            (
                &before.address_line1,
                &before.address_line2,
                &before.postal_code,
                &before.city,
                &before.country,
            ) != (
                &p.address_line1,
                &p.address_line2,
                &p.postal_code,
                &p.city,
                &p.country,
            ),
        ),
        ("phone", before.phone != p.phone),
    ]
    .into_iter()
    .filter(|(_, c)| *c)
    .map(|(f, _)| f)
    .collect();
    tx.subscriber_profile_update(&p).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "profile.update",
        None,
        Some(me),
        serde_json::json!({"changed": changed}),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// Validates a sign-up form and builds the profile to store.
fn check_signup(
    input: &SignupInput,
    id: SubscriberId,
    current_terms: &str,
    now: jiff::Timestamp,
) -> Result<(String, SubscriberProfile)> {
    let mut c = Checker::default();
    let email = c.check("email", validate::email(&input.email));
    if let Some(e) = &email {
        c.check("password", validate::password(&input.password, e));
    }
    let profile = check_profile(&mut c, &ProfileInput::of(input), id, now);
    if input.accept_terms_version.trim() != current_terms {
        c.fail(
            "accept_terms_version",
            "must be the current terms version, which you must accept",
        );
    }
    c.finish()?;
    Ok((email.unwrap_or_default(), profile))
}

/// Creates a subscriber account, records the acceptance of the current terms and
/// sends the email-verification link.
pub async fn signup(app: &App, ip: &str, input: &SignupInput) -> Result<SubscriberId> {
    let now = app.now();
    let terms = crate::terms::current(app).await?;
    let id = SubscriberId::new();
    let (email, profile) = check_signup(input, id, &terms.version, now)?;
    let hash = hash_password(&input.password).await?;
    let locale = Lang::parse(input.locale.as_deref().unwrap_or("fr"));
    let mut tx = app.db().write().await?;
    let created = tx
        .account_create(
            &NewAccount {
                id: id.0,
                kind: AccountKind::Subscriber,
                email: &email,
                password_hash: &hash,
                role: None,
                display_name: &profile.full_name,
                locale: locale.code(),
                email_verified: false,
            },
            now,
        )
        .await;
    if let Err(maocloud_datastore::Error::Conflict(_)) = created {
        return Err(Error::Conflict {
            field: Some("email".into()),
            reason: "an account with this email already exists".into(),
        });
    }
    created?;
    tx.subscriber_profile_create(&profile).await?;
    tx.terms_acceptance_create(id, &terms, now, &format!("signup ip={ip}"))
        .await?;
    let account = tx.account_fetch(id.0).await?;
    send_verification(app, &mut tx, &account).await?;
    tx.commit().await?;
    Ok(id)
}

async fn send_verification(
    app: &App,
    tx: &mut maocloud_datastore::Tx,
    account: &Account,
) -> Result<()> {
    let now = app.now();
    let token = new_secret("mo_");
    let ttl = SignedDuration::from_hours(app.settings().verify_email_ttl_hours);
    tx.one_time_token_create(
        account.id,
        OneTimePurpose::VerifyEmail,
        &secret_hash(&token),
        now,
        now + ttl,
    )
    .await?;
    let lang = Lang::parse(&account.locale);
    let link = format!(
        "{}/verify-email?token={token}",
        app.settings().public_url.trim_end_matches('/')
    );
    notify::send(
        app,
        tx,
        account,
        "email.verify.subject",
        &tf(
            lang,
            "email.verify.body",
            &[("name", &account.display_name), ("link", &link)],
        ),
    )
    .await
}

/// Sends a new verification link to the signed-in caller.
pub async fn resend_verification(app: &App, ctx: &Ctx) -> Result<()> {
    let id = ctx.require_subscriber()?;
    let mut tx = app.db().write().await?;
    let account = tx.account_fetch(id.0).await?;
    if account.email_verified_at.is_some() {
        return Err(Error::Conflict {
            field: None,
            reason: "your email address is already verified".into(),
        });
    }
    send_verification(app, &mut tx, &account).await?;
    tx.commit().await?;
    Ok(())
}

/// Uses an emailed verification link.
pub async fn verify_email(app: &App, token: &str) -> Result<()> {
    let now = app.now();
    let mut tx = app.db().write().await?;
    let account = tx
        .one_time_token_consume(OneTimePurpose::VerifyEmail, &secret_hash(token), now)
        .await
        .map_err(|_| Error::invalid("token", "is invalid, used or expired"))?;
    tx.account_set_email_verified(account, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Emails a password-reset link if the address has an account. Always succeeds, so it does
/// not reveal which addresses exist.
pub async fn password_reset_request(app: &App, email: &str) -> Result<()> {
    let Ok(email) = validate::email(email) else {
        return Err(Error::invalid("email", "is not an email address"));
    };
    let now = app.now();
    let mut tx = app.db().write().await?;
    let account = match tx.account_by_email(&email).await {
        Ok(a) if a.disabled_at.is_none() => a,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // At most 3 reset emails an hour per account: the form cannot be used to flood a mailbox.
    if tx
        .one_time_token_count_since(
            account.id,
            OneTimePurpose::ResetPassword,
            now - SignedDuration::from_hours(1),
        )
        .await?
        >= 3
    {
        return Err(Error::TooManyRequests {
            retry_after_secs: 3600,
        });
    }
    let token = new_secret("mo_");
    let ttl = SignedDuration::from_mins(app.settings().reset_password_ttl_minutes);
    tx.one_time_token_create(
        account.id,
        OneTimePurpose::ResetPassword,
        &secret_hash(&token),
        now,
        now + ttl,
    )
    .await?;
    let lang = Lang::parse(&account.locale);
    let link = format!(
        "{}/reset-password?token={token}",
        app.settings().public_url.trim_end_matches('/')
    );
    let minutes = app.settings().reset_password_ttl_minutes.to_string();
    let body = tf(
        lang,
        "email.reset.body",
        &[
            ("name", &account.display_name),
            ("link", &link),
            ("minutes", &minutes),
        ],
    );
    notify::send(app, &mut tx, &account, "email.reset.subject", &body).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password from a reset link; every session and API token of the account ends.
pub async fn password_reset_complete(app: &App, token: &str, new_password: &str) -> Result<()> {
    let now = app.now();
    let mut tx = app.db().write().await?;
    let id = tx
        .one_time_token_consume(OneTimePurpose::ResetPassword, &secret_hash(token), now)
        .await
        .map_err(|_| Error::invalid("token", "is invalid, used or expired"))?;
    let account = tx.account_fetch(id).await?;
    if let Err(r) = validate::password(new_password, &account.email) {
        return Err(Error::invalid("password", r));
    }
    let hash = hash_password(new_password).await?;
    tx.account_set_password(id, &hash, now).await?;
    tx.credentials_revoke_all(id, now).await?;
    // Following the link proves the mailbox too.
    tx.account_set_email_verified(id, now).await?;
    let lang = Lang::parse(&account.locale);
    notify::send(
        app,
        &mut tx,
        &account,
        "email.password_changed.subject",
        &tf(
            lang,
            "email.password_changed.body",
            &[("name", &account.display_name)],
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Hours the new-access link sent after a credential loss stays valid.
pub const NEW_ACCESS_TTL_HOURS: i64 = 72;

/// What a credential revocation did (R-5a).
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    pub s3_keys: u64,
    /// The SSH keys the subscriber registered, listed for their review (not silently kept).
    pub ssh_keys: Vec<String>,
}

/// R-5a: revokes every credential of a subscriber at once, in `tx` — the password (replaced by
/// a random one nobody knows), sessions, API tokens, TOTP, S3 access keys and any pending
/// emailed link — and emails new access: a one-time link to choose a password, with the SSH
/// keys they registered listed for review. The one place this is done: the support desk's
/// confirmed credential-loss report and a recorded letter both call it. The caller clears the
/// S3 key cache after commit (`app.storage_keys().forget`).
pub async fn revoke_all_credentials(
    app: &App,
    tx: &mut Tx,
    who: SubscriberId,
) -> Result<Revocation> {
    let now = app.now();
    let account = tx.account_fetch(who.0).await?;
    let unknowable = hash_password(&new_secret("x_")).await?;
    tx.account_set_password(account.id, &unknowable, now)
        .await?;
    tx.credentials_revoke_all(account.id, now).await?;
    tx.account_set_totp(account.id, None, false, now).await?;
    tx.one_time_tokens_revoke(account.id, now).await?;
    let s3_keys = tx.storage_keys_revoke_all(who, now).await?;
    let ssh_keys: Vec<String> = tx
        .ssh_key_list(&Scope::Subscriber(who))
        .await?
        .into_iter()
        .map(|k| format!("- {} ({})", k.name, k.fingerprint))
        .collect();
    let token = new_secret("mo_");
    tx.one_time_token_create(
        account.id,
        OneTimePurpose::ResetPassword,
        &secret_hash(&token),
        now,
        now + SignedDuration::from_hours(NEW_ACCESS_TTL_HOURS),
    )
    .await?;
    let lang = Lang::parse(&account.locale);
    let link = format!(
        "{}/reset-password?token={token}",
        app.settings().public_url.trim_end_matches('/')
    );
    let keys = if ssh_keys.is_empty() {
        crate::i18n::t(lang, "email.credentials_revoked.no_ssh_keys")
    } else {
        ssh_keys.join("\n")
    };
    let hours = NEW_ACCESS_TTL_HOURS.to_string();
    let body = tf(
        lang,
        "email.credentials_revoked.body",
        &[
            ("name", &account.display_name),
            ("link", &link),
            ("hours", &hours),
            ("ssh_keys", &keys),
        ],
    );
    notify::send(
        app,
        tx,
        &account,
        "email.credentials_revoked.subject",
        &body,
    )
    .await?;
    Ok(Revocation { s3_keys, ssh_keys })
}

/// How a TOTP secret is stored: sealed with the platform's data key (R-9.4, "secrets encrypted
/// at rest"), marked so that secrets stored in clear by earlier versions still read.
const SEALED_TOTP: &str = "sealed:";

fn totp_secret_seal(app: &App, secret: &str) -> Result<String> {
    Ok(format!(
        "{SEALED_TOTP}{}",
        crate::seal::seal(app, secret.as_bytes())?
    ))
}

/// A stored TOTP secret in clear, for the code check and a pending enrolment's page.
pub fn totp_secret_open(app: &App, stored: Option<&str>) -> Result<Option<String>> {
    match stored {
        Some(s) => match s.strip_prefix(SEALED_TOTP) {
            Some(sealed) => Ok(Some(
                String::from_utf8(crate::seal::open(app, sealed)?).map_err(Error::internal)?,
            )),
            None => Ok(Some(s.to_string())),
        },
        None => Ok(None),
    }
}

/// A new operator, and the TOTP enrolment to hand them when TOTP is required.
pub struct NewOperator {
    pub id: OperatorId,
    pub totp_secret: Option<String>,
    pub totp_uri: Option<String>,
}

/// Creates an operator. From the CLI (system) always; through the API only by an admin.
pub async fn operator_create(
    app: &App,
    ctx: &Ctx,
    email: &str,
    role: OperatorRole,
    password: &str,
    name: &str,
    with_totp: bool,
) -> Result<NewOperator> {
    if !matches!(ctx.principal, Principal::System) {
        ctx.require_operator(&[OperatorRole::Admin])?;
    }
    let mut c = Checker::default();
    let email = c.check("email", validate::email(email));
    if let Some(e) = &email {
        c.check("password", validate::password(password, e));
    }
    let name = c.check("name", validate::text(name, 200));
    c.finish()?;
    let (email, name) = (email.unwrap_or_default(), name.unwrap_or_default());
    let hash = hash_password(password).await?;
    let now = app.now();
    let id = OperatorId::new();
    let mut tx = app.db().write().await?;
    let created = tx
        .account_create(
            &NewAccount {
                id: id.0,
                kind: AccountKind::Operator,
                email: &email,
                password_hash: &hash,
                role: Some(role),
                display_name: &name,
                locale: "fr",
                email_verified: true,
            },
            now,
        )
        .await;
    if let Err(maocloud_datastore::Error::Conflict(_)) = created {
        return Err(Error::Conflict {
            field: Some("email".into()),
            reason: "an account with this email already exists".into(),
        });
    }
    created?;
    let (mut totp_secret, mut totp_uri) = (None, None);
    if with_totp {
        let (secret, uri) = auth::totp_new_secret(&email);
        tx.account_set_totp(id.0, Some(&totp_secret_seal(app, &secret)?), true, now)
            .await?;
        totp_secret = Some(secret);
        totp_uri = Some(uri);
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "operator.create",
        Some(&id.to_string()),
        None,
        serde_json::json!({"email": email, "role": role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(NewOperator {
        id,
        totp_secret,
        totp_uri,
    })
}

/// The signed-in caller as they see themselves.
#[derive(Debug, Clone)]
pub struct Me {
    pub account: Account,
    pub profile: Option<SubscriberProfile>,
    pub unread_messages: i64,
    /// Subscribers: `electronic` or `paper` invoices (R-6.1c).
    pub invoice_delivery: Option<String>,
}

pub async fn me(app: &App, ctx: &Ctx) -> Result<Me> {
    let id = match ctx.principal {
        Principal::Subscriber(id) => id.0,
        Principal::Operator { id, .. } => id.0,
        Principal::System => return Err(Error::Forbidden("the platform has no profile")),
    };
    let mut tx = app.db().read().await?;
    let account = tx.account_fetch(id).await?;
    let (profile, unread, delivery) = match ctx.principal {
        Principal::Subscriber(sid) => {
            let scope = ctx.scope();
            (
                Some(tx.subscriber_profile_fetch(&scope, sid).await?),
                tx.message_unread_count(&scope, sid).await?,
                Some(tx.invoice_delivery_fetch(sid).await?),
            )
        }
        _ => (None, 0, None),
    };
    Ok(Me {
        account,
        profile,
        unread_messages: unread,
        invoice_delivery: delivery,
    })
}

/// Sets the caller's language (`fr` or `en`).
pub async fn set_locale(app: &App, ctx: &Ctx, locale: &str) -> Result<()> {
    let id = match ctx.principal {
        Principal::Subscriber(id) => id.0,
        Principal::Operator { id, .. } => id.0,
        Principal::System => return Err(Error::Forbidden("the platform has no profile")),
    };
    if !matches!(locale, "fr" | "en") {
        return Err(Error::invalid("locale", "must be fr or en"));
    }
    let mut tx = app.db().write().await?;
    tx.account_set_locale(id, locale, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

fn own_account(ctx: &Ctx) -> Result<uuid::Uuid> {
    match ctx.principal {
        Principal::Subscriber(id) => Ok(id.0),
        Principal::Operator { id, .. } => Ok(id.0),
        Principal::System => Err(Error::Forbidden("the platform has no account")),
    }
}

/// Starts TOTP enrolment: a new secret, inactive until a code from it is confirmed.
pub async fn totp_begin(app: &App, ctx: &Ctx) -> Result<(String, String)> {
    let id = own_account(ctx)?;
    let mut tx = app.db().write().await?;
    let account = tx.account_fetch(id).await?;
    if account.totp_enabled {
        return Err(Error::Conflict {
            field: None,
            reason: "TOTP is already enabled; disable it first".into(),
        });
    }
    let (secret, uri) = auth::totp_new_secret(&account.email);
    tx.account_set_totp(id, Some(&totp_secret_seal(app, &secret)?), false, app.now())
        .await?;
    tx.commit().await?;
    Ok((secret, uri))
}

/// Confirms enrolment with a code from the authenticator; TOTP is required from then on.
pub async fn totp_confirm(app: &App, ctx: &Ctx, code: &str) -> Result<()> {
    let id = own_account(ctx)?;
    let account = { app.db().read().await?.account_fetch(id).await? };
    if account.totp_enabled {
        return Err(Error::Conflict {
            field: None,
            reason: "TOTP is already enabled".into(),
        });
    }
    if account.totp_secret.is_none() {
        return Err(Error::Conflict {
            field: None,
            reason: "start TOTP enrolment first".into(),
        });
    }
    if !auth::totp_verify(app, &account, code).await? {
        return Err(Error::invalid("code", "is not the current code"));
    }
    let mut tx = app.db().write().await?;
    tx.account_set_totp(id, account.totp_secret.as_deref(), true, app.now())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns TOTP off (with a current code). Operators cannot while it is required of them.
pub async fn totp_disable(app: &App, ctx: &Ctx, code: &str) -> Result<()> {
    let id = own_account(ctx)?;
    if matches!(ctx.principal, Principal::Operator { .. }) && app.settings().operator_totp_required
    {
        return Err(Error::Forbidden("operators must keep TOTP enabled"));
    }
    let account = { app.db().read().await?.account_fetch(id).await? };
    if !account.totp_enabled {
        return Err(Error::Conflict {
            field: None,
            reason: "TOTP is not enabled".into(),
        });
    }
    if !auth::totp_verify(app, &account, code).await? {
        return Err(Error::invalid("code", "is not the current code"));
    }
    let mut tx = app.db().write().await?;
    tx.account_set_totp(id, None, false, app.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Subscribers for the back office (any operator role); the listing is audited.
pub async fn subscriber_list(
    app: &App,
    ctx: &Ctx,
    search: Option<&str>,
    page: &PageRequest,
) -> Result<Page<SubscriberSummary>> {
    ctx.require_operator(&[
        OperatorRole::Billing,
        OperatorRole::Support,
        OperatorRole::Abuse,
    ])?;
    let mut tx = app.db().write().await?;
    let rows = tx.subscriber_list(&ctx.scope(), search, page).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "subscriber.list",
        None,
        None,
        serde_json::json!({"search": search, "count": rows.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, page.effective_limit(), |s| {
        s.id.to_string()
    }))
}

/// One subscriber's file for the back office; the read is audited against that subscriber.
#[derive(Debug, Clone)]
pub struct SubscriberDetail {
    pub account: Account,
    pub profile: SubscriberProfile,
    pub terms: Vec<TermsAcceptance>,
}

pub async fn subscriber_get(app: &App, ctx: &Ctx, id: SubscriberId) -> Result<SubscriberDetail> {
    ctx.require_operator(&[
        OperatorRole::Billing,
        OperatorRole::Support,
        OperatorRole::Abuse,
    ])?;
    let scope = ctx.scope();
    let mut tx = app.db().write().await?;
    let profile = tx.subscriber_profile_fetch(&scope, id).await?;
    let account = tx.account_fetch(id.0).await?;
    let terms = tx.terms_acceptance_list(&scope, id).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "subscriber.read",
        Some(&id.to_string()),
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(SubscriberDetail {
        account,
        profile,
        terms,
    })
}
