//! Compute (R-1a): the control plane's side of virtual machines — the hosts it knows and the
//! agents it talks to, sizes, quotas, placement (R-3.2 capacity), and the use cases for VMs,
//! images and SSH keys in the submodules. Agents carry out; this module decides and records.

pub mod hosts;
pub mod images;
pub mod keys;
pub mod metadata;
pub mod vms;

use crate::{Error, Result};

use maocloud_datastore::Tx;
use maocloud_hypervisor::{Agent, Resources};
use maocloud_types::{HostId, SubscriberId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use maocloud_datastore::compute::{Host, Image, Load, Quota, SshKey, Vm};

/// A VM size of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Size {
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

/// The sizes a subscriber chooses from. `xs` fits the test guest.
pub const SIZES: &[Size] = &[
    Size {
        name: "xs",
        vcpus: 1,
        memory_mib: 256,
        disk_gib: 1,
    },
    Size {
        name: "s",
        vcpus: 1,
        memory_mib: 1024,
        disk_gib: 10,
    },
    Size {
        name: "m",
        vcpus: 2,
        memory_mib: 2048,
        disk_gib: 20,
    },
    Size {
        name: "l",
        vcpus: 4,
        memory_mib: 4096,
        disk_gib: 40,
    },
    Size {
        name: "xl",
        vcpus: 8,
        memory_mib: 8192,
        disk_gib: 80,
    },
];

pub fn size(name: &str) -> Result<Size> {
    SIZES
        .iter()
        .copied()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            Error::invalid(
                "size",
                format!(
                    "is not a size of the catalogue ({})",
                    SIZES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

impl Size {
    pub fn resources(&self) -> Resources {
        Resources {
            vcpus: self.vcpus,
            memory_mib: self.memory_mib,
            disk_gib: self.disk_gib,
        }
    }
}

/// The agents of the hosts this control plane talks to, by host, and where guests' metadata
/// requests go. Filled at start (the in-process agent) and as remote agents join.
#[derive(Default)]
pub struct Agents {
    map: RwLock<HashMap<HostId, Arc<dyn Agent>>>,
    /// `ip:port` of the metadata listener as guests reach it is `<gateway>:<port>`.
    metadata_port: std::sync::atomic::AtomicU16,
}

impl Agents {
    pub fn attach(&self, host: HostId, agent: Arc<dyn Agent>) {
        self.map.write().expect("agents lock").insert(host, agent);
    }
    pub fn get(&self, host: HostId) -> Option<Arc<dyn Agent>> {
        self.map.read().expect("agents lock").get(&host).cloned()
    }
    pub fn hosts(&self) -> Vec<HostId> {
        self.map
            .read()
            .expect("agents lock")
            .keys()
            .copied()
            .collect()
    }
    pub fn set_metadata_port(&self, port: u16) {
        self.metadata_port
            .store(port, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn metadata_port(&self) -> u16 {
        self.metadata_port
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A subscriber's compute quota: what an operator set, else the sum of the inclusions of their
/// active subscriptions (R-3.6: inclusions become quotas).
pub(crate) async fn quota_of(tx: &mut Tx, subscriber: SubscriberId) -> Result<Quota> {
    if let Some(q) = tx.quota_get(subscriber).await? {
        return Ok(q);
    }
    let i = crate::billing::included(
        &tx.subscription_list(&maocloud_datastore::Scope::All, subscriber)
            .await?,
    )?;
    Ok(Quota {
        vcpus: i.vcpus,
        memory_mib: i.ram_mib,
        disk_gib: i.disk_gib,
        vms: i.vms,
    })
}

/// What a subscriber's VMs not deleted take (sizes being resized count at the larger size).
pub(crate) fn used(vms: &[Vm]) -> Load {
    let mut l = Load::default();
    for v in vms {
        let (c, m, d) = reserved(v);
        l.vcpus += c;
        l.memory_mib += m;
        l.disk_gib += d;
        l.vms += 1;
    }
    l
}

/// What a VM reserves: its size, or its pending size while resizing.
pub(crate) fn reserved(v: &Vm) -> (i64, i64, i64) {
    match v.pending_size.as_deref().and_then(|s| size(s).ok()) {
        Some(p) => (p.vcpus as i64, p.memory_mib as i64, p.disk_gib as i64),
        None => (v.vcpus, v.memory_mib, v.disk_gib),
    }
}

/// Whether the hosts that take new VMs have, together, `more` (vCPUs, MiB, GiB) free: the
/// capacity an offer change needs before it happens.
pub(crate) async fn platform_has_room(
    app: &crate::App,
    tx: &mut Tx,
    more: (i64, i64, i64),
) -> Result<bool> {
    let hosts = tx.host_list().await?;
    if hosts.is_empty() {
        // This platform runs no compute (`--compute off` and no agent ever joined): there is
        // nothing to place, so nothing to refuse.
        return Ok(true);
    }
    let loads = tx.host_loads().await?;
    let mut free = (0i64, 0i64, 0i64);
    for h in hosts
        .into_iter()
        .filter(|h| h.status == "up" && app.agents().get(h.id).is_some())
    {
        let l = loads
            .iter()
            .find(|(id, _)| *id == h.id)
            .map(|(_, l)| *l)
            .unwrap_or_default();
        free.0 += (h.vcpus - l.vcpus).max(0);
        free.1 += (h.memory_mib - l.memory_mib).max(0);
        free.2 += (h.disk_gib - l.disk_gib).max(0);
    }
    Ok(free.0 >= more.0 && free.1 >= more.1 && free.2 >= more.2)
}

/// Refuses what would take a subscriber past their quota, naming the first resource short.
pub(crate) fn check_quota(q: &Quota, used: &Load, add: (i64, i64, i64, i64)) -> Result<()> {
    let checks = [
        ("vms", "VMs", used.vms + add.3, q.vms),
        ("vcpus", "vCPUs", used.vcpus + add.0, q.vcpus),
        (
            "memory_mib",
            "MiB of memory",
            used.memory_mib + add.1,
            q.memory_mib,
        ),
        ("disk_gib", "GiB of disk", used.disk_gib + add.2, q.disk_gib),
    ];
    for (field, what, want, allowed) in checks {
        if want > allowed {
            return Err(Error::Conflict {
                field: Some("size".into()),
                reason: format!(
                    "over your quota: this needs {want} {what} in all and your quota is {allowed} ({field}); \
                     delete a VM, choose a smaller size or move to a larger offer"
                ),
            });
        }
    }
    Ok(())
}

/// Placement: the up host with the most free memory that takes `need` whole, among
/// hosts with an agent attached. `None` when nothing fits.
pub(crate) fn place(
    hosts: &[Host],
    loads: &[(HostId, Load)],
    need: (i64, i64, i64),
) -> Option<HostId> {
    hosts
        .iter()
        .filter(|h| h.status == "up")
        .filter_map(|h| {
            let l = loads
                .iter()
                .find(|(id, _)| *id == h.id)
                .map(|(_, l)| *l)
                .unwrap_or_default();
            let free = (
                h.vcpus - l.vcpus,
                h.memory_mib - l.memory_mib,
                h.disk_gib - l.disk_gib,
            );
            (free.0 >= need.0 && free.1 >= need.1 && free.2 >= need.2).then_some((h.id, free.1))
        })
        .max_by_key(|(_, mem)| *mem)
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maocloud_types::Timestamp;

    fn host(name: &str, vcpus: i64, mem: i64, status: &str) -> Host {
        Host {
            id: HostId::new(),
            name: name.into(),
            url: None,
            agent_secret: None,
            accel: "sim".into(),
            vcpus,
            memory_mib: mem,
            disk_gib: 100,
            warnings: "[]".into(),
            status: status.into(),
            last_seen_at: Timestamp::UNIX_EPOCH,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    // placement takes capacity into account and says when nothing fits.
    #[test]
    fn placement_prefers_free_memory_and_refuses_when_full() {
        let a = host("a", 4, 4096, "up");
        let b = host("b", 4, 8192, "up");
        let c = host("c", 64, 65536, "disabled");
        let loads = vec![(
            b.id,
            Load {
                vcpus: 4,
                memory_mib: 1024,
                disk_gib: 10,
                vms: 1,
            },
        )];
        let hosts = vec![a.clone(), b.clone(), c];
        // b has more free memory but no free vCPU.
        assert_eq!(place(&hosts, &loads, (1, 1024, 10)), Some(a.id));
        assert_eq!(place(&hosts, &loads, (0, 5000, 1)), Some(b.id));
        assert_eq!(place(&hosts, &loads, (5, 1024, 1)), None);
    }

    #[test]
    fn quota_names_what_is_short() {
        let q = Quota {
            vcpus: 2,
            memory_mib: 2048,
            disk_gib: 20,
            vms: 2,
        };
        let used = Load {
            vcpus: 1,
            memory_mib: 1024,
            disk_gib: 10,
            vms: 1,
        };
        assert!(check_quota(&q, &used, (1, 1024, 10, 1)).is_ok());
        let e = check_quota(&q, &used, (2, 1024, 10, 1)).unwrap_err();
        assert!(e.to_string().contains("vCPUs"), "{e}");
    }
}

/// The caller's quota and what their VMs use of it (subscribers).
pub async fn quota(app: &crate::App, ctx: &crate::Ctx) -> Result<(Quota, Load)> {
    let owner = ctx.require_subscriber()?;
    let mut tx = app.db().read().await?;
    let q = quota_of(&mut tx, owner).await?;
    let u = used(&tx.vms_of(owner).await?);
    Ok((q, u))
}

/// A subscriber's quota and use, for operators; `set_by_operator` when a quota was set by hand.
pub async fn quota_of_subscriber(
    app: &crate::App,
    ctx: &crate::Ctx,
    subscriber: SubscriberId,
) -> Result<(Quota, Load, bool)> {
    ctx.require_operator(&[
        maocloud_types::OperatorRole::Billing,
        maocloud_types::OperatorRole::Support,
    ])?;
    let mut tx = app.db().read().await?;
    subscriber_exists(&mut tx, subscriber).await?;
    let manual = tx.quota_get(subscriber).await?.is_some();
    let q = quota_of(&mut tx, subscriber).await?;
    let u = used(&tx.vms_of(subscriber).await?);
    Ok((q, u, manual))
}

async fn subscriber_exists(tx: &mut Tx, subscriber: SubscriberId) -> Result<()> {
    match tx.account_fetch(subscriber.0).await {
        Ok(a) if a.kind == maocloud_datastore::model::AccountKind::Subscriber => Ok(()),
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => Err(Error::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Sets a subscriber's compute quota by hand (billing operators), or with `None` gives them
/// back their offers' inclusions. VMs already over a lowered quota keep running; new ones wait.
pub async fn quota_set(
    app: &crate::App,
    ctx: &crate::Ctx,
    subscriber: SubscriberId,
    q: Option<Quota>,
) -> Result<()> {
    ctx.require_operator(&[maocloud_types::OperatorRole::Billing])?;
    if let Some(q) = &q {
        for (field, v, max) in [
            ("vcpus", q.vcpus, 4096),
            ("memory_mib", q.memory_mib, 16 << 20),
            ("disk_gib", q.disk_gib, 1 << 20),
            ("vms", q.vms, 10_000),
        ] {
            if !(0..=max).contains(&v) {
                return Err(Error::invalid(
                    field,
                    format!("must be between 0 and {max}"),
                ));
            }
        }
    }
    let now = app.now();
    let mut tx = app.db().write().await?;
    subscriber_exists(&mut tx, subscriber).await?;
    match q {
        Some(q) => {
            tx.quota_set(subscriber, q, &ctx.principal.label(), now)
                .await?
        }
        None => tx.quota_clear(subscriber).await?,
    }
    crate::audit::record(
        &mut tx,
        ctx,
        now,
        "compute.quota",
        Some(&subscriber.to_string()),
        Some(subscriber),
        serde_json::json!({"quota": q.map(|q| [q.vcpus, q.memory_mib, q.disk_gib, q.vms])}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
