//! Generated environments for `cargo xtask bench`, a test fixture: the sandbox with `n`
//! observers, to measure fan-out. Not an environment of the product; only the benchmark builds
//! them.

use hosts::net::v4;
use hosts::{port, HostKey, Observer, RemoteDir, ServerId, SshLogin};

use manifests::Environment;

/// The sandbox environment with observers `bench-obs-1..=n` at 198.18.2.1.., myid 4.., all
/// presenting the host key `host_key` (one test-only key for every benchmark host).
pub fn environment(n: u8, host_key: &str) -> Environment {
    let mut env = manifests::environments::sandbox::environment();
    env.name = format!("bench-{n}");
    // Straight to the hosts: the fan-out is measured against plain parallel `ssh`.
    env.fleet.jump = vec![];
    env.fleet.observers = (1..=n)
        .map(|i| Observer {
            name: format!("bench-obs-{i}"),
            address: v4(198, 18, 2, i),
            ssh: SshLogin {
                user: "root".into(),
                port: port!(22),
            },
            host_key: HostKey::Pinned(host_key.to_string()),
            myid: ServerId(100 + u32::from(i)),
            egress: vec![],
            scrape: None,
            jump: None,
            deploy_dir: RemoteDir::new(&format!(
                "/var/lib/zk-observers-sandbox/bench-obs-{i}/deploy"
            )),
            // Quorum TLS, as the sandbox: the sandbox issues each observer's store at start.
            key_store: Some(manifests::environments::sandbox::inventory::tls_store(
                &format!("bench-obs-{i}"),
            )),
        })
        .collect();
    env
}
