//! Production: the deployment of the runbook. A three-server ensemble deployed by helm (release
//! `xxx`) in `kube-public` on TKE, exposed through one internal CLB per pod, and two observers in
//! the classic network.

use std::collections::BTreeMap;

use hosts::net::v4;
use hosts::{port, ImageRef, Metrics, ObserverFleet, ServerAddress, ZkVersion, ZooSettings};

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
            observers: hosts::inventory::production::observers(),
            retired: hosts::inventory::production::retired(),
            jump: hosts::inventory::production::jump_hosts(),
            drift_key: hosts::inventory::production::drift_key(),
            zookeeper: ZooSettings::runbook(),
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
