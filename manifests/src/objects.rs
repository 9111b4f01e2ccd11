//! The desired Kubernetes objects of an environment.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use hosts::Observer;

use crate::environment::Environment;
use crate::labels;
use crate::service_monitor::{self, NamespaceSelector, ScrapeEndpoint, Selector, ServiceMonitor};

/// The label the StatefulSet controller puts on each pod; the per-pod Services select it.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Annotation on each per-pod Service: the myid of the pod behind it.
pub const PARTICIPANT_ID_ANNOTATION: &str = "zk-observers.dev/participant-id";
/// Keeps the EndpointSlice mirroring controller from copying our Endpoints into a second slice:
/// we write the EndpointSlice ourselves, and two slices would give Prometheus duplicate targets.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const SLICE_SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// One object this tool owns. Few exist at a time, so the variants are not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Service(Service),
    Endpoints(Endpoints),
    EndpointSlice(discovery::EndpointSlice),
    ServiceMonitor(ServiceMonitor),
}

impl Object {
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Service(o) => &o.metadata,
            Object::Endpoints(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::ServiceMonitor(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Service(o) => &mut o.metadata,
            Object::Endpoints(o) => &mut o.metadata,
            Object::EndpointSlice(o) => &mut o.metadata,
            Object::ServiceMonitor(o) => &mut o.metadata,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Object::Service(_) => "Service",
            Object::Endpoints(_) => "Endpoints",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::ServiceMonitor(_) => service_monitor::KIND,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or_default()
    }

    /// `Kind/namespace/name`, for reports.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind(), self.namespace(), self.name())
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("Kubernetes objects serialize")
    }
}

fn meta(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    }
}

/// Every desired object, in a fixed order: the per-pod Services by ordinal, then the monitoring
/// Service, Endpoints, EndpointSlices and (if enabled) the ServiceMonitor. The monitoring objects
/// list every observer in the inventory.
pub fn desired_objects(env: &Environment) -> Vec<Object> {
    let mut objects = load_balancer_services(env);
    let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
    objects.extend(monitoring_objects(env, &observers));
    objects
}

/// The loadBalancerSourceRanges of the per-pod Services: each observer's egress addresses (its
/// own address unless its traffic is NAT'd) as /32 (or /128), and the extra ranges, sorted and
/// de-duplicated.
pub fn source_ranges(env: &Environment) -> Vec<String> {
    source_ranges_with(env, &[])
}

/// [`source_ranges`], with the egress addresses of `retiring` too: retired observers that still
/// run, whose traffic a deploy lets through until it has retired them (cutting one off first would
/// stop it before the observers in service are confirmed healthy).
pub fn source_ranges_with(env: &Environment, retiring: &[&Observer]) -> Vec<String> {
    let mut ranges: Vec<ipnet::IpNet> = env
        .fleet
        .observers
        .iter()
        .chain(retiring.iter().copied())
        .flat_map(|o| o.egress_addresses())
        .map(ipnet::IpNet::from)
        .collect();
    ranges.extend(env.extra_source_ranges.iter().copied());
    ranges.sort();
    ranges.dedup();
    ranges.iter().map(ToString::to_string).collect()
}

/// One internal LoadBalancer Service per ensemble pod, exposing the quorum and election ports.
pub fn load_balancer_services(env: &Environment) -> Vec<Object> {
    load_balancer_services_with(env, &[])
}

/// [`load_balancer_services`] whose source ranges let `retiring` through too (see
/// [`source_ranges_with`]).
pub fn load_balancer_services_with(env: &Environment, retiring: &[&Observer]) -> Vec<Object> {
    let e = &env.ensemble;
    let ranges = source_ranges_with(env, retiring);
    e.participants()
        .into_iter()
        .map(|p| {
            let mut annotations = env.load_balancer.annotations();
            annotations.insert(PARTICIPANT_ID_ANNOTATION.to_string(), p.id.to_string());
            Object::Service(Service {
                metadata: meta(
                    &p.service_name,
                    &e.namespace,
                    labels::recommended(env, labels::COMPONENT_LOAD_BALANCER),
                    annotations,
                ),
                spec: Some(ServiceSpec {
                    type_: Some("LoadBalancer".into()),
                    selector: Some(BTreeMap::from([(
                        POD_NAME_LABEL.to_string(),
                        p.pod_name.clone(),
                    )])),
                    ports: Some(vec![
                        tcp_port("tcp-quorum", e.quorum_port.get()),
                        tcp_port("tcp-election", e.election_port.get()),
                    ]),
                    load_balancer_source_ranges: Some(ranges.clone()),
                    // A participant stays behind its load balancer while its pod is not ready
                    // (during an election, exactly when observers need to reach it): the
                    // Endpoints controller then lists it as an address, not a notReadyAddress.
                    publish_not_ready_addresses: Some(true),
                    ..ServiceSpec::default()
                }),
                status: None,
            })
        })
        .collect()
}

fn tcp_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port: i32::from(port),
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(i32::from(port))),
        ..ServicePort::default()
    }
}

/// The labels of the monitoring Service, Endpoints and EndpointSlices: the recommended labels,
/// then the ServiceMonitor's selector labels where they do not collide (a collision is reported by
/// validation, because the ServiceMonitor would then not select the Service).
pub fn monitoring_labels(env: &Environment) -> BTreeMap<String, String> {
    let mut l = labels::recommended(env, labels::COMPONENT_METRICS);
    for (k, v) in &env.monitoring.service_monitor_selector {
        l.entry(k.clone()).or_insert_with(|| v.clone());
    }
    l
}

/// The selector-less Service, its Endpoints and EndpointSlices, and the optional ServiceMonitor,
/// listing `observers` (all of them when rendering; the healthy ones during a deploy).
pub fn monitoring_objects(env: &Environment, observers: &[&Observer]) -> Vec<Object> {
    let m = &env.monitoring;
    let port = env.fleet.metrics.port().get();
    let labels = monitoring_labels(env);
    let mut objects = Vec::new();

    objects.push(Object::Service(Service {
        metadata: meta(
            &m.service_name,
            &m.namespace,
            labels.clone(),
            BTreeMap::new(),
        ),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(vec![ServicePort {
                name: Some(m.port_name.clone()),
                port: i32::from(port),
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(i32::from(port))),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }));

    // Prometheus scrapes each observer where it can reach the exporter.
    let mut addresses: Vec<IpAddr> = observers.iter().map(|o| o.scrape_address()).collect();
    addresses.sort();
    let by_name: BTreeMap<IpAddr, &str> = observers
        .iter()
        .map(|o| (o.scrape_address(), o.name.as_str()))
        .collect();

    let mut endpoints_labels = labels.clone();
    endpoints_labels.insert(SKIP_MIRROR_LABEL.to_string(), "true".into());
    objects.push(Object::Endpoints(Endpoints {
        metadata: meta(
            &m.service_name,
            &m.namespace,
            endpoints_labels,
            BTreeMap::new(),
        ),
        subsets: (!addresses.is_empty()).then(|| {
            vec![EndpointSubset {
                addresses: Some(
                    addresses
                        .iter()
                        .map(|ip| EndpointAddress {
                            ip: ip.to_string(),
                            hostname: Some(by_name[ip].to_string()),
                            ..EndpointAddress::default()
                        })
                        .collect(),
                ),
                ports: Some(vec![EndpointPort {
                    name: Some(m.port_name.clone()),
                    port: i32::from(port),
                    protocol: Some("TCP".into()),
                    ..EndpointPort::default()
                }]),
                ..EndpointSubset::default()
            }]
        }),
    }));

    // One slice per address family, as EndpointSlices require.
    for (family, suffix) in [("IPv4", "ipv4"), ("IPv6", "ipv6")] {
        let members: Vec<&IpAddr> = addresses
            .iter()
            .filter(|ip| ip.is_ipv4() == (family == "IPv4"))
            .collect();
        if members.is_empty() && family == "IPv6" {
            continue;
        }
        let mut slice_labels = labels.clone();
        slice_labels.insert(SLICE_SERVICE_NAME_LABEL.to_string(), m.service_name.clone());
        slice_labels.insert(
            SLICE_MANAGED_BY_LABEL.to_string(),
            hosts::MANAGED_BY.to_string(),
        );
        objects.push(Object::EndpointSlice(discovery::EndpointSlice {
            metadata: meta(
                &format!("{}-{suffix}", m.service_name),
                &m.namespace,
                slice_labels,
                BTreeMap::new(),
            ),
            address_type: family.to_string(),
            endpoints: members
                .iter()
                .map(|ip| discovery::Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(discovery::EndpointConditions {
                        ready: Some(true),
                        ..Default::default()
                    }),
                    hostname: Some(by_name[*ip].to_string()),
                    ..discovery::Endpoint::default()
                })
                .collect(),
            ports: Some(vec![discovery::EndpointPort {
                name: Some(m.port_name.clone()),
                port: Some(i32::from(port)),
                protocol: Some("TCP".into()),
                ..discovery::EndpointPort::default()
            }]),
        }));
    }

    if let Some(sm) = &m.service_monitor {
        objects.push(Object::ServiceMonitor(ServiceMonitor {
            api_version: service_monitor::API_VERSION.into(),
            kind: service_monitor::KIND.into(),
            metadata: meta(
                &sm.name,
                &m.namespace,
                labels::recommended(env, labels::COMPONENT_METRICS),
                BTreeMap::new(),
            ),
            spec: service_monitor::ServiceMonitorSpec {
                selector: Selector {
                    match_labels: m.service_monitor_selector.clone(),
                },
                namespace_selector: NamespaceSelector {
                    match_names: vec![m.namespace.clone()],
                },
                endpoints: vec![ScrapeEndpoint {
                    port: m.port_name.clone(),
                    path: "/metrics".into(),
                    interval: sm.interval.clone(),
                }],
            },
        }));
    }
    objects
}
