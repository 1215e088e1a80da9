//! The operators' back office: subscribers (search, cursor pagination, one subscriber's file
//! with their terms acceptances), the audit trail and the outbox (admins). Every read of
//! personal data is audited by the use cases themselves.

use super::account::{cursor, CursorQuery};
use super::admin_billing::{PaymentForm, Refused};
use super::forms;
use super::records::{
    AcceptanceView, AccountView, AuditView, BalanceView, DocumentRow, EmailView, ProfileView,
    SubscriberRow, SubscriptionRow,
};
use super::visitor::{OperatorIn, SignedIn};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maocloud_app::{accounts, audit, billing, notify, Error};
use maocloud_billing::calendar::paris_date;
use maocloud_types::{OperatorRole, PageRequest, SubscriberId};
use minijinja::context;
use serde::Deserialize;

type Page = Result<Response, Response>;

const LIST_PAGE: u32 = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/subscribers", get(subscribers))
        .route("/admin/subscribers/{id}", get(subscriber))
        .route("/admin/audit", get(audit_log))
        .route("/admin/outbox", get(outbox))
}

/// `path?k=v&…` with the non-empty pairs.
fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

async fn home(OperatorIn(s): OperatorIn) -> Response {
    s.v.page(
        StatusCode::OK,
        "admin/home.html",
        context! { section => "admin" },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SubscriberQuery {
    q: String,
    cursor: String,
}

async fn subscribers(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: SubscriberQuery = forms::query(raw.as_deref());
    let search = forms::opt(&q.q);
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let list = accounts::subscriber_list(&st.app, &s.ctx, search.as_deref(), &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let next_url = list.next_cursor.as_deref().map(|c| {
        link(
            "/admin/subscribers",
            &[("q", search.as_deref().unwrap_or("")), ("cursor", c)],
        )
    });
    let ctx = context! {
        section => "admin",
        q => search,
        subscribers => list.items.iter().map(SubscriberRow::from).collect::<Vec<_>>(),
        next_url => next_url,
    };
    Ok(s.v.page(StatusCode::OK, "admin/subscribers.html", ctx))
}

async fn subscriber(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
) -> Page {
    let id: SubscriberId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    subscriber_page(&st, &s, id, StatusCode::OK, None).await
}

/// A subscriber's file. Admins and billing operators also see its billing section
/// (subscriptions, invoices, balance, payments and credit notes) with its forms; `refused`
/// brings back a form that was refused, with its errors.
pub(super) async fn subscriber_page(
    st: &AppState,
    s: &SignedIn,
    id: SubscriberId,
    status: StatusCode,
    refused: Option<Refused>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let d = accounts::subscriber_get(&st.app, &s.ctx, id)
        .await
        .map_err(fail)?;
    let billing_ctx = if s.ctx.require_operator(&[OperatorRole::Billing]).is_ok() {
        let subs = billing::subscription_list(&st.app, &s.ctx, id)
            .await
            .map_err(fail)?;
        let page = PageRequest::first(LIST_PAGE * 4);
        let invoices = billing::document_list(&st.app, &s.ctx, "invoice", Some(id), &page)
            .await
            .map_err(fail)?;
        let credit_notes = billing::document_list(&st.app, &s.ctx, "credit_note", Some(id), &page)
            .await
            .map_err(fail)?;
        let balance = billing::balance(&st.app, &s.ctx, id).await.map_err(fail)?;
        let today = paris_date(st.app.now()).to_string();
        context! {
            billing => context! {
                subscriptions => subs.iter().map(SubscriptionRow::from).collect::<Vec<_>>(),
                invoices => invoices.items.iter().map(DocumentRow::from).collect::<Vec<_>>(),
                credit_notes => credit_notes.items.iter().map(DocumentRow::from).collect::<Vec<_>>(),
                balance => BalanceView::new(&balance),
            },
            payment_form => PaymentForm::new(&today),
        }
    } else {
        context! {}
    };
    let refused = refused.map_or_else(|| context! {}, Refused::context);
    let ctx = context! {
        section => "admin",
        account => AccountView::from(&d.account),
        profile => ProfileView::from(&d.profile),
        terms => d.terms.iter().map(AcceptanceView::from).collect::<Vec<_>>(),
    };
    let ctx = context! { ..refused, ..billing_ctx, ..ctx };
    Ok(s.v.page(status, "admin/subscriber.html", ctx))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    subscriber: String,
    cursor: String,
}

async fn audit_log(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: AuditQuery = forms::query(raw.as_deref());
    let subscriber: Option<SubscriberId> = q.subscriber.trim().parse().ok();
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let list = audit::list(&st.app, &s.ctx, subscriber, &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let sub = subscriber.map(|id| id.to_string()).unwrap_or_default();
    let next_url = list
        .next_cursor
        .as_deref()
        .map(|c| link("/admin/audit", &[("subscriber", &sub), ("cursor", c)]));
    let ctx = context! {
        section => "admin",
        subscriber => subscriber.map(|id| id.to_string()),
        entries => list.items.iter().map(AuditView::from).collect::<Vec<_>>(),
        next_url => next_url,
    };
    Ok(s.v.page(StatusCode::OK, "admin/audit.html", ctx))
}

async fn outbox(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: CursorQuery = forms::query(raw.as_deref());
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let list = notify::outbox(&st.app, &s.ctx, &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let next_url = list
        .next_cursor
        .as_deref()
        .map(|c| link("/admin/outbox", &[("cursor", c)]));
    let ctx = context! {
        section => "admin",
        emails => list.items.iter().map(EmailView::from).collect::<Vec<_>>(),
        next_url => next_url,
    };
    Ok(s.v.page(StatusCode::OK, "admin/outbox.html", ctx))
}
