//! Compute in the back office, read-only: the hypervisor hosts with their accelerator, status,
//! what their VMs take of their capacity and the warnings their agents report (a host running
//! guests without KVM is slow and says why), and every subscriber's VMs with their host.

use super::account::cursor;
use super::compute::{gib, mib, VmView, REFRESH_SECS};
use super::forms;
use super::view::{when, When};
use super::visitor::OperatorIn;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maocloud_app::compute::{hosts, images, vms};
use maocloud_app::i18n::Lang;
use maocloud_app::Error;
use maocloud_types::{Page as Listing, PageRequest, SubscriberId};
use minijinja::context;
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

const LIST_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/hosts", get(host_list))
        .route("/admin/vms", get(vm_list))
}

/// A host as the back office shows it.
#[derive(Serialize)]
struct HostView {
    id: String,
    name: String,
    url: Option<String>,
    accel: String,
    status: String,
    attached: bool,
    vcpus_used: i64,
    vcpus: i64,
    memory_used: String,
    memory: String,
    disk_used: String,
    disk: String,
    vms: i64,
    warnings: Vec<String>,
    last_seen_at: When,
}

impl HostView {
    fn new(lang: Lang, h: &hosts::HostView) -> HostView {
        let host = &h.host;
        HostView {
            id: host.id.to_string(),
            name: host.name.clone(),
            url: host.url.clone(),
            accel: host.accel.clone(),
            status: host.status.clone(),
            attached: h.attached,
            vcpus_used: h.load.vcpus,
            vcpus: host.vcpus,
            memory_used: mib(lang, h.load.memory_mib),
            memory: mib(lang, host.memory_mib),
            disk_used: gib(lang, h.load.disk_gib),
            disk: gib(lang, host.disk_gib),
            vms: h.load.vms,
            // The agent's own words (a JSON list): shown as they are, they name host paths.
            warnings: serde_json::from_str(&host.warnings).unwrap_or_default(),
            last_seen_at: when(host.last_seen_at),
        }
    }
}

async fn host_list(State(st): State<AppState>, OperatorIn(s): OperatorIn) -> Page {
    let list = hosts::list(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let views: Vec<HostView> = list.iter().map(|h| HostView::new(s.v.lang, h)).collect();
    let warned = views.iter().filter(|h| !h.warnings.is_empty()).count();
    let ctx = context! {
        section => "admin",
        hosts => views,
        warned => warned,
    };
    Ok(s.v.page(StatusCode::OK, "admin/hosts.html", ctx))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VmQuery {
    subscriber: String,
    cursor: String,
}

async fn vm_list(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let fail = |e| s.v.fail(e);
    let q: VmQuery = forms::query(raw.as_deref());
    let subscriber: Option<SubscriberId> = match forms::opt(&q.subscriber) {
        None => None,
        Some(id) => Some(id.parse().map_err(|_| fail(Error::NotFound))?),
    };
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let rows = vms::list(&st.app, &s.ctx, subscriber, &page)
        .await
        .map_err(fail)?;
    let listing = Listing::from_rows(rows, LIST_PAGE, |v| v.id.to_string());
    let images = images::list(&st.app, &s.ctx).await.map_err(fail)?;
    // Host names; an operator whose role may not see hosts sees their ids.
    let host_names: Vec<(String, String)> = hosts::list(&st.app, &s.ctx)
        .await
        .map(|l| {
            l.into_iter()
                .map(|h| (h.host.id.to_string(), h.host.name))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<_> = listing
        .items
        .iter()
        .map(|v| {
            let view = VmView::new(s.v.lang, v, &images);
            let host = host_names
                .iter()
                .find(|(id, _)| *id == view.host_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| view.host_id.clone());
            context! { host => host, ..minijinja::Value::from_serialize(&view) }
        })
        .collect();
    let refresh = listing
        .items
        .iter()
        .any(|v| super::compute::TRANSITIONAL.contains(&v.state.as_str()))
        .then_some(REFRESH_SECS);
    let subscriber = subscriber.map(|s| s.to_string());
    let next_url = listing.next_cursor.map(|c| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &subscriber {
            q.append_pair("subscriber", s);
        }
        q.append_pair("cursor", &c);
        format!("/admin/vms?{}", q.finish())
    });
    let ctx = context! {
        section => "admin",
        vms => rows,
        subscriber => subscriber,
        refresh => refresh,
        next_url => next_url,
    };
    Ok(s.v.page(StatusCode::OK, "admin/vms.html", ctx))
}
