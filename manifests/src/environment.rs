//! What an environment is: the in-cluster ensemble, how it is exposed, the observers, monitoring.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;

use hosts::{ObserverFleet, Port, ServerAddress, ServerId, ZkVersion};

use crate::provider::LoadBalancerProvider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentKind {
    /// A real environment. Tests never connect to it.
    Production,
    /// The local sandbox: every address is loopback or in the sandbox's network namespaces.
    Sandbox,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// A DNS-1123 label; the value of the environment label on everything this tool creates.
    pub name: String,
    pub kind: EnvironmentKind,
    /// The kubeconfig context the ensemble lives in. Commands refuse any other context.
    pub kube_context: String,
    pub ensemble: Ensemble,
    pub load_balancer: LoadBalancerProvider,
    /// Ranges allowed to reach the per-pod load balancers besides the observers' own /32s.
    pub extra_source_ranges: Vec<IpNet>,
    pub fleet: ObserverFleet,
    pub monitoring: Monitoring,
}

/// The ZooKeeper ensemble inside the cluster, as the helm chart deployed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ensemble {
    pub namespace: String,
    pub helm_release: String,
    /// Pods are `<statefulset>-<ordinal>`; the chart gives pod `n` the myid `n + 1`.
    pub statefulset: String,
    pub replicas: u32,
    /// The version the ensemble runs; the observers' image must be of the same minor version.
    pub version: ZkVersion,
    pub quorum_port: Port,
    pub election_port: Port,
    /// Whether the ensemble runs with `reconfigEnabled=true`. Such an ensemble turns an unlisted
    /// observer into a non-voting follower, so it is refused.
    pub reconfig_enabled: bool,
    /// The per-pod load-balancer Service of pod `n` is named `<prefix><n>`.
    pub service_name_prefix: String,
    /// The load-balancer address of each pod's Service, by pod ordinal, as last seen
    /// (`cargo xtask apply` reports them). Offline rendering of host files uses these.
    pub recorded_addresses: BTreeMap<u32, ServerAddress>,
    /// Where the participants read their quorum TLS stores (the ensemble's side of quorum TLS,
    /// rendered as an artifact: `crate::ensemble_tls`).
    pub quorum_tls: EnsembleTls,
}

/// The ensemble's quorum TLS material: one Secret, holding one key store the participants share
/// (hostname verification is off, so one certificate of the quorum's CA serves every pod) and
/// the trust store, mounted read-only at `mount_dir` in every participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnsembleTls {
    /// The Secret's name, in the ensemble's namespace (a DNS-1123 subdomain).
    pub secret: String,
    /// An absolute path in the participants' containers.
    pub mount_dir: String,
}

/// One ensemble member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub ordinal: u32,
    pub id: ServerId,
    pub pod_name: String,
    pub service_name: String,
}

impl Ensemble {
    pub fn participants(&self) -> Vec<Participant> {
        (0..self.replicas)
            .map(|ordinal| Participant {
                ordinal,
                id: ServerId(ordinal + 1),
                pod_name: format!("{}-{ordinal}", self.statefulset),
                service_name: format!("{}{ordinal}", self.service_name_prefix),
            })
            .collect()
    }

    pub fn max_participant_id(&self) -> ServerId {
        ServerId(self.replicas)
    }
}

/// Where the participants' load-balancer addresses come from when rendering host files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressSource {
    /// `Ensemble::recorded_addresses` (offline rendering, snapshots).
    Recorded,
    /// Addresses read from the live Services, by pod ordinal.
    Live(BTreeMap<u32, ServerAddress>),
}

/// How Prometheus finds the observers: a selector-less Service with Endpoints (and an
/// EndpointSlice) listing the observers' metrics port, labelled for an existing ServiceMonitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Monitoring {
    pub namespace: String,
    pub service_name: String,
    /// The port name on the Service, the Endpoints and the EndpointSlice, and the ServiceMonitor's
    /// `endpoints[].port`. An IANA service name: at most 15 characters.
    pub port_name: String,
    /// The ServiceMonitor's `spec.selector.matchLabels`; the Service carries all of them.
    pub service_monitor_selector: BTreeMap<String, String>,
    /// Also create the ServiceMonitor (needs the Prometheus Operator's CRD in the cluster).
    pub service_monitor: Option<ServiceMonitorSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceMonitorSpec {
    pub name: String,
    /// Prometheus duration, e.g. `30s`.
    pub interval: String,
}
