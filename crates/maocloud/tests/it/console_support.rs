//! The support desk in the web console. In headless Chromium, a subscriber opens a ticket with
//! an attachment from the form (the response targets in view), a support operator signs in with
//! TOTP, finds it in the queue, adds an internal note, then answers with a canned reply (the
//! ticket now waits on the subscriber), and the subscriber reads the answer — never the note —
//! and closes the ticket with a rating. Over plain HTTP with console sessions: another
//! subscriber finds neither the ticket's page, its attachment nor its actions (404), a form
//! without its token opens nothing, and anyone, signed out, reports abuse through the public
//! form (an invalid address is refused at its field, the report gets its number, the sixth of
//! the hour is told to wait) and reports lost credentials (the same neutral answer for any
//! address).
//!
//! Like `console`, this needs chromedriver and Chromium (`MAOCLOUD_TEST_CHROMEDRIVER`,
//! `MAOCLOUD_TEST_CHROMIUM`, defaulting to /usr/bin/…) and fails without them. A screenshot of
//! the desk's ticket page is left in `target/console-support.png` for a human to look at.

use crate::console_session::{multipart, Session};
use crate::harness::{Db, TestServer, PASSWORD};
use crate::webdriver::*;
use maocloud_app::support::{self, TicketFilter};
use maocloud_app::{storage, Ctx};
use maocloud_types::{OperatorRole, PageRequest, Principal};
use reqwest::StatusCode;
use std::path::PathBuf;

/// The file attached to the ticket.
const JOURNAL: &[u8] =
    b"[    2.041] EXT4-fs (vda1): mounted filesystem\n[    9.310] kernel panic\n";

fn system() -> Ctx {
    Ctx {
        principal: Principal::System,
        ip: "-".into(),
    }
}

/// Text as WebDriver reads it, with no-break spaces as plain ones.
fn plain(s: &str) -> String {
    s.replace(['\u{a0}', '\u{202f}'], " ")
}

/// The `href` of the first link whose text or attributes follow `marker` in `page`.
fn href_after(page: &str, marker: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let rest = &page[at..];
    let href = &rest[rest.find("href=\"").expect("a link") + 6..];
    href[..href.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

/// Every ticket of one kind, as the platform sees them.
async fn tickets_of_kind(s: &TestServer, kind: &str) -> Vec<support::Ticket> {
    let filter = TicketFilter {
        kind: Some(kind.into()),
        ..TicketFilter::default()
    };
    support::list(&s.app, &system(), filter, &PageRequest::first(100))
        .await
        .unwrap()
        .items
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

/// Signs out from the header, landing on the home page.
async fn browser_sign_out(b: &Browser) {
    b.click(&b.find("header form[action='/signout'] button").await)
        .await;
    b.wait_text(".notice p", "Vous êtes déconnecté.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subscriber_finds_neither_the_ticket_nor_its_files() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let bob = s.subscriber("bob@example.test").await;
    let a = Session::open(&s, &alice.email).await;
    let b = Session::open(&s, &bob.email).await;
    // Alice has a bucket the ticket is about.
    let alice_ctx = Ctx {
        principal: Principal::Subscriber(alice.id.parse().unwrap()),
        ip: "-".into(),
    };
    storage::quota_set(
        &s.app,
        &system(),
        alice.id.parse().unwrap(),
        Some((1_000_000, 100)),
    )
    .await
    .unwrap();
    storage::bucket_create(&s.app, &alice_ctx, "alice-factures")
        .await
        .unwrap();
    let (_, page) = a.get("/account/support/new").await;
    assert!(
        page.contains("value=\"bucket:alice-factures\""),
        "her bucket is offered"
    );

    // Alice opens a ticket with a file through the console's form.
    let ticket_form = [
        ("subject", "Facture de novembre"),
        ("category", "billing"),
        ("priority", "normal"),
        ("message", "Le montant me semble faux, relevé joint."),
        ("resources", "bucket:alice-factures"),
    ];
    let files: [(&str, &str, &str, &[u8]); 1] = [(
        "attachments",
        "releve.txt",
        "text/plain",
        b"ligne 1: 29,99\n",
    )];
    let (st, location, page) = a
        .upload("/account/support", Some(&a.csrf), &ticket_form, &files)
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert!(location.ends_with("?done=opened"), "{location}");
    let url = location.split('?').next().unwrap().to_string();
    let (st, page) = a.get(&url).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Facture de novembre") && page.contains("releve.txt"));
    assert!(page.contains("data-resource=\"bucket:alice-factures\""));
    let file_url = href_after(&page, "class=\"attachments\"");
    assert!(
        file_url.starts_with(&format!("{url}/attachments/")),
        "{file_url}"
    );

    // Hers to read: as a file to save, never a page.
    let r = a
        .request(reqwest::Method::GET, &file_url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("releve.txt"),
        "{disposition}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&r.bytes().await.unwrap()[..], b"ligne 1: 29,99\n");

    // Bob finds nothing: not the page, not the file, not the actions.
    for path in [url.clone(), file_url.clone()] {
        let (st, page) = b.get(&path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.contains("Page introuvable") && !page.contains("Facture de novembre"),
            "{path}: {page}"
        );
        assert!(!page.contains("29,99"));
    }
    let (st, _, _) = b
        .upload(
            &format!("{url}/reply"),
            Some(&b.csrf),
            &[("message", "Je m'invite.")],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for action in ["close", "reopen"] {
        let (st, _) = b.post(&format!("{url}/{action}"), &[("rating", "1")]).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{action}");
    }
    let (st, page) = b.get("/account/support").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        !page.contains("Facture de novembre"),
        "Bob's list is his own"
    );
    // Nor can he name her bucket in a ticket of his: refused at the field.
    let (st, _, page) = b
        .upload("/account/support", Some(&b.csrf), &ticket_form, &[])
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let error = &page[page.find("id=\"resources-error\"").expect("at the field")..];
    assert!(
        error[..error.find("</p>").unwrap()].contains("ne fait pas partie de vos ressources"),
        "{error}"
    );
    assert!(
        !page.contains("bucket:alice-factures"),
        "her bucket is not offered to him"
    );
    let (st, page) = a.get(&url).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        !page.contains("Je m&#x27;invite"),
        "nothing Bob sent reached it"
    );

    // A path that is no ticket id is no page either.
    let (st, _) = a.get("/account/support/not-a-ticket").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A form without its token opens nothing, even with a valid session.
    let before = support::list(
        &s.app,
        &system(),
        TicketFilter::default(),
        &PageRequest::first(100),
    )
    .await
    .unwrap()
    .items
    .len();
    let (st, _, _) = a
        .upload("/account/support", None, &ticket_form, &files)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = a
        .upload("/account/support", Some("forged"), &ticket_form, &files)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let after = support::list(
        &s.app,
        &system(),
        TicketFilter::default(),
        &PageRequest::first(100),
    )
    .await
    .unwrap()
    .items
    .len();
    assert_eq!(before, after, "no ticket opened");

    // Operators reach the ticket from the back office, not the subscriber's pages.
    let op = s.operator("billing@op.test", OperatorRole::Billing).await;
    let o = Session::open_operator(&s, &op).await;
    let (st, _) = o.get(&url).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let admin_url = url.replace("/account/", "/admin/");
    let (st, page) = o.get(&admin_url).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Facture de novembre") && page.contains("releve.txt"));
    let (st, _) = a.get(&admin_url).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "the back office is not hers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_reports_abuse_and_lost_credentials_without_signing_in() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The form hands out its double-submit token, as sign-up does.
    let r = http.get(format!("{}/abuse", s.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|c| c.strip_prefix("maocloud_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("a double-submit cookie")
        .to_string();
    let page = r.text().await.unwrap();
    assert!(page.contains("Signaler un abus") && page.contains("enctype=\"multipart/form-data\""));
    let at = page.find("name=\"csrf\" value=\"").expect("a token") + 19;
    let csrf = page[at..].split('"').next().unwrap().to_string();
    assert_eq!(csrf, cookie);
    let send = |fields: Vec<(&'static str, String)>,
                files: Vec<(&'static str, &'static str, &'static str, &'static [u8])>,
                path: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", s.url);
        let cookie = cookie.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (content_type, body) = multipart(&fields, &files);
            let r = http
                .post(url)
                .header("cookie", format!("maocloud_csrf={cookie}"))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status(), retry, r.text().await.unwrap())
        }
    };
    let report = |email: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("reporter_email", email.to_string()),
            ("reporter_name", "Dominique".to_string()),
            ("resource", "203.0.113.9".to_string()),
            ("kind", "phishing".to_string()),
            (
                "description",
                "A page imitating my bank at http://203.0.113.9/login since this morning."
                    .to_string(),
            ),
        ]
    };

    // An invalid address is refused at its field, with the reason; the rest is kept.
    let (st, _, page) = send(report("pas-une-adresse"), vec![], "/abuse").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("href=\"#field-reporter_email\""),
        "the summary names the field"
    );
    let error = &page[page
        .find("id=\"reporter_email-error\"")
        .expect("at the field")..];
    let error = &error[..error.find("</p>").unwrap()];
    assert!(
        error.contains("n&#x27;est pas une adresse e-mail valide"),
        "{error}"
    );
    assert!(page.contains("Votre adresse e-mail"), "the field is named");
    assert!(page.contains("imitating my bank"), "what was typed is kept");
    // Without the cookie's token, nothing is recorded.
    let mut forged = report("dominique@example.test");
    forged[0].1 = "x".repeat(43);
    let (st, _, _) = send(forged, vec![], "/abuse").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(tickets_of_kind(&s, "abuse_report").await.is_empty());

    // A good report gets its number, with evidence attached.
    let (st, _, page) = send(
        report("dominique@example.test"),
        vec![("evidence", "capture.txt", "text/plain", b"GET /login 200\n")],
        "/abuse",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let tickets = tickets_of_kind(&s, "abuse_report").await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert!(
        page.contains(&format!("n° {}", t.number)) && page.contains("id=\"abuse-sent\""),
        "{page}"
    );
    assert_eq!(
        (t.category.as_str(), t.contact_email.as_deref()),
        ("abuse", Some("dominique@example.test"))
    );
    let view = support::get(&s.app, &system(), &t.id).await.unwrap();
    assert_eq!(view.thread[0].attachments[0].file_name, "capture.txt");

    // Five an hour from one address; the sixth is told when to come back.
    for _ in 0..4 {
        let (st, _, _) = send(report("dominique@example.test"), vec![], "/abuse").await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, retry, page) = send(report("dominique@example.test"), vec![], "/abuse").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("3600"));
    assert!(
        page.contains("Trop de tentatives") && page.contains("60 minutes"),
        "{page}"
    );
    assert!(
        page.contains("imitating my bank"),
        "the form is still there, filled in"
    );
    assert_eq!(tickets_of_kind(&s, "abuse_report").await.len(), 5);

    // Lost credentials: the same neutral answer whoever the address is; a report only for
    // a subscriber's, and the identity document is required.
    let r = http.get(format!("{}/signin", s.url)).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(
        page.contains("href=\"/lost-credentials\""),
        "linked from sign-in"
    );
    let lost = |email: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("email", email.to_string()),
            ("name", "Alice Martin".to_string()),
            (
                "statement",
                "Mon ordinateur portable a été volé hier soir.".to_string(),
            ),
        ]
    };
    let (st, _, page) = send(lost(&alice.email), vec![], "/lost-credentials").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let error = &page[page.find("id=\"proof-error\"").expect("at the file")..];
    assert!(error[..error.find("</p>").unwrap()].contains("choisissez un fichier"));
    let id_card: &[u8] = b"%PDF-1.4\n% carte d'identite\n";
    let mut answers = vec![];
    for email in ["nobody@example.test", alice.email.as_str()] {
        let (st, _, page) = send(
            lost(email),
            vec![("proof", "cni.pdf", "application/pdf", id_card)],
            "/lost-credentials",
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let at = page.find("id=\"lost-sent\"").expect("the confirmation");
        answers.push(page[at..].split("</div>").next().unwrap().to_string());
    }
    assert_eq!(
        answers[0], answers[1],
        "nothing tells a subscriber's address apart"
    );
    let reports = tickets_of_kind(&s, "credential_loss").await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].subscriber_id.unwrap().to_string(), alice.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_support_ticket_from_opening_to_rating_in_chromium() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let op = s.operator("desk@op.test", OperatorRole::Support).await;
    let system = system();
    support::canned_create(
        &s.app,
        &Ctx {
            principal: Principal::Operator {
                id: op.id.parse().unwrap(),
                role: OperatorRole::Support,
            },
            ip: "-".into(),
        },
        "Redémarrage",
        "Nous avons redémarré l'hyperviseur ; votre machine répond de nouveau. Pouvez-vous confirmer ?",
    )
    .await
    .expect("a canned reply");
    let url = |p: &str| format!("{}{p}", s.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.txt");
    std::fs::write(&file, JOURNAL).unwrap();

    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;

    // The subscriber opens a ticket from their area, the targets in view, a file attached.
    browser_sign_in(&b, &s.url, &alice.email, "/account/support").await;
    b.wait_text("main h1", "Support").await;
    assert!(b
        .try_find(".sub-nav a[href='/account/support'][aria-current='page']")
        .await
        .is_some());
    assert!(b
        .text_of("main")
        .await
        .contains("Vous n'avez encore ouvert aucune demande."));
    b.click(&b.find("#new-ticket").await).await;
    b.wait_text("main h1", "Ouvrir une demande").await;
    let targets = plain(&b.text_of("#targets-table tr[data-priority='urgent']").await);
    assert!(
        targets.contains("urgente") && targets.contains("min"),
        "{targets}"
    );
    b.fill("subject", "Ma machine ne démarre plus").await;
    b.click(&b.find("#field-priority option[value='high']").await)
        .await;
    b.fill(
        "message",
        "Depuis ce matin, elle s'arrête au démarrage. Journal joint.",
    )
    .await;
    let input = b.find("#field-attachments").await;
    b.type_keys(&input, file.to_str().unwrap()).await;
    b.click(&b.find("#open-submit").await).await;
    b.wait_for(".notice p", "the ticket's notice", |t| {
        t.starts_with("Votre demande est enregistrée")
    })
    .await;
    let ticket_path = b.path().await;
    let id = ticket_path.rsplit('/').next().unwrap().to_string();
    let ticket = support::get(&s.app, &system, &id)
        .await
        .expect("the ticket");
    let number = ticket.ticket.number;
    assert_eq!(
        (
            ticket.ticket.priority.as_str(),
            ticket.ticket.source.as_str()
        ),
        ("high", "console")
    );
    assert_eq!(ticket.thread[0].attachments[0].file_name, "journal.txt");
    assert_eq!(
        b.text_of("#ticket-badges [data-status]").await.trim(),
        "nouvelle"
    );
    let thread = b.text_of("#thread").await;
    assert!(
        thread.contains("Journal joint.") && thread.contains("journal.txt"),
        "{thread}"
    );
    // The file comes back as it went, to the session that shows it.
    let link = b.find("#thread .attachments a").await;
    let href = b.attr(&link, "href").await.expect("a download link");
    let cookie = b.cookie("maocloud_session").await;
    let r = reqwest::Client::new()
        .get(url(&href))
        .header("cookie", format!("maocloud_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.unwrap()[..], JOURNAL);
    browser_sign_out(&b).await;

    // The desk: the operator signs in with TOTP and finds the ticket in the queue.
    browser_sign_in(&b, &s.url, &op.email, "/admin/support").await;
    b.wait_text("main h1", "Validation en deux étapes").await;
    b.fill("totp", &s.totp_code(&op.totp_secret)).await;
    b.click(
        &b.find("main form[action='/signin/totp'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text("main h1", "Support").await;
    let row = plain(
        &b.text_of(&format!("#queue tr[data-ticket='{number}']"))
            .await,
    );
    assert!(
        row.contains("Ma machine ne démarre plus")
            && row.contains("haute")
            && row.contains("Nouvelle"),
        "{row}"
    );
    b.click(
        &b.find(&format!("#queue tr[data-ticket='{number}'] a"))
            .await,
    )
    .await;
    b.wait_for("main h1", "the ticket", |t| {
        t.contains("Ma machine ne démarre plus")
    })
    .await;
    let context = b.text_of("#context").await;
    assert!(context.contains("alice@example.test"), "{context}");

    // An internal note first.
    b.fill("message", "Hyperviseur hv-3 saturé, je le redémarre.")
        .await;
    b.click(&b.find("label[for='field-internal']").await).await;
    b.click(&b.find("#reply-submit").await).await;
    b.wait_text(".notice p", "La note interne est ajoutée.")
        .await;
    let note = b.text_of("#thread li[data-internal='true']").await;
    assert!(
        note.contains("hv-3") && note.contains("Note interne"),
        "the note is marked: {note}"
    );

    // Then the answer, from a canned reply; the ticket then waits on the subscriber.
    b.click(&b.find("#field-canned option:nth-child(2)").await)
        .await;
    b.click(&b.find("#canned-insert").await).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(field) = b.try_find("#field-message").await {
            let path = format!("/element/{}/property/value", field.0);
            let filled = b.call(reqwest::Method::GET, &path, None).await;
            if filled.is_ok_and(|v| v.as_str().is_some_and(|v| v.starts_with("Nous avons"))) {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the canned reply fills the message"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let status = b.prop(&b.find("#field-reply_status").await, "value").await;
    assert_eq!(status.as_str(), Some("waiting"));
    b.click(&b.find("#reply-submit").await).await;
    b.wait_text(".notice p", "Le message est envoyé.").await;
    assert_eq!(
        b.text_of("#ticket-badges [data-status]").await.trim(),
        "En attente de l'abonné"
    );
    assert!(
        b.text_of("#assignee").await.contains("moi"),
        "answering assigns"
    );
    let events = b.text_of("#events").await;
    assert!(events.contains("Ouverture"), "{events}");

    // For a human: what the desk's ticket page looks like.
    b.goto(&url(&format!("/admin/support/{id}"))).await;
    b.wait_for("main h1", "the ticket", |t| t.contains("Ma machine"))
        .await;
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-support.png");
    std::fs::write(&out, png).expect("write the screenshot");
    eprintln!("screenshot of the desk's ticket: {}", out.display());
    browser_sign_out(&b).await;

    // The subscriber reads the answer, never the note, and closes with a rating.
    browser_sign_in(&b, &s.url, &alice.email, "/account/support").await;
    b.wait_for(
        &format!("#ticket-list tr[data-ticket='{number}']"),
        "the ticket waiting on her",
        |row| row.contains("en attente de votre réponse"),
    )
    .await;
    b.click(
        &b.find(&format!("#ticket-list tr[data-ticket='{number}'] a"))
            .await,
    )
    .await;
    b.wait_for("#thread", "the answer", |t| {
        t.contains("Nous avons redémarré")
    })
    .await;
    let source = b.get("/source").await;
    let source = source.as_str().unwrap();
    assert!(
        !source.contains("hv-3") && !source.contains("Note interne"),
        "the internal note never reaches the subscriber"
    );
    b.click(&b.find("label[for='rating-5']").await).await;
    b.fill("comment", "Rapide et clair, merci.").await;
    b.click(&b.find("#close-submit").await).await;
    b.wait_text(
        ".notice p",
        "La demande est close. Merci pour votre évaluation.",
    )
    .await;
    assert_eq!(
        plain(&b.text_of("#ticket-rating").await),
        "5 sur 5 — Rapide et clair, merci."
    );
    assert!(
        b.try_find("#reopen-submit").await.is_some(),
        "it can be reopened"
    );
    let done = support::get(&s.app, &system, &id).await.unwrap().ticket;
    assert_eq!((done.status.as_str(), done.rating), ("closed", Some(5)));
    assert!(done.first_response_at.is_some() && !done.first_response_breached);

    b.close().await;
    drop(cd);
}
