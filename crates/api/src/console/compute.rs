//! Compute in the subscriber area (R-1a): the list of VMs with what they take of the quota, the
//! launch form, a VM's page (start, stop, reboot, resize, delete) with its serial console, and
//! SSH keys. Every handler calls `maocloud_app::compute` with the console user's `Ctx`; its scope
//! hides other subscribers' VMs, which are therefore simply not found (the 404 page). Operators
//! have their read-only view in `admin_compute`.
//!
//! The serial console is the console's one use of JavaScript: the VM page loads
//! `static/serial.js` (its own CSP allows `script-src 'self'` and `connect-src 'self'`), which
//! opens the websocket `/account/vms/{id}/serial`. There the server polls the VM's serial output
//! every 300 ms from the last offset, sends new text as text frames, and writes the text frames
//! it receives to the VM's serial port. The socket is authenticated by the session cookie like
//! every console page, refused from another origin, and closed when the session ends or the VM
//! is deleted. Everything else works without script: lists and VM pages reload themselves while
//! a VM is changing state.

use super::account::{cursor, CursorQuery};
use super::contract::refusal_status;
use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::view::{when, When};
use super::visitor::{SignedIn, Visitor, CSP_SERIAL, SESSION_COOKIE};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::compute::{self, images, keys, vms, Image, SshKey, Vm};
use maocloud_app::i18n::{self, Lang};
use maocloud_app::model::AccountKind;
use maocloud_app::{auth, Ctx, Error};
use maocloud_types::{Page as Listing, PageRequest};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

type Page = Result<Response, Response>;

const LIST_PAGE: u32 = 50;
/// How often a page showing a VM that is changing state reloads itself, in seconds.
pub(super) const REFRESH_SECS: u32 = 2;
/// How often the serial console is polled.
const SERIAL_POLL: Duration = Duration::from_millis(300);
/// At most this much serial output is read per poll (a long boot log takes a few polls).
const SERIAL_READ: usize = 64 * 1024;
/// How often the session behind an open serial console is checked again.
const SERIAL_SESSION_CHECK: Duration = Duration::from_secs(30);
/// The largest message a browser may send to the serial port at once.
const SERIAL_INPUT_MAX: usize = 4096;

/// States in which a VM is being changed (the use cases refuse other changes meanwhile).
pub(super) const TRANSITIONAL: &[&str] = vms::BUSY;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/vms", get(list).post(launch))
        .route("/account/vms/new", get(launch_form))
        .route("/account/vms/{id}", get(detail))
        .route("/account/vms/{id}/start", post(start))
        .route("/account/vms/{id}/stop", post(stop))
        .route("/account/vms/{id}/reboot", post(reboot))
        .route("/account/vms/{id}/resize", post(resize))
        .route("/account/vms/{id}/delete", post(delete))
        .route("/account/vms/{id}/serial", get(serial))
        .route("/account/ssh-keys", get(ssh_keys).post(ssh_key_add))
        .route("/account/ssh-keys/{id}/delete", post(ssh_key_delete))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

/// These pages are the subscriber's; operators have theirs in the back office.
fn subscribers_only(s: &SignedIn) -> Result<(), Response> {
    match s.account.kind {
        AccountKind::Subscriber => Ok(()),
        AccountKind::Operator => Err(s.v.redirect("/admin/vms")),
    }
}

/// A VM id from a path: anything that is not one is a page that does not exist.
fn vm_id(v: &Visitor, id: &str) -> Result<String, Response> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| v.fail(Error::NotFound))
}

// --- Views ---

/// An amount of memory or disk in the visitor's units (`256 Mio`, `2 Gio` / `256 MiB`…).
pub(super) fn mib(lang: Lang, mib: i64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        gib(lang, mib / 1024)
    } else {
        i18n::tf(lang, "console.vms.mib", &[("n", &mib.to_string())])
    }
}

pub(super) fn gib(lang: Lang, gib: i64) -> String {
    i18n::tf(lang, "console.vms.gib", &[("n", &gib.to_string())])
}

/// A size as the visitor reads it: `xs — 1 vCPU · 256 Mio de RAM · 1 Gio de disque`.
fn size_label(lang: Lang, s: &compute::Size) -> String {
    i18n::tf(
        lang,
        "console.vms.size_label",
        &[
            ("name", s.name),
            ("vcpus", &s.vcpus.to_string()),
            ("ram", &mib(lang, s.memory_mib as i64)),
            ("disk", &gib(lang, s.disk_gib as i64)),
        ],
    )
}

fn size_options(lang: Lang) -> Vec<Value> {
    compute::SIZES
        .iter()
        .map(|s| context! { value => s.name, label => size_label(lang, s) })
        .collect()
}

/// A VM as the templates show it, to its subscriber and to operators.
#[derive(Serialize)]
pub(super) struct VmView {
    pub id: String,
    pub subscriber_id: String,
    pub host_id: String,
    pub name: String,
    pub state: String,
    /// Being changed: the page reloads itself and offers no other change.
    pub busy: bool,
    pub held: bool,
    pub error: Option<String>,
    pub size: String,
    pub pending_size: Option<String>,
    pub vcpus: i64,
    pub ram: String,
    pub disk: String,
    pub ip: String,
    pub mac: String,
    pub image: String,
    pub created_at: When,
    pub updated_at: When,
    pub deleted: bool,
}

impl VmView {
    pub fn new(lang: Lang, v: &Vm, images: &[Image]) -> VmView {
        VmView {
            id: v.id.to_string(),
            subscriber_id: v.subscriber_id.to_string(),
            host_id: v.host_id.to_string(),
            name: v.name.clone(),
            state: v.state.clone(),
            busy: TRANSITIONAL.contains(&v.state.as_str()),
            held: v.held,
            error: v.error.clone(),
            size: v.size.clone(),
            pending_size: v.pending_size.clone(),
            vcpus: v.vcpus,
            ram: mib(lang, v.memory_mib),
            disk: gib(lang, v.disk_gib),
            ip: v.ip.clone(),
            mac: v.mac.clone(),
            // A retired image is no longer listed: its id stands in for its name.
            image: images
                .iter()
                .find(|i| i.id == v.image_id)
                .map(|i| i.name.clone())
                .unwrap_or_else(|| v.image_id.to_string()),
            created_at: when(v.created_at),
            updated_at: when(v.updated_at),
            deleted: v.deleted_at.is_some(),
        }
    }
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    name: String,
    fingerprint: String,
    created_at: When,
}

impl From<&SshKey> for KeyView {
    fn from(k: &SshKey) -> Self {
        KeyView {
            id: k.id.to_string(),
            name: k.name.clone(),
            fingerprint: k.fingerprint.clone(),
            created_at: when(k.created_at),
        }
    }
}

/// A use case's refusal whose reason carries values (a state, numbers) and therefore has no
/// catalog entry of its own, in the visitor's language. Reasons without values are translated
/// by the `reason` catalog as everywhere else; English keeps the use case's own words.
fn localize(lang: Lang, e: Error) -> Error {
    if lang == Lang::En {
        return e;
    }
    let key = |r: &str| -> Option<&'static str> {
        Some(if r.starts_with("over your quota") {
            "console.vms.reason.over_quota"
        } else if r.starts_with("no host has room") {
            "console.vms.reason.no_room"
        } else if r.contains("lacks the capacity") {
            "console.vms.reason.host_full"
        } else if r.ends_with("try again once that is done") {
            "console.vms.reason.busy"
        } else if r.ends_with("only a running VM can be rebooted") {
            "console.vms.reason.not_running_reboot"
        } else if r.ends_with("start it to type into its console") {
            "console.vms.reason.not_running_console"
        } else if r.starts_with("your services are suspended") {
            "console.vms.reason.suspended"
        } else if r.ends_with("a disk only grows") {
            "console.vms.reason.disk_shrinks"
        } else if r.contains("needs at least") {
            "console.vms.reason.image_disk"
        } else if r.ends_with("is not one of your SSH keys") {
            "console.vms.reason.unknown_key"
        } else {
            return None;
        })
    };
    let fix = |r: String| match key(&r) {
        Some(k) => i18n::t(lang, k),
        None => r,
    };
    match e {
        Error::Conflict { field, reason } => Error::Conflict {
            field,
            reason: fix(reason),
        },
        Error::Invalid(fields) => Error::Invalid(
            fields
                .into_iter()
                .map(|mut f| {
                    f.reason = fix(std::mem::take(&mut f.reason));
                    f
                })
                .collect(),
        ),
        e => e,
    }
}

/// The refusal of an action as one sentence, for the alert of a page (not a field).
fn refusal(v: &Visitor, e: &Error) -> Option<String> {
    super::contract::refusal_text(v, e)
}

// --- The list ---

async fn list(State(st): State<AppState>, s: SignedIn, RawQuery(raw): RawQuery) -> Page {
    subscribers_only(&s)?;
    let fail = |e| s.v.fail(e);
    let q: CursorQuery = forms::query(raw.as_deref());
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let rows = vms::list(&st.app, &s.ctx, None, &page)
        .await
        .map_err(fail)?;
    let listing = Listing::from_rows(rows, LIST_PAGE, |v| v.id.to_string());
    let images = images::list(&st.app, &s.ctx).await.map_err(fail)?;
    let (quota, used) = compute::quota(&st.app, &s.ctx).await.map_err(fail)?;
    let lang = s.v.lang;
    let views: Vec<VmView> = listing
        .items
        .iter()
        .map(|v| VmView::new(lang, v, &images))
        .collect();
    let t = |k: &str| s.v.t(&format!("console.vms.quota_{k}"));
    let count = |n: i64| n.to_string();
    let lines = vec![
        usage("vms", t("vms"), used.vms, quota.vms, count),
        usage("vcpus", t("vcpus"), used.vcpus, quota.vcpus, count),
        usage(
            "memory",
            t("memory"),
            used.memory_mib,
            quota.memory_mib,
            |n| mib(lang, n),
        ),
        usage("disk", t("disk"), used.disk_gib, quota.disk_gib, |n| {
            gib(lang, n)
        }),
    ];
    let refresh = views.iter().any(|v| v.busy).then_some(REFRESH_SECS);
    let ctx = context! {
        section => "account",
        vms => views,
        usage => lines,
        refresh => refresh,
        next_url => listing.next_cursor.map(|c| format!("/account/vms?cursor={c}")),
    };
    Ok(s.v.page(StatusCode::OK, "account/vms.html", ctx))
}

/// One line of the quota: what is used of what is allowed, as numbers (for the meter) and as
/// text.
fn usage(id: &str, label: String, used: i64, total: i64, text: impl Fn(i64) -> String) -> Value {
    context! {
        id => id, label => label, used => used, total => total,
        used_text => text(used), total_text => text(total),
    }
}

// --- Launching ---

/// The launch form as typed. Its body is read by hand: it may repeat `ssh_keys`.
#[derive(Debug, Default, Serialize)]
struct LaunchForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
    image: String,
    size: String,
    ssh_keys: Vec<String>,
    user_data: String,
}

impl LaunchForm {
    fn parse(body: &[u8]) -> LaunchForm {
        let mut f = LaunchForm::default();
        for (k, v) in form_urlencoded::parse(body) {
            let v = v.into_owned();
            match &*k {
                "csrf" => f.csrf = v,
                "name" => f.name = v,
                "image" => f.image = v,
                "size" => f.size = v,
                "ssh_keys" => f.ssh_keys.push(v),
                "user_data" => f.user_data = v,
                _ => {}
            }
        }
        f
    }
}

async fn launch_form(State(st): State<AppState>, s: SignedIn) -> Page {
    subscribers_only(&s)?;
    let form = LaunchForm {
        size: "xs".into(),
        ..LaunchForm::default()
    };
    launch_page(&st, &s, StatusCode::OK, &form, None, None).await
}

async fn launch_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &LaunchForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let images = images::list(&st.app, &s.ctx).await.map_err(fail)?;
    let keys = keys::list(&st.app, &s.ctx).await.map_err(fail)?;
    let (quota, used) = compute::quota(&st.app, &s.ctx).await.map_err(fail)?;
    let image_options: Vec<Value> = images
        .iter()
        .filter(|i| i.status == "ready")
        .map(|i| {
            let label = if i.description.is_empty() {
                i.name.clone()
            } else {
                format!("{} — {}", i.name, i.description)
            };
            context! { value => &i.name, label => label }
        })
        .collect();
    let key_options: Vec<Value> = keys
        .iter()
        .map(|k| {
            context! {
                id => k.id.to_string(), name => &k.name, fingerprint => &k.fingerprint,
                checked => form.ssh_keys.iter().any(|c| *c == k.id.to_string() || *c == k.name),
            }
        })
        .collect();
    let ctx = context! {
        section => "account",
        form => form,
        images => image_options,
        sizes => size_options(s.v.lang),
        keys => key_options,
        quota_text => i18n::tf(s.v.lang, "console.vms.quota_left", &[
            ("vms", &(quota.vms - used.vms).max(0).to_string()),
            ("vcpus", &(quota.vcpus - used.vcpus).max(0).to_string()),
            ("ram", &mib(s.v.lang, (quota.memory_mib - used.memory_mib).max(0))),
            ("disk", &gib(s.v.lang, (quota.disk_gib - used.disk_gib).max(0))),
        ]),
        alert => alert,
    };
    Ok(s.v.page(status, "account/vm_new.html", with_errors(ctx, errors)))
}

async fn launch(State(st): State<AppState>, mut s: SignedIn, body: Bytes) -> Page {
    subscribers_only(&s)?;
    let form = LaunchForm::parse(&body);
    s.v.check_csrf(&form.csrf)?;
    let req = vms::CreateVm {
        name: form.name.clone(),
        image: form.image.clone(),
        size: form.size.clone(),
        ssh_keys: form.ssh_keys.clone(),
        // Browsers send a textarea's lines with CRLF; a script's first line must end in LF.
        user_data: forms::opt(&form.user_data).map(|_| form.user_data.replace("\r\n", "\n")),
    };
    match vms::create(&st.app, &s.ctx, req).await {
        Ok(vm) => {
            s.v.flash("vm_launched");
            Ok(s.v.redirect(&format!("/account/vms/{}", vm.id)))
        }
        Err(e) => {
            let e = localize(s.v.lang, e);
            let status = refusal_status(&e);
            if let Some(errors) = FieldErrors::of(s.v.lang, &e) {
                return launch_page(&st, &s, status, &form, Some(errors), None).await;
            }
            match refusal(&s.v, &e) {
                Some(alert) => launch_page(&st, &s, status, &form, None, Some(alert)).await,
                None => Err(s.v.fail(e)),
            }
        }
    }
}

// --- One VM ---

async fn detail(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    subscribers_only(&s)?;
    let id = vm_id(&s.v, &id)?;
    vm_page(&st, &s, &id, StatusCode::OK, None, None, None).await
}

/// A VM's page; after a refused change, with the refusal (`alert`, or `errors` by field for
/// the resize form and the size asked for).
async fn vm_page(
    st: &AppState,
    s: &SignedIn,
    id: &str,
    status: StatusCode,
    alert: Option<String>,
    errors: Option<FieldErrors>,
    asked_size: Option<String>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let vm = vms::get(&st.app, &s.ctx, id).await.map_err(fail)?;
    let images = images::list(&st.app, &s.ctx).await.map_err(fail)?;
    let view = VmView::new(s.v.lang, &vm, &images);
    let live = !view.deleted;
    let refresh = view.busy.then_some(REFRESH_SECS);
    let ctx = context! {
        section => "account",
        vm => &view,
        refresh => refresh,
        sizes => size_options(s.v.lang),
        resize_to => asked_size.unwrap_or_else(|| vm.size.clone()),
        can_start => live && !view.busy && matches!(vm.state.as_str(), "stopped" | "crashed" | "error"),
        can_stop => live && !view.busy && matches!(vm.state.as_str(), "running" | "crashed"),
        can_reboot => live && vm.state == "running",
        can_resize => live && !view.busy && vm.state != "error",
        can_delete => live && vm.state != "deleting",
        serial => live,
        can_type => live && vm.state == "running",
        serial_url => format!("/account/vms/{}/serial", vm.id),
        script_url => live.then(|| super::assets::url("serial.js")),
        alert => alert,
    };
    let mut r =
        s.v.page(status, "account/vm.html", with_errors(ctx, errors));
    if live {
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_SERIAL),
        );
    }
    Ok(r)
}

async fn act(st: AppState, mut s: SignedIn, id: String, csrf: &str, action: vms::Action) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(csrf)?;
    let id = vm_id(&s.v, &id)?;
    match vms::act(&st.app, &s.ctx, &id, action).await {
        Ok(_) => {
            s.v.flash(match action {
                vms::Action::Start => "vm_starting",
                vms::Action::Stop => "vm_stopping",
                vms::Action::Reboot => "vm_rebooting",
            });
            Ok(s.v.redirect(&format!("/account/vms/{id}")))
        }
        Err(e) => refused(&st, &s, &id, e, None).await,
    }
}

/// A change the use case refused, shown on the VM's page (a missing VM is the 404 page).
async fn refused(
    st: &AppState,
    s: &SignedIn,
    id: &str,
    e: Error,
    asked_size: Option<String>,
) -> Page {
    let e = localize(s.v.lang, e);
    let status = refusal_status(&e);
    if let Some(errors) = FieldErrors::of(s.v.lang, &e).filter(|_| asked_size.is_some()) {
        return vm_page(st, s, id, status, None, Some(errors), asked_size).await;
    }
    match refusal(&s.v, &e) {
        Some(alert) => vm_page(st, s, id, status, Some(alert), None, asked_size).await,
        None => Err(s.v.fail(e)),
    }
}

async fn start(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    act(st, s, id, &f.csrf, vms::Action::Start).await
}

async fn stop(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    act(st, s, id, &f.csrf, vms::Action::Stop).await
}

async fn reboot(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    act(st, s, id, &f.csrf, vms::Action::Reboot).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResizeForm {
    csrf: String,
    size: String,
}

async fn resize(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ResizeForm>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    let id = vm_id(&s.v, &id)?;
    match vms::resize(&st.app, &s.ctx, &id, f.size.trim()).await {
        Ok(_) => {
            s.v.flash("vm_resizing");
            Ok(s.v.redirect(&format!("/account/vms/{id}")))
        }
        Err(e) => refused(&st, &s, &id, e, Some(f.size)).await,
    }
}

async fn delete(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    let id = vm_id(&s.v, &id)?;
    match vms::delete(&st.app, &s.ctx, &id).await {
        Ok(_) => {
            s.v.flash("vm_deleting");
            Ok(s.v.redirect("/account/vms"))
        }
        Err(e) => refused(&st, &s, &id, e, None).await,
    }
}

// --- The serial console ---

/// The websocket of a VM's serial console. The VM must be the visitor's (else the 404 page,
/// before any upgrade) and the page opening it must be ours (a cookie-authenticated socket
/// opened from another site's page is refused).
async fn serial(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Page {
    subscribers_only(&s)?;
    let id = vm_id(&s.v, &id)?;
    let vm = vms::get(&st.app, &s.ctx, &id)
        .await
        .map_err(|e| s.v.fail(e))?;
    if vm.deleted_at.is_some() {
        return Err(s.v.fail(Error::NotFound));
    }
    if !same_origin(&headers) {
        return Err(s.v.status_page(
            StatusCode::FORBIDDEN,
            "console.error.forbidden_title",
            s.v.t("console.vms.serial_other_origin"),
        ));
    }
    let upgrade = upgrade.map_err(IntoResponse::into_response)?;
    let cookie =
        s.v.jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
    let lang = s.v.lang;
    let ctx = s.ctx;
    Ok(upgrade
        .max_message_size(SERIAL_INPUT_MAX)
        .max_frame_size(SERIAL_INPUT_MAX)
        .on_upgrade(move |socket| serial_pump(st, ctx, cookie, lang, id, socket)))
}

/// Whether a websocket handshake comes from one of our pages: browsers always send `Origin`
/// with one; it must name the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok().and_then(|o| o.split_once("://")), host) {
        (Some((scheme, rest)), Some(host)) => {
            matches!(scheme, "http" | "https") && rest.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Why a serial console closes, for the script: it reconnects after anything else.
const CLOSE_DONE: u16 = 1000;
const CLOSE_SESSION: u16 = 1008;

/// Moves bytes between the VM's serial port and the browser until either side is done.
async fn serial_pump(
    st: AppState,
    ctx: Ctx,
    cookie: String,
    lang: Lang,
    id: String,
    mut socket: WebSocket,
) {
    let mut offset = 0u64;
    // The first bytes of a character cut between two reads.
    let mut pending: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(SERIAL_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut session_checked = tokio::time::Instant::now();
    // Said once while the VM's host cannot be reached, again once it can.
    let mut unreachable = false;
    let close = loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    match vms::console_write(&st.app, &ctx, &id, text.as_bytes()).await {
                        Ok(()) => {}
                        Err(Error::NotFound) => break Some((CLOSE_DONE, "deleted")),
                        Err(e) => {
                            let why = serial_refusal(lang, e);
                            if socket.send(Message::Text(why.into())).await.is_err() {
                                break None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                // Pings are answered by the protocol layer; binary frames are not ours.
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                if session_checked.elapsed() >= SERIAL_SESSION_CHECK {
                    match auth::session_resolve(&st.app, &cookie).await {
                        Ok((session, _)) if !session.mfa_pending => {
                            session_checked = tokio::time::Instant::now();
                        }
                        Ok(_) | Err(Error::Unauthenticated(_) | Error::NotFound) => {
                            break Some((CLOSE_SESSION, "session"));
                        }
                        // The database is busy or away: try again at the next tick.
                        Err(_) => {}
                    }
                }
                let mut text = String::new();
                let mut done = None;
                for _ in 0..8 {
                    match vms::console_read(&st.app, &ctx, &id, offset, SERIAL_READ).await {
                        Ok((bytes, next)) => {
                            if unreachable {
                                unreachable = false;
                                text.push_str(&serial_notice(lang, "console.vms.serial_reachable"));
                            }
                            offset = next;
                            let full = bytes.len() >= SERIAL_READ;
                            pending.extend_from_slice(&bytes);
                            text.push_str(&take_text(&mut pending));
                            if !full {
                                break;
                            }
                        }
                        Err(Error::NotFound) => {
                            done = Some((CLOSE_DONE, "deleted"));
                            break;
                        }
                        Err(Error::Conflict { .. }) => {
                            if !unreachable {
                                unreachable = true;
                                text.push_str(&serial_notice(lang, "console.vms.serial_unreachable"));
                            }
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(vm = %id, error = %e, "serial console read failed");
                            break;
                        }
                    }
                }
                if !text.is_empty() && socket.send(Message::Text(text.into())).await.is_err() {
                    break None;
                }
                if done.is_some() {
                    break done;
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
}

/// A line the platform adds to the console's text (not the VM's own output).
fn serial_notice(lang: Lang, key: &str) -> String {
    format!("\r\n[{}]\r\n", i18n::t(lang, key))
}

/// What the visitor typed was refused: why, as a line of the console.
fn serial_refusal(lang: Lang, e: Error) -> String {
    let reason = match localize(lang, e) {
        Error::Conflict { reason, .. } => i18n::reason(lang, &reason),
        _ => i18n::t(lang, "console.error.internal"),
    };
    format!(
        "\r\n[{}]\r\n",
        i18n::tf(lang, "console.vms.serial_refused", &[("reason", &reason)])
    )
}

/// The text at the front of `buf`, leaving there the start of a character cut by the end of a
/// read. Bytes that are not UTF-8 become U+FFFD.
fn take_text(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut rest: &[u8] = buf;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (good, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{fffd}');
                        rest = &after[n..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    *buf = rest.to_vec();
    out
}

// --- SSH keys ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct KeyForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
    public_key: String,
}

async fn ssh_keys(State(st): State<AppState>, s: SignedIn) -> Page {
    subscribers_only(&s)?;
    keys_page(&st, &s, StatusCode::OK, &KeyForm::default(), None).await
}

async fn keys_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &KeyForm,
    errors: Option<FieldErrors>,
) -> Page {
    let list = keys::list(&st.app, &s.ctx).await.map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "account",
        keys => list.iter().map(KeyView::from).collect::<Vec<_>>(),
        form => form,
    };
    Ok(s.v.page(status, "account/ssh_keys.html", with_errors(ctx, errors)))
}

async fn ssh_key_add(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<KeyForm>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    match keys::add(&st.app, &s.ctx, &form.name, &form.public_key).await {
        Ok(_) => {
            s.v.flash("ssh_key_added");
            Ok(s.v.redirect("/account/ssh-keys"))
        }
        Err(e) => match FieldErrors::of(s.v.lang, &e) {
            Some(errors) => keys_page(&st, &s, refusal_status(&e), &form, Some(errors)).await,
            None => Err(s.v.fail(e)),
        },
    }
}

async fn ssh_key_delete(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| s.v.fail(Error::NotFound))?;
    keys::delete(&st.app, &s.ctx, &id.to_string())
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("ssh_key_deleted");
    Ok(s.v.redirect("/account/ssh-keys"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_text_keeps_a_character_cut_between_reads() {
        let mut buf = "boot é".as_bytes().to_vec();
        let last = buf.pop().unwrap();
        assert_eq!(take_text(&mut buf), "boot ");
        assert_eq!(buf.len(), 1, "the first byte of é waits");
        buf.push(last);
        buf.extend_from_slice(b"\xffok");
        assert_eq!(take_text(&mut buf), "é\u{fffd}ok");
        assert!(buf.is_empty());
    }

    #[test]
    fn only_our_pages_open_the_serial_console() {
        let h = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("cloud.example:8080"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(same_origin(&h(None)));
        assert!(same_origin(&h(Some("https://cloud.example:8080"))));
        assert!(!same_origin(&h(Some("https://evil.example"))));
        assert!(!same_origin(&h(Some("null"))));
        assert!(!same_origin(&h(Some("https://cloud.example"))));
    }

    #[test]
    fn refusals_with_values_are_translated() {
        let e = Error::Conflict {
            field: Some("size".into()),
            reason: "over your quota: this needs 3 vCPUs in all and your quota is 2 (vcpus); delete a VM, choose a smaller size or move to a larger offer".into(),
        };
        match localize(Lang::Fr, e) {
            Error::Conflict { field, reason } => {
                assert_eq!(field.as_deref(), Some("size"));
                assert!(
                    reason.contains("quota") && !reason.contains("needs"),
                    "{reason}"
                );
            }
            e => panic!("{e:?}"),
        }
        let e = Error::Conflict {
            field: None,
            reason: "the VM is stopping; try again once that is done".into(),
        };
        assert!(
            matches!(localize(Lang::En, e), Error::Conflict { reason, .. } if reason.starts_with("the VM is"))
        );
    }
}
