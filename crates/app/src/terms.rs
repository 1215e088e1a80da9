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

/// How an operator classes a new version.
pub const CLASSES: [&str; 4] = ["beneficial", "administrative", "legal", "other"];

/// A new version to publish.
#[derive(Debug, Clone)]
pub struct PublishInput {
    pub version: String,
    pub title: String,
    pub body: String,
    /// What changed, in the subscribers' words.
    pub summary: String,
    /// The day (Paris) it takes effect.
    pub effective_on: jiff::civil::Date,
    pub class: String,
    /// A substantial infrastructure change.
    pub substantial: bool,
    /// The closure of a service.
    pub closure: bool,
    /// For a closure: whether subscribers can migrate to an equivalent or higher offer.
    pub equivalent_migration: bool,
}

/// A version with its classing.
pub type VersionView = (TermsVersion, maocloud_datastore::contract::TermsClassing);

/// Every version, newest first.
pub async fn list(app: &App) -> Result<Vec<VersionView>> {
    let mut tx = app.db().read().await?;
    Ok(tx.terms_version_list().await?)
}

/// The notices a subscriber received (their own), or those of one version (operators).
pub async fn notices(
    app: &App,
    ctx: &crate::Ctx,
    version_id: Option<&str>,
) -> Result<Vec<maocloud_datastore::contract::TermsNotice>> {
    let mut tx = app.db().read().await?;
    match ctx.principal.subscriber() {
        Some(me) => Ok(tx.terms_notice_list(version_id, Some(me)).await?),
        None => {
            ctx.require_operator(&[maocloud_types::OperatorRole::Support])?;
            Ok(tx.terms_notice_list(version_id, None).await?)
        }
    }
}

/// publishes a version at least 1 month ahead (6 months for a
/// substantial change or a closure), notifies every subscriber under contract by email and
/// inbox, records each notice, and — for the "other" class, or a closure with no equivalent
/// migration — opens the 4-month window in which termination carries no commitment dues.
pub async fn publish(
    app: &App,
    ctx: &crate::Ctx,
    input: PublishInput,
) -> Result<(VersionView, usize)> {
    use crate::error::Checker;
    use crate::i18n::{t, tf, Lang};
    use maocloud_billing::calendar::{paris_date, paris_midnight};
    ctx.require_operator(&[])?;
    let mut c = Checker::default();
    let version = c.check(
        "version",
        maocloud_types::validate::text(&input.version, 40),
    );
    let title = c.check("title", maocloud_types::validate::text(&input.title, 200));
    let summary = c.check(
        "summary",
        maocloud_types::validate::text(&input.summary, 4000),
    );
    if input.body.trim().is_empty() || input.body.len() > 500_000 {
        c.fail("body", "must be between 1 and 500000 bytes");
    }
    if !CLASSES.contains(&input.class.as_str()) {
        c.fail(
            "class",
            "must be beneficial, administrative, legal or other (R-6.3)",
        );
    }
    if input.equivalent_migration && !input.closure {
        c.fail("equivalent_migration", "applies to a closure only");
    }
    let today = paris_date(app.now());
    let months = if input.substantial || input.closure {
        6
    } else {
        1
    };
    let earliest = today
        .checked_add(jiff::Span::new().months(months))
        .map_err(crate::Error::internal)?;
    if input.effective_on < earliest {
        c.fail(
            "effective_on",
            if months == 6 {
                "must be at least 6 months after notification for a substantial change or a closure (R-3.5)"
            } else {
                "must be at least 1 month after notification (R-6.3)"
            },
        );
    }
    c.finish()?;
    let opens_window = input.class == "other" || (input.closure && !input.equivalent_migration);
    let now = app.now();
    let v = TermsVersion {
        id: TermsVersionId::new(),
        version: version.unwrap_or_default(),
        title: title.unwrap_or_default(),
        body: input.body.clone(),
        published_at: now,
        effective_at: paris_midnight(input.effective_on),
    };
    let classing = maocloud_datastore::contract::TermsClassing {
        class: input.class.clone(),
        substantial: input.substantial,
        closure: input.closure,
        equivalent_migration: input.equivalent_migration,
        summary: summary.unwrap_or_default(),
        published_by: ctx.principal.label(),
    };
    let mut tx = app.db().write().await?;
    if !tx.terms_version_ensure(&v).await? {
        return Err(crate::Error::Conflict {
            field: Some("version".into()),
            reason: "a version with this name already exists".into(),
        });
    }
    tx.terms_classing_set(&v.id.to_string(), &classing).await?;
    let subscribers = tx.subscribers_under_contract().await?;
    for s in &subscribers {
        let their_now = app.now_in(&mut tx, s.0).await?;
        let window_end = if opens_window {
            let four = paris_date(their_now)
                .checked_add(jiff::Span::new().months(4))
                .map_err(crate::Error::internal)?;
            // a closure without migration leaves the right open until it takes effect.
            Some(
                if input.closure {
                    four.max(input.effective_on)
                } else {
                    four
                }
                .to_string(),
            )
        } else {
            None
        };
        tx.terms_notice_create(&maocloud_datastore::contract::TermsNotice {
            terms_version_id: v.id.to_string(),
            version: v.version.clone(),
            subscriber_id: *s,
            notified_at: their_now,
            window_end: window_end.clone(),
        })
        .await?;
        let account = tx.account_fetch(s.0).await?;
        let lang = Lang::parse(&account.locale);
        let right = match &window_end {
            Some(w) => tf(lang, "terms.notice.window", &[("until", w)]),
            None => t(lang, &format!("terms.notice.class.{}", input.class)),
        };
        let link = format!(
            "{}/account/terms",
            app.settings().public_url.trim_end_matches('/')
        );
        let body = tf(
            lang,
            "email.terms_notice.body",
            &[
                ("name", &account.display_name),
                ("version", &v.version),
                ("effective", &input.effective_on.to_string()),
                ("summary", &classing.summary),
                ("right", &right),
                ("link", &link),
            ],
        );
        crate::notify::send(app, &mut tx, &account, "email.terms_notice.subject", &body).await?;
    }
    crate::audit::record(
        &mut tx,
        ctx,
        now,
        "terms.publish",
        Some(&v.id.to_string()),
        None,
        serde_json::json!({"version": v.version, "class": input.class, "effective_on": input.effective_on.to_string(), "notified": subscribers.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(((v, classing), subscribers.len()))
}
