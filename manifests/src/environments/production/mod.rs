//! Production: the deployment of the runbook. A three-server ensemble deployed by helm (release
//! `xxx`) in `kube-public` on TKE, exposed through one internal CLB per pod, and two observers in
//! the classic network.

pub mod inventory;

use std::collections::BTreeMap;

use hosts::net::v4;
use hosts::{
    port, AdminServer, FourLetterWords, ImageRef, Metrics, ObserverFleet, ServerAddress, ZkVersion,
    ZooSettings,
};

use crate::environment::{Ensemble, EnsembleTls, Environment, EnvironmentKind, Monitoring};
use crate::provider::LoadBalancerProvider;

pub fn environment() -> Environment {
    Environment {
        name: "production".into(),
        kind: EnvironmentKind::Production,
        kube_context: "cls-xxxxxx-context-default".into(),
        ensemble: Ensemble {
            namespace: "kube-public".into(),
            helm_release: "xxx".into(),
            statefulset: "xxx-zookeeper".into(),
            replicas: 3,
            version: ZkVersion::minor(3, 8),
            quorum_port: port!(2888),
            election_port: port!(3888),
            reconfig_enabled: false,
            service_name_prefix: "zk".into(),
            // EXTERNAL-IP of zk0, zk1, zk2 as `kubectl -n kube-public get svc` showed them.
            recorded_addresses: BTreeMap::from([
                (0, ServerAddress::Ip(v4(10, 1, 0, 12))),
                (1, ServerAddress::Ip(v4(10, 1, 0, 13))),
                (2, ServerAddress::Ip(v4(10, 1, 0, 6))),
            ]),
            quorum_tls: EnsembleTls {
                secret: "xxx-zookeeper-quorum-tls".into(),
                mount_dir: "/quorum-tls".into(),
            },
        },
        load_balancer: LoadBalancerProvider::Tke {
            cluster_id: "cls-xxxxxx".into(),
            subnet_id: "subnet-xxxxxx".into(),
            // The runbook binds none: `check` warns until the CLB's security group is recorded.
            security_groups: vec![],
        },
        extra_source_ranges: vec![],
        fleet: ObserverFleet {
            observers: inventory::observers(),
            retired: inventory::retired(),
            jump: inventory::jump_hosts(),
            drift_key: inventory::drift_key(),
            // The runbook's values, with its mistakes corrected: purging on (`autopurge.purgeInterval`,
            // not the misspelt `purgeInteval`, and not 0), no `*` whitelist, AdminServer off,
            // keepalive on. This environment's own: changing them changes no other environment.
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
            image: ImageRef::new("zookeeper:3.8.6"),
            layout: hosts::observer::ImageLayout::OFFICIAL,
            metrics: Metrics::runbook_exporter(),
            runtime: hosts::observer::Runtime::recommended(),
            quorum: hosts::QuorumSecurity::Plaintext,
        },
        monitoring: Monitoring {
            namespace: "kube-public".into(),
            service_name: "xxx-zookeeper-external".into(),
            port_name: "zookeeperxp".into(),
            service_monitor_selector: BTreeMap::from([
                ("app".into(), "zookeeper".into()),
                ("release".into(), "xxx".into()),
                ("position".into(), "external".into()),
            ]),
            service_monitor: None,
        },
    }
}
