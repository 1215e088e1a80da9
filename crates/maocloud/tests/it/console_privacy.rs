//! Personal data in the web console. In headless Chromium, a subscriber signs in, opens
//! "Données personnelles", ticks "promotions" (nothing is ticked by default), saves and finds
//! the change in the history with its source, the console; asks for their export and, once the
//! job has built it, downloads a ZIP from the link the page shows. Over plain HTTP with console
//! sessions: another subscriber's export is a 404; the register of processors is public; the
//! opt-out page withdraws nothing with a forged token and the consent its real token names with
//! the button (double-submit CSRF) or the RFC 8058 one-click POST of a mail client (no CSRF);
//! and erasure in the console: refused with its reason while a contract is active, then the
//! emailed code with a wrong address refused at its field, with the right one the account is
//! gone, the browser signed out with a notice on the home page, and signing in again fails.
//!
//! Like `console`, the first test needs chromedriver and Chromium (`MAOCLOUD_TEST_CHROMEDRIVER`,
//! `MAOCLOUD_TEST_CHROMIUM`, defaulting to /usr/bin/…). A screenshot of the page is left in
//! `target/console-privacy.png` for a human to look at.

use crate::console_session::{client, location, post_signin, set_cookie, Session};
use crate::harness::{Db, Subscriber, TestServer, PASSWORD};
use crate::webdriver::*;
use maocloud_app::privacy::{self, ProcessorInput};
use maocloud_app::Ctx;
use maocloud_types::{OperatorRole, Principal, SubscriberId};
use reqwest::StatusCode;
use std::io::Read;
use std::path::PathBuf;

fn me(a: &Subscriber) -> Ctx {
    Ctx {
        principal: Principal::Subscriber(a.id.parse::<SubscriberId>().unwrap()),
        ip: "-".into(),
    }
}

/// Whether `who` consents to `purpose` now, and the source of the last change.
async fn consent(s: &TestServer, who: &Subscriber, purpose: &str) -> (bool, Option<String>) {
    let c = privacy::consents(&s.app, &me(who), None).await.unwrap();
    let now = c.purposes.iter().any(|(p, g)| p == purpose && *g);
    let last = c
        .history
        .iter()
        .rev()
        .find(|e| e.purpose == purpose)
        .map(|e| e.source.clone());
    (now, last)
}

/// The `href` of the first link after `marker` in `page`.
fn href_after(page: &str, marker: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let rest = &page[at..];
    let href = &rest[rest.find("href=\"").expect("a link") + 6..];
    href[..href.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

/// The names of the files of a ZIP archive, and the text of one of them.
fn zip_files(bytes: &[u8], read: &str) -> (Vec<String>, String) {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a ZIP");
    let names = (0..zip.len())
        .map(|i| {
            let f = zip.by_index(i).expect("an entry");
            f.name().expect("a name").to_string()
        })
        .collect();
    let mut text = String::new();
    zip.by_name(read)
        .expect("the file")
        .read_to_string(&mut text)
        .unwrap();
    (names, text)
}

/// Signs in through the console's form, going to `next`.
async fn browser_sign_in(b: &Browser, base: &str, email: &str, next: &str) {
    b.goto(&format!("{base}/signin?next={next}")).await;
    b.fill("email", email).await;
    b.fill("password", PASSWORD).await;
    b.click(
        &b.find("main form[action='/signin'] button[type='submit']")
            .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_privacy_consent_and_export_in_chromium() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;

    // Her personal-data page, from the sub-navigation; opt-in: nothing ticked.
    browser_sign_in(&b, &s.url, &alice.email, "/account/privacy").await;
    b.wait_text("main h1", "Données personnelles").await;
    assert!(b
        .try_find(".sub-nav a[href='/account/privacy'][aria-current='page']")
        .await
        .is_some());
    let promotions = b.find("#consent-promotions").await;
    assert_eq!(b.prop(&promotions, "checked").await, false);

    // She ticks "promotions" (by its label) and saves; the history says so, from the console.
    b.click(&b.find("label[for='consent-promotions']").await)
        .await;
    assert_eq!(b.prop(&promotions, "checked").await, true);
    b.click(&b.find("#consents-submit").await).await;
    b.wait_text(".notice p", "Vos choix sont enregistrés.")
        .await;
    let row = b
        .text_of("#consent-history tr[data-purpose='promotions']")
        .await;
    assert!(
        row.contains("promotions") && row.contains("accordé") && row.contains("la console"),
        "{row}"
    );
    assert_eq!(
        b.prop(&b.find("#consent-promotions").await, "checked")
            .await,
        true
    );
    assert_eq!(
        consent(&s, &alice, "promotions").await,
        (true, Some("console".into()))
    );
    assert!(
        !consent(&s, &alice, "surveys").await.0,
        "only what she ticked"
    );

    // She asks for her data; once the job has built the archive, the page links it.
    b.click(&b.find("#export-submit").await).await;
    b.wait_for(".notice p", "the export's notice", |t| {
        t.starts_with("Votre export est en préparation")
    })
    .await;
    assert!(b.try_find("#export-preparing").await.is_some());
    s.run_jobs().await;
    b.goto(&format!("{}/account/privacy#export", s.url)).await;
    let link = b.find("#export-list a[download]").await;
    let href = b.attr(&link, "href").await.expect("a download link");
    assert!(
        href.starts_with("/account/privacy/exports/") && href.ends_with("/download"),
        "{href}"
    );
    let status = b.text_of("#export-list tr[data-status='ready']").await;
    assert!(status.contains("prêt"), "{status}");

    // For a human: what the page looks like.
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-privacy.png");
    std::fs::write(&out, png).expect("write the screenshot");
    eprintln!("screenshot of the personal-data page: {}", out.display());

    // The link gives a ZIP, as a file to save, to the session that shows it.
    let cookie = b.cookie("maocloud_session").await;
    let r = client()
        .get(format!("{}{href}", s.url))
        .header("cookie", format!("maocloud_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let disposition = r.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains(".zip"),
        "{disposition}"
    );
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"));
    let (names, consents) = zip_files(&bytes, "consents.json");
    assert!(names.iter().any(|n| n == "account.json"), "{names:?}");
    assert!(
        consents.contains("\"promotions\"") && consents.contains("\"console\""),
        "{consents}"
    );

    b.close().await;
    drop(cd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subscriber_gets_a_404_for_an_export() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let bob = s.subscriber("bob@example.test").await;
    let a = Session::open(&s, &alice.email).await;
    let b = Session::open(&s, &bob.email).await;

    let r = a.post_response("/account/privacy/exports", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/account/privacy?done=export_requested#export"
    );
    // Asked again while it is prepared: refused in its section, with why.
    let r = a.post_response("/account/privacy/exports", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Un export est déjà en préparation."));
    s.run_jobs().await;
    let (_, page) = a.get("/account/privacy").await;
    let url = href_after(&page, "id=\"export-list\"");
    assert!(url.ends_with("/download"), "{url}");

    // Bob finds nothing: not the file, not the row on his page.
    let r = b.request(reqwest::Method::GET, &url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page = r.text().await.unwrap();
    assert!(page.contains("Page introuvable") && !page.starts_with("PK"));
    let (_, page) = b.get("/account/privacy").await;
    assert!(
        !page.contains("id=\"export-list\""),
        "Bob's list is his own"
    );
    // Nor without a session, nor with a forged path.
    let r = client()
        .get(format!("{}{url}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "to the sign-in page");
    let (st, _) = a.get("/account/privacy/exports/not-an-id/download").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Alice gets hers.
    let r = a.request(reqwest::Method::GET, &url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    let (_, account) = zip_files(&bytes, "account.json");
    assert!(account.contains("alice@example.test") && !account.contains("bob@"));

    // A form without its token does nothing.
    let r = b
        .request(reqwest::Method::POST, "/account/privacy/consents")
        .form(&[("csrf", "forged"), ("granted", "loyalty")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(consent(&s, &bob, "loyalty").await, (false, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_and_the_opt_out_need_no_sign_in() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
    let alice = s.subscriber("alice@example.test").await;
    let admin_ctx = Ctx {
        principal: Principal::Operator {
            id: admin.id.parse().unwrap(),
            role: OperatorRole::Admin,
        },
        ip: "-".into(),
    };
    privacy::processor_create(
        &s.app,
        &admin_ctx,
        ProcessorInput {
            kind: "processor".into(),
            name: "Hébergeur <Nord>".into(),
            purpose: "Sauvegardes chiffrées".into(),
            data_categories: "toutes les données des services".into(),
            country: "DE".into(),
            safeguards: "Dans l'UE".into(),
        },
    )
    .await
    .unwrap();
    let http = client();

    // The register, signed out, linked from every page's footer.
    let r = http.get(format!("{}/", s.url)).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("href=\"/processors\""));
    let r = http
        .get(format!("{}/processors", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Hébergeur &lt;Nord&gt;")
            && page.contains("Sauvegardes chiffrées")
            && page.contains(">DE<")
            && page.contains("Sous-traitant"),
        "{page}"
    );

    // The opt-out page hands out its double-submit token, like every pre-session form.
    privacy::set_consent(&s.app, &me(&alice), "promotions", true, "console")
        .await
        .unwrap();
    let who: SubscriberId = alice.id.parse().unwrap();
    let token = privacy::unsubscribe_token(&s.app, who, "promotions").unwrap();
    let forged = format!("{}0", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{}1", &token[..token.len() - 1])
    } else {
        forged
    };
    let r = http
        .get(format!("{}/unsubscribe?t={forged}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, "maocloud_csrf").expect("a double-submit cookie");
    let page = r.text().await.unwrap();
    assert!(page.contains("Se désabonner") && page.contains(&forged));
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    assert_eq!(page[at..].split('"').next().unwrap(), cookie);
    let press = |t: String, csrf: String| {
        let http = http.clone();
        let url = format!("{}/unsubscribe", s.url);
        let cookie = cookie.clone();
        async move {
            let r = http
                .post(url)
                .header("cookie", format!("maocloud_csrf={cookie}"))
                .form(&[("csrf", csrf.as_str()), ("t", t.as_str())])
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };

    // A forged token: the error at the button, nothing withdrawn.
    let (st, page) = press(forged.clone(), cookie.clone()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let error = &page[page.find("id=\"token-error\"").expect("the error")..];
    assert!(
        error[..error.find("</p>").unwrap()]
            .contains("n&#x27;est pas un lien de désabonnement valide"),
        "{error}"
    );
    assert_eq!(
        consent(&s, &alice, "promotions").await,
        (true, Some("console".into()))
    );
    // The real token without the form's token: refused, nothing withdrawn.
    let (st, _) = press(token.clone(), "x".repeat(43)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(consent(&s, &alice, "promotions").await.0);

    // The real token with the button: withdrawn, and the page says which.
    let (st, page) = press(token.clone(), cookie.clone()).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let done = &page[page.find("id=\"unsubscribed\"").expect("done")..];
    assert!(done.contains("« promotions »"), "{done}");
    assert_eq!(
        consent(&s, &alice, "promotions").await,
        (false, Some("unsubscribe_link".into()))
    );

    // RFC 8058: a mail client posts `List-Unsubscribe=One-Click`, no cookie, no CSRF token.
    let one_click = |t: &str, body: &'static str| {
        http.post(format!("{}/unsubscribe?t={t}", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    privacy::set_consent(&s.app, &me(&alice), "promotions", true, "console")
        .await
        .unwrap();
    let r = one_click(&forged, "List-Unsubscribe=One-Click")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = one_click(&token, "List-Unsubscribe=Maybe").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(consent(&s, &alice, "promotions").await.0, "nothing yet");
    let r = one_click(&token, "List-Unsubscribe=One-Click")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(r.text().await.unwrap().contains("promotions"));
    assert_eq!(
        consent(&s, &alice, "promotions").await,
        (false, Some("unsubscribe_link".into()))
    );
    // As multipart/form-data too, which RFC 8058 recommends.
    privacy::set_consent(&s.app, &me(&alice), "promotions", true, "console")
        .await
        .unwrap();
    let boundary = "----maocloudoneclick";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let r = http
        .post(format!("{}/unsubscribe?t={token}", s.url))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!consent(&s, &alice, "promotions").await.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_in_the_console_signs_out_for_good() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let billing = s.operator("billing@op.test", OperatorRole::Billing).await;
    let offer = crate::billing::offer(&s, &billing.token, "small", "Small", 1200, 0).await;

    // While a contract is active, the request is refused, and the page says why.
    let bound = s.subscriber("bound@example.test").await;
    crate::billing::subscribe(&s, &bound.token, &offer).await;
    let c = Session::open(&s, &bound.email).await;
    let r = c.post_response("/account/privacy/erasure", &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let page = r.text().await.unwrap();
    let alert = &page[page.find("id=\"erasure\"").unwrap()..];
    let alert = &alert[alert.find("class=\"alert\"").expect("an alert")..];
    assert!(
        alert[..alert.find("</div>").unwrap()].contains("contrat en cours : résiliez-le"),
        "{alert}"
    );

    // Without one: the code is emailed, and the page asks for it with the address.
    let email = "zoe.erase@example.test";
    let zoe = s.subscriber(email).await;
    let z = Session::open(&s, &zoe.email).await;
    let r = z.post_response("/account/privacy/erasure", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert_eq!(to, "/account/privacy?done=erasure_code_sent#erasure");
    let (_, page) = z.get(&to).await;
    assert!(
        page.contains("id=\"erasure-confirm\"")
            && page.contains("Un code de confirmation vient de vous être envoyé")
    );
    let mail = s.emails_to(email).await;
    let (_, body, _) = mail
        .iter()
        .find(|(subject, _, _)| subject.contains("effacement"))
        .expect("the code is emailed");
    let code = body
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 10 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .expect("a code line")
        .to_string();

    // The code with the wrong address: refused at the address, the account still there.
    let r = z
        .post_response(
            "/account/privacy/erasure/confirm",
            &[("code", &code), ("email", "someone@example.test")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    let error = &page[page.find("id=\"email-error\"").expect("at the field")..];
    assert!(
        error[..error.find("</p>").unwrap()].contains("l&#x27;adresse e-mail de votre compte"),
        "{error}"
    );
    assert!(page.contains("href=\"#field-email\""), "summarised");
    assert!(
        page.contains(&format!("value=\"{code}\"")),
        "the code is kept"
    );
    let (st, _) = z.get("/account").await;
    assert_eq!(st, StatusCode::OK, "still there");

    // With the right one: erased, signed out, told so on the home page.
    let r = z
        .post_response(
            "/account/privacy/erasure/confirm",
            &[("code", &code), ("email", email)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .any(|c| c.starts_with("maocloud_session=") && c.contains("Max-Age=0"));
    assert!(cleared, "the session cookie is removed");
    let flash = set_cookie(&r, "maocloud_flash").expect("a notice");
    let home = client()
        .get(format!("{}/", s.url))
        .header("cookie", format!("maocloud_flash={flash}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Votre compte et vos données personnelles sont effacés."),
        "{home}"
    );
    // The old session is dead, and signing in again fails.
    let (st, _) = z.get("/account/privacy").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "to the sign-in page");
    let r = post_signin(&s, email).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The subscriber with a contract keeps hers.
    let (st, _) = c.get("/account/privacy").await;
    assert_eq!(st, StatusCode::OK);
}
