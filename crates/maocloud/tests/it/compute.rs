//! Compute through the API on simulated hosts (the same agent API as QEMU, without guests):
//! the VM lifecycle and its usage spans, quotas from the offer, placement and capacity,
//! bad input that changes nothing, another subscriber's VMs, suspension stopping VMs without
//! destroying them (R-7.1c), the metadata service's view, and orphan clean-up. Real guests are
//! in `compute_qemu`.

use crate::billing::{offer, subscribe};
use crate::harness::*;
use maocloud_app::compute::{hosts, images};
use maocloud_app::Ctx;
use maocloud_hypervisor::sim::{SimAgent, SimConfig};
use maocloud_hypervisor::{Agent, Resources};
use maocloud_types::OperatorRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

/// A server with one simulated host of `capacity`, a kernel image `tiny`, and a subscriber on
/// an offer including 2 vCPU, 4096 MiB, 50 GiB and 2 VMs.
pub async fn setup(db: Db, capacity: Resources) -> (TestServer, Subscriber, Arc<SimAgent>) {
    let s = TestServer::start_on(db).await;
    let sim = Arc::new(SimAgent::new(SimConfig {
        hostname: "sim-1".into(),
        capacity,
    }));
    hosts::attach(&s.app, sim.clone(), None)
        .await
        .expect("attach host");
    kernel_image(&s, "tiny").await;
    let billing = s.operator("billing@op.test", OperatorRole::Billing).await;
    let o = offer(&s, &billing.token, "cloud-s", "Cloud S", 1999, 0).await;
    let alice = s.subscriber("alice@example.test").await;
    subscribe(&s, &alice.token, &o).await;
    (s, alice, sim)
}

/// Registers a kernel image named `name` (two small files: simulated hosts boot nothing).
pub async fn kernel_image(s: &TestServer, name: &str) -> maocloud_app::compute::Image {
    let dir = s.data.path().join(format!("image-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("k"), b"kernel").unwrap();
    std::fs::write(dir.join("i"), b"initrd").unwrap();
    images::register_kernel(
        &s.app,
        &Ctx::system(),
        images::RegisterKernel {
            name: name.into(),
            description: format!("{name}: a kernel image for tests"),
            kernel: dir.join("k"),
            initrd: dir.join("i"),
            cmdline: "console=ttyS0".into(),
        },
    )
    .await
    .expect("image")
}

/// The id of the (first) subscription of the subscriber behind `token`.
async fn subscription_of(s: &TestServer, token: &str) -> String {
    let (_, subs) = s.get("/api/v1/subscriptions", Some(token)).await;
    subs[0]["id"].as_str().expect("a subscription").to_string()
}

pub async fn create(s: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    s.post("/api/v1/vms", Some(token), body).await
}

pub async fn vm(s: &TestServer, token: &str, id: &str) -> Value {
    let (st, v) = s.get(&format!("/api/v1/vms/{id}"), Some(token)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn action(s: &TestServer, token: &str, id: &str, what: &str) -> (StatusCode, Value) {
    s.post(&format!("/api/v1/vms/{id}/{what}"), Some(token), json!({}))
        .await
}

fn field(v: &Value) -> Option<&str> {
    v["field"].as_str()
}

async fn vm_count(s: &TestServer, token: &str) -> usize {
    let (st, v) = s.get("/api/v1/vms", Some(token)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().len()
}

const BIG: Resources = Resources {
    vcpus: 32,
    memory_mib: 65536,
    disk_gib: 1000,
};

crate::both_dbs!(
    vm_lifecycle_on_a_simulated_host,
    |_s: TestServer| async move {
        let (s, alice, sim) = setup(_s.db, BIG).await;
        let (st, key) = s
            .post(
                "/api/v1/ssh-keys",
                Some(&alice.token),
                json!({"name": "laptop", "public_key": KEY}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{key}");
        assert!(key["fingerprint"].as_str().unwrap().starts_with("SHA256:"));

        let (st, v) = create(&s, &alice.token, json!({"name": "web-1", "image": "tiny", "size": "xs", "ssh_keys": ["laptop"], "user_data": "#!/bin/sh\necho hello\n"})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["state"], "creating");
        let id = v["id"].as_str().unwrap().to_string();
        assert!(v["ip"].as_str().unwrap().starts_with("10.213."), "{v}");
        s.run_jobs().await;
        let v = vm(&s, &alice.token, &id).await;
        assert_eq!(v["state"], "running", "{v}");
        let on_host = sim.status(id.parse().unwrap()).await.unwrap();
        assert_eq!(on_host.power, maocloud_hypervisor::PowerState::Running);

        // The metadata service answers the VM's own address with its key and user-data.
        let md = maocloud_app::compute::metadata::for_ip(&s.app, v["ip"].as_str().unwrap(), None)
            .await
            .unwrap()
            .expect("metadata");
        assert_eq!(md.instance_id, id);
        assert_eq!(md.public_keys[0].1, KEY);
        assert_eq!(md.user_data.as_deref(), Some("#!/bin/sh\necho hello\n"));

        // The heartbeat samples its counters for monitoring.
        hosts::heartbeat_all(&s.app).await.unwrap();
        let samples = s
            .app
            .db()
            .read()
            .await
            .unwrap()
            .sample_list(
                id.parse().unwrap(),
                t0() - jiff::SignedDuration::from_hours(1),
            )
            .await
            .unwrap();
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert!(samples[0].1[0] > 0, "cpu time is counted: {samples:?}");

        // The console shows what the host's serial port printed.
        let (st, c) = s
            .get(&format!("/api/v1/vms/{id}/console"), Some(&alice.token))
            .await;
        assert_eq!(st, StatusCode::OK, "{c}");
        assert!(c["next_offset"].as_u64().unwrap() > 0, "{c}");

        // Stop, start, reboot: each goes through its transitional state.
        let (st, v) = action(&s, &alice.token, &id, "stop").await;
        assert_eq!(
            (st, v["state"].as_str()),
            (StatusCode::ACCEPTED, Some("stopping"))
        );
        let (st, v) = action(&s, &alice.token, &id, "start").await;
        assert_eq!(
            st,
            StatusCode::CONFLICT,
            "a VM being stopped takes no other change: {v}"
        );
        s.run_jobs().await;
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "stopped");
        assert_eq!(
            sim.status(id.parse().unwrap()).await.unwrap().power,
            maocloud_hypervisor::PowerState::Stopped
        );
        let (st, v) = action(&s, &alice.token, &id, "reboot").await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        action(&s, &alice.token, &id, "start").await;
        s.run_jobs().await;
        let (st, v) = action(&s, &alice.token, &id, "reboot").await;
        assert_eq!(
            (st, v["state"].as_str()),
            (StatusCode::ACCEPTED, Some("rebooting"))
        );
        s.run_jobs().await;
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "running");

        // Resize to m: the host sees the new size, the VM runs again.
        let (st, v) = s
            .post(
                &format!("/api/v1/vms/{id}/resize"),
                Some(&alice.token),
                json!({"size": "m"}),
            )
            .await;
        assert_eq!(
            (st, v["state"].as_str()),
            (StatusCode::ACCEPTED, Some("resizing")),
            "{v}"
        );
        s.run_jobs().await;
        let v = vm(&s, &alice.token, &id).await;
        assert_eq!(
            (v["state"].as_str(), v["size"].as_str(), v["vcpus"].as_i64()),
            (Some("running"), Some("m"), Some(2)),
            "{v}"
        );
        assert_eq!(
            sim.status(id.parse().unwrap())
                .await
                .unwrap()
                .size
                .memory_mib,
            2048
        );
        let (_, q) = s.get("/api/v1/quota", Some(&alice.token)).await;
        assert_eq!(
            (q["used_vcpus"].as_i64(), q["vcpus"].as_i64()),
            (Some(2), Some(2)),
            "{q}"
        );

        // Delete: the host forgets it, the list no longer shows it, the record says deleted.
        let (st, v) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/vms/{id}"),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(
            (st, v["state"].as_str()),
            (StatusCode::ACCEPTED, Some("deleting"))
        );
        s.run_jobs().await;
        assert!(
            sim.status(id.parse().unwrap()).await.is_err(),
            "the host still has the VM"
        );
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "deleted");
        assert_eq!(vm_count(&s, &alice.token).await, 0);

        // Usage spans (R-6.1b): VM-hours by size and disk GiB-hours were recorded.
        let mut tx = s.app.db().read().await.unwrap();
        let sums = tx
            .usage_sum(
                alice.id.parse().unwrap(),
                t0() - jiff::SignedDuration::from_hours(1),
                t0() + jiff::SignedDuration::from_hours(1),
            )
            .await
            .unwrap();
        let kinds: Vec<(String, String)> = sums
            .iter()
            .map(|u| (u.kind.clone(), u.size.clone()))
            .collect();
        assert!(
            kinds.contains(&("vm".into(), "xs".into()))
                && kinds.contains(&("disk".into(), "m".into())),
            "{kinds:?}"
        );
    }
);

crate::both_dbs!(
    bad_input_gets_a_clear_error_and_changes_nothing,
    |_s: TestServer| async move {
        let (s, alice, _sim) = setup(_s.db, BIG).await;
        let t = &alice.token;
        s.run_jobs().await; // the welcome and invoice emails
        let cases = [
            (
                json!({"name": "a", "image": "nope", "size": "xs"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "image",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "huge"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "size",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "l"}),
                StatusCode::CONFLICT,
                "size",
            ),
            (
                json!({"name": "Not_A_Host", "image": "tiny", "size": "xs"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "name",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "xs", "user_data": "echo not a script"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_data",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "xs", "user_data": "#cloud-config\n\tbad: tab"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_data",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "xs", "ssh_keys": ["missing"]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "ssh_keys",
            ),
            (
                json!({"name": "a", "image": "tiny", "size": "xs", "colour": "red"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "colour",
            ),
        ];
        for (body, status, f) in cases {
            let (st, v) = create(&s, t, body.clone()).await;
            assert_eq!(st.as_u16() / 100, 4, "{body}: {v}");
            assert_eq!(st, status, "{body}: {v}");
            assert_eq!(field(&v), Some(f), "{body}: {v}");
        }
        let (st, v) = s
            .post(
                "/api/v1/ssh-keys",
                Some(t),
                json!({"name": "k", "public_key": "ssh-rsa garbage"}),
            )
            .await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("public_key")),
            "{v}"
        );
        assert_eq!(vm_count(&s, t).await, 0);
        let (_, keys) = s.get("/api/v1/ssh-keys", Some(t)).await;
        assert_eq!(keys.as_array().unwrap().len(), 0);
        assert_eq!(s.run_jobs().await, 0, "a refused request enqueues nothing");

        // Quota: 2 VMs included; the third is refused with the reason.
        for n in ["a", "b"] {
            let (st, v) = create(&s, t, json!({"name": n, "image": "tiny", "size": "xs"})).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        }
        let (st, v) = create(&s, t, json!({"name": "c", "image": "tiny", "size": "xs"})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("quota"), "{v}");
        let (st, v) = create(&s, t, json!({"name": "a", "image": "tiny", "size": "xs"})).await;
        assert_eq!((st, field(&v)), (StatusCode::CONFLICT, Some("name")), "{v}");
        assert_eq!(vm_count(&s, t).await, 2);
    }
);

crate::both_dbs!(
    another_subscribers_vms_are_not_there,
    |_s: TestServer| async move {
        let (s, alice, _sim) = setup(_s.db, BIG).await;
        let (_, v) = create(
            &s,
            &alice.token,
            json!({"name": "mine", "image": "tiny", "size": "xs"}),
        )
        .await;
        let id = v["id"].as_str().unwrap().to_string();
        s.run_jobs().await;
        let bob = s.subscriber("bob@example.test").await;
        for (m, path) in [
            (Method::GET, format!("/api/v1/vms/{id}")),
            (Method::DELETE, format!("/api/v1/vms/{id}")),
            (Method::POST, format!("/api/v1/vms/{id}/stop")),
            (Method::POST, format!("/api/v1/vms/{id}/reboot")),
            (Method::GET, format!("/api/v1/vms/{id}/console")),
            (Method::GET, format!("/api/v1/vms/{id}/counters")),
        ] {
            let body = (m == Method::POST).then(|| json!({}));
            let (st, v) = s.call(m.clone(), &path, Some(&bob.token), body).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{m} {path}: {v}");
        }
        assert_eq!(vm_count(&s, &bob.token).await, 0);
        // Bob cannot put Alice's key in his VM either.
        let (_, k) = s
            .post(
                "/api/v1/ssh-keys",
                Some(&alice.token),
                json!({"name": "laptop", "public_key": KEY}),
            )
            .await;
        let (st, v) = s
            .get(
                &format!("/api/v1/ssh-keys/{}", k["id"].as_str().unwrap()),
                Some(&bob.token),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "running");
    }
);

crate::both_dbs!(placement_and_capacity_r_3_2, |_s: TestServer| async move {
    // A host with room for one s (1 vCPU, 1024 MiB, 10 GiB) and nothing more.
    let (s, alice, _sim) = setup(
        _s.db,
        Resources {
            vcpus: 1,
            memory_mib: 1280,
            disk_gib: 20,
        },
    )
    .await;
    let t = &alice.token;
    let (st, v) = create(&s, t, json!({"name": "one", "image": "tiny", "size": "s"})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let (st, v) = create(&s, t, json!({"name": "two", "image": "tiny", "size": "xs"})).await;
    assert_eq!((st, field(&v)), (StatusCode::CONFLICT, Some("size")), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("no host has room"),
        "{v}"
    );
    // A second host joins: the same request now fits there.
    let other = Arc::new(SimAgent::new(SimConfig {
        hostname: "sim-2".into(),
        capacity: BIG,
    }));
    hosts::attach(&s.app, other.clone(), None).await.unwrap();
    let (st, v) = create(&s, t, json!({"name": "two", "image": "tiny", "size": "xs"})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    s.run_jobs().await;
    assert_eq!(other.report().await.unwrap().vms.len(), 1);
    // Operators see both hosts and their load.
    let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
    let (st, h) = s.get("/api/v1/hosts", Some(&admin.token)).await;
    assert_eq!(st, StatusCode::OK, "{h}");
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert!(
        h.iter()
            .any(|h| h["name"] == "sim-1" && h["used_vcpus"] == 1),
        "{h:?}"
    );
    let (st, _) = s.get("/api/v1/hosts", Some(t)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Resizing the s on its full host is refused with the reason, and nothing changes (the
    // xs is deleted first so that the quota leaves room for an m).
    let (_, list) = s.get("/api/v1/vms", Some(t)).await;
    let two = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "two")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(Method::DELETE, &format!("/api/v1/vms/{two}"), Some(t), None)
        .await;
    s.run_jobs().await;
    let one = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "one")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = s
        .post(
            &format!("/api/v1/vms/{one}/resize"),
            Some(t),
            json!({"size": "m"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("lacks the capacity"),
        "{v}"
    );
    let (st, v) = s
        .post(
            &format!("/api/v1/vms/{one}/resize"),
            Some(t),
            json!({"size": "xs"}),
        )
        .await;
    assert_eq!(
        (st, field(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("size")),
        "a disk only grows: {v}"
    );
    assert_eq!(vm(&s, t, &one).await["size"], "s");
});

crate::both_dbs!(
    suspension_stops_vms_and_lifting_restarts_them_r_7_1c,
    |_s: TestServer| async move {
        let (s, alice, sim) = setup(_s.db, BIG).await;
        let t = &alice.token;
        let (_, v) = create(
            &s,
            t,
            json!({"name": "keep-me", "image": "tiny", "size": "xs"}),
        )
        .await;
        let id = v["id"].as_str().unwrap().to_string();
        s.run_jobs().await;
        let abuse = s.operator("abuse@op.test", OperatorRole::Abuse).await;
        let (st, susp) = s
            .post(
                "/api/v1/suspensions",
                Some(&abuse.token),
                json!({"subscriber_id": alice.id, "cause": "breach", "reason": "spam"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{susp}");
        s.run_jobs().await;
        let v = vm(&s, t, &id).await;
        assert_eq!(
            (v["state"].as_str(), v["held_by_suspension"].as_bool()),
            (Some("stopped"), Some(true)),
            "{v}"
        );
        assert_eq!(
            sim.status(id.parse().unwrap()).await.unwrap().power,
            maocloud_hypervisor::PowerState::Stopped,
            "the guest is stopped, not deleted"
        );
        let (st, v) = action(&s, t, &id, "start").await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("suspended"), "{v}");
        let (st, v) = create(&s, t, json!({"name": "new", "image": "tiny", "size": "xs"})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        // Reading goes on.
        let (st, _) = s.get(&format!("/api/v1/vms/{id}/console"), Some(t)).await;
        assert_eq!(st, StatusCode::OK);
        let (st, v) = s
            .post(
                &format!("/api/v1/suspensions/{}/lift", susp["id"].as_str().unwrap()),
                Some(&abuse.token),
                json!({"reason": "resolved"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        s.run_jobs().await;
        let v = vm(&s, t, &id).await;
        assert_eq!(
            (v["state"].as_str(), v["held_by_suspension"].as_bool()),
            (Some("running"), Some(false)),
            "{v}"
        );
    }
);

crate::both_dbs!(
    orphans_are_removed_and_crashes_noticed,
    |_s: TestServer| async move {
        let (s, alice, sim) = setup(_s.db, BIG).await;
        let (_, v) = create(
            &s,
            &alice.token,
            json!({"name": "real", "image": "tiny", "size": "xs"}),
        )
        .await;
        let id = v["id"].as_str().unwrap().to_string();
        s.run_jobs().await;
        // A VM the host runs that the control plane does not know (a create undone, a delete
        // recorded before a crash): reconciliation removes it.
        let mut spec_vm = sim.report().await.unwrap();
        assert_eq!(spec_vm.vms.len(), 1);
        let orphan = maocloud_hypervisor::VmSpec {
            id: uuid::Uuid::now_v7(),
            size: Resources {
                vcpus: 1,
                memory_mib: 256,
                disk_gib: 1,
            },
            image: maocloud_hypervisor::ImageRef {
                disk: None,
                disk_format: None,
                kernel: Some("/k".into()),
                initrd: Some("/i".into()),
                cmdline: None,
            },
            mac: "52:54:00:00:00:01".into(),
            network: maocloud_hypervisor::NetworkSpec {
                id: uuid::Uuid::now_v7(),
                cidr: "10.9.9.0/24".into(),
                gateway: "10.9.9.1".into(),
                metadata_to: "10.9.9.1:1".into(),
                leases: vec![],
            },
            seed: maocloud_hypervisor::Seed {
                instance_id: "orphan".into(),
                hostname: "orphan".into(),
                ssh_keys: vec![],
                user_data: None,
            },
        };
        sim.create(&orphan).await.unwrap();
        spec_vm = sim.report().await.unwrap();
        assert_eq!(spec_vm.vms.len(), 2);
        let host = s.app.agents().hosts()[0];
        hosts::reconcile(&s.app, host).await.unwrap();
        let left: Vec<_> = sim
            .report()
            .await
            .unwrap()
            .vms
            .into_iter()
            .map(|v| v.id.to_string())
            .collect();
        assert_eq!(left, vec![id.clone()]);
        // A guest whose QEMU died is reported crashed, and can be started again.
        sim.crash(id.parse().unwrap()).unwrap();
        hosts::reconcile(&s.app, host).await.unwrap();
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "crashed");
        action(&s, &alice.token, &id, "start").await;
        s.run_jobs().await;
        assert_eq!(vm(&s, &alice.token, &id).await["state"], "running");
    }
);

#[tokio::test]
async fn the_metadata_service_answers_no_one_but_a_vm() {
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.compute = maocloud::config::ComputeMode::Sim
    })
    .await;
    let port = s.app.agents().metadata_port();
    assert_ne!(port, 0);
    let r = reqwest::get(format!(
        "http://127.0.0.1:{port}/latest/meta-data/instance-id"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "loopback is no VM");
    let r = reqwest::get(format!(
        "http://127.0.0.1:{port}/openstack/latest/meta_data.json"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

fn qemu_img(args: &[&str]) {
    let st = std::process::Command::new("qemu-img")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("qemu-img runs");
    assert!(st.success(), "qemu-img {args:?}");
}

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// Images: checksum verified, qcow2/raw inspected, backing files refused; only admins import.
crate::both_dbs!(
    image_import_checks_what_it_offers,
    |s: TestServer| async move {
        let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
        let dir = s.data.path().join("uploads");
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.qcow2");
        qemu_img(&["create", "-q", "-f", "qcow2", good.to_str().unwrap(), "3G"]);
        let base = dir.join("base.raw");
        qemu_img(&["create", "-q", "-f", "raw", base.to_str().unwrap(), "1M"]);
        let sneaky = dir.join("sneaky.qcow2");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            base.to_str().unwrap(),
            sneaky.to_str().unwrap(),
        ]);
        let import = |name: &str, path: &std::path::Path, sha: String| json!({"name": name, "source": path.to_str().unwrap(), "sha256": sha});

        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                import("debian", &good, "0".repeat(64)),
            )
            .await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("sha256")),
            "a wrong checksum is refused: {v}"
        );
        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                import("sneaky", &sneaky, sha256_of(&sneaky)),
            )
            .await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("source")),
            "{v}"
        );
        assert!(
            v["detail"].as_str().unwrap().contains("backing file"),
            "{v}"
        );
        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                import("nothing", &dir.join("absent"), "0".repeat(64)),
            )
            .await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("source")),
            "{v}"
        );
        let alice = s.subscriber("alice@example.test").await;
        let (st, _) = s
            .post(
                "/api/v1/images",
                Some(&alice.token),
                import("debian", &good, sha256_of(&good)),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (_, list) = s.get("/api/v1/images", Some(&alice.token)).await;
        assert_eq!(
            list.as_array().unwrap().len(),
            0,
            "nothing refused was offered: {list}"
        );

        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                import("debian", &good, sha256_of(&good)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["format"].as_str(), v["min_disk_gib"].as_i64()),
            (Some("qcow2"), Some(3)),
            "{v}"
        );
        let (_, list) = s.get("/api/v1/images", Some(&alice.token)).await;
        assert_eq!(list[0]["name"], "debian");
        let (st, _) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                import("debian", &good, sha256_of(&good)),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "names are unique");
        // From a URL: downloaded, checked the same way.
        let bytes = std::fs::read(&good).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = format!("http://{}", listener.local_addr().unwrap());
        let served = bytes.clone();
        tokio::spawn(async move {
            let app = axum::Router::new().route(
                "/good.qcow2",
                axum::routing::get(move || {
                    let b = served.clone();
                    async move { b }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
        let by_url = |name: &str, url: String, sha: String| json!({"name": name, "source": url, "sha256": sha});
        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                by_url("from-web", format!("{web}/good.qcow2"), sha256_of(&good)),
            )
            .await;
        assert_eq!(
            (st, v["format"].as_str()),
            (StatusCode::CREATED, Some("qcow2")),
            "{v}"
        );
        let (st, v) = s
            .post(
                "/api/v1/images",
                Some(&admin.token),
                by_url("missing", format!("{web}/nope.qcow2"), sha256_of(&good)),
            )
            .await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("source")),
            "{v}"
        );
        let (st, v) = s
            .call(
                Method::DELETE,
                "/api/v1/images/debian",
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(
            (st, v["status"].as_str()),
            (StatusCode::OK, Some("retired"))
        );
        let (st, _) = s.get("/api/v1/images/debian", Some(&alice.token)).await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "a retired image is gone from the catalogue"
        );
    }
);

/// A child process killed when the test ends, however it ends (an agent retries its platform
/// forever: left behind, it would outlive the test).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `maocloud agent --sim` joining the server under test.
fn spawn_agent(s: &TestServer, name: &str, token: &str) -> Reaped {
    let state = s.data.path().join(format!("agent-{name}"));
    Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_maocloud"))
            .args([
                "agent",
                "--sim",
                "--name",
                name,
                "--listen",
                "127.0.0.1:0",
                "--metadata-listen",
                "127.0.0.1:0",
                "--heartbeat-secs",
                "1",
                "--join",
                &s.url,
                "--token",
                token,
            ])
            .arg("--state-dir")
            .arg(&state)
            .env("MAOCLOUD_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("maocloud agent starts"),
    )
}

// Hosts join with `maocloud agent --join URL --token T`; VMs are placed on them and driven
// through their command API; a wrong token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_agents_join_and_run_vms() {
    let token = "t".repeat(40);
    let s = TestServer::start_with(Db::Sqlite, |c| c.agent_token = Some("t".repeat(40))).await;
    let a = spawn_agent(&s, "remote-a", &token);
    let b = spawn_agent(&s, "remote-b", &token);
    let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, h) = s.get("/api/v1/hosts", Some(&admin.token)).await;
        if h.as_array().is_some_and(|h| {
            h.len() == 2
                && h.iter()
                    .all(|h| h["attached"] == true && h["accel"] == "sim")
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agents did not join: {h}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let image = kernel_image(&s, "tiny").await;
    let billing = s.operator("billing@op.test", OperatorRole::Billing).await;
    let o = offer(&s, &billing.token, "cloud-s", "Cloud S", 1999, 0).await;
    let alice = s.subscriber("alice@example.test").await;
    subscribe(&s, &alice.token, &o).await;
    let mut ids = vec![];
    for n in ["one", "two"] {
        let (st, v) = create(
            &s,
            &alice.token,
            json!({"name": n, "image": "tiny", "size": "xs"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    s.run_jobs().await;
    for id in &ids {
        let v = vm(&s, &alice.token, id).await;
        assert_eq!(v["state"], "running", "{v}");
        let (_, c) = s
            .get(&format!("/api/v1/vms/{id}/console"), Some(&alice.token))
            .await;
        assert!(c["data"].as_str().unwrap().contains("sim: booted"), "{c}");
    }
    // Placement spread them by free memory: one on each host.
    let (_, h) = s.get("/api/v1/hosts", Some(&admin.token)).await;
    assert!(h.as_array().unwrap().iter().all(|h| h["vms"] == 1), "{h}");
    // The metadata proxy route answers a host's agent about its own guests only.
    let v = vm(&s, &alice.token, &ids[0]).await;
    let hosts = h.as_array().unwrap();
    let on = hosts.iter().find(|h| h["id"] == v["host_id"]).unwrap();
    let other = hosts.iter().find(|h| h["id"] != v["host_id"]).unwrap();
    let secret_of = |h: &Value| {
        std::fs::read_to_string(
            s.data
                .path()
                .join(format!("agent-{}", h["name"].as_str().unwrap()))
                .join("agent.secret"),
        )
        .unwrap()
    };
    let ask = |host: &Value, secret: String| {
        s.http
            .get(format!(
                "{}/agent-metadata/latest/meta-data/instance-id",
                s.url
            ))
            .bearer_auth(secret)
            .header("x-maocloud-host", host["id"].as_str().unwrap())
            .header("x-maocloud-guest", v["ip"].as_str().unwrap())
            .send()
    };
    let r = ask(on, secret_of(on)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), ids[0]);
    let r = ask(other, secret_of(other)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "another host's guest");
    let r = ask(on, "not-the-secret".repeat(4)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Hosts copied the image from the control plane; only registered image files are served.
    let cache = s
        .data
        .path()
        .join(format!("agent-{}", on["name"].as_str().unwrap()))
        .join("images");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "kernel and initramfs copied to the host"
    );
    let file = |path: &str, secret: String| {
        s.http
            .get(format!("{}/agent-images", s.url))
            .query(&[("path", path)])
            .bearer_auth(secret)
            .header("x-maocloud-host", on["id"].as_str().unwrap())
            .send()
    };
    let kernel = std::path::PathBuf::from(image.kernel_path.clone().unwrap());
    let r = file("/etc/shadow", secret_of(on)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not an image file");
    let r = file(kernel.to_str().unwrap(), "wrong".repeat(10))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for id in &ids {
        s.call(
            Method::DELETE,
            &format!("/api/v1/vms/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    }
    s.run_jobs().await;
    assert_eq!(vm(&s, &alice.token, &ids[0]).await["state"], "deleted");
    drop((a, b));

    // A wrong token: the agent says so and stops.
    let mut bad = spawn_agent(&s, "intruder", &"x".repeat(40));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = bad.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent kept going with a wrong token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let (_, h) = s.get("/api/v1/hosts", Some(&admin.token)).await;
    assert!(
        !h.as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "intruder"),
        "{h}"
    );
}

// Until (or beyond) what the offer includes, a billing operator sets a subscriber's quota by
// hand; removing it gives the offer's inclusions back.
crate::both_dbs!(operators_set_a_quota_by_hand, |_s: TestServer| async move {
    let (s, alice, _sim) = setup(_s.db, BIG).await;
    let billing = s.operator("billing2@op.test", OperatorRole::Billing).await;
    let path = format!("/api/v1/subscribers/{}/compute-quota", alice.id);
    let (st, q) = s.get(&path, Some(&billing.token)).await;
    assert_eq!(
        (st, q["vms"].as_i64(), q["set_by_operator"].as_bool()),
        (StatusCode::OK, Some(2), Some(false)),
        "{q}"
    );
    let body = json!({"vcpus": 8, "memory_mib": 8192, "disk_gib": 100, "vms": 3});
    let (st, v) = s
        .call(Method::PUT, &path, Some(&alice.token), Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = s
        .call(
            Method::PUT,
            &path,
            Some(&billing.token),
            Some(json!({"vcpus": -1, "memory_mib": 1, "disk_gib": 1, "vms": 1})),
        )
        .await;
    assert_eq!(
        (st, field(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("vcpus")),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/subscribers/{}/compute-quota", uuid::Uuid::now_v7()),
            Some(&billing.token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .call(Method::PUT, &path, Some(&billing.token), Some(body))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for n in ["a", "b", "c"] {
        let (st, v) = create(
            &s,
            &alice.token,
            json!({"name": n, "image": "tiny", "size": "xs"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{n}: {v}");
    }
    let (_, q) = s.get("/api/v1/quota", Some(&alice.token)).await;
    assert_eq!(
        (q["vms"].as_i64(), q["used_vms"].as_i64()),
        (Some(3), Some(3)),
        "{q}"
    );
    let (st, _) = s
        .call(Method::DELETE, &path, Some(&billing.token), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, q) = s.get(&path, Some(&billing.token)).await;
    assert_eq!(
        (
            q["vms"].as_i64(),
            q["used_vms"].as_i64(),
            q["set_by_operator"].as_bool()
        ),
        (Some(2), Some(3), Some(false)),
        "the VMs over the quota stay: {q}"
    );
    let (st, _) = create(
        &s,
        &alice.token,
        json!({"name": "d", "image": "tiny", "size": "xs"}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
});

// moving to another offer happens only if the current VMs fit it and the
// infrastructure has the capacity for what it adds; otherwise nothing changes.
crate::both_dbs!(
    offer_change_checks_vms_and_capacity_r_3_2,
    |_s: TestServer| async move {
        // A host with 4 vCPUs: Alice's offer includes 2, the bigger one 8.
        let (s, alice, _sim) = setup(
            _s.db,
            Resources {
                vcpus: 4,
                memory_mib: 8192,
                disk_gib: 200,
            },
        )
        .await;
        let billing = s.operator("billing2@op.test", OperatorRole::Billing).await;
        let offer_with = |code: &str, vcpus: i64, vms: i64| {
            json!({
                "code": code, "name": code, "description": code, "monthly_price_cents": 4000, "vat_rate_bp": 2000,
                "includes": {"vcpus": vcpus, "ram_mib": 4096, "disk_gib": 50, "vms": vms, "storage_gb": 100, "egress_gb": 1000, "public_ips": 1},
                "usage_prices": {"storage_gb_month_cents": 2, "egress_gb_cents": 1, "public_ip_month_cents": 300},
                "commitment_months": 0,
            })
        };
        let (_, big) = s
            .post(
                "/api/v1/offers",
                Some(&billing.token),
                offer_with("big", 8, 4),
            )
            .await;
        let (_, none) = s
            .post(
                "/api/v1/offers",
                Some(&billing.token),
                offer_with("no-vm", 2, 0),
            )
            .await;
        let sub_id = subscription_of(&s, &alice.token).await;
        let path = format!("/api/v1/subscriptions/{sub_id}/change-offer");
        let change =
            |offer: &Value| s.post(&path, Some(&alice.token), json!({"offer_id": offer["id"]}));
        let (st, v) = change(&big).await;
        assert_eq!(
            (st, field(&v)),
            (StatusCode::CONFLICT, Some("offer_id")),
            "{v}"
        );
        assert!(v["detail"].as_str().unwrap().contains("capacity"), "{v}");
        // A VM running: an offer including no VM does not fit it.
        create(
            &s,
            &alice.token,
            json!({"name": "keep", "image": "tiny", "size": "xs"}),
        )
        .await;
        let (st, v) = change(&none).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("do not fit"), "{v}");
        // Capacity grows: the bigger offer now goes through.
        let more = Arc::new(SimAgent::new(SimConfig {
            hostname: "sim-2".into(),
            capacity: BIG,
        }));
        hosts::attach(&s.app, more, None).await.unwrap();
        let (st, v) = change(&big).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (_, q) = s.get("/api/v1/quota", Some(&alice.token)).await;
        assert_eq!(q["vcpus"].as_i64(), Some(8), "{q}");
    }
);

/// The `maocloud` CLI as a subscriber runs it against the server under test.
async fn cli(s: &TestServer, token: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_maocloud"));
    cmd.args(["--url", &s.url, "--token", token])
        .args(args)
        .env("MAOCLOUD_CONFIG_DIR", s.data.path().join("cli"))
        .env("MAOCLOUD_LOG", "error");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the CLI runs"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// What the console does with VMs, the CLI does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_launches_controls_and_reads_vms() {
    let (s, alice, _sim) = setup(Db::Sqlite, BIG).await;
    let t = &alice.token;
    let keyfile = s.data.path().join("id_ed25519.pub");
    std::fs::write(&keyfile, format!("{KEY}\n")).unwrap();
    let (ok, out, err) = cli(
        &s,
        t,
        &[
            "ssh-key",
            "add",
            "laptop",
            "--file",
            keyfile.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok && out.contains("SHA256:"), "{out}{err}");
    let (ok, out, err) = cli(
        &s,
        t,
        &[
            "vm",
            "create",
            "web-1",
            "--image",
            "tiny",
            "--size",
            "xs",
            "--ssh-key",
            "laptop",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.run_jobs().await;
    let (ok, out, _) = cli(&s, t, &["vm", "list"]).await;
    assert!(
        ok && out.contains("web-1") && out.contains("running"),
        "{out}"
    );
    let (ok, out, _) = cli(&s, t, &["vm", "console", &id, "--log"]).await;
    assert!(ok && out.contains("sim: booted"), "{out}");
    let (ok, _, _) = cli(&s, t, &["vm", "stop", &id]).await;
    assert!(ok);
    s.run_jobs().await;
    let (_, out, _) = cli(&s, t, &["vm", "show", &id, "-o", "json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["state"],
        "stopped",
        "{out}"
    );
    // Bad input: a clear message, a non-zero exit, nothing made.
    let (ok, out, err) = cli(
        &s,
        t,
        &[
            "vm", "create", "Bad_Name", "--image", "tiny", "--size", "xs",
        ],
    )
    .await;
    assert!(!ok && err.contains("name"), "{out}{err}");
    let (ok, _, err) = cli(
        &s,
        t,
        &["vm", "create", "two", "--image", "tiny", "--size", "huge"],
    )
    .await;
    assert!(!ok && err.contains("size"), "{err}");
    assert_eq!(vm_count(&s, t).await, 1);
    let (ok, out, _) = cli(&s, t, &["vm", "sizes"]).await;
    assert!(ok && out.contains("xl"), "{out}");
    // A billing operator sets Alice's quota by hand; she sees it.
    let billing = s.operator("billing3@op.test", OperatorRole::Billing).await;
    let (ok, out, err) = cli(
        &s,
        &billing.token,
        &[
            "vm",
            "quota",
            "--subscriber",
            &alice.id,
            "--set",
            "4,4096,50,5",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cli(
        &s,
        &billing.token,
        &["vm", "quota", "--subscriber", &alice.id, "--set", "4,4096"],
    )
    .await;
    assert!(!ok && err.contains("four numbers"), "{err}");
    let (_, out, _) = cli(&s, t, &["vm", "quota", "-o", "json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["vms"],
        5,
        "{out}"
    );
    let (ok, _, _) = cli(&s, t, &["vm", "delete", &id]).await;
    assert!(ok);
    s.run_jobs().await;
    assert_eq!(vm_count(&s, t).await, 0);
}

// R-7.3c: at the contract's end date the VMs stop and are kept, read-only; after the grace
// period they are deleted with their disks.
crate::both_dbs!(
    an_ended_contract_stops_then_erases_vms_r_7_3c,
    |_s: TestServer| async move {
        let (s, alice, sim) = setup(_s.db, BIG).await;
        let t = &alice.token;
        let (_, v) = create(
            &s,
            t,
            json!({"name": "last", "image": "tiny", "size": "xs"}),
        )
        .await;
        let id = v["id"].as_str().unwrap().to_string();
        s.run_jobs().await;
        let sub_id = subscription_of(&s, t).await;
        let (st, v) = s
            .post(
                &format!("/api/v1/subscriptions/{sub_id}/termination"),
                Some(t),
                json!({"end": "month_end"}),
            )
            .await;
        assert_eq!(st.as_u16() / 100, 2, "{v}");
        assert_eq!(
            vm(&s, t, &id).await["state"],
            "running",
            "nothing stops before the end date"
        );
        // The day after the end date (30 November).
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 5));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        s.run_jobs().await;
        let v = vm(&s, t, &id).await;
        assert_eq!(
            (v["state"].as_str(), v["held_by_suspension"].as_bool()),
            (Some("stopped"), Some(true)),
            "{v}"
        );
        assert!(
            sim.status(id.parse().unwrap()).await.is_ok(),
            "kept during the grace period"
        );
        let (st, v) = action(&s, t, &id, "start").await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("contract has ended"),
            "{v}"
        );
        // After the 30-day grace period: erased.
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 31));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        s.run_jobs().await;
        assert_eq!(vm(&s, t, &id).await["state"], "deleted");
        assert!(
            sim.status(id.parse().unwrap()).await.is_err(),
            "the disk is gone from the host"
        );
    }
);
