//! The web console in a real browser: headless Chromium, driven over WebDriver by chromedriver,
//! signs up through the form as a person would (clicking labels, typing, the keyboard for the
//! terms checkbox), lands in the subscriber area, signs out and in again, switches to English,
//! and follows the verification link from the email. A screenshot of the subscriber area is
//! left in `target/console-account.png` for a human to look at. A second scenario goes from the
//! public price list to the first invoice (`target/console-invoice.png`).
//!
//! Needs chromedriver and Chromium (`MAOCLOUD_TEST_CHROMEDRIVER`, `MAOCLOUD_TEST_CHROMIUM`,
//! defaulting to /usr/bin/…); without them the test fails, it never skips.
//!
//! WebDriver is spoken directly (plain JSON over HTTP to chromedriver on 127.0.0.1, with the
//! `reqwest` client the platform already has): fantoccini 0.21's rustls connector panics in
//! this dependency graph, where rustls has both the ring and aws-lc-rs providers enabled.

use crate::harness::{TestServer, PASSWORD};
use crate::webdriver::*;
use serde_json::json;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signup_signin_home_in_chromium() {
    let server = TestServer::start().await;
    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;
    let url = |p: &str| format!("{}{p}", server.url);
    let email = "claire.dupont@example.test";

    // Sign up, in French (the default for this browser), as a consumer.
    b.goto(&url("/signup")).await;
    b.wait_text("main h1", "Créer un compte").await;
    assert_eq!(
        b.attr(&b.find("html").await, "lang").await.as_deref(),
        Some("fr")
    );
    b.fill("email", email).await;
    b.fill("password", PASSWORD).await;
    b.click(&b.find("label[for='field-customer_kind']").await)
        .await;
    assert_eq!(
        b.prop(&b.find("#field-customer_kind").await, "checked")
            .await,
        json!(true),
        "the consumer label chooses consumer"
    );
    b.fill("full_name", "Claire Dupont").await;
    b.fill("address_line1", "8 place du Marché").await;
    b.fill("postal_code", "35000").await;
    b.fill("city", "Rennes").await;
    assert_eq!(
        b.prop(&b.find("#field-country").await, "value").await,
        json!("FR"),
        "France is the default country"
    );
    // The terms checkbox, with the keyboard: Space on the focused checkbox ticks it.
    let terms = b.find("#field-accept_terms_version").await;
    b.type_keys(&terms, " ").await;
    assert_eq!(
        b.prop(&terms, "checked").await,
        json!(true),
        "Space ticks the terms checkbox"
    );
    b.click(
        &b.find("main form[action='/signup'] button[type='submit']")
            .await,
    )
    .await;

    // In the subscriber area, signed in, told about the verification email.
    b.wait_text("main h1", "Mon espace").await;
    assert_eq!(b.path().await, "/account");
    let greeting = b.text(&b.find("#greeting").await).await;
    assert!(
        greeting.contains("Claire Dupont"),
        "the area greets the subscriber: {greeting}"
    );
    let notice = b.text(&b.find(".notice").await).await;
    assert!(notice.contains("e-mail de confirmation"), "{notice}");
    b.wait_text("#email-status", "Non vérifiée").await;

    // Sign out, then sign in again with the same credentials.
    b.click(&b.find("header form[action='/signout'] button").await)
        .await;
    b.wait_text(".notice p", "Vous êtes déconnecté.").await;
    assert_eq!(b.path().await, "/");
    b.goto(&url("/account")).await;
    b.wait_text("main h1", "Connexion").await;
    assert_eq!(b.path().await, "/signin", "the area needs a session");
    b.fill("email", email).await;
    b.fill("password", PASSWORD).await;
    b.click(
        &b.find("main form[action='/signin'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text("main h1", "Mon espace").await;
    assert_eq!(
        b.path().await,
        "/account",
        "back where the visitor was going"
    );

    // Switch to English: same page, English heading.
    b.click(&b.find(".lang-switch button[value='en']").await)
        .await;
    b.wait_text("main h1", "My account").await;
    assert_eq!(b.path().await, "/account");
    assert_eq!(
        b.attr(&b.find("html").await, "lang").await.as_deref(),
        Some("en")
    );
    b.wait_text("#email-status", "Not verified").await;

    // The verification email arrived; its link, opened in the browser, verifies the address.
    server.run_jobs().await;
    let body = server
        .last_email_to(email)
        .await
        .expect("the verification email was delivered");
    let at = body
        .find("/verify-email?token=")
        .expect("the email carries a verification link");
    let link: String = body[at..]
        .chars()
        .take_while(|ch| !ch.is_whitespace())
        .collect();
    b.goto(&url(&link)).await;
    b.wait_text("main h1", "Email address verified").await;
    b.goto(&url("/account")).await;
    b.wait_text("#email-status", "Verified").await;
    assert_eq!(
        b.attr(&b.find("#email-status").await, "data-verified")
            .await
            .as_deref(),
        Some("true")
    );

    // For a human: what the subscriber area looks like.
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-account.png");
    std::fs::write(&out, png).expect("write the screenshot");
    eprintln!("screenshot of /account: {}", out.display());

    b.close().await;
    drop(cd);
}

/// French amounts carry no-break spaces; compare them as a reader sees them.
fn plain(s: &str) -> String {
    s.replace(['\u{a0}', '\u{202f}'], " ").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_price_list_subscribe_and_invoice_in_chromium() {
    let server = TestServer::start().await;
    let url = |p: &str| format!("{}{p}", server.url);
    let op = server
        .operator(
            "billing@example.test",
            maocloud_types::OperatorRole::Billing,
        )
        .await;
    crate::billing::offer(&server, &op.token, "small", "Small", 3000, 0).await;
    let email = "lea.martin@example.test";
    server.subscriber(email).await;
    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;

    // The public price list, reached from the header; the offer the operator created is there.
    b.goto(&url("/")).await;
    b.click(&b.find("header .site-nav a[href='/offers']").await)
        .await;
    b.wait_text("main h1", "Offres et tarifs").await;
    let card = b.text(&b.find(".offer-list li").await).await;
    assert!(
        card.contains("Small") && plain(&card).contains("30,00 € HT par mois"),
        "{card}"
    );
    assert!(
        plain(&card).contains("36,00 € TTC"),
        "price incl. VAT: {card}"
    );
    assert!(
        b.try_find("form[action='/account/subscriptions']")
            .await
            .is_none(),
        "no Subscribe button before signing in"
    );

    // Sign in in the browser, back to the price list, and subscribe.
    b.goto(&url("/signin?next=/offers")).await;
    b.fill("email", email).await;
    b.fill("password", PASSWORD).await;
    b.click(
        &b.find("main form[action='/signin'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text("main h1", "Offres et tarifs").await;
    b.click(
        &b.find("form[action='/account/subscriptions'] button[type='submit']")
            .await,
    )
    .await;

    // The first invoice: 5 days of November out of 30, in advance (R-6.1a).
    b.wait_text("#doc-number", "F2026-000001").await;
    assert!(
        b.path().await.starts_with("/account/invoices/"),
        "lands on the new invoice"
    );
    let notice = b.text(&b.find(".notice").await).await;
    assert!(notice.contains("première facture"), "{notice}");
    assert_eq!(plain(&b.text(&b.find("#total-excl").await).await), "5,00 €");
    assert_eq!(plain(&b.text(&b.find("#total-incl").await).await), "6,00 €");
    let line = b.text(&b.find("tr.doc-line").await).await;
    assert!(
        line.contains("Abonnement Small")
            && line.contains("2026-11-26")
            && line.contains("2026-11-30"),
        "{line}"
    );

    // For a human: what the invoice page looks like.
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-invoice.png");
    std::fs::write(&out, png).expect("write the screenshot");
    eprintln!("screenshot of the invoice: {}", out.display());

    // The PDF link answers with the PDF, for the browser's session.
    let pdf_url = b.prop(&b.find("#pdf-link").await, "href").await;
    let pdf_url = pdf_url.as_str().expect("an absolute href").to_string();
    assert!(pdf_url.ends_with("/pdf"), "{pdf_url}");
    let session = b.cookie("maocloud_session").await;
    let resp = reqwest::Client::new()
        .get(&pdf_url)
        .header("cookie", format!("maocloud_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("F2026-000001.pdf"));
    assert!(resp.bytes().await.unwrap().starts_with(b"%PDF"));
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&pdf_url)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303, "no session, no PDF");

    // Paper invoices instead of electronic ones (R-6.1c): chosen with the keyboard-usable radios.
    b.click(&b.find(".sub-nav a[href='/account/invoices']").await)
        .await;
    b.wait_text("main h1", "Factures").await;
    assert!(plain(&b.text(&b.find("#amount-due").await).await).contains("6,00 €"));
    assert!(b
        .text(&b.find("#delivery-current").await)
        .await
        .contains("électronique"));
    b.click(&b.find("label[for='field-invoice_delivery-paper']").await)
        .await;
    b.click(
        &b.find("form[action='/account/invoices/delivery'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text(
        ".notice p",
        "Votre choix d'envoi des factures est enregistré.",
    )
    .await;
    assert!(b
        .text(&b.find("#delivery-current").await)
        .await
        .contains("papier"));
    assert_eq!(
        b.prop(&b.find("#field-invoice_delivery-paper").await, "checked")
            .await,
        json!(true),
        "the saved choice is the one shown"
    );

    b.close().await;
    drop(cd);
}
