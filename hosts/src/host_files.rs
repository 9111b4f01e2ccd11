//! Rendering one observer host's files.

use std::collections::BTreeMap;

use crate::compose::{BindMount, ComposeFile, Logging, PortMapping, Restart, Service};
use crate::ids::ServerId;
use crate::metrics::{health_words, Metrics};
use crate::net::{Port, ServerAddress};
use crate::observer::{Observer, ObserverFleet};
use crate::zoocfg::{AdminServer, FourLetterWords, Key, Role, ServerLine, ZooCfg};
use crate::{LABEL_DOMAIN, MANAGED_BY};

pub const ZOO_CFG_FILE: &str = "zoo.cfg";
pub const COMPOSE_FILE: &str = "docker-compose.yaml";
/// Data directories, relative to the deploy directory, bind-mounted into the container.
pub const DATA_DIR: &str = "data";
pub const DATA_LOG_DIR: &str = "datalog";

/// The compose service names.
pub const ZOOKEEPER_SERVICE: &str = "zookeeper";
pub const EXPORTER_SERVICE: &str = "exporter";

/// A participant as an observer's zoo.cfg sees it: its id and the load balancer in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantEndpoint {
    pub id: ServerId,
    pub address: ServerAddress,
}

/// The ensemble's quorum and election ports, which the observer uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsemblePorts {
    pub quorum: Port,
    pub election: Port,
}

/// The files of one observer host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFiles {
    pub zoo_cfg: String,
    pub compose: String,
    /// Secret files (quorum TLS key material): names and where their bytes are read at deploy
    /// time; never rendered.
    pub secrets: Vec<crate::tls::SecretFile>,
    /// Each secret file's SHA-256 once the deploying side read it (empty until then: a plan
    /// without it, drift's, does not compare secret contents, only that they are there).
    pub secret_sha256: BTreeMap<&'static str, String>,
}

impl HostFiles {
    /// `(file name, contents)`, in a fixed order.
    pub fn files(&self) -> [(&'static str, &str); 2] {
        [(ZOO_CFG_FILE, &self.zoo_cfg), (COMPOSE_FILE, &self.compose)]
    }
}

/// The whitelist written to zoo.cfg: what the health gate and the metrics need, plus extras.
pub fn effective_words(fleet: &ObserverFleet) -> FourLetterWords {
    FourLetterWords::of(
        health_words()
            .iter()
            .chain(fleet.metrics.required_words().iter())
            .chain(fleet.zookeeper.four_letter_words.iter()),
    )
}

/// Renders zoo.cfg and docker-compose.yaml for `observer`. `participants` must be sorted by id and
/// carry the addresses the observer should use (recorded or live).
pub fn render_host(
    environment: &str,
    fleet: &ObserverFleet,
    observer: &Observer,
    participants: &[ParticipantEndpoint],
    ports: EnsemblePorts,
) -> HostFiles {
    let zoo_cfg = render_zoo_cfg(environment, fleet, observer, participants, ports).to_text();
    let compose = render_compose(environment, fleet, observer);
    let secrets = crate::tls::secret_files(&fleet.quorum, observer.key_store.as_ref());
    HostFiles {
        zoo_cfg,
        compose,
        secrets,
        secret_sha256: BTreeMap::new(),
    }
}

fn render_zoo_cfg(
    environment: &str,
    fleet: &ObserverFleet,
    observer: &Observer,
    participants: &[ParticipantEndpoint],
    ports: EnsemblePorts,
) -> ZooCfg {
    let z = &fleet.zookeeper;
    let mut cfg = ZooCfg::new(vec![
        format!(
            "Rendered by {MANAGED_BY} for environment {environment}, observer {} (myid {}).",
            observer.name, observer.myid
        ),
        "Do not edit on the host: `cargo xtask push` replaces this file.".into(),
    ]);
    cfg.set(Key::TickTime, z.tick_time_ms);
    cfg.set(Key::InitLimit, z.init_limit);
    cfg.set(Key::SyncLimit, z.sync_limit);
    cfg.set(Key::ClientPort, z.client_port);
    cfg.set(Key::DataDir, fleet.layout.data_dir);
    cfg.set(Key::DataLogDir, fleet.layout.data_log_dir);
    cfg.set(Key::MaxClientCnxns, z.max_client_cnxns);
    cfg.set(Key::MinSessionTimeout, z.min_session_timeout_ms);
    cfg.set(Key::MaxSessionTimeout, z.max_session_timeout_ms);
    cfg.set(Key::AutopurgeSnapRetainCount, z.autopurge_snap_retain_count);
    cfg.set(
        Key::AutopurgePurgeInterval,
        z.autopurge_purge_interval_hours,
    );
    cfg.set(Key::PeerType, "observer");
    cfg.set(Key::FourLetterWordWhitelist, effective_words(fleet));
    match z.admin_server {
        AdminServer::Disabled => cfg.set(Key::AdminEnableServer, false),
        AdminServer::Enabled { address, port } => {
            cfg.set(Key::AdminEnableServer, true);
            cfg.set(Key::AdminServerAddress, address);
            cfg.set(Key::AdminServerPort, port);
        }
    }
    cfg.set(Key::TcpKeepAlive, z.tcp_keep_alive);
    cfg.set(Key::ReconfigEnabled, false);
    cfg.set(Key::StandaloneEnabled, false);
    if let Metrics::Builtin { port } = fleet.metrics {
        cfg.set(
            Key::MetricsProviderClassName,
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        );
        cfg.set(Key::MetricsProviderHttpHost, "0.0.0.0");
        cfg.set(Key::MetricsProviderHttpPort, port);
    }
    if let crate::tls::QuorumSecurity::Tls { .. } = fleet.quorum {
        use crate::tls::{in_container, *};
        cfg.set(Key::SslQuorum, true);
        set_store_keys(
            &mut cfg,
            &StorePaths {
                key_store: in_container(KEY_STORE_FILE),
                key_store_password: in_container(KEY_STORE_PASSWORD_FILE),
                trust_store: in_container(TRUST_STORE_FILE),
                trust_store_password: in_container(TRUST_STORE_PASSWORD_FILE),
            },
        );
    }
    for p in participants {
        cfg.set(
            Key::Server(p.id),
            ServerLine {
                id: p.id,
                address: p.address.clone(),
                quorum_port: ports.quorum,
                election_port: ports.election,
                role: Role::Participant,
            },
        );
    }
    // The observer's own line: it must list itself or it refuses to start. Nobody dials it (the
    // boundary is one-way), so it binds inside its container on all addresses.
    cfg.set(
        Key::Server(observer.myid),
        ServerLine {
            id: observer.myid,
            address: ServerAddress::Ip(std::net::Ipv4Addr::UNSPECIFIED.into()),
            quorum_port: ports.quorum,
            election_port: ports.election,
            role: Role::Observer,
        },
    );
    cfg
}

fn render_compose(environment: &str, fleet: &ObserverFleet, observer: &Observer) -> String {
    let layout = &fleet.layout;
    let labels = BTreeMap::from([
        (format!("{LABEL_DOMAIN}/managed-by"), MANAGED_BY.to_string()),
        (
            format!("{LABEL_DOMAIN}/environment"),
            environment.to_string(),
        ),
        (format!("{LABEL_DOMAIN}/observer"), observer.name.clone()),
    ]);
    // No label carries zoo.cfg's digest: a new zoo.cfg alone restarts ZooKeeper's container (the
    // rollout's `docker restart`), it does not change this file, so compose never recreates a
    // container for it.
    let exporter_labels = labels.clone();

    let logging = Logging::rotated(fleet.runtime.log_max_size_mib, fleet.runtime.log_max_files);
    let client_port = fleet.zookeeper.client_port;
    let mut zk_ports = vec![PortMapping::on(observer.address, client_port, client_port)];
    if let Metrics::Builtin { port } = fleet.metrics {
        zk_ports.push(PortMapping::on(observer.address, port, port));
    }
    let mut services = BTreeMap::new();
    services.insert(
        ZOOKEEPER_SERVICE.to_string(),
        Service {
            image: fleet.image.to_string(),
            restart: Restart::UnlessStopped,
            depends_on: vec![],
            command: vec![],
            environment: BTreeMap::from([
                (
                    "ZK_SERVER_HEAP".to_string(),
                    fleet.runtime.heap_mib.to_string(),
                ),
                ("ZOO_MY_ID".to_string(), observer.myid.to_string()),
                ("ZOO_DATA_DIR".to_string(), layout.data_dir.to_string()),
                (
                    "ZOO_DATA_LOG_DIR".to_string(),
                    layout.data_log_dir.to_string(),
                ),
            ]),
            ports: zk_ports,
            volumes: vec![
                BindMount::read_only(format!("./{ZOO_CFG_FILE}"), layout.config_file),
                BindMount::read_write(format!("./{DATA_DIR}"), layout.data_dir),
                BindMount::read_write(format!("./{DATA_LOG_DIR}"), layout.data_log_dir),
            ]
            .into_iter()
            .chain(
                crate::tls::secret_files(&fleet.quorum, observer.key_store.as_ref())
                    .iter()
                    .map(|f| {
                        BindMount::read_only(
                            format!("./{}", f.name),
                            crate::tls::in_container(f.name),
                        )
                    }),
            )
            .collect(),
            labels,
            sysctls: keepalive_sysctls(&fleet.runtime.keepalive),
            logging: logging.clone(),
        },
    );
    if let Metrics::Exporter {
        image,
        port,
        reset_on_scrape,
    } = &fleet.metrics
    {
        services.insert(
            EXPORTER_SERVICE.to_string(),
            Service {
                image: image.to_string(),
                restart: Restart::UnlessStopped,
                depends_on: vec![ZOOKEEPER_SERVICE.to_string()],
                command: vec![
                    format!("-bind-addr=:{port}"),
                    "-metrics-path=/metrics".to_string(),
                    format!("-zookeeper={ZOOKEEPER_SERVICE}:{client_port}"),
                    "-log-level=info".to_string(),
                    format!("-reset-on-scrape={reset_on_scrape}"),
                ],
                environment: BTreeMap::new(),
                ports: vec![PortMapping::on(observer.address, *port, *port)],
                volumes: vec![],
                labels: exporter_labels,
                sysctls: BTreeMap::new(),
                logging,
            },
        );
    }
    let file = ComposeFile { services };
    let header = format!(
        "# Rendered by {MANAGED_BY} for environment {environment}, observer {}.\n\
         # Do not edit on the host: `cargo xtask push` replaces this file.\n",
        observer.name
    );
    header + &serde_yaml::to_string(&file).expect("compose model serializes")
}

/// The keepalive timers as the container's `sysctls`.
fn keepalive_sysctls(k: &crate::observer::Keepalive) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "net.ipv4.tcp_keepalive_time".to_string(),
            k.idle_secs.to_string(),
        ),
        (
            "net.ipv4.tcp_keepalive_intvl".to_string(),
            k.interval_secs.to_string(),
        ),
        (
            "net.ipv4.tcp_keepalive_probes".to_string(),
            k.probes.to_string(),
        ),
    ])
}
