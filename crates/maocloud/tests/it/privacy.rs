//! Personal data: consent history is exact and marketing reaches only consenting,
//! unrestricted subscribers, each with a working one-click opt-out; restriction and
//! objection take a subscriber out of the statistics, whose groups under k show no number;
//! the register of processors; the access export holds every class of a subscriber's
//! data and nothing of another's.

use crate::both_dbs;
use crate::harness::*;
use maocloud_app::privacy::{self, ProcessorInput};
use maocloud_app::{Ctx, Error};
use maocloud_types::{OperatorRole, PageRequest, Principal, SubscriberId};
use std::io::Read;

fn me(s: &Subscriber) -> Ctx {
    Ctx {
        principal: Principal::Subscriber(s.id.parse::<SubscriberId>().unwrap()),
        ip: "192.0.2.7".into(),
    }
}

fn op(o: &Operator, role: OperatorRole) -> Ctx {
    Ctx {
        principal: Principal::Operator {
            id: o.id.parse().unwrap(),
            role,
        },
        ip: "-".into(),
    }
}

async fn outbox_to(s: &TestServer, addr: &str) -> Vec<(String, String)> {
    maocloud_app::notify::outbox(&s.app, &Ctx::system(), &PageRequest::first(200))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.to_addr == addr)
        .map(|e| (e.subject, e.body_text))
        .collect()
}

both_dbs!(
    consent_is_opt_in_recorded_and_honoured_by_marketing,
    |s: TestServer| async move {
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let admin = op(&admin, OperatorRole::Admin);
        let a = s.subscriber("a@example.fr").await;
        let b = s.subscriber("b@example.fr").await;
        let c = s.subscriber("c@example.fr").await;
        // D consents but never confirmed their address: marketing does not go to unverified ones.
        let d = s.subscriber("d@example.fr").await;
        for x in [&a, &b, &c] {
            s.verify_email(&x.email).await;
        }

        // Opt-in: nothing is granted by default.
        let none = privacy::consents(&s.app, &me(&a), None).await.unwrap();
        assert!(none.purposes.iter().all(|(_, g)| !g));
        assert!(none.history.is_empty());

        let t1 = s.app.now();
        privacy::set_consent(&s.app, &me(&a), "promotions", true, "console")
            .await
            .unwrap();
        s.clock.advance(jiff::SignedDuration::from_secs(60));
        privacy::set_consent(&s.app, &me(&a), "surveys", true, "api")
            .await
            .unwrap();
        s.clock.advance(jiff::SignedDuration::from_secs(60));
        let after = privacy::set_consent(&s.app, &me(&a), "surveys", false, "cli")
            .await
            .unwrap();
        let granted: Vec<&str> = after
            .purposes
            .iter()
            .filter(|(_, g)| *g)
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(granted, ["promotions"]);
        let h: Vec<(&str, bool, &str, &str)> = after
            .history
            .iter()
            .map(|e| {
                (
                    e.purpose.as_str(),
                    e.granted,
                    e.source.as_str(),
                    e.ip.as_str(),
                )
            })
            .collect();
        assert_eq!(
            h,
            [
                ("promotions", true, "console", "192.0.2.7"),
                ("surveys", true, "api", "192.0.2.7"),
                ("surveys", false, "cli", "192.0.2.7"),
            ]
        );
        assert_eq!(after.history[0].created_at, t1);
        assert_eq!(
            after.history[2].created_at,
            t1 + jiff::SignedDuration::from_secs(120)
        );
        assert!(matches!(
            privacy::set_consent(&s.app, &me(&a), "profiling", true, "api").await,
            Err(Error::Invalid(_))
        ));

        privacy::set_consent(&s.app, &me(&d), "promotions", true, "api")
            .await
            .unwrap();
        // Giving again what is given records nothing new.
        let again = privacy::set_consent(&s.app, &me(&d), "promotions", true, "api")
            .await
            .unwrap();
        assert_eq!(again.history.len(), 1);
        // C consents too but restricts processing: marketing must not reach them.
        privacy::set_consent(&s.app, &me(&c), "promotions", true, "console")
            .await
            .unwrap();
        privacy::set_choice(
            &s.app,
            &me(&c),
            "restriction",
            true,
            Some("until my dispute is settled"),
            "console",
        )
        .await
        .unwrap();
        let sent = privacy::marketing_send(
            &s.app,
            &admin,
            "promotions",
            "-20 % sur Cloud M",
            "Ce mois-ci seulement.",
        )
        .await
        .unwrap();
        assert_eq!(sent, 1);
        let to_a = outbox_to(&s, &a.email).await;
        let (_, body) = to_a
            .iter()
            .find(|(subj, _)| subj.contains("Cloud M"))
            .expect("A got it");
        assert!(outbox_to(&s, &b.email)
            .await
            .iter()
            .all(|(subj, _)| !subj.contains("Cloud M")));
        assert!(outbox_to(&s, &c.email)
            .await
            .iter()
            .all(|(subj, _)| !subj.contains("Cloud M")));
        assert!(outbox_to(&s, &d.email)
            .await
            .iter()
            .all(|(subj, _)| !subj.contains("Cloud M")));
        // Mail clients get the one-click opt-out too (RFC 8058), in the delivered message.
        let marketing =
            maocloud_app::notify::outbox(&s.app, &Ctx::system(), &PageRequest::first(200))
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| e.to_addr == a.email && e.subject.contains("Cloud M"))
                .unwrap();
        let one_click = marketing
            .list_unsubscribe
            .clone()
            .expect("List-Unsubscribe");
        assert!(one_click.contains("/api/v1/unsubscribe?t="), "{one_click}");
        s.run_jobs().await;
        let file = s
            .data
            .path()
            .join("maildir/new")
            .join(format!("{}.maocloud", marketing.id));
        let raw = std::fs::read_to_string(file).unwrap();
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("List-Unsubscribe: <{one_click}>")),
            "{raw}"
        );
        // Nobody consented to surveys now: nobody gets one.
        assert_eq!(
            privacy::marketing_send(&s.app, &admin, "surveys", "Votre avis", "Deux minutes ?")
                .await
                .unwrap(),
            0
        );
        // Only admins send marketing.
        assert!(matches!(
            privacy::marketing_send(&s.app, &me(&a), "promotions", "x", "y").await,
            Err(Error::Forbidden(_))
        ));

        // The one-click opt-out in the email withdraws that consent, recorded as such.
        let token = body
            .split("unsubscribe?t=")
            .nth(1)
            .expect("an opt-out link")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let mut forged = token.clone();
        forged.replace_range(
            forged.len() - 1..,
            if forged.ends_with('0') { "1" } else { "0" },
        );
        assert!(privacy::unsubscribe(&s.app, &forged, "198.51.100.1")
            .await
            .is_err());
        assert_eq!(
            privacy::unsubscribe(&s.app, &token, "198.51.100.1")
                .await
                .unwrap(),
            "promotions"
        );
        let last = privacy::consents(&s.app, &me(&a), None).await.unwrap();
        assert!(last.purposes.iter().all(|(_, g)| !g));
        let e = last.history.last().unwrap();
        assert_eq!(
            (e.purpose.as_str(), e.granted, e.source.as_str()),
            ("promotions", false, "unsubscribe_link")
        );
        assert_eq!(
            privacy::marketing_send(&s.app, &admin, "promotions", "Encore", "Non.")
                .await
                .unwrap(),
            0
        );
    }
);

both_dbs!(
    statistics_are_anonymous_and_honour_objection,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let desk = op(&billing, OperatorRole::Billing);
        let big = crate::billing::offer(&s, &billing.token, "big", "Big", 1000, 0).await;
        let small = crate::billing::offer(&s, &billing.token, "small", "Small", 500, 0).await;
        let mut many = Vec::new();
        for i in 0..6 {
            let sub = s.subscriber(&format!("big{i}@example.fr")).await;
            crate::billing::subscribe(&s, &sub.token, &big).await;
            many.push(sub);
        }
        for i in 0..2 {
            let sub = s.subscriber(&format!("small{i}@example.fr")).await;
            crate::billing::subscribe(&s, &sub.token, &small).await;
        }
        let per_offer = |stats: &[privacy::Statistic]| -> Vec<(String, Option<i64>)> {
            stats[0]
                .groups
                .iter()
                .map(|g| (g.key.clone(), g.subscribers))
                .collect()
        };
        let stats = privacy::statistics(&s.app, &desk, "2026-11").await.unwrap();
        assert_eq!(stats[0].k, 5);
        assert_eq!(
            per_offer(&stats),
            [("big".into(), Some(6)), ("small".into(), None)]
        );
        // Revenue: the big offer's month shows (6 subscribers), the small one's does not.
        let revenue = &stats[1].groups;
        let big_month = revenue.iter().find(|g| g.key == "2026-11 big").unwrap();
        assert_eq!(big_month.subscribers, Some(6));
        assert!(big_month.total.unwrap() > 0);
        let small_month = revenue.iter().find(|g| g.key == "2026-11 small").unwrap();
        assert_eq!((small_month.subscribers, small_month.total), (None, None));

        // One objects, one restricts: both leave the statistics, and the group falls under k.
        privacy::set_choice(&s.app, &me(&many[0]), "objection", true, None, "api")
            .await
            .unwrap();
        let stats = privacy::statistics(&s.app, &desk, "2026-11").await.unwrap();
        assert_eq!(per_offer(&stats)[0], ("big".into(), Some(5)));
        privacy::set_choice(&s.app, &me(&many[1]), "restriction", true, None, "api")
            .await
            .unwrap();
        let stats = privacy::statistics(&s.app, &desk, "2026-11").await.unwrap();
        assert_eq!(per_offer(&stats)[0], ("big".into(), None));
        // Lifting the objection brings them back; the history keeps both changes.
        let lifted =
            privacy::set_choice(&s.app, &me(&many[0]), "objection", false, None, "console")
                .await
                .unwrap();
        assert!(!lifted.state.objected);
        assert_eq!(lifted.history.len(), 2);
        let stats = privacy::statistics(&s.app, &desk, "2026-11").await.unwrap();
        assert_eq!(per_offer(&stats)[0], ("big".into(), Some(5)));
        // Subscribers and other roles get no statistics; a bad month is refused.
        assert!(privacy::statistics(&s.app, &me(&many[2]), "2026-11")
            .await
            .is_err());
        assert!(matches!(
            privacy::statistics(&s.app, &desk, "11-2026").await,
            Err(Error::Invalid(_))
        ));
    }
);

both_dbs!(the_register_of_processors, |s: TestServer| async move {
    let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
    let support = s
        .operator("support@maocloud.test", OperatorRole::Support)
        .await;
    let sub = s.subscriber("reader@example.fr").await;
    let input = ProcessorInput {
        kind: "processor".into(),
        name: "Banque Exemple".into(),
        purpose: "SEPA direct debits".into(),
        data_categories: "name, IBAN, amounts".into(),
        country: "FR".into(),
        safeguards: "EU".into(),
    };
    let p = privacy::processor_create(&s.app, &op(&admin, OperatorRole::Admin), input.clone())
        .await
        .unwrap();
    assert!(matches!(
        privacy::processor_create(&s.app, &op(&support, OperatorRole::Support), input.clone())
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        privacy::processor_create(&s.app, &me(&sub), input.clone()).await,
        Err(Error::Forbidden(_))
    ));
    let mut bad = input.clone();
    bad.country = "France".into();
    bad.kind = "friend".into();
    let Err(Error::Invalid(fields)) =
        privacy::processor_create(&s.app, &op(&admin, OperatorRole::Admin), bad).await
    else {
        panic!("refused")
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["kind", "country"]);
    assert_eq!(privacy::processors(&s.app).await.unwrap(), vec![p.clone()]);
    privacy::processor_remove(&s.app, &op(&admin, OperatorRole::Admin), &p.id)
        .await
        .unwrap();
    assert!(privacy::processors(&s.app).await.unwrap().is_empty());
});

both_dbs!(
    the_export_holds_every_class_of_data_and_nothing_else,
    |s: TestServer| async move {
        let agent = s
            .operator("agent@maocloud.test", OperatorRole::Support)
            .await;
        let a = s.subscriber("exported@example.fr").await;
        let other = s.subscriber("someone.else@example.fr").await;
        // Data of several classes: a consent, a ticket, an operator's read of it, an API token.
        privacy::set_consent(&s.app, &me(&a), "loyalty", true, "console")
            .await
            .unwrap();
        let t = maocloud_app::support::open(
            &s.app,
            &me(&a),
            maocloud_app::support::NewTicket {
                subject: "Export me".into(),
                category: "account".into(),
                priority: "low".into(),
                body: "Please keep this sentence.".into(),
                resources: vec![],
                attachments: vec![],
                source: "api".into(),
            },
        )
        .await
        .unwrap()
        .ticket;
        maocloud_app::support::get(&s.app, &op(&agent, OperatorRole::Support), &t.id)
            .await
            .unwrap();
        privacy::set_consent(&s.app, &me(&other), "loyalty", true, "console")
            .await
            .unwrap();

        let e = privacy::export_request(&s.app, &me(&a)).await.unwrap();
        assert_eq!(e.status, "queued");
        assert!(
            privacy::export_request(&s.app, &me(&a)).await.is_err(),
            "one at a time"
        );
        assert!(
            privacy::export_download(&s.app, &me(&a), &e.id)
                .await
                .is_err(),
            "not ready yet"
        );
        s.run_jobs().await;
        let list = privacy::exports(&s.app, &me(&a)).await.unwrap();
        assert_eq!(list[0].status, "ready");
        assert!(outbox_to(&s, &a.email)
            .await
            .iter()
            .any(|(_, b)| b.contains("/account/privacy")));
        // Another subscriber cannot see or fetch it.
        assert!(privacy::exports(&s.app, &me(&other))
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            privacy::export_download(&s.app, &me(&other), &e.id).await,
            Err(Error::NotFound)
        ));
        let bytes = privacy::export_download(&s.app, &me(&a), &e.id)
            .await
            .unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut all = String::new();
        let mut names = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            if name.ends_with(".json") {
                serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
            }
            all.push_str(&text);
            names.push(name);
        }
        for expected in [
            "README.txt",
            "account.json",
            "profile.json",
            "consents.json",
            "tickets.json",
            "operator_access.json",
            "api_tokens.json",
            "invoices.json",
            "subscriptions.json",
            "terms_acceptances.json",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(all.contains("exported@example.fr"));
        assert!(all.contains("Please keep this sentence."));
        assert!(all.contains("ticket.read"), "the operator's read is listed");
        assert!(
            !all.contains("someone.else@example.fr"),
            "nothing of another subscriber"
        );
        // The archive is sealed at rest: the plain email is not in the file on disk.
        let on_disk = std::fs::read_to_string(
            s.data
                .path()
                .join("exports")
                .join(format!("{}.zip.sealed", e.id)),
        )
        .unwrap();
        assert!(!on_disk.contains("exported@example.fr"));

        // After 7 days it is gone.
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 7));
        s.run_jobs().await;
        assert_eq!(
            privacy::exports(&s.app, &me(&a)).await.unwrap()[0].status,
            "expired"
        );
        assert!(privacy::export_download(&s.app, &me(&a), &e.id)
            .await
            .is_err());
        assert!(!s
            .data
            .path()
            .join("exports")
            .join(format!("{}.zip.sealed", e.id))
            .exists());
    }
);

/// Every file under `dir` whose bytes contain one of `needles`: (file, needle).
fn files_containing(dir: &std::path::Path, needles: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    found.push((p.display().to_string(), n.to_string()));
                }
            }
        }
    }
    found
}

/// Every (table, column) of the PostgreSQL test database holding one of `needles`.
fn pg_columns_containing(url: &str, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for n in needles {
        // The columns first (materialised), then one count per column: the planner may not
        // run the counting function on catalog tables.
        let sql = format!(
            "WITH cols AS MATERIALIZED (SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')) \
             SELECT t || '.' || c FROM cols WHERE (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I WHERE %I LIKE %L', \
             t, c, '%{n}%'), false, true, '')))[1]::text::int > 0"
        );
        let out = std::process::Command::new("psql")
            .args([url, "-At", "-c", &sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            found.push(format!("{line} ∋ {n}"));
        }
    }
    found
}

both_dbs!(
    erasure_leaves_nothing_but_the_invoices,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "gone", "Gone", 1200, 0).await;
        let email = "zephyrine.erase@example.fr";
        let iban = "FR7630004000031234567890143";
        let a = s.subscriber(email).await;
        let ctx = me(&a);
        maocloud_app::sepa::mandate_create(&s.app, &ctx, iban, None, "Alex Durand", true)
            .await
            .unwrap();
        let sub = crate::billing::subscribe(&s, &a.token, &offer).await;
        let sub_id = sub["subscription"]["id"].as_str().unwrap().to_string();
        let invoice_id = sub["invoice"]["id"].as_str().map(str::to_string);
        privacy::set_consent(&s.app, &ctx, "surveys", true, "console")
            .await
            .unwrap();
        let t = maocloud_app::support::open(
            &s.app,
            &ctx,
            maocloud_app::support::NewTicket {
                subject: "Alex Durand needs help".into(),
                category: "billing".into(),
                priority: "normal".into(),
                body: format!("Write to me at {email}, IBAN {iban}."),
                resources: vec![],
                attachments: vec![maocloud_app::support::NewAttachment {
                    file_name: "note.txt".into(),
                    content_type: "text/plain".into(),
                    bytes: format!("Alex Durand {email}").into_bytes(),
                }],
                source: "api".into(),
            },
        )
        .await
        .unwrap()
        .ticket;
        maocloud_app::support::get(&s.app, &op(&support, OperatorRole::Support), &t.id)
            .await
            .unwrap();
        privacy::export_request(&s.app, &ctx).await.unwrap();
        s.run_jobs().await; // emails delivered into the Maildir, the export built

        // With an active contract, erasure is refused.
        assert!(matches!(
            privacy::erasure_request(&s.app, &ctx).await,
            Err(Error::Conflict { .. })
        ));
        // The contract ends (terminated for today, carried out by tomorrow's sweep).
        let (st, v) = s
            .post(
                &format!("/api/v1/subscriptions/{sub_id}/termination"),
                Some(&a.token),
                serde_json::json!({"end": "date", "date": "2026-11-26"}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
        s.clock.advance(jiff::SignedDuration::from_hours(24));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        s.run_jobs().await;

        // The probes see the data before (so that finding nothing afterwards means something).
        let needles = [email, "Alex Durand", iban];
        assert!(!files_containing(s.data.path(), &needles).is_empty());
        if s.db == Db::Postgres {
            assert!(pg_columns_containing(&s.database_url, &needles).len() >= 3);
        }

        // Confirmed twice: the emailed code, then the code with the email address typed.
        privacy::erasure_request(&s.app, &ctx).await.unwrap();
        let mail = outbox_to(&s, email).await;
        let (_, body) = mail
            .iter()
            .find(|(subj, _)| subj.contains("effacement"))
            .expect("code sent");
        let code = body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 10 && l.chars().all(|c| c.is_ascii_alphanumeric()))
            .expect("a code line")
            .to_string();
        assert!(matches!(
            privacy::erasure_confirm(&s.app, &ctx, &code, "someone@example.fr").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            privacy::erasure_confirm(&s.app, &ctx, "WRONGCODE1", email).await,
            Err(Error::Invalid(_))
        ));
        s.run_jobs().await;
        privacy::erasure_confirm(&s.app, &ctx, &code, email)
            .await
            .unwrap();
        s.run_jobs().await;

        // Nothing left: not in any file of the data dir (SQLite, its WAL, the Maildir, the
        // intake, the exports), not in any PostgreSQL column.
        let needles = [email, "Alex Durand", iban];
        let files = files_containing(s.data.path(), &needles);
        assert!(files.is_empty(), "personal data left in files: {files:?}");
        if s.db == Db::Postgres {
            let cols = pg_columns_containing(&s.database_url, &needles);
            assert!(cols.is_empty(), "personal data left in columns: {cols:?}");
        }

        // Their old credentials are dead (checked last: a sign-in attempt records the address typed).
        let (st, _) = s.get("/api/v1/me", Some(&a.token)).await;
        assert_eq!(st, reqwest::StatusCode::UNAUTHORIZED);
        let (st, _) = s
            .post(
                "/api/v1/tokens",
                None,
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::UNAUTHORIZED);

        // The invoices remain, for the billing role, with the buyer of their day.
        let (st, docs) = s
            .get(
                &format!("/api/v1/invoices?subscriber_id={}", a.id),
                Some(&billing.token),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::OK, "{docs}");
        let items = docs["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(
            items.iter().any(|d| d.to_string().contains("Alex Durand")),
            "{docs}"
        );
        if let Some(id) = invoice_id {
            let (st, pdf) = s
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/invoices/{id}"),
                    Some(&support.token),
                    None,
                )
                .await;
            assert_eq!(st, reqwest::StatusCode::FORBIDDEN, "{pdf}");
        }
    }
);

both_dbs!(
    rectification_leaves_issued_invoices_as_they_were,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "fix", "Fix", 900, 0).await;
        let a = s.subscriber("rectify@example.fr").await;
        let sub = crate::billing::subscribe(&s, &a.token, &offer).await;
        let invoice = sub["invoice"]["id"]
            .as_str()
            .expect("an invoice for the rest of the month")
            .to_string();
        let input = maocloud_app::accounts::ProfileInput {
            full_name: "Alexandra Durand-Martin".into(),
            customer_kind: "consumer".into(),
            address_line1: "5 place Bellecour".into(),
            postal_code: "69002".into(),
            city: "Lyon".into(),
            country: "FR".into(),
            ..Default::default()
        };
        // Bad input changes nothing.
        let mut bad = input.clone();
        bad.customer_kind = "professional".into();
        bad.postal_code = "6900".into();
        let Err(Error::Invalid(fields)) =
            maocloud_app::accounts::profile_update(&s.app, &me(&a), &bad).await
        else {
            panic!("refused")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert!(
            names.contains(&"company_id") && names.contains(&"postal_code"),
            "{names:?}"
        );
        let p = maocloud_app::accounts::profile_update(&s.app, &me(&a), &input)
            .await
            .unwrap();
        assert_eq!(
            (p.full_name.as_str(), p.city.as_str()),
            ("Alexandra Durand-Martin", "Lyon")
        );
        let (_, who) = s.get("/api/v1/me", Some(&a.token)).await;
        assert!(who.to_string().contains("Alexandra Durand-Martin"), "{who}");
        // The invoice keeps the buyer of its day.
        let (st, inv) = s
            .get(&format!("/api/v1/invoices/{invoice}"), Some(&a.token))
            .await;
        assert_eq!(st, reqwest::StatusCode::OK, "{inv}");
        assert_eq!(inv["buyer"]["name"], "Alex Durand", "{inv}");
        assert_eq!(inv["buyer"]["city"], "Paris");
    }
);

both_dbs!(
    the_audit_trail_is_append_only_in_the_database,
    |s: TestServer| async move {
        let a = s.subscriber("audited@example.fr").await;
        privacy::set_choice(&s.app, &me(&a), "objection", true, None, "api")
            .await
            .unwrap();
        // Even someone with the database's own client cannot rewrite or delete an entry.
        for sql in [
            "UPDATE audit_log SET action = 'forged'",
            "DELETE FROM audit_log",
        ] {
            let out = match s.db {
                Db::Sqlite => std::process::Command::new("sqlite3")
                    .arg(s.data.path().join("maocloud.db"))
                    .arg(sql)
                    .output(),
                Db::Postgres => std::process::Command::new("psql")
                    .args([s.database_url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", sql])
                    .output(),
            }
            .expect("the database client runs");
            assert!(!out.status.success(), "{sql} must fail");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("append-only"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let entries = {
            let mut tx = s.app.db().read().await.unwrap();
            tx.audit_list(None, &PageRequest::first(50)).await.unwrap()
        };
        assert!(entries.iter().any(|e| e.action == "privacy.objection"));
        assert!(entries.iter().all(|e| e.action != "forged"));
    }
);

both_dbs!(
    totp_secrets_are_sealed_at_rest,
    |s: TestServer| async move {
        // The operator signs in with TOTP (the harness does): the sealed secret still verifies…
        let op = s
            .operator("sealed@maocloud.test", OperatorRole::Support)
            .await;
        // …and is nowhere in clear: not in the database's files, not in any PostgreSQL column.
        let secret = op.totp_secret.as_str();
        assert!(files_containing(s.data.path(), &[secret]).is_empty());
        if s.db == Db::Postgres {
            assert!(pg_columns_containing(&s.database_url, &[secret]).is_empty());
        }
        let code = s.totp_code(secret);
        let token = s.sign_in(&op.email, PASSWORD, Some(&code)).await;
        assert!(!token.is_empty());
    }
);

both_dbs!(
    retention_erases_three_years_after_the_contract,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "old", "Old", 700, 0).await;
        let gone = s.subscriber("former@example.fr").await;
        let staying = s.subscriber("current@example.fr").await;
        let sub = crate::billing::subscribe(&s, &gone.token, &offer).await;
        crate::billing::subscribe(&s, &staying.token, &offer).await;
        let sub_id = sub["subscription"]["id"].as_str().unwrap().to_string();
        let (st, v) = s
            .post(
                &format!("/api/v1/subscriptions/{sub_id}/termination"),
                Some(&gone.token),
                serde_json::json!({"end": "date", "date": "2026-11-26"}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
        // The contract ends with tomorrow's sweep; three years later, to the day, it is erased.
        s.clock.advance(jiff::SignedDuration::from_hours(24));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        let ended_at = s.app.now();
        s.clock.set(
            ended_at + jiff::SignedDuration::from_hours(24 * 1095)
                - jiff::SignedDuration::from_hours(1),
        );
        let r = maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        assert_eq!(r.retention_erased, 0, "not yet");
        s.clock
            .set(ended_at + jiff::SignedDuration::from_hours(24 * 1096));
        let r = maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        assert_eq!(r.retention_erased, 1);
        let mut tx = s.app.db().read().await.unwrap();
        let former = tx.account_fetch(gone.id.parse().unwrap()).await.unwrap();
        assert!(
            former.email.ends_with("@erased.invalid"),
            "{}",
            former.email
        );
        assert!(former.disabled_at.is_some());
        let current = tx.account_fetch(staying.id.parse().unwrap()).await.unwrap();
        assert_eq!(
            current.email, "current@example.fr",
            "an active contract keeps its data"
        );
        drop(tx);
        // Once is enough: the next sweep has nobody left to erase.
        let r = maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        assert_eq!(r.retention_erased, 0);
    }
);
