//! The isolation rules as text, and (as root) checked by `nft -c` without being applied.

use maocloud_hypervisor::net::{bridge_name, ruleset};
use maocloud_hypervisor::NetworkSpec;
use uuid::Uuid;

fn spec(third: u8, metadata_to: &str) -> NetworkSpec {
    NetworkSpec {
        id: Uuid::now_v7(),
        cidr: format!("10.77.{third}.0/24"),
        gateway: format!("10.77.{third}.1"),
        metadata_to: metadata_to.into(),
        leases: vec![],
    }
}

#[test]
fn rules_isolate_bridges_and_nat_only_through_the_uplink() {
    let a = spec(1, "10.77.1.1:8775");
    let b = spec(2, "192.0.2.10:80");
    for uplink in [None, Some("eth9")] {
        let text = ruleset("maocloud_test", &[a.clone(), b.clone()], uplink).unwrap();
        let (ba, bb) = (bridge_name(a.id), bridge_name(b.id));
        for needed in [
            format!(
                "iifname \"{ba}\" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 10.77.1.1:8775"
            ),
            format!(
                "iifname \"{bb}\" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 192.0.2.10:80"
            ),
            format!("iifname \"{ba}\" drop"),
            format!("oifname \"{bb}\" drop"),
            format!("iifname \"{ba}\" udp dport 67 accept"),
        ] {
            assert!(text.contains(&needed), "missing `{needed}` in\n{text}");
        }
        assert_eq!(text.contains("masquerade"), uplink.is_some(), "{text}");
        // Each bridge's drops come after its accepts, in every chain.
        let forward = text.split("chain forward").nth(1).unwrap();
        let accept = forward
            .find(&format!("iifname \"{ba}\" oifname \"{ba}\" accept"))
            .unwrap();
        let drop = forward.find(&format!("iifname \"{ba}\" drop")).unwrap();
        assert!(accept < drop);

        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let mut check = std::process::Command::new("nft")
                .args(["-c", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("nft is installed");
            use std::io::Write;
            check
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            assert!(check.wait().unwrap().success(), "nft refuses:\n{text}");
        }
    }
}
