//! The observer inventory.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::ids::ServerId;
use crate::image::ImageRef;
use crate::metrics::Metrics;
use crate::ssh_login::{HostKey, JumpHost, SshLogin};
use crate::zoocfg::ZooSettings;

/// One observer host outside the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observer {
    /// A DNS-1123 label; names the host in reports, labels and the render tree.
    pub name: String,
    /// The host's own address: SSH reaches it (through the jump hosts, if any), the containers
    /// publish their ports on it, and, unless said otherwise below, the load balancers see the
    /// observer's connections come from it and Prometheus scrapes it.
    pub address: IpAddr,
    /// The source addresses the load balancers see this observer's connections come from, when
    /// its outgoing traffic is NAT'd (VPC peering, CCN, a classic-network link). Each becomes a
    /// /32 (/128) in the load balancers' `loadBalancerSourceRanges`. Empty: `address`.
    pub egress: Vec<IpAddr>,
    /// Where Prometheus reaches the exporter, when not at `address` (a NAT'd or forwarded
    /// address). Goes into the monitoring Endpoints and EndpointSlice. `None`: `address`.
    pub scrape: Option<IpAddr>,
    /// The jump hosts SSH goes through to this observer, when not the fleet's
    /// ([`ObserverFleet::jump`]); `Some(vec![])`: straight to it.
    pub jump: Option<Vec<JumpHost>>,
    pub ssh: SshLogin,
    pub host_key: HostKey,
    /// Must exceed every participant id: across the boundary only the observer can open
    /// connections, and in leader election the connection opened by the higher id wins.
    pub myid: ServerId,
    /// Absolute directory on the host holding zoo.cfg, docker-compose.yaml, data/ and datalog/.
    pub deploy_dir: RemoteDir,
    /// Its quorum TLS key store (a certificate of the quorum's CA), read at deploy time; required
    /// when [`ObserverFleet::quorum`] is TLS.
    pub key_store: Option<crate::tls::KeyStore>,
}

impl Observer {
    /// The addresses the load balancers see this observer's connections come from.
    pub fn egress_addresses(&self) -> Vec<IpAddr> {
        if self.egress.is_empty() {
            vec![self.address]
        } else {
            self.egress.clone()
        }
    }

    /// The jump hosts SSH goes through to this observer in `fleet`.
    pub fn jump_hosts<'a>(&'a self, fleet: &'a ObserverFleet) -> &'a [JumpHost] {
        self.jump.as_deref().unwrap_or(&fleet.jump)
    }

    /// Where Prometheus scrapes this observer's exporter.
    pub fn scrape_address(&self) -> IpAddr {
        self.scrape.unwrap_or(self.address)
    }
}

/// An absolute path on a remote host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RemoteDir(pub String);

impl RemoteDir {
    pub fn new(path: &str) -> RemoteDir {
        RemoteDir(path.to_string())
    }

    /// Why this path is not a safe deploy directory, if it is not: it must be an absolute,
    /// normalised path of plain characters, and a directory of its own: not a system directory nor
    /// inside one (this tool creates `data/` and `datalog/` in it and hands them to the container
    /// user).
    pub fn problem(&self) -> Option<String> {
        let p = &self.0;
        if let Some(e) = crate::net::path_problem(p) {
            return Some(e);
        }
        if p == "/" {
            return Some("`/` would put the deployment in the root directory".into());
        }
        const SYSTEM_TREES: &[&str] = &[
            "/etc",
            "/tmp",
            "/var/tmp",
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/boot",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/usr",
            "/var/run",
            "/var/lock",
        ];
        if let Some(t) = SYSTEM_TREES
            .iter()
            .find(|t| p == *t || p.starts_with(&format!("{t}/")))
        {
            return Some(format!(
                "`{p}` is in the system directory {t}, which is not a place for a deployment"
            ));
        }
        const SHARED: &[&str] = &[
            "/var",
            "/var/lib",
            "/var/log",
            "/var/cache",
            "/var/spool",
            "/var/opt",
            "/var/local",
            "/opt",
            "/srv",
            "/home",
            "/root",
            "/mnt",
            "/media",
            "/data",
        ];
        if SHARED.contains(&p.as_str()) {
            return Some(format!(
                "`{p}` is a directory other things share; the deployment needs one of its own"
            ));
        }
        None
    }

    pub fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.0.trim_end_matches('/'))
    }
}

impl fmt::Display for RemoteDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the ZooKeeper image keeps things, and the user it runs as. The official `zookeeper`
/// image's entrypoint writes `myid` from `ZOO_MY_ID` and chowns `ZOO_DATA_DIR` and
/// `ZOO_DATA_LOG_DIR`; rendering `dataDir` and `dataLogDir` to those directories is what makes the
/// runbook's hand-written `myid` and `chown` unnecessary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageLayout {
    pub config_file: &'static str,
    pub data_dir: &'static str,
    pub data_log_dir: &'static str,
    pub uid: u32,
    pub gid: u32,
}

impl ImageLayout {
    pub const OFFICIAL: ImageLayout = ImageLayout {
        config_file: "/conf/zoo.cfg",
        data_dir: "/data",
        data_log_dir: "/datalog",
        uid: 1000,
        gid: 1000,
    };
}

/// An observer taken out of service: still listed, with how to reach it, so that `deploy`
/// retires it (its containers stopped and removed, the tool's files removed, its data kept or
/// wiped as `data` says, the drift key revoked, then dropped from monitoring) and `drift` says if
/// it still runs. Deleting an observer from `observers` instead would leave it running, receiving
/// every write, with nothing to say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retired {
    pub observer: Observer,
    pub data: RetiredData,
}

/// What happens to a retired observer's ZooKeeper data (its `data/` and `datalog/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetiredData {
    /// Left on the host (for a look before the host is wiped). An observer holds nothing of its
    /// own: this is a copy of the ensemble's whole data tree.
    Keep,
    /// Removed with the rest: no copy of the ensemble's data stays on the host.
    Wipe,
}

/// Everything about the observers that is not cluster-side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObserverFleet {
    pub observers: Vec<Observer>,
    /// Observers taken out of service, which `deploy` retires (see [`Retired`]).
    pub retired: Vec<Retired>,
    /// The jump hosts (bastions) SSH goes through to reach the observers, in order; empty:
    /// straight to them. An observer may name its own.
    pub jump: Vec<JumpHost>,
    /// The public key of the scheduled drift job (`ssh-ed25519 AAAA...`). `deploy` authorizes it
    /// on every observer for one forced, read-only command (the host read drift does), nothing
    /// else: the drift job then holds no key that can change an observer. `None`: drift uses a
    /// key that can.
    pub drift_key: Option<String>,
    pub zookeeper: ZooSettings,
    /// Pinned, of the ensemble's minor version.
    pub image: ImageRef,
    pub layout: ImageLayout,
    pub metrics: Metrics,
    /// The ZooKeeper container's heap, TCP keepalive and log rotation.
    pub runtime: Runtime,
    /// Who may join the ensemble as an observer: plaintext, or quorum TLS.
    pub quorum: crate::tls::QuorumSecurity,
}

/// What the ZooKeeper container runs with, besides its zoo.cfg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// The JVM's heap (`-Xmx`, via the official image's `ZK_SERVER_HEAP`). An observer holds the
    /// ensemble's whole data tree: give it what the participants have (the runbook's chart gives
    /// them 2 GiB; ZooKeeper's own default is 1000 MiB).
    pub heap_mib: u32,
    pub keepalive: Keepalive,
    /// Docker's json-file logs of both containers, rotated (unrotated, they grow without bound).
    pub log_max_size_mib: u32,
    pub log_max_files: u32,
}

/// The TCP keepalive timers of the container's network namespace (`net.ipv4.tcp_keepalive_*`).
/// With `tcpKeepAlive=true` ZooKeeper turns keepalive on for its election connections, which sit
/// idle between elections; the kernel's default first probe after 7200 s comes long after a load
/// balancer or NAT gateway has forgotten the connection (AWS NLB 350 s, Azure 4 min, GCP
/// connection tracking 10 min). `idle_secs` must be below the provider's idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Keepalive {
    /// Seconds of silence before the first probe (`tcp_keepalive_time`).
    pub idle_secs: u32,
    /// Seconds between probes (`tcp_keepalive_intvl`).
    pub interval_secs: u32,
    /// Unanswered probes before the connection is dropped (`tcp_keepalive_probes`).
    pub probes: u32,
}

impl Runtime {
    /// What production observers run with unless the environment says otherwise: ZooKeeper's
    /// default heap, a first keepalive probe after two minutes, 5 x 10 MiB of logs.
    pub const fn recommended() -> Runtime {
        Runtime {
            heap_mib: 1000,
            keepalive: Keepalive {
                idle_secs: 120,
                interval_secs: 30,
                probes: 4,
            },
            log_max_size_mib: 10,
            log_max_files: 5,
        }
    }
}
