//! Compute rows: hypervisor hosts, images, SSH keys, per-subscriber networks, virtual machines,
//! operator-set quotas and usage spans. Subscriber-owned rows (keys, VMs) are read through a
//! [`Scope`]; the rest belongs to the platform.

use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{
    HostId, ImageId, NetworkId, PageRequest, SshKeyId, SubscriberId, Timestamp, VmId,
};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Host {
    pub id: HostId,
    pub name: String,
    pub url: Option<String>,
    pub agent_secret: Option<String>,
    pub accel: String,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    /// JSON array of strings.
    pub warnings: String,
    pub status: String,
    pub last_seen_at: Timestamp,
    pub created_at: Timestamp,
}

/// What the VMs placed on a host take of it (every VM not deleted counts, running or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub id: ImageId,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub format: Option<String>,
    pub path: Option<String>,
    pub kernel_path: Option<String>,
    pub initrd_path: Option<String>,
    pub cmdline: Option<String>,
    pub size_bytes: i64,
    pub sha256: String,
    pub min_disk_gib: i64,
    pub status: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct SshKey {
    pub id: SshKeyId,
    pub subscriber_id: SubscriberId,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub id: NetworkId,
    pub subscriber_id: SubscriberId,
    pub host_id: HostId,
    pub slot: i64,
    pub cidr: String,
    pub gateway: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Vm {
    pub id: VmId,
    pub subscriber_id: SubscriberId,
    pub name: String,
    pub host_id: HostId,
    pub image_id: ImageId,
    pub network_id: NetworkId,
    pub size: String,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub mac: String,
    pub ip_host: i64,
    pub ip: String,
    /// JSON array of public keys, copied at creation.
    pub ssh_keys: String,
    pub user_data: Option<String>,
    pub state: String,
    pub desired: String,
    pub held: bool,
    pub error: Option<String>,
    pub pending_size: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub vcpus: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
}

/// Usage summed over a period: (kind, size, quantity × seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSum {
    pub kind: String,
    pub size: String,
    pub quantity: i64,
    pub seconds: i64,
}

const HOST_COLS: &str = "id, name, url, agent_secret, accel, vcpus, memory_mib, disk_gib, warnings, status, last_seen_at, created_at";
const IMAGE_COLS: &str = "id, name, description, kind, format, path, kernel_path, initrd_path, cmdline, size_bytes, sha256, min_disk_gib, status, created_at";
const KEY_COLS: &str = "id, subscriber_id, name, public_key, fingerprint, created_at";
const NET_COLS: &str = "id, subscriber_id, host_id, slot, cidr, gateway, created_at";
const VM_COLS: &str = "id, subscriber_id, name, host_id, image_id, network_id, size, vcpus, memory_mib, disk_gib, mac, ip_host, ip, ssh_keys, user_data, state, desired, held, error, pending_size, created_at, updated_at, deleted_at";

fn host(r: &AnyRow) -> Result<Host> {
    Ok(Host {
        id: col::id(r, "id")?,
        name: col::get(r, "name")?,
        url: col::get(r, "url")?,
        agent_secret: col::get(r, "agent_secret")?,
        accel: col::get(r, "accel")?,
        vcpus: col::get(r, "vcpus")?,
        memory_mib: col::get(r, "memory_mib")?,
        disk_gib: col::get(r, "disk_gib")?,
        warnings: col::get(r, "warnings")?,
        status: col::get(r, "status")?,
        last_seen_at: col::ts(r, "last_seen_at")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn image(r: &AnyRow) -> Result<Image> {
    Ok(Image {
        id: col::id(r, "id")?,
        name: col::get(r, "name")?,
        description: col::get(r, "description")?,
        kind: col::get(r, "kind")?,
        format: col::get(r, "format")?,
        path: col::get(r, "path")?,
        kernel_path: col::get(r, "kernel_path")?,
        initrd_path: col::get(r, "initrd_path")?,
        cmdline: col::get(r, "cmdline")?,
        size_bytes: col::get(r, "size_bytes")?,
        sha256: col::get(r, "sha256")?,
        min_disk_gib: col::get(r, "min_disk_gib")?,
        status: col::get(r, "status")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn ssh_key(r: &AnyRow) -> Result<SshKey> {
    Ok(SshKey {
        id: col::id(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        name: col::get(r, "name")?,
        public_key: col::get(r, "public_key")?,
        fingerprint: col::get(r, "fingerprint")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn network(r: &AnyRow) -> Result<Network> {
    Ok(Network {
        id: col::id(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        host_id: col::id(r, "host_id")?,
        slot: col::get(r, "slot")?,
        cidr: col::get(r, "cidr")?,
        gateway: col::get(r, "gateway")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn vm(r: &AnyRow) -> Result<Vm> {
    Ok(Vm {
        id: col::id(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        name: col::get(r, "name")?,
        host_id: col::id(r, "host_id")?,
        image_id: col::id(r, "image_id")?,
        network_id: col::id(r, "network_id")?,
        size: col::get(r, "size")?,
        vcpus: col::get(r, "vcpus")?,
        memory_mib: col::get(r, "memory_mib")?,
        disk_gib: col::get(r, "disk_gib")?,
        mac: col::get(r, "mac")?,
        ip_host: col::get(r, "ip_host")?,
        ip: col::get(r, "ip")?,
        ssh_keys: col::get(r, "ssh_keys")?,
        user_data: col::get(r, "user_data")?,
        state: col::get(r, "state")?,
        desired: col::get(r, "desired")?,
        held: col::flag(r, "held")?,
        error: col::get(r, "error")?,
        pending_size: col::get(r, "pending_size")?,
        created_at: col::ts(r, "created_at")?,
        updated_at: col::ts(r, "updated_at")?,
        deleted_at: col::opt_ts(r, "deleted_at")?,
    })
}

impl Tx {
    // ---- hosts ----

    /// Registers a host, or refreshes it (same name) with what its agent reports.
    pub async fn host_upsert(&mut self, h: &Host) -> Result<Host> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO hosts ({HOST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, agent_secret = COALESCE(excluded.agent_secret, hosts.agent_secret), \
             accel = excluded.accel, vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, \
             disk_gib = excluded.disk_gib, warnings = excluded.warnings, \
             status = CASE WHEN hosts.status = 'disabled' THEN 'disabled' ELSE 'up' END, \
             last_seen_at = excluded.last_seen_at"
        ))
        .bind(h.id.to_string())
        .bind(&h.name)
        .bind(&h.url)
        .bind(&h.agent_secret)
        .bind(&h.accel)
        .bind(h.vcpus)
        .bind(h.memory_mib)
        .bind(h.disk_gib)
        .bind(&h.warnings)
        .bind(&h.status)
        .bind(us(h.last_seen_at))
        .bind(us(h.created_at))
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {HOST_COLS} FROM hosts WHERE name = $1"))
            .bind(&h.name)
            .fetch_one(&mut *self.tx)
            .await?;
        host(&row)
    }

    pub async fn host_list(&mut self) -> Result<Vec<Host>> {
        let rows = sqlx::query(&format!("SELECT {HOST_COLS} FROM hosts ORDER BY name"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(host).collect()
    }

    pub async fn host_fetch(&mut self, id: HostId) -> Result<Host> {
        let row = sqlx::query(&format!("SELECT {HOST_COLS} FROM hosts WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(Error::NotFound)?;
        host(&row)
    }

    pub async fn host_set_status(&mut self, id: HostId, status: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE hosts SET status = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(status)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Keeps the (sealed) secret the control plane calls a remote agent with.
    pub async fn host_set_secret(&mut self, id: HostId, sealed: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE hosts SET agent_secret = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(sealed)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Every host's load: what its VMs not deleted reserve (a resize reserves the larger size).
    pub async fn host_loads(&mut self) -> Result<Vec<(HostId, Load)>> {
        let rows = sqlx::query(
            "SELECT host_id, CAST(SUM(vcpus) AS BIGINT) AS vcpus, CAST(SUM(memory_mib) AS BIGINT) AS memory_mib, \
             CAST(SUM(disk_gib) AS BIGINT) AS disk_gib, CAST(COUNT(*) AS BIGINT) AS n FROM vms WHERE deleted_at IS NULL GROUP BY host_id",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    col::id(r, "host_id")?,
                    Load {
                        vcpus: col::get(r, "vcpus")?,
                        memory_mib: col::get(r, "memory_mib")?,
                        disk_gib: col::get(r, "disk_gib")?,
                        vms: col::get(r, "n")?,
                    },
                ))
            })
            .collect()
    }

    // ---- images ----

    pub async fn image_insert(&mut self, i: &Image) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO images ({IMAGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(i.id.to_string())
        .bind(&i.name)
        .bind(&i.description)
        .bind(&i.kind)
        .bind(&i.format)
        .bind(&i.path)
        .bind(&i.kernel_path)
        .bind(&i.initrd_path)
        .bind(&i.cmdline)
        .bind(i.size_bytes)
        .bind(&i.sha256)
        .bind(i.min_disk_gib)
        .bind(&i.status)
        .bind(us(i.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn image_list(&mut self, include_retired: bool) -> Result<Vec<Image>> {
        let rows = sqlx::query(&format!(
            "SELECT {IMAGE_COLS} FROM images WHERE ($1 = 1 OR status = 'ready') ORDER BY name"
        ))
        .bind(include_retired as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(image).collect()
    }

    /// An image by id or by name.
    pub async fn image_fetch(&mut self, id_or_name: &str) -> Result<Image> {
        let row = sqlx::query(&format!(
            "SELECT {IMAGE_COLS} FROM images WHERE id = $1 OR name = $1"
        ))
        .bind(id_or_name)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        image(&row)
    }

    /// The image one of whose files is at `path` (its disk, kernel or initramfs).
    pub async fn image_by_path(&mut self, path: &str) -> Result<Image> {
        let row = sqlx::query(&format!(
            "SELECT {IMAGE_COLS} FROM images WHERE path = $1 OR kernel_path = $1 OR initrd_path = $1"
        ))
        .bind(path)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        image(&row)
    }

    pub async fn image_set_status(&mut self, id: ImageId, status: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE images SET status = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(status)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    // ---- SSH keys ----

    pub async fn ssh_key_insert(&mut self, k: &SshKey) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO ssh_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(k.id.to_string())
        .bind(k.subscriber_id.to_string())
        .bind(&k.name)
        .bind(&k.public_key)
        .bind(&k.fingerprint)
        .bind(us(k.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn ssh_key_list(&mut self, scope: &Scope) -> Result<Vec<SshKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM ssh_keys WHERE ($1 IS NULL OR subscriber_id = $1) ORDER BY id LIMIT 500"
        ))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(ssh_key).collect()
    }

    pub async fn ssh_key_fetch(&mut self, scope: &Scope, id: &str) -> Result<SshKey> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM ssh_keys WHERE (id = $1 OR name = $1) AND ($2 IS NULL OR subscriber_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        ssh_key(&row)
    }

    pub async fn ssh_key_delete(&mut self, id: SshKeyId) -> Result<()> {
        self.check_writable()?;
        sqlx::query("DELETE FROM ssh_keys WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    // ---- networks ----

    pub async fn network_of(
        &mut self,
        subscriber: SubscriberId,
        host: HostId,
    ) -> Result<Option<Network>> {
        let row = sqlx::query(&format!(
            "SELECT {NET_COLS} FROM networks WHERE subscriber_id = $1 AND host_id = $2"
        ))
        .bind(subscriber.to_string())
        .bind(host.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(network).transpose()
    }

    pub async fn network_fetch(&mut self, id: NetworkId) -> Result<Network> {
        let row = sqlx::query(&format!("SELECT {NET_COLS} FROM networks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(Error::NotFound)?;
        network(&row)
    }

    pub async fn network_slots(&mut self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT slot FROM networks ORDER BY slot")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| col::get(r, "slot")).collect()
    }

    pub async fn network_insert(&mut self, n: &Network) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO networks ({NET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(n.id.to_string())
        .bind(n.subscriber_id.to_string())
        .bind(n.host_id.to_string())
        .bind(n.slot)
        .bind(&n.cidr)
        .bind(&n.gateway)
        .bind(us(n.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    // ---- VMs ----

    pub async fn vm_insert(&mut self, v: &Vm) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO vms ({VM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        ))
        .bind(v.id.to_string())
        .bind(v.subscriber_id.to_string())
        .bind(&v.name)
        .bind(v.host_id.to_string())
        .bind(v.image_id.to_string())
        .bind(v.network_id.to_string())
        .bind(&v.size)
        .bind(v.vcpus)
        .bind(v.memory_mib)
        .bind(v.disk_gib)
        .bind(&v.mac)
        .bind(v.ip_host)
        .bind(&v.ip)
        .bind(&v.ssh_keys)
        .bind(&v.user_data)
        .bind(&v.state)
        .bind(&v.desired)
        .bind(v.held as i64)
        .bind(&v.error)
        .bind(&v.pending_size)
        .bind(us(v.created_at))
        .bind(us(v.updated_at))
        .bind(v.deleted_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A VM in view (deleted ones too), by id.
    pub async fn vm_fetch(&mut self, scope: &Scope, id: &str) -> Result<Vm> {
        let row = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        vm(&row)
    }

    /// VMs in view that are not deleted, newest first, optionally one subscriber's or one host's.
    pub async fn vm_list(
        &mut self,
        scope: &Scope,
        subscriber: Option<SubscriberId>,
        host: Option<HostId>,
        page: &PageRequest,
    ) -> Result<Vec<Vm>> {
        let rows = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE deleted_at IS NULL AND ($1 IS NULL OR subscriber_id = $1) \
             AND ($2 IS NULL OR subscriber_id = $2) AND ($3 IS NULL OR host_id = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        ))
        .bind(scope.owner())
        .bind(subscriber.map(|s| s.to_string()))
        .bind(host.map(|h| h.to_string()))
        .bind(page.after.clone())
        .bind(page.effective_limit() as i64 + 1)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(vm).collect()
    }

    /// Every VM of a subscriber that is not deleted (for quotas and suspension).
    pub async fn vms_of(&mut self, subscriber: SubscriberId) -> Result<Vec<Vm>> {
        let rows = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE subscriber_id = $1 AND deleted_at IS NULL ORDER BY id"
        ))
        .bind(subscriber.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(vm).collect()
    }

    /// Every VM placed on a host that is not deleted (reconciliation, sampling).
    pub async fn vms_on_host(&mut self, host: HostId) -> Result<Vec<Vm>> {
        let rows = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE host_id = $1 AND deleted_at IS NULL ORDER BY id"
        ))
        .bind(host.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(vm).collect()
    }

    /// Every VM on a network that is not deleted (its DHCP leases).
    pub async fn vms_on_network(&mut self, network: NetworkId) -> Result<Vec<Vm>> {
        let rows = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE network_id = $1 AND deleted_at IS NULL ORDER BY ip_host"
        ))
        .bind(network.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(vm).collect()
    }

    /// The VM (not deleted) holding address `ip`, for the metadata service.
    pub async fn vm_by_ip(&mut self, ip: &str) -> Result<Option<Vm>> {
        let row = sqlx::query(&format!(
            "SELECT {VM_COLS} FROM vms WHERE ip = $1 AND deleted_at IS NULL"
        ))
        .bind(ip)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(vm).transpose()
    }

    /// Moves a VM to `state` (and `desired`, `error`, `held`, sizes) in one write: the caller
    /// passes the whole row back.
    pub async fn vm_update(&mut self, v: &Vm) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE vms SET state = $2, desired = $3, held = $4, error = $5, pending_size = $6, \
             size = $7, vcpus = $8, memory_mib = $9, disk_gib = $10, updated_at = $11, deleted_at = $12 \
             WHERE id = $1",
        )
        .bind(v.id.to_string())
        .bind(&v.state)
        .bind(&v.desired)
        .bind(v.held as i64)
        .bind(&v.error)
        .bind(&v.pending_size)
        .bind(&v.size)
        .bind(v.vcpus)
        .bind(v.memory_mib)
        .bind(v.disk_gib)
        .bind(us(v.updated_at))
        .bind(v.deleted_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    // ---- quotas ----

    pub async fn quota_get(&mut self, subscriber: SubscriberId) -> Result<Option<Quota>> {
        let row = sqlx::query(
            "SELECT vcpus, memory_mib, disk_gib, vms FROM compute_quotas WHERE subscriber_id = $1",
        )
        .bind(subscriber.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(Quota {
                vcpus: col::get(&r, "vcpus")?,
                memory_mib: col::get(&r, "memory_mib")?,
                disk_gib: col::get(&r, "disk_gib")?,
                vms: col::get(&r, "vms")?,
            })
        })
        .transpose()
    }

    pub async fn quota_set(
        &mut self,
        subscriber: SubscriberId,
        q: Quota,
        by: &str,
        at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO compute_quotas (subscriber_id, vcpus, memory_mib, disk_gib, vms, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subscriber_id) DO UPDATE SET \
             vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, disk_gib = excluded.disk_gib, \
             vms = excluded.vms, set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(subscriber.to_string())
        .bind(q.vcpus)
        .bind(q.memory_mib)
        .bind(q.disk_gib)
        .bind(q.vms)
        .bind(by)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Removes an operator-set quota: the offer's inclusions apply again.
    pub async fn quota_clear(&mut self, subscriber: SubscriberId) -> Result<()> {
        self.check_writable()?;
        sqlx::query("DELETE FROM compute_quotas WHERE subscriber_id = $1")
            .bind(subscriber.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    // ---- counter samples (monitoring) ----

    /// Records a VM's counters at `at` (cumulative since its start): cpu time (ns), memory
    /// used, disk read and written, network received and sent (bytes).
    pub async fn sample_insert(&mut self, vm: VmId, at: Timestamp, c: [i64; 6]) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO vm_samples (vm_id, at, cpu_time_ns, memory_used_bytes, disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (vm_id, at) DO NOTHING",
        )
        .bind(vm.to_string())
        .bind(us(at))
        .bind(c[0])
        .bind(c[1])
        .bind(c[2])
        .bind(c[3])
        .bind(c[4])
        .bind(c[5])
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A VM's samples since `since`, oldest first: `(at, counters)`.
    pub async fn sample_list(
        &mut self,
        vm: VmId,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, [i64; 6])>> {
        let rows = sqlx::query(
            "SELECT at, cpu_time_ns, memory_used_bytes, disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes \
             FROM vm_samples WHERE vm_id = $1 AND at >= $2 ORDER BY at LIMIT 10000",
        )
        .bind(vm.to_string())
        .bind(us(since))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    col::ts(r, "at")?,
                    [
                        col::get(r, "cpu_time_ns")?,
                        col::get(r, "memory_used_bytes")?,
                        col::get(r, "disk_read_bytes")?,
                        col::get(r, "disk_write_bytes")?,
                        col::get(r, "net_rx_bytes")?,
                        col::get(r, "net_tx_bytes")?,
                    ],
                ))
            })
            .collect()
    }

    /// Forgets samples older than `before`.
    pub async fn sample_prune(&mut self, before: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("DELETE FROM vm_samples WHERE at < $1")
            .bind(us(before))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    // ---- usage spans (R-6.1b) ----

    /// Opens a usage span unless one of the same kind is open for the VM (idempotent).
    pub async fn usage_open(
        &mut self,
        v: &Vm,
        kind: &str,
        size: &str,
        quantity: i64,
        at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO vm_usage (id, subscriber_id, vm_id, kind, size, quantity, started_at, ended_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, NULL WHERE NOT EXISTS \
             (SELECT 1 FROM vm_usage WHERE vm_id = $3 AND kind = $4 AND ended_at IS NULL)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(v.subscriber_id.to_string())
        .bind(v.id.to_string())
        .bind(kind)
        .bind(size)
        .bind(quantity)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Closes the open span of that kind, if any (idempotent).
    pub async fn usage_close(&mut self, vm: VmId, kind: &str, at: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE vm_usage SET ended_at = $3 WHERE vm_id = $1 AND kind = $2 AND ended_at IS NULL",
        )
        .bind(vm.to_string())
        .bind(kind)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A subscriber's usage spans overlapping `[from, to)`, clipped to it and summed by kind and
    /// size (open spans count up to `to`).
    pub async fn usage_sum(
        &mut self,
        subscriber: SubscriberId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageSum>> {
        let rows = sqlx::query(
            "SELECT kind, size, quantity, started_at, ended_at FROM vm_usage WHERE subscriber_id = $1 \
             AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)",
        )
        .bind(subscriber.to_string())
        .bind(us(from))
        .bind(us(to))
        .fetch_all(&mut *self.tx)
        .await?;
        let mut out: Vec<UsageSum> = Vec::new();
        for r in &rows {
            let kind: String = col::get(r, "kind")?;
            let size: String = col::get(r, "size")?;
            let quantity: i64 = col::get(r, "quantity")?;
            let start: i64 = col::get(r, "started_at")?;
            let end: Option<i64> = col::get(r, "ended_at")?;
            let secs = (end.unwrap_or(us(to)).min(us(to)) - start.max(us(from))).max(0) / 1_000_000;
            match out
                .iter_mut()
                .find(|u| u.kind == kind && u.size == size && u.quantity == quantity)
            {
                Some(u) => u.seconds += secs,
                None => out.push(UsageSum {
                    kind,
                    size,
                    quantity,
                    seconds: secs,
                }),
            }
        }
        Ok(out)
    }
}
