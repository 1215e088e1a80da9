//! Compute over HTTP (R-1a): VMs and their serial console, the image catalogue, SSH keys, sizes
//! and quota, and hypervisor hosts for operators. Each handler calls one use case of
//! `maocloud_app::compute`; a change to a VM answers 202 with the VM in its transitional state
//! (`creating`, `stopping`…) while the platform carries it out.

use super::{path_id, ts, PageQuery, PageView, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminAuth, Auth, BillingAuth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::compute::{self, hosts, images, keys, vms, Image, SshKey, Vm};
use maocloud_types::{Page, SubscriberId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vm_list, vm_create))
        .routes(routes!(vm_get, vm_delete))
        .routes(routes!(vm_start))
        .routes(routes!(vm_stop))
        .routes(routes!(vm_reboot))
        .routes(routes!(vm_resize))
        .routes(routes!(vm_console_read, vm_console_write))
        .routes(routes!(vm_counters))
        .routes(routes!(image_list, image_import))
        .routes(routes!(image_get, image_retire))
        .routes(routes!(key_list, key_add))
        .routes(routes!(key_get, key_delete))
        .routes(routes!(size_list))
        .routes(routes!(quota_get))
        .routes(routes!(
            subscriber_quota_get,
            subscriber_quota_put,
            subscriber_quota_delete
        ))
        .routes(routes!(host_list))
        .routes(routes!(host_join))
        .routes(routes!(host_enable))
        .routes(routes!(host_disable))
}

// ---- VMs ----

/// A virtual machine.
#[derive(Debug, Serialize, ToSchema)]
pub struct VmView {
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    /// `creating`, `starting`, `running`, `stopping`, `stopped`, `rebooting`, `resizing`,
    /// `deleting`, `deleted`, `crashed` or `error`.
    pub state: String,
    /// What the VM is being driven to: `running`, `stopped` or `deleted`.
    pub desired: String,
    /// Stopped by the platform: a suspension of the account (R-7.1c; starts again when it is
    /// lifted) or a contract that ended (R-7.3c; kept until erased).
    pub held_by_suspension: bool,
    pub error: Option<String>,
    pub image_id: String,
    pub size: String,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    /// The size a resize in progress moves to.
    pub pending_size: Option<String>,
    /// The VM's private address (reachable from its host; SSH on port 22).
    pub ip: String,
    pub mac: String,
    pub host_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

pub fn vm_view(v: Vm) -> VmView {
    VmView {
        id: v.id.to_string(),
        subscriber_id: v.subscriber_id.to_string(),
        name: v.name,
        state: v.state,
        desired: v.desired,
        held_by_suspension: v.held,
        error: v.error,
        image_id: v.image_id.to_string(),
        size: v.size,
        vcpus: v.vcpus,
        memory_mib: v.memory_mib,
        disk_gib: v.disk_gib,
        pending_size: v.pending_size,
        ip: v.ip,
        mac: v.mac,
        host_id: v.host_id.to_string(),
        created_at: ts(v.created_at),
        updated_at: ts(v.updated_at),
        deleted_at: v.deleted_at.map(ts),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VmListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Operators: one subscriber's VMs.
    pub subscriber_id: Option<String>,
}

/// VMs: a subscriber's own; operators: everyone's, or one subscriber's.
#[utoipa::path(get, path = "/api/v1/vms", tag = "compute", security(("bearer" = [])), params(VmListQuery),
    responses((status = 200, body = PageView<VmView>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn vm_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<VmListQuery>,
) -> ApiResult<axum::Json<PageView<VmView>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let who: Option<SubscriberId> = match &q.subscriber_id {
        Some(s) => Some(s.parse().map_err(|_| {
            maocloud_app::Error::invalid("subscriber_id", "is not a subscriber id")
        })?),
        None => None,
    };
    let limit = page.effective_limit();
    let rows = vms::list(&st.app, &ctx, who, &page).await?;
    Ok(axum::Json(PageView::from(
        Page::from_rows(rows, limit, |v| v.id.to_string()),
        vm_view,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmCreate {
    /// A host name: lowercase letters, digits and '-'.
    pub name: String,
    /// An image id or name (`GET /api/v1/images`).
    pub image: String,
    /// A size of the catalogue (`GET /api/v1/sizes`).
    pub size: String,
    /// Your SSH key ids or names, put into the guest (metadata service and cloud-init seed).
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// cloud-init user-data: a script (`#!`) or `#cloud-config`, at most 16 KiB.
    pub user_data: Option<String>,
}

/// Launch a VM. Answers 202: the VM is `creating`, then `running` once its host started it.
#[utoipa::path(post, path = "/api/v1/vms", tag = "compute", security(("bearer" = [])), request_body = VmCreate,
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn vm_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<VmCreate>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    let vm = vms::create(
        &st.app,
        &ctx,
        vms::CreateVm {
            name: r.name,
            image: r.image,
            size: r.size,
            ssh_keys: r.ssh_keys,
            user_data: r.user_data,
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(vm_view(vm))))
}

fn vm_path(id: &str) -> Result<String, crate::error::ApiError> {
    Ok(path_id::<uuid::Uuid>(id)?.to_string())
}

/// One VM.
#[utoipa::path(get, path = "/api/v1/vms/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 200, body = VmView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn vm_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<VmView>> {
    Ok(axum::Json(vm_view(
        vms::get(&st.app, &ctx, &vm_path(&id)?).await?,
    )))
}

/// Delete a VM and everything it has on its host. Answers 202 (`deleting`).
#[utoipa::path(delete, path = "/api/v1/vms/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn vm_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(vm_view(vms::delete(&st.app, &ctx, &vm_path(&id)?).await?)),
    ))
}

async fn act(
    st: &AppState,
    ctx: &maocloud_app::Ctx,
    id: &str,
    a: vms::Action,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(vm_view(vms::act(&st.app, ctx, &vm_path(id)?, a).await?)),
    ))
}

/// Start a stopped VM (refused while the account is suspended, R-7.1c).
#[utoipa::path(post, path = "/api/v1/vms/{id}/start", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn vm_start(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    act(&st, &ctx, &id, vms::Action::Start).await
}

/// Stop a VM: ACPI power-down, forced off after 30 s.
#[utoipa::path(post, path = "/api/v1/vms/{id}/stop", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn vm_stop(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    act(&st, &ctx, &id, vms::Action::Stop).await
}

/// Reboot a running VM.
#[utoipa::path(post, path = "/api/v1/vms/{id}/reboot", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn vm_reboot(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    act(&st, &ctx, &id, vms::Action::Reboot).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmResize {
    /// The new size; its disk must not be smaller.
    pub size: String,
}

/// Move a VM to another size (R-3.2: refused with the reason when its host lacks capacity).
#[utoipa::path(post, path = "/api/v1/vms/{id}/resize", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")), request_body = VmResize,
    responses((status = 202, body = VmView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn vm_resize(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<VmResize>,
) -> ApiResult<(StatusCode, axum::Json<VmView>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(vm_view(
            vms::resize(&st.app, &ctx, &vm_path(&id)?, &r.size).await?,
        )),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsoleQuery {
    /// Byte offset in the boot log to read from (the `next_offset` of the previous read).
    pub offset: Option<u64>,
    /// At most this many bytes (default 65536).
    pub max: Option<usize>,
}

/// A slice of the serial console's log (kept across reboots).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleView {
    pub offset: u64,
    pub next_offset: u64,
    /// The bytes, as UTF-8 (invalid sequences replaced).
    pub data: String,
}

/// Read the serial console from an offset; poll with `next_offset` to follow it.
#[utoipa::path(get, path = "/api/v1/vms/{id}/console", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id"), ConsoleQuery),
    responses((status = 200, body = ConsoleView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn vm_console_read(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(q): Query<ConsoleQuery>,
) -> ApiResult<axum::Json<ConsoleView>> {
    let offset = q.offset.unwrap_or(0);
    let (bytes, next) = vms::console_read(
        &st.app,
        &ctx,
        &vm_path(&id)?,
        offset,
        q.max.unwrap_or(65536),
    )
    .await?;
    Ok(axum::Json(ConsoleView {
        offset,
        next_offset: next,
        data: String::from_utf8_lossy(&bytes).into_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleInput {
    /// What to type (at most 4096 bytes).
    pub input: String,
}

/// Type into the serial console of a running VM.
#[utoipa::path(post, path = "/api/v1/vms/{id}/console", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")), request_body = ConsoleInput,
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn vm_console_write(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<ConsoleInput>,
) -> ApiResult<StatusCode> {
    if r.input.len() > 4096 {
        return Err(maocloud_app::Error::invalid("input", "must be at most 4096 bytes").into());
    }
    vms::console_write(&st.app, &ctx, &vm_path(&id)?, r.input.as_bytes()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cumulative counters of a VM since it started (for monitoring).
#[derive(Debug, Serialize, ToSchema)]
pub struct CountersView {
    pub cpu_time_ns: u64,
    pub memory_used_bytes: u64,
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

/// A running VM's CPU, memory, disk and network counters.
#[utoipa::path(get, path = "/api/v1/vms/{id}/counters", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "VM id")),
    responses((status = 200, body = CountersView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn vm_counters(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CountersView>> {
    let c = vms::counters(&st.app, &ctx, &vm_path(&id)?).await?;
    Ok(axum::Json(CountersView {
        cpu_time_ns: c.cpu_time_ns,
        memory_used_bytes: c.memory_used_bytes,
        disk_read_bytes: c.disk_read_bytes,
        disk_write_bytes: c.disk_write_bytes,
        net_rx_bytes: c.net_rx_bytes,
        net_tx_bytes: c.net_tx_bytes,
    }))
}

// ---- images ----

/// An image VMs boot from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `disk` (qcow2/raw) or `kernel` (kernel + initramfs booted directly).
    pub kind: String,
    pub format: Option<String>,
    pub size_bytes: i64,
    pub sha256: String,
    /// The smallest disk a VM made from it may have.
    pub min_disk_gib: i64,
    /// `ready` or `retired`.
    pub status: String,
    pub created_at: String,
}

pub fn image_view(i: Image) -> ImageView {
    ImageView {
        id: i.id.to_string(),
        name: i.name,
        description: i.description,
        kind: i.kind,
        format: i.format,
        size_bytes: i.size_bytes,
        sha256: i.sha256,
        min_disk_gib: i.min_disk_gib,
        status: i.status,
        created_at: ts(i.created_at),
    }
}

/// The image catalogue (operators also see retired images).
#[utoipa::path(get, path = "/api/v1/images", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<ImageView>), (status = 401, body = Problem)))]
async fn image_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<ImageView>>> {
    Ok(axum::Json(
        images::list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(image_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageImport {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// An absolute path on the control plane's host, or an http(s) URL.
    pub source: String,
    /// The image's SHA-256 (hex): the import is refused if it differs.
    pub sha256: String,
}

/// Import a qcow2 or raw image (admins). Refused when the checksum differs, or when the image
/// points at a backing file or an external data file.
#[utoipa::path(post, path = "/api/v1/images", tag = "compute", security(("bearer" = [])), request_body = ImageImport,
    responses((status = 201, body = ImageView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn image_import(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Json(r): Json<ImageImport>,
) -> ApiResult<(StatusCode, axum::Json<ImageView>)> {
    let req = images::ImportDisk {
        name: r.name,
        description: r.description,
        source: r.source,
        sha256: r.sha256,
    };
    let i = images::import_disk(&st.app, &ctx, req, &|_, _| {}).await?;
    Ok((StatusCode::CREATED, axum::Json(image_view(i))))
}

/// One image, by id or name.
#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Image id or name")),
    responses((status = 200, body = ImageView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn image_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ImageView>> {
    Ok(axum::Json(image_view(
        images::get(&st.app, &ctx, &id).await?,
    )))
}

/// Retire an image (admins): no new VM boots from it; existing VMs keep working.
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Image id or name")),
    responses((status = 200, body = ImageView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn image_retire(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ImageView>> {
    Ok(axum::Json(image_view(
        images::retire(&st.app, &ctx, &id).await?,
    )))
}

// ---- SSH keys ----

/// An SSH public key of yours.
#[derive(Debug, Serialize, ToSchema)]
pub struct SshKeyView {
    pub id: String,
    pub name: String,
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub created_at: String,
}

pub fn key_view(k: SshKey) -> SshKeyView {
    SshKeyView {
        id: k.id.to_string(),
        name: k.name,
        public_key: k.public_key,
        fingerprint: k.fingerprint,
        created_at: ts(k.created_at),
    }
}

/// Your SSH keys.
#[utoipa::path(get, path = "/api/v1/ssh-keys", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<SshKeyView>), (status = 401, body = Problem)))]
async fn key_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<SshKeyView>>> {
    Ok(axum::Json(
        keys::list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(key_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshKeyAdd {
    pub name: String,
    /// An OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
}

/// Register an SSH public key.
#[utoipa::path(post, path = "/api/v1/ssh-keys", tag = "compute", security(("bearer" = [])), request_body = SshKeyAdd,
    responses((status = 201, body = SshKeyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn key_add(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<SshKeyAdd>,
) -> ApiResult<(StatusCode, axum::Json<SshKeyView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(key_view(
            keys::add(&st.app, &ctx, &r.name, &r.public_key).await?,
        )),
    ))
}

/// One SSH key, by id or name.
#[utoipa::path(get, path = "/api/v1/ssh-keys/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Key id or name")),
    responses((status = 200, body = SshKeyView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn key_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SshKeyView>> {
    Ok(axum::Json(key_view(keys::get(&st.app, &ctx, &id).await?)))
}

/// Remove an SSH key (VMs made with it keep it).
#[utoipa::path(delete, path = "/api/v1/ssh-keys/{id}", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Key id or name")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn key_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    keys::delete(&st.app, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- sizes, quota ----

/// A VM size.
#[derive(Debug, Serialize, ToSchema)]
pub struct SizeView {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

/// The size catalogue.
#[utoipa::path(get, path = "/api/v1/sizes", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<SizeView>), (status = 401, body = Problem)))]
async fn size_list(Auth(_ctx): Auth) -> ApiResult<axum::Json<Vec<SizeView>>> {
    Ok(axum::Json(
        compute::SIZES
            .iter()
            .map(|s| SizeView {
                name: s.name.into(),
                vcpus: s.vcpus,
                memory_mib: s.memory_mib,
                disk_gib: s.disk_gib,
            })
            .collect(),
    ))
}

/// Compute quota and what is used of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
    pub used_vcpus: i64,
    pub used_memory_mib: i64,
    pub used_disk_gib: i64,
    pub used_vms: i64,
}

fn quota_view(q: compute::Quota, u: compute::Load) -> QuotaView {
    QuotaView {
        vcpus: q.vcpus,
        memory_mib: q.memory_mib,
        disk_gib: q.disk_gib,
        vms: q.vms,
        used_vcpus: u.vcpus,
        used_memory_mib: u.memory_mib,
        used_disk_gib: u.disk_gib,
        used_vms: u.vms,
    }
}

/// Your compute quota (from your offer's inclusions, or as an operator set it) and its use.
#[utoipa::path(get, path = "/api/v1/quota", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = QuotaView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn quota_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<QuotaView>> {
    let (q, u) = compute::quota(&st.app, &ctx).await?;
    Ok(axum::Json(quota_view(q, u)))
}

// ---- hosts (operators) ----

/// A hypervisor host and its load.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    pub id: String,
    pub name: String,
    /// `kvm`, `tcg` (software emulation) or `sim` (simulated).
    pub accel: String,
    /// `up`, `down` or `disabled` (out of placement).
    pub status: String,
    /// Whether this control plane holds a connection to its agent now.
    pub attached: bool,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub used_vcpus: i64,
    pub used_memory_mib: i64,
    pub used_disk_gib: i64,
    pub vms: i64,
    pub warnings: Vec<String>,
    pub last_seen_at: String,
}

fn host_view(h: hosts::HostView) -> HostView {
    HostView {
        id: h.host.id.to_string(),
        name: h.host.name,
        accel: h.host.accel,
        status: h.host.status,
        attached: h.attached,
        vcpus: h.host.vcpus,
        memory_mib: h.host.memory_mib,
        disk_gib: h.host.disk_gib,
        used_vcpus: h.load.vcpus,
        used_memory_mib: h.load.memory_mib,
        used_disk_gib: h.load.disk_gib,
        vms: h.load.vms,
        warnings: serde_json::from_str(&h.host.warnings).unwrap_or_default(),
        last_seen_at: ts(h.host.last_seen_at),
    }
}

/// Hypervisor hosts with their capacity, load and warnings (operators).
#[utoipa::path(get, path = "/api/v1/hosts", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<HostView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn host_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<HostView>>> {
    Ok(axum::Json(
        hosts::list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(host_view)
            .collect(),
    ))
}

/// Put a host back into placement (admins).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/enable", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Host id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn host_enable(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    hosts::set_enabled(&st.app, &ctx, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a host out of placement (admins); its VMs keep running.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/disable", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Host id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn host_disable(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    hosts::set_enabled(&st.app, &ctx, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostJoin {
    /// The platform's agent token (`serve --agent-token`, or `<data-dir>/agent.token`).
    pub token: String,
    /// Where the control plane reaches the agent's command API.
    pub url: String,
    /// The secret the control plane must present to the agent (32+ characters).
    pub secret: String,
}

/// A hypervisor agent joins the platform, and repeats it as its heartbeat
/// (`maocloud agent --join URL --token T`). Authenticated by the agent token in the body.
#[utoipa::path(post, path = "/api/v1/hosts/join", tag = "compute", request_body = HostJoin,
    responses((status = 200, body = HostView), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn host_join(
    State(st): State<AppState>,
    Json(r): Json<HostJoin>,
) -> ApiResult<axum::Json<HostView>> {
    let h = hosts::join(&st.app, &r.token, &r.url, &r.secret, |url, secret| {
        std::sync::Arc::new(crate::agent_link::RemoteAgent::new(url, secret))
    })
    .await?;
    let load = hosts::HostView {
        attached: true,
        load: Default::default(),
        host: h,
    };
    Ok(axum::Json(host_view(load)))
}

/// A subscriber's compute quota, for operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberQuotaView {
    #[serde(flatten)]
    pub quota: QuotaView,
    /// Set by an operator (else: the inclusions of the subscriber's offers).
    pub set_by_operator: bool,
}

/// A subscriber's compute quota and its use (billing and support operators).
#[utoipa::path(get, path = "/api/v1/subscribers/{id}/compute-quota", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 200, body = SubscriberQuotaView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn subscriber_quota_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SubscriberQuotaView>> {
    let (q, u, manual) = compute::quota_of_subscriber(&st.app, &ctx, path_id(&id)?).await?;
    Ok(axum::Json(SubscriberQuotaView {
        quota: quota_view(q, u),
        set_by_operator: manual,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSet {
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
}

/// Set a subscriber's compute quota by hand (billing operators): it replaces their offers'
/// inclusions until removed. VMs over a lowered quota keep running.
#[utoipa::path(put, path = "/api/v1/subscribers/{id}/compute-quota", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")), request_body = QuotaSet,
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn subscriber_quota_put(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
    Json(r): Json<QuotaSet>,
) -> ApiResult<StatusCode> {
    let q = quota_of_request(r);
    compute::quota_set(&st.app, &ctx, path_id(&id)?, Some(q)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn quota_of_request(r: QuotaSet) -> compute::Quota {
    compute::Quota {
        vcpus: r.vcpus,
        memory_mib: r.memory_mib,
        disk_gib: r.disk_gib,
        vms: r.vms,
    }
}

/// Remove a quota set by hand: the subscriber's offers' inclusions apply again.
#[utoipa::path(delete, path = "/api/v1/subscribers/{id}/compute-quota", tag = "compute", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn subscriber_quota_delete(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    compute::quota_set(&st.app, &ctx, path_id(&id)?, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
