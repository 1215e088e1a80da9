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

fn suspension(status: &str, cause: &str) -> Value {
    context! {
        id => format!("su-{status}"), subscriber_id => "s1", cause => cause, reason => "Spam <i>", status => status,
        created_by => "operator:x", created_at => when(now()), started_at => when(now()),
        lifted_at => Value::from(()), lifted_by => Value::from(()), lift_reason => Value::from(()),
        lifts => "Un opérateur la lève",
    }
}

fn proof(status: &str) -> Value {
    context! {
        id => format!("p-{status}"), subscriber_id => "s1", kind => "identity", note => "Carte <i>", status => status,
        requested_by => "operator:x", requested_at => when(now()), requested_on => "2026-11-26",
        file_name => "id.pdf", content_type => "application/pdf", size_kib => 12, submitted_at => when(now()),
        decided_at => Value::from(()), decided_by => Value::from(()), decision_reason => "Illisible <i>",
        can_upload => status == "open" || status == "rejected",
    }
}

fn termination(dues: &str) -> Value {
    context! {
        id => "t1", subscription_id => "0190f0f0-0000-7000-8000-000000000020", subscriber_id => "s1", channel => "online",
        received_on => "2026-11-26", end_choice => "month_end", end_date => "2026-11-30", reason => "dismissal",
        status => "scheduled", recorded_by => "subscriber:s1", created_at => when(now()), final_invoice_id => Value::from(()),
        erase_on => Value::from(()), commitment_end => "2027-11-25", dues => dues, dues_amount => 33_000,
        dues_terms => "2027-01", reason_status => "open", scheduled => true,
    }
}

fn terms_version(state: &str) -> Value {
    context! {
        id => format!("v-{state}"), version => "2027-01", title => "CGV <i>", published_at => when(now()),
        effective_on => "2027-01-01", class => "other", substantial => true, closure => false,
        equivalent_migration => false, summary => "Prix <i>", published_by => "operator:x", state => state,
        body_html => super::view::terms_html("## A\n\ntext"), notices => 3,
    }
}

fn incident() -> Value {
    context! {
        id => "i1", title => "Panne <i>", resources => "zone A", started_at => when(now()), ended_at => Value::from(()),
        force_majeure => false, recorded_by => "operator:x", created_at => when(now()),
    }
}

fn vm(state: &str) -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000040", subscriber_id => "s1", host_id => "h1", host => "sim-1",
        name => "web-<i>", state => state, busy => super::compute::TRANSITIONAL.contains(&state), held => state == "stopped",
        error => (state == "error").then_some("qemu said <i>"), size => "xs", pending_size => Value::from(()),
        vcpus => 1, ram => "256 Mio", disk => "1 Gio", ip => "10.213.0.10", mac => "52:54:00:00:00:01",
        image => "tiny <i>", created_at => when(now()), updated_at => when(now()), deleted => state == "deleted",
    }
}

fn vm_page(state: &str) -> Value {
    let live = state != "deleted";
    context! {
        user => subscriber(), vm => vm(state), refresh => super::compute::TRANSITIONAL.contains(&state).then_some(2),
        sizes => vec![context! { value => "xs", label => "xs <i>" }, context! { value => "m", label => "m" }], resize_to => "m",
        can_start => state == "stopped", can_stop => state == "running", can_reboot => state == "running",
        can_resize => live, can_delete => live, serial => live, can_type => state == "running",
        serial_url => "/account/vms/x/serial", script_url => live.then_some("/static/serial.js?v=1"),
    }
}

/// Every template with the context a handler gives it.
fn samples() -> Vec<(&'static str, Value)> {
    let msg = context! { id => "0190f0f0-0000-7000-8000-000000000002", subject => "Bienvenue", created_at => when(now()), read => false };
    let token = context! {
        id => "0190f0f0-0000-7000-8000-000000000003", name => "ci", prefix => "mc_abcd",
        created_at => when(now()), expires_at => when(now()), last_used_at => Value::from(()), revoked => false, expired => false,
    };
    let usage = |id: &str| context! { id => id, label => "L", used => 1, total => 2, used_text => "1", total_text => "2" };
    vec![
        (
            "account/vms.html",
            context! { user => subscriber(), vms => vec![vm("running"), vm("creating"), vm("error")], usage => vec![usage("vms"), usage("disk")], refresh => 2, next_url => "/account/vms?cursor=x" },
        ),
        (
            "account/vms.html",
            context! { user => subscriber(), vms => Vec::<Value>::new(), usage => vec![context! { id => "vms", label => "L", used => 0, total => 0, used_text => "0", total_text => "0" }] },
        ),
        (
            "account/vm_new.html",
            context! {
                user => subscriber(), form => context! { name => "Bad_<i>", image => "tiny", size => "xs", ssh_keys => vec!["k1"], user_data => "echo <i>" },
                images => vec![context! { value => "tiny", label => "tiny — <i>" }], sizes => vec![context! { value => "xs", label => "xs" }],
                keys => vec![context! { id => "k1", name => "laptop <i>", fingerprint => "SHA256:x", checked => true }, context! { id => "k2", name => "ci", fingerprint => "SHA256:y", checked => false }],
                quota_text => "2 VMs left", alert => "Refusé <i>",
                errors => context! { name => "no", ssh_keys => "no" }, error_list => vec![context! { field => "name", reason => "no" }, context! { field => "ssh_keys", reason => "no" }],
            },
        ),
        (
            "account/vm_new.html",
            context! { user => subscriber(), form => context! {}, images => Vec::<Value>::new(), sizes => Vec::<Value>::new(), keys => Vec::<Value>::new(), quota_text => "" },
        ),
        (
            "account/vm_new.html",
            context! { user => subscriber(), form => context! {}, images => vec![context! { value => "tiny", label => "tiny" }], sizes => Vec::<Value>::new(), keys => Vec::<Value>::new(), quota_text => "" },
        ),
        ("account/vm.html", vm_page("running")),
        ("account/vm.html", vm_page("stopped")),
        ("account/vm.html", vm_page("stopping")),
        ("account/vm.html", vm_page("error")),
        ("account/vm.html", vm_page("deleted")),
        (
            "account/vm.html",
            context! {
                alert => "Refusé <i>", errors => context! { size => "no" }, error_list => vec![context! { field => "size", reason => "no" }],
                ..vm_page("running")
            },
        ),
        (
            "account/ssh_keys.html",
            context! {
                user => subscriber(), keys => vec![context! { id => "k1", name => "laptop <i>", fingerprint => "SHA256:x", created_at => when(now()) }],
                form => context! { name => "x", public_key => "ssh-rsa <i>" },
                errors => context! { public_key => "no" }, error_list => vec![context! { field => "public_key", reason => "no" }],
            },
        ),
        (
            "account/ssh_keys.html",
            context! { user => subscriber(), keys => Vec::<Value>::new(), form => context! {} },
        ),
        (
            "admin/hosts.html",
            context! {
                user => operator(), warned => 1,
                hosts => vec![
                    context! {
                        id => "h1", name => "sim-<i>", url => "https://h1.example <i>", accel => "tcg", status => "up", attached => true,
                        vcpus_used => 1, vcpus => 4, memory_used => "256 Mio", memory => "4 Gio", disk_used => "1 Gio", disk => "100 Gio",
                        vms => 1, warnings => vec!["KVM present but <i>not usable</i>"], last_seen_at => when(now()),
                    },
                    context! {
                        id => "h2", name => "kvm-1", url => Value::from(()), accel => "kvm", status => "down", attached => false,
                        vcpus_used => 0, vcpus => 4, memory_used => "0 Mio", memory => "4 Gio", disk_used => "0 Gio", disk => "100 Gio",
                        vms => 0, warnings => Vec::<String>::new(), last_seen_at => when(now()),
                    },
                ],
            },
        ),
        (
            "admin/hosts.html",
            context! { user => operator(), warned => 0, hosts => Vec::<Value>::new() },
        ),
        (
            "admin/vms.html",
            context! { user => operator(), vms => vec![vm("running"), vm("stopped")], subscriber => "s1 <i>", refresh => 2, next_url => "/admin/vms?cursor=x" },
        ),
        (
            "admin/vms.html",
            context! { user => operator(), vms => Vec::<Value>::new() },
        ),
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
            "account/profile.html",
            context! { user => subscriber(), form => profile(), kinds => vec![context! { value => "consumer", label => "Particulier" }], saved => true },
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
        (
            "account/home.html",
            context! { user => subscriber(), account => account(), profile => profile(), unread => 0, messages => Vec::<Value>::new(), suspensions => vec![suspension("active", "breach")] },
        ),
        (
            "account/subscription.html",
            context! {
                user => subscriber(), subscriptions => vec![subscription()], offers => Vec::<Value>::new(), quotas => context! {},
                terminations => Value::from_iter([("0190f0f0-0000-7000-8000-000000000020", termination("pending_reason"))]),
                suspensions => vec![suspension("active", "non_payment")],
            },
        ),
        (
            "account/subscription.html",
            context! {
                user => subscriber(), subscriptions => vec![subscription()], offers => Vec::<Value>::new(), quotas => context! {},
                terminations => context! {}, reasons => vec!["dismissal", "death"], today => "2026-11-26", latest => "2026-12-06",
                term_refused_id => "0190f0f0-0000-7000-8000-000000000020", term_alert => "Impossible <i>",
                term_form => context! { end => "date", date => "2027-01-01", reason => "death" },
            },
        ),
        (
            "account/suspensions.html",
            context! { user => subscriber(), active => vec![suspension("active", "incomplete_file")], suspensions => vec![suspension("active", "incomplete_file"), suspension("lifted", "breach")] },
        ),
        (
            "account/suspensions.html",
            context! { user => subscriber(), active => Vec::<Value>::new(), suspensions => Vec::<Value>::new() },
        ),
        (
            "account/documents.html",
            context! { user => subscriber(), proofs => vec![proof("open"), proof("rejected"), proof("approved")], max_mib => 5, refused_id => "p-open", alert => "Refusé <i>" },
        ),
        (
            "account/documents.html",
            context! { user => subscriber(), proofs => Vec::<Value>::new(), max_mib => 5 },
        ),
        (
            "account/terms.html",
            context! {
                user => subscriber(), versions => vec![terms_version("upcoming"), terms_version("current"), terms_version("past")],
                notices => vec![
                    context! { version => "2027-01", notified_at => when(now()), window_end => "2027-03-26", window_open => true },
                    context! { version => "2026-06", notified_at => when(now()), window_end => "2026-10-01", window_open => false },
                    context! { version => "2026-03", notified_at => when(now()), window_end => Value::from(()), window_open => false },
                ],
            },
        ),
        (
            "admin/suspensions.html",
            context! {
                user => operator(), suspensions => vec![suspension("pending", "non_payment"), suspension("active", "breach")],
                causes => vec![context! { value => "breach", label => "B" }], form => context! { subscriber_id => "x", cause => "breach", reason => "" },
                errors => context! { subscriber_id => "no" }, error_list => vec![context! { field => "subscriber_id", reason => "no" }],
                refused_id => "su-active", alert => "Refusé <i>",
            },
        ),
        (
            "admin/suspensions.html",
            context! { user => operator(), subscriber => "s1", suspensions => Vec::<Value>::new(), causes => Vec::<Value>::new(), form => context! {} },
        ),
        (
            "admin/proofs.html",
            context! {
                user => operator(), proofs => vec![proof("submitted"), proof("open")],
                kinds => vec![context! { value => "identity", label => "I" }], form => context! { subscriber_id => "", kind => "identity", note => "" },
                refused_id => "p-submitted", alert => "Refusé <i>",
            },
        ),
        (
            "admin/proofs.html",
            context! { user => operator(), subscriber => "s1", proofs => Vec::<Value>::new(), kinds => Vec::<Value>::new(), form => context! {} },
        ),
        (
            "admin/terminations.html",
            context! {
                user => operator(), terminations => vec![termination("due"), termination("waived_terms_change"), termination("none")],
                ends => vec![context! { value => "month_end", label => "M" }, context! { value => "date", label => "D" }],
                reasons => vec![context! { value => "", label => "-" }], form => context! { subscription_id => "x", received_on => "2026-11-26", end => "date", date => "", reason => "" },
                errors => context! { date => "no" }, error_list => vec![context! { field => "date", reason => "no" }],
            },
        ),
        (
            "admin/terminations.html",
            context! { user => operator(), subscriber => "s1", terminations => Vec::<Value>::new(), ends => Vec::<Value>::new(), reasons => Vec::<Value>::new(), form => context! {} },
        ),
        (
            "admin/terms.html",
            context! {
                user => operator(), versions => vec![terms_version("current"), context! { notices => Value::from(()), ..terms_version("past") }],
                classes => vec![context! { value => "other", label => "O" }], can_publish => true,
                form => context! { version => "2027-01", title => "T", body => "B <i>", summary => "", effective_on => "2027-01-01", class => "other", substantial => "1", closure => "", equivalent_migration => "" },
                errors => context! { effective_on => "no" }, error_list => vec![context! { field => "effective_on", reason => "no" }],
                published => context! { version => "2026-12", notified => 4 },
            },
        ),
        (
            "admin/incidents.html",
            context! {
                user => operator(), incidents => vec![incident()],
                form => context! { title => "", resources => "", started_at => "2026-11-26T09:00", ended_at => "", force_majeure => "1" },
                errors => context! { started_at => "no" }, error_list => vec![context! { field => "started_at", reason => "no" }],
            },
        ),
        (
            "admin/incidents.html",
            context! { user => operator(), incidents => Vec::<Value>::new(), form => context! {} },
        ),
        (
            "admin/incident.html",
            context! {
                user => operator(), incident => incident(),
                compensations => vec![context! { subscriber_id => "s1", credit_note_id => "c1", amount => 1200, granted_by => "operator:x", created_at => when(now()) }],
                cap => context! {
                    subscriber_id => "s1", professional => true, force_majeure => false, cap => 7200, granted => 1200, remaining => 6000,
                    periods => vec![context! { month => "2026-10", invoice_number => "F2026-000001", fee_incl => 3600, paid => 3600 }],
                },
                form => context! { subscriber_id => "s1", amount_excl => "99999", invoice_id => "" },
                errors => context! { amount_excl => "no" }, error_list => vec![context! { field => "amount_excl", reason => "no" }],
            },
        ),
        (
            "admin/incident.html",
            context! {
                user => operator(), incident => context! { force_majeure => true, ..incident() }, compensations => Vec::<Value>::new(),
                cap => context! { professional => false, force_majeure => true, cap => Value::from(()), granted => 0, remaining => 0, periods => Vec::<Value>::new() },
                cap_error => "Refusé <i>", form => context! { subscriber_id => "x" },
            },
        ),
    ]
    .into_iter()
    .chain(privacy_samples())
    .collect()
}

fn processor_row() -> Value {
    context! {
        id => "0190f0f0-0000-7000-8000-000000000050", kind => "processor", name => "Mailer <i>SAS</i>",
        purpose => "Envoi des e-mails <i>", data_categories => "adresse e-mail", country => "FR",
        safeguards => "UE", updated_at => when(now()),
    }
}

/// The personal-data pages, in the states their handlers give them.
fn privacy_samples() -> Vec<(&'static str, Value)> {
    let purposes = |granted: &[&str]| {
        ["loyalty", "prospecting", "surveys", "promotions"]
            .iter()
            .map(|p| context! { value => p, granted => granted.contains(p) })
            .collect::<Vec<_>>()
    };
    let subscriber_page = context! {
        user => subscriber(), section => "account", purposes => purposes(&["promotions"]),
        consent_history => vec![
            context! { at => when(now()), purpose => "promotions", granted => true, source => "console" },
            context! { at => when(now()), purpose => "surveys", granted => false, source => "unsubscribe_link" },
        ],
        restricted => true, objected => false,
        choice_history => vec![context! { at => when(now()), choice => "restriction", active => true, reason => "Trop de mails <i>", source => "console" }],
        exports => vec![
            context! { id => "e1", status => "ready", requested_at => when(now()), ready_at => when(now()), expires_at => when(now()), size => "12 ko", download_url => "/account/privacy/exports/e1/download" },
            context! { id => "e2", status => "expired", requested_at => when(now()), ready_at => Value::from(()), expires_at => Value::from(()), size => Value::from(()), download_url => Value::from(()) },
        ],
        preparing => false, export_days => 7, code_minutes => 30, step_code => false,
    };
    let register = context! {
        user => operator(), section => "admin", processors => vec![processor_row()], can_edit => true, can_stats => true,
        kinds => vec![context! { value => "", label => "-" }, context! { value => "processor", label => "P <i>" }],
        purposes => vec![context! { value => "promotions", label => "promotions" }],
        add_form => context! { kind => "processor", name => "", purpose => "", data_categories => "", country => "", safeguards => "" },
        marketing_form => context! { marketing_purpose => "promotions", subject => "Soldes <i>", body => "Texte <i>" },
        since => "2026-01", privacy_k => 5,
        statistics => vec![
            context! { name => "subscribers_per_offer", money => false, k => 5, rows => vec![
                context! { key => "s", month => Value::from(()), code => "s", label => "Small <i>", subscribers => 7, total => 7 },
                context! { key => "m", month => Value::from(()), code => "m", label => "Medium", subscribers => Value::from(()), total => Value::from(()) },
            ] },
            context! { name => "revenue_per_month_cents", money => true, k => 5, rows => vec![
                context! { key => "2026-11 s", month => "2026-11", code => "s", label => "Small", subscribers => 9, total => 123_456 },
            ] },
            context! { name => "vms_per_size", money => false, k => 5, rows => Vec::<Value>::new() },
        ],
    };
    vec![
        ("account/privacy.html", subscriber_page.clone()),
        (
            "account/privacy.html",
            context! {
                purposes => purposes(&[]), consent_history => Vec::<Value>::new(), choice_history => Vec::<Value>::new(),
                exports => Vec::<Value>::new(), preparing => true, restricted => false, objected => true,
                step_code => true, refused => "confirm", confirm_form => context! { code => "ABC<i>", email => "x@y.test" },
                errors => context! { email => "n'est pas <i>" }, error_list => vec![context! { field => "email", reason => "no <i>" }],
                ..subscriber_page.clone()
            },
        ),
        (
            "account/privacy.html",
            context! {
                refused => "objection", reason_form => "parce que <i>", alert => "Refusé <i>",
                errors => context! { objection_reason => "est trop long" }, error_list => vec![context! { field => "objection_reason", reason => "est trop long" }],
                ..subscriber_page
            },
        ),
        (
            "processors.html",
            context! { processors => vec![processor_row()], user => subscriber() },
        ),
        (
            "processors.html",
            context! { processors => Vec::<Value>::new() },
        ),
        (
            "unsubscribe.html",
            context! { token => "t<i>", errors => context! { token => "n'est pas <i>" } },
        ),
        (
            "unsubscribe.html",
            context! { token => "t", withdrawn => "promotions <i>" },
        ),
        ("admin/privacy.html", register.clone()),
        (
            "admin/privacy.html",
            context! {
                refused => "edit", refused_id => "0190f0f0-0000-7000-8000-000000000050", alert => "Refusé <i>",
                edit_form => context! { kind => "recipient", name => "Autre <i>", purpose => "", data_categories => "", country => "ZZZ", safeguards => "" },
                edit_errors => context! { country => "doit être <i>", purpose => "est obligatoire" },
                ..register.clone()
            },
        ),
        (
            "admin/privacy.html",
            context! {
                refused => "marketing", errors => context! { subject => "est obligatoire", since => "doit être un mois" },
                error_list => vec![context! { field => "subject", reason => "est obligatoire" }],
                ..register
            },
        ),
        (
            "admin/privacy.html",
            context! {
                user => context! { name => "Bill", email => "b@example.test", is_operator => true, is_admin => false, role => "support" },
                processors => vec![processor_row()], can_edit => false, can_stats => false, kinds => Vec::<Value>::new(),
                purposes => Vec::<Value>::new(), add_form => context! {}, marketing_form => context! {}, since => "2026-01",
                statistics => Vec::<Value>::new(),
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
                "{latest}",
                "{max}",
                "{kib}",
                "{until}",
                "{id}",
                "{used}",
                "{total}",
                "{vcpus}",
                "{ram}",
                "{disk}",
                "{vms}",
                "{k}",
                "{status}",
                "{purpose}",
                "{minutes}",
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
            if method == "POST" {
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in form {
                    s.append_pair(k, v);
                }
                let body = s.finish().into_bytes();
                self.send_raw(
                    method,
                    path,
                    Some("application/x-www-form-urlencoded"),
                    body,
                )
                .await
            } else {
                self.send_raw(method, path, None, vec![]).await
            }
        }

        /// A `multipart/form-data` POST: text fields, then one file field.
        async fn upload(
            &mut self,
            path: &str,
            fields: &[(&str, &str)],
            file: (&str, &str, &str, &[u8]),
        ) -> Page {
            let boundary = "----maocloud-test-boundary";
            let mut body = Vec::new();
            for (k, v) in fields {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            let (name, file_name, content_type, bytes) = file;
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let ct = format!("multipart/form-data; boundary={boundary}");
            self.send_raw("POST", path, Some(&ct), body).await
        }

        async fn send_raw(
            &mut self,
            method: &str,
            path: &str,
            content_type: Option<&str>,
            body: Vec<u8>,
        ) -> Page {
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
            if let Some(ct) = content_type {
                req = req.header(header::CONTENT_TYPE, ct);
            }
            let body = Body::from(body);
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
    async fn the_subscriber_corrects_their_details_and_invoices_keep_theirs() {
        let site = site().await;
        let mut sub = Browser::new(&site);
        let csrf = sub.get("/signup").await.csrf();
        let done = sub
            .post("/signup", &signup_form(&csrf, "rectify@example.test"))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let page = sub.get("/account/profile").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html.contains("value=\"Alex Durand\""), "prefilled");
        let csrf = page.csrf();
        let mut form = signup_form(&csrf, "rectify@example.test");
        form.retain(|(k, _)| !matches!(*k, "email" | "password" | "accept_terms_version"));
        // Refused: the reason by its field, nothing changed.
        let bad: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| {
                if *k == "postal_code" {
                    (*k, "7500")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        let refused = sub.post("/account/profile", &bad).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.html.contains("href=\"#field-postal_code\""),
            "{}",
            refused.html
        );
        let good: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| {
                if *k == "city" {
                    (*k, "Lyon")
                } else if *k == "postal_code" {
                    (*k, "69002")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        let saved = sub.post("/account/profile", &good).await;
        assert_eq!(saved.status, StatusCode::OK);
        assert!(saved.html.contains("mises à jour"), "{}", saved.html);
        let home = sub.get("/account").await;
        assert!(home.html.contains("69002 Lyon"), "{}", home.html);
        // Without the session's token, nothing changes.
        let mut forged = good.clone();
        for f in forged.iter_mut() {
            if f.0 == "csrf" {
                f.1 = "forged";
            }
        }
        let refused = sub.post("/account/profile", &forged).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
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

    /// A subscriber signed up through the console, and their id.
    async fn subscriber_browser<'a>(
        site: &'a Site,
        email: &str,
    ) -> (Browser<'a>, maocloud_types::SubscriberId) {
        let mut b = Browser::new(site);
        let csrf = b.get("/signup").await.csrf();
        let done = b.post("/signup", &signup_form(&csrf, email)).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
        let list = accounts::subscriber_list(
            &site.app,
            &Ctx::system(),
            Some(email),
            &maocloud_types::PageRequest::first(1),
        )
        .await
        .unwrap();
        (b, list.items[0].id)
    }

    /// The value of `attr="…"` right after `marker` in `html`.
    fn after(html: &str, marker: &str) -> String {
        let at = html
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {html}"))
            + marker.len();
        html[at..].split('"').next().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_subscriber_terminates_at_month_end_then_withdraws() {
        let site = site().await;
        let offer = maocloud_app::billing::offer_create(
            &site.app,
            &Ctx::system(),
            maocloud_app::billing::OfferInput {
                code: "s".into(),
                description: "Un petit cloud".into(),
                terms: maocloud_billing::OfferTerms {
                    name: "Small".into(),
                    monthly_price: maocloud_types::Cents(3000),
                    vat_rate_bp: 2000,
                    includes: maocloud_billing::Inclusions::default(),
                    usage: maocloud_billing::UsagePrices::default(),
                    commitment_months: 0,
                },
                multiple_allowed: false,
            },
        )
        .await
        .unwrap();
        let (mut b, _) = subscriber_browser(&site, "term@example.test").await;
        let csrf = b.get("/account").await.csrf();
        let done = b
            .post(
                "/account/subscriptions",
                &[("csrf", &csrf), ("offer_id", &offer.id.to_string())],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let page = b.get("/account/subscription").await;
        let action = format!(
            "/account/subscriptions/{}/terminate",
            after(&page.html, "action=\"/account/subscriptions/")
                .split('/')
                .next()
                .unwrap()
        );
        assert!(
            page.html.contains(&format!("action=\"{action}\"")),
            "the form"
        );

        // A date more than 10 days away is refused next to the form; nothing is scheduled.
        let far = b
            .post(
                &action,
                &[
                    ("csrf", &csrf),
                    ("end", "date"),
                    ("date", "2026-12-31"),
                    ("reason", ""),
                ],
            )
            .await;
        assert_eq!(far.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(far.html.contains("terminate-error-") && far.html.contains("10 jours"));
        assert_eq!(
            b.post(&action, &[("csrf", "forged"), ("end", "month_end")])
                .await
                .status,
            StatusCode::FORBIDDEN
        );

        let done = b
            .post(
                &action,
                &[
                    ("csrf", &csrf),
                    ("end", "month_end"),
                    ("date", ""),
                    ("reason", ""),
                ],
            )
            .await;
        assert_eq!(
            (done.status, done.location.as_str()),
            (StatusCode::SEE_OTHER, "/account/subscription"),
            "{}",
            done.html
        );
        let page = b.get("/account/subscription").await;
        assert!(page.html.contains("Votre résiliation est enregistrée"));
        assert!(
            page.html.contains("Programmée"),
            "{}",
            super::around(&page.html, "termination-status")
        );
        assert!(
            page.html.contains(">2026-11-30</time>"),
            "the last day of the month"
        );
        assert!(page.html.contains("Aucune : pas d&#x27;engagement restant"));
        assert!(
            !page.html.contains(&format!("action=\"{action}\"")),
            "no second termination"
        );

        // Withdrawn while scheduled: the contract continues and the form is back.
        let withdraw = after(&page.html, "action=\"/account/subscriptions/");
        let withdraw = format!("/account/subscriptions/{withdraw}");
        assert!(withdraw.ends_with("/termination/withdraw"), "{withdraw}");
        let done = b.post(&withdraw, &[("csrf", &csrf)]).await;
        assert_eq!(done.location, "/account/subscription");
        let page = b.get("/account/subscription").await;
        assert!(page.html.contains("le contrat continue") && page.html.contains(&action));
    }

    #[tokio::test]
    async fn an_operator_suspends_and_the_subscriber_sees_why() {
        let site = site().await;
        let (mut sub, id) = subscriber_browser(&site, "susp@example.test").await;
        assert!(!sub.get("/account").await.html.contains("suspension-banner"));
        let mut ops = operator_browser(&site, "abuse@example.test", OperatorRole::Abuse).await;
        let page = ops.get("/admin/suspensions").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = page.csrf();
        let refused = ops
            .post(
                "/admin/suspensions",
                &[
                    ("csrf", &csrf),
                    ("subscriber_id", "nope"),
                    ("cause", "breach"),
                    ("reason", "x"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.html.contains("href=\"#field-subscriber_id\""));
        let done = ops
            .post(
                "/admin/suspensions",
                &[
                    ("csrf", &csrf),
                    ("subscriber_id", &id.to_string()),
                    ("cause", "breach"),
                    ("reason", "Envoi de spam depuis la VM web-1"),
                ],
            )
            .await;
        assert_eq!(done.location, "/admin/suspensions", "{}", done.html);
        let list = ops.get("/admin/suspensions").await;
        assert!(list.html.contains("Envoi de spam") && list.html.contains("/lift"));

        let home = sub.get("/account").await;
        assert!(home.html.contains("id=\"suspension-banner\""));
        assert!(
            home.html.contains("Manquement aux conditions générales")
                && home.html.contains("Envoi de spam depuis la VM web-1")
                && home.html.contains("contactez le support"),
            "{}",
            super::around(&home.html, "suspension-banner")
        );
        let history = sub.get("/account/suspensions").await;
        assert_eq!(history.status, StatusCode::OK);
        assert!(history.html.contains("Envoi de spam"));

        // Lifted with a reason: the banner is gone, the history keeps it.
        let action = format!(
            "/admin/suspensions/{}",
            after(&list.html, "action=\"/admin/suspensions/")
        );
        assert!(action.ends_with("/lift"), "{action}");
        let done = ops
            .post(&action, &[("csrf", &csrf), ("reason", "VM nettoyée")])
            .await;
        assert_eq!(done.location, "/admin/suspensions");
        assert!(!sub.get("/account").await.html.contains("suspension-banner"));
        let history = sub.get("/account/suspensions").await;
        assert!(
            history.html.contains("VM nettoyée") && history.html.contains("suspension-none-active")
        );
    }

    #[tokio::test]
    async fn a_pdf_proof_is_uploaded_then_approved() {
        let site = site().await;
        let (mut sub, id) = subscriber_browser(&site, "proof@example.test").await;
        assert!(sub
            .get("/account/documents")
            .await
            .html
            .contains("Aucun document"));
        let mut ops = operator_browser(&site, "support@example.test", OperatorRole::Support).await;
        let csrf = ops.get("/admin/proofs").await.csrf();
        let done = ops
            .post(
                "/admin/proofs",
                &[
                    ("csrf", &csrf),
                    ("subscriber_id", &id.to_string()),
                    ("kind", "identity"),
                    ("note", "Recto et verso de la carte d'identité"),
                ],
            )
            .await;
        assert_eq!(done.location, "/admin/proofs", "{}", done.html);

        let page = sub.get("/account/documents").await;
        assert!(
            page.html.contains("Recto et verso")
                && page.html.contains("enctype=\"multipart/form-data\"")
        );
        let scsrf = page.csrf();
        let upload = format!(
            "/account/documents/{}",
            after(&page.html, "action=\"/account/documents/")
        );
        assert!(upload.ends_with("/upload"), "{upload}");
        let pdf: &[u8] = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n";

        // A forged token, or a file that is not what it says, changes nothing.
        let forged = sub
            .upload(
                &upload,
                &[("csrf", "forged")],
                ("document", "id.pdf", "application/pdf", pdf),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let fake = sub
            .upload(
                &upload,
                &[("csrf", &scsrf)],
                ("document", "id.pdf", "application/pdf", b"not a pdf"),
            )
            .await;
        assert_eq!(fake.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            fake.html.contains("upload-error-") && fake.html.contains("PDF"),
            "{}",
            super::around(&fake.html, "alert")
        );

        let done = sub
            .upload(
                &upload,
                &[("csrf", &scsrf)],
                ("document", "carte id.pdf", "application/pdf", pdf),
            )
            .await;
        assert_eq!(done.location, "/account/documents", "{}", done.html);
        let page = sub.get("/account/documents").await;
        assert!(
            page.html.contains("En cours de vérification") && page.html.contains("carte id.pdf")
        );
        let mine = sub
            .get(&format!(
                "/account/documents/{}",
                after(&page.html, "href=\"/account/documents/")
            ))
            .await;
        assert_eq!(mine.status, StatusCode::OK);
        assert_eq!(mine.html.as_bytes(), pdf);

        // The operator reads it and approves it with a reason.
        let list = ops.get("/admin/proofs").await;
        let file = format!(
            "/admin/proofs/{}",
            after(&list.html, "href=\"/admin/proofs/")
        );
        let got = ops.get(&file).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.html.as_bytes(), pdf);
        let decision = format!(
            "/admin/proofs/{}",
            after(&list.html, "action=\"/admin/proofs/")
        );
        assert!(decision.ends_with("/decision"), "{decision}");
        let done = ops
            .post(
                &decision,
                &[
                    ("csrf", &csrf),
                    ("decision", "approve"),
                    ("reason", "Conforme"),
                ],
            )
            .await;
        assert_eq!(done.location, "/admin/proofs", "{}", done.html);
        let page = sub.get("/account/documents").await;
        assert!(page.html.contains("Approuvé") && page.html.contains("Conforme"));
        assert!(!page.html.contains("/upload\""), "nothing more to upload");
    }

    #[tokio::test]
    async fn back_office_terms_incidents_and_letters() {
        let site = site().await;
        let (_, id) = subscriber_browser(&site, "pro@example.test").await;
        let mut ops = operator_browser(&site, "admin@example.test", OperatorRole::Admin).await;
        for path in [
            "/admin/terms",
            "/admin/incidents",
            "/admin/terminations",
            "/admin/suspensions",
            "/admin/proofs",
        ] {
            let page = ops.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.html);
        }
        let csrf = ops.get("/admin/terms").await.csrf();
        let early = ops
            .post(
                "/admin/terms",
                &[
                    ("csrf", &csrf),
                    ("version", "2027-01"),
                    ("title", "CGV 2027"),
                    ("body", "# CGV\n\nTexte."),
                    ("summary", "Nouveau prix"),
                    ("effective_on", "2026-12-01"),
                    ("class", "other"),
                ],
            )
            .await;
        assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(early.html.contains("href=\"#field-effective_on\""));
        let done = ops
            .post(
                "/admin/terms",
                &[
                    ("csrf", &csrf),
                    ("version", "2027-01"),
                    ("title", "CGV 2027"),
                    ("body", "# CGV\n\nTexte."),
                    ("summary", "Nouveau prix"),
                    ("effective_on", "2027-01-15"),
                    ("class", "other"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.html);
        assert!(
            done.html.contains("Version 2027-01 publiée") && done.html.contains("Nouveau prix")
        );

        let done = ops
            .post(
                "/admin/incidents",
                &[
                    ("csrf", &csrf),
                    ("title", "Panne zone A"),
                    ("resources", "vm-1"),
                    ("started_at", "2026-11-25T08:30"),
                    ("ended_at", ""),
                ],
            )
            .await;
        assert!(
            done.location.starts_with("/admin/incidents/"),
            "{}",
            done.html
        );
        let page = ops
            .get(&format!("{}?subscriber_id={id}", done.location))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html.contains("id=\"cap-result\"") && page.html.contains("Pas de plafond"));
        assert!(page.html.contains("2026-11-25 07:30 UTC"), "Paris time");

        let refused = ops
            .post(
                "/admin/terminations",
                &[
                    ("csrf", &csrf),
                    ("subscription_id", "nope"),
                    ("received_on", "2026-11-20"),
                    ("end", "month_end"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.html.contains("href=\"#field-subscription_id\""));
    }

    /// A support page as the visitor reads it: no catalog key left, no placeholder unfilled.
    fn readable(page: &Page, what: &str) {
        for raw in [
            "console.",
            "support.priority.",
            "support.status.",
            "support.category.",
            "support.kind.",
        ] {
            assert!(
                !page.html.contains(raw),
                "{what}: a missing key: {}",
                super::around(&page.html, raw)
            );
        }
        for placeholder in [
            "{number}",
            "{n}",
            "{h}",
            "{max}",
            "{count}",
            "{file}",
            "{reason}",
            "{date}",
            "{month}",
            "{status}",
            "{subject}",
            "{target}",
            "{due}",
            "{field}",
        ] {
            assert!(
                !page.html.contains(placeholder),
                "{what}: {placeholder} unfilled"
            );
        }
    }

    /// Every support page, both sides, in French then in English, refused forms included.
    #[tokio::test]
    async fn support_desk_pages_speak_french_and_english() {
        let site = site().await;
        let mut sub = Browser::new(&site);
        let csrf = sub.get("/signup").await.csrf();
        let done = sub
            .post("/signup", &signup_form(&csrf, "camille@example.test"))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let form = sub.get("/account/support/new").await;
        assert_eq!(form.status, StatusCode::OK);
        readable(&form, "the new-ticket form");
        assert!(form.html.contains("id=\"targets-table\"") && form.html.contains("30\u{a0}min"));
        let csrf = form.csrf();

        // Refused: the reasons next to their fields, in French, the file named.
        let refused = sub
            .upload(
                "/account/support",
                &[
                    ("csrf", &csrf),
                    ("subject", ""),
                    ("category", "technical"),
                    ("priority", "normal"),
                    ("message", "Ma machine ne démarre plus."),
                ],
                (
                    "attachments",
                    "notes.exe",
                    "application/octet-stream",
                    b"MZ\x90",
                ),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused new-ticket form");
        assert!(
            refused.html.contains("href=\"#field-subject\"")
                && refused.html.contains("href=\"#field-attachments\"")
                && refused.html.contains("notes.exe : ")
                && refused.html.contains("est obligatoire"),
            "{}",
            refused.html
        );
        assert!(refused.html.contains("Ma machine ne démarre plus."), "kept");

        let opened = sub
            .upload(
                "/account/support",
                &[
                    ("csrf", &csrf),
                    ("subject", "Machine <i>bloquée</i>"),
                    ("category", "technical"),
                    ("priority", "high"),
                    ("message", "Ma machine ne démarre plus depuis ce matin."),
                ],
                ("attachments", "journal.txt", "text/plain", b"boot failed\n"),
            )
            .await;
        assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.html);
        assert!(
            opened.location.ends_with("?done=opened"),
            "{}",
            opened.location
        );
        let ticket_url = opened.location.split('?').next().unwrap().to_string();
        let admin_url = ticket_url.replace("/account/", "/admin/");
        let mut pages: Vec<(&str, String)> = vec![
            ("the subscriber's list", "/account/support".into()),
            ("the subscriber's ticket", ticket_url.clone()),
            ("the new-ticket form", "/account/support/new".into()),
        ];
        let page = sub.get(&opened.location).await;
        readable(&page, "the ticket just opened");
        assert!(page.html.contains("Votre demande est enregistrée"));
        assert!(page.html.contains("journal.txt") && !page.html.contains("<i>bloquée"));

        // The desk: queue, ticket, a note, a refused update, the side pages.
        let mut ops = operator_browser(&site, "desk@example.test", OperatorRole::Support).await;
        let page = ops.get(&admin_url).await;
        assert_eq!(page.status, StatusCode::OK);
        readable(&page, "the desk's ticket");
        let csrf = page.csrf();
        let noted = ops
            .upload(
                &format!("{admin_url}/reply"),
                &[
                    ("csrf", &csrf),
                    ("message", "Note : vérifier l'hyperviseur."),
                    ("internal", "1"),
                    ("reply_status", "waiting"),
                ],
                ("attachments", "", "application/octet-stream", b""),
            )
            .await;
        assert_eq!(noted.status, StatusCode::SEE_OTHER, "{}", noted.html);
        let refused = ops
            .post(
                &format!("{admin_url}/update"),
                &[
                    ("csrf", &csrf),
                    ("status", "open"),
                    ("priority", "high"),
                    ("category", "technical"),
                    ("assign", "other"),
                    ("assignee_id", "nope"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused update");
        assert!(refused.html.contains("href=\"#field-assignee_id\""));
        let refused = ops
            .upload(
                "/admin/support/letters",
                &[
                    ("csrf", &csrf),
                    ("subscriber_id", "x"),
                    ("subject", "other"),
                ],
                ("scan", "", "application/octet-stream", b""),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused letter");
        let refused = ops
            .post(
                "/admin/support/canned",
                &[("csrf", &csrf), ("title", ""), ("body", "")],
            )
            .await;
        readable(&refused, "the refused canned reply");
        assert!(refused.html.contains("href=\"#field-title\""));
        let refused = ops.get("/admin/support/report?month=13-2026").await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused month");
        let desk_pages: Vec<(&str, String)> = vec![
            ("the queue", "/admin/support".into()),
            (
                "the queue at risk",
                "/admin/support?status=all&assignee=me&at_risk=1".into(),
            ),
            ("the desk's ticket", admin_url.clone()),
            ("the targets", "/admin/support/targets".into()),
            ("the canned replies", "/admin/support/canned".into()),
            ("the report", "/admin/support/report".into()),
            ("the letter form", "/admin/support/letters/new".into()),
        ];
        let mut anon = Browser::new(&site);
        let public: Vec<(&str, String)> = vec![
            ("the abuse form", "/abuse".into()),
            ("the lost-credentials form", "/lost-credentials".into()),
            ("the sign-in page", "/signin".into()),
        ];
        pages.extend(desk_pages.iter().cloned());

        for lang in ["fr", "en"] {
            if lang == "en" {
                for b in [&mut sub, &mut ops] {
                    let csrf = b.get("/account/security").await.csrf();
                    b.post("/lang", &[("csrf", &csrf), ("lang", "en"), ("next", "/")])
                        .await;
                }
                anon.accept_language = "en-GB,en;q=0.9";
            }
            for (what, path) in &pages {
                let b = if path.starts_with("/admin") {
                    &mut ops
                } else {
                    &mut sub
                };
                let page = b.get(path).await;
                assert_eq!(page.status, StatusCode::OK, "{what} in {lang}");
                assert!(
                    page.html.contains(&format!("<html lang=\"{lang}\">")),
                    "{what}"
                );
                readable(&page, &format!("{what} in {lang}"));
            }
            for (what, path) in &public {
                let page = anon.get(path).await;
                assert_eq!(page.status, StatusCode::OK, "{what} in {lang}");
                readable(&page, &format!("{what} in {lang}"));
                assert!(page.html.contains("href=\"/lost-credentials\""));
            }
        }
        let page = ops.get(&admin_url).await;
        assert!(
            page.html.contains("Internal note")
                && page.html.contains("vérifier l&#x27;hyperviseur")
        );
        let page = sub.get(&ticket_url).await;
        assert!(
            !page.html.contains("hyperviseur"),
            "notes never reach the subscriber"
        );
    }

    /// The value of the first option of the select `id`.
    fn first_option(html: &str, id: &str) -> String {
        let at = html.find(&format!("id=\"{id}\"")).expect("the select");
        let rest = &html[at..];
        let v = &rest[rest.find("<option value=\"").unwrap() + 15..];
        v[..v.find('"').unwrap()].to_string()
    }

    /// The desk's other forms through the console: merge, targets, canned replies, the
    /// credential-loss decision (which ends the subscriber's sessions), letters, the report.
    #[tokio::test]
    async fn desk_merges_decides_records_and_reports() {
        let site = site().await;
        let mut sub = Browser::new(&site);
        let csrf = sub.get("/signup").await.csrf();
        sub.post("/signup", &signup_form(&csrf, "camille@example.test"))
            .await;
        let csrf = sub.get("/account/support/new").await.csrf();
        let mut urls = vec![];
        for subject in ["Première demande", "Seconde demande"] {
            let opened = sub
                .upload(
                    "/account/support",
                    &[
                        ("csrf", &csrf),
                        ("subject", subject),
                        ("category", "account"),
                        ("priority", "low"),
                        ("message", "Bonjour, une question sur mon compte."),
                    ],
                    ("attachments", "", "application/octet-stream", b""),
                )
                .await;
            assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.html);
            urls.push(
                opened
                    .location
                    .split('?')
                    .next()
                    .unwrap()
                    .replace("/account/", "/admin/"),
            );
        }
        let mut ops = operator_browser(&site, "admin@example.test", OperatorRole::Admin).await;

        // Merge the first into the second, offered as the requester's other ticket.
        let page = ops.get(&urls[0]).await;
        let csrf = page.csrf();
        let into = first_option(&page.html, "field-into");
        assert!(urls[1].ends_with(&into), "{into}");
        let merged = ops
            .post(
                &format!("{}/merge", urls[0]),
                &[("csrf", &csrf), ("into", &into)],
            )
            .await;
        assert_eq!(merged.location, format!("{}?done=merged", urls[1]));
        let page = ops.get(&merged.location).await;
        assert!(
            page.html.contains("Les demandes sont fusionnées.") && page.html.contains("#1 → #2")
        );
        let page = ops.get(&urls[0]).await;
        assert!(page.html.contains("id=\"merged\"") && !page.html.contains("id=\"reply-submit\""));
        // A reply sent from a page opened before the merge is refused where it can be seen.
        let sub_url = urls[0].replace("/admin/", "/account/");
        let sub_csrf = sub.get(&sub_url).await.csrf();
        let late = sub
            .upload(
                &format!("{sub_url}/reply"),
                &[("csrf", &sub_csrf), ("message", "Et alors ?")],
                ("attachments", "", "application/octet-stream", b""),
            )
            .await;
        assert_eq!(late.status, StatusCode::CONFLICT);
        assert!(
            late.html.contains("fusionnée dans la n° 2 : répondez-y"),
            "{}",
            late.html
        );

        // Targets: a bad number is refused on its row; a good one applies.
        let refused = ops
            .post(
                "/admin/support/targets",
                &[
                    ("csrf", &csrf),
                    ("priority", "low"),
                    ("first_response_minutes", "abc"),
                    ("resolution_minutes", "60"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.html.contains("id=\"target-error-low\"")
                && refused.html.contains("n&#x27;est pas un nombre entier")
        );
        let refused = ops
            .post(
                "/admin/support/targets",
                &[
                    ("csrf", &csrf),
                    ("priority", "low"),
                    ("first_response_minutes", "120"),
                    ("resolution_minutes", "60"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused
                .html
                .contains("plus courte que le délai de première réponse"),
            "{}",
            refused.html
        );
        let saved = ops
            .post(
                "/admin/support/targets",
                &[
                    ("csrf", &csrf),
                    ("priority", "low"),
                    ("first_response_minutes", "720"),
                    ("resolution_minutes", "4320"),
                ],
            )
            .await;
        assert_eq!(saved.location, "/admin/support/targets?done=target_saved");
        let page = ops.get(&saved.location).await;
        assert!(page.html.contains("12\u{a0}h"), "{}", page.html);

        // Canned replies: added, then deleted; a second with the same title is refused.
        let added = ops
            .post(
                "/admin/support/canned",
                &[
                    ("csrf", &csrf),
                    ("title", "Bienvenue"),
                    ("body", "Bonjour !"),
                ],
            )
            .await;
        assert_eq!(added.location, "/admin/support/canned?done=canned_added");
        let again = ops
            .post(
                "/admin/support/canned",
                &[("csrf", &csrf), ("title", "Bienvenue"), ("body", "Re")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.html.contains("id=\"title-error\""));
        let page = ops.get("/admin/support/canned").await;
        let at = page.html.find("data-canned=\"").unwrap() + 13;
        let canned_id = page.html[at..].split('"').next().unwrap().to_string();
        let page = ops.get(&format!("{}?canned={canned_id}", urls[1])).await;
        assert!(
            page.html.contains(">Bonjour !</textarea>"),
            "the canned reply fills the message"
        );
        let deleted = ops
            .post(
                &format!("/admin/support/canned/{canned_id}/delete"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(
            deleted.location,
            "/admin/support/canned?done=canned_deleted"
        );

        // A credential-loss report, signed out, with an identity document.
        let mut anon = Browser::new(&site);
        let csrf_anon = anon.get("/lost-credentials").await.csrf();
        let sent = anon
            .upload(
                "/lost-credentials",
                &[
                    ("csrf", &csrf_anon),
                    ("email", "camille@example.test"),
                    ("name", "Alex Durand"),
                    ("statement", "On m'a volé mon ordinateur."),
                ],
                ("proof", "cni.pdf", "application/pdf", b"%PDF-1.4\n%\n"),
            )
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.html);
        assert!(sent.html.contains("id=\"lost-sent\""));
        let queue = ops.get("/admin/support?kind=credential_loss").await;
        let at = queue.html.find("id=\"queue\"").unwrap();
        let at = at + queue.html[at..].find("href=\"").unwrap() + 6;
        let report_url = queue.html[at..]
            .split('"')
            .next()
            .unwrap()
            .replace("&#x2f;", "/");
        let page = ops.get(&report_url).await;
        assert!(page.html.contains("id=\"decide\"") && page.html.contains("cni.pdf"));
        let refused = ops
            .post(
                &format!("{report_url}/credential-loss"),
                &[("csrf", &csrf), ("decision", "reject"), ("note", " ")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.html.contains("id=\"note-error\"")
                && refused.html.contains("expliquez au demandeur")
        );
        assert_eq!(
            sub.get("/account").await.status,
            StatusCode::OK,
            "still signed in"
        );
        let confirmed = ops
            .post(
                &format!("{report_url}/credential-loss"),
                &[("csrf", &csrf), ("decision", "confirm"), ("note", "")],
            )
            .await;
        assert_eq!(confirmed.location, format!("{report_url}?done=confirmed"));
        let page = ops.get(&confirmed.location).await;
        assert!(!page.html.contains("id=\"decide\""), "decided once");
        assert!(page.html.contains("Confirmé : identifiants révoqués"));
        let gone = sub.get("/account").await;
        assert_eq!(
            gone.status,
            StatusCode::SEE_OTHER,
            "every session of the subscriber ended"
        );

        // A registered letter, with its date of receipt.
        let page = ops.get(&urls[1]).await;
        let at = page.html.find("href=\"/admin/subscribers/").unwrap() + 25;
        let subscriber_id = page.html[at..].split('"').next().unwrap().to_string();
        let recorded = ops
            .upload(
                "/admin/support/letters",
                &[
                    ("csrf", &csrf),
                    ("subscriber_id", &subscriber_id),
                    ("received_on", "2026-11-25"),
                    ("subject", "other"),
                    ("summary", "Demande de copie du contrat."),
                    ("end", "month_end"),
                ],
                ("scan", "lettre.pdf", "application/pdf", b"%PDF-1.4\n%\n"),
            )
            .await;
        assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.html);
        assert!(recorded.location.ends_with("?done=letter"));
        let page = ops.get(&recorded.location).await;
        assert!(
            page.html.contains("Courrier recommandé")
                && page.html.contains("lettre.pdf")
                && page.html.contains("2026-11-25")
        );

        // The month's report counts them all, the merged one as part of the one it joined.
        let report = ops.get("/admin/support/report?month=2026-11").await;
        assert_eq!(report.status, StatusCode::OK);
        let total = &report.html[report.html.find("data-priority=\"all\"").unwrap()..];
        let total = &total[..total.find("</tr>").unwrap()];
        assert!(total.contains("<td class=\"num\">3</td>"), "{total}");
    }

    /// The personal-data pages, both sides and public, in French then in English, refused
    /// forms included: every string from the catalogs, every refusal next to its form.
    #[tokio::test]
    async fn privacy_pages_speak_french_and_english() {
        let site = site().await;
        let mut sub = Browser::new(&site);
        let csrf = sub.get("/signup").await.csrf();
        sub.post("/signup", &signup_form(&csrf, "camille@example.test"))
            .await;
        // Marketing goes to confirmed addresses only: hers is (as if she followed the link).
        {
            let mut tx = site.app.db().write().await.unwrap();
            let a = tx.account_by_email("camille@example.test").await.unwrap();
            tx.account_set_email_verified(a.id, site.app.now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let page = sub.get("/account/privacy").await;
        assert_eq!(page.status, StatusCode::OK);
        readable(&page, "the subscriber's page");
        assert!(page.html.contains("privacy\" aria-current=\"page\""));
        assert!(
            !page.html.contains(" checked"),
            "opt-in: nothing ticked by default"
        );
        let csrf = page.csrf();

        // Consents: only what changed is recorded, with its source.
        let saved = sub
            .post(
                "/account/privacy/consents",
                &[
                    ("csrf", &csrf),
                    ("granted", "surveys"),
                    ("granted", "loyalty"),
                ],
            )
            .await;
        assert_eq!(
            saved.location,
            "/account/privacy?done=consents_saved#consents"
        );
        let saved = sub
            .post(
                "/account/privacy/consents",
                &[
                    ("csrf", &csrf),
                    ("shown", "surveys"),
                    ("shown", "loyalty"),
                    ("granted", "loyalty"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER);
        let page = sub.get("/account/privacy?done=consents_saved").await;
        assert!(page.html.contains("Vos choix sont enregistrés."));
        assert_eq!(
            page.html.matches("data-source=\"console\"").count(),
            3,
            "surveys given, loyalty given, surveys withdrawn"
        );
        assert!(page
            .html
            .contains("id=\"consent-loyalty\" name=\"granted\" value=\"loyalty\" checked"));
        let refused = sub
            .post(
                "/account/privacy/consents",
                &[("csrf", "forged"), ("granted", "promotions")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        // Restriction: a reason with a line break is refused at its own field.
        let refused = sub
            .post(
                "/account/privacy/choices",
                &[
                    ("csrf", &csrf),
                    ("choice", "restriction"),
                    ("active", "1"),
                    ("restriction_reason", &"x".repeat(1001)),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused restriction");
        assert!(
            refused.html.contains("id=\"restriction_reason-error\"")
                && refused.html.contains("href=\"#field-restriction_reason\"")
                && refused.html.contains("est trop long"),
            "{}",
            refused.html
        );
        let set = sub
            .post(
                "/account/privacy/choices",
                &[
                    ("csrf", &csrf),
                    ("choice", "objection"),
                    ("active", "1"),
                    ("objection_reason", "Pas de profilage, merci."),
                ],
            )
            .await;
        assert_eq!(set.location, "/account/privacy?done=objection_on#choices");
        let page = sub.get(&set.location).await;
        assert!(
            page.html.contains("Pas de profilage, merci.")
                && page
                    .html
                    .contains("id=\"objection-submit\">Lever l&#x27;opposition")
        );

        // The export: asked once; asking again while it is prepared is refused in its section.
        let asked = sub
            .post("/account/privacy/exports", &[("csrf", &csrf)])
            .await;
        assert_eq!(
            asked.location,
            "/account/privacy?done=export_requested#export"
        );
        let again = sub
            .post("/account/privacy/exports", &[("csrf", &csrf)])
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        readable(&again, "the refused export");
        assert!(again.html.contains("Un export est déjà en préparation."));
        assert!(again.html.contains("id=\"export-preparing\""));

        // Erasure: the code is sent; a wrong address and a wrong code are refused at their fields.
        let asked = sub
            .post("/account/privacy/erasure", &[("csrf", &csrf)])
            .await;
        assert_eq!(
            asked.location,
            "/account/privacy?done=erasure_code_sent#erasure"
        );
        let page = sub.get(&asked.location).await;
        assert!(page.html.contains("id=\"erasure-confirm\""));
        let refused = sub
            .post(
                "/account/privacy/erasure/confirm",
                &[
                    ("csrf", &csrf),
                    ("code", "AAAAAAAAAA"),
                    ("email", "x@example.test"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused erasure");
        assert!(
            refused.html.contains("id=\"email-error\"")
                && refused.html.contains("value=\"AAAAAAAAAA\"")
        );
        let refused = sub
            .post(
                "/account/privacy/erasure/confirm",
                &[
                    ("csrf", &csrf),
                    ("code", "AAAAAAAAAA"),
                    ("email", "camille@example.test"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.html.contains("id=\"code-error\"")
                && refused.html.contains("demandez-en un nouveau")
        );
        assert_eq!(
            sub.get("/account").await.status,
            StatusCode::OK,
            "still there"
        );

        // The back office: the register editor, the statistics, the marketing email.
        let mut ops = operator_browser(&site, "admin@example.test", OperatorRole::Admin).await;
        let page = ops.get("/admin/privacy").await;
        assert_eq!(page.status, StatusCode::OK);
        readable(&page, "the back office's page");
        let csrf_op = page.csrf();
        let refused = ops
            .post(
                "/admin/privacy/processors",
                &[
                    ("csrf", &csrf_op),
                    ("kind", "processor"),
                    ("name", "Postmark <i>"),
                    ("purpose", "Envoi des e-mails"),
                    ("data_categories", "adresse e-mail"),
                    ("country", "France"),
                    ("safeguards", ""),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused entry");
        assert!(
            refused.html.contains("id=\"field-country-error\"")
                && refused.html.contains("href=\"#field-safeguards\"")
                && refused.html.contains("value=\"Postmark &lt;i&gt;\""),
            "{}",
            refused.html
        );
        let added = ops
            .post(
                "/admin/privacy/processors",
                &[
                    ("csrf", &csrf_op),
                    ("kind", "processor"),
                    ("name", "Postmark"),
                    ("purpose", "Envoi des e-mails"),
                    ("data_categories", "adresse e-mail"),
                    ("country", "us"),
                    ("safeguards", "Clauses contractuelles types"),
                ],
            )
            .await;
        assert_eq!(
            added.location,
            "/admin/privacy?done=processor_added#register"
        );
        let page = ops.get(&added.location).await;
        let at = page.html.find("data-processor=\"").unwrap() + 16;
        let id = page.html[at..].split('"').next().unwrap().to_string();
        let refused = ops
            .post(
                &format!("/admin/privacy/processors/{id}"),
                &[
                    ("csrf", &csrf_op),
                    ("kind", "recipient"),
                    ("name", "Postmark"),
                    ("purpose", ""),
                    ("data_categories", "adresse e-mail"),
                    ("country", "US"),
                    ("safeguards", "CCT"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused edit");
        assert!(
            refused
                .html
                .contains(&format!("id=\"p-{id}-purpose-error\""))
                && !refused.html.contains("id=\"field-purpose-error\""),
            "the error stays with its entry"
        );
        let refused = ops.get("/admin/privacy?since=2026-13").await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        readable(&refused, "the refused month");
        assert!(refused.html.contains("id=\"since-error\""));
        let sent = ops
            .post(
                "/admin/privacy/marketing",
                &[
                    ("csrf", &csrf_op),
                    ("marketing_purpose", "loyalty"),
                    ("subject", "Merci"),
                    ("body", "Un cadeau pour vous."),
                ],
            )
            .await;
        assert_eq!(
            sent.location, "/admin/privacy?done=marketing_sent&count=1#marketing",
            "she objected, but objection does not stop the marketing she consented to: {}",
            sent.html
        );

        let mut anon = Browser::new(&site);
        let pages: Vec<(&str, &str)> = vec![
            ("the subscriber's page", "/account/privacy?step=code"),
            ("the back office's page", "/admin/privacy"),
            ("the register", "/processors"),
            ("the opt-out page", "/unsubscribe?t=x"),
        ];
        for lang in ["fr", "en"] {
            if lang == "en" {
                for b in [&mut sub, &mut ops] {
                    let csrf = b.get("/account/security").await.csrf();
                    b.post("/lang", &[("csrf", &csrf), ("lang", "en"), ("next", "/")])
                        .await;
                }
                anon.accept_language = "en-GB,en;q=0.9";
            }
            for (what, path) in &pages {
                let b = if path.starts_with("/admin") {
                    &mut ops
                } else if path.starts_with("/account") {
                    &mut sub
                } else {
                    &mut anon
                };
                let page = b.get(path).await;
                assert_eq!(page.status, StatusCode::OK, "{what} in {lang}");
                assert!(page.html.contains(&format!("<html lang=\"{lang}\">")));
                readable(&page, &format!("{what} in {lang}"));
                assert!(
                    page.html.contains("href=\"/processors\""),
                    "{what}: the footer"
                );
            }
        }
        let page = anon.get("/processors").await;
        assert!(page.html.contains("Postmark") && page.html.contains("Processor"));
        // A bad link on the opt-out page, in English this time.
        let form = anon.get("/unsubscribe?t=nope").await;
        let done = anon
            .post("/unsubscribe", &[("csrf", &form.csrf()), ("t", "nope")])
            .await;
        assert_eq!(done.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            done.html.contains("id=\"token-error\"")
                && done.html.contains("is not a valid opt-out link")
        );
    }
}
