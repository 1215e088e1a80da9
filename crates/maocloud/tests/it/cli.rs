//! The CLI, as a person runs it: the real `maocloud` binary against a running platform
//! (login, whoami, tokens) and on a database directly (operator create); errors exit non-zero.

use crate::harness::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_maocloud");

fn run(config_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("MAOCLOUD_CONFIG_DIR", config_dir)
        .env_remove("MAOCLOUD_URL")
        .env_remove("MAOCLOUD_TOKEN")
        .env("MAOCLOUD_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the maocloud binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_and_tokens() {
    let s = TestServer::start().await;
    s.subscriber("cli@example.fr").await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking({
        let h = h.clone();
        move || {
            run(
                &h,
                &[
                    "login",
                    "--url",
                    &url,
                    "--email",
                    "cli@example.fr",
                    "--password-stdin",
                ],
                Some(&format!("{PASSWORD}\n")),
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Signed in to"),
        "{}",
        text(&out.stderr)
    );
    let stored = std::fs::read_to_string(h.join("credentials.toml")).unwrap();
    assert!(stored.contains("token = \"mc_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(h.join("credentials.toml"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let blocking = |args: Vec<&'static str>| {
        let h = h.clone();
        tokio::task::spawn_blocking(move || run(&h, &args, None))
    };
    let out = blocking(vec!["whoami"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("EMAIL") && table.contains("cli@example.fr") && table.contains("subscriber"),
        "{table}"
    );
    let out = blocking(vec!["whoami", "--output", "json"]).await.unwrap();
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(me["email"], "cli@example.fr");
    let out = blocking(vec![
        "token",
        "create",
        "--name",
        "deploy",
        "--expires-in-days",
        "7",
        "-o",
        "json",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["token"].as_str().unwrap().starts_with("mc_"));
    let id = created["id"].as_str().unwrap().to_string();
    let out = blocking(vec!["token", "list"]).await.unwrap();
    assert!(
        text(&out.stdout).contains("deploy"),
        "{}",
        text(&out.stdout)
    );
    let h2 = h.clone();
    let out = tokio::task::spawn_blocking(move || run(&h2, &["token", "revoke", &id], None))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = blocking(vec!["token", "list"]).await.unwrap();
    assert!(!text(&out.stdout).contains("deploy"));
    // Errors: a problem becomes a readable message and a non-zero exit.
    let out = blocking(vec!["token", "create", "--expires-in-days", "0"])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("expires_in_days: must be between 1 and 3650"),
        "{}",
        text(&out.stderr)
    );
    let out = blocking(vec!["logout"]).await.unwrap();
    assert!(out.status.success());
    let out = blocking(vec!["whoami"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("maocloud login"),
        "{}",
        text(&out.stderr)
    );
    // A wrong password: non-zero exit, nothing stored.
    let url = s.url.clone();
    let h3 = h.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &h3,
            &[
                "login",
                "--url",
                &url,
                "--email",
                "cli@example.fr",
                "--password-stdin",
            ],
            Some("nope-nope-nope\n"),
        )
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("wrong email or password"),
        "{}",
        text(&out.stderr)
    );
    assert!(!h.join("credentials.toml").exists());
}

#[test]
fn operator_create_on_the_database() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let out = run(
        home.path(),
        &[
            "operator",
            "create",
            "--email",
            "boss@maocloud.test",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            d,
            "-o",
            "json",
        ],
        Some("Very-Long-Passphrase-42\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["role"], "admin");
    assert!(v["totp_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let out = run(
        home.path(),
        &[
            "operator",
            "create",
            "--email",
            "boss@maocloud.test",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("Very-Long-Passphrase-42\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        home.path(),
        &[
            "operator",
            "create",
            "--email",
            "x@maocloud.test",
            "--role",
            "janitor",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("Very-Long-Passphrase-42\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("janitor"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        home.path(),
        &[
            "operator",
            "create",
            "--email",
            "y@maocloud.test",
            "--role",
            "support",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("password: is too short"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_help_documents_every_setting() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["serve", "--help"], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--config",
        "--public-url",
        "--smtp-url",
        "--mail-from",
        "--demo",
        "--metrics-token",
        "--cookie-secure",
        "--jobs-interval-ms",
        "--session-ttl-hours",
    ] {
        assert!(help.contains(flag), "serve --help does not document {flag}");
    }
    for env in [
        "MAOCLOUD_LISTEN",
        "MAOCLOUD_DATA_DIR",
        "MAOCLOUD_DATABASE_URL",
        "MAOCLOUD_SMTP_URL",
        "MAOCLOUD_DEMO",
    ] {
        assert!(help.contains(env), "serve --help does not name {env}");
    }
}

#[test]
fn serve_refuses_a_bad_configuration_clearly() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        home.path(),
        &["serve", "--database-url", "mysql://nope"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("sqlite:// or postgres://"),
        "{}",
        text(&out.stderr)
    );
    let out = run(home.path(), &["serve", "--listen", "not-an-address"], None);
    assert!(!out.status.success());
}

// The README's run command: `serve --demo` with no password given seeds a demo operator and
// subscriber, prints their credentials once, and both sign in with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_prints_credentials_that_work() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--s3-listen",
            "off",
            "--compute",
            "sim",
            "--metadata-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("MAOCLOUD_DEMO_PASSWORD")
        .env("MAOCLOUD_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut out = vec![];
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("printed once");
            out.push(line);
            if done {
                break;
            }
        }
        out
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(60), lines)
        .await
        .expect("demo credentials printed")
        .unwrap();
    let password_of = |who: &str| {
        let l = lines
            .iter()
            .find(|l| l.contains(who))
            .unwrap_or_else(|| panic!("no {who} line in {lines:?}"));
        l.split("password: ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let http = reqwest::Client::new();
    for (email, who) in [
        ("demo@maocloud.test", "subscriber:"),
        ("admin@maocloud.test", "operator (admin):"),
    ] {
        let r = http
            .post(format!("http://127.0.0.1:{port}/api/v1/tokens"))
            .json(&serde_json::json!({"email": email, "password": password_of(who)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{email}: {}", r.text().await.unwrap());
    }
    let offers: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/offers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        offers["offers"].as_array().unwrap().len(),
        3,
        "the demo price list"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

// R-1d from the command line: a subscriber opens a ticket with a file, lists, reads, answers,
// downloads the file and closes the ticket with a rating; the desk answers with the same
// commands. Bad input exits non-zero and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_from_open_to_close() {
    let s = TestServer::start().await;
    let sub = s.subscriber("tickets@example.fr").await;
    let desk = s
        .operator("desk@maocloud.test", maocloud_types::OperatorRole::Support)
        .await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR screenshot".to_vec();
    std::fs::write(h.join("screen.png"), &png).unwrap();
    std::fs::write(h.join("notes.exe"), b"MZ").unwrap();
    let cli = |token: &str, args: &[&str]| {
        let (h, url) = (h.clone(), s.url.clone());
        let mut all: Vec<String> = vec!["--url".into(), url, "--token".into(), token.into()];
        all.extend(args.iter().map(|a| a.to_string()));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&h, &args, None)
        })
    };
    let shot = h.join("screen.png").to_str().unwrap().to_string();
    let out = cli(
        &sub.token,
        &[
            "ticket",
            "open",
            "--subject",
            "VM unreachable",
            "--priority",
            "high",
            "--message",
            "My VM stopped answering at 08:55.",
            "--attach",
            &shot,
            "-o",
            "json",
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    let file_id = t["messages"][0]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t["category"], "technical");
    let out = cli(&sub.token, &["ticket", "list"]).await.unwrap();
    let table = text(&out.stdout);
    assert!(
        table.contains("VM unreachable") && table.contains("high") && table.contains("new"),
        "{table}"
    );
    let out = cli(&desk.token, &["ticket", "list", "--assignee", "none"])
        .await
        .unwrap();
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let out = cli(
        &desk.token,
        &[
            "ticket",
            "reply",
            &id,
            "--message",
            "The host rebooted; your VM is back.",
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&sub.token, &["ticket", "show", &id]).await.unwrap();
    let shown = text(&out.stdout);
    assert!(
        shown.contains("screen.png")
            && shown.contains("08:55")
            && shown.contains("your VM is back")
            && shown.contains("waiting"),
        "{shown}"
    );
    let saved = h.join("saved.png");
    let out = cli(
        &sub.token,
        &[
            "ticket",
            "attachment",
            &id,
            &file_id,
            "--file",
            saved.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&saved).unwrap(), png);
    let out = cli(
        &sub.token,
        &["ticket", "reply", &id, "--message", "Confirmed, thanks!"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Bad input: refused before sending, or by the server, non-zero and saying why.
    let exe = h.join("notes.exe").to_str().unwrap().to_string();
    let out = cli(
        &sub.token,
        &[
            "ticket",
            "open",
            "--subject",
            "x",
            "--message",
            "y",
            "--attach",
            &exe,
        ],
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("only .pdf, .png, .jpg, .jpeg, .txt and .log files"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&sub.token, &["ticket", "close", &id, "--rating", "9"])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("rating: must be 1 to 5"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(
        &sub.token,
        &["ticket", "close", &id, "--rating", "5", "-o", "json"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let closed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (closed["status"].as_str(), closed["rating"].as_i64()),
        (Some("closed"), Some(5))
    );
    let out = cli(&sub.token, &["ticket", "list"]).await.unwrap();
    assert!(
        !text(&out.stdout).contains(&id),
        "closed tickets are not active"
    );
    let out = cli(&sub.token, &["ticket", "list", "--all"]).await.unwrap();
    assert!(text(&out.stdout).contains(&id));
    // The targets are public.
    let (h2, url) = (h.clone(), s.url.clone());
    let out =
        tokio::task::spawn_blocking(move || run(&h2, &["support", "targets", "--url", &url], None))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("urgent"));
}

// R-9 from the command line: a subscriber consents to a purpose (recorded as from the CLI),
// requests the export of their data, lists it and downloads the ZIP once the job has built it;
// the register is public; a bad purpose exits non-zero naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_consent_and_export() {
    let s = TestServer::start().await;
    let sub = s.subscriber("privacy-cli@example.fr").await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let cli = |token: Option<&str>, args: &[&str]| {
        let (h, url) = (h.clone(), s.url.clone());
        let mut all: Vec<String> = vec!["--url".into(), url];
        if let Some(t) = token {
            all.extend(["--token".to_string(), t.to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&h, &args, None)
        })
    };
    let t = Some(sub.token.as_str());
    let out = cli(t, &["privacy", "consent", "surveys", "on"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("surveys") && l.contains("true")),
        "{shown}"
    );
    let out = cli(t, &["privacy", "consents", "-o", "json"])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"][0]["purpose"], "surveys");
    assert_eq!(v["history"][0]["source"], "cli");
    let out = cli(t, &["privacy", "consent", "spam", "on"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("purpose: must be"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(t, &["privacy", "export", "request", "-o", "json"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = e["id"].as_str().unwrap().to_string();
    let out = cli(t, &["privacy", "export", "list"]).await.unwrap();
    let table = text(&out.stdout);
    assert!(table.contains(&id) && table.contains("queued"), "{table}");
    s.run_jobs().await;
    let out = cli(t, &["privacy", "export", "list"]).await.unwrap();
    assert!(text(&out.stdout).contains("ready"), "{}", text(&out.stdout));
    let saved = h.join("mine.zip");
    let out = cli(
        t,
        &[
            "privacy",
            "export",
            "download",
            &id,
            "--file",
            saved.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&saved).unwrap()).unwrap();
    assert!(zip.by_name("consents.json").is_ok());

    // The register needs no sign-in; statistics are not for subscribers.
    let out = cli(None, &["processor", "list"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("COUNTRY"));
    let out = cli(t, &["statistics"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HTTP 403"),
        "{}",
        text(&out.stderr)
    );
}
