//! Compute in the web console, on a simulated host (`compute::setup`): in headless Chromium, a
//! subscriber adds an SSH key, launches a VM from the form, watches it start, reads its boot
//! log and types into it through the serial console's websocket, and stops it. Over plain HTTP
//! with a console session: another subscriber finds neither the VM's page, its actions nor its
//! websocket (404), a websocket opened from another site is refused, a bad launch form comes
//! back with the error next to the field and the values typed, and operators see the
//! hypervisors and every VM without being offered any change. A screenshot of the VM page is
//! left in `target/console-vm.png` for a human to look at.
//!
//! Like `console`, this needs chromedriver and Chromium (`MAOCLOUD_TEST_CHROMEDRIVER`,
//! `MAOCLOUD_TEST_CHROMIUM`, defaulting to /usr/bin/…) and fails without them. WebDriver is
//! spoken directly over HTTP, with the few commands these scenarios need.

use crate::compute::{create, setup, vm, KEY};
use crate::console_session::Session as ConsoleSession;
use crate::harness::{Db, PASSWORD};
use crate::webdriver::*;
use maocloud_hypervisor::Resources;
use maocloud_types::OperatorRole;
use reqwest::StatusCode;
use serde_json::json;

const CAPACITY: Resources = Resources {
    vcpus: 32,
    memory_mib: 65536,
    disk_gib: 1000,
};

/// A websocket handshake (the upgrade is not carried on: the status is what matters).
async fn handshake(c: &ConsoleSession, path: &str, origin: Option<&str>) -> StatusCode {
    let mut r = c
        .request(reqwest::Method::GET, path)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_subscribers_vm_is_not_found_in_the_console() {
    let (s, alice, _sim) = setup(Db::Sqlite, CAPACITY).await;
    let (st, v) = create(
        &s,
        &alice.token,
        json!({"name": "mine", "image": "tiny", "size": "xs"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.run_jobs().await;
    s.subscriber("bob@example.test").await;

    let alice_c = ConsoleSession::open(&s, &alice.email).await;
    let (st, page) = alice_c.get(&format!("/account/vms/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains("data-state=\"running\""),
        "the owner sees the VM running"
    );
    let serial = format!("/account/vms/{id}/serial");
    assert_eq!(
        handshake(&alice_c, &serial, None).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    assert_eq!(
        handshake(&alice_c, &serial, Some(&s.url)).await,
        StatusCode::SWITCHING_PROTOCOLS,
        "from the console's own origin"
    );
    assert_eq!(
        handshake(&alice_c, &serial, Some("https://evil.example")).await,
        StatusCode::FORBIDDEN,
        "a page of another site may not open the owner's console"
    );

    let bob = ConsoleSession::open(&s, "bob@example.test").await;
    let (st, page) = bob.get(&format!("/account/vms/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("Page introuvable"), "the console's 404 page");
    assert!(!page.contains("mine"), "nothing of the VM shows");
    assert_eq!(handshake(&bob, &serial, None).await, StatusCode::NOT_FOUND);
    for action in ["stop", "reboot", "delete"] {
        let (st, _) = bob.post(&format!("/account/vms/{id}/{action}"), &[]).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{action}");
    }
    let (st, _) = bob
        .post(&format!("/account/vms/{id}/resize"), &[("size", "m")])
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, page) = bob.get("/account/vms").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        !page.contains(&id) && page.contains("Vous n&#x27;avez pas encore de machine virtuelle"),
        "Bob's list is empty"
    );
    // Nothing Bob did reached the VM.
    assert_eq!(vm(&s, &alice.token, &id).await["state"], "running");

    // Without a session, the socket is not opened: the console sends to sign-in.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{serial}", s.url))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_hypervisors_and_every_vm_read_only() {
    let (s, alice, _sim) = setup(Db::Sqlite, CAPACITY).await;
    let (st, v) = create(
        &s,
        &alice.token,
        json!({"name": "alice-web", "image": "tiny", "size": "xs"}),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.run_jobs().await;
    let bob = s.subscriber("bob@example.test").await;
    let op = s.operator("support@op.test", OperatorRole::Support).await;
    let c = ConsoleSession::open_operator(&s, &op).await;

    let (st, page) = c.get("/admin/hosts").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    for seen in [
        "sim-1",
        "Simulé",
        "En service",
        "1 sur 32",
        "256 Mio sur 64 Gio",
    ] {
        assert!(page.contains(seen), "the hosts page shows {seen:?}");
    }
    assert!(
        page.contains("href=\"/admin/hosts\" aria-current=\"page\""),
        "in the back office's navigation"
    );

    let (st, page) = c.get("/admin/vms").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let row = &page[page
        .find(&format!("data-vm=\"{id}\""))
        .expect("Alice's VM is listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    for seen in [
        "alice-web",
        alice.id.as_str(),
        "sim-1",
        "Démarrée",
        "10.213.",
    ] {
        assert!(row.contains(seen), "the row shows {seen:?}: {row}");
    }
    assert!(
        !page.contains("/account/vms/"),
        "no subscriber page, no action is offered"
    );
    let (_, page) = c.get(&format!("/admin/vms?subscriber={}", bob.id)).await;
    assert!(!page.contains("alice-web"), "filtered by subscriber");

    // The subscriber pages are not the operators'; the back office is not the subscribers'.
    let (st, _) = c.get("/account/vms").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let alice_c = ConsoleSession::open(&s, &alice.email).await;
    for path in ["/admin/hosts", "/admin/vms"] {
        let (st, _) = alice_c.get(path).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_launch_form_comes_back_with_the_error_next_to_the_field() {
    let (s, alice, _sim) = setup(Db::Sqlite, CAPACITY).await;
    let c = ConsoleSession::open(&s, &alice.email).await;
    s.run_jobs().await;
    let (st, page) = c
        .post(
            "/account/vms",
            &[
                ("name", "Bad_Name"),
                ("image", "tiny"),
                ("size", "xs"),
                ("user_data", "#!/bin/sh\necho hi\n"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let error = &page[page
        .find("id=\"name-error\"")
        .expect("an error next to the name")..];
    let error = &error[..error.find("</p>").unwrap()];
    assert!(
        error.contains("doit être un nom d&#x27;hôte"),
        "the reason in French: {error}"
    );
    let input = &page[page.find("id=\"field-name\"").unwrap()..];
    let input = &input[..input.find('>').unwrap()];
    assert!(
        input.contains("value=\"Bad_Name\"") && input.contains("aria-invalid=\"true\""),
        "{input}"
    );
    assert!(
        page.contains("<a href=\"#field-name\">"),
        "the summary links to the field"
    );
    let user_data = &page[page.find("id=\"field-user_data\"").unwrap()..];
    let user_data =
        &user_data[user_data.find('>').unwrap() + 1..user_data.find("</textarea>").unwrap()];
    assert_eq!(
        user_data, "#!/bin/sh\necho hi\n",
        "the user-data typed is kept"
    );
    assert!(
        page.contains("<option value=\"xs\" selected>"),
        "the size chosen is kept"
    );

    // A size the host has no room for is refused next to the size.
    let (st, page) = c
        .post(
            "/account/vms",
            &[("name", "big"), ("image", "tiny"), ("size", "xl")],
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("id=\"size-error\""), "{page}");

    let (_, list) = s.get("/api/v1/vms", Some(&alice.token)).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing was launched"
    );
    assert_eq!(s.run_jobs().await, 0, "a refused form enqueues nothing");
}

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_vm_launch_serial_console_and_stop_in_chromium() {
    let (s, alice, _sim) = setup(Db::Sqlite, CAPACITY).await;
    let url = |p: &str| format!("{}{p}", s.url);
    let cd = start_chromedriver().await;
    let b = Browser::open(&cd).await;

    b.goto(&url("/signin?next=/account/ssh-keys")).await;
    b.fill("email", &alice.email).await;
    b.fill("password", PASSWORD).await;
    b.click(
        &b.find("main form[action='/signin'] button[type='submit']")
            .await,
    )
    .await;

    // An SSH key, added from its page.
    b.wait_text("main h1", "Clés SSH").await;
    b.fill("name", "laptop").await;
    b.fill("public_key", KEY).await;
    b.click(
        &b.find("form[action='/account/ssh-keys'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_text(".notice p", "La clé SSH est ajoutée.").await;
    let row = b.text_of("#key-list tbody tr").await;
    assert!(row.contains("laptop") && row.contains("SHA256:"), "{row}");

    // The VM list, from the area's navigation: no VM yet, the whole quota free.
    b.click(&b.find(".sub-nav a[href='/account/vms']").await)
        .await;
    b.wait_text("main h1", "Machines virtuelles").await;
    b.find("#vm-list, .empty").await;
    let quota = b.text_of("#quota-vms").await;
    assert!(quota.contains("0 sur 2"), "{quota}");

    // Launch one from the form: name, the image, the size, the key.
    b.click(&b.find("#launch-link").await).await;
    b.wait_text("main h1", "Lancer une machine virtuelle").await;
    b.fill("name", "web-1").await;
    let sizes = b.text_of("#field-size").await;
    assert!(
        sizes.contains("xs — 1 vCPU · 256 Mio de mémoire · 1 Gio de disque"),
        "sizes show what they give: {sizes}"
    );
    b.click(&b.find("label[for='field-ssh_keys']").await).await;
    b.fill("user_data", "#!/bin/sh\necho hello\n").await;
    b.click(
        &b.find("main form[action='/account/vms'] button[type='submit']")
            .await,
    )
    .await;
    b.wait_for("#vm-name", "web-1", |t| t == "web-1").await;
    let path = b.path().await;
    let id = path
        .strip_prefix("/account/vms/")
        .expect("lands on the VM's page")
        .to_string();
    let notice = b.text_of(".notice p").await;
    assert!(notice.contains("en cours de création"), "{notice}");
    // Creating, or already running: the platform's job runner is woken by the launch.
    let state = b.attr(&b.find("#vm-state").await, "data-state").await;
    assert!(
        matches!(state.as_deref(), Some("creating" | "running")),
        "{state:?}"
    );

    // The host creates and starts it; the page, reloading itself, shows it running.
    s.run_jobs().await;
    b.wait_text("#vm-state", "Démarrée").await;
    let v = vm(&s, &alice.token, &id).await;
    assert_eq!(v["state"], "running");
    // What the form gave the guest: the key ticked, the script with the lines the browser sent
    // as CRLF back to LF (a shebang line ending in CR would not run).
    let md = maocloud_app::compute::metadata::for_ip(&s.app, v["ip"].as_str().unwrap(), None)
        .await
        .unwrap()
        .expect("metadata");
    assert_eq!(md.public_keys[0].1, KEY);
    assert_eq!(md.user_data.as_deref(), Some("#!/bin/sh\necho hello\n"));
    assert_eq!(
        b.attr(&b.find("#vm-state").await, "data-state")
            .await
            .as_deref(),
        Some("running")
    );

    // The serial console shows the boot log through the websocket, and takes a line typed.
    b.wait_for("#serial-status", "connected", |t| t == "Connecté.")
        .await;
    b.wait_for("#serial-output", "the boot log", |t| {
        t.contains(&format!("sim: booted {id}"))
    })
    .await;
    let input = b.find("#serial-input").await;
    b.type_keys(&input, "echo bonjour").await;
    b.type_keys(&input, ENTER).await;
    b.wait_for("#serial-output", "the line typed", |t| {
        t.contains("echo bonjour")
    })
    .await;

    // For a human: what a running VM's page looks like.
    let png = base64_decode(b.get("/screenshot").await.as_str().expect("a base64 PNG"));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let out =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-vm.png");
    std::fs::create_dir_all(out.parent().unwrap()).expect("the target directory");
    std::fs::write(&out, png).expect("write the screenshot");
    eprintln!("screenshot of the VM page: {}", out.display());

    // The list shows it with its address and what it takes of the quota.
    b.goto(&url("/account/vms")).await;
    let row = b.text_of(&format!("#vm-list tr[data-vm='{id}']")).await;
    assert!(
        row.contains("web-1")
            && row.contains("Démarrée")
            && row.contains("10.213.")
            && row.contains("tiny"),
        "{row}"
    );
    assert!(b.text_of("#quota-vms").await.contains("1 sur 2"));

    // Stop it from its page.
    b.click(
        &b.find(&format!("#vm-list a[href='/account/vms/{id}']"))
            .await,
    )
    .await;
    b.click(&b.find("#vm-stop").await).await;
    b.wait_text(".notice p", "La machine virtuelle s'arrête.")
        .await;
    let state = b.attr(&b.find("#vm-state").await, "data-state").await;
    assert!(
        matches!(state.as_deref(), Some("stopping" | "stopped")),
        "{state:?}"
    );
    s.run_jobs().await;
    b.wait_text("#vm-state", "Arrêtée").await;
    assert_eq!(vm(&s, &alice.token, &id).await["state"], "stopped");
    assert!(
        b.try_find("#vm-start").await.is_some(),
        "a stopped VM offers to start"
    );
    assert!(
        b.try_find("#serial-input").await.is_none(),
        "nothing to type into while stopped"
    );

    b.close().await;
    drop(cd);
}
