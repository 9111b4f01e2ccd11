//! Sandbox observers: test hosts in network namespaces that the local sandbox creates on this
//! machine, in the benchmarking range 198.18.0.0/15 (RFC 2544), which is never routed anywhere.
//! Their SSH host keys are test-only keys checked in under `tests/sandbox/ssh/`. The namespaces
//! share this machine's file system, so each host has a deploy directory of its own.

use std::net::IpAddr;

use hosts::net::v4;
use hosts::observer::{Observer, RemoteDir, Retired};
use hosts::port;
use hosts::ssh_login::{HostKey, JumpHost, SshLogin};
use hosts::ServerId;

/// The range every sandbox address lies in.
pub const SANDBOX_NETWORK: (IpAddr, u8) = (v4(198, 18, 0, 0), 15);

/// Where the sandbox makes its quorum TLS material when it starts (a private CA, a key store per
/// server, the trust store; `sandbox/src/harness/keystores.rs`): nothing of it is checked in.
pub const TLS_DIR: &str = "/run/zk-observers-sandbox/tls";

/// The PKCS12 store `<name>.p12` of [`TLS_DIR`] and its password file `<name>.pass`.
pub fn tls_store(name: &str) -> hosts::tls::KeyStore {
    hosts::tls::KeyStore {
        store: hosts::SecretSource::File(format!("{TLS_DIR}/{name}.p12")),
        password: hosts::SecretSource::File(format!("{TLS_DIR}/{name}.pass")),
    }
}

pub fn observers() -> Vec<Observer> {
    vec![
        Observer {
            name: "zk-observer-1".into(),
            address: v4(198, 18, 1, 4),
            ssh: SshLogin {
                user: "root".into(),
                port: port!(22),
            },
            host_key: HostKey::Pinned(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfeUsaRXuaYLi95xJr4calJHll1HJWkzapSGXLCyGh5"
                    .into(),
            ),
            myid: ServerId(104),
            egress: vec![],
            scrape: None,
            jump: None,
            deploy_dir: RemoteDir::new("/var/lib/zk-observers-sandbox/zk-observer-1/deploy"),
            key_store: Some(tls_store("zk-observer-1")),
        },
        Observer {
            name: "zk-observer-2".into(),
            address: v4(198, 18, 1, 5),
            ssh: SshLogin {
                user: "root".into(),
                port: port!(22),
            },
            host_key: HostKey::Pinned(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIISaJC8sEv0D8RtH4gtHDaTL7mkvPC7ciMRg1MUHZSi8"
                    .into(),
            ),
            myid: ServerId(105),
            egress: vec![],
            scrape: None,
            jump: None,
            deploy_dir: RemoteDir::new("/var/lib/zk-observers-sandbox/zk-observer-2/deploy"),
            key_store: Some(tls_store("zk-observer-2")),
        },
    ]
}

/// The sandbox's bastion, in a namespace of its own: the only way to the observers' SSH (their
/// sshd drops connections from anywhere else), as in a VPC reached through a jump host.
pub fn jump_hosts() -> Vec<JumpHost> {
    vec![JumpHost {
        name: "sandbox-bastion".into(),
        address: "198.18.1.2".into(),
        ssh: SshLogin {
            user: "root".into(),
            port: port!(22),
        },
        host_key: HostKey::Pinned(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIINCqhRZpxTDnEKNSzGBqqCvTO7zqeJI/LKu7H+eiU3P"
                .into(),
        ),
    }]
}

/// The sandbox drift job's public key (a test-only key under `tests/sandbox/ssh/`): deploy lets
/// it run the read-only command only.
pub fn drift_key() -> Option<String> {
    Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIXFyEYnFS/80FUJzIJMVwlxj+HSkAyijfYJxka2D7Ay".into())
}

/// Observers taken out of service, still reachable so that deploy retires them: move an observer
/// here (with `data: RetiredData::Keep` or `Wipe`) instead of deleting it.
pub fn retired() -> Vec<Retired> {
    vec![]
}
