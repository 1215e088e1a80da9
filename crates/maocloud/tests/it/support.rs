//! The support desk through the public API (R-1d, R-4a, R-5a, R-7.2a): a ticket's whole life
//! with files, notes and email replies; who sees what (another subscriber, a billing operator,
//! the subject of an abuse report: 404); files refused cleanly; the public abuse form, linked to
//! the resource's owner and rate-limited; a credential-loss report revoking every credential at
//! once; a registered letter terminating a subscription as of its receipt; targets and the
//! monthly report.

use crate::both_dbs;
use crate::harness::*;
use base64::Engine as _;
use maocloud_app::Ctx;
use maocloud_types::OperatorRole::*;
use maocloud_types::PageRequest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(b"\0\0\0\rIHDR not a real image, but PNG by its signature");
    b
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec()
}

/// A file as the API takes it.
fn file(name: &str, content_type: &str, bytes: &[u8]) -> Value {
    json!({
        "file_name": name,
        "content_type": content_type,
        "data_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

fn ticket_body(subject: &str, category: &str, priority: &str) -> Value {
    json!({
        "subject": subject,
        "category": category,
        "priority": priority,
        "message": "Every GET on my bucket answers 403 since this morning.",
    })
}

async fn open(s: &TestServer, token: &str, body: Value) -> Value {
    let (st, t) = s.post("/api/v1/tickets", Some(token), body).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    t
}

/// The ids of the tickets a caller's list shows (every status).
async fn listed(s: &TestServer, token: &str, query: &str) -> Vec<String> {
    let (st, v) = s
        .get(&format!("/api/v1/tickets?{query}"), Some(token))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn put_target(
    s: &TestServer,
    token: &str,
    priority: &str,
    body: Value,
) -> (StatusCode, Value) {
    s.call(
        Method::PUT,
        &format!("/api/v1/support/targets/{priority}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn patch(s: &TestServer, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    s.call(Method::PATCH, path, Some(token), Some(body)).await
}

/// Every email in the outbox: (to, subject, body, reply-to).
async fn outbox(s: &TestServer) -> Vec<(String, String, String, Option<String>)> {
    maocloud_app::notify::outbox(&s.app, &Ctx::system(), &PageRequest::first(200))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.to_addr, e.subject, e.body_text, e.reply_to))
        .collect()
}

/// A raw GET, for the headers and bytes of a download.
async fn download(s: &TestServer, path: &str, token: &str) -> reqwest::Response {
    s.http
        .get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

// R-1d: opened with a linked bucket and a screenshot; the support desk finds it in its queue,
// takes it, writes an internal note (with a file) and answers; the subscriber sees the answer
// and never the note nor its file; replies reopen, the operator resolves, the subscriber closes
// and rates. The answer went by email with the ticket's reply address as Reply-To.
both_dbs!(a_ticket_lives_through_the_api, |s: TestServer| async move {
    let sub = s.subscriber("client@example.fr").await;
    let support = s.operator("support@maocloud.test", Support).await;
    let (st, b) = s
        .post(
            "/api/v1/storage/buckets",
            Some(&sub.token),
            json!({"name": "photos-client"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let mut body = ticket_body("Bucket answers 403", "technical", "high");
    body["resources"] = json!([{"kind": "bucket", "id": "photos-client"}]);
    body["attachments"] = json!([file("screenshot.png", "image/png", &png())]);
    let t = open(&s, &sub.token, body).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            t["status"].as_str(),
            t["kind"].as_str(),
            t["source"].as_str()
        ),
        (Some("new"), Some("request"), Some("api"))
    );
    assert_eq!(t["resources"][0]["label"], "photos-client");
    assert!(t["first_response_at"].is_null());
    assert!(
        t.get("events").is_none() && t.get("detail").is_none(),
        "operators only: {t}"
    );
    let shot = &t["messages"][0]["attachments"][0];
    assert_eq!(shot["size"], png().len());
    let shot_id = shot["id"].as_str().unwrap().to_string();
    // The subscriber downloads their own file, served as stored and never sniffed.
    let r = download(
        &s,
        &format!("/api/v1/tickets/{id}/attachments/{shot_id}"),
        &sub.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"screenshot.png\""));
    assert_eq!(r.bytes().await.unwrap().to_vec(), png());
    // The reply address is a secret that only travels by email.
    let opened = outbox(&s).await;
    let reply_to = opened
        .iter()
        .find(|e| e.0 == sub.email)
        .and_then(|e| e.3.clone())
        .expect("the acknowledgement carries the reply address");
    assert!(reply_to.starts_with("support+"), "{reply_to}");
    let token = reply_to[8..].split('@').next().unwrap();
    assert!(!t.to_string().contains(token));

    // The queue, filtered.
    let q = |query: &'static str| listed(&s, &support.token, query);
    assert_eq!(q("status=new&priority=high").await, vec![id.clone()]);
    assert!(q("status=new&priority=low").await.is_empty());
    assert_eq!(q("assignee=none&active=true").await, vec![id.clone()]);
    assert!(q("assignee=me").await.is_empty());
    let (st, p) = s
        .get("/api/v1/tickets?status=pending", Some(&support.token))
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    // Taken, noted, answered.
    let path = format!("/api/v1/tickets/{id}");
    let (st, v) = patch(
        &s,
        &path,
        &support.token,
        json!({"assignee_id": support.id}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["assignee_id"], support.id.as_str());
    assert_eq!(v["assignee_name"], "Test operator");
    assert_eq!(v["subscriber"]["email"], sub.email.as_str());
    assert!(v["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "assigned"));
    assert_eq!(q("assignee=me").await, vec![id.clone()]);
    let messages = format!("/api/v1/tickets/{id}/messages");
    let (st, v) = s
        .post(
            &messages,
            Some(&support.token),
            json!({
                "message": "Internal: their bucket policy denies s3:GetObject to everyone.",
                "internal": true,
                "attachments": [file("policy.txt", "text/plain", b"{\"Effect\": \"Deny\"}")],
            }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "new", "a note is no answer");
    assert!(v["first_response_at"].is_null());
    let note_file = v["messages"][1]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .post(
            &messages,
            Some(&support.token),
            json!({"message": "Your bucket policy denied every GET; it is fixed."}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "waiting");
    assert!(v["first_response_at"].is_string());
    // The subscriber's view: the answer, not the note, nor its file.
    for (what, list) in [
        (
            "ticket",
            s.get(&path, Some(&sub.token)).await.1["messages"].clone(),
        ),
        ("thread", s.get(&messages, Some(&sub.token)).await.1),
    ] {
        let bodies: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies.len(), 2, "{what}: {list}");
        assert!(bodies[1].contains("it is fixed"), "{what}");
        assert!(!list.to_string().contains("Internal:"), "{what}: {list}");
        assert!(!list.to_string().contains(&note_file), "{what}");
    }
    let note_path = format!("/api/v1/tickets/{id}/attachments/{note_file}");
    assert_eq!(
        s.get(&note_path, Some(&sub.token)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&s, &note_path, &support.token).await.status(),
        StatusCode::OK
    );
    let (thread_st, thread) = s.get(&messages, Some(&support.token)).await;
    assert_eq!(thread_st, StatusCode::OK);
    assert_eq!(
        thread.as_array().unwrap().len(),
        3,
        "operators see the note"
    );
    // The answer went by email, answerable by email.
    let answer = outbox(&s)
        .await
        .into_iter()
        .find(|e| e.0 == sub.email && e.2.contains("it is fixed"))
        .expect("the answer is emailed");
    assert_eq!(answer.3.as_deref(), Some(reply_to.as_str()));
    assert!(answer.1.contains("Bucket answers 403"), "{}", answer.1);
    // Only operators write notes or set the status.
    let (st, p) = s
        .post(
            &messages,
            Some(&sub.token),
            json!({"message": "x", "internal": true, "status": "resolved"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "internal"], "{p}");
    // The subscriber answers: open again.
    let (_, v) = s
        .post(
            &messages,
            Some(&sub.token),
            json!({"message": "Works now, thank you!"}),
        )
        .await;
    assert_eq!(v["status"], "open");
    let (st, v) = patch(&s, &path, &support.token, json!({"status": "resolved"})).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("resolved"))
    );
    assert!(v["resolved_at"].is_string());
    // A reply reopens a resolved ticket.
    let (_, v) = s
        .post(
            &messages,
            Some(&sub.token),
            json!({"message": "Sorry, it is back again."}),
        )
        .await;
    assert_eq!(v["status"], "open");
    assert!(v["resolved_at"].is_null());
    let (_, v) = s
        .post(
            &messages,
            Some(&support.token),
            json!({"message": "A second rule; removed too.", "status": "resolved"}),
        )
        .await;
    assert_eq!(v["status"], "resolved");
    // Closed and rated by the subscriber (not by the desk).
    let close = format!("/api/v1/tickets/{id}/close");
    let (st, _) = s
        .post(&close, Some(&support.token), json!({"rating": 5}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, p) = s.post(&close, Some(&sub.token), json!({"rating": 6})).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rating"))
    );
    let (st, v) = s
        .post(
            &close,
            Some(&sub.token),
            json!({"rating": 5, "comment": "Quick and clear."}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["rating"].as_i64()),
        (Some("closed"), Some(5))
    );
    assert_eq!(v["rating_comment"], "Quick and clear.");
    assert!(listed(&s, &sub.token, "active=true").await.is_empty());
    assert_eq!(listed(&s, &sub.token, "").await, vec![id.clone()]);
    // Reopened by the subscriber, closed again.
    let (st, v) = s
        .post(
            &format!("/api/v1/tickets/{id}/reopen"),
            Some(&sub.token),
            json!({}),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("open")));
});

// Who sees what: another subscriber finds nothing at all (404, never 403 or 200); a billing
// operator sees the billing desk only; an abuse report is never shown to its subject.
both_dbs!(
    a_ticket_is_seen_only_by_its_desk,
    |s: TestServer| async move {
        let owner = s.subscriber("owner@example.fr").await;
        let other = s.subscriber("other@example.fr").await;
        let billing = s.operator("billing@maocloud.test", Billing).await;
        let mut body = ticket_body("VM down", "technical", "urgent");
        body["attachments"] = json!([file("boot.log", "text/plain", b"kernel panic")]);
        let t = open(&s, &owner.token, body).await;
        let id = t["id"].as_str().unwrap().to_string();
        let file_id = t["messages"][0]["attachments"][0]["id"].as_str().unwrap();
        let base = format!("/api/v1/tickets/{id}");
        for (m, path, body) in [
            (Method::GET, base.clone(), None),
            (Method::GET, format!("{base}/messages"), None),
            (
                Method::POST,
                format!("{base}/messages"),
                Some(json!({"message": "let me in"})),
            ),
            (Method::GET, format!("{base}/attachments/{file_id}"), None),
            (Method::POST, format!("{base}/close"), Some(json!({}))),
            (Method::POST, format!("{base}/reopen"), Some(json!({}))),
        ] {
            let (st, p) = s.call(m.clone(), &path, Some(&other.token), body).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{m} {path}: {p}");
        }
        // Changing a ticket is for operators: refused to every subscriber alike.
        let (st, _) = patch(&s, &base, &other.token, json!({"status": "closed"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert!(listed(&s, &other.token, "").await.is_empty());
        // Queue filters do not widen a subscriber's list.
        assert!(
            listed(&s, &other.token, &format!("subscriber_id={}", owner.id))
                .await
                .is_empty()
        );
        let (_, v) = s.get(&base, Some(&owner.token)).await;
        assert_eq!(v["status"], "new", "nothing changed: {v}");
        assert_eq!(v["messages"].as_array().unwrap().len(), 1);
        // The billing desk sees billing tickets only.
        assert_eq!(
            s.get(&base, Some(&billing.token)).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(listed(&s, &billing.token, "").await.is_empty());
        let bill = open(
            &s,
            &other.token,
            ticket_body("Invoice twice", "billing", "normal"),
        )
        .await;
        let bill_id = bill["id"].as_str().unwrap().to_string();
        assert_eq!(listed(&s, &billing.token, "").await, vec![bill_id.clone()]);
        let (st, v) = s
            .get(&format!("/api/v1/tickets/{bill_id}"), Some(&billing.token))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        // A billing operator moving it to another desk loses sight of it.
        let (st, _) = patch(
            &s,
            &format!("/api/v1/tickets/{bill_id}"),
            &billing.token,
            json!({"category": "technical"}),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert!(listed(&s, &billing.token, "").await.is_empty());
        // An abuse report about the owner's bucket is not the owner's to read.
        s.post(
            "/api/v1/storage/buckets",
            Some(&owner.token),
            json!({"name": "owner-files"}),
        )
        .await;
        let (st, r) = s
            .post(
                "/api/v1/abuse-reports",
                None,
                json!({
                    "reporter_email": "victim@elsewhere.example",
                    "resource": "owner-files",
                    "kind": "malware",
                    "description": "This bucket serves a trojan to our users.",
                }),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{r}");
        assert_eq!(listed(&s, &owner.token, "").await, vec![id.clone()]);
        assert!(listed(&s, &owner.token, "kind=abuse_report")
            .await
            .is_empty());
    }
);

// Files are checked before anything is written: size, type confirmed by the bytes, a plain
// file name, readable base64. Each refusal is a 422 naming the file, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_and_nothing_is_created() {
    let s = TestServer::start().await;
    let sub = s.subscriber("files@example.fr").await;
    let mut big = png();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let cases: Vec<(Value, &str)> = vec![
        (file("big.png", "image/png", &big), "larger than 5 MiB"),
        (
            file("setup.exe", "application/x-msdownload", b"MZ\x90\0\x03"),
            "PDF, PNG, JPEG or plain-text",
        ),
        (
            file("cat.png", "image/png", b"GIF89a\x01\0\x01\0"),
            "content matches its type",
        ),
        (
            file("../../etc/passwd.txt", "text/plain", b"root:x:0:0"),
            "path",
        ),
        (file("a\u{0}b.txt", "text/plain", b"hello"), "reserved"),
        (
            file(".htaccess", "text/plain", b"Deny from all"),
            "leading dot",
        ),
        (file("x.pdf.exe", "application/pdf", &pdf()), "extension"),
        (file("empty.txt", "text/plain", b""), "empty"),
    ];
    for (f, reason) in &cases {
        let mut body = ticket_body("Files", "technical", "normal");
        body["attachments"] = json!([f]);
        let (st, p) = s.post("/api/v1/tickets", Some(&sub.token), body).await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {p}",
            f["file_name"]
        );
        assert_eq!(p["field"], "attachments[0]", "{p}");
        assert!(
            p["errors"][0]["reason"].as_str().unwrap().contains(reason),
            "{}: {p}",
            f["file_name"]
        );
    }
    // The second file of three is named; a fourth is one too many.
    let mut body = ticket_body("Files", "technical", "normal");
    body["attachments"] = json!([
        file("a.pdf", "application/pdf", &pdf()),
        file("b.jpg", "image/jpeg", b"not a jpeg"),
        file("c.png", "image/png", &png()),
    ]);
    let (st, p) = s.post("/api/v1/tickets", Some(&sub.token), body).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("attachments[1]"))
    );
    let mut body = ticket_body("Files", "technical", "normal");
    body["attachments"] = json!(vec![file("a.pdf", "application/pdf", &pdf()); 4]);
    let (_, p) = s.post("/api/v1/tickets", Some(&sub.token), body).await;
    assert_eq!(p["field"], "attachments");
    // Unreadable base64 is named down to the field.
    let mut body = ticket_body("Files", "technical", "normal");
    body["attachments"] = json!([
        file("a.pdf", "application/pdf", &pdf()),
        {"file_name": "b.pdf", "content_type": "application/pdf", "data_base64": "JVBERi0*!!"},
    ]);
    let (st, p) = s.post("/api/v1/tickets", Some(&sub.token), body).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("attachments[1].data_base64")
        )
    );
    let (_, list) = s.get("/api/v1/tickets", Some(&sub.token)).await;
    assert_eq!(list["items"], json!([]), "nothing was created");
    // Replies check their files the same way, and add nothing when refused.
    let t = open(&s, &sub.token, ticket_body("Files", "technical", "normal")).await;
    let messages = format!("/api/v1/tickets/{}/messages", t["id"].as_str().unwrap());
    for (f, _) in &cases {
        let (st, p) = s
            .post(
                &messages,
                Some(&sub.token),
                json!({"message": "here", "attachments": [f]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], "attachments[0]");
    }
    let (_, thread) = s.get(&messages, Some(&sub.token)).await;
    assert_eq!(thread.as_array().unwrap().len(), 1);
    assert_eq!(
        outbox(&s)
            .await
            .iter()
            .filter(|e| e.0 == sub.email && e.1.contains("Files"))
            .count(),
        1,
        "one acknowledgement, for the one ticket"
    );
}

// R-4a: anyone reports abuse without signing in; the report is recorded against the bucket and
// its owner and goes to the abuse desk, not to the owner; the form is rate-limited per address.
both_dbs!(the_public_abuse_form, |s: TestServer| async move {
    let owner = s.subscriber("host@example.fr").await;
    let abuse = s.operator("abuse@maocloud.test", Abuse).await;
    let billing = s.operator("billing@maocloud.test", Billing).await;
    let (st, _) = s
        .post(
            "/api/v1/storage/buckets",
            Some(&owner.token),
            json!({"name": "free-gift-cards"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let report = |resource: &str| {
        json!({
            "reporter_email": "abuse-desk@bank.example",
            "reporter_name": "Bank CERT",
            "resource": resource,
            "kind": "phishing",
            "description": "A page imitating our login form is served from this bucket.",
            "evidence": [file("headers.txt", "text/plain", b"Received: from ...")],
        })
    };
    let (st, r) = s
        .post(
            "/api/v1/abuse-reports",
            None,
            report("s3://free-gift-cards/login.html"),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    let number = r["number"].as_i64().unwrap();
    let (_, queue) = s.get("/api/v1/tickets", Some(&abuse.token)).await;
    let t = &queue["items"][0];
    assert_eq!(
        (
            t["number"].as_i64(),
            t["kind"].as_str(),
            t["category"].as_str()
        ),
        (Some(number), Some("abuse_report"), Some("abuse"))
    );
    assert_eq!(t["subscriber_id"], owner.id.as_str(), "linked to the owner");
    let id = t["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .get(&format!("/api/v1/tickets/{id}"), Some(&abuse.token))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["resources"][0],
        json!({"kind": "bucket", "id": "free-gift-cards", "label": "free-gift-cards"})
    );
    assert_eq!(v["contact"]["email"], "abuse-desk@bank.example");
    assert_eq!(v["detail"]["abuse_kind"], "phishing");
    assert_eq!(
        v["messages"][0]["attachments"][0]["file_name"],
        "headers.txt"
    );
    // Not the owner's to read, nor the billing desk's.
    assert_eq!(
        s.get(&format!("/api/v1/tickets/{id}"), Some(&owner.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert!(listed(&s, &owner.token, "").await.is_empty());
    assert_eq!(
        s.get(&format!("/api/v1/tickets/{id}"), Some(&billing.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // The reporter got an acknowledgement quoting the number.
    assert!(outbox(&s)
        .await
        .iter()
        .any(|e| e.0 == "abuse-desk@bank.example"
            && e.1.contains(&format!("#{number}"))
            && e.3.is_some()));
    // Bad input is named, and does not count against the limit.
    let mut bad = report("free-gift-cards");
    bad["reporter_email"] = json!("not an address");
    let (st, p) = s.post("/api/v1/abuse-reports", None, bad).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reporter_email"))
    );
    // Five an hour from one address; the sixth is refused with when to come back.
    for _ in 2..=5 {
        let (st, _) = s
            .post("/api/v1/abuse-reports", None, report("203.0.113.9"))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
    let r = s
        .http
        .post(format!("{}/api/v1/abuse-reports", s.url))
        .json(&report("free-gift-cards"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "3600");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (_, queue) = s.get("/api/v1/tickets?limit=200", Some(&abuse.token)).await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 5);
    // An hour later the form takes reports again.
    s.clock.advance(jiff::SignedDuration::from_mins(61));
    let (st, _) = s
        .post("/api/v1/abuse-reports", None, report("free-gift-cards"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
});

// R-5a: a report with an identity document, confirmed by the support desk, revokes every
// credential at once (API tokens, the password, S3 keys) and emails a link to set a new
// password, which works. An unknown address gets the same answer and creates nothing.
both_dbs!(
    a_credential_loss_report_revokes_everything,
    |s: TestServer| async move {
        let sub = s.subscriber("stolen@example.fr").await;
        let support = s.operator("support@maocloud.test", Support).await;
        let (st, k) = s
            .post(
                "/api/v1/storage/keys",
                Some(&sub.token),
                json!({"name": "laptop"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        let key_id = k["id"].as_str().unwrap().to_string();
        let form = |email: &str| {
            json!({
                "email": email,
                "name": "Alex Durand",
                "statement": "My laptop was stolen on the train; it had my API token and S3 key.",
                "proof": file("id-card.pdf", "application/pdf", &pdf()),
            })
        };
        let (st, v) = s
            .post("/api/v1/credential-loss-reports", None, form(&sub.email))
            .await;
        assert_eq!((st, v), (StatusCode::ACCEPTED, Value::Null));
        let (st, v) = s
            .post(
                "/api/v1/credential-loss-reports",
                None,
                form("nobody@example.fr"),
            )
            .await;
        assert_eq!(
            (st, v),
            (StatusCode::ACCEPTED, Value::Null),
            "the same answer for an unknown address"
        );
        let mut text_proof = form(&sub.email);
        text_proof["proof"] = file("id.txt", "text/plain", b"trust me");
        let (st, p) = s
            .post("/api/v1/credential-loss-reports", None, text_proof)
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("proof"))
        );
        let (_, queue) = s
            .get("/api/v1/tickets?kind=credential_loss", Some(&support.token))
            .await;
        let items = queue["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "nothing for the unknown address: {queue}");
        assert_eq!(items[0]["subscriber_id"], sub.id.as_str());
        let id = items[0]["id"].as_str().unwrap().to_string();
        // Still working until an operator confirms.
        assert_eq!(
            s.get("/api/v1/me", Some(&sub.token)).await.0,
            StatusCode::OK
        );
        let decide = format!("/api/v1/tickets/{id}/credential-loss");
        let (st, p) = s
            .post(&decide, Some(&support.token), json!({"decision": "maybe"}))
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("decision"))
        );
        let (st, v) = s
            .post(
                &decide,
                Some(&support.token),
                json!({"decision": "confirm", "note": "Identity checked against the file."}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["detail"]["status"], "confirmed");
        assert_eq!(v["status"], "resolved");
        // At once: the token, the password and the S3 key are dead.
        assert_eq!(
            s.get("/api/v1/me", Some(&sub.token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (st, _) = s
            .post(
                "/api/v1/tokens",
                None,
                json!({"email": sub.email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (_, keys) = s.get("/api/v1/storage/keys", Some(&support.token)).await;
        let key = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key_id.as_str())
            .unwrap();
        assert_eq!(key["status"], "revoked");
        assert!(maocloud_app::storage::key_resolve(&s.app, &key_id)
            .await
            .is_err());
        // A second decision is refused.
        let (st, _) = s
            .post(
                &decide,
                Some(&support.token),
                json!({"decision": "reject", "note": "no"}),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT);
        // New access by email: the link sets a new password, which signs in.
        let mail = s
            .emails_to(&sub.email)
            .await
            .into_iter()
            .find(|e| e.1.contains("reset-password?token="))
            .expect("new access emailed");
        let token = mail
            .1
            .split("reset-password?token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let (st, p) = s
            .post(
                "/api/v1/password-reset/complete",
                None,
                json!({"token": token, "password": "A-Brand-New-Passphrase-7"}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{p}");
        s.sign_in(&sub.email, "A-Brand-New-Passphrase-7", None)
            .await;
    }
);

// R-7.2a: a registered letter recorded with its date of receipt terminates the subscription it
// names as of that date, and is kept in the subscriber's tickets with its scan.
both_dbs!(a_registered_letter_terminates, |s: TestServer| async move {
    let billing = s.operator("billing@maocloud.test", Billing).await;
    let support = s.operator("support@maocloud.test", Support).await;
    let sub = s.subscriber("letter@example.fr").await;
    let offer = crate::billing::offer(&s, &billing.token, "letter", "Letter", 1500, 0).await;
    let subscribed = crate::billing::subscribe(&s, &sub.token, &offer).await;
    let subscription = subscribed["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let letter = json!({
        "subscriber_id": sub.id,
        "received_on": "2026-11-24",
        "subject": "termination",
        "summary": "The subscriber terminates their subscription by registered letter.",
        "scan": file("letter.pdf", "application/pdf", &pdf()),
        "subscription_id": subscription,
        "end": "month_end",
    });
    // Only the desks record letters; the date cannot be in the future.
    let (st, _) = s
        .post("/api/v1/support/letters", Some(&sub.token), letter.clone())
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let mut future = letter.clone();
    future["received_on"] = json!("2026-12-01");
    let (st, p) = s
        .post("/api/v1/support/letters", Some(&support.token), future)
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("received_on"))
    );
    // A letter naming another subscriber with this subscription terminates nothing.
    let other = s.subscriber("other@example.fr").await;
    let mut crossed = letter.clone();
    crossed["subscriber_id"] = json!(other.id);
    let (st, p) = s
        .post("/api/v1/support/letters", Some(&support.token), crossed)
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("subscription_id"))
    );
    let (st, _) = s
        .get(
            &format!("/api/v1/subscriptions/{subscription}/termination"),
            Some(&sub.token),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was terminated");
    // Files travel with an Idempotency-Key too (the key's buffer allows them).
    let resp = s
        .http
        .post(format!("{}/api/v1/support/letters", s.url))
        .bearer_auth(&support.token)
        .header("Idempotency-Key", "letter-1")
        .json(&letter)
        .send()
        .await
        .unwrap();
    let st = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["kind"].as_str(),
            v["source"].as_str(),
            v["status"].as_str()
        ),
        (Some("letter"), Some("letter"), Some("resolved"))
    );
    assert_eq!(
        v["messages"][0]["attachments"][0]["file_name"],
        "letter.pdf"
    );
    let (st, term) = s
        .get(
            &format!("/api/v1/subscriptions/{subscription}/termination"),
            Some(&sub.token),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{term}");
    assert_eq!(
        (
            term["channel"].as_str(),
            term["received_on"].as_str(),
            term["end_date"].as_str()
        ),
        (Some("letter"), Some("2026-11-24"), Some("2026-11-30"))
    );
    assert_eq!(v["detail"]["termination_id"], term["id"]);
    // The subscriber finds the letter among their tickets.
    assert_eq!(
        listed(&s, &sub.token, "").await,
        vec![v["id"].as_str().unwrap().to_string()]
    );
});

// R-1d: targets are public, set by admins within sane bounds and used by tickets opened from
// then on; the monthly report counts tickets per priority.
both_dbs!(targets_and_the_monthly_report, |s: TestServer| async move {
    let admin = s.operator("admin@maocloud.test", Admin).await;
    let support = s.operator("support@maocloud.test", Support).await;
    let sub = s.subscriber("report@example.fr").await;
    let (st, targets) = s.get("/api/v1/support/targets", None).await;
    assert_eq!(st, StatusCode::OK);
    let priorities: Vec<&str> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["priority"].as_str().unwrap())
        .collect();
    assert_eq!(priorities, ["urgent", "high", "normal", "low"]);
    let ok = json!({"first_response_minutes": 15, "resolution_minutes": 120});
    assert_eq!(
        put_target(&s, &sub.token, "urgent", ok.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put_target(&s, &support.token, "urgent", ok.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    for (priority, body, field) in [
        (
            "urgent",
            json!({"first_response_minutes": 0, "resolution_minutes": 120}),
            "first_response_minutes",
        ),
        (
            "urgent",
            json!({"first_response_minutes": 60, "resolution_minutes": 30}),
            "resolution_minutes",
        ),
        (
            "urgent",
            json!({"first_response_minutes": 60, "resolution_minutes": 10_000_000}),
            "resolution_minutes",
        ),
        ("critical", ok.clone(), "priority"),
    ] {
        let (st, p) = put_target(&s, &admin.token, priority, body).await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{p}"
        );
    }
    let (st, v) = put_target(&s, &admin.token, "urgent", ok.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, targets) = s.get("/api/v1/support/targets", None).await;
    assert_eq!(
        targets[0],
        json!({"priority": "urgent", "first_response_minutes": 15, "resolution_minutes": 120})
    );
    let t = open(&s, &sub.token, ticket_body("Down", "technical", "urgent")).await;
    let at = |field: &str| {
        t[field]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!(
        (
            at("first_response_due_at").duration_since(at("created_at")),
            at("resolution_due_at").duration_since(at("created_at"))
        ),
        (
            jiff::SignedDuration::from_mins(15),
            jiff::SignedDuration::from_mins(120)
        )
    );
    open(&s, &sub.token, ticket_body("Slow", "technical", "low")).await;
    open(&s, &sub.token, ticket_body("Question", "billing", "low")).await;
    // The report: this month's tickets per priority, then all of them.
    let (st, r) = s
        .get("/api/v1/support/report?month=2026-11", Some(&support.token))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let counts: Vec<(&str, i64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["priority"].as_str().unwrap(),
                row["tickets"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("urgent", 1),
            ("high", 0),
            ("normal", 0),
            ("low", 2),
            ("all", 3)
        ]
    );
    let (_, default_month) = s.get("/api/v1/support/report", Some(&support.token)).await;
    assert_eq!(default_month["month"], "2026-11");
    let (_, october) = s
        .get("/api/v1/support/report?month=2026-10", Some(&support.token))
        .await;
    assert_eq!(october["rows"][4]["tickets"], 0);
    let (st, p) = s
        .get("/api/v1/support/report?month=2026-13", Some(&support.token))
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("month"))
    );
    assert_eq!(
        s.get("/api/v1/support/report", Some(&sub.token)).await.0,
        StatusCode::FORBIDDEN
    );
});
