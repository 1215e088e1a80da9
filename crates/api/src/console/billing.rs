//! Billing for visitors and subscribers: the public price list with its Subscribe
//! buttons, the subscriber's subscriptions with their quotas and the offer change
//! and their invoices and credit notes of the last 12 months with the PDFs, the
//! balance and the choice of paper or electronic invoices (R-6.1c, R-6.1d). Every amount is
//! integer cents; templates format it with `money(…)`.

use super::account::{cursor, CursorQuery};
use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::records::{BalanceView, DocumentRow, DocumentView, OfferView, SubscriptionRow};
use super::visitor::{SignedIn, Visitor};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::billing;
use maocloud_app::model::AccountKind;
use maocloud_app::Error;
use maocloud_types::{InvoiceId, OfferId, PageRequest, SubscriberId, SubscriptionId};
use minijinja::context;
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

/// Invoices per page of the subscriber's list (one a month and subscription: a year fits).
const DOCUMENTS_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/offers", get(price_list))
        .route("/account/subscription", get(subscription))
        .route("/account/subscriptions", post(subscribe))
        .route(
            "/account/subscriptions/{id}/change-offer",
            post(change_offer),
        )
        .route("/account/invoices", get(invoices))
        .route("/account/invoices/delivery", post(set_delivery))
        .route("/account/invoices/{id}", get(invoice))
        .route("/account/invoices/{id}/pdf", get(invoice_pdf))
        .route("/account/credit-notes/{id}", get(credit_note))
        .route("/account/credit-notes/{id}/pdf", get(credit_note_pdf))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OfferForm {
    csrf: String,
    offer_id: String,
}

fn offer_id(s: &str) -> Result<OfferId, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::invalid("offer_id", "is not an offer of the current price list"))
}

/// The refusal of an action as one sentence: a conflict's reason, or the first invalid field.
fn refusal_sentence(v: &Visitor, e: &Error) -> Option<String> {
    match e {
        Error::Conflict { reason, .. } => Some(v.reason_sentence(reason)),
        Error::Invalid(fields) => fields.first().map(|f| {
            let field = v.t(&format!("console.field.{}", f.field));
            maocloud_app::i18n::tf(
                v.lang,
                "console.form.summary_item",
                &[
                    ("field", &field),
                    ("reason", &maocloud_app::i18n::reason(v.lang, &f.reason)),
                ],
            )
        }),
        _ => None,
    }
}

fn refusal_status(e: &Error) -> StatusCode {
    match e {
        Error::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

// --- The price list (R-3.6) ---

async fn price_list(State(st): State<AppState>, v: Visitor) -> Page {
    price_list_page(&st, &v, StatusCode::OK, None).await
}

async fn price_list_page(
    st: &AppState,
    v: &Visitor,
    status: StatusCode,
    alert: Option<String>,
) -> Page {
    let offers = billing::offer_list(&st.app, false)
        .await
        .map_err(|e| v.fail(e))?;
    let subscriber = v
        .signed_in()
        .is_some_and(|(_, a)| a.kind == AccountKind::Subscriber);
    let ctx = context! {
        section => "offers",
        offers => offers.iter().map(|(o, t)| OfferView::new(o, t)).collect::<Vec<_>>(),
        can_subscribe => subscriber,
        alert => alert,
    };
    Ok(v.page(status, "pricelist.html", ctx))
}

/// subscribing from the price list. The first period is invoiced at once: the new
/// invoice is where the subscriber lands.
async fn subscribe(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<OfferForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let result = match offer_id(&form.offer_id) {
        Ok(id) => billing::subscribe(&st.app, &s.ctx, id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((_, Some(invoice))) => {
            s.v.flash("subscribed");
            Ok(s.v.redirect(&format!("/account/invoices/{}", invoice.id)))
        }
        Ok((_, None)) => {
            s.v.flash("subscribed");
            Ok(s.v.redirect("/account/subscription"))
        }
        Err(e) => match refusal_sentence(&s.v, &e) {
            Some(alert) => price_list_page(&st, &s.v, refusal_status(&e), Some(alert)).await,
            None => Err(s.v.fail(e)),
        },
    }
}

// --- Subscriptions, quotas, offer change (R-3.2) ---

/// The subscriber behind a signed-in session; operators have their own pages.
fn subscriber_of(s: &SignedIn) -> Result<SubscriberId, Response> {
    match s.account.kind {
        AccountKind::Operator => Err(s.v.redirect("/admin")),
        AccountKind::Subscriber => s.ctx.require_subscriber().map_err(|e| s.v.fail(e)),
    }
}

async fn subscription(State(st): State<AppState>, s: SignedIn) -> Page {
    subscription_page(&st, &s, StatusCode::OK, None).await
}

/// The page, with an offer change refused for one subscription: (its id, why).
async fn subscription_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    refused: Option<(String, String)>,
) -> Page {
    subscriber_of(s)?;
    let extra = super::contract::subscription_extra(st, s, None).await?;
    subscription_page_with(st, s, status, refused, extra).await
}

/// The page with `extra` context: each subscription's termination and its form
/// (`contract::subscription_extra`).
pub(super) async fn subscription_page_with(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    refused: Option<(String, String)>,
    extra: minijinja::Value,
) -> Page {
    let me = subscriber_of(s)?;
    let subs = billing::subscription_list(&st.app, &s.ctx, me)
        .await
        .map_err(|e| s.v.fail(e))?;
    let quotas = billing::quotas(&st.app, &s.ctx, me)
        .await
        .map_err(|e| s.v.fail(e))?;
    let offers = billing::offer_list(&st.app, false)
        .await
        .map_err(|e| s.v.fail(e))?;
    let (refused_id, alert) = refused.unzip();
    let ctx = context! {
        section => "account",
        subscriptions => subs.iter().map(SubscriptionRow::from).collect::<Vec<_>>(),
        quotas => quotas,
        offers => offers.iter().map(|(o, t)| OfferView::new(o, t)).collect::<Vec<_>>(),
        refused_id => refused_id,
        alert => alert,
        suspensions => super::contract::active_suspensions(st, s).await?,
    };
    let ctx = context! { ..extra, ..ctx };
    Ok(s.v.page(status, "account/subscription.html", ctx))
}

async fn change_offer(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<OfferForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let sub: SubscriptionId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let result = match offer_id(&form.offer_id) {
        Ok(to) => billing::change_offer(&st.app, &s.ctx, sub, to).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            s.v.flash("offer_changed");
            Ok(s.v.redirect("/account/subscription"))
        }
        Err(e) => match refusal_sentence(&s.v, &e) {
            Some(alert) => {
                subscription_page(&st, &s, refusal_status(&e), Some((sub.to_string(), alert))).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

// --- Invoices, credit notes, balance, delivery (R-6.1c, R-6.1d) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct DeliveryForm {
    #[serde(skip_serializing)]
    csrf: String,
    invoice_delivery: String,
}

async fn invoices(State(st): State<AppState>, s: SignedIn, RawQuery(q): RawQuery) -> Page {
    let q: CursorQuery = forms::query(q.as_deref());
    invoices_page(&st, &s, StatusCode::OK, cursor(&q.cursor), None, None).await
}

async fn invoices_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    after: Option<String>,
    form: Option<&DeliveryForm>,
    errors: Option<FieldErrors>,
) -> Page {
    let me = subscriber_of(s)?;
    let fail = |e| s.v.fail(e);
    let page = PageRequest {
        limit: DOCUMENTS_PAGE,
        after,
    };
    let invoices = billing::document_list(&st.app, &s.ctx, "invoice", None, &page)
        .await
        .map_err(fail)?;
    let credit_notes = billing::document_list(
        &st.app,
        &s.ctx,
        "credit_note",
        None,
        &PageRequest::first(DOCUMENTS_PAGE),
    )
    .await
    .map_err(fail)?;
    let balance = billing::balance(&st.app, &s.ctx, me).await.map_err(fail)?;
    let delivery = billing::invoice_delivery(&st.app, &s.ctx)
        .await
        .map_err(fail)?;
    let next_url = invoices
        .next_cursor
        .as_ref()
        .map(|c| format!("/account/invoices?cursor={c}"));
    let chosen = form.map_or(delivery.clone(), |f| f.invoice_delivery.clone());
    let ctx = context! {
        section => "account",
        invoices => invoices.items.iter().map(DocumentRow::from).collect::<Vec<_>>(),
        credit_notes => credit_notes.items.iter().map(DocumentRow::from).collect::<Vec<_>>(),
        balance => BalanceView::new(&balance),
        delivery => delivery,
        chosen => chosen,
        next_url => next_url,
    };
    Ok(s.v.page(status, "account/invoices.html", with_errors(ctx, errors)))
}

async fn set_delivery(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<DeliveryForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match billing::set_invoice_delivery(&st.app, &s.ctx, form.invoice_delivery.trim()).await {
        Ok(()) => {
            s.v.flash("delivery_saved");
            Ok(s.v.redirect("/account/invoices"))
        }
        Err(e) => match FieldErrors::of(s.v.lang, &e) {
            Some(errors) => {
                invoices_page(
                    &st,
                    &s,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(&form),
                    Some(errors),
                )
                .await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

async fn invoice(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    document_page(&st, &s, "invoice", &id).await
}

async fn credit_note(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    document_page(&st, &s, "credit_note", &id).await
}

/// One invoice or credit note as issued: its lines, VAT breakdown and totals. Billing
/// operators reach it from a subscriber's file.
async fn document_page(st: &AppState, s: &SignedIn, kind: &str, id: &str) -> Page {
    let id: InvoiceId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let doc = billing::document_get(&st.app, &s.ctx, kind, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let operator = s.account.kind == AccountKind::Operator;
    let back = if operator {
        format!("/admin/subscribers/{}", doc.subscriber_id)
    } else {
        "/account/invoices".to_owned()
    };
    let ctx = context! {
        section => if operator { "admin" } else { "account" },
        doc => DocumentView::from(&doc),
        back_url => back,
    };
    Ok(s.v.page(StatusCode::OK, "account/document.html", ctx))
}

async fn invoice_pdf(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    pdf(&st, &s, "invoice", &id).await
}

async fn credit_note_pdf(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    pdf(&st, &s, "credit_note", &id).await
}

/// The Factur-X PDF, as a download named after the document's number.
async fn pdf(st: &AppState, s: &SignedIn, kind: &str, id: &str) -> Page {
    let id: InvoiceId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let (number, bytes) = billing::document_pdf(&st.app, &s.ctx, kind, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let name: String = number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.pdf\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
