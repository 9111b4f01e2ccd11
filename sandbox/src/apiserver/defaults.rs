//! Server-side defaulting and the address/port allocators. Defaulting only fills what is
//! missing. Two kinds, as in kube-apiserver:
//! - scheme defaults (`pkg/apis/core/v1/defaults.go`, `SetDefaults_Service` and friends), applied
//!   when a request body is decoded: `type`, `sessionAffinity`, ports' `protocol` and
//!   `targetPort`, traffic policies, `allocateLoadBalancerNodePorts`. A create or update counts
//!   them as set by the writer, so its manager owns them (`handlers/create.go` runs the field
//!   manager on the decoded, defaulted object);
//! - registry allocations (`pkg/registry/core/service/storage`): cluster IPs, IP families, node
//!   ports, the empty `status.loadBalancer`. Nobody owns them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use super::resources::Resource;
use super::util::map_entry;

const NODE_PORT_MIN: i64 = 30000;
const NODE_PORT_MAX: i64 = 32767;
/// First cluster IP handed out: 10.96.0.10 (.0 and .1 are reserved like in a real cluster).
const CLUSTER_IP_FIRST: u32 = 10;
const CLUSTER_IP_LAST: u32 = 65534;
/// 198.18.0.100, the first address of the simulated load-balancer pool.
const LB_POOL_FIRST: u32 = u32::from_be_bytes([198, 18, 0, 100]);

/// Cluster IPs, node ports and load-balancer addresses. Cluster IPs and node ports are remembered
/// per Service name ("namespace/name"), so they are stable across updates, type changes and even
/// re-creation; load-balancer addresses per Service uid, so a re-created Service gets a new one,
/// as from a cloud.
#[derive(Debug)]
pub(crate) struct Allocator {
    cluster_ips: HashMap<String, String>,
    used_ips: HashSet<String>,
    next_ip: u32,
    node_ports: HashMap<(String, i64, String), i64>,
    used_node_ports: HashSet<i64>,
    next_node_port: i64,
    /// uid -> address (or hostname) given to that Service.
    lb_by_uid: HashMap<String, String>,
    /// Service keys whose configured address has been handed out (to their first incarnation).
    lb_configured_used: HashSet<String>,
    next_lb: u32,
}

/// What the simulated cloud hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// `status.loadBalancer.ingress[].ip` (GKE, AKS, TKE, AWS with IP targets and an EIP).
    Ip,
    /// `status.loadBalancer.ingress[].hostname` only, as AWS ELB/NLB give.
    Hostname,
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator {
            cluster_ips: HashMap::new(),
            used_ips: HashSet::new(),
            next_ip: CLUSTER_IP_FIRST,
            node_ports: HashMap::new(),
            used_node_ports: HashSet::new(),
            next_node_port: NODE_PORT_MIN,
            lb_by_uid: HashMap::new(),
            lb_configured_used: HashSet::new(),
            next_lb: 0,
        }
    }
}

impl Allocator {
    /// The cluster IP of Service `key`; a new one is only reserved when `commit` (dry runs peek).
    fn cluster_ip(&mut self, key: &str, commit: bool) -> String {
        if let Some(ip) = self.cluster_ips.get(key) {
            return ip.clone();
        }
        let mut off = self.next_ip;
        for _ in CLUSTER_IP_FIRST..=CLUSTER_IP_LAST {
            let ip = format!("10.96.{}.{}", off >> 8, off & 255);
            if !self.used_ips.contains(&ip) {
                if commit {
                    self.record_cluster_ip(key, &ip);
                    self.next_ip = if off >= CLUSTER_IP_LAST {
                        CLUSTER_IP_FIRST
                    } else {
                        off + 1
                    };
                }
                return ip;
            }
            off = if off >= CLUSTER_IP_LAST {
                CLUSTER_IP_FIRST
            } else {
                off + 1
            };
        }
        // Pool exhausted (65k Services): share the last address rather than fail.
        "10.96.255.254".to_string()
    }

    fn record_cluster_ip(&mut self, key: &str, ip: &str) {
        self.cluster_ips.insert(key.to_string(), ip.to_string());
        self.used_ips.insert(ip.to_string());
    }

    fn node_port(&mut self, key: &str, port: i64, protocol: &str, commit: bool) -> i64 {
        let k = (key.to_string(), port, protocol.to_string());
        if let Some(p) = self.node_ports.get(&k) {
            return *p;
        }
        let mut candidate = self.next_node_port;
        for _ in NODE_PORT_MIN..=NODE_PORT_MAX {
            if !self.used_node_ports.contains(&candidate) {
                if commit {
                    self.node_ports.insert(k, candidate);
                    self.used_node_ports.insert(candidate);
                    self.next_node_port = if candidate >= NODE_PORT_MAX {
                        NODE_PORT_MIN
                    } else {
                        candidate + 1
                    };
                }
                return candidate;
            }
            candidate = if candidate >= NODE_PORT_MAX {
                NODE_PORT_MIN
            } else {
                candidate + 1
            };
        }
        NODE_PORT_MAX
    }

    fn record_node_port(&mut self, key: &str, port: i64, protocol: &str, node_port: i64) {
        self.node_ports
            .insert((key.to_string(), port, protocol.to_string()), node_port);
        self.used_node_ports.insert(node_port);
    }

    /// The load-balancer address (or hostname) of the Service `key` ("namespace/name") with
    /// `uid`: the configured one for the first Service of that name, else the next of the pool
    /// (198.18.0.100, .101, ... or `<name>-<n>.<namespace>.elb.sandbox.test`). Stable for one uid;
    /// a re-created Service (new uid) gets a new one.
    pub(crate) fn lb_address(
        &mut self,
        key: &str,
        uid: &str,
        configured: &BTreeMap<String, String>,
        ingress: Ingress,
    ) -> String {
        if let Some(a) = self.lb_by_uid.get(uid) {
            return a.clone();
        }
        let addr = match configured.get(key) {
            Some(a) if self.lb_configured_used.insert(key.to_string()) => a.clone(),
            _ => {
                let n = self.next_lb;
                self.next_lb += 1;
                match ingress {
                    Ingress::Ip => Ipv4Addr::from(LB_POOL_FIRST.wrapping_add(n)).to_string(),
                    Ingress::Hostname => {
                        let (ns, name) = key.split_once('/').unwrap_or(("default", key));
                        format!("{name}-{n}.{ns}.elb.sandbox.test")
                    }
                }
            }
        };
        self.lb_by_uid.insert(uid.to_string(), addr.clone());
        addr
    }
}

/// Sets `map[key] = value` when it is missing or null.
fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// Fills server defaults into `obj` (a `res` object named `key` = "namespace/name"): the scheme
/// defaults, then the registry's allocations. Allocations are reserved only when `commit` is true.
pub(crate) fn apply_defaults(
    res: &Resource,
    obj: &mut Value,
    key: &str,
    alloc: &mut Allocator,
    commit: bool,
) {
    scheme_defaults(res, obj);
    if res.kind == "Service" {
        if let Some(root) = obj.as_object_mut() {
            allocate_service(root, key, alloc, commit);
        }
    }
}

/// The defaults a real server applies when it decodes a request body: what a create or update
/// by a manager is counted as having set.
pub(crate) fn scheme_defaults(res: &Resource, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match res.kind {
        "Service" => default_service(root),
        "Endpoints" => {
            if let Some(subsets) = root.get_mut("subsets").and_then(Value::as_array_mut) {
                for subset in subsets {
                    default_port_protocols(subset.get_mut("ports"));
                }
            }
        }
        "EndpointSlice" => default_port_protocols(root.get_mut("ports")),
        _ => {}
    }
}

fn default_port_protocols(ports: Option<&mut Value>) {
    if let Some(ports) = ports.and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(port, "protocol", json!("TCP"));
        }
    }
}

fn service_type(spec: &Map<String, Value>) -> String {
    spec.get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string()
}

/// `SetDefaults_Service` (pkg/apis/core/v1/defaults.go).
fn default_service(root: &mut Map<String, Value>) {
    let spec = map_entry(root, "spec");
    default(spec, "type", json!("ClusterIP"));
    let ty = service_type(spec);
    default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let cfg = map_entry(map_entry(spec, "sessionAffinityConfig"), "clientIP");
        default(cfg, "timeoutSeconds", json!(10800));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                default(port, "targetPort", p);
            }
        }
    }
    let external = ty == "NodePort" || ty == "LoadBalancer";
    if external {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    } else {
        spec.remove("externalTrafficPolicy");
    }
    if ty != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    } else {
        spec.remove("allocateLoadBalancerNodePorts");
    }
}

/// The registry's part: cluster IPs and families, node ports, health-check node port, status.
fn allocate_service(root: &mut Map<String, Value>, key: &str, alloc: &mut Allocator, commit: bool) {
    let spec = map_entry(root, "spec");
    let ty = service_type(spec);
    if ty == "ExternalName" {
        for f in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ] {
            spec.remove(f);
        }
    } else {
        let ip = match spec.get("clusterIP").and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => {
                if commit && ip != "None" {
                    alloc.record_cluster_ip(key, ip);
                }
                ip.to_string()
            }
            _ => alloc.cluster_ip(key, commit),
        };
        spec.insert("clusterIP".into(), json!(ip));
        default(spec, "clusterIPs", json!([ip]));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    let external = ty == "NodePort" || ty == "LoadBalancer";
    let allocate_node_ports = external
        && !(ty == "LoadBalancer"
            && spec.get("allocateLoadBalancerNodePorts") == Some(&json!(false)));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if !external {
                port.remove("nodePort");
                continue;
            }
            let (Some(p), Some(proto)) = (
                port.get("port").and_then(Value::as_i64),
                port.get("protocol")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ) else {
                continue;
            };
            match port.get("nodePort").and_then(Value::as_i64) {
                Some(np) if commit => alloc.record_node_port(key, p, &proto, np),
                Some(_) => {}
                None if allocate_node_ports => {
                    port.insert(
                        "nodePort".into(),
                        json!(alloc.node_port(key, p, &proto, commit)),
                    );
                }
                None => {}
            }
        }
    }
    let local_lb =
        ty == "LoadBalancer" && spec.get("externalTrafficPolicy") == Some(&json!("Local"));
    match spec.get("healthCheckNodePort").and_then(Value::as_i64) {
        _ if !local_lb => {
            spec.remove("healthCheckNodePort");
        }
        Some(np) if commit => alloc.record_node_port(key, 0, "healthCheck", np),
        Some(_) => {}
        None => {
            let np = alloc.node_port(key, 0, "healthCheck", commit);
            spec.insert("healthCheckNodePort".into(), json!(np));
        }
    }
    map_entry(map_entry(root, "status"), "loadBalancer");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::{ENDPOINT_SLICES, SERVICES};

    #[test]
    fn service_defaults_fill_only_missing_fields() {
        let mut alloc = Allocator::default();
        let mut svc = json!({"metadata": {"name": "zk"}, "spec": {"type": "LoadBalancer",
            "ports": [{"name": "client", "port": 2181}, {"name": "quorum", "port": 2888, "targetPort": 2889, "nodePort": 31000}]}});
        apply_defaults(&SERVICES, &mut svc, "ns/zk", &mut alloc, true);
        assert_eq!(
            svc["spec"],
            json!({
                "type": "LoadBalancer",
                "sessionAffinity": "None",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "externalTrafficPolicy": "Cluster",
                "allocateLoadBalancerNodePorts": true,
                "ports": [
                    {"name": "client", "port": 2181, "protocol": "TCP", "targetPort": 2181, "nodePort": 30000},
                    {"name": "quorum", "port": 2888, "protocol": "TCP", "targetPort": 2889, "nodePort": 31000},
                ],
            })
        );
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));

        // Turning it into a ClusterIP Service drops the type-dependent fields; turning it back
        // gives the same node port, and the cluster IP never changes.
        svc["spec"]["type"] = json!("ClusterIP");
        apply_defaults(&SERVICES, &mut svc, "ns/zk", &mut alloc, true);
        assert!(svc["spec"]["ports"][0].get("nodePort").is_none());
        assert!(svc["spec"].get("externalTrafficPolicy").is_none());
        svc["spec"]["type"] = json!("NodePort");
        svc["spec"].as_object_mut().unwrap().remove("clusterIP");
        apply_defaults(&SERVICES, &mut svc, "ns/zk", &mut alloc, true);
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.10");
        assert!(svc["spec"].get("healthCheckNodePort").is_none());

        // LoadBalancer with externalTrafficPolicy Local also gets a health-check node port.
        svc["spec"]["type"] = json!("LoadBalancer");
        svc["spec"]["externalTrafficPolicy"] = json!("Local");
        apply_defaults(&SERVICES, &mut svc, "ns/zk", &mut alloc, true);
        assert_eq!(svc["spec"]["healthCheckNodePort"], 30001);
    }

    #[test]
    fn dry_run_allocation_reserves_nothing() {
        let mut alloc = Allocator::default();
        let mut a = json!({"spec": {"ports": [{"port": 1}]}});
        apply_defaults(&SERVICES, &mut a, "ns/a", &mut alloc, false);
        let mut b = json!({"spec": {"ports": [{"port": 1}]}});
        apply_defaults(&SERVICES, &mut b, "ns/b", &mut alloc, true);
        assert_eq!(a["spec"]["clusterIP"], b["spec"]["clusterIP"]);
        let mut a2 = json!({"spec": {"ports": [{"port": 1}]}});
        apply_defaults(&SERVICES, &mut a2, "ns/a", &mut alloc, true);
        assert_eq!(a2["spec"]["clusterIP"], "10.96.0.11");
    }

    #[test]
    fn endpoint_slice_port_protocol() {
        let mut alloc = Allocator::default();
        let mut s = json!({"addressType": "IPv4", "ports": [{"port": 2181}, {"port": 53, "protocol": "UDP"}]});
        apply_defaults(&ENDPOINT_SLICES, &mut s, "ns/s", &mut alloc, true);
        assert_eq!(
            s["ports"],
            json!([{"port": 2181, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
        );
    }

    #[test]
    fn lb_addresses_are_per_incarnation() {
        let mut alloc = Allocator::default();
        let configured = BTreeMap::from([("ns/fixed".to_string(), "198.18.5.5".to_string())]);
        let ip = Ingress::Ip;
        assert_eq!(
            alloc.lb_address("ns/a", "u1", &configured, ip),
            "198.18.0.100"
        );
        assert_eq!(
            alloc.lb_address("ns/fixed", "u2", &configured, ip),
            "198.18.5.5"
        );
        assert_eq!(
            alloc.lb_address("ns/b", "u3", &configured, ip),
            "198.18.0.101"
        );
        assert_eq!(
            alloc.lb_address("ns/a", "u1", &configured, ip),
            "198.18.0.100"
        );
        // Re-created (new uid): a new address, even for a configured one.
        assert_eq!(
            alloc.lb_address("ns/fixed", "u4", &configured, ip),
            "198.18.0.102"
        );
        assert_eq!(
            alloc.lb_address("ns/c", "u5", &configured, Ingress::Hostname),
            "c-3.ns.elb.sandbox.test"
        );
    }

    #[test]
    fn scheme_defaults_leave_allocations_to_the_registry() {
        let mut svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 2888}]}});
        scheme_defaults(&SERVICES, &mut svc);
        assert_eq!(
            svc["spec"],
            json!({"type": "LoadBalancer", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                   "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": true,
                   "ports": [{"port": 2888, "protocol": "TCP", "targetPort": 2888}]})
        );
    }
}
