//! Billing in the back office (admins and billing operators; the use cases refuse everyone
//! else with a 403): the offers of the price list (create, retire), the monthly invoice run
//! and the print-and-mail queue (R-6.1c), and on a subscriber's file their payments and the
//! credit notes on their invoices (R-6.1e: corrections are credit notes).

use super::admin::subscriber_page;
use super::forms::{self, euros_to_cents, FieldErrors, Form};
use super::public::with_errors;
use super::records::{OfferView, PrintItemView};
use super::visitor::{OperatorIn, SignedIn};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::billing::{self, OfferInput, RunReport};
use maocloud_app::Error;
use maocloud_billing::calendar::paris_date;
use maocloud_billing::{Inclusions, OfferTerms, UsagePrices};
use maocloud_types::{Cents, InvoiceId, OfferId, OperatorRole, SubscriberId};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/offers", get(offers).post(offer_create))
        .route("/admin/offers/{id}/retire", post(offer_retire))
        .route("/admin/billing", get(billing_home))
        .route("/admin/billing/run", post(invoice_run))
        .route("/admin/billing/print-queue/{id}/mailed", post(mark_mailed))
        .route("/admin/subscribers/{id}/payments", post(payment_record))
        .route(
            "/admin/subscribers/{id}/credit-notes",
            post(credit_note_create),
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

/// Admins and billing operators only (the price list itself is public, so its read does not
/// check the role).
fn require_billing(s: &SignedIn) -> Result<(), Response> {
    s.ctx
        .require_operator(&[OperatorRole::Billing])
        .map_err(|e| s.v.fail(e))
}

/// A reason the console found, in the visitor's language.
fn console_error(s: &SignedIn, errors: &mut FieldErrors, field: &str, key: &str) {
    errors.push(field, s.v.t(key));
}

fn euros_field(s: &SignedIn, errors: &mut FieldErrors, field: &str, value: &str) -> Cents {
    match euros_to_cents(value) {
        Ok(c) => Cents(c),
        Err(e) => {
            console_error(s, errors, field, e.key());
            Cents(0)
        }
    }
}

// --- Offers ---

#[derive(Debug, Deserialize, Serialize)]
#[serde(default)]
struct OfferCreateForm {
    #[serde(skip_serializing)]
    csrf: String,
    offer_code: String,
    name: String,
    description: String,
    monthly_price: String,
    vat_rate_bp: String,
    vcpus: String,
    ram_mib: String,
    disk_gib: String,
    vms: String,
    storage_gb: String,
    egress_gb: String,
    public_ips: String,
    price_storage_gb_month: String,
    price_egress_gb: String,
    price_public_ip_month: String,
    commitment_months: String,
    multiple_allowed: String,
}

impl Default for OfferCreateForm {
    fn default() -> Self {
        let zero = || "0".to_string();
        OfferCreateForm {
            csrf: String::new(),
            offer_code: String::new(),
            name: String::new(),
            description: String::new(),
            monthly_price: String::new(),
            vat_rate_bp: "2000".into(),
            vcpus: zero(),
            ram_mib: zero(),
            disk_gib: zero(),
            vms: zero(),
            storage_gb: zero(),
            egress_gb: zero(),
            public_ips: zero(),
            price_storage_gb_month: zero(),
            price_egress_gb: zero(),
            price_public_ip_month: zero(),
            commitment_months: "0".into(),
            multiple_allowed: String::new(),
        }
    }
}

/// The API's field names as this form calls them.
fn offer_field(api: &str) -> Option<&'static str> {
    Some(match api {
        "code" => "offer_code",
        "monthly_price_cents" => "monthly_price",
        "usage.storage_gb_month_cents" => "price_storage_gb_month",
        "usage.egress_gb_cents" => "price_egress_gb",
        "usage.public_ip_month_cents" => "price_public_ip_month",
        "includes.vcpus" => "vcpus",
        "includes.ram_mib" => "ram_mib",
        "includes.disk_gib" => "disk_gib",
        "includes.vms" => "vms",
        "includes.storage_gb" => "storage_gb",
        "includes.egress_gb" => "egress_gb",
        "includes.public_ips" => "public_ips",
        _ => return None,
    })
}

const VAT_RATES: &[i64] = &[2000, 1000, 550, 210, 0];

async fn offers(State(st): State<AppState>, OperatorIn(s): OperatorIn) -> Page {
    offers_page(&st, &s, StatusCode::OK, &OfferCreateForm::default(), None).await
}

async fn offers_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &OfferCreateForm,
    errors: Option<FieldErrors>,
) -> Page {
    require_billing(s)?;
    let list = billing::offer_list(&st.app, true)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "admin",
        offers => list.iter().map(|(o, t)| OfferView::new(o, t)).collect::<Vec<_>>(),
        form => form,
        vat_rates => VAT_RATES,
    };
    Ok(s.v.page(status, "admin/offers.html", with_errors(ctx, errors)))
}

async fn offer_create(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Form(form): Form<OfferCreateForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    require_billing(&s)?;
    let mut errors = FieldErrors::default();
    let monthly_price = euros_field(&s, &mut errors, "monthly_price", &form.monthly_price);
    let storage = euros_field(
        &s,
        &mut errors,
        "price_storage_gb_month",
        &form.price_storage_gb_month,
    );
    let egress = euros_field(&s, &mut errors, "price_egress_gb", &form.price_egress_gb);
    let ip = euros_field(
        &s,
        &mut errors,
        "price_public_ip_month",
        &form.price_public_ip_month,
    );
    let mut int = |field: &str, value: &str| -> i64 {
        let v = value.trim();
        if v.is_empty() {
            return 0;
        }
        v.parse().unwrap_or_else(|_| {
            console_error(&s, &mut errors, field, "console.form.not_a_number");
            0
        })
    };
    let includes = Inclusions {
        vcpus: int("vcpus", &form.vcpus),
        ram_mib: int("ram_mib", &form.ram_mib),
        disk_gib: int("disk_gib", &form.disk_gib),
        vms: int("vms", &form.vms),
        storage_gb: int("storage_gb", &form.storage_gb),
        egress_gb: int("egress_gb", &form.egress_gb),
        public_ips: int("public_ips", &form.public_ips),
    };
    let vat_rate_bp = int("vat_rate_bp", &form.vat_rate_bp);
    let commitment_months = int("commitment_months", &form.commitment_months);
    if !errors.is_empty() {
        return offers_page(
            &st,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            Some(errors),
        )
        .await;
    }
    let input = OfferInput {
        code: form.offer_code.clone(),
        description: form.description.clone(),
        terms: OfferTerms {
            name: form.name.trim().to_owned(),
            monthly_price,
            vat_rate_bp,
            includes,
            usage: UsagePrices {
                storage_gb_month: storage,
                egress_gb: egress,
                public_ip_month: ip,
            },
            commitment_months,
        },
        multiple_allowed: !form.multiple_allowed.is_empty(),
    };
    match billing::offer_create(&st.app, &s.ctx, input).await {
        Ok(_) => {
            s.v.flash("offer_created");
            Ok(s.v.redirect("/admin/offers"))
        }
        Err(e) => {
            let e = forms::rename_fields(e, offer_field);
            match FieldErrors::of(s.v.lang, &e) {
                Some(errors) => {
                    offers_page(
                        &st,
                        &s,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &form,
                        Some(errors),
                    )
                    .await
                }
                None => Err(s.v.fail(e)),
            }
        }
    }
}

async fn offer_retire(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let id: OfferId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    billing::offer_retire(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("offer_retired");
    Ok(s.v.redirect("/admin/offers"))
}

// --- The invoice run and the print-and-mail queue ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct RunForm {
    #[serde(skip_serializing)]
    csrf: String,
    on: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct QueueQuery {
    all: String,
}

async fn billing_home(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: QueueQuery = forms::query(raw.as_deref());
    let form = RunForm {
        on: paris_date(st.app.now()).to_string(),
        ..RunForm::default()
    };
    billing_page(
        &st,
        &s,
        StatusCode::OK,
        &form,
        None,
        None,
        !q.all.is_empty(),
    )
    .await
}

async fn billing_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &RunForm,
    errors: Option<FieldErrors>,
    report: Option<RunReport>,
    include_mailed: bool,
) -> Page {
    let fail = |e| s.v.fail(e);
    let invoices = billing::document_count(&st.app, &s.ctx, "invoice")
        .await
        .map_err(fail)?;
    let credit_notes = billing::document_count(&st.app, &s.ctx, "credit_note")
        .await
        .map_err(fail)?;
    let queue = billing::print_queue(&st.app, &s.ctx, include_mailed)
        .await
        .map_err(fail)?;
    let ctx = context! {
        section => "admin",
        invoice_count => invoices,
        credit_note_count => credit_notes,
        queue => queue.iter().map(PrintItemView::from).collect::<Vec<_>>(),
        include_mailed => include_mailed,
        form => form,
        report => report.map(|r| context! {
            on => &form.on,
            invoices_issued => r.invoices_issued,
            subscriptions_billed => r.subscriptions_billed,
            skipped => r.skipped,
        }),
    };
    Ok(s.v.page(status, "admin/billing.html", with_errors(ctx, errors)))
}

async fn invoice_run(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<RunForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let Ok(on) = form.on.trim().parse::<jiff::civil::Date>() else {
        let mut errors = FieldErrors::default();
        console_error(&s, &mut errors, "on", "console.form.not_a_date");
        return billing_page(
            &st,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            Some(errors),
            None,
            false,
        )
        .await;
    };
    let report = billing::invoice_run(&st.app, &s.ctx, on)
        .await
        .map_err(|e| s.v.fail(e))?;
    let form = RunForm {
        on: on.to_string(),
        ..RunForm::default()
    };
    billing_page(&st, &s, StatusCode::OK, &form, None, Some(report), false).await
}

async fn mark_mailed(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let id: InvoiceId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    billing::print_queue_mark_mailed(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("marked_mailed");
    Ok(s.v.redirect("/admin/billing"))
}

// --- On a subscriber's file: payments and credit notes ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PaymentForm {
    #[serde(skip_serializing)]
    csrf: String,
    pub amount: String,
    pub method: String,
    pub reference: String,
    pub received_on: String,
    pub invoice_id: String,
}

impl PaymentForm {
    /// The empty form: bank transfer received today.
    pub fn new(today: &str) -> Self {
        PaymentForm {
            method: "bank_transfer".into(),
            received_on: today.into(),
            ..PaymentForm::default()
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CreditNoteForm {
    #[serde(skip_serializing)]
    csrf: String,
    pub invoice_id: String,
    pub amount: String,
    pub vat_rate_bp: String,
    pub reason: String,
}

/// What a POST on the subscriber's file sends back to it when refused.
pub enum Refused {
    Payment(PaymentForm, FieldErrors),
    CreditNote(CreditNoteForm, FieldErrors),
}

impl Refused {
    /// The context the subscriber page adds: the form as sent and its errors.
    pub fn context(self) -> Value {
        match self {
            Refused::Payment(form, errors) => {
                with_errors(context! { payment_form => form }, Some(errors))
            }
            Refused::CreditNote(form, errors) => {
                let list: Vec<Value> = errors
                    .pairs()
                    .into_iter()
                    .map(|(field, reason)| context! { field => field, reason => reason })
                    .collect();
                context! { credit_form => form, credit_errors => list }
            }
        }
    }
}

async fn payment_record(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<PaymentForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let subscriber: SubscriberId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let mut errors = FieldErrors::default();
    let amount = euros_field(&s, &mut errors, "amount", &form.amount);
    let received_on = form.received_on.trim().parse::<jiff::civil::Date>().ok();
    if received_on.is_none() {
        console_error(&s, &mut errors, "received_on", "console.form.not_a_date");
    }
    let invoice = match forms::opt(&form.invoice_id).map(|i| i.parse::<InvoiceId>()) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(_)) => {
            console_error(&s, &mut errors, "invoice_id", "console.form.not_a_choice");
            None
        }
    };
    let result = match received_on {
        Some(on) if errors.is_empty() => {
            billing::payment_record(
                &st.app,
                &s.ctx,
                subscriber,
                amount,
                form.method.trim(),
                form.reference.trim(),
                on,
                invoice,
            )
            .await
        }
        _ => {
            let refused = Refused::Payment(form, errors);
            return subscriber_page(
                &st,
                &s,
                subscriber,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(refused),
            )
            .await;
        }
    };
    match result {
        Ok(_) => {
            s.v.flash("payment_recorded");
            Ok(s.v.redirect(&format!("/admin/subscribers/{subscriber}#billing")))
        }
        Err(e) => {
            let e = forms::rename_fields(e, |f| (f == "amount_cents").then_some("amount"));
            match FieldErrors::of(s.v.lang, &e) {
                Some(errors) => {
                    let refused = Refused::Payment(form, errors);
                    subscriber_page(
                        &st,
                        &s,
                        subscriber,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some(refused),
                    )
                    .await
                }
                None => Err(s.v.fail(e)),
            }
        }
    }
}

async fn credit_note_create(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CreditNoteForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let subscriber: SubscriberId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let invoice: InvoiceId = form
        .invoice_id
        .trim()
        .parse()
        .map_err(|_| s.v.fail(Error::NotFound))?;
    let mut errors = FieldErrors::default();
    // An empty amount credits the whole invoice.
    let amount = forms::opt(&form.amount).map(|a| euros_field(&s, &mut errors, "amount", &a));
    let rate = match forms::opt(&form.vat_rate_bp).map(|r| r.parse::<i64>()) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            console_error(&s, &mut errors, "vat_rate_bp", "console.form.not_a_choice");
            None
        }
    };
    let result = if errors.is_empty() {
        billing::credit_note_create(&st.app, &s.ctx, invoice, amount, rate, &form.reason).await
    } else {
        let refused = Refused::CreditNote(form, errors);
        return subscriber_page(
            &st,
            &s,
            subscriber,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(refused),
        )
        .await;
    };
    match result {
        Ok(_) => {
            s.v.flash("credit_note_created");
            Ok(s.v.redirect(&format!("/admin/subscribers/{subscriber}#billing")))
        }
        Err(e) => {
            let e = forms::rename_fields(e, |f| (f == "amount_excl_cents").then_some("amount"));
            match FieldErrors::of(s.v.lang, &e) {
                Some(errors) => {
                    let refused = Refused::CreditNote(form, errors);
                    subscriber_page(
                        &st,
                        &s,
                        subscriber,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some(refused),
                    )
                    .await
                }
                None => Err(s.v.fail(e)),
            }
        }
    }
}
