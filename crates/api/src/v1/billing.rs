//! Billing over HTTP: the public price list, subscriptions and offer changes (R-3.1,
//! ), invoices and credit notes, payments and balance, the monthly run and the
//! print queue for operators.

use super::{attachment, path_id, ts, whose, PageQuery, PageView, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, BillingAuth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::billing::{self, OfferInput, SubscriptionView};
use maocloud_app::billing::{InvoiceRecord, Offer, Outstanding, Payment, PrintItem};
use maocloud_app::{Ctx, Error};
use maocloud_billing::{Inclusions, OfferTerms, UsagePrices};
use maocloud_types::{Cents, OfferId, SubscriberId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(offer_list, offer_create))
        .routes(routes!(offer_retire))
        .routes(routes!(subscription_list, subscription_create))
        .routes(routes!(subscription_get))
        .routes(routes!(subscription_change_offer))
        .routes(routes!(quotas))
        .routes(routes!(invoice_list))
        .routes(routes!(invoice_get))
        .routes(routes!(invoice_pdf))
        .routes(routes!(invoice_facturx))
        .routes(routes!(credit_note_pdf))
        .routes(routes!(credit_note_list, credit_note_create))
        .routes(routes!(credit_note_get))
        .routes(routes!(payment_list, payment_create))
        .routes(routes!(invoice_run))
        .routes(routes!(print_queue))
        .routes(routes!(print_queue_mailed))
}

/// Quantities included in the monthly fee; they are also the subscriber's quotas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionsView {
    pub vcpus: i64,
    pub ram_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
    pub storage_gb: i64,
    pub egress_gb: i64,
    pub public_ips: i64,
}

impl From<Inclusions> for InclusionsView {
    fn from(i: Inclusions) -> Self {
        InclusionsView {
            vcpus: i.vcpus,
            ram_mib: i.ram_mib,
            disk_gib: i.disk_gib,
            vms: i.vms,
            storage_gb: i.storage_gb,
            egress_gb: i.egress_gb,
            public_ips: i.public_ips,
        }
    }
}

impl From<InclusionsView> for Inclusions {
    fn from(i: InclusionsView) -> Self {
        Inclusions {
            vcpus: i.vcpus,
            ram_mib: i.ram_mib,
            disk_gib: i.disk_gib,
            vms: i.vms,
            storage_gb: i.storage_gb,
            egress_gb: i.egress_gb,
            public_ips: i.public_ips,
        }
    }
}

/// Prices, excluding VAT, of usage beyond the inclusion, billed in arrears.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsagePricesView {
    pub storage_gb_month_cents: i64,
    pub egress_gb_cents: i64,
    pub public_ip_month_cents: i64,
}

/// An offer's contractual terms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermsView {
    pub name: String,
    /// Monthly flat fee excluding VAT, in cents, billed in advance.
    pub monthly_price_cents: i64,
    /// The same including VAT.
    pub monthly_price_incl_vat_cents: i64,
    /// VAT rate in basis points (2000 = 20 %).
    pub vat_rate_bp: i64,
    pub includes: InclusionsView,
    pub usage_prices: UsagePricesView,
    /// 0 (none) or 12.
    pub commitment_months: i64,
}

impl From<&OfferTerms> for TermsView {
    fn from(t: &OfferTerms) -> Self {
        TermsView {
            name: t.name.clone(),
            monthly_price_cents: t.monthly_price.0,
            monthly_price_incl_vat_cents: t.monthly_price.0
                + t.monthly_price
                    .mul_div_round(t.vat_rate_bp, 10_000)
                    .unwrap_or(Cents(0))
                    .0,
            vat_rate_bp: t.vat_rate_bp,
            includes: t.includes.into(),
            usage_prices: UsagePricesView {
                storage_gb_month_cents: t.usage.storage_gb_month.0,
                egress_gb_cents: t.usage.egress_gb.0,
                public_ip_month_cents: t.usage.public_ip_month.0,
            },
            commitment_months: t.commitment_months,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub id: String,
    pub code: String,
    pub description: String,
    pub terms: TermsView,
    /// Whether a subscriber may hold several subscriptions to it.
    pub multiple_allowed: bool,
    /// `active` or `retired`.
    pub status: String,
}

fn offer_view(o: Offer, t: &OfferTerms) -> OfferView {
    OfferView {
        id: o.id.to_string(),
        code: o.code,
        description: o.description,
        terms: t.into(),
        multiple_allowed: o.multiple_allowed,
        status: o.status,
    }
}

/// The public price list (Brochure Tarifaire, R-3.6).
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceList {
    pub offers: Vec<OfferView>,
    /// How billing works (R-6.1a, R-6.1b), in French.
    pub billing_terms: String,
    /// How termination works, in French.
    pub termination_terms: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OfferQuery {
    /// Include retired offers (operators).
    pub include_retired: Option<bool>,
}

/// The price list: every offer open to subscription, with the billing and termination terms.
/// No sign-in needed.
#[utoipa::path(get, path = "/api/v1/offers", tag = "billing", params(OfferQuery), responses((status = 200, body = PriceList)))]
async fn offer_list(
    State(st): State<AppState>,
    Query(q): Query<OfferQuery>,
) -> ApiResult<axum::Json<PriceList>> {
    let offers = billing::offer_list(&st.app, q.include_retired.unwrap_or(false)).await?;
    Ok(axum::Json(PriceList {
        offers: offers.into_iter().map(|(o, t)| offer_view(o, &t)).collect(),
        billing_terms: maocloud_app::i18n::t(
            maocloud_app::i18n::Lang::Fr,
            "pricelist.billing_terms",
        ),
        termination_terms: maocloud_app::i18n::t(
            maocloud_app::i18n::Lang::Fr,
            "pricelist.termination_terms",
        ),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    /// Short unique code, e.g. `cloud-s`.
    pub code: String,
    pub name: String,
    pub description: String,
    pub monthly_price_cents: i64,
    /// 2000, 1000, 550, 210 or 0.
    pub vat_rate_bp: i64,
    pub includes: InclusionsView,
    pub usage_prices: UsagePricesView,
    /// 0 or 12.
    pub commitment_months: i64,
    #[serde(default)]
    pub multiple_allowed: bool,
}

/// Create an offer (operators with the billing or admin role).
#[utoipa::path(post, path = "/api/v1/offers", tag = "billing", security(("bearer" = [])), request_body = OfferRequest,
    responses((status = 201, body = OfferView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn offer_create(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<OfferRequest>,
) -> ApiResult<(StatusCode, axum::Json<OfferView>)> {
    let terms = OfferTerms {
        name: r.name,
        monthly_price: Cents(r.monthly_price_cents),
        vat_rate_bp: r.vat_rate_bp,
        includes: r.includes.into(),
        usage: UsagePrices {
            storage_gb_month: Cents(r.usage_prices.storage_gb_month_cents),
            egress_gb: Cents(r.usage_prices.egress_gb_cents),
            public_ip_month: Cents(r.usage_prices.public_ip_month_cents),
        },
        commitment_months: r.commitment_months,
    };
    let o = billing::offer_create(
        &st.app,
        &ctx,
        OfferInput {
            code: r.code,
            description: r.description,
            terms: terms.clone(),
            multiple_allowed: r.multiple_allowed,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(offer_view(o, &terms))))
}

/// Withdraw an offer from the price list; running subscriptions keep their terms.
#[utoipa::path(post, path = "/api/v1/offers/{id}/retire", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Offer id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn offer_retire(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    billing::offer_retire(&st.app, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionViewDto {
    pub id: String,
    pub subscriber_id: String,
    pub offer_id: String,
    /// The terms of this contract (a copy: a later change of the offer does not rewrite them).
    pub terms: TermsView,
    /// `active` or `terminated`.
    pub status: String,
    pub start_date: String,
    /// End of the initial commitment, if any (R-7a).
    pub commitment_end: Option<String>,
    /// Last day already invoiced in advance.
    pub billed_until: String,
}

fn sub_view(v: SubscriptionView) -> SubscriptionViewDto {
    SubscriptionViewDto {
        id: v.sub.id.to_string(),
        subscriber_id: v.sub.subscriber_id.to_string(),
        offer_id: v.sub.offer_id.to_string(),
        terms: (&v.terms).into(),
        status: v.sub.status,
        start_date: v.sub.start_date,
        commitment_end: v.sub.commitment_end,
        billed_until: v.sub.billed_until,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubscriberFilter {
    /// Operators: whose records. Subscribers always get their own.
    pub subscriber_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's subscriptions (operators: a subscriber's, with `subscriber_id`).
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "billing", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = Vec<SubscriptionViewDto>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn subscription_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<Vec<SubscriptionViewDto>>> {
    let who = whose(&ctx, &q.subscriber_id)?;
    Ok(axum::Json(
        billing::subscription_list(&st.app, &ctx, who)
            .await?
            .into_iter()
            .map(sub_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    pub offer_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscribed {
    pub subscription: SubscriptionViewDto,
    /// The first invoice: the rest of this month, pro rata by the day, in advance (R-6.1a).
    pub invoice: Option<InvoiceView>,
}

/// Subscribe to an offer of the price list. Its inclusions become your quotas.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "billing", security(("bearer" = [])), request_body = SubscribeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = Subscribed), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn subscription_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<SubscribeRequest>,
) -> ApiResult<(StatusCode, axum::Json<Subscribed>)> {
    let offer: OfferId = r
        .offer_id
        .parse()
        .map_err(|_| Error::invalid("offer_id", "is not an offer of the current price list"))?;
    let (sub, invoice) = billing::subscribe(&st.app, &ctx, offer).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Subscribed {
            subscription: sub_view(sub),
            invoice: invoice.map(invoice_view),
        }),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionViewDto), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn subscription_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SubscriptionViewDto>> {
    Ok(axum::Json(sub_view(
        billing::subscription_get(&st.app, &ctx, path_id(&id)?).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOfferRequest {
    pub offer_id: String,
}

/// Change offer: no fee; the new price applies from today pro rata (settled on the next
/// invoice); refused with the reason if your resources do not fit; the commitment end stays.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/change-offer", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscription id")), request_body = ChangeOfferRequest,
    responses((status = 200, body = SubscriptionViewDto), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn subscription_change_offer(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<ChangeOfferRequest>,
) -> ApiResult<axum::Json<SubscriptionViewDto>> {
    let id = path_id(&id)?;
    let offer: OfferId = r
        .offer_id
        .parse()
        .map_err(|_| Error::invalid("offer_id", "is not an offer of the current price list"))?;
    Ok(axum::Json(sub_view(
        billing::change_offer(&st.app, &ctx, id, offer).await?,
    )))
}

/// The caller's quotas: the inclusions of their active subscriptions, summed.
#[utoipa::path(get, path = "/api/v1/quotas", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = InclusionsView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn quotas(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<InclusionsView>> {
    let me = ctx.require_subscriber()?;
    Ok(axum::Json(billing::quotas(&st.app, &ctx, me).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceLineView {
    /// `advance`, `arrears` or `adjustment`.
    pub kind: String,
    pub description: String,
    pub period_start: String,
    pub period_end: String,
    /// Quantity in thousandths (1000 = one month, one GB…).
    pub quantity_milli: i64,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
    pub vat_rate_bp: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VatView {
    pub rate_bp: i64,
    pub base_cents: i64,
    pub vat_cents: i64,
}

/// An issued invoice or credit note (R-6.1e): never changed once issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// Sequential without gaps per series: `F2026-000123` (invoices), `A2026-000004` (credit notes).
    pub number: String,
    pub subscriber_id: String,
    pub subscription_id: Option<String>,
    /// The invoice a credit note corrects.
    pub credited_invoice_id: Option<String>,
    pub issue_date: String,
    pub due_date: Option<String>,
    #[schema(value_type = Object)]
    pub seller: serde_json::Value,
    #[schema(value_type = Object)]
    pub buyer: serde_json::Value,
    pub lines: Vec<InvoiceLineView>,
    pub vat: Vec<VatView>,
    pub total_excl_vat_cents: i64,
    pub total_vat_cents: i64,
    pub total_incl_vat_cents: i64,
    pub note: Option<String>,
}

fn invoice_view(i: InvoiceRecord) -> InvoiceView {
    let (lines, vat) = maocloud_app::billing::stored_parts(&i);
    InvoiceView {
        id: i.id.to_string(),
        kind: i.kind,
        number: i.number,
        subscriber_id: i.subscriber_id.to_string(),
        subscription_id: i.subscription_id.map(|s| s.to_string()),
        credited_invoice_id: i.credited_invoice_id.map(|s| s.to_string()),
        issue_date: i.issue_date,
        due_date: i.due_date,
        seller: i.seller,
        buyer: i.buyer,
        lines: lines
            .into_iter()
            .map(|l| InvoiceLineView {
                kind: serde_json::to_value(l.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                description: l.description,
                period_start: l.period_start,
                period_end: l.period_end,
                quantity_milli: l.quantity_milli,
                unit_price_cents: l.unit_price_cents,
                amount_cents: l.amount_cents,
                vat_rate_bp: l.vat_rate_bp,
            })
            .collect(),
        vat: vat
            .into_iter()
            .map(|v| VatView {
                rate_bp: v.rate_bp,
                base_cents: v.base_cents,
                vat_cents: v.vat_cents,
            })
            .collect(),
        total_excl_vat_cents: i.total_excl.0,
        total_vat_cents: i.total_vat.0,
        total_incl_vat_cents: i.total_incl.0,
        note: i.note,
    }
}

/// Invoices, newest first: a subscriber's own from the last 12 months, also after termination
/// (R-6.1d); operators with the billing role see everyone's (`subscriber_id` to filter).
#[utoipa::path(get, path = "/api/v1/invoices", tag = "billing", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = PageView<InvoiceView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn invoice_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<PageView<InvoiceView>>> {
    list_documents(&st, &ctx, "invoice", q).await
}

async fn list_documents(
    st: &AppState,
    ctx: &Ctx,
    kind: &str,
    q: SubscriberFilter,
) -> ApiResult<axum::Json<PageView<InvoiceView>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let filter = match &q.subscriber_id {
        Some(s) => Some(
            s.parse::<SubscriberId>()
                .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))?,
        ),
        None => None,
    };
    Ok(axum::Json(PageView::from(
        billing::document_list(&st.app, ctx, kind, filter, &page).await?,
        invoice_view,
    )))
}

/// One invoice.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = InvoiceView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn invoice_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<InvoiceView>> {
    Ok(axum::Json(invoice_view(
        billing::document_get(&st.app, &ctx, "invoice", path_id(&id)?).await?,
    )))
}

/// Credit notes, newest first (same visibility as invoices).
#[utoipa::path(get, path = "/api/v1/credit-notes", tag = "billing", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = PageView<InvoiceView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn credit_note_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<PageView<InvoiceView>>> {
    list_documents(&st, &ctx, "credit_note", q).await
}

/// One credit note.
#[utoipa::path(get, path = "/api/v1/credit-notes/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Credit note id")),
    responses((status = 200, body = InvoiceView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn credit_note_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<InvoiceView>> {
    Ok(axum::Json(invoice_view(
        billing::document_get(&st.app, &ctx, "credit_note", path_id(&id)?).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteRequest {
    pub invoice_id: String,
    /// A part to credit, excluding VAT; absent: the whole invoice.
    pub amount_excl_vat_cents: Option<i64>,
    /// The VAT rate of that part (one of the invoice's rates).
    pub vat_rate_bp: Option<i64>,
    pub reason: String,
}

/// Issue a credit note correcting an invoice (billing role; R-6.1e: invoices are never edited).
#[utoipa::path(post, path = "/api/v1/credit-notes", tag = "billing", security(("bearer" = [])), request_body = CreditNoteRequest,
    responses((status = 201, body = InvoiceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn credit_note_create(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<CreditNoteRequest>,
) -> ApiResult<(StatusCode, axum::Json<InvoiceView>)> {
    let invoice = r
        .invoice_id
        .parse()
        .map_err(|_| Error::invalid("invoice_id", "is not an issued invoice"))?;
    let doc = billing::credit_note_create(
        &st.app,
        &ctx,
        invoice,
        r.amount_excl_vat_cents.map(Cents),
        r.vat_rate_bp,
        &r.reason,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(invoice_view(doc))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutstandingView {
    pub invoice_id: String,
    pub number: String,
    pub due_date: Option<String>,
    pub total_incl_vat_cents: i64,
    pub paid_cents: i64,
    pub credited_cents: i64,
    pub remaining_cents: i64,
}

impl From<Outstanding> for OutstandingView {
    fn from(o: Outstanding) -> Self {
        OutstandingView {
            remaining_cents: o.remaining().0,
            invoice_id: o.invoice_id.to_string(),
            number: o.number,
            due_date: o.due_date,
            total_incl_vat_cents: o.total_incl.0,
            paid_cents: o.paid.0,
            credited_cents: o.credited.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    pub amount_cents: i64,
    /// `bank_transfer`, `manual` or `sepa_direct_debit`.
    pub method: String,
    pub reference: String,
    pub received_on: String,
    pub recorded_at: String,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        PaymentView {
            id: p.id.to_string(),
            amount_cents: p.amount.0,
            method: p.method,
            reference: p.reference,
            received_on: p.received_on,
            recorded_at: ts(p.created_at),
        }
    }
}

/// A subscriber's account: what is due and the payments received.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub due_cents: i64,
    pub open_invoices: Vec<OutstandingView>,
    pub payments: Vec<PaymentView>,
}

/// The balance and payments of the caller (operators: of `subscriber_id`).
#[utoipa::path(get, path = "/api/v1/payments", tag = "billing", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = BalanceView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn payment_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<BalanceView>> {
    let who = whose(&ctx, &q.subscriber_id)?;
    let (open, due, payments) = billing::balance(&st.app, &ctx, who).await?;
    Ok(axum::Json(BalanceView {
        due_cents: due.0,
        open_invoices: open.into_iter().map(Into::into).collect(),
        payments: payments.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub subscriber_id: String,
    pub amount_cents: i64,
    /// `bank_transfer` or `manual`.
    pub method: String,
    /// The bank's reference or a note.
    pub reference: String,
    /// `YYYY-MM-DD`; default today.
    pub received_on: Option<String>,
    /// Allocate to this invoice; default: the oldest open invoices first.
    pub invoice_id: Option<String>,
}

/// Record a payment received (billing role). More than what is due is refused.
#[utoipa::path(post, path = "/api/v1/payments", tag = "billing", security(("bearer" = [])), request_body = PaymentRequest,
    responses((status = 201, body = PaymentView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn payment_create(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<PaymentRequest>,
) -> ApiResult<(StatusCode, axum::Json<PaymentView>)> {
    let who: SubscriberId = r
        .subscriber_id
        .parse()
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))?;
    let received = match &r.received_on {
        Some(d) => d
            .parse()
            .map_err(|_| Error::invalid("received_on", "is not a date (YYYY-MM-DD)"))?,
        None => maocloud_billing::paris_date(st.app.now()),
    };
    let invoice = match &r.invoice_id {
        Some(i) => Some(
            i.parse()
                .map_err(|_| Error::invalid("invoice_id", "is not an invoice id"))?,
        ),
        None => None,
    };
    let p = billing::payment_record(
        &st.app,
        &ctx,
        who,
        Cents(r.amount_cents),
        &r.method,
        &r.reference,
        received,
        invoice,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The Paris date of the run (`YYYY-MM-DD`, normally the 1st); default today.
    pub date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub date: String,
    pub invoices_issued: u64,
    pub subscriptions_billed: u64,
    pub skipped: u64,
}

/// Run the monthly invoicing (billing role). Idempotent: running it again bills nothing twice.
#[utoipa::path(post, path = "/api/v1/invoice-runs", tag = "billing", security(("bearer" = [])), request_body = RunRequest,
    responses((status = 200, body = RunView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn invoice_run(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<RunRequest>,
) -> ApiResult<axum::Json<RunView>> {
    let on = match &r.date {
        Some(d) => d
            .parse()
            .map_err(|_| Error::invalid("date", "is not a date (YYYY-MM-DD)"))?,
        None => maocloud_billing::paris_date(st.app.now()),
    };
    let rep = billing::invoice_run(&st.app, &ctx, on).await?;
    Ok(axum::Json(RunView {
        date: on.to_string(),
        invoices_issued: rep.invoices_issued,
        subscriptions_billed: rep.subscriptions_billed,
        skipped: rep.skipped,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrintItemView {
    pub invoice_id: String,
    pub number: String,
    pub subscriber_id: String,
    pub queued_at: String,
    pub mailed_at: Option<String>,
}

impl From<PrintItem> for PrintItemView {
    fn from(p: PrintItem) -> Self {
        PrintItemView {
            invoice_id: p.invoice_id.to_string(),
            number: p.number,
            subscriber_id: p.subscriber_id.to_string(),
            queued_at: ts(p.queued_at),
            mailed_at: p.mailed_at.map(ts),
        }
    }
}

/// The print-and-mail queue of paper invoices (R-6.1c; billing role).
#[utoipa::path(get, path = "/api/v1/print-queue", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Vec<PrintItemView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn print_queue(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<PrintItemView>>> {
    Ok(axum::Json(
        billing::print_queue(&st.app, &ctx, true)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Mark a queued paper invoice as mailed.
#[utoipa::path(post, path = "/api/v1/print-queue/{invoice_id}/mailed", tag = "billing", security(("bearer" = [])),
    params(("invoice_id" = String, Path, description = "Invoice id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn print_queue_mailed(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    billing::print_queue_mark_mailed(&st.app, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The invoice as a PDF/A-3b with its Factur-X XML attached (rendered on request).
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pdf", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invoice id")),
    responses((status = 200, description = "Factur-X PDF/A-3b", content_type = "application/pdf"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn invoice_pdf(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let (number, pdf) = billing::document_pdf(&st.app, &ctx, "invoice", path_id(&id)?).await?;
    Ok(attachment("application/pdf", format!("{number}.pdf"), pdf))
}

/// The invoice's Factur-X CII XML (EN 16931 profile).
#[utoipa::path(get, path = "/api/v1/invoices/{id}/facturx", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invoice id")),
    responses((status = 200, description = "CII XML", content_type = "application/xml"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn invoice_facturx(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let (number, xml) = billing::document_facturx(&st.app, &ctx, "invoice", path_id(&id)?).await?;
    Ok(attachment(
        "application/xml",
        format!("{number}-factur-x.xml"),
        xml.into_bytes(),
    ))
}

/// The credit note as a PDF/A-3b with its Factur-X XML attached.
#[utoipa::path(get, path = "/api/v1/credit-notes/{id}/pdf", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Credit note id")),
    responses((status = 200, description = "Factur-X PDF/A-3b", content_type = "application/pdf"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn credit_note_pdf(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let (number, pdf) = billing::document_pdf(&st.app, &ctx, "credit_note", path_id(&id)?).await?;
    Ok(attachment("application/pdf", format!("{number}.pdf"), pdf))
}
