//! Email over real SMTP (a small SMTP server in the test, lettre as the client), retries with
//! backoff while the server is down, and the Maildir used when no SMTP server is configured.

use crate::harness::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the SMTP server received: (envelope recipients, raw message).
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
async fn smtp_server(listener: TcpListener, inbox: Inbox) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            let _ = w.write_all(b"220 test-smtp ready\r\n").await;
            let mut rcpt = vec![];
            while let Ok(Some(line)) = lines.next_line().await {
                let upper = line.to_ascii_uppercase();
                let reply: &[u8] = if upper.starts_with("EHLO") {
                    b"250-test-smtp\r\n250 8BITMIME\r\n"
                } else if upper.starts_with("HELO")
                    || upper.starts_with("MAIL FROM")
                    || upper.starts_with("NOOP")
                    || upper.starts_with("RSET")
                {
                    b"250 ok\r\n"
                } else if upper.starts_with("RCPT TO") {
                    rcpt.push(
                        line[8..]
                            .trim()
                            .trim_start_matches(':')
                            .trim()
                            .trim_matches(['<', '>'])
                            .to_string(),
                    );
                    b"250 ok\r\n"
                } else if upper.starts_with("DATA") {
                    let _ = w.write_all(b"354 go ahead\r\n").await;
                    let mut msg = String::new();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if l == "." {
                            break;
                        }
                        msg.push_str(l.strip_prefix('.').unwrap_or(&l));
                        msg.push('\n');
                    }
                    inbox.lock().unwrap().push((std::mem::take(&mut rcpt), msg));
                    b"250 queued\r\n"
                } else if upper.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"502 not implemented\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_over_smtp_and_is_retried_while_the_server_is_down() {
    // Reserve a port, then close it: the first delivery attempt finds nobody listening.
    let port = {
        TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let sub = s.subscriber("smtp@example.fr").await;
    assert_eq!(s.run_jobs().await, 1);
    let emails = s.emails_to("smtp@example.fr").await;
    assert_eq!(
        emails[0].2, "pending",
        "still queued after a failed attempt"
    );
    assert_eq!(s.run_jobs().await, 0, "the retry waits for its backoff");
    // The SMTP server comes up; after the backoff the email goes out.
    let inbox: Inbox = Arc::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(smtp_server(listener, inbox.clone()));
    s.clock.advance(jiff::SignedDuration::from_secs(6));
    assert_eq!(s.run_jobs().await, 1);
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, ["smtp@example.fr"]);
    assert!(got[0].1.contains("To: smtp@example.fr"), "{}", got[0].1);
    assert!(got[0].1.contains("Subject: "), "{}", got[0].1);
    assert_eq!(s.emails_to("smtp@example.fr").await[0].2, "sent");
    // The admin sees the attempts in the outbox.
    let admin = s
        .operator("admin@maocloud.test", maocloud_types::OperatorRole::Admin)
        .await;
    let (_, outbox) = s.get("/api/v1/outbox", Some(&admin.token)).await;
    let e = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "smtp@example.fr")
        .unwrap()
        .clone();
    assert_eq!(
        (
            e["state"].as_str(),
            e["attempts"].as_i64(),
            e["transport"].as_str()
        ),
        (Some("sent"), Some(2), Some("smtp"))
    );
    drop(sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_lands_in_the_maildir() {
    let s = TestServer::start().await;
    s.subscriber("maildir@example.fr").await;
    s.run_jobs().await;
    let dir = s.data.path().join("maildir/new");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one email in {}", dir.display());
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("To: maildir@example.fr"), "{raw}");
    assert!(raw.contains("Message-ID: <"), "{raw}");
    assert!(
        std::fs::read_dir(s.data.path().join("maildir/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "nothing left half-written"
    );
}
