//! Production observers: the two hosts in the classic network from the runbook.

use hosts::net::v4;
use hosts::observer::{Observer, RemoteDir, Retired};
use hosts::port;
use hosts::ssh_login::{HostKey, JumpHost, SshLogin};
use hosts::ServerId;

pub fn observers() -> Vec<Observer> {
    vec![
        Observer {
            name: "zk-observer-1".into(),
            address: v4(10, 104, 170, 174),
            ssh: SshLogin {
                user: "root".into(),
                port: port!(22),
            },
            // Record the host's /etc/ssh/ssh_host_ed25519_key.pub, checked on its console, before
            // the first push.
            host_key: HostKey::NotPinned,
            myid: ServerId(104),
            egress: vec![],
            scrape: None,
            jump: None,
            deploy_dir: RemoteDir::new("/data/zookeeper"),
            key_store: None,
        },
        Observer {
            name: "zk-observer-2".into(),
            address: v4(10, 104, 42, 205),
            ssh: SshLogin {
                user: "root".into(),
                port: port!(22),
            },
            host_key: HostKey::NotPinned,
            myid: ServerId(105),
            egress: vec![],
            scrape: None,
            jump: None,
            deploy_dir: RemoteDir::new("/data/zookeeper"),
            key_store: None,
        },
    ]
}

/// The runbook reaches the observers directly (they share a network with the machine that
/// deploys). Behind a bastion, list it here with its pinned host key.
pub fn jump_hosts() -> Vec<JumpHost> {
    vec![]
}

/// The drift job's public key. The runbook has none: record the scheduled job's key here, and
/// deploy restricts it to the read-only command on every observer.
pub fn drift_key() -> Option<String> {
    None
}

/// Observers taken out of service, still reachable so that deploy retires them: move an observer
/// here (with `data: RetiredData::Keep` or `Wipe`) instead of deleting it.
pub fn retired() -> Vec<Retired> {
    vec![]
}
