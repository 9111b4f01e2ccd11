//! Sandbox: the local environment that the tests and `cargo xtask demo` deploy to. The Kubernetes
//! API test server stands in for the cluster; the ensemble's load balancers and the observers are
//! network namespaces on this machine, in 198.18.0.0/15.

pub mod inventory;

use std::collections::BTreeMap;

use hosts::net::v4;
use hosts::{
    port, AdminServer, FourLetterWords, ImageRef, Metrics, ObserverFleet, ServerAddress, ZkVersion,
    ZooSettings,
};

use crate::environment::{
    Ensemble, EnsembleTls, Environment, EnvironmentKind, Monitoring, ServiceMonitorSpec,
};
use crate::provider::LoadBalancerProvider;

pub fn environment() -> Environment {
    Environment {
        name: "sandbox".into(),
        kind: EnvironmentKind::Sandbox,
        kube_context: "zk-observers-sandbox".into(),
        ensemble: Ensemble {
            namespace: "zookeeper".into(),
            helm_release: "sandbox".into(),
            statefulset: "sandbox-zookeeper".into(),
            replicas: 3,
            version: ZkVersion::minor(3, 8),
            quorum_port: port!(2888),
            election_port: port!(3888),
            reconfig_enabled: false,
            service_name_prefix: "zk".into(),
            recorded_addresses: BTreeMap::from([
                (0, ServerAddress::Ip(v4(198, 18, 0, 11))),
                (1, ServerAddress::Ip(v4(198, 18, 0, 12))),
                (2, ServerAddress::Ip(v4(198, 18, 0, 13))),
            ]),
            // The sandbox's participants read the stores the sandbox makes there at start.
            quorum_tls: EnsembleTls {
                secret: "sandbox-zookeeper-quorum-tls".into(),
                mount_dir: format!("{}/ensemble", inventory::TLS_DIR),
            },
        },
        load_balancer: LoadBalancerProvider::Sandbox,
        extra_source_ranges: vec![],
        fleet: ObserverFleet {
            observers: inventory::observers(),
            retired: inventory::retired(),
            jump: inventory::jump_hosts(),
            drift_key: inventory::drift_key(),
            // The same values as production's (the runbook's, corrected), stated here: the sandbox
            // tests what production runs.
            zookeeper: ZooSettings {
                tick_time_ms: 2000,
                init_limit: 5,
                sync_limit: 10,
                client_port: port!(2181),
                max_client_cnxns: 60,
                min_session_timeout_ms: 4000,
                max_session_timeout_ms: 40000,
                autopurge_snap_retain_count: 3,
                autopurge_purge_interval_hours: 24,
                four_letter_words: FourLetterWords::default(),
                admin_server: AdminServer::Disabled,
                tcp_keep_alive: true,
            },
            // Built locally from Debian's zookeeper 3.8.0 package with the official image's layout.
            image: ImageRef::new("zk-observers/zookeeper:3.8.0-debian12"),
            layout: hosts::observer::ImageLayout::OFFICIAL,
            metrics: Metrics::Exporter {
                image: ImageRef::new("zk-observers/zookeeper-exporter:1.0.0-standin"),
                port: port!(9141),
                reset_on_scrape: true,
            },
            // Small JVMs: up to twenty observers share this machine's two cores in the bench.
            runtime: hosts::observer::Runtime {
                heap_mib: 160,
                ..hosts::observer::Runtime::recommended()
            },
            // Quorum TLS with the private CA the sandbox makes when it starts.
            quorum: hosts::QuorumSecurity::Tls {
                trust_store: inventory::tls_store("truststore"),
            },
        },
        monitoring: Monitoring {
            namespace: "zookeeper".into(),
            service_name: "sandbox-zookeeper-external".into(),
            port_name: "zookeeperxp".into(),
            service_monitor_selector: BTreeMap::from([
                ("app".into(), "zookeeper".into()),
                ("release".into(), "sandbox".into()),
                ("position".into(), "external".into()),
            ]),
            service_monitor: Some(ServiceMonitorSpec {
                name: "sandbox-zookeeper-external".into(),
                interval: "30s".into(),
            }),
        },
    }
}
