//! The web console: server-rendered HTML for visitors (landing page, terms, the price list
//! sign-up, sign-in with TOTP, password reset), subscribers (their area: profile,
//! subscriptions and offer change, invoices, inbox, API tokens, TOTP) and
//! operators (the back office: subscribers, offers, invoicing, payments and credit notes,
//! audit trail, outbox, hypervisors and VMs), the support desk on both sides (R-1d) with its
//! public forms (abuse reports R-4a, lost or stolen credentials R-5a), and personal data on
//! both sides with the public register of processors and the marketing opt-out. French
//! by default, English second; no JavaScript but the serial console of a VM's page
//! (`static/serial.js`, allowed by that page's CSP only).
//!
//! Codemap: `visitor` (who is asking: language, cookies, session, CSRF, pages and redirects),
//! `forms` (form bodies and field errors), `view` (templates and the `t` function), `records`
//! (views of the records use cases return), then one file per area: `public`, `account`,
//! `admin`, `billing` (price list, subscriptions, invoices), `admin_billing` (offers, invoice
//! run, print queue, payments and credit notes), `contract` (termination, suspensions,
//! documents and terms notices in the subscriber area), `admin_contract` (suspensions, proof
//! requests, registered letters, terms versions and incidents in the back office), `compute`
//! (VMs, their serial console over a websocket, SSH keys), `admin_compute` (hypervisors and
//! every VM, read-only), `storage` (buckets, their objects, S3 access keys; every subscriber's
//! usage in the back office), `support` (the subscriber's tickets, the public abuse and
//! lost-credentials forms, and the desk's shared views and forms with files), `admin_support`
//! (the queue, a ticket with its thread, events and the subscriber's context, targets, canned
//! replies, the monthly report, registered letters), `privacy` (personal data: the
//! subscriber's consents, restriction and objection, export and erasure; the public register
//! of processors and the one-click marketing opt-out, RFC 8058's included; the back office's
//! register editor, anonymised statistics and marketing email), and `assets` (static files).
//!
//! Invariants: handlers parse, call one use case of `maocloud_app`, render — no SQL, no
//! datastore here. Every user-visible string is in the locale catalogs. Every state-changing
//! POST carries a CSRF token (the session's, or the double-submit cookie's before sign-in),
//! checked before anything else — but for the RFC 8058 one-click opt-out a mail client posts,
//! whose signed token is the authorisation; the serial console's websocket, opened by a GET,
//! must come from a page of this origin instead. A session waiting for its TOTP code reaches
//! `/signin/totp` and nothing else.

// Handlers return a rendered page on both sides of their `Result`; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod account;
mod admin;
mod admin_billing;
mod admin_compute;
mod admin_contract;
mod admin_support;
mod assets;
mod billing;
mod compute;
mod contract;
mod forms;
mod privacy;
mod public;
mod records;
mod storage;
mod support;
mod view;
mod visitor;

use crate::AppState;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;

/// Every console route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(public::routes())
        .merge(account::routes())
        .merge(admin::routes())
        .merge(billing::routes())
        .merge(admin_billing::routes())
        .merge(contract::routes())
        .merge(admin_contract::routes())
        .merge(compute::routes())
        .merge(admin_compute::routes())
        .merge(storage::routes())
        .merge(support::routes())
        .merge(admin_support::routes())
        .merge(privacy::routes())
        .merge(assets::routes())
}

/// The 404 page of every path that is not an API path. It knows the visitor's language from
/// their cookie or `Accept-Language`, but not their session.
pub async fn not_found_page(req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = visitor::Visitor::from_parts(&parts, true, false);
    v.status_page(
        StatusCode::NOT_FOUND,
        "console.error.not_found_title",
        v.t("console.error.not_found"),
    )
}

#[cfg(test)]
mod tests;
