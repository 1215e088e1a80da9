//! The contract's lifecycle in the back office. Each use case checks the operator's role (the
//! console shows its 403 page otherwise): suspensions (R-7.1: suspend for a recorded reason,
//! confirm a pending non-payment suspension, lift with a reason), proof requests (R-3.3: ask
//! for a document, read it, approve or reject it), terminations (R-7.2: record a registered
//! letter with its date of receipt), terms versions (R-6.3, R-3.5: publish, with the notices
//! sent) and incidents (R-8.1, R-8.2: record, compute the professional cap, compensate).

use super::contract::{
    current_version, proof_download, proof_view, refusal_status, refusal_text, suspension_view,
    termination_view, terms_version_view,
};
use super::forms::{self, euros_to_cents, FieldErrors, Form};
use super::public::with_errors;
use super::view::{when, when_opt};
use super::visitor::{OperatorIn, SignedIn};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::incidents;
use maocloud_app::termination::{self, TerminationInput};
use maocloud_app::terms::{self, PublishInput};
use maocloud_app::{proofs, suspension, Error};
use maocloud_billing::calendar::{paris, paris_date};
use maocloud_types::{Cents, InvoiceId, SubscriberId, SubscriptionId, Timestamp};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/suspensions", get(suspensions).post(suspend))
        .route("/admin/suspensions/{id}/confirm", post(suspension_confirm))
        .route("/admin/suspensions/{id}/lift", post(suspension_lift))
        .route("/admin/proofs", get(proof_list).post(proof_request))
        .route("/admin/proofs/{id}/file", get(proof_file))
        .route("/admin/proofs/{id}/decision", post(proof_decide))
        .route(
            "/admin/terminations",
            get(terminations).post(termination_record),
        )
        .route("/admin/terms", get(terms_list).post(terms_publish))
        .route("/admin/incidents", get(incident_list).post(incident_create))
        .route("/admin/incidents/{id}", get(incident))
        .route("/admin/incidents/{id}/compensations", post(compensate))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SubscriberQuery {
    subscriber: String,
}

/// `{value, label}` options of a select, labelled from `prefix.value` in the catalogs.
fn options(s: &SignedIn, prefix: &str, values: &[&str]) -> Vec<Value> {
    values
        .iter()
        .map(|v| context! { value => v, label => s.v.t(&format!("{prefix}.{v}")) })
        .collect()
}

fn push(s: &SignedIn, errors: &mut FieldErrors, field: &str, key: &str) {
    errors.push(field, s.v.t(key));
}

fn subscriber_field(s: &SignedIn, errors: &mut FieldErrors, value: &str) -> Option<SubscriberId> {
    match value.trim().parse() {
        Ok(id) => Some(id),
        Err(_) => {
            push(s, errors, "subscriber_id", "console.form.not_an_id");
            None
        }
    }
}

fn date_field(
    s: &SignedIn,
    errors: &mut FieldErrors,
    field: &str,
    value: &str,
) -> Option<jiff::civil::Date> {
    match value.trim().parse() {
        Ok(d) => Some(d),
        Err(_) => {
            push(s, errors, field, "console.form.not_a_date");
            None
        }
    }
}

/// An instant typed in a form: RFC 3339, or a `datetime-local` value read as Paris time.
fn instant(value: &str) -> Option<Timestamp> {
    let v = value.trim();
    if let Ok(ts) = v.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt: jiff::civil::DateTime = v.parse().ok()?;
    dt.to_zoned(paris()).ok().map(|z| z.timestamp())
}

/// A refused action of one row: the page again, its reason in an alert next to the row.
type RowAlert = Option<(String, String)>;

/// The page of a refused action on one row, or the error page.
fn row_refusal(s: &SignedIn, id: &str, e: Error) -> Result<(StatusCode, RowAlert), Response> {
    match refusal_text(&s.v, &e) {
        Some(text) => Ok((refusal_status(&e), Some((id.to_owned(), text)))),
        None => Err(s.v.fail(e)),
    }
}

// --- Suspensions (R-7.1) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct SuspendForm {
    #[serde(skip_serializing)]
    csrf: String,
    subscriber_id: String,
    cause: String,
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReasonForm {
    csrf: String,
    reason: String,
}

async fn suspensions(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: SubscriberQuery = forms::query(raw.as_deref());
    let form = SuspendForm {
        subscriber_id: q.subscriber.trim().to_owned(),
        ..SuspendForm::default()
    };
    let who = q.subscriber.trim().parse().ok();
    suspensions_page(&st, &s, StatusCode::OK, who, &form, None, None).await
}

async fn suspensions_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    subscriber: Option<SubscriberId>,
    form: &SuspendForm,
    errors: Option<FieldErrors>,
    alert: RowAlert,
) -> Page {
    let list = suspension::list(&st.app, &s.ctx, subscriber)
        .await
        .map_err(|e| s.v.fail(e))?;
    let (refused_id, alert) = alert.unzip();
    let ctx = context! {
        section => "admin",
        subscriber => subscriber.map(|id| id.to_string()),
        suspensions => list.iter().map(|x| suspension_view!(&s.v, x)).collect::<Vec<_>>(),
        causes => options(s, "console.suspension.cause", &suspension::OPERATOR_CAUSES),
        form => form,
        refused_id => refused_id,
        alert => alert,
    };
    Ok(s.v.page(status, "admin/suspensions.html", with_errors(ctx, errors)))
}

async fn suspend(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Form(form): Form<SuspendForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let who = subscriber_field(&s, &mut errors, &form.subscriber_id);
    let result = match who {
        Some(who) if errors.is_empty() => {
            suspension::suspend(&st.app, &s.ctx, who, form.cause.trim(), &form.reason).await
        }
        _ => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(_) => {
            s.v.flash("suspended");
            Ok(s.v.redirect("/admin/suspensions"))
        }
        Err(e) => {
            let errors = errors.or_of(s.v.lang, e).map_err(|e| s.v.fail(e))?;
            suspensions_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &form,
                Some(errors),
                None,
            )
            .await
        }
    }
}

async fn suspension_confirm(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match suspension::confirm(&st.app, &s.ctx, &id).await {
        Ok(_) => {
            s.v.flash("suspension_confirmed");
            Ok(s.v.redirect("/admin/suspensions"))
        }
        Err(e) => {
            let (status, alert) = row_refusal(&s, &id, e)?;
            let form = SuspendForm::default();
            suspensions_page(&st, &s, status, None, &form, None, alert).await
        }
    }
}

async fn suspension_lift(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match suspension::lift(&st.app, &s.ctx, &id, &form.reason).await {
        Ok(_) => {
            s.v.flash("suspension_lifted");
            Ok(s.v.redirect("/admin/suspensions"))
        }
        Err(e) => {
            let (status, alert) = row_refusal(&s, &id, e)?;
            let form = SuspendForm::default();
            suspensions_page(&st, &s, status, None, &form, None, alert).await
        }
    }
}

// --- Proof requests (R-3.3) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct ProofRequestForm {
    #[serde(skip_serializing)]
    csrf: String,
    subscriber_id: String,
    kind: String,
    note: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DecisionForm {
    csrf: String,
    decision: String,
    reason: String,
}

async fn proof_list(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: SubscriberQuery = forms::query(raw.as_deref());
    let form = ProofRequestForm {
        subscriber_id: q.subscriber.trim().to_owned(),
        ..ProofRequestForm::default()
    };
    let who = q.subscriber.trim().parse().ok();
    proofs_page(&st, &s, StatusCode::OK, who, &form, None, None).await
}

async fn proofs_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    subscriber: Option<SubscriberId>,
    form: &ProofRequestForm,
    errors: Option<FieldErrors>,
    alert: RowAlert,
) -> Page {
    let list = proofs::list(&st.app, &s.ctx, subscriber)
        .await
        .map_err(|e| s.v.fail(e))?;
    let (refused_id, alert) = alert.unzip();
    let ctx = context! {
        section => "admin",
        subscriber => subscriber.map(|id| id.to_string()),
        proofs => list.iter().map(|p| proof_view!(p)).collect::<Vec<_>>(),
        kinds => options(s, "console.documents.kind", &proofs::KINDS),
        form => form,
        refused_id => refused_id,
        alert => alert,
    };
    Ok(s.v.page(status, "admin/proofs.html", with_errors(ctx, errors)))
}

async fn proof_request(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Form(form): Form<ProofRequestForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let who = subscriber_field(&s, &mut errors, &form.subscriber_id);
    let result = match who {
        Some(who) => proofs::request(&st.app, &s.ctx, who, form.kind.trim(), &form.note).await,
        None => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(_) => {
            s.v.flash("proof_requested");
            Ok(s.v.redirect("/admin/proofs"))
        }
        Err(e) => {
            let errors = errors.or_of(s.v.lang, e).map_err(|e| s.v.fail(e))?;
            proofs_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &form,
                Some(errors),
                None,
            )
            .await
        }
    }
}

async fn proof_file(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
) -> Page {
    proof_download(&st, &s, &id).await
}

async fn proof_decide(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(s
                .v
                .fail(Error::invalid("decision", "must be approve or reject")))
        }
    };
    match proofs::decide(&st.app, &s.ctx, &id, approve, &form.reason).await {
        Ok(_) => {
            s.v.flash(if approve {
                "proof_approved"
            } else {
                "proof_rejected"
            });
            Ok(s.v.redirect("/admin/proofs"))
        }
        Err(e) => {
            let (status, alert) = row_refusal(&s, &id, e)?;
            let form = ProofRequestForm::default();
            proofs_page(&st, &s, status, None, &form, None, alert).await
        }
    }
}

// --- Terminations by registered letter (R-7.2) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct LetterForm {
    #[serde(skip_serializing)]
    csrf: String,
    subscription_id: String,
    received_on: String,
    end: String,
    date: String,
    reason: String,
}

async fn terminations(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: SubscriberQuery = forms::query(raw.as_deref());
    let form = LetterForm {
        received_on: paris_date(st.app.now()).to_string(),
        end: "month_end".into(),
        ..LetterForm::default()
    };
    let who = q.subscriber.trim().parse().ok();
    terminations_page(&st, &s, StatusCode::OK, who, &form, None).await
}

async fn terminations_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    subscriber: Option<SubscriberId>,
    form: &LetterForm,
    errors: Option<FieldErrors>,
) -> Page {
    let list = termination::list(&st.app, &s.ctx, subscriber)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ends = ["month_end", "date"]
        .iter()
        .map(|e| context! { value => e, label => s.v.t(&format!("console.termination.end.{e}")) })
        .collect::<Vec<_>>();
    let mut reasons =
        vec![context! { value => "", label => s.v.t("console.termination.no_reason") }];
    reasons.extend(options(
        s,
        "console.termination.reason",
        &termination::REASONS,
    ));
    let ctx = context! {
        section => "admin",
        subscriber => subscriber.map(|id| id.to_string()),
        terminations => list.iter().map(termination_view).collect::<Vec<_>>(),
        ends => ends,
        reasons => reasons,
        form => form,
    };
    Ok(s.v.page(status, "admin/terminations.html", with_errors(ctx, errors)))
}

async fn termination_record(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Form(form): Form<LetterForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let sub: Option<SubscriptionId> = match form.subscription_id.trim().parse() {
        Ok(id) => Some(id),
        Err(_) => {
            push(&s, &mut errors, "subscription_id", "console.form.not_an_id");
            None
        }
    };
    let received_on = date_field(&s, &mut errors, "received_on", &form.received_on);
    let end = form.end.trim().to_owned();
    let date = match forms::opt(&form.date).filter(|_| end == "date") {
        Some(d) => date_field(&s, &mut errors, "date", &d),
        None => None,
    };
    let result = match (sub, received_on) {
        (Some(sub), Some(received_on)) if errors.is_empty() => {
            let input = TerminationInput {
                end,
                date,
                reason: forms::opt(&form.reason),
                received_on: Some(received_on),
            };
            termination::request(&st.app, &s.ctx, sub, input).await
        }
        _ => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(_) => {
            s.v.flash("termination_recorded");
            Ok(s.v.redirect("/admin/terminations"))
        }
        Err(e) => {
            let errors = if !errors.is_empty() {
                errors
            } else if let Error::Conflict {
                field: None,
                reason,
            } = &e
            {
                FieldErrors::one(s.v.lang, "subscription_id", reason)
            } else {
                match FieldErrors::of(s.v.lang, &e) {
                    Some(errors) => errors,
                    None => return Err(s.v.fail(e)),
                }
            };
            terminations_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &form,
                Some(errors),
            )
            .await
        }
    }
}

// --- Terms versions (R-6.3, R-3.5) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct PublishForm {
    #[serde(skip_serializing)]
    csrf: String,
    version: String,
    title: String,
    body: String,
    summary: String,
    effective_on: String,
    class: String,
    substantial: String,
    closure: String,
    equivalent_migration: String,
}

async fn terms_list(State(st): State<AppState>, OperatorIn(s): OperatorIn) -> Page {
    let form = PublishForm {
        class: "administrative".into(),
        ..PublishForm::default()
    };
    terms_page(&st, &s, StatusCode::OK, &form, None, None).await
}

async fn terms_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &PublishForm,
    errors: Option<FieldErrors>,
    published: Option<(String, usize)>,
) -> Page {
    let list = terms::list(&st.app).await.map_err(|e| s.v.fail(e))?;
    let now = st.app.now();
    let current = current_version(&list, now);
    let mut versions = Vec::with_capacity(list.len());
    for v in &list {
        // Notices are for support (and admins); others see the versions only.
        let notices = terms::notices(&st.app, &s.ctx, Some(&v.0.id.to_string()))
            .await
            .ok()
            .map(|n| n.len());
        let view = terms_version_view(v, now, current.as_deref());
        versions.push(context! { notices => notices, ..view });
    }
    let ctx = context! {
        section => "admin",
        versions => versions,
        classes => options(s, "console.terms_admin.class", &terms::CLASSES),
        can_publish => s.ctx.require_operator(&[]).is_ok(),
        form => form,
        published => published.map(|(version, n)| context! { version => version, notified => n }),
    };
    Ok(s.v.page(status, "admin/terms.html", with_errors(ctx, errors)))
}

async fn terms_publish(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<PublishForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let effective_on = date_field(&s, &mut errors, "effective_on", &form.effective_on);
    let result = match effective_on {
        Some(effective_on) => {
            let input = PublishInput {
                version: form.version.clone(),
                title: form.title.clone(),
                body: form.body.clone(),
                summary: form.summary.clone(),
                effective_on,
                class: form.class.trim().to_owned(),
                substantial: !form.substantial.is_empty(),
                closure: !form.closure.is_empty(),
                equivalent_migration: !form.equivalent_migration.is_empty(),
            };
            terms::publish(&st.app, &s.ctx, input).await
        }
        None => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(((v, _), n)) => {
            let form = PublishForm {
                class: "administrative".into(),
                ..PublishForm::default()
            };
            terms_page(&st, &s, StatusCode::OK, &form, None, Some((v.version, n))).await
        }
        Err(e) => {
            let errors = errors.or_of(s.v.lang, e).map_err(|e| s.v.fail(e))?;
            terms_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
                None,
            )
            .await
        }
    }
}

// --- Incidents and compensation (R-8.1, R-8.2) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct IncidentForm {
    #[serde(skip_serializing)]
    csrf: String,
    title: String,
    resources: String,
    started_at: String,
    ended_at: String,
    force_majeure: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct CompensateForm {
    #[serde(skip_serializing)]
    csrf: String,
    subscriber_id: String,
    amount_excl: String,
    invoice_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CapQuery {
    subscriber_id: String,
}

macro_rules! incident_view {
    ($i:expr) => {{
        let i = $i;
        context! {
            id => &i.id,
            title => &i.title,
            resources => &i.resources,
            started_at => when(i.started_at),
            ended_at => when_opt(i.ended_at),
            force_majeure => i.force_majeure,
            recorded_by => &i.recorded_by,
            created_at => when(i.created_at),
        }
    }};
}

async fn incident_list(State(st): State<AppState>, OperatorIn(s): OperatorIn) -> Page {
    incidents_page(&st, &s, StatusCode::OK, &IncidentForm::default(), None).await
}

async fn incidents_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &IncidentForm,
    errors: Option<FieldErrors>,
) -> Page {
    let list = incidents::list(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "admin",
        incidents => list.iter().map(|i| incident_view!(i)).collect::<Vec<_>>(),
        form => form,
    };
    Ok(s.v.page(status, "admin/incidents.html", with_errors(ctx, errors)))
}

async fn incident_create(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Form(form): Form<IncidentForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let started_at = instant(&form.started_at);
    if started_at.is_none() {
        push(&s, &mut errors, "started_at", "console.form.not_an_instant");
    }
    let ended_at = match forms::opt(&form.ended_at) {
        None => None,
        Some(e) => {
            let at = instant(&e);
            if at.is_none() {
                push(&s, &mut errors, "ended_at", "console.form.not_an_instant");
            }
            at
        }
    };
    let result = match started_at {
        Some(started_at) if errors.is_empty() => {
            incidents::create(
                &st.app,
                &s.ctx,
                &form.title,
                &form.resources,
                started_at,
                ended_at,
                !form.force_majeure.is_empty(),
            )
            .await
        }
        _ => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok(i) => {
            s.v.flash("incident_created");
            Ok(s.v.redirect(&format!("/admin/incidents/{}", i.id)))
        }
        Err(e) => {
            let errors = errors.or_of(s.v.lang, e).map_err(|e| s.v.fail(e))?;
            incidents_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
            )
            .await
        }
    }
}

async fn incident(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: CapQuery = forms::query(raw.as_deref());
    let form = CompensateForm {
        subscriber_id: q.subscriber_id.trim().to_owned(),
        ..CompensateForm::default()
    };
    incident_page(&st, &s, StatusCode::OK, &id, &form, None).await
}

/// An incident, its compensations, and — for the subscriber of the form — the cap with
/// its reasons and the compensation form.
async fn incident_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    id: &str,
    form: &CompensateForm,
    errors: Option<FieldErrors>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let (i, comps) = incidents::get(&st.app, &s.ctx, id).await.map_err(fail)?;
    let mut cap_errors = None;
    let cap = match forms::opt(&form.subscriber_id) {
        None => None,
        Some(sub) => match sub.parse::<SubscriberId>() {
            Err(_) => {
                cap_errors = Some(s.v.t("console.form.not_an_id"));
                None
            }
            Ok(sub) => match incidents::cap(&st.app, &s.ctx, id, sub).await {
                Ok(c) => Some(context! {
                    subscriber_id => sub.to_string(),
                    professional => c.professional,
                    force_majeure => c.force_majeure,
                    cap => c.cap.map(|c| c.0),
                    granted => c.granted.0,
                    remaining => c.remaining.map(|c| c.0),
                    periods => c.periods.iter().map(|p| context! {
                        month => &p.month,
                        invoice_number => &p.invoice_number,
                        fee_incl => p.fee_incl.0,
                        paid => p.paid.0,
                    }).collect::<Vec<_>>(),
                }),
                Err(e) => match refusal_text(&s.v, &e) {
                    Some(text) => {
                        cap_errors = Some(text);
                        None
                    }
                    None => return Err(s.v.fail(e)),
                },
            },
        },
    };
    let ctx = context! {
        section => "admin",
        incident => incident_view!(&i),
        compensations => comps.iter().map(|c| context! {
            subscriber_id => c.subscriber_id.to_string(),
            credit_note_id => c.credit_note_id.to_string(),
            amount => c.amount.0,
            granted_by => &c.granted_by,
            created_at => when(c.created_at),
        }).collect::<Vec<_>>(),
        cap => cap,
        cap_error => cap_errors,
        form => form,
    };
    Ok(s.v.page(status, "admin/incident.html", with_errors(ctx, errors)))
}

async fn compensate(
    State(st): State<AppState>,
    OperatorIn(mut s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CompensateForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let who = subscriber_field(&s, &mut errors, &form.subscriber_id);
    let amount = match euros_to_cents(&form.amount_excl) {
        Ok(c) => Cents(c),
        Err(e) => {
            push(&s, &mut errors, "amount_excl", e.key());
            Cents(0)
        }
    };
    let invoice = match forms::opt(&form.invoice_id).map(|i| i.parse::<InvoiceId>()) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(_)) => {
            push(&s, &mut errors, "invoice_id", "console.form.not_an_id");
            None
        }
    };
    let result = match who {
        Some(who) if errors.is_empty() => {
            incidents::compensate(&st.app, &s.ctx, &id, who, amount, invoice).await
        }
        _ => Err(Error::Invalid(vec![])),
    };
    match result {
        Ok((_, _, _)) => {
            s.v.flash("compensation_granted");
            let who = form.subscriber_id.trim();
            Ok(s.v.redirect(&format!("/admin/incidents/{id}?subscriber_id={who}")))
        }
        Err(e) => {
            let e = forms::rename_fields(e, |f| match f {
                "amount_excl_cents" => Some("amount_excl"),
                "incident_id" => Some("subscriber_id"),
                _ => None,
            });
            let errors = errors.or_of(s.v.lang, e).map_err(|e| s.v.fail(e))?;
            incident_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                &form,
                Some(errors),
            )
            .await
        }
    }
}
