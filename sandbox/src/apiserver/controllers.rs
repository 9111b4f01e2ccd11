//! The controllers of a real cluster that write objects next to a client's, simulated as one task
//! in the server's runtime that looks at the stored objects every [`POLL_INTERVAL`]:
//!
//! - the cloud load-balancer controller (`staging/src/k8s.io/cloud-provider/controllers/service/
//!   controller.go`): finalizer, ingress address or hostname, delayed release on deletion;
//! - the Endpoints controller (`pkg/controller/endpoint/endpoints_controller.go`);
//! - the EndpointSlice controller (`pkg/controller/endpointslice`, with
//!   `staging/src/k8s.io/endpointslice/utils.go` for labels);
//! - the EndpointSlice mirroring controller (`pkg/controller/endpointslicemirroring`);
//! - the garbage collector, for dependents whose owners are gone (`ownerReferences`).
//!
//! Every change goes through the same write pipeline as a client's (as Updates, so the
//! controllers own what they write) and is counted in `Stats::controller_writes`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::MissedTickBehavior;

use super::defaults::Ingress;
use super::resources::{Resource, ENDPOINTS, ENDPOINT_SLICES, SERVICES};
use super::ssa::Scope;
use super::store::{finalizers_of, Actor, State, Stored, WriteOptions};
use super::util::meta_str;
use super::Shared;

/// How often the controllers look at the objects.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The field manager of the cloud controller (cloud-controller-manager's service controller).
pub(crate) const CLOUD_CONTROLLER: &str = "cloud-controller-manager";
/// The field manager of the Endpoints, EndpointSlice and mirroring controllers and the garbage
/// collector: they run in kube-controller-manager, whose user agent names its writes.
pub(crate) const KUBE_CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// `servicehelper.LoadBalancerCleanupFinalizer` (staging/src/k8s.io/cloud-provider/service/helpers).
pub const LB_CLEANUP_FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
/// `endpoints_controller.go`: `LabelManagedBy` / `ControllerName`.
pub const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
/// `discovery/v1` well-known labels.
pub const SLICE_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const SLICE_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const MIRRORING_CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";
/// `v1.IsHeadlessService`.
pub const HEADLESS: &str = "service.kubernetes.io/headless";
const LEADER_ELECTION_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Which of the kube-controller-manager controllers run. A real cluster runs all three; a test
/// that needs the other case switches one off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controllers {
    pub endpoints: bool,
    pub endpoint_slices: bool,
    pub mirroring: bool,
}

impl Controllers {
    pub const ALL: Controllers = Controllers {
        endpoints: true,
        endpoint_slices: true,
        mirroring: true,
    };
    pub const NONE: Controllers = Controllers {
        endpoints: false,
        endpoint_slices: false,
        mirroring: false,
    };
}

/// A pod the Endpoints and EndpointSlice controllers see (the test server serves no pods; they
/// are configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ip: IpAddr,
    pub node: String,
}

/// The controllers' configuration, fixed for a server's life.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub lb_after: Option<Duration>,
    pub ingress: Ingress,
    pub lb_cleanup: Duration,
    pub lb_addresses: BTreeMap<String, String>,
    pub controllers: Controllers,
    /// Pods with a uid each.
    pub pods: Vec<(Pod, String)>,
    pub firewall: Option<super::Firewall>,
}

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut programmed: Option<Vec<super::LbRule>> = None;
    let mut seen: Option<u64> = None;
    loop {
        tick.tick().await;
        // Like informers, the controllers act on changes: nothing written and no timer running
        // (5,000 unchanged foreign Services) costs a tick nothing.
        let rules = {
            let mut st = shared.state();
            if seen == Some(st.resource_version()) && !st.timers_pending && !st.pods_changed {
                continue;
            }
            st.pods_changed = false;
            st.controllers_tick(&shared.setup);
            seen = Some(st.resource_version());
            shared.setup.firewall.as_ref().map(|_| st.firewall_rules())
        };
        // The cloud's firewall follows the Services, outside the state's lock.
        if let (Some(firewall), Some(rules)) = (&shared.setup.firewall, rules) {
            if programmed.as_ref() != Some(&rules) {
                (firewall.0)(&rules);
                programmed = Some(rules);
            }
        }
    }
}

fn controller(manager: &'static str) -> WriteOptions<'static> {
    WriteOptions {
        manager,
        dry_run: false,
        scope: Scope::Main,
        actor: Actor::Controller,
    }
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A Service's selector, when it has one (`nil` and `{}` both count as none here).
fn selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let m = svc["spec"]["selector"].as_object()?;
    (!m.is_empty()).then(|| {
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()
    })
}

fn owner_ref(api_version: &str, kind: &str, obj: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta_str(obj, "name").unwrap_or(""),
        "uid": meta_str(obj, "uid").unwrap_or(""),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `spec.publishNotReadyAddresses` of a Service.
fn publishes_not_ready(svc: &Value) -> bool {
    svc["spec"]["publishNotReadyAddresses"] == Value::Bool(true)
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The parts of an object a controller compares before it writes.
fn same(stored: &Stored, want: &Value, fields: &[&str]) -> bool {
    labels(&stored.object) == labels(want)
        && fields.iter().all(|f| {
            let have = stored.object.get(*f).cloned().unwrap_or(Value::Null);
            let want = want.get(*f).cloned().unwrap_or(Value::Null);
            have == want || (have == json!([]) && want.is_null())
        })
}

impl State {
    pub(crate) fn controllers_tick(&mut self, setup: &Setup) {
        self.load_balancer_tick(setup);
        if setup.controllers.endpoints {
            self.endpoints_tick(setup);
        }
        if setup.controllers.endpoint_slices {
            self.endpoint_slices_tick(setup);
        }
        if setup.controllers.mirroring {
            self.mirroring_tick();
        }
        self.garbage_collector_tick();
    }

    /// (namespace, name, stored) of every object of `res`.
    fn all_of(&self, res: &Resource) -> Vec<(String, String, Stored)> {
        let r = res.qualified();
        self.objects
            .iter()
            .filter(|((kr, _, _), _)| *kr == r)
            .map(|((_, ns, name), s)| (ns.clone(), name.clone(), s.clone()))
            .collect()
    }

    fn write(
        &mut self,
        res: &Resource,
        ns: &str,
        name: Option<&str>,
        body: &Value,
        who: &'static str,
    ) {
        let opts = controller(who);
        let result = match name {
            Some(n) => self.replace(res, ns, n, body, opts),
            None => self.create(res, ns, body, opts),
        };
        if let Err(e) = result {
            tracing::warn!("sandbox {who} could not write {} in {ns}: {e}", res.kind);
        }
    }

    fn remove(&mut self, res: &Resource, ns: &str, name: &str) {
        if let Err(e) = self.delete(res, ns, name, None, false, Actor::Controller) {
            tracing::warn!(
                "sandbox controller could not delete {} {ns}/{name}: {e}",
                res.kind
            );
        }
    }

    /// The cloud's service controller: a LoadBalancer Service first gets the cleanup finalizer,
    /// then (after the provisioning delay) its ingress; a Service that is no longer of type
    /// LoadBalancer loses both; a deleted one keeps existing until the load balancer is released
    /// (`lb_cleanup` after the DELETE), when the finalizer is removed.
    fn load_balancer_tick(&mut self, setup: &Setup) {
        self.timers_pending = false;
        for (ns, name, s) in self.all_of(&SERVICES) {
            let is_lb = s.object["spec"]["type"] == "LoadBalancer";
            let ingress = &s.object["status"]["loadBalancer"]["ingress"];
            let has_ingress = ingress.as_array().is_some_and(|a| !a.is_empty());
            let finalizers = s.finalizers();
            let has_finalizer = finalizers.iter().any(|f| f == LB_CLEANUP_FINALIZER);
            if let Some(since) = s.deleting_since {
                if has_finalizer && since.elapsed() >= setup.lb_cleanup {
                    self.set_lb_finalizer(&ns, &name, &s, false);
                } else if has_finalizer {
                    self.timers_pending = true;
                }
                continue;
            }
            let s = if is_lb && !has_finalizer {
                self.set_lb_finalizer(&ns, &name, &s, true);
                match self.peek(&SERVICES, &ns, &name) {
                    Some(s) => s.clone(),
                    None => continue,
                }
            } else {
                s
            };
            if is_lb && !has_ingress && setup.lb_after.is_some_and(|d| s.created.elapsed() < d) {
                self.timers_pending = true;
            }
            let status = if is_lb
                && !has_ingress
                && setup.lb_after.is_some_and(|d| s.created.elapsed() >= d)
            {
                let uid = meta_str(&s.object, "uid").unwrap_or("").to_string();
                let a = self.alloc.lb_address(
                    &format!("{ns}/{name}"),
                    &uid,
                    &setup.lb_addresses,
                    setup.ingress,
                );
                match setup.ingress {
                    Ingress::Ip => {
                        json!({"loadBalancer": {"ingress": [{"ip": a, "ipMode": "VIP"}]}})
                    }
                    Ingress::Hostname => json!({"loadBalancer": {"ingress": [{"hostname": a}]}}),
                }
            } else if !is_lb && has_ingress {
                json!({"loadBalancer": {}})
            } else {
                if !is_lb && has_finalizer {
                    self.set_lb_finalizer(&ns, &name, &s, false);
                }
                continue;
            };
            let opts = WriteOptions {
                scope: Scope::Status,
                ..controller(CLOUD_CONTROLLER)
            };
            if let Err(e) = self.replace(&SERVICES, &ns, &name, &json!({"status": status}), opts) {
                tracing::warn!("sandbox cloud controller could not update {ns}/{name}: {e}");
            }
        }
    }

    /// What the cloud's firewall lets through to each load balancer that has an address: the
    /// Service's ports from its `loadBalancerSourceRanges` (any source when empty).
    pub(crate) fn firewall_rules(&self) -> Vec<super::LbRule> {
        let mut rules = Vec::new();
        for (ns, name, s) in self.all_of(&SERVICES) {
            if s.object["spec"]["type"] != "LoadBalancer" {
                continue;
            }
            let Some(address) = s.object["status"]["loadBalancer"]["ingress"][0]["ip"].as_str()
            else {
                continue;
            };
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            };
            rules.push(super::LbRule {
                service: format!("{ns}/{name}"),
                address: address.to_string(),
                ports: s.object["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["port"].as_i64())
                    .collect(),
                source_ranges: strings(&s.object["spec"]["loadBalancerSourceRanges"]),
            });
        }
        rules
    }

    fn set_lb_finalizer(&mut self, ns: &str, name: &str, s: &Stored, present: bool) {
        let mut obj = s.object.clone();
        let mut list: Vec<String> = finalizers_of(&obj)
            .into_iter()
            .filter(|f| f != LB_CLEANUP_FINALIZER)
            .collect();
        if present {
            list.push(LB_CLEANUP_FINALIZER.to_string());
        }
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("objects have metadata");
        if list.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(list));
        }
        self.write(&SERVICES, ns, Some(name), &obj, CLOUD_CONTROLLER);
    }

    /// The pods a Service with `selector` selects in `ns`, sorted by address.
    /// Whether `p`'s Ready condition is true now.
    fn pod_ready(&self, p: &Pod) -> bool {
        !self
            .not_ready
            .contains(&(p.namespace.clone(), p.name.clone()))
    }

    fn selected<'p>(
        setup: &'p Setup,
        ns: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<&'p (Pod, String)> {
        let mut pods: Vec<&(Pod, String)> = setup
            .pods
            .iter()
            .filter(|(p, _)| {
                p.namespace == ns && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            })
            .collect();
        pods.sort_by_key(|(p, _)| p.ip);
        pods
    }

    /// The Endpoints controller: `Endpoints/<service>` for every Service with a selector, labelled
    /// with the Service's labels (plus its own managed-by label, and the headless label for
    /// headless Services); deleted with the Service.
    fn endpoints_tick(&mut self, setup: &Setup) {
        let services = self.all_of(&SERVICES);
        for (ns, name, s) in &services {
            let Some(sel) = selector(&s.object) else {
                continue;
            };
            if s.object["spec"]["type"] == "ExternalName" {
                continue;
            }
            let mut l = labels(&s.object);
            l.insert(ENDPOINTS_MANAGED_BY.into(), ENDPOINTS_CONTROLLER.into());
            if s.object["spec"]["clusterIP"] == "None" {
                l.insert(HEADLESS.into(), String::new());
            }
            let pods = Self::selected(setup, ns, &sel);
            let ports: Vec<Value> = service_ports(&s.object)
                .into_iter()
                .map(|(n, p, proto)| json!({"name": n, "port": p, "protocol": proto}))
                .collect();
            // endpoints_controller.go, addEndpointSubset(..., tolerateUnreadyEndpoints =
            // spec.publishNotReadyAddresses): a ready pod, or any pod when the Service publishes
            // not-ready addresses, is an address; any other a notReadyAddress.
            let tolerate = publishes_not_ready(&s.object);
            let subsets = if pods.is_empty() || ports.is_empty() {
                json!([])
            } else {
                let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
                for (p, uid) in &pods {
                    let address = json!({"ip": p.ip.to_string(), "nodeName": p.node,
                           "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name, "uid": uid}});
                    if tolerate || self.pod_ready(p) {
                        ready.push(address);
                    } else {
                        not_ready.push(address);
                    }
                }
                let mut subset = json!({"ports": ports});
                if !ready.is_empty() {
                    subset["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    subset["notReadyAddresses"] = json!(not_ready);
                }
                json!([subset])
            };
            let mut want = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": l}, "subsets": subsets});
            if subsets == json!([]) {
                want.as_object_mut().expect("object").remove("subsets");
            }
            match self.peek(&ENDPOINTS, ns, name).cloned() {
                Some(have) if same(&have, &want, &["subsets"]) => {}
                Some(have) => {
                    let mut body = want;
                    body["metadata"]["resourceVersion"] =
                        have.object["metadata"]["resourceVersion"].clone();
                    if let Some(a) = have.object["metadata"].get("annotations") {
                        body["metadata"]["annotations"] = a.clone();
                    }
                    self.write(&ENDPOINTS, ns, Some(name), &body, KUBE_CONTROLLER_MANAGER);
                }
                None => self.write(&ENDPOINTS, ns, None, &want, KUBE_CONTROLLER_MANAGER),
            }
        }
        // Endpoints this controller wrote whose Service is gone.
        for (ns, name, e) in self.all_of(&ENDPOINTS) {
            if labels(&e.object)
                .get(ENDPOINTS_MANAGED_BY)
                .map(String::as_str)
                == Some(ENDPOINTS_CONTROLLER)
                && self.peek(&SERVICES, &ns, &name).is_none()
            {
                self.remove(&ENDPOINTS, &ns, &name);
            }
        }
    }

    /// The EndpointSlice controller: one slice per address family for every Service with a
    /// selector (a placeholder without endpoints when no pod is selected), named
    /// `<service>-<random>`, labelled with the Service's non-reserved labels plus
    /// `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the
    /// Service (the garbage collector removes them with it).
    fn endpoint_slices_tick(&mut self, setup: &Setup) {
        let slices = self.all_of(&ENDPOINT_SLICES);
        for (ns, name, s) in self.all_of(&SERVICES) {
            let Some(sel) = selector(&s.object) else {
                continue;
            };
            if s.object["spec"]["type"] == "ExternalName" {
                continue;
            }
            let mut l: BTreeMap<String, String> = labels(&s.object)
                .into_iter()
                .filter(|(k, _)| {
                    ![SLICE_SERVICE_NAME, SLICE_MANAGED_BY, HEADLESS].contains(&k.as_str())
                })
                .collect();
            l.insert(SLICE_SERVICE_NAME.into(), name.clone());
            l.insert(SLICE_MANAGED_BY.into(), SLICE_CONTROLLER.into());
            if s.object["spec"]["clusterIP"] == "None" {
                l.insert(HEADLESS.into(), String::new());
            }
            let pods = Self::selected(setup, &ns, &sel);
            let ports: Vec<Value> = service_ports(&s.object)
                .into_iter()
                .map(|(n, p, proto)| json!({"name": n, "port": p, "protocol": proto}))
                .collect();
            let mut families: Vec<&str> = pods.iter().map(|(p, _)| family(&p.ip)).collect();
            families.dedup();
            if families.is_empty() {
                families.push("IPv4");
            }
            for fam in families {
                let endpoints: Vec<Value> = pods
                    .iter()
                    .filter(|(p, _)| family(&p.ip) == fam)
                    .map(|(p, uid)| {
                        // kubernetes/endpointslice utils.go, podToEndpoint: serving is the pod's
                        // readiness, ready is publishNotReadyAddresses || (serving && !terminating).
                        let serving = self.pod_ready(p);
                        let ready = publishes_not_ready(&s.object) || serving;
                        json!({"addresses": [p.ip.to_string()],
                               "conditions": {"ready": ready, "serving": serving, "terminating": false},
                               "nodeName": p.node,
                               "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name, "uid": uid}})
                    })
                    .collect();
                let ports = if endpoints.is_empty() {
                    json!([])
                } else {
                    json!(ports)
                };
                let want = json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": l,
                                 "ownerReferences": [owner_ref("v1", "Service", &s.object)]},
                    "addressType": fam, "endpoints": endpoints, "ports": ports,
                });
                let existing = slices.iter().find(|(sns, _, x)| {
                    *sns == ns
                        && labels(&x.object).get(SLICE_SERVICE_NAME) == Some(&name)
                        && labels(&x.object).get(SLICE_MANAGED_BY).map(String::as_str)
                            == Some(SLICE_CONTROLLER)
                        && x.object["addressType"] == fam
                });
                self.reconcile_slice(&ns, existing, want);
            }
        }
    }

    fn reconcile_slice(
        &mut self,
        ns: &str,
        existing: Option<&(String, String, Stored)>,
        want: Value,
    ) {
        match existing {
            Some((_, _, have)) if same(have, &want, &["endpoints", "ports"]) => {}
            Some((_, sname, have)) => {
                let mut body = want;
                let meta = body["metadata"].as_object_mut().expect("object");
                meta.remove("generateName");
                meta.insert("name".into(), json!(sname));
                meta.insert(
                    "resourceVersion".into(),
                    have.object["metadata"]["resourceVersion"].clone(),
                );
                self.write(
                    &ENDPOINT_SLICES,
                    ns,
                    Some(sname),
                    &body,
                    KUBE_CONTROLLER_MANAGER,
                );
            }
            None => self.write(&ENDPOINT_SLICES, ns, None, &want, KUBE_CONTROLLER_MANAGER),
        }
    }

    /// The EndpointSlice mirroring controller: Endpoints of a Service without a selector are
    /// copied into slices (`managed-by: endpointslicemirroring-controller.k8s.io`, every label of
    /// the Endpoints, owned by it), unless the Endpoints carry `skip-mirror: "true"` or a
    /// leader-election annotation; mirrored slices of Endpoints that should no longer be mirrored
    /// are deleted.
    fn mirroring_tick(&mut self) {
        let slices = self.all_of(&ENDPOINT_SLICES);
        let endpoints = self.all_of(&ENDPOINTS);
        for (ns, name, e) in &endpoints {
            let svc = self.peek(&SERVICES, ns, name);
            let mirror = svc.is_some_and(|s| selector(&s.object).is_none())
                && labels(&e.object).get(SLICE_SKIP_MIRROR).map(String::as_str) != Some("true")
                && e.object["metadata"]["annotations"]
                    .get(LEADER_ELECTION_ANNOTATION)
                    .is_none();
            let mine: Vec<&(String, String, Stored)> = slices
                .iter()
                .filter(|(sns, _, x)| {
                    sns == ns
                        && labels(&x.object).get(SLICE_SERVICE_NAME) == Some(name)
                        && labels(&x.object).get(SLICE_MANAGED_BY).map(String::as_str)
                            == Some(MIRRORING_CONTROLLER)
                })
                .collect();
            if !mirror {
                for (sns, sname, _) in mine {
                    self.remove(&ENDPOINT_SLICES, sns, sname);
                }
                continue;
            }
            let mut l = labels(&e.object);
            l.insert(SLICE_SERVICE_NAME.into(), name.clone());
            l.insert(SLICE_MANAGED_BY.into(), MIRRORING_CONTROLLER.into());
            let annotations: Map<String, Value> = e.object["metadata"]["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| {
                            *k != TRIGGER_TIME_ANNOTATION && *k != LAST_APPLIED_ANNOTATION
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            // One slice per (address family, ports) of the subsets.
            let mut groups: BTreeMap<(String, String), (Value, Vec<Value>)> = BTreeMap::new();
            for subset in e.object["subsets"].as_array().into_iter().flatten() {
                let ports: Vec<Value> = subset["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p["port"], "protocol": p["protocol"]}))
                    .collect();
                for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                    for a in subset[list].as_array().into_iter().flatten() {
                        let Some(ip) = a["ip"].as_str().and_then(|ip| ip.parse::<IpAddr>().ok())
                        else {
                            continue;
                        };
                        let mut ep =
                            json!({"addresses": [ip.to_string()], "conditions": {"ready": ready}});
                        for f in ["hostname", "nodeName", "targetRef"] {
                            if let Some(v) = a.get(f) {
                                ep[f] = v.clone();
                            }
                        }
                        groups
                            .entry((
                                family(&ip).to_string(),
                                Value::Array(ports.clone()).to_string(),
                            ))
                            .or_insert_with(|| (Value::Array(ports.clone()), vec![]))
                            .1
                            .push(ep);
                    }
                }
            }
            for ((fam, _), (ports, eps)) in groups {
                let mut meta = json!({"generateName": format!("{name}-"), "namespace": ns, "labels": l,
                    "ownerReferences": [owner_ref("v1", "Endpoints", &e.object)]});
                if !annotations.is_empty() {
                    meta["annotations"] = Value::Object(annotations.clone());
                }
                let want = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": meta, "addressType": fam, "endpoints": eps, "ports": ports});
                let existing = mine
                    .iter()
                    .copied()
                    .find(|(_, _, x)| x.object["addressType"] == fam.as_str());
                self.reconcile_slice(ns, existing, want);
            }
        }
    }

    /// The garbage collector: an object whose every owner (by uid) is gone is deleted.
    fn garbage_collector_tick(&mut self) {
        let mut orphans: Vec<(&'static Resource, String, String)> = Vec::new();
        for res in [&ENDPOINT_SLICES, &ENDPOINTS, &SERVICES] {
            for (ns, name, s) in self.all_of(res) {
                let Some(owners) = s.object["metadata"]["ownerReferences"].as_array() else {
                    continue;
                };
                if owners.is_empty() {
                    continue;
                }
                let alive = owners.iter().any(|o| {
                    let owner_res = match o["kind"].as_str() {
                        Some("Service") => &SERVICES,
                        Some("Endpoints") => &ENDPOINTS,
                        _ => return true,
                    };
                    let oname = o["name"].as_str().unwrap_or("");
                    self.peek(owner_res, &ns, oname)
                        .is_some_and(|x| meta_str(&x.object, "uid") == o["uid"].as_str())
                });
                if !alive {
                    orphans.push((res, ns, name));
                }
            }
        }
        for (res, ns, name) in orphans {
            self.remove(res, &ns, &name);
        }
    }
}

/// A Service's ports as the Endpoints and slices carry them: (name, target port, protocol);
/// named target ports (which need the pods' container ports) are left out.
fn service_ports(svc: &Value) -> Vec<(String, i64, String)> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let target = p
                .get("targetPort")
                .and_then(Value::as_i64)
                .or_else(|| p.get("port").and_then(Value::as_i64))?;
            Some((
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                target,
                p.get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
