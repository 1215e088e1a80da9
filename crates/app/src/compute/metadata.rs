//! The metadata service's data: what a guest may read about itself, found by the address its
//! request comes from (guests reach 169.254.169.254, which the host redirects here). A guest
//! reads only its own VM; an unknown address reads nothing.

use crate::{App, Result};

/// A VM's metadata, as the EC2- and OpenStack-style paths serve it.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub instance_id: String,
    pub name: String,
    pub hostname: String,
    pub local_ipv4: String,
    pub size: String,
    /// (name, public key); keys are named `key-<n>` in the order given at creation.
    pub public_keys: Vec<(String, String)>,
    pub user_data: Option<String>,
}

/// The metadata of the VM at `ip`, if a VM (not deleted) holds that address.
/// — on `host`, when the request comes through that host's agent.
pub async fn for_ip(
    app: &App,
    ip: &str,
    host: Option<maocloud_types::HostId>,
) -> Result<Option<Metadata>> {
    let mut tx = app.db().read().await?;
    let Some(vm) = tx.vm_by_ip(ip).await? else {
        return Ok(None);
    };
    if host.is_some_and(|h| h != vm.host_id) {
        return Ok(None);
    }
    let keys: Vec<String> = serde_json::from_str(&vm.ssh_keys).unwrap_or_default();
    Ok(Some(Metadata {
        instance_id: vm.id.to_string(),
        hostname: vm.name.clone(),
        name: vm.name,
        local_ipv4: vm.ip,
        size: vm.size,
        public_keys: keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (format!("key-{i}"), k))
            .collect(),
        user_data: vm.user_data,
    }))
}
