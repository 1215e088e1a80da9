//! The support desk (R-1d) in the back office. The queue, narrowed by status, priority,
//! category, kind, assignee ("me", nobody) and breach risk, each row with its deadlines and a
//! breach or escalation badge; a ticket with its whole thread (internal notes marked), its
//! events, the subscriber's context beside it (offers, VMs, buckets, unpaid invoices,
//! suspensions, other tickets), and its forms: reply (a canned reply may fill it in, through
//! `?canned=ID`) or internal note, status/priority/category/assignee, merge into another of the
//! requester's tickets, and the decision on a credential-loss report (R-5a). Beside the queue:
//! the response targets (admins edit them), the canned replies, the monthly report, and the
//! recording of a registered letter (R-7.2a). Each use case checks the operator's role: a
//! refusal is the console's 403 page.

use super::account::cursor;
use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::storage::bytes_text;
use super::support::{
    attachment_download, done_notice, field_errors, field_label, options, path_id, read_form,
    refusal, refusal_status, targets_view, thread_value, ticket_value, Token, FORM_LIMIT,
    LIST_PAGE,
};
use super::view::when;
use super::visitor::{OperatorIn, SignedIn};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::i18n::{self, Lang};
use maocloud_app::support::{
    self, LetterInput, NewReply, SupportTarget, TicketEvent, TicketFilter, TicketUpdate,
};
use maocloud_app::Error;
use maocloud_billing::calendar::paris_date;
use maocloud_types::{PageRequest, Principal, SubscriberId, SubscriptionId};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

/// What a ticket may be: a subscriber's request, or what the forms and letters opened.
const KINDS: [&str; 4] = ["request", "credential_loss", "abuse_report", "letter"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/support", get(queue))
        .route("/admin/support/targets", get(targets).post(target_set))
        .route("/admin/support/canned", get(canned).post(canned_add))
        .route("/admin/support/canned/{id}/delete", post(canned_delete))
        .route("/admin/support/report", get(report))
        .route("/admin/support/letters/new", get(letter_form))
        .route(
            "/admin/support/letters",
            post(letter_record).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/admin/support/{id}", get(ticket))
        .route(
            "/admin/support/{id}/reply",
            post(reply).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/admin/support/{id}/update", post(update))
        .route("/admin/support/{id}/merge", post(merge))
        .route("/admin/support/{id}/credential-loss", post(decide))
        .route(
            "/admin/support/{id}/attachments/{aid}",
            get(attachment_file),
        )
}

/// The signed-in operator's id, as tickets record assignees.
fn me(s: &SignedIn) -> String {
    match s.ctx.principal {
        Principal::Operator { id, .. } => id.to_string(),
        _ => String::new(),
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Option<String> {
    allowed.contains(&value).then(|| value.to_owned())
}

// --- The queue ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct QueueQuery {
    /// `active` (the default), `all`, or one status.
    status: String,
    priority: String,
    category: String,
    kind: String,
    /// `me` or `none`.
    assignee: String,
    at_risk: String,
    #[serde(skip_serializing)]
    cursor: String,
}

async fn queue(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let lang = s.v.lang;
    let mut q: QueueQuery = forms::query(raw.as_deref());
    if q.status.is_empty() {
        q.status = "active".into();
    }
    let mine = me(&s);
    let mut filter = TicketFilter {
        priority: one_of(&q.priority, &support::PRIORITIES),
        category: one_of(&q.category, &support::CATEGORIES),
        kind: one_of(&q.kind, &KINDS),
        ..TicketFilter::default()
    };
    // What the page shows and its links carry: only the filters that apply.
    q.priority = filter.priority.clone().unwrap_or_default();
    q.category = filter.category.clone().unwrap_or_default();
    q.kind = filter.kind.clone().unwrap_or_default();
    match q.status.as_str() {
        "all" => {}
        s if support::STATUSES.contains(&s) => filter.status = Some(s.to_owned()),
        _ => {
            q.status = "active".into();
            filter.active_only = true;
        }
    }
    match q.assignee.as_str() {
        "me" => filter.assignee = Some(mine.clone()),
        "none" => filter.unassigned = true,
        _ => q.assignee.clear(),
    }
    if q.at_risk == "1" {
        filter.at_risk_before = Some(support::at_risk_horizon(&st.app));
    } else {
        q.at_risk.clear();
    }
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let listing = support::list(&st.app, &s.ctx, filter, &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let now = st.app.now();
    let rows: Vec<Value> = listing
        .items
        .iter()
        .map(|t| {
            let assigned = match t.assignee_id.as_deref() {
                None => "none",
                Some(a) if a == mine => "me",
                Some(_) => "other",
            };
            context! { assigned => assigned, ..ticket_value(t, now, "/admin/support") }
        })
        .collect();
    let filters = serde_urlencoded::to_string(&q).unwrap_or_default();
    let mut statuses = vec![
        context! { value => "active", label => s.v.t("console.admin_support.filter_active") },
        context! { value => "all", label => s.v.t("console.admin_support.filter_all") },
    ];
    statuses.extend(options(
        lang,
        "console.admin_support.status",
        &support::STATUSES,
    ));
    let any = || vec![context! { value => "", label => s.v.t("console.admin_support.filter_any") }];
    let with_any = |prefix: &str, values: &[&str]| {
        let mut v = any();
        v.extend(options(lang, prefix, values));
        v
    };
    let assignees = vec![
        context! { value => "", label => s.v.t("console.admin_support.filter_any") },
        context! { value => "me", label => s.v.t("console.admin_support.assignee_me") },
        context! { value => "none", label => s.v.t("console.admin_support.assignee_none") },
    ];
    let ctx = context! {
        section => "admin",
        tickets => rows,
        filter => &q,
        statuses => statuses,
        priorities => with_any("support.priority", &support::PRIORITIES),
        categories => with_any("support.category", &support::CATEGORIES),
        kinds => with_any("support.kind", &KINDS),
        assignees => assignees,
        next_url => listing.next_cursor.map(|c| format!("/admin/support?{filters}&cursor={c}")),
        first_url => cursor(&q.cursor).map(|_| format!("/admin/support?{filters}")),
    };
    Ok(s.v.page(StatusCode::OK, "admin/support.html", ctx))
}

// --- One ticket ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TicketQuery {
    done: String,
    canned: String,
}

/// A form of the ticket page that was refused: which one, its errors or alert, what was typed.
#[derive(Default)]
struct Refused {
    form: &'static str,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    reply: ReplyValues,
    update: Option<UpdateForm>,
    note: String,
}

#[derive(Debug, Default, Serialize)]
struct ReplyValues {
    message: String,
    reply_status: String,
    internal: bool,
}

async fn ticket(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = path_id(&s.v, &id)?;
    let q: TicketQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q.done);
    let refused = Refused::default();
    ticket_page(&st, &s, &id, StatusCode::OK, notice, &q.canned, refused).await
}

/// An event's details in words.
fn event_detail(lang: Lang, e: &TicketEvent) -> String {
    let d = &e.detail;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let label = |prefix: &str, k: &str| {
        let v = s(k);
        let key = format!("{prefix}.{v}");
        let text = i18n::t(lang, &key);
        if text == key {
            v
        } else {
            text
        }
    };
    let change = |prefix: &str| format!("{} → {}", label(prefix, "from"), label(prefix, "to"));
    let number = |k: &str| d.get(k).map(|v| v.to_string()).unwrap_or_default();
    match e.kind.as_str() {
        "status" => {
            let mut text = change("console.admin_support.status");
            if d.get("auto").and_then(|v| v.as_bool()) == Some(true) {
                text = format!("{text} ({})", i18n::t(lang, "console.admin_support.auto"));
            }
            text
        }
        "priority" => change("support.priority"),
        "category" => change("support.category"),
        "assigned" => match d.get("to").and_then(|v| v.as_str()) {
            Some(to) => to.to_owned(),
            None => i18n::t(lang, "console.admin_support.assignee_none"),
        },
        "merged" => format!("→ #{}", number("into")),
        "merged_from" => format!("← #{}", number("from")),
        "escalated" | "breached" => i18n::tf(
            lang,
            "console.admin_support.event_due",
            &[
                ("target", &label("console.admin_support.target", "target")),
                ("due", &s("due")),
            ],
        ),
        "rated" => format!("{}/5", number("rating")),
        "credential_loss" => label("console.admin_support.decision", "decision"),
        "opened" => label("console.admin_support.source", "source"),
        "reopened" => s("via"),
        _ => String::new(),
    }
}

async fn ticket_page(
    st: &AppState,
    s: &SignedIn,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    canned: &str,
    refused: Refused,
) -> Page {
    let fail = |e| s.v.fail(e);
    let lang = s.v.lang;
    let view = support::get(&st.app, &s.ctx, id).await.map_err(fail)?;
    let around = support::context(&st.app, &s.ctx, id).await.map_err(fail)?;
    let canned_list = support::canned_list(&st.app, &s.ctx).await.map_err(fail)?;
    let t = &view.ticket;
    let base = "/admin/support";
    let mut reply = refused.reply;
    if reply.reply_status.is_empty() {
        reply.reply_status = "waiting".into();
    }
    if let Some(c) = canned_list.iter().find(|c| c.id == canned.trim()) {
        reply.message = c.body.clone();
    }
    let update = refused.update.unwrap_or_else(|| UpdateForm {
        status: t.status.clone(),
        priority: t.priority.clone(),
        category: t.category.clone(),
        assign: String::new(),
        ..UpdateForm::default()
    });
    let mine = me(s);
    let merge_choices: Vec<Value> = around
        .other_tickets
        .iter()
        .map(|(tid, number, subject, status)| {
            context! {
                value => tid,
                label => i18n::tf(lang, "console.admin_support.ticket_choice", &[
                    ("number", &number.to_string()),
                    ("subject", subject),
                    ("status", &i18n::t(lang, &format!("console.admin_support.status.{status}"))),
                ]),
            }
        })
        .collect();
    let subscriber_ctx = context! {
        subscriber_id => around.subscriber_id.map(|x| x.to_string()),
        name => &around.name,
        email => &around.email,
        subscriptions => around.subscriptions.iter().map(|(sid, offer, status)| context! { id => sid, offer => offer, status => status }).collect::<Vec<_>>(),
        vms => around.vms.iter().map(|(vid, name, state)| context! { id => vid, name => name, state => state }).collect::<Vec<_>>(),
        buckets => around.buckets.iter().map(|(name, bytes, objects)| context! { name => name, size => bytes_text(lang, *bytes), objects => objects }).collect::<Vec<_>>(),
        unpaid => around.unpaid.iter().map(|(number, due, cents)| context! { number => number, due_date => due, remaining => cents }).collect::<Vec<_>>(),
        suspensions => around.suspensions.iter().map(|(cause, status, since)| context! { cause => cause, status => status, since => since.map(when) }).collect::<Vec<_>>(),
        other_tickets => around.other_tickets.iter().map(|(tid, number, subject, status)| context! { url => format!("{base}/{tid}"), number => number, subject => subject, status => status }).collect::<Vec<_>>(),
    };
    let ticket = ticket_value(t, st.app.now(), base);
    let can_decide = t.kind == "credential_loss"
        && t.detail.get("status").and_then(|v| v.as_str()) == Some("pending");
    let mut canned_options =
        vec![context! { value => "", label => s.v.t("console.admin_support.canned_choose") }];
    canned_options.extend(
        canned_list
            .iter()
            .map(|c| context! { value => &c.id, label => &c.title }),
    );
    let assigns = vec![
        context! { value => "", label => s.v.t("console.admin_support.assign_keep") },
        context! { value => "me", label => s.v.t("console.admin_support.assign_me") },
        context! { value => "none", label => s.v.t("console.admin_support.assign_none") },
        context! { value => "other", label => s.v.t("console.admin_support.assign_other") },
    ];
    let ctx = context! {
        section => "admin",
        ticket => ticket,
        mine => t.assignee_id.as_deref() == Some(mine.as_str()),
        thread => thread_value(lang, &view, base),
        events => view.events.iter().map(|e| context! {
            kind => &e.kind,
            actor => &e.actor,
            at => when(e.created_at),
            detail => event_detail(lang, e),
        }).collect::<Vec<_>>(),
        assignee_name => &view.assignee_name,
        subscriber => view.subscriber.as_ref().map(|(sid, name, email)| context! { id => sid.to_string(), name => name, email => email }),
        around => subscriber_ctx,
        canned => canned_options,
        canned_selected => canned.trim(),
        reply_form => reply,
        reply_statuses => options(lang, "console.admin_support.status", &["waiting", "open", "resolved"]),
        update_form => update,
        statuses => options(lang, "console.admin_support.status", &support::STATUSES),
        priorities => options(lang, "support.priority", &support::PRIORITIES),
        categories => options(lang, "support.category", &support::CATEGORIES),
        assigns => assigns,
        merge_choices => merge_choices,
        can_decide => can_decide,
        decide_note => refused.note,
        max_files => support::MAX_ATTACHMENTS,
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        refused => refused.form,
        alert => refused.alert,
        notice => notice,
    };
    Ok(s.v.page(
        status,
        "admin/support_ticket.html",
        with_errors(ctx, refused.errors),
    ))
}

/// The ticket page again after a refused form: its field errors next to the fields, or its
/// alert; anything else is an error page.
#[allow(clippy::too_many_arguments)]
async fn refused_page(
    st: &AppState,
    s: &SignedIn,
    id: &str,
    e: Error,
    fields: &[&str],
    files: &[String],
    rename: &(dyn Fn(&str) -> Option<&'static str> + Sync),
    mut refused: Refused,
) -> Page {
    let status = refusal_status(&e);
    match field_errors(s.v.lang, e, fields, files, rename) {
        Ok(errors) => refused.errors = Some(errors),
        Err(e) => match refusal(&s.v, &e) {
            Some((_, alert)) => refused.alert = Some(alert),
            None => return Err(s.v.fail(e)),
        },
    }
    ticket_page(st, s, id, status, None, "", refused).await
}

async fn reply(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    body: Multipart,
) -> Page {
    let id = path_id(&s.v, &id)?;
    let mut f = read_form(&s.v, body, Token::Session).await?;
    let values = ReplyValues {
        message: f.text("message"),
        reply_status: f.text("reply_status").trim().to_owned(),
        internal: !f.text("internal").is_empty(),
    };
    let attachments = f.files("attachments");
    let names: Vec<String> = attachments.iter().map(|a| a.file_name.clone()).collect();
    let input = NewReply {
        body: values.message.clone(),
        internal: values.internal,
        status: forms::opt(&values.reply_status).filter(|_| !values.internal),
        attachments,
        external_id: None,
    };
    match support::reply(&st.app, &s.ctx, &id, input).await {
        Ok(_) => {
            let done = if values.internal { "noted" } else { "replied" };
            Ok(s.v.redirect(&format!("/admin/support/{id}?done={done}#thread")))
        }
        Err(e) => {
            let refused = Refused {
                form: "reply",
                reply: values,
                ..Refused::default()
            };
            let fields = ["message", "reply_status", "internal", "attachments"];
            let rename = |f: &str| (f == "status").then_some("reply_status");
            refused_page(&st, &s, &id, e, &fields, &names, &rename, refused).await
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct UpdateForm {
    #[serde(skip_serializing)]
    csrf: String,
    status: String,
    priority: String,
    category: String,
    /// "" (unchanged), `me`, `none` or `other` (then `assignee_id`).
    assign: String,
    assignee_id: String,
}

async fn update(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<UpdateForm>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    let assignee = match form.assign.as_str() {
        "me" => Some(Some(me(&s))),
        "none" => Some(None),
        "other" => Some(Some(form.assignee_id.trim().to_owned())),
        _ => None,
    };
    let change = TicketUpdate {
        status: forms::opt(&form.status),
        priority: forms::opt(&form.priority),
        category: forms::opt(&form.category),
        assignee,
    };
    match support::update(&st.app, &s.ctx, &id, change).await {
        Ok(_) => Ok(s.v.redirect(&format!("/admin/support/{id}?done=updated"))),
        Err(e) => {
            let refused = Refused {
                form: "update",
                update: Some(form),
                ..Refused::default()
            };
            let fields = ["status", "priority", "category", "assignee_id"];
            refused_page(&st, &s, &id, e, &fields, &[], &|_| None, refused).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MergeForm {
    csrf: String,
    into: String,
}

async fn merge(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    match support::merge(&st.app, &s.ctx, &id, form.into.trim()).await {
        Ok(view) => {
            Ok(s.v.redirect(&format!("/admin/support/{}?done=merged", view.ticket.id)))
        }
        Err(e) => {
            let refused = Refused {
                form: "merge",
                ..Refused::default()
            };
            refused_page(&st, &s, &id, e, &["into"], &[], &|_| None, refused).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DecideForm {
    csrf: String,
    decision: String,
    note: String,
}

async fn decide(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    let confirm = match form.decision.as_str() {
        "confirm" => true,
        "reject" => false,
        _ => {
            return Err(s.v.status_page(
                StatusCode::BAD_REQUEST,
                "console.error.invalid_title",
                s.v.t("console.error.bad_form"),
            ))
        }
    };
    match support::credential_loss_decide(&st.app, &s.ctx, &id, confirm, &form.note).await {
        Ok(_) => {
            let done = if confirm { "confirmed" } else { "rejected" };
            Ok(s.v.redirect(&format!("/admin/support/{id}?done={done}")))
        }
        Err(e) => {
            let refused = Refused {
                form: "decide",
                note: form.note,
                ..Refused::default()
            };
            refused_page(&st, &s, &id, e, &["note"], &[], &|_| None, refused).await
        }
    }
}

async fn attachment_file(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path((id, aid)): Path<(String, String)>,
) -> Page {
    attachment_download(&st, &s, &id, &aid).await
}

// --- Response targets ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct TargetForm {
    #[serde(skip_serializing)]
    csrf: String,
    priority: String,
    first_response_minutes: String,
    resolution_minutes: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
    month: String,
    subscriber: String,
}

async fn targets(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: DoneQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q.done);
    targets_page(&st, &s, StatusCode::OK, None, notice).await
}

/// The targets, each with its form; `refused`: the form refused, with why.
async fn targets_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    refused: Option<(TargetForm, String)>,
    notice: Option<String>,
) -> Page {
    let list = support::targets(&st.app).await.map_err(|e| s.v.fail(e))?;
    let (form, alert) = refused.unzip();
    let ctx = context! {
        section => "admin",
        targets => targets_view(s.v.lang, &list),
        refused_priority => form.as_ref().map(|f| f.priority.clone()),
        refused_form => form,
        alert => alert,
        can_edit => s.ctx.require_operator(&[]).is_ok(),
        notice => notice,
    };
    Ok(s.v.page(status, "admin/support_targets.html", ctx))
}

async fn target_set(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<TargetForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let lang = s.v.lang;
    let minutes = |field: &str, value: &str| {
        value.trim().parse::<i64>().map_err(|_| {
            i18n::tf(
                lang,
                "console.form.summary_item",
                &[
                    ("field", &field_label(lang, field)),
                    ("reason", &s.v.t("console.form.not_a_number")),
                ],
            )
        })
    };
    let parsed = [
        minutes("first_response_minutes", &form.first_response_minutes),
        minutes("resolution_minutes", &form.resolution_minutes),
    ];
    let (fr, res) = match parsed {
        [Ok(fr), Ok(res)] => (fr, res),
        [a, b] => {
            let text = [a.err(), b.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return targets_page(&st, &s, status, Some((form, text)), None).await;
        }
    };
    let target = SupportTarget {
        priority: form.priority.trim().to_owned(),
        first_response_minutes: fr,
        resolution_minutes: res,
    };
    match support::set_target(&st.app, &s.ctx, target).await {
        Ok(_) => Ok(s.v.redirect("/admin/support/targets?done=target_saved")),
        Err(e) => match refusal(&s.v, &e) {
            Some((status, text)) => targets_page(&st, &s, status, Some((form, text)), None).await,
            None => Err(s.v.fail(e)),
        },
    }
}

// --- Canned replies ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct CannedForm {
    #[serde(skip_serializing)]
    csrf: String,
    title: String,
    body: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn canned(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: DoneQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q.done);
    canned_page(
        &st,
        &s,
        StatusCode::OK,
        &CannedForm::default(),
        None,
        notice,
    )
    .await
}

async fn canned_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &CannedForm,
    errors: Option<FieldErrors>,
    notice: Option<String>,
) -> Page {
    let list = support::canned_list(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "admin",
        replies => list.iter().map(|c| context! {
            id => &c.id,
            title => &c.title,
            body => &c.body,
            created_by => &c.created_by,
            created_at => when(c.created_at),
        }).collect::<Vec<_>>(),
        form => form,
        can_edit => s.ctx.require_operator(&[maocloud_types::OperatorRole::Support]).is_ok(),
        notice => notice,
    };
    Ok(s.v.page(
        status,
        "admin/support_canned.html",
        with_errors(ctx, errors),
    ))
}

async fn canned_add(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<CannedForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match support::canned_create(&st.app, &s.ctx, &form.title, &form.body).await {
        Ok(_) => Ok(s.v.redirect("/admin/support/canned?done=canned_added")),
        Err(e) => {
            let status = refusal_status(&e);
            match field_errors(s.v.lang, e, &["title", "body"], &[], &|_| None) {
                Ok(errors) => canned_page(&st, &s, status, &form, Some(errors), None).await,
                Err(e) => Err(s.v.fail(e)),
            }
        }
    }
}

async fn canned_delete(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    support::canned_delete(&st.app, &s.ctx, &id)
        .await
        .map_err(|e| s.v.fail(e))?;
    Ok(s.v.redirect("/admin/support/canned?done=canned_deleted"))
}

// --- The monthly report ---

async fn report(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: DoneQuery = forms::query(raw.as_deref());
    let month = match q.month.trim() {
        "" => paris_date(st.app.now()).strftime("%Y-%m").to_string(),
        m => m.to_owned(),
    };
    let (status, rows, errors) = match support::report(&st.app, &s.ctx, &month).await {
        Ok(rows) => (StatusCode::OK, rows, None),
        Err(e) => {
            let status = refusal_status(&e);
            match field_errors(s.v.lang, e, &["month"], &[], &|_| None) {
                Ok(errors) => (status, vec![], Some(errors)),
                Err(e) => return Err(s.v.fail(e)),
            }
        }
    };
    let ctx = context! {
        section => "admin",
        month => month,
        rows => rows.iter().map(|r| context! {
            priority => &r.priority,
            tickets => r.tickets,
            first_response_within => r.first_response_within,
            first_response_breached => r.first_response_breached,
            // Per mille, shown with the VAT rate's formatter (basis points): ‰ × 10.
            first_response_share_bp => r.first_response_share_permille.map(|p| p * 10),
            resolution_within => r.resolution_within,
            resolution_breached => r.resolution_breached,
            resolution_share_bp => r.resolution_share_permille.map(|p| p * 10),
            ratings => r.ratings,
            // Hundredths, shown with the quantity formatter (thousandths).
            mean_rating_milli => r.mean_rating_x100.map(|m| m * 10),
        }).collect::<Vec<_>>(),
    };
    Ok(s.v.page(
        status,
        "admin/support_report.html",
        with_errors(ctx, errors),
    ))
}

// --- Registered letters (R-7.2a) ---

#[derive(Debug, Default, Serialize)]
struct LetterForm {
    subscriber_id: String,
    received_on: String,
    subject: String,
    summary: String,
    subscription_id: String,
    end: String,
    end_date: String,
}

async fn letter_form(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: DoneQuery = forms::query(raw.as_deref());
    let form = LetterForm {
        subscriber_id: q.subscriber.trim().to_owned(),
        received_on: paris_date(st.app.now()).to_string(),
        subject: "termination".into(),
        end: "month_end".into(),
        ..LetterForm::default()
    };
    Ok(letter_page(&s, StatusCode::OK, &form, None, None))
}

fn letter_page(
    s: &SignedIn,
    status: StatusCode,
    form: &LetterForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Response {
    let lang = s.v.lang;
    let ctx = context! {
        section => "admin",
        form => form,
        subjects => options(lang, "console.letter.subject", &support::LETTER_SUBJECTS),
        ends => options(lang, "console.termination.end", &["month_end", "date"]),
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        alert => alert,
    };
    s.v.page(
        status,
        "admin/support_letter.html",
        with_errors(ctx, errors),
    )
}

async fn letter_record(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    body: Multipart,
) -> Page {
    let mut f = read_form(&s.v, body, Token::Session).await?;
    let form = LetterForm {
        subscriber_id: f.text("subscriber_id").trim().to_owned(),
        received_on: f.text("received_on").trim().to_owned(),
        subject: f.text("subject").trim().to_owned(),
        summary: f.text("summary"),
        subscription_id: f.text("subscription_id").trim().to_owned(),
        end: f.text("end").trim().to_owned(),
        end_date: f.text("end_date").trim().to_owned(),
    };
    let scan = f.files("scan").into_iter().next();
    let names: Vec<String> = scan.iter().map(|a| a.file_name.clone()).collect();
    let mut errors = FieldErrors::default();
    let subscriber: Option<SubscriberId> = form.subscriber_id.parse().ok();
    if subscriber.is_none() {
        errors.push("subscriber_id", s.v.t("console.form.not_an_id"));
    }
    let received_on: Option<jiff::civil::Date> = form.received_on.parse().ok();
    if received_on.is_none() {
        errors.push("received_on", s.v.t("console.form.not_a_date"));
    }
    let termination = form.subject == "termination";
    let subscription: Option<SubscriptionId> = match forms::opt(&form.subscription_id) {
        Some(id) if termination => {
            let parsed = id.parse().ok();
            if parsed.is_none() {
                errors.push("subscription_id", s.v.t("console.form.not_an_id"));
            }
            parsed
        }
        _ => None,
    };
    let end_date = match forms::opt(&form.end_date) {
        Some(d) if termination && form.end == "date" => {
            let parsed = d.parse().ok();
            if parsed.is_none() {
                errors.push("end_date", s.v.t("console.form.not_a_date"));
            }
            parsed
        }
        _ => None,
    };
    let result = match (subscriber, received_on) {
        (Some(subscriber_id), Some(received_on)) if errors.is_empty() => {
            let input = LetterInput {
                subscriber_id,
                received_on,
                subject: form.subject.clone(),
                summary: form.summary.clone(),
                scan,
                subscription_id: subscription,
                end: termination.then(|| form.end.clone()),
                end_date,
            };
            support::record_letter(&st.app, &s.ctx, input).await
        }
        _ => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(view) => {
            Ok(s.v.redirect(&format!("/admin/support/{}?done=letter", view.ticket.id)))
        }
        Err(e) => {
            let status = refusal_status(&e);
            if !errors.is_empty() {
                return Ok(letter_page(&s, status, &form, Some(errors), None));
            }
            let fields = [
                "subscriber_id",
                "received_on",
                "subject",
                "summary",
                "scan",
                "subscription_id",
                "end",
                "end_date",
            ];
            let rename = |f: &str| (f == "date").then_some("end_date");
            match field_errors(s.v.lang, e, &fields, &names, &rename) {
                Ok(errors) => Ok(letter_page(&s, status, &form, Some(errors), None)),
                Err(e) => match refusal(&s.v, &e) {
                    Some((status, alert)) => Ok(letter_page(&s, status, &form, None, Some(alert))),
                    None => Err(s.v.fail(e)),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_in_words() {
        let e = |kind: &str, detail: serde_json::Value| TicketEvent {
            id: "e".into(),
            ticket_id: "t".into(),
            kind: kind.into(),
            actor: "Ada".into(),
            detail,
            created_at: "2026-11-26T09:00:00Z".parse().unwrap(),
        };
        let fr = |kind: &str, d| event_detail(Lang::Fr, &e(kind, d));
        assert_eq!(
            fr(
                "priority",
                serde_json::json!({"from": "normal", "to": "urgent"})
            ),
            "normale → urgente"
        );
        assert_eq!(fr("merged", serde_json::json!({"into": 12})), "→ #12");
        assert_eq!(fr("rated", serde_json::json!({"rating": 4})), "4/5");
        let due = fr(
            "breached",
            serde_json::json!({"target": "first_response", "due": "2026-11-26T09:30:00Z"}),
        );
        assert!(
            due.contains("2026-11-26T09:30:00Z") && !due.contains("first_response"),
            "{due}"
        );
    }
}
