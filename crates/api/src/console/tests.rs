//! Every template rendered in both languages with sample data: no missing catalog key, no
//! unfilled placeholder, everything escaped, errors tied to their fields.

use super::view::when;
use super::visitor::Visitor;
use axum::http::{Request, StatusCode};
use maocloud_app::i18n::Lang;
use minijinja::{context, Value};

fn visitor(lang: &str) -> Visitor {
    let (parts, _) = Request::builder()
        .uri("/somewhere?x=1")
        .header("accept-language", lang)
        .header(
            "cookie",
            "maocloud_csrf=0123456789abcdef0123456789abcdef0123456789a",
        )
        .body(())
        .unwrap()
        .into_parts();
    Visitor::from_parts(&parts, true, true)
}

async fn body(r: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn now() -> maocloud_types::Timestamp {
    "2026-02-03T10:20:00Z".parse().unwrap()
}

fn operator() -> Value {
    context! { name => "Ada <Admin>", email => "ada@example.test", is_operator => true, is_admin => true, role => "admin" }
}

fn subscriber() -> Value {
    context! { name => "Camille", email => "c@example.test", is_operator => false, is_admin => false, role => "" }
}

fn profile() -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000001",
        customer_kind => "professional",
        full_name => "Camille <b>Martin</b>",
        company_name => "ACME",
        company_id => "732829320",
        vat_number => "FR44732829320",
        address_line1 => "3 rue des Alouettes",
        address_line2 => Value::from(()),
        postal_code => "80120",
        city => "Quend",
        country => "FR",
        phone => Value::from(()),
        status => "active",
        created_at => when(now()),
    }
}

fn account() -> Value {
    context! { email => "c@example.test", verified => false, verified_at => Value::from(()), totp_enabled => false, locale => "fr" }
}

fn offer() -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000010", code => "s", name => "Small <b>Martin</b>", description => "A small cloud",
        monthly_price => 123_456, monthly_vat => 24_691, monthly_price_incl => 148_147, vat_rate_bp => 550,
        includes => context! { vcpus => 2, ram_mib => 4096, disk_gib => 50, vms => 1, storage_gb => 100, egress_gb => 1000, public_ips => 1 },
        storage_gb_month => 2, egress_gb => 1, public_ip_month => 300, commitment_months => 12, multiple_allowed => false,
        active => true, created_at => when(now()), retired_at => Value::from(()),
    }
}

fn subscription() -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000020", offer_id => "0190f0f0-0000-7000-8000-000000000010", offer_name => "Small",
        monthly_price => 3000, vat_rate_bp => 2000, status => "active", start_date => "2026-11-26",
        commitment_end => "2027-11-25", billed_until => "2026-11-30",
    }
}

fn document_row() -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000030", kind => "invoice", number => "F2026-000001", issue_date => "2026-11-26",
        due_date => "2026-12-26", total_excl => 500, total_vat => 100, total_incl => 600,
        url => "/account/invoices/x", pdf_url => "/account/invoices/x/pdf", vat_rates => vec![2000, 550],
    }
}

fn document() -> Value {
    let party = context! { name => "Camille", company_name => "ACME", address_line1 => "3 rue", address_line2 => Value::from(()), postal_code => "80120", city => "Quend", country => "FR", company_id => "732829320", vat_number => "FR44732829320" };
    context! {
        id => "0190f0f0-0000-7000-8000-000000000030", kind => "invoice", number => "F2026-000001", issue_date => "2026-11-26",
        due_date => "2026-12-26", total_excl => 500, total_vat => 100, total_incl => 600,
        url => "/account/invoices/x", pdf_url => "/account/invoices/x/pdf", vat_rates => vec![2000],
        subscriber_id => "s1", seller => party.clone(), buyer => party, note => "Avoir <i>",
        lines => vec![context! { description => "Abonnement Small", period_start => "2026-11-26", period_end => "2026-11-30", quantity_milli => 167, unit_price => 3000, amount => 500, vat_rate_bp => 2000 }],
        vat => vec![context! { rate_bp => 2000, base => 500, vat => 100 }],
    }
}

fn balance() -> Value {
    context! {
        due => 600,
        open => vec![context! { invoice_id => "i1", number => "F2026-000001", due_date => "2026-12-26", total_incl => 600, paid => 0, credited => 0, remaining => 600 }],
        payments => vec![context! { amount => 100, method => "bank_transfer", reference => "VIR 1", received_on => "2026-11-20", recorded_by => "operator:x" }],
    }
}

/// Every template with the context a handler gives it.
fn samples() -> Vec<(&'static str, Value)> {
    let msg = context! { id => "0190f0f0-0000-7000-8000-000000000002", subject => "Bienvenue", created_at => when(now()), read => false };
    let token = context! {
        id => "0190f0f0-0000-7000-8000-000000000003", name => "ci", prefix => "mc_abcd",
        created_at => when(now()), expires_at => when(now()), last_used_at => Value::from(()), revoked => false, expired => false,
    };
    vec![
        ("landing.html", context! {}),
        (
            "terms.html",
            context! { terms => context! { title => "CGV", version => "2026-01" }, body_html => super::view::terms_html("## A\n\ntext") },
        ),
        (
            "signup.html",
            context! {
                form => context! { email => "x@example.test", country => "FR", customer_kind => "consumer" },
                terms_version => "2026-01",
                kinds => vec![context! { value => "consumer", label => "C" }, context! { value => "professional", label => "P" }],
            },
        ),
        (
            "signin.html",
            context! { form => context! { email => "", next => "/account" } },
        ),
        (
            "signin_totp.html",
            context! { form => context! { next => "" } },
        ),
        (
            "forgot_password.html",
            context! { form => context! { email => "" } },
        ),
        (
            "forgot_password.html",
            context! { sent => true, form => context! { email => "" } },
        ),
        (
            "reset_password.html",
            context! { form => context! { token => "mo_x" } },
        ),
        (
            "reset_password.html",
            context! { form => context! { token => "mo_x" }, bad_link => true },
        ),
        ("verify_email.html", context! { ok => true }),
        ("verify_email.html", context! { ok => false }),
        (
            "status.html",
            context! { code => 404, title => "T", message => "M", show_signin => true },
        ),
        (
            "account/home.html",
            context! { user => subscriber(), account => account(), profile => profile(), unread => 3, messages => vec![msg.clone()] },
        ),
        (
            "account/messages.html",
            context! { user => subscriber(), messages => vec![msg.clone()], next_url => "/account/messages?cursor=x" },
        ),
        (
            "account/messages.html",
            context! { user => subscriber(), messages => Vec::<Value>::new() },
        ),
        (
            "account/message.html",
            context! { user => subscriber(), message => msg, body_html => super::view::linkify("Hello https://x.test/a") },
        ),
        (
            "account/tokens.html",
            context! {
                user => subscriber(), tokens => vec![token], form => context! { name => "", expires_in_days => "" },
                default_days => 90, created => context! { name => "ci", token => "mc_secret" },
            },
        ),
        (
            "account/tokens.html",
            context! { user => operator(), tokens => Vec::<Value>::new(), form => context! {}, default_days => 90 },
        ),
        (
            "account/security.html",
            context! { user => subscriber(), totp_enabled => false },
        ),
        (
            "account/security.html",
            context! { user => subscriber(), totp_enabled => false, pending => context! { secret => "ABC", uri => "otpauth://totp/x" } },
        ),
        (
            "account/security.html",
            context! { user => subscriber(), totp_enabled => true, alert => "no" },
        ),
        ("admin/home.html", context! { user => operator() }),
        (
            "admin/subscribers.html",
            context! {
                user => operator(), q => "cam",
                subscribers => vec![context! { id => "s1", email => "c@example.test", full_name => "Camille", customer_kind => "consumer", company_name => Value::from(()), status => "active", email_verified => true, created_at => when(now()) }],
                next_url => "/admin/subscribers?cursor=x",
            },
        ),
        (
            "admin/subscriber.html",
            context! {
                user => operator(), account => account(), profile => profile(),
                terms => vec![context! { version => "2026-01", accepted_at => when(now()), source => "signup ip=1.2.3.4" }],
            },
        ),
        (
            "pricelist.html",
            context! { offers => vec![offer()], can_subscribe => true },
        ),
        (
            "pricelist.html",
            context! { offers => vec![offer()], alert => "no" },
        ),
        (
            "pricelist.html",
            context! { user => operator(), offers => Vec::<Value>::new() },
        ),
        (
            "account/subscription.html",
            context! {
                user => subscriber(), subscriptions => vec![subscription()], offers => vec![offer(), context! { id => "0190f0f0-0000-7000-8000-000000000011", ..offer() }],
                quotas => context! { vcpus => 2, ram_mib => 4096, disk_gib => 50, vms => 1, storage_gb => 100, egress_gb => 1000, public_ips => 1 },
                refused_id => "0190f0f0-0000-7000-8000-000000000020", alert => "Refusé <i>",
            },
        ),
        (
            "account/subscription.html",
            context! { user => subscriber(), subscriptions => vec![subscription()], offers => Vec::<Value>::new(), quotas => context! {} },
        ),
        (
            "account/invoices.html",
            context! {
                user => subscriber(), invoices => vec![document_row()], credit_notes => vec![document_row()],
                balance => balance(), delivery => "paper", chosen => "paper", next_url => "/account/invoices?cursor=x",
            },
        ),
        (
            "account/invoices.html",
            context! {
                user => subscriber(), invoices => Vec::<Value>::new(), credit_notes => Vec::<Value>::new(),
                balance => context! { due => 0, open => Vec::<Value>::new(), payments => Vec::<Value>::new() },
                delivery => "electronic", chosen => "electronic",
                errors => context! { invoice_delivery => "no" },
                error_list => vec![context! { field => "invoice_delivery", reason => "no" }],
            },
        ),
        (
            "account/document.html",
            context! { user => subscriber(), doc => document(), back_url => "/account/invoices" },
        ),
        (
            "account/document.html",
            context! { user => operator(), doc => document(), back_url => "/admin/subscribers/x" },
        ),
        (
            "admin/offers.html",
            context! {
                user => operator(), offers => vec![offer()],
                form => context! { offer_code => "s", name => "S", description => "", monthly_price => "29.999", vat_rate_bp => "550", commitment_months => "12", multiple_allowed => "1" },
                errors => context! { monthly_price => "too many" },
                error_list => vec![context! { field => "monthly_price", reason => "too many" }],
            },
        ),
        (
            "admin/billing.html",
            context! {
                user => operator(), invoice_count => 3, credit_note_count => 1, include_mailed => false,
                queue => vec![context! { invoice_id => "i1", url => "/account/invoices/i1", number => "F2026-000001", subscriber_id => "s1", queued_at => when(now()), mailed_at => Value::from(()) }],
                form => context! { on => "2026-12-01" },
                report => context! { on => "2026-12-01", invoices_issued => 2, subscriptions_billed => 3, skipped => 0 },
            },
        ),
        (
            "admin/billing.html",
            context! { user => operator(), invoice_count => 0, credit_note_count => 0, include_mailed => true, queue => Vec::<Value>::new(), form => context! { on => "" } },
        ),
        (
            "admin/subscriber.html",
            context! {
                user => operator(), account => account(), profile => profile(), terms => Vec::<Value>::new(),
                billing => context! {
                    subscriptions => vec![subscription()],
                    invoices => vec![document_row()],
                    credit_notes => vec![document_row()],
                    balance => balance(),
                },
                payment_form => context! { amount => "12", method => "manual", reference => "", received_on => "2026-11-26", invoice_id => "" },
                credit_form => context! { invoice_id => "0190f0f0-0000-7000-8000-000000000030", amount => "999", reason => "r" },
                credit_errors => vec![context! { field => "amount", reason => "too much" }],
            },
        ),
        (
            "admin/audit.html",
            context! {
                user => operator(), subscriber => "s1",
                entries => vec![context! { at => when(now()), actor => "operator:x", action => "subscriber.read", target => "s1", subscriber_id => "s1", detail => "{\"ip\":\"1\"}" }],
            },
        ),
        (
            "admin/outbox.html",
            context! {
                user => operator(),
                emails => vec![context! { to => "c@example.test", subject => "S", body => "B <i>", state => "sent", attempts => 1, transport => "maildir", last_error => Value::from(()), created_at => when(now()), sent_at => when(now()) }],
            },
        ),
    ]
}

#[tokio::test]
async fn every_template_renders_in_both_languages_without_missing_keys() {
    for lang in ["fr", "en"] {
        for (name, ctx) in samples() {
            let v = visitor(lang);
            let r = v.page(StatusCode::OK, name, ctx);
            assert_eq!(r.status(), StatusCode::OK, "{name} in {lang}");
            let html = body(r).await;
            assert!(
                html.contains(&format!("<html lang=\"{lang}\">")),
                "{name} in {lang}"
            );
            assert!(
                !html.contains("console."),
                "{name} in {lang} has a missing key: {}",
                around(&html, "console.")
            );
            for placeholder in [
                "{name}",
                "{version}",
                "{count}",
                "{days}",
                "{code}",
                "{field}",
                "{reason}",
                "{role}",
                "{to}",
                "{amount}",
                "{rate}",
                "{months}",
                "{n}",
                "{choice}",
                "{start}",
                "{end}",
                "{on}",
                "{number}",
                "{vat}",
                "{invoices}",
                "{issued}",
            ] {
                assert!(
                    !html.contains(placeholder),
                    "{name} in {lang} has an unfilled {placeholder}"
                );
            }
            assert!(
                !html.contains("<b>Martin</b>")
                    && !html.contains("<i>")
                    && !html.contains("<Admin>"),
                "{name} in {lang} is not escaped"
            );
            assert!(
                html.contains("href=\"#main\"") && html.contains("id=\"main\""),
                "{name}: skip link"
            );
            if name == "account/subscription.html" && html.contains("Refus") {
                assert!(
                    html.contains("change-error-0190f0f0-0000-7000-8000-000000000020")
                        && html.contains("value=\"0190f0f0-0000-7000-8000-000000000011\"")
                        && !html.contains("value=\"0190f0f0-0000-7000-8000-000000000010\""),
                    "{name} in {lang}: the refusal is next to its form, the current offer is not offered"
                );
            }
            if name == "account/document.html" {
                let amount = if lang == "fr" {
                    "5,00\u{a0}€"
                } else {
                    "€5.00"
                };
                assert!(
                    html.contains(amount),
                    "{name} in {lang}: amounts are formatted"
                );
                let qty = if lang == "fr" { "0,167" } else { "0.167" };
                assert!(html.contains(qty), "{name} in {lang}: quantities");
            }
            if name == "pricelist.html" && html.contains("offer-list") {
                let price = if lang == "fr" {
                    "1\u{a0}234,56\u{a0}€"
                } else {
                    "€1,234.56"
                };
                assert!(
                    html.contains(price),
                    "{name} in {lang}: {}",
                    around(&html, "price")
                );
                assert!(
                    html.contains("Les factures sont mensuelles")
                        || html.contains("Invoices are monthly"),
                    "{name} in {lang}: the billing terms are shown"
                );
            }
            if name == "terms.html" {
                assert!(html.contains("<h2>A</h2>"), "the terms text is shown");
            }
            if name == "account/message.html" {
                assert!(
                    html.contains("Hello <a href=\"https://x.test/a\""),
                    "the message body is shown, its link usable"
                );
            }
        }
    }
}

fn around<'a>(s: &'a str, what: &str) -> &'a str {
    let i = s.find(what).unwrap_or(0);
    let start = s[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
    let end = s[i..]
        .char_indices()
        .nth(60)
        .map_or(s.len(), |(j, _)| i + j);
    &s[start..end]
}

#[tokio::test]
async fn field_errors_are_tied_to_their_fields_and_summarised() {
    let v = visitor("fr");
    let e = maocloud_app::Error::Invalid(vec![
        maocloud_app::FieldError {
            field: "email".into(),
            reason: "is not an email address".into(),
        },
        maocloud_app::FieldError {
            field: "accept_terms_version".into(),
            reason: "must be the current terms version, which you must accept".into(),
        },
    ]);
    let errors = super::forms::FieldErrors::of(Lang::Fr, &e).unwrap();
    let ctx = context! {
        form => context! { email => "nope", country => "FR" },
        terms_version => "2026-01",
        kinds => Vec::<Value>::new(),
    };
    let html = body(v.page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "signup.html",
        super::public::with_errors(ctx, Some(errors)),
    ))
    .await;
    assert!(html.contains("class=\"error-summary\""));
    assert!(html.contains("<a href=\"#field-email\">Adresse e-mail : n&#x27;est pas une adresse e-mail valide</a>"), "{}", around(&html, "#field-email"));
    assert!(html.contains("<a href=\"#field-accept_terms_version\">"));
    assert!(html.contains("id=\"email-error\""));
    let input = &html[html.find("id=\"field-email\"").unwrap()..];
    let input = &input[..input.find('>').unwrap()];
    assert!(
        input.contains("aria-invalid=\"true\"")
            && input.contains("aria-describedby=\"email-error\""),
        "{input}"
    );
    assert!(input.contains("value=\"nope\""));
    assert!(
        !input.contains("autofocus"),
        "the field must not steal focus from the summary"
    );
    let pw = &html[html.find("id=\"field-password\"").unwrap()..];
    assert!(
        !pw[..pw.find('>').unwrap()].contains("value="),
        "a password is never sent back"
    );
}

#[tokio::test]
async fn the_language_follows_the_cookie_then_accept_language() {
    let html =
        body(visitor("en-GB,en;q=0.9").page(StatusCode::OK, "landing.html", context! {})).await;
    assert!(html.contains("Create an account"));
    let (parts, _) = Request::builder()
        .uri("/")
        .header("accept-language", "en")
        .header("cookie", "lang=fr")
        .body(())
        .unwrap()
        .into_parts();
    let v = Visitor::from_parts(&parts, true, true);
    let html = body(v.page(StatusCode::OK, "landing.html", context! {})).await;
    assert!(html.contains("Créer un compte"));
}

#[tokio::test]
async fn a_fresh_visitor_gets_a_strict_csrf_cookie() {
    let (parts, _) = Request::builder()
        .uri("/signin")
        .body(())
        .unwrap()
        .into_parts();
    let v = Visitor::from_parts(&parts, true, true);
    let r = v.page(StatusCode::OK, "landing.html", context! {});
    let set: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .collect();
    let csrf = set
        .iter()
        .find(|c| c.starts_with("maocloud_csrf="))
        .expect("a csrf cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(csrf.contains(attr), "{csrf} lacks {attr}");
    }
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    // The same token is in the page's pre-session forms, and nothing is accepted without it.
    let token = csrf
        .trim_start_matches("maocloud_csrf=")
        .split(';')
        .next()
        .unwrap();
    assert!(body(r).await.contains(token));
    assert!(
        v.check_anon_csrf(token).is_err(),
        "the browser has not sent the cookie yet"
    );
}

/// The console through the whole HTTP application (middleware included) on a fresh SQLite
/// database: cookies, CSRF, redirects, roles, the TOTP step, throttling.
mod http {
    use crate::{app, metrics::Metrics, AppState};
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::Router;
    use maocloud_app::{accounts, auth, App, Ctx, Settings};
    use maocloud_types::{FixedClock, OperatorRole, Principal};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use tower::ServiceExt;

    const PASSWORD: &str = "Correct-Horse-Battery-9";

    struct Site {
        router: Router,
        app: App,
        clock: FixedClock,
        _dir: tempfile::TempDir,
    }

    async fn site() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let db = maocloud_datastore::Datastore::connect(&format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .await
        .unwrap();
        let clock = FixedClock::new("2026-11-26T09:00:00Z".parse().unwrap());
        let mailer = maocloud_mail::MaildirMailer::new(
            dir.path().join("maildir"),
            "Maocloud <no-reply@maocloud.localhost>",
        )
        .unwrap();
        let app = App::new(
            db,
            Arc::new(clock.clone()),
            Arc::new(mailer),
            Settings::new(dir.path().to_path_buf()),
        );
        app.bootstrap().await.unwrap();
        let router = app_router(&app);
        Site {
            router,
            app,
            clock,
            _dir: dir,
        }
    }

    fn app_router(a: &App) -> Router {
        app(AppState {
            app: a.clone(),
            metrics: Arc::new(Metrics::default()),
            metrics_token: None,
        })
    }

    /// A browser: a cookie jar and the last response.
    struct Browser<'a> {
        site: &'a Site,
        cookies: BTreeMap<String, String>,
        accept_language: &'static str,
    }

    struct Page {
        status: StatusCode,
        location: String,
        set_cookies: Vec<String>,
        html: String,
    }

    impl Page {
        /// The value of the first hidden `csrf` field.
        fn csrf(&self) -> String {
            let at = self
                .html
                .find("name=\"csrf\" value=\"")
                .expect("a csrf field")
                + "name=\"csrf\" value=\"".len();
            self.html[at..].split('"').next().unwrap().to_string()
        }
    }

    impl<'a> Browser<'a> {
        fn new(site: &'a Site) -> Self {
            Browser {
                site,
                cookies: BTreeMap::new(),
                accept_language: "fr-FR,fr;q=0.9",
            }
        }

        async fn send(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Page {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::ACCEPT_LANGUAGE, self.accept_language);
            if !cookie.is_empty() {
                req = req.header(header::COOKIE, cookie);
            }
            let body = if method == "POST" {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in form {
                    s.append_pair(k, v);
                }
                Body::from(s.finish())
            } else {
                Body::empty()
            };
            let resp = self
                .site
                .router
                .clone()
                .oneshot(req.body(body).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let location = resp
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let set_cookies: Vec<String> = resp
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            for c in &set_cookies {
                let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
                let (name, value) = pair.split_once('=').unwrap();
                if attrs.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            Page {
                status,
                location,
                set_cookies,
                html: String::from_utf8_lossy(&bytes).into_owned(),
            }
        }

        async fn get(&mut self, path: &str) -> Page {
            self.send("GET", path, &[]).await
        }

        async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
            self.send("POST", path, form).await
        }
    }

    fn signup_form<'a>(csrf: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("csrf", csrf),
            ("email", email),
            ("password", PASSWORD),
            ("full_name", "Alex Durand"),
            ("customer_kind", "consumer"),
            ("company_name", ""),
            ("company_id", ""),
            ("vat_number", ""),
            ("address_line1", "12 rue de la Paix"),
            ("address_line2", ""),
            ("postal_code", "75002"),
            ("city", "Paris"),
            ("country", "FR"),
            ("phone", ""),
            ("accept_terms_version", maocloud_app::terms::SHIPPED_VERSION),
        ]
    }

    #[tokio::test]
    async fn signup_sessions_csrf_and_roles() {
        let site = site().await;
        let mut b = Browser::new(&site);

        // The form hands out a double-submit token; a POST without it changes nothing.
        let form = b.get("/signup").await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.html.contains("Créer un compte"));
        let csrf = form.csrf();
        let mut stranger = Browser::new(&site);
        let refused = stranger
            .post("/signup", &signup_form(&csrf, "alex@example.test"))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "no cookie, no sign-up"
        );
        assert!(refused.html.contains("rien n&#x27;a été modifié"));
        let refused = b
            .post("/signup", &signup_form("forged", "alex@example.test"))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "a token that is not the cookie's"
        );

        // Errors come back by field, values kept, password not.
        let mut bad = signup_form(&csrf, "not-an-email");
        bad.retain(|(k, _)| *k != "accept_terms_version");
        let page = b.post("/signup", &bad).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.html.contains("href=\"#field-email\"")
                && page.html.contains("href=\"#field-accept_terms_version\"")
        );
        assert!(page.html.contains("value=\"not-an-email\"") && !page.html.contains(PASSWORD));

        // A good sign-up opens a session with the right cookie and lands in the area.
        let done = b
            .post("/signup", &signup_form(&csrf, "alex@example.test"))
            .await;
        assert_eq!(
            (done.status, done.location.as_str()),
            (StatusCode::SEE_OTHER, "/account")
        );
        let session = done
            .set_cookies
            .iter()
            .find(|c| c.starts_with("maocloud_session="))
            .expect("a session cookie");
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=43200",
        ] {
            assert!(session.contains(attr), "{session} lacks {attr}");
        }
        let area = b.get("/account").await;
        assert_eq!(area.status, StatusCode::OK);
        assert!(area.html.contains("Alex Durand") && area.html.contains("Non vérifiée"));
        assert!(
            area.html.contains("e-mail de confirmation"),
            "the notice is shown once"
        );
        assert!(
            !b.get("/account")
                .await
                .html
                .contains("e-mail de confirmation"),
            "…and only once"
        );

        // Subscribers get a 403 page in the back office; signed-in forms need the session token.
        assert_eq!(b.get("/admin").await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            b.post("/account/tokens", &[("csrf", &csrf), ("name", "ci")])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let session_csrf = area.csrf();
        let created = b
            .post(
                "/account/tokens",
                &[("csrf", &session_csrf), ("name", "ci")],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert!(
            created.html.contains("value=\"mc_"),
            "the secret is shown once"
        );
        assert!(!b.get("/account/tokens").await.html.contains("value=\"mc_"));

        // Language: English sticks, for this account too.
        let en = b
            .post(
                "/lang",
                &[
                    ("csrf", &session_csrf),
                    ("lang", "en"),
                    ("next", "//evil.example"),
                ],
            )
            .await;
        assert_eq!(
            (en.status, en.location.as_str()),
            (StatusCode::SEE_OTHER, "/"),
            "only local paths are followed"
        );
        assert!(b.get("/account").await.html.contains("My account"));

        // Sign out: the old cookie is dead even if replayed.
        let old = b.cookies["maocloud_session"].clone();
        let out = b.post("/signout", &[("csrf", &session_csrf)]).await;
        assert_eq!(
            (out.status, out.location.as_str()),
            (StatusCode::SEE_OTHER, "/")
        );
        b.cookies.insert("maocloud_session".into(), old);
        let again = b.get("/account/tokens").await;
        assert_eq!(
            (again.status, again.location.as_str()),
            (StatusCode::SEE_OTHER, "/signin?next=%2Faccount%2Ftokens")
        );

        // Sign in, back to where the visitor was going (local paths only).
        let signin = b.get("/signin?next=/account/tokens").await;
        let csrf = signin.csrf();
        let page = b
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", "alex@example.test"),
                    ("password", PASSWORD),
                    ("next", "/account/tokens"),
                ],
            )
            .await;
        assert_eq!(page.location, "/account/tokens");
        let page = b
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", "alex@example.test"),
                    ("password", PASSWORD),
                    ("next", "https://evil.example/"),
                ],
            )
            .await;
        assert_eq!(page.location, "/account");
        assert_eq!(
            b.get("/").await.location,
            "/account",
            "signed-in visitors skip the landing page"
        );
    }

    #[tokio::test]
    async fn sign_in_is_throttled_and_says_so() {
        let site = site().await;
        let mut b = Browser::new(&site);
        let csrf = b.get("/signin").await.csrf();
        let mut last = None;
        for _ in 0..6 {
            last = Some(
                b.post(
                    "/signin",
                    &[
                        ("csrf", &csrf),
                        ("email", "nobody@example.test"),
                        ("password", "wrong-password-1"),
                    ],
                )
                .await,
            );
        }
        let last = last.unwrap();
        assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            last.html.contains("Trop de tentatives") && last.html.contains("15 minutes"),
            "{}",
            last.html
        );
    }

    #[tokio::test]
    async fn operators_pass_the_totp_step_then_reach_the_back_office() {
        let site = site().await;
        let op = accounts::operator_create(
            &site.app,
            &Ctx {
                principal: Principal::System,
                ip: "test".into(),
            },
            "ops@example.test",
            OperatorRole::Admin,
            PASSWORD,
            "Ops",
            true,
        )
        .await
        .unwrap();
        let mut sub = Browser::new(&site);
        let csrf = sub.get("/signup").await.csrf();
        assert_eq!(
            sub.post("/signup", &signup_form(&csrf, "camille@example.test"))
                .await
                .status,
            StatusCode::SEE_OTHER
        );

        let mut b = Browser::new(&site);
        b.accept_language = "en-GB,en;q=0.9";
        let csrf = b.get("/signin?next=/admin/outbox").await.csrf();
        let step = b
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", "ops@example.test"),
                    ("password", PASSWORD),
                    ("next", "/admin/outbox"),
                ],
            )
            .await;
        assert_eq!(step.location, "/signin/totp?next=%2Fadmin%2Foutbox");
        // Half signed in: good for the TOTP step only.
        assert_eq!(b.get("/admin").await.location, "/signin/totp");
        assert_eq!(b.get("/account/security").await.location, "/signin/totp");
        let totp = b.get("/signin/totp?next=/admin/outbox").await;
        // The account's language (French) wins over the browser's until the visitor picks one.
        assert!(totp.html.contains("Validation en deux étapes"));
        let wrong = b
            .post(
                "/signin/totp",
                &[
                    ("csrf", &totp.csrf()),
                    ("totp", "000000"),
                    ("next", "/admin/outbox"),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.html.contains("n&#x27;est pas le code actuel"));
        let code = auth::totp_code(
            op.totp_secret.as_deref().unwrap(),
            maocloud_types::Clock::now(&site.clock),
        )
        .unwrap();
        let done = b
            .post(
                "/signin/totp",
                &[
                    ("csrf", &totp.csrf()),
                    ("totp", &code),
                    ("next", "/admin/outbox"),
                ],
            )
            .await;
        assert_eq!(done.location, "/admin/outbox");

        let outbox = b.get("/admin/outbox").await;
        assert_eq!(outbox.status, StatusCode::OK);
        assert!(
            outbox.html.contains("camille@example.test")
                && outbox.html.contains("verify-email?token=")
        );
        let list = b.get("/admin/subscribers?q=camille").await;
        assert!(list.html.contains("camille@example.test"));
        let href = list
            .html
            .find("href=\"/admin/subscribers/0")
            .map(|i| &list.html[i + 6..])
            .unwrap();
        let href = href.split('"').next().unwrap().to_string();
        let file = b.get(&href).await;
        assert_eq!(file.status, StatusCode::OK);
        assert!(
            file.html.contains(maocloud_app::terms::SHIPPED_VERSION)
                && file.html.contains("signup ip=")
        );
        let audit = b.get("/admin/audit").await;
        assert!(audit.html.contains("subscriber.read") && audit.html.contains("subscriber.list"));
    }

    /// An operator signed in through the console (password, then TOTP).
    async fn operator_browser<'a>(site: &'a Site, email: &str, role: OperatorRole) -> Browser<'a> {
        let op = accounts::operator_create(
            &site.app,
            &Ctx {
                principal: Principal::System,
                ip: "test".into(),
            },
            email,
            role,
            PASSWORD,
            "Ops",
            true,
        )
        .await
        .unwrap();
        let mut b = Browser::new(site);
        let csrf = b.get("/signin").await.csrf();
        b.post(
            "/signin",
            &[("csrf", &csrf), ("email", email), ("password", PASSWORD)],
        )
        .await;
        let totp = b.get("/signin/totp").await;
        let code = auth::totp_code(
            op.totp_secret.as_deref().unwrap(),
            maocloud_types::Clock::now(&site.clock),
        )
        .unwrap();
        let done = b
            .post("/signin/totp", &[("csrf", &totp.csrf()), ("totp", &code)])
            .await;
        assert_eq!(done.location, "/admin");
        // Each code works once: the next operator signs in on the next step.
        site.clock.advance(jiff::SignedDuration::from_secs(30));
        b
    }

    #[tokio::test]
    async fn billing_pages_subscribe_change_deliver_and_back_office() {
        let site = site().await;
        // A billing operator creates two offers through the console form.
        let mut ops = operator_browser(&site, "billing@example.test", OperatorRole::Billing).await;
        let page = ops.get("/admin/offers").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = page.csrf();
        let offer = |code: &'static str, name: &'static str, price: &'static str| {
            vec![
                ("offer_code", code),
                ("name", name),
                ("description", "Un petit cloud"),
                ("monthly_price", price),
                ("vat_rate_bp", "2000"),
                ("vcpus", "2"),
                ("ram_mib", "4096"),
                ("price_storage_gb_month", "0,02"),
                ("price_egress_gb", "0.01"),
                ("price_public_ip_month", "3"),
                ("commitment_months", "0"),
            ]
        };
        let mut bad = offer("s", "Small", "29.999");
        bad.push(("csrf", &csrf));
        let refused = ops.post("/admin/offers", &bad).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.html.contains("href=\"#field-monthly_price\"")
                && refused.html.contains("plus de 2 décimales")
                && refused.html.contains("value=\"29.999\""),
            "{}",
            super::around(&refused.html, "error-summary")
        );
        for (code, name, price) in [("s", "Small", "30"), ("m", "Medium", "59,90")] {
            let mut form = offer(code, name, price);
            form.push(("csrf", &csrf));
            let done = ops.post("/admin/offers", &form).await;
            assert_eq!(
                (done.status, done.location.as_str()),
                (StatusCode::SEE_OTHER, "/admin/offers"),
                "{}",
                done.html
            );
        }
        let list = ops.get("/admin/offers").await;
        assert!(list.html.contains("59,90\u{a0}€") && list.html.contains("L&#x27;offre est créée"));

        // The public price list, without signing in: prices excl. and incl. VAT, the terms.
        let mut visitor = Browser::new(&site);
        let prices = visitor.get("/offers").await;
        assert_eq!(prices.status, StatusCode::OK);
        assert!(prices.html.contains("30,00\u{a0}€ HT par mois"));
        assert!(prices.html.contains("36,00\u{a0}€ TTC"));
        assert!(prices.html.contains("71,88\u{a0}€ TTC"), "59.90 + 20 %");
        assert!(prices.html.contains("Les factures sont mensuelles"));
        assert!(
            prices.html.contains("href=\"/signup\"")
                && !prices.html.contains("action=\"/account/subscriptions\"")
        );

        // A subscriber subscribes from the price list; a forged form changes nothing.
        let mut b = Browser::new(&site);
        let csrf = b.get("/signup").await.csrf();
        b.post("/signup", &signup_form(&csrf, "sam@example.test"))
            .await;
        let prices = b.get("/offers").await;
        let csrf = prices.csrf();
        let at = prices.html.find("name=\"offer_id\" value=\"").unwrap() + 23;
        let small = prices.html[at..].split('"').next().unwrap().to_string();
        let forged = b
            .post(
                "/account/subscriptions",
                &[("csrf", "forged"), ("offer_id", &small)],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF is checked");
        assert!(b
            .get("/account/subscription")
            .await
            .html
            .contains("Vous n&#x27;avez encore souscrit aucune offre"));
        let done = b
            .post(
                "/account/subscriptions",
                &[("csrf", &csrf), ("offer_id", &small)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        assert!(
            done.location.starts_with("/account/invoices/0"),
            "{}",
            done.location
        );
        let invoice = b.get(&done.location).await;
        assert_eq!(invoice.status, StatusCode::OK);
        assert!(invoice.html.contains("F2026-000001"));
        assert!(
            invoice.html.contains("id=\"total-excl\">5,00\u{a0}€"),
            "5 days of 30"
        );
        assert!(invoice.html.contains("id=\"total-incl\">6,00\u{a0}€"));
        assert!(invoice.html.contains("première facture"), "the notice");
        let pdf = b.get(&format!("{}/pdf", done.location)).await;
        assert_eq!(pdf.status, StatusCode::OK);
        assert!(pdf.html.starts_with("%PDF"));

        // Once only: the refusal is said on the price list.
        let again = b
            .post(
                "/account/subscriptions",
                &[("csrf", &csrf), ("offer_id", &small)],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.html.contains("role=\"alert\""));

        // The offer change: to the same offer is refused next to its form, to another done.
        let subs = b.get("/account/subscription").await;
        let at = subs.html.find("/account/subscriptions/").unwrap();
        let action = subs.html[at..].split('"').next().unwrap().to_string();
        let same = b
            .post(&action, &[("csrf", &csrf), ("offer_id", &small)])
            .await;
        assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            same.html.contains("class=\"alert\"") && same.html.contains("aria-invalid=\"true\"")
        );
        let at = same.html.find("<option value=\"").unwrap() + 15;
        let medium = same.html[at..].split('"').next().unwrap().to_string();
        let changed = b
            .post(&action, &[("csrf", &csrf), ("offer_id", &medium)])
            .await;
        assert_eq!(changed.location, "/account/subscription");
        let subs = b.get("/account/subscription").await;
        assert!(subs.html.contains("Medium") && subs.html.contains("sans frais"));

        // Invoices, balance, paper delivery.
        let list = b.get("/account/invoices").await;
        assert!(
            list.html.contains("F2026-000001") && list.html.contains("Reste à payer : 6,00\u{a0}€")
        );
        assert!(list.html.contains("Choix actuel : électronique"));
        let saved = b
            .post(
                "/account/invoices/delivery",
                &[("csrf", &csrf), ("invoice_delivery", "paper")],
            )
            .await;
        assert_eq!(saved.location, "/account/invoices");
        assert!(b
            .get("/account/invoices")
            .await
            .html
            .contains("Choix actuel : papier"));

        // A subscriber is not an operator; a support operator has no billing role.
        assert_eq!(b.get("/admin/offers").await.status, StatusCode::FORBIDDEN);
        assert_eq!(b.get("/admin/billing").await.status, StatusCode::FORBIDDEN);
        let mut support =
            operator_browser(&site, "support@example.test", OperatorRole::Support).await;
        assert_eq!(
            support.get("/admin/offers").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            support.get("/admin/billing").await.status,
            StatusCode::FORBIDDEN
        );

        // The back office: the subscriber's file, a payment, a credit note, the run, the queue.
        let file_list = ops.get("/admin/subscribers?q=sam").await;
        let at = file_list.html.find("href=\"/admin/subscribers/0").unwrap() + 6;
        let file = file_list.html[at..].split('"').next().unwrap().to_string();
        let page = ops.get(&file).await;
        assert!(page.html.contains("id=\"billing\"") && page.html.contains("F2026-000001"));
        let csrf = page.csrf();
        let too_much = ops
            .post(
                &format!("{file}/payments"),
                &[
                    ("csrf", &csrf),
                    ("amount", "7"),
                    ("method", "bank_transfer"),
                    ("reference", "VIR"),
                    ("received_on", "2026-11-26"),
                    ("invoice_id", ""),
                ],
            )
            .await;
        assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            too_much.html.contains("href=\"#field-amount\"")
                && too_much.html.contains("value=\"7\"")
        );
        let paid = ops
            .post(
                &format!("{file}/payments"),
                &[
                    ("csrf", &csrf),
                    ("amount", "1,50"),
                    ("method", "bank_transfer"),
                    ("reference", "VIR"),
                    ("received_on", "2026-11-26"),
                    ("invoice_id", ""),
                ],
            )
            .await;
        assert_eq!(paid.status, StatusCode::SEE_OTHER);
        let at = page.html.find("name=\"invoice_id\" value=\"").unwrap() + 25;
        let invoice_id = page.html[at..].split('"').next().unwrap().to_string();
        let credited = ops
            .post(
                &format!("{file}/credit-notes"),
                &[
                    ("csrf", &csrf),
                    ("invoice_id", &invoice_id),
                    ("amount", "1"),
                    ("reason", "Geste commercial"),
                ],
            )
            .await;
        assert_eq!(credited.status, StatusCode::SEE_OTHER, "{}", credited.html);
        let page = ops.get(&file).await;
        assert!(
            page.html.contains("A2026-000001") && page.html.contains("Reste à payer : 3,30\u{a0}€"),
            "6.00 - 1.50 - 1.20"
        );
        let run = ops
            .post(
                "/admin/billing/run",
                &[("csrf", &csrf), ("on", "2026-12-01")],
            )
            .await;
        assert_eq!(run.status, StatusCode::OK);
        assert!(
            run.html.contains("1 facture(s) émise(s)"),
            "{}",
            super::around(&run.html, "report")
        );
        assert!(
            run.html.contains("F2026-000002"),
            "paper: the new invoice is queued"
        );
        // The credit note, issued after the choice of paper, is in the queue too.
        assert!(run.html.contains("credit-notes&#x2f;") && run.html.contains(">A2026-000001<"));
        let mut queue = run;
        while let Some(at) = queue.html.find("/admin/billing/print-queue/") {
            let mailed = queue.html[at..].split('"').next().unwrap().to_string();
            assert_eq!(
                ops.post(&mailed, &[("csrf", &csrf)]).await.location,
                "/admin/billing"
            );
            queue = ops.get("/admin/billing").await;
        }
        assert!(
            queue.html.contains("Aucune facture à envoyer"),
            "{}",
            super::around(&queue.html, "queue-title")
        );
        assert!(ops
            .get("/admin/billing?all=1")
            .await
            .html
            .contains("F2026-000002"));
    }

    #[tokio::test]
    async fn not_found_and_static_files() {
        let site = site().await;
        let mut b = Browser::new(&site);
        b.accept_language = "en";
        let nf = b.get("/no/such/page").await;
        assert_eq!(nf.status, StatusCode::NOT_FOUND);
        assert!(nf.html.contains("Page not found"));
        let css = site
            .router
            .clone()
            .oneshot(Request::get("/static/app.css").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(
            css.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert!(css.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(b.get("/static/nope.js").await.status, StatusCode::NOT_FOUND);
        let api = b.get("/api/v1/nope").await;
        assert_eq!(api.status, StatusCode::NOT_FOUND);
        assert!(
            !api.html.contains("<html"),
            "API paths keep their problem+json 404"
        );
    }
}
