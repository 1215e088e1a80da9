-- Compute (R-1a): hypervisor hosts, images, subscribers' SSH keys, per-subscriber networks on a
-- host, virtual machines, operator-set quotas, and usage spans (VM-hours by size, disk
-- GiB-hours) for billing and reports (R-6.1b).

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- NULL: the agent runs inside `serve`; else the URL the control plane calls.
    url TEXT,
    -- the secret the control plane calls a remote agent with, sealed (XChaCha20-Poly1305).
    agent_secret TEXT,
    accel TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    warnings TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('up', 'down', 'disabled')),
    last_seen_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    -- 'disk' (qcow2/raw booted by firmware) or 'kernel' (kernel + initramfs booted directly).
    kind TEXT NOT NULL CHECK (kind IN ('disk', 'kernel')),
    format TEXT,
    path TEXT,
    kernel_path TEXT,
    initrd_path TEXT,
    cmdline TEXT,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    min_disk_gib BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ready', 'retired')),
    created_at BIGINT NOT NULL
);

CREATE TABLE ssh_keys (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (subscriber_id, name)
);

CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    host_id TEXT NOT NULL REFERENCES hosts (id),
    -- n-th /24 of the platform's pool.
    slot BIGINT NOT NULL UNIQUE,
    cidr TEXT NOT NULL,
    gateway TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (subscriber_id, host_id)
);

CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    host_id TEXT NOT NULL REFERENCES hosts (id),
    image_id TEXT NOT NULL REFERENCES images (id),
    network_id TEXT NOT NULL REFERENCES networks (id),
    size TEXT NOT NULL,
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    mac TEXT NOT NULL,
    -- host number inside the network's /24 (10..250).
    ip_host BIGINT NOT NULL,
    ip TEXT NOT NULL,
    ssh_keys TEXT NOT NULL,
    user_data TEXT,
    state TEXT NOT NULL,
    -- the state asked for: 'running', 'stopped' or 'deleted'.
    desired TEXT NOT NULL,
    -- stopped by a suspension (R-7.1c): restarted when it is lifted.
    held BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    -- the size the VM moves to while resizing.
    pending_size TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX vms_subscriber ON vms (subscriber_id, id);
CREATE INDEX vms_host ON vms (host_id, state);
CREATE UNIQUE INDEX vms_ip ON vms (network_id, ip_host) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX vms_name ON vms (subscriber_id, name) WHERE deleted_at IS NULL;

CREATE TABLE compute_quotas (
    subscriber_id TEXT PRIMARY KEY REFERENCES accounts (id),
    vcpus BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    vms BIGINT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);

CREATE TABLE vm_usage (
    id TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES accounts (id),
    vm_id TEXT NOT NULL REFERENCES vms (id),
    -- 'vm' (running, by size) or 'disk' (allocated GiB).
    kind TEXT NOT NULL CHECK (kind IN ('vm', 'disk')),
    size TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX vm_usage_subscriber ON vm_usage (subscriber_id, started_at);
CREATE INDEX vm_usage_open ON vm_usage (vm_id, kind, ended_at);

-- Counters of running VMs sampled by the heartbeat (cumulative since the VM's start), for
-- monitoring; kept seven days.
CREATE TABLE vm_samples (
    vm_id TEXT NOT NULL REFERENCES vms (id),
    at BIGINT NOT NULL,
    cpu_time_ns BIGINT NOT NULL,
    memory_used_bytes BIGINT NOT NULL,
    disk_read_bytes BIGINT NOT NULL,
    disk_write_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    PRIMARY KEY (vm_id, at)
);
CREATE INDEX vm_samples_at ON vm_samples (at);
