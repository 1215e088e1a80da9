//! The `--demo` seed: an operator admin and a subscriber, so a newcomer can sign in at once.
//! Passwords are random (or `MAOCLOUD_DEMO_PASSWORD`) and returned once, for printing at start.

use crate::accounts::{self, SignupInput};
use crate::{App, Ctx, Error, Result};
use maocloud_types::OperatorRole;

pub const DEMO_SUBSCRIBER: &str = "demo@maocloud.test";
pub const DEMO_OPERATOR: &str = "admin@maocloud.test";

/// Credentials created by the seed (none when the accounts already existed).
pub struct DemoCredentials {
    pub operator: Option<(String, String)>,
    pub subscriber: Option<(String, String)>,
}

pub async fn seed(app: &App, password: Option<&str>) -> Result<DemoCredentials> {
    let pw = |p: Option<&str>| {
        p.map(str::to_owned)
            .unwrap_or_else(|| format!("Mc-{}", &crate::auth::new_secret("")[..16]))
    };
    let mut out = DemoCredentials {
        operator: None,
        subscriber: None,
    };
    let op_pw = pw(password);
    match accounts::operator_create(
        app,
        &Ctx::system(),
        DEMO_OPERATOR,
        OperatorRole::Admin,
        &op_pw,
        "Admin (démo)",
        false,
    )
    .await
    {
        Ok(_) => out.operator = Some((DEMO_OPERATOR.into(), op_pw)),
        Err(Error::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    let sub_pw = pw(password);
    let terms = crate::terms::current(app).await?;
    let input = SignupInput {
        email: DEMO_SUBSCRIBER.into(),
        password: sub_pw.clone(),
        full_name: "Camille Martin".into(),
        customer_kind: "consumer".into(),
        address_line1: "3 rue des Alouettes".into(),
        postal_code: "80120".into(),
        city: "Quend".into(),
        country: "FR".into(),
        accept_terms_version: terms.version,
        locale: Some("fr".into()),
        ..Default::default()
    };
    match accounts::signup(app, "demo-seed", &input).await {
        Ok(id) => {
            let mut tx = app.db().write().await?;
            tx.account_set_email_verified(id.0, app.now()).await?;
            tx.commit().await?;
            out.subscriber = Some((DEMO_SUBSCRIBER.into(), sub_pw));
            // Subscribed to Cloud M, so the demo subscriber can launch VMs within its
            // inclusions (their compute quota) straight away.
            seed_price_list(app).await?;
            let offer = crate::billing::offer_list(app, false)
                .await?
                .into_iter()
                .find(|(o, _)| o.code == "cloud-m")
                .map(|(o, _)| o.id);
            if let Some(offer) = offer {
                let ctx = Ctx {
                    principal: maocloud_types::Principal::Subscriber(id),
                    ip: "demo-seed".into(),
                };
                crate::billing::subscribe(app, &ctx, offer).await?;
            }
            seed_support(app, id).await?;
        }
        Err(Error::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    seed_price_list(app).await?;
    seed_register(app).await?;
    Ok(out)
}

/// The demo register of processors and recipients, created once when it is empty: what
/// a small French provider typically lists.
async fn seed_register(app: &App) -> Result<()> {
    if !crate::privacy::processors(app).await?.is_empty() {
        return Ok(());
    }
    let entries = [
        (
            "processor",
            "Banque du prestataire",
            "Prélèvements SEPA et encaissements",
            "nom, IBAN, montants",
            "FR",
            "Union européenne",
        ),
        (
            "processor",
            "Relais SMTP",
            "Envoi des emails de service",
            "adresse email, contenu des messages",
            "FR",
            "Union européenne",
        ),
        (
            "recipient",
            "Cabinet d'expertise comptable",
            "Tenue de la comptabilité",
            "factures (identité, adresse, montants)",
            "FR",
            "Union européenne ; secret professionnel",
        ),
    ];
    for (kind, name, purpose, data, country, safeguards) in entries {
        crate::privacy::processor_create(
            app,
            &Ctx::system(),
            crate::privacy::ProcessorInput {
                kind: kind.into(),
                name: name.into(),
                purpose: purpose.into(),
                data_categories: data.into(),
                country: country.into(),
                safeguards: safeguards.into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// The demo desk: two canned replies and one ticket from the demo subscriber, so the queue
/// and the subscriber's support page are not empty on first sight.
async fn seed_support(app: &App, subscriber: maocloud_types::SubscriberId) -> Result<()> {
    let system = Ctx::system();
    for (title, body) in [
        (
            "Bonjour / accusé de réception",
            "Bonjour,\n\nMerci pour votre message : nous regardons cela et revenons vers vous très vite.\n\nCordialement,\nLe support Maocloud",
        ),
        (
            "Redémarrage de la VM",
            "Bonjour,\n\nPourriez-vous redémarrer la VM depuis la console (bouton « Redémarrer ») et nous dire si le problème persiste ?\n\nCordialement,\nLe support Maocloud",
        ),
    ] {
        match crate::support::canned_create(app, &system, title, body).await {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let ctx = Ctx {
        principal: maocloud_types::Principal::Subscriber(subscriber),
        ip: "demo-seed".into(),
    };
    crate::support::open(
        app,
        &ctx,
        crate::support::NewTicket {
            subject: "Question sur la facturation au prorata".into(),
            category: "billing".into(),
            priority: "normal".into(),
            body: "Bonjour, j'ai souscrit Cloud M en cours de mois : comment est calculée ma première facture ?".into(),
            resources: vec![],
            attachments: vec![],
            source: "console".into(),
        },
    )
    .await?;
    Ok(())
}

/// The demo price list: three offers, the last with a 12-month commitment, created
/// once when the price list is empty.
async fn seed_price_list(app: &App) -> Result<()> {
    use crate::billing::{self, OfferInput};
    use maocloud_billing::{Inclusions, OfferTerms, UsagePrices};
    use maocloud_types::Cents;
    if !billing::offer_list(app, true).await?.is_empty() {
        return Ok(());
    }
    let usage = UsagePrices {
        storage_gb_month: Cents(2),
        egress_gb: Cents(1),
        public_ip_month: Cents(300),
    };
    let offers = [
        (
            "cloud-s",
            "Cloud S",
            "Pour démarrer : une petite machine virtuelle et du stockage objet.",
            999,
            (1, 2048, 25, 1, 50, 500, 1),
            0,
        ),
        (
            "cloud-m",
            "Cloud M",
            "Pour un site ou une application en production.",
            2999,
            (2, 4096, 80, 3, 200, 2000, 1),
            0,
        ),
        (
            "cloud-l",
            "Cloud L",
            "Pour les équipes : plus de ressources, avec engagement 12 mois.",
            7999,
            (8, 16384, 320, 10, 1000, 10000, 4),
            12,
        ),
    ];
    for (
        code,
        name,
        description,
        price,
        (vcpus, ram_mib, disk_gib, vms, storage_gb, egress_gb, public_ips),
        commitment,
    ) in offers
    {
        let terms = OfferTerms {
            name: name.into(),
            monthly_price: Cents(price),
            vat_rate_bp: 2000,
            includes: Inclusions {
                vcpus,
                ram_mib,
                disk_gib,
                vms,
                storage_gb,
                egress_gb,
                public_ips,
            },
            usage,
            commitment_months: commitment,
        };
        billing::offer_create(
            app,
            &Ctx::system(),
            OfferInput {
                code: code.into(),
                description: description.into(),
                terms,
                multiple_allowed: false,
            },
        )
        .await?;
    }
    Ok(())
}

/// Seeds `n` subscribers, each with an active subscription to `offer` starting on `start` and
/// billed up to the end of that month — the population of a monthly run, for the billing
/// benchmark and the crash test. Written in batches of 1,000 per transaction; every account
/// shares one password hash (hashing 100,000 passwords would measure Argon2, not billing).
pub async fn seed_subscriptions(
    app: &App,
    n: u64,
    offer: maocloud_types::OfferId,
    start: jiff::civil::Date,
) -> Result<()> {
    use maocloud_datastore::{
        accounts::NewAccount, billing::Subscription, AccountKind, SubscriberProfile,
    };
    let hash = crate::auth::hash_password("bench-password-123").await?;
    let now = app.now();
    let terms = {
        let mut tx = app.db().read().await?;
        let o = tx.offer_fetch(offer).await?;
        (o.terms, tx.terms_version_current(now).await?)
    };
    let billed_until = start.last_of_month().to_string();
    let mut done = 0;
    while done < n {
        let mut tx = app.db().write().await?;
        for _ in 0..(n - done).min(1000) {
            let id = maocloud_types::SubscriberId::new();
            let email = format!("bulk-{id}@example.test");
            tx.account_create(
                &NewAccount {
                    id: id.0,
                    kind: AccountKind::Subscriber,
                    email: &email,
                    password_hash: &hash,
                    role: None,
                    display_name: "Bulk",
                    locale: "fr",
                    email_verified: true,
                },
                now,
            )
            .await?;
            tx.subscriber_profile_create(&SubscriberProfile {
                id,
                customer_kind: "consumer".into(),
                full_name: "Abonné de test".into(),
                company_name: None,
                company_id: None,
                vat_number: None,
                address_line1: "1 rue de la Paix".into(),
                address_line2: None,
                postal_code: "75002".into(),
                city: "Paris".into(),
                country: "FR".into(),
                phone: None,
                status: "active".into(),
                created_at: now,
                updated_at: now,
            })
            .await?;
            tx.terms_acceptance_create(id, &terms.1, now, "bulk-seed")
                .await?;
            tx.subscription_create(&Subscription {
                id: maocloud_types::SubscriptionId::new(),
                subscriber_id: id,
                offer_id: offer,
                terms: terms.0.clone(),
                status: "active".into(),
                start_date: start.to_string(),
                commitment_end: None,
                billed_until: billed_until.clone(),
                created_at: now,
                ended_at: None,
            })
            .await?;
            done += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Offers the test guest (`scripts/build-test-guest`: a Debian kernel and a busybox initramfs
/// that takes DHCP, reads the metadata service and prints what it read) as the demo image.
pub async fn register_test_guest(app: &App, dir: &std::path::Path) -> Result<()> {
    let kernel = if dir.join("vmlinux").exists() {
        dir.join("vmlinux")
    } else {
        dir.join("vmlinuz")
    };
    crate::compute::images::register_kernel(
        app,
        &Ctx::system(),
        crate::compute::images::RegisterKernel {
            name: "test-guest".into(),
            description: "Debian kernel + busybox: DHCP, metadata, SSH banner on port 22 (demo)"
                .into(),
            kernel,
            initrd: dir.join("initrd.img"),
            cmdline: "console=ttyS0 quiet panic=-1".into(),
        },
    )
    .await?;
    Ok(())
}
