//! Object storage in the web console. In headless Chromium, a subscriber with a storage quota
//! sees their usage, is told next to the field why a bucket name is refused, creates a bucket,
//! uploads a file into a folder through the form, finds it by browsing, downloads it (the bytes
//! checked with the browser's session cookie), is refused the deletion of a bucket that is not
//! empty, deletes the file and then the bucket; creates an S3 access key whose secret shows
//! once (not on reload) and works, then revokes it. Over plain HTTP with console sessions:
//! another subscriber finds neither the bucket's page, its downloads nor its actions (404), an
//! upload without the form's token stores nothing, an upload beyond the quota is refused with
//! the reason, and a long listing goes page by page.
//!
//! Like `console`, this needs chromedriver and Chromium (`MAOCLOUD_TEST_CHROMEDRIVER`,
//! `MAOCLOUD_TEST_CHROMIUM`, defaulting to /usr/bin/…) and fails without them.

use crate::console_session::Session;
use crate::harness::{Db, TestServer, PASSWORD};
use crate::webdriver::*;
use bytes::Bytes;
use maocloud_app::storage::{self, Body, ObjectMeta, PutObject, WriteIf};
use maocloud_app::Ctx;
use maocloud_types::OperatorRole;
use maocloud_types::{Principal, SubscriberId};
use reqwest::StatusCode;
use serde_json::json;

/// What the test file holds.
const CONTENT: &[u8] = b"Bonjour, stockage objet !\n";

fn ctx_of(id: &str) -> Ctx {
    Ctx {
        principal: Principal::Subscriber(id.parse::<SubscriberId>().unwrap()),
        ip: "-".into(),
    }
}

/// A subscriber with 2 GB and 10,000 objects of storage, set by the platform.
async fn with_quota(s: &TestServer, id: &str, quota: (i64, i64)) {
    let system = Ctx {
        principal: Principal::System,
        ip: "-".into(),
    };
    storage::quota_set(&s.app, &system, id.parse().unwrap(), Some(quota))
        .await
        .expect("quota set");
}

async fn put(s: &TestServer, owner: &str, bucket: &str, key: &str, bytes: &'static [u8]) {
    storage::put_object(
        &s.app,
        &ctx_of(owner),
        PutObject {
            bucket: bucket.into(),
            key: key.into(),
            content_type: Some("text/plain".into()),
            meta: ObjectMeta::default(),
            cond: WriteIf::default(),
        },
        Body::from_bytes(Bytes::from_static(bytes)),
    )
    .await
    .expect("object stored");
}

/// Text as WebDriver reads it, with no-break spaces as plain ones.
fn plain(s: &str) -> String {
    s.replace(['\u{a0}', '\u{202f}'], " ")
}

/// The upload form of a bucket, as a browser sends it (`csrf: None` leaves the token out).
async fn upload(
    session: &Session,
    bucket: &str,
    csrf: Option<&str>,
    name: &str,
    bytes: &[u8],
) -> (StatusCode, String) {
    let (status, _, page) = session
        .upload(
            &format!("/account/storage/buckets/{bucket}/upload"),
            csrf,
            &[("prefix", ""), ("folder", "")],
            &[("file", name, "text/plain", bytes)],
        )
        .await;
    (status, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subscribers_bucket_is_not_found_and_refusals_are_explained() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    let bob = s.subscriber("bob@example.test").await;
    with_quota(&s, &alice.id, (2_000_000_000, 10_000)).await;
    with_quota(&s, &bob.id, (2_000_000_000, 10_000)).await;
    storage::bucket_create(&s.app, &ctx_of(&alice.id), "alice-private")
        .await
        .unwrap();
    put(&s, &alice.id, "alice-private", "secret.txt", b"top secret").await;

    let a = Session::open(&s, &alice.email).await;
    let b = Session::open(&s, &bob.email).await;
    let page_url = "/account/storage/buckets/alice-private";
    let download = "/account/storage/buckets/alice-private/object?key=secret.txt";

    // The owner reads the object; the download is an attachment, never a page.
    let r = a
        .request(reqwest::Method::GET, download)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("secret.txt"),
        "{disposition}"
    );
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(&r.bytes().await.unwrap()[..], b"top secret");

    // Another subscriber finds nothing: not the page, not the object, not the actions.
    let (st, page) = b.get(page_url).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("Page introuvable") && !page.contains("secret.txt"));
    let (st, page) = b.get(download).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(!page.contains("top secret"));
    let (st, _) = b
        .post(
            "/account/storage/buckets/alice-private/object/delete",
            &[("key", "secret.txt")],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = b
        .post("/account/storage/buckets/alice-private/delete", &[])
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = upload(&b, "alice-private", Some(&b.csrf), "planted.txt", b"x").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, page) = b.get("/account/storage").await;
    assert_eq!(st, StatusCode::OK);
    assert!(!page.contains("alice-private"), "Bob's list is his own");
    // Nothing Bob did reached the bucket; the name stays Alice's (refused at the field).
    let (st, page) = b
        .post("/account/storage", &[("name", "alice-private")])
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    let error = &page[page.find("id=\"name-error\"").expect("at the field")..];
    assert!(
        error[..error.find("</p>").unwrap()].contains("déjà pris"),
        "{error}"
    );
    let info = storage::head_object(&s.app, &ctx_of(&alice.id), "alice-private", "secret.txt")
        .await
        .expect("still there");
    assert_eq!(info.size, 10);

    // An upload without the form's token stores nothing.
    let (st, _) = upload(&a, "alice-private", None, "forged.txt", b"x").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        storage::head_object(&s.app, &ctx_of(&alice.id), "alice-private", "forged.txt")
            .await
            .is_err()
    );

    // A long listing goes page by page; "folders" come with the objects.
    const KEYS: [&str; 52] = [
        "f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f11", "f12",
        "f13", "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25",
        "f26", "f27", "f28", "f29", "f30", "f31", "f32", "f33", "f34", "f35", "f36", "f37", "f38",
        "f39", "f40", "f41", "f42", "f43", "f44", "f45", "f46", "f47", "f48", "f49", "zz/a",
        "zz/b",
    ];
    for k in KEYS {
        put(&s, &alice.id, "alice-private", k, b"1").await;
    }
    let (st, page) = a.get(page_url).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("data-key=\"f00\"") && page.contains("data-key=\"f49\""));
    assert!(
        !page.contains("data-key=\"secret.txt\""),
        "on the next page"
    );
    let at = page.find("rel=\"next\"").expect("a next page link");
    let href = &page[..at];
    let href = &href[href.rfind("href=\"").unwrap() + 6..];
    let next = href[..href.find('"').unwrap()].replace("&amp;", "&");
    let (st, page) = a.get(&next).await;
    assert_eq!(st, StatusCode::OK, "{next}");
    assert!(
        page.contains("data-key=\"secret.txt\"")
            && page.contains("data-folder=\"zz/\"")
            && !page.contains("data-key=\"f49\"")
            && !page.contains("data-key=\"zz/a\""),
        "the rest: {next}"
    );
    assert!(!page.contains("rel=\"next\""), "the last page");
    let (_, page) = a.get(&format!("{page_url}?prefix=zz/")).await;
    assert!(page.contains("data-key=\"zz/a\"") && page.contains("data-key=\"zz/b\""));

    // Operators see every subscriber's usage against their quota, and no subscriber page.
    let op = s.operator("support@op.test", OperatorRole::Support).await;
    let o = Session::open_operator(&s, &op).await;
    let (st, page) = o.get("/admin/storage").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let row = &page[page
        .find(&format!("data-subscriber=\"{}\"", alice.id))
        .expect("Alice's usage is listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(">53<") && row.contains("2\u{a0}Go") && row.contains("Fixé par un opérateur"),
        "{row}"
    );
    assert!(page.contains("href=\"/admin/storage\" aria-current=\"page\""));
    let (st, _) = o.get(page_url).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _) = a.get("/admin/storage").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Beyond the quota, the upload is refused with the reason (and nothing is stored).
    // 53 objects stored: as many as the quota allows.
    with_quota(&s, &alice.id, (2_000_000_000, 53)).await;
    let (st, page) = upload(&a, "alice-private", Some(&a.csrf), "one-too-many.txt", b"x").await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("dépasserait votre quota"), "{page}");
    assert!(storage::head_object(
        &s.app,
        &ctx_of(&alice.id),
        "alice-private",
        "one-too-many.txt"
    )
    .await
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_buckets_objects_and_access_keys_in_chromium() {
    let s = TestServer::start_on(Db::Sqlite).await;
    let alice = s.subscriber("alice@example.test").await;
    with_quota(&s, &alice.id, (2_000_000_000, 10_000)).await;
    let url = |p: &str| format!("{}{p}", s.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bonjour.txt");
    std::fs::write(&file, CONTENT).unwrap();

    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;
    b.goto(&url("/signin?next=/account/storage")).await;
    b.fill("email", &alice.email).await;
    b.fill("password", PASSWORD).await;
    b.click(
        &b.find("main form[action='/signin'] button[type='submit']")
            .await,
    )
    .await;

    // No bucket yet, the whole quota free.
    b.wait_text("main h1", "Stockage objet").await;
    assert!(b
        .try_find(".sub-nav a[href='/account/storage'][aria-current='page']")
        .await
        .is_some());
    let usage = plain(&b.text_of("#usage-bytes").await);
    assert!(usage.contains("0 o sur 2 Go"), "{usage}");
    let usage = plain(&b.text_of("#usage-objects").await);
    assert!(usage.contains("0 sur 10 000"), "{usage}");
    assert!(b.text_of("#traffic").await.contains("Requêtes"));

    // A name S3 refuses is refused next to the field, with the reason.
    b.fill("name", "Mes_Photos").await;
    b.click(
        &b.find("form[action='/account/storage'] button[type='submit']")
            .await,
    )
    .await;
    let error = b
        .wait_for("#name-error", "the name's error", |t| !t.is_empty())
        .await;
    assert!(
        error.contains("lettres minuscules, des chiffres, des points et des tirets"),
        "{error}"
    );
    let field = b.find("#field-name").await;
    assert_eq!(
        b.attr(&field, "aria-invalid").await.as_deref(),
        Some("true")
    );
    b.post(&format!("/element/{}/clear", field.0), json!({}))
        .await;
    b.fill("name", "alice-photos").await;
    b.click(
        &b.find("form[action='/account/storage'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text(".notice p", "Le bucket est créé.").await;
    assert_eq!(b.path().await, "/account/storage/buckets/alice-photos");
    assert!(b.text_of("main").await.contains("Ce bucket est vide."));

    // Upload into a folder: the page shows the folder, with the file in it.
    b.fill("folder", "docs").await;
    let input = b.find("#field-file").await;
    b.type_keys(&input, file.to_str().unwrap()).await;
    b.click(&b.find("#upload-submit").await).await;
    b.wait_text(".notice p", "Le fichier est envoyé.").await;
    let crumbs = b.text_of("#crumbs").await;
    assert!(
        crumbs.contains("alice-photos") && crumbs.contains("docs/"),
        "{crumbs}"
    );
    let row = b.text_of("tr[data-key='docs/bonjour.txt']").await;
    assert!(
        row.contains("bonjour.txt") && row.contains("text/plain"),
        "{row}"
    );

    // From the bucket's top, the folder leads to it.
    b.click(&b.find("#crumbs a").await).await;
    b.click(&b.find("tr[data-folder='docs/'] a").await).await;
    let row = b.text_of("tr[data-key='docs/bonjour.txt']").await;
    assert!(
        plain(&row).contains(&format!("{} o", CONTENT.len())),
        "{row}"
    );

    // The download link gives the bytes to the session that shows it.
    let link = b.find("tr[data-key='docs/bonjour.txt'] a[download]").await;
    let href = b.attr(&link, "href").await.expect("a download link");
    let cookie = b.cookie("maocloud_session").await;
    let r = reqwest::Client::new()
        .get(url(&href))
        .header("cookie", format!("maocloud_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{href}");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("filename=\"bonjour.txt\""));
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(&r.bytes().await.unwrap()[..], CONTENT);
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url(&href))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::SEE_OTHER,
        "no session, no bytes"
    );

    // The buckets page: the bucket with its size; it is not empty, so it is not deleted.
    b.click(&b.find(".sub-nav a[href='/account/storage']").await)
        .await;
    let row = plain(&b.text_of("tr[data-bucket='alice-photos']").await);
    assert!(
        row.contains(&format!("{} o", CONTENT.len())) && row.contains('1'),
        "{row}"
    );
    let usage = plain(&b.text_of("#usage-objects").await);
    assert!(usage.contains("1 sur 10 000"), "{usage}");
    b.click(
        &b.find("tr[data-bucket='alice-photos'] button[type='submit']")
            .await,
    )
    .await;
    let alert = b
        .wait_for(".alert p", "the refusal", |t| !t.is_empty())
        .await;
    assert!(alert.contains("n'est pas vide"), "{alert}");

    // Delete the file, then the bucket.
    b.click(&b.find("tr[data-bucket='alice-photos'] a").await)
        .await;
    b.click(&b.find("tr[data-folder='docs/'] a").await).await;
    b.click(
        &b.find("tr[data-key='docs/bonjour.txt'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text(".notice p", "L'objet est supprimé.").await;
    assert!(b.text_of("main").await.contains("Ce dossier est vide."));
    b.goto(&url("/account/storage")).await;
    b.click(
        &b.find("tr[data-bucket='alice-photos'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text(".notice p", "Le bucket est supprimé.").await;
    assert!(b.try_find("tr[data-bucket='alice-photos']").await.is_none());

    // An access key: its secret shows once, and works until revoked.
    b.click(&b.find(".sub-nav a[href='/account/storage/keys']").await)
        .await;
    b.wait_text("main h1", "Clés d'accès S3").await;
    b.fill("name", "sauvegardes").await;
    b.click(
        &b.find("form[action='/account/storage/keys'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_for("#key-created", "the new key", |t| t.contains("sauvegardes"))
        .await;
    assert!(b
        .text_of("#key-created")
        .await
        .contains("ne sera plus jamais affichée"));
    let id = b.prop(&b.find("#new-key-id").await, "value").await;
    let id = id.as_str().unwrap().to_string();
    let secret = b.prop(&b.find("#new-key-secret").await, "value").await;
    let secret = secret.as_str().unwrap().to_string();
    assert!(id.starts_with("MCK") && secret.len() == 40, "{id} {secret}");
    let (resolved, owner) = storage::key_resolve(&s.app, &id)
        .await
        .expect("the key works");
    assert_eq!(resolved, secret);
    assert_eq!(owner.to_string(), alice.id);
    b.goto(&url("/account/storage/keys")).await;
    let row = b.text_of(&format!("tr[data-key='{id}']")).await;
    assert!(
        row.contains("sauvegardes") && row.contains("Active"),
        "{row}"
    );
    assert!(b.try_find("#key-created").await.is_none(), "shown once");
    let source = b.get("/source").await;
    assert!(
        !source.as_str().unwrap().contains(&secret),
        "the secret is nowhere on the page"
    );

    // Revoke it, after confirming.
    b.click(&b.find(&format!("tr[data-key='{id}'] summary")).await)
        .await;
    b.click(
        &b.find(&format!("tr[data-key='{id}'] button[type='submit']"))
            .await,
    )
    .await;
    b.wait_for(".notice p", "the revocation's notice", |t| {
        t.starts_with("La clé d'accès est révoquée")
    })
    .await;
    let row = b.text_of(&format!("tr[data-key='{id}']")).await;
    assert!(row.contains("Révoquée"), "{row}");
    assert!(b
        .try_find(&format!("tr[data-key='{id}'] summary"))
        .await
        .is_none());
    assert!(
        storage::key_resolve(&s.app, &id).await.is_err(),
        "refused once revoked"
    );

    b.close().await;
    drop(cd);
}
