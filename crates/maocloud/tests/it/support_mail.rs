//! The support desk's clockwork and its email side: escalation fires exactly at 80 % of a
//! target and at the target itself (test clock), once; breaches are recorded and reported; a
//! reply by email lands in the right thread, and forged, misaddressed or automatic ones are
//! rejected without changing anything (R-1d).

use crate::both_dbs;
use crate::harness::*;
use jiff::SignedDuration;
use maocloud_app::support::{self, NewReply, NewTicket};
use maocloud_app::Ctx;
use maocloud_types::{OperatorRole, PageRequest, Principal, SubscriberId, Timestamp};

fn subscriber_ctx(id: &str) -> Ctx {
    Ctx {
        principal: Principal::Subscriber(id.parse::<SubscriberId>().unwrap()),
        ip: "-".into(),
    }
}

fn operator_ctx(op: &Operator, role: OperatorRole) -> Ctx {
    Ctx {
        principal: Principal::Operator {
            id: op.id.parse().unwrap(),
            role,
        },
        ip: "-".into(),
    }
}

fn ticket(subject: &str, priority: &str) -> NewTicket {
    NewTicket {
        subject: subject.into(),
        category: "technical".into(),
        priority: priority.into(),
        body: "My VM does not answer on port 22 since this morning.".into(),
        resources: vec![],
        attachments: vec![],
        source: "api".into(),
    }
}

/// Every outbox email: (to, subject, reply_to).
async fn outbox(s: &TestServer) -> Vec<(String, String, Option<String>)> {
    maocloud_app::notify::outbox(&s.app, &Ctx::system(), &PageRequest::first(200))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.to_addr, e.subject, e.reply_to))
        .collect()
}

async fn count_to(s: &TestServer, addr: &str, needle: &str) -> usize {
    outbox(s)
        .await
        .iter()
        .filter(|(to, subject, _)| to == addr && subject.contains(needle))
        .count()
}

both_dbs!(
    escalation_fires_exactly_at_the_targets,
    |s: TestServer| async move {
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let agent = s
            .operator("agent@maocloud.test", OperatorRole::Support)
            .await;
        let sub = s.subscriber("client@example.fr").await;
        let me = subscriber_ctx(&sub.id);
        let desk = operator_ctx(&agent, OperatorRole::Support);

        // Urgent: first response within 30 min, resolution within 4 h (the defaults).
        let opened: Timestamp = s.app.now();
        let late = support::open(&s.app, &me, ticket("Down", "urgent"))
            .await
            .unwrap()
            .ticket;
        let on_time = support::open(&s.app, &me, ticket("Slow", "urgent"))
            .await
            .unwrap()
            .ticket;
        assert_eq!(
            late.first_response_due_at,
            opened + SignedDuration::from_mins(30)
        );
        assert_eq!(
            late.resolution_due_at,
            opened + SignedDuration::from_mins(240)
        );

        let at = |mins: i64, micros: i64| {
            opened + SignedDuration::from_mins(mins) + SignedDuration::from_micros(micros)
        };
        // Nothing before 80 % of the first-response target (24 min)…
        s.clock.set(at(24, -1));
        assert_eq!(support::sweep(&s.app).await.unwrap(), Default::default());
        // …the on-call group (every support operator: no alias configured) is warned at 24 min.
        s.clock.set(at(24, 0));
        let r = support::sweep(&s.app).await.unwrap();
        assert_eq!((r.warned, r.breached), (2, 0));
        assert_eq!(count_to(&s, &agent.email, "Escalade").await, 2);
        assert_eq!(count_to(&s, &admin.email, "Délai dépassé").await, 0);

        // One ticket is answered in time.
        s.clock.set(at(29, 0));
        support::reply(
            &s.app,
            &desk,
            &on_time.id,
            NewReply {
                body: "We are looking at it.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

        // A second sweep at the same stage notifies nobody again.
        assert_eq!(support::sweep(&s.app).await.unwrap(), Default::default());
        s.clock.set(at(30, -1));
        assert_eq!(support::sweep(&s.app).await.unwrap(), Default::default());
        // At the target itself: breached, admins told, recorded.
        s.clock.set(at(30, 0));
        let r = support::sweep(&s.app).await.unwrap();
        assert_eq!((r.warned, r.breached), (0, 1));
        assert_eq!(count_to(&s, &admin.email, "Délai dépassé").await, 1);
        assert_eq!(support::sweep(&s.app).await.unwrap(), Default::default());

        let view = support::get(&s.app, &desk, &late.id).await.unwrap();
        assert!(view.ticket.first_response_breached);
        assert_eq!(view.ticket.first_response_stage, 2);
        let kinds: Vec<&str> = view.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "escalated", "breached"]);
        let answered = support::get(&s.app, &desk, &on_time.id).await.unwrap();
        assert!(!answered.ticket.first_response_breached);

        // The resolution target of both: warned at 80 % of 4 h (192 min), breached at 240 min.
        s.clock.set(at(192, 0));
        assert_eq!(support::sweep(&s.app).await.unwrap().warned, 2);
        s.clock.set(at(240, 0));
        assert_eq!(support::sweep(&s.app).await.unwrap().breached, 2);

        // The month's report: 2 urgent tickets, one first response within target, one breached.
        let report = support::report(&s.app, &desk, "2026-11").await.unwrap();
        let urgent = report.iter().find(|r| r.priority == "urgent").unwrap();
        assert_eq!(urgent.tickets, 2);
        assert_eq!(
            (urgent.first_response_within, urgent.first_response_breached),
            (1, 1)
        );
        assert_eq!(urgent.first_response_share_permille, Some(500));
        assert_eq!(urgent.resolution_breached, 2);
        let all = report.iter().find(|r| r.priority == "all").unwrap();
        assert_eq!(all.tickets, 2);
        let normal = report.iter().find(|r| r.priority == "normal").unwrap();
        assert_eq!(
            (normal.tickets, normal.first_response_share_permille),
            (0, None)
        );
        // Another month has none.
        let october = support::report(&s.app, &desk, "2026-10").await.unwrap();
        assert!(october.iter().all(|r| r.tickets == 0));
        assert!(support::report(&s.app, &desk, "2026-13").await.is_err());
        assert!(support::report(&s.app, &me, "2026-11").await.is_err());

        // Resolved tickets close by themselves after 7 days.
        support::reply(
            &s.app,
            &desk,
            &late.id,
            NewReply {
                body: "Fixed: the host was restarted.".into(),
                status: Some("resolved".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let resolved_at = s.app.now();
        s.clock
            .set(resolved_at + SignedDuration::from_hours(24 * 7) - SignedDuration::from_secs(1));
        assert_eq!(support::sweep(&s.app).await.unwrap().closed, 0);
        s.clock
            .set(resolved_at + SignedDuration::from_hours(24 * 7));
        assert_eq!(support::sweep(&s.app).await.unwrap().closed, 1);
        let closed = support::get(&s.app, &me, &late.id).await.unwrap().ticket;
        assert_eq!(closed.status, "closed");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_call_alias_is_warned_instead_of_each_operator() {
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.support_oncall = Some("oncall@provider.test".into())
    })
    .await;
    let agent = s
        .operator("agent@maocloud.test", OperatorRole::Support)
        .await;
    let sub = s.subscriber("client@example.fr").await;
    let t = support::open(&s.app, &subscriber_ctx(&sub.id), ticket("Down", "high"))
        .await
        .unwrap()
        .ticket;
    // High: 60 min → warned at 48 min.
    s.clock.set(t.created_at + SignedDuration::from_mins(48));
    assert_eq!(support::sweep(&s.app).await.unwrap().warned, 1);
    assert_eq!(count_to(&s, "oncall@provider.test", "Escalade").await, 1);
    assert_eq!(count_to(&s, &agent.email, "Escalade").await, 0);
}

/// A reply as a mail client would send it: quoted history under the marker line.
fn reply_email(from: &str, to: &str, text: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: Client <{from}>\r\nTo: {to}\r\nSubject: Re: [#1] Down\r\nMessage-ID: <r{}@example.fr>\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0100\r\n{extra_headers}MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n\
         Le jeu. 26 nov. 2026 à 09:31, Maocloud <no-reply@maocloud.localhost> a écrit :\r\n\
         > #-#-# Répondez au-dessus de cette ligne #-#-#\r\n> Bonjour, le support a répondu.\r\n\
         --b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"screen.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n--b--\r\n",
        uuid_like(text)
    )
    .into_bytes()
}

fn uuid_like(s: &str) -> String {
    format!(
        "{:x}",
        s.len() * 7919 + s.bytes().map(usize::from).sum::<usize>()
    )
}

both_dbs!(
    an_email_reply_lands_in_its_thread_and_forgeries_are_rejected,
    |s: TestServer| async move {
        let agent = s
            .operator("agent@maocloud.test", OperatorRole::Support)
            .await;
        let desk = operator_ctx(&agent, OperatorRole::Support);
        let alice = s.subscriber("alice@example.fr").await;
        let bob = s.subscriber("bob@example.fr").await;
        let a = support::open(&s.app, &subscriber_ctx(&alice.id), ticket("Down", "normal"))
            .await
            .unwrap()
            .ticket;
        let b = support::open(&s.app, &subscriber_ctx(&bob.id), ticket("Bill", "normal"))
            .await
            .unwrap()
            .ticket;
        support::reply(
            &s.app,
            &desk,
            &a.id,
            NewReply {
                body: "Can you send a screenshot?".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // The reply went to Alice with her ticket's reply address.
        let mails = outbox(&s).await;
        let (_, subject, reply_to) = mails
            .iter()
            .find(|(to, subject, _)| {
                to == "alice@example.fr" && subject.starts_with(&format!("[#{}]", a.number))
            })
            .expect("Alice was told");
        let alice_addr = reply_to.clone().expect("a reply address");
        assert!(
            alice_addr.starts_with("support+") && alice_addr.ends_with("@maocloud.localhost"),
            "{alice_addr}"
        );
        assert!(subject.contains("Down"));
        let bob_addr = mails
            .iter()
            .find(|(to, _, _)| to == "bob@example.fr")
            .and_then(|(_, _, r)| r.clone())
            .expect("Bob's acknowledgement carries his reply address");
        assert_ne!(alice_addr, bob_addr);

        let intake = s.app.settings().support_intake.clone();
        let deliver = |raw: Vec<u8>| {
            maocloud_mail::inbound::deliver(&intake, &raw).unwrap();
        };
        let thread_len = |id: String| {
            let app = s.app.clone();
            let ctx = desk.clone();
            async move { support::get(&app, &ctx, &id).await.unwrap().thread.len() }
        };
        let (a_before, b_before) = (
            thread_len(a.id.clone()).await,
            thread_len(b.id.clone()).await,
        );

        // Forged: Bob writes to Alice's reply address; a guessed token; Alice writes to Bob's
        // address; an auto-reply from Alice; not an email at all.
        deliver(reply_email(
            "bob@example.fr",
            &alice_addr,
            "I am Alice, honest.",
            "",
        ));
        deliver(reply_email(
            "alice@example.fr",
            "support+aaaaaaaaaaaaaaaaaaaaaaaaaa@maocloud.localhost",
            "Guessing.",
            "",
        ));
        deliver(reply_email(
            "alice@example.fr",
            &bob_addr,
            "Into Bob's ticket.",
            "",
        ));
        deliver(reply_email(
            "alice@example.fr",
            &alice_addr,
            "Je suis absente.",
            "Auto-Submitted: auto-replied\r\n",
        ));
        deliver(b"\x00\x01 not a message".to_vec());
        let r = support::intake(&s.app).await.unwrap();
        assert_eq!((r.accepted, r.rejected), (0, 5));
        assert_eq!(thread_len(a.id.clone()).await, a_before);
        assert_eq!(thread_len(b.id.clone()).await, b_before);
        let rejected: Vec<String> = std::fs::read_dir(intake.join("rejected"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension().is_some_and(|x| x == "reason"))
                    .then(|| std::fs::read_to_string(p).unwrap())
            })
            .collect();
        assert_eq!(rejected.len(), 5);
        assert!(
            rejected
                .iter()
                .any(|r| r.contains("bob@example.fr is not this ticket's requester")),
            "{rejected:?}"
        );
        assert!(
            rejected
                .iter()
                .any(|r| r.contains("no ticket has this reply address")),
            "{rejected:?}"
        );
        assert!(
            rejected.iter().any(|r| r.contains("automatic")),
            "{rejected:?}"
        );

        // Alice's real reply (address case as her mail client wrote it) joins her thread, quoted
        // history stripped, screenshot attached; the ticket goes back to open.
        deliver(reply_email(
            "Alice@Example.fr",
            &alice_addr,
            "Here is the screenshot.",
            "",
        ));
        let r = support::intake(&s.app).await.unwrap();
        assert_eq!((r.accepted, r.rejected), (1, 0));
        let view = support::get(&s.app, &subscriber_ctx(&alice.id), &a.id)
            .await
            .unwrap();
        let last = view.thread.last().unwrap();
        assert_eq!(last.message.via, "email");
        assert_eq!(last.message.author_kind, "subscriber");
        assert_eq!(last.message.body, "Here is the screenshot.");
        assert_eq!(last.attachments.len(), 1);
        assert_eq!(last.attachments[0].file_name, "screen.png");
        assert_eq!(view.ticket.status, "open");
        let (_, png) = support::attachment(
            &s.app,
            &subscriber_ctx(&alice.id),
            &a.id,
            &last.attachments[0].id,
        )
        .await
        .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        // The assignee was told.
        assert!(count_to(&s, &agent.email, "Nouvelle réponse").await >= 1);
        // Accepted mail moved to cur/, nothing left pending.
        assert_eq!(std::fs::read_dir(intake.join("new")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(intake.join("cur")).unwrap().count(), 1);
    }
);
