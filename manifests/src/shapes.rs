//! The shape server-side apply gives each field this tool writes or compares: whether a map is
//! owned key by key or whole, whether a list is one field, a set of values or a map of keyed
//! items. A real API server decides this from the type's markers (structured-merge-diff,
//! `typed/tofieldset.go`; the markers are in kubernetes/api and kubernetes/apimachinery), not from
//! the JSON's shape, so a model that recurses into every map records fields a real server never
//! records and mispredicts what an apply changes (`spec.selector` of a Service is one field).
//!
//! This table is data, copied from upstream markers with their source next to each entry. The API
//! test server's apply (`sandbox/src/apiserver/ssa.rs`) and the read-only planner
//! (`xtask/src/cluster/fields.rs`) both follow it; both are checked against structured-merge-diff's own
//! worked scenarios (`tests/upstream/structured-merge-diff.yaml`), and the table itself against
//! k8s-openapi's `DeepMerge`, which is generated from the same markers (tests below).
//!
//! Paths are field names joined by `.`, list items left out (`spec.ports.name` is the name of
//! every port); `*` stands for any key of a map.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;

/// How server-side apply owns the value at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A string, number or boolean: one field.
    Scalar,
    /// A struct: its fields are owned one by one; the struct itself is not a field.
    Struct,
    /// A map without a marker (labels, annotations): each key is a field of its own.
    Map,
    /// `+mapType=atomic`, `+structType=atomic`, `x-kubernetes-map-type: atomic`: the whole map is
    /// one field, replaced whole by an apply.
    AtomicMap,
    /// `+listType=atomic`, and every list without a marker: one field, replaced whole.
    AtomicList,
    /// `+listType=set`: each value is a field of its own (`v:<value>`).
    Set,
    /// `+listType=map`: each item is a field of its own, addressed by its keys (`k:{...}`), and so
    /// is each field inside it.
    MapList(Vec<ListKey>),
}

/// A key field of a map-list (`+listMapKey`), with the value an item that omits it has (the
/// registry defaults it: a Service port's `protocol` is `TCP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListKey {
    pub name: Cow<'static, str>,
    pub default: Option<Value>,
}

impl ListKey {
    pub fn new(name: impl Into<Cow<'static, str>>) -> ListKey {
        ListKey {
            name: name.into(),
            default: None,
        }
    }

    pub fn defaulting_to(name: impl Into<Cow<'static, str>>, default: Value) -> ListKey {
        ListKey {
            name: name.into(),
            default: Some(default),
        }
    }
}

/// One entry of a schema: the shape at a path, and where upstream says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub path: Cow<'static, str>,
    pub shape: Shape,
    pub source: Cow<'static, str>,
}

fn rule(path: &'static str, shape: Shape, source: &'static str) -> Rule {
    Rule {
        path: Cow::Borrowed(path),
        shape,
        source: Cow::Borrowed(source),
    }
}

/// The shapes of one type's fields. A path without a rule gets the shape upstream gives a field
/// without a marker: a scalar stays a scalar, a list is atomic, and an object is a struct (Kubernetes
/// types) or a map (structured-merge-diff's deduced type, for the worked scenarios).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub name: Cow<'static, str>,
    pub rules: Vec<Rule>,
    /// What an object without a rule is: [`Shape::Struct`] or [`Shape::Map`].
    pub objects: Shape,
}

static SCALAR: Shape = Shape::Scalar;
static STRUCT: Shape = Shape::Struct;
static MAP: Shape = Shape::Map;
static ATOMIC_LIST: Shape = Shape::AtomicList;

impl Schema {
    /// The shape of `value` at `path` (field names, list items left out).
    pub fn shape<S: AsRef<str>>(&self, path: &[S], value: &Value) -> &Shape {
        if let Some(r) = self.rule(path) {
            return &r.shape;
        }
        match value {
            Value::Object(_) if self.objects == Shape::Map => &MAP,
            Value::Object(_) => &STRUCT,
            Value::Array(_) => &ATOMIC_LIST,
            _ => &SCALAR,
        }
    }

    /// The rule for `path`, if the table has one.
    pub fn rule<S: AsRef<str>>(&self, path: &[S]) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            let mut parts = r.path.split('.');
            path.iter()
                .all(|p| parts.next().is_some_and(|rp| rp == "*" || rp == p.as_ref()))
                && parts.next().is_none()
        })
    }
}

// Where the markers are. Paths in kubernetes/api and kubernetes/apimachinery (release-1.33); line
// numbers of that release.
const OBJECT_META: &str = "kubernetes/apimachinery pkg/apis/meta/v1/types.go, ObjectMeta";
const SERVICE_SPEC: &str = "kubernetes/api core/v1/types.go, ServiceSpec";
const SERVICE_STATUS: &str =
    "kubernetes/api core/v1/types.go, ServiceStatus and LoadBalancerStatus";
const ENDPOINT_SLICE: &str = "kubernetes/api discovery/v1/types.go, EndpointSlice";
const LEASE_SPEC: &str = "kubernetes/api coordination/v1/types.go, LeaseSpec (no markers)";
const SERVICE_MONITOR: &str =
    "prometheus-operator example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml";
const UNMARKED: &str = "no marker: structured-merge-diff's default for the JSON type";

/// Every kind's metadata.
fn metadata_rules() -> Vec<Rule> {
    vec![
        rule("metadata", Shape::Struct, OBJECT_META),
        rule("metadata.labels", Shape::Map, OBJECT_META),
        rule("metadata.labels.*", Shape::Scalar, OBJECT_META),
        rule("metadata.annotations", Shape::Map, OBJECT_META),
        rule("metadata.annotations.*", Shape::Scalar, OBJECT_META),
        rule(
            "metadata.finalizers",
            Shape::Set,
            "kubernetes/apimachinery pkg/apis/meta/v1/types.go, ObjectMeta.Finalizers: +listType=set",
        ),
        rule(
            "metadata.ownerReferences",
            Shape::MapList(vec![ListKey::new("uid")]),
            "kubernetes/apimachinery pkg/apis/meta/v1/types.go, ObjectMeta.OwnerReferences: +listType=map, +listMapKey=uid",
        ),
    ]
}

fn kubernetes(name: &'static str, mut rules: Vec<Rule>) -> Schema {
    rules.extend(metadata_rules());
    Schema {
        name: Cow::Borrowed(name),
        rules,
        objects: Shape::Struct,
    }
}

fn service() -> Schema {
    let ports = Shape::MapList(vec![
        ListKey::new("port"),
        ListKey::defaulting_to("protocol", Value::String("TCP".into())),
    ]);
    kubernetes(
        "Service",
        vec![
            rule("spec", Shape::Struct, SERVICE_SPEC),
            rule("spec.type", Shape::Scalar, SERVICE_SPEC),
            rule(
                "spec.publishNotReadyAddresses",
                Shape::Scalar,
                "kubernetes/api core/v1/types.go, ServiceSpec.PublishNotReadyAddresses: a bool",
            ),
            rule(
                "spec.selector",
                Shape::AtomicMap,
                "kubernetes/api core/v1/types.go, ServiceSpec.Selector: +mapType=atomic",
            ),
            rule(
                "spec.ports",
                ports,
                "kubernetes/api core/v1/types.go, ServiceSpec.Ports: +listType=map, +listMapKey=port, +listMapKey=protocol",
            ),
            rule("spec.ports.name", Shape::Scalar, SERVICE_SPEC),
            rule("spec.ports.port", Shape::Scalar, SERVICE_SPEC),
            rule("spec.ports.protocol", Shape::Scalar, SERVICE_SPEC),
            rule("spec.ports.targetPort", Shape::Scalar, "kubernetes/apimachinery pkg/util/intstr/intstr.go, IntOrString: a scalar"),
            rule("spec.ports.nodePort", Shape::Scalar, SERVICE_SPEC),
            rule(
                "spec.loadBalancerSourceRanges",
                Shape::AtomicList,
                "kubernetes/api core/v1/types.go, ServiceSpec.LoadBalancerSourceRanges: +listType=atomic",
            ),
            rule(
                "spec.clusterIPs",
                Shape::AtomicList,
                "kubernetes/api core/v1/types.go, ServiceSpec.ClusterIPs: +listType=atomic",
            ),
            rule(
                "spec.externalIPs",
                Shape::AtomicList,
                "kubernetes/api core/v1/types.go, ServiceSpec.ExternalIPs: +listType=atomic",
            ),
            rule(
                "spec.ipFamilies",
                Shape::AtomicList,
                "kubernetes/api core/v1/types.go, ServiceSpec.IPFamilies: +listType=atomic",
            ),
            rule("status", Shape::Struct, SERVICE_STATUS),
            rule("status.loadBalancer", Shape::Struct, SERVICE_STATUS),
            rule(
                "status.loadBalancer.ingress",
                Shape::AtomicList,
                "kubernetes/api core/v1/types.go, LoadBalancerStatus.Ingress: +listType=atomic",
            ),
            rule(
                "status.conditions",
                Shape::MapList(vec![ListKey::new("type")]),
                "kubernetes/api core/v1/types.go, ServiceStatus.Conditions: +listType=map, +listMapKey=type",
            ),
        ],
    )
}

fn endpoints() -> Schema {
    kubernetes(
        "Endpoints",
        vec![rule(
            "subsets",
            Shape::AtomicList,
            "kubernetes/api core/v1/types.go, Endpoints.Subsets: +listType=atomic",
        )],
    )
}

fn endpoint_slice() -> Schema {
    kubernetes(
        "EndpointSlice",
        vec![
            rule("addressType", Shape::Scalar, ENDPOINT_SLICE),
            rule(
                "endpoints",
                Shape::AtomicList,
                "kubernetes/api discovery/v1/types.go, EndpointSlice.Endpoints: +listType=atomic",
            ),
            rule(
                "ports",
                Shape::AtomicList,
                "kubernetes/api discovery/v1/types.go, EndpointSlice.Ports: +listType=atomic",
            ),
        ],
    )
}

fn service_monitor() -> Schema {
    kubernetes(
        "ServiceMonitor",
        vec![
            rule("spec", Shape::Struct, SERVICE_MONITOR),
            rule(
                "spec.selector",
                Shape::AtomicMap,
                "prometheus-operator monitoring.coreos.com_servicemonitors.yaml: spec.selector x-kubernetes-map-type: atomic; \
                 kubernetes/apimachinery pkg/apis/meta/v1/types.go, LabelSelector: +structType=atomic",
            ),
            rule("spec.namespaceSelector", Shape::Struct, SERVICE_MONITOR),
            rule("spec.namespaceSelector.matchNames", Shape::AtomicList, UNMARKED),
            rule("spec.endpoints", Shape::AtomicList, UNMARKED),
        ],
    )
}

fn lease() -> Schema {
    kubernetes(
        "Lease",
        vec![
            rule("spec", Shape::Struct, LEASE_SPEC),
            rule("spec.holderIdentity", Shape::Scalar, LEASE_SPEC),
            rule("spec.leaseDurationSeconds", Shape::Scalar, LEASE_SPEC),
            rule("spec.acquireTime", Shape::Scalar, LEASE_SPEC),
            rule("spec.renewTime", Shape::Scalar, LEASE_SPEC),
            rule("spec.leaseTransitions", Shape::Scalar, LEASE_SPEC),
        ],
    )
}

/// The schema of `kind` (`Service`, `Endpoints`, `EndpointSlice`, `ServiceMonitor`, `Lease`), or
/// of an unmarked Kubernetes type for any other kind.
pub fn for_kind(kind: &str) -> &'static Schema {
    static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        vec![
            service(),
            endpoints(),
            endpoint_slice(),
            service_monitor(),
            lease(),
            kubernetes("unknown", vec![]),
        ]
    });
    all.iter()
        .find(|s| s.name == kind)
        .unwrap_or_else(|| all.last().expect("the unknown kind's schema"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::DeepMerge;
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::json;

    fn path(p: &str) -> Vec<&str> {
        p.split('.').collect()
    }

    #[test]
    fn rules_match_whole_paths_and_wildcards() {
        let s = for_kind("Service");
        assert_eq!(
            s.shape(&path("spec.selector"), &json!({})),
            &Shape::AtomicMap
        );
        assert_eq!(
            s.shape(&path("metadata.labels.app"), &json!("x")),
            &Shape::Scalar
        );
        // Without a rule: upstream's defaults for the JSON type.
        assert_eq!(s.shape(&path("spec.other"), &json!({})), &Shape::Struct);
        assert_eq!(s.shape(&path("spec.other"), &json!([])), &Shape::AtomicList);
        assert_eq!(
            s.rule(&path("spec")).map(|r| &r.shape),
            Some(&Shape::Struct)
        );
        assert!(s.rule(&path("spec.selector.app")).is_none());
        assert_eq!(for_kind("Foo").name, "unknown");
    }

    /// Every path of every object this tool writes, in every environment, has a rule, or lies
    /// inside an atomic field: nothing the tool writes is left to a default.
    #[test]
    fn every_field_the_tool_writes_has_a_rule() {
        fn walk(schema: &Schema, path: &mut Vec<String>, v: &Value, missing: &mut Vec<String>) {
            let shape = match schema.rule(path) {
                Some(r) => r.shape.clone(),
                None => {
                    missing.push(format!("{}.{}", schema.name, path.join(".")));
                    return;
                }
            };
            match (shape, v) {
                (Shape::Struct | Shape::Map, Value::Object(m)) => {
                    for (k, c) in m {
                        path.push(k.clone());
                        walk(schema, path, c, missing);
                        path.pop();
                    }
                }
                (Shape::MapList(_), Value::Array(items)) => {
                    for item in items {
                        for (k, c) in item.as_object().into_iter().flatten() {
                            path.push(k.clone());
                            walk(schema, path, c, missing);
                            path.pop();
                        }
                    }
                }
                _ => {}
            }
        }
        let mut missing = Vec::new();
        for env in crate::environments::all() {
            for object in crate::desired_objects(&env) {
                let v = serde_json::to_value(&object).unwrap();
                let schema = for_kind(object.kind());
                for (k, c) in v.as_object().unwrap() {
                    if k == "apiVersion" || k == "kind" {
                        continue;
                    }
                    let mut p = vec![k.clone()];
                    if k == "metadata" {
                        for (mk, mv) in c.as_object().unwrap() {
                            if mk == "name" || mk == "namespace" {
                                continue;
                            }
                            p.push(mk.clone());
                            walk(schema, &mut p, mv, &mut missing);
                            p.pop();
                        }
                        continue;
                    }
                    walk(schema, &mut p, c, &mut missing);
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "fields without a rule: {missing:?}");
    }

    /// What an apply of `b` over `a` leaves at a path of this shape, as structured-merge-diff
    /// merges (`typed/merge.go`): granular maps key by key, atomic values replaced, sets united,
    /// map-lists merged by item key.
    fn merged_by_shape(shape: &Shape, a: &Value, b: &Value) -> Value {
        match shape {
            Shape::Map | Shape::Struct => {
                let mut out = a.as_object().unwrap().clone();
                out.extend(b.as_object().unwrap().clone());
                Value::Object(out)
            }
            Shape::Set => {
                let mut out = a.as_array().unwrap().clone();
                for x in b.as_array().unwrap() {
                    if !out.contains(x) {
                        out.push(x.clone());
                    }
                }
                Value::Array(out)
            }
            Shape::MapList(keys) => {
                let key = |item: &Value| -> Vec<Value> {
                    keys.iter()
                        .map(|k| item.get(&*k.name).cloned().or(k.default.clone()).unwrap())
                        .collect()
                };
                let mut out = a.as_array().unwrap().clone();
                for item in b.as_array().unwrap() {
                    match out.iter_mut().find(|x| key(x) == key(item)) {
                        Some(x) => x
                            .as_object_mut()
                            .unwrap()
                            .extend(item.as_object().unwrap().clone()),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
            Shape::Scalar | Shape::AtomicMap | Shape::AtomicList => b.clone(),
        }
    }

    /// k8s-openapi's `DeepMerge` of `b` into `a` (both `T` as JSON), as JSON.
    fn deep_merge<T: DeserializeOwned + Serialize + DeepMerge>(a: &Value, b: &Value) -> Value {
        let mut x: T = serde_json::from_value(a.clone()).unwrap();
        x.merge_from(serde_json::from_value(b.clone()).unwrap());
        serde_json::to_value(x).unwrap()
    }

    fn at<'v>(v: &'v Value, p: &str) -> &'v Value {
        p.split('.').fold(v, |v, k| &v[k])
    }

    /// The table agrees with the merge strategies k8s-openapi generated from the Kubernetes
    /// OpenAPI document's `x-kubernetes-list-type` / `x-kubernetes-map-type` (the same markers):
    /// for each rule on a built-in type, two objects that differ only there merge as the shape
    /// says. (k8s-openapi keys a Service's ports by `port` alone; the `protocol` key is from the
    /// marker itself, so the probe keeps protocol equal.)
    #[test]
    fn the_table_agrees_with_k8s_openapi_deep_merge() {
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::{Endpoints, Service};
        use k8s_openapi::api::discovery::v1::EndpointSlice;

        let probes: Vec<(&str, &str, Value, Value)> = vec![
            (
                "Service",
                "metadata.labels",
                json!({"a": "1"}),
                json!({"b": "2"}),
            ),
            (
                "Service",
                "metadata.annotations",
                json!({"a": "1"}),
                json!({"b": "2"}),
            ),
            (
                "Service",
                "metadata.finalizers",
                json!(["a", "b"]),
                json!(["b", "c"]),
            ),
            (
                "Service",
                "metadata.ownerReferences",
                json!([{"apiVersion": "v1", "kind": "Service", "name": "x", "uid": "u1"}]),
                json!([{"apiVersion": "v1", "kind": "Service", "name": "y", "uid": "u1"},
                       {"apiVersion": "v1", "kind": "Service", "name": "z", "uid": "u2"}]),
            ),
            (
                "Service",
                "spec.selector",
                json!({"a": "1"}),
                json!({"b": "2"}),
            ),
            (
                "Service",
                "spec.ports",
                json!([{"name": "q", "port": 2888, "protocol": "TCP"}]),
                json!([{"name": "quorum", "port": 2888, "protocol": "TCP"},
                       {"name": "election", "port": 3888, "protocol": "TCP"}]),
            ),
            (
                "Service",
                "spec.loadBalancerSourceRanges",
                json!(["10.0.0.0/8"]),
                json!(["10.1.0.0/16"]),
            ),
            (
                "Service",
                "spec.clusterIPs",
                json!(["10.0.0.1"]),
                json!(["10.0.0.2"]),
            ),
            (
                "Service",
                "spec.externalIPs",
                json!(["10.0.0.1"]),
                json!(["10.0.0.2"]),
            ),
            (
                "Service",
                "spec.ipFamilies",
                json!(["IPv4"]),
                json!(["IPv6"]),
            ),
            (
                "Service",
                "status.loadBalancer.ingress",
                json!([{"ip": "10.0.0.1"}]),
                json!([{"ip": "10.0.0.2"}]),
            ),
            (
                "Service",
                "status.conditions",
                json!([{"type": "A", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"}]),
                json!([{"type": "A", "status": "False", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                       {"type": "B", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"}]),
            ),
            (
                "Endpoints",
                "subsets",
                json!([{"addresses": [{"ip": "10.0.0.1"}]}]),
                json!([{"addresses": [{"ip": "10.0.0.2"}]}]),
            ),
            (
                "EndpointSlice",
                "endpoints",
                json!([{"addresses": ["10.0.0.1"]}]),
                json!([{"addresses": ["10.0.0.2"]}]),
            ),
            (
                "EndpointSlice",
                "ports",
                json!([{"port": 1}]),
                json!([{"port": 2}]),
            ),
        ];
        for (kind, p, a, b) in probes {
            let schema = for_kind(kind);
            let shape = &schema.rule(&path(p)).expect("a rule").shape;
            let object = |v: &Value| {
                let mut o = match kind {
                    "Service" => {
                        json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}})
                    }
                    "EndpointSlice" => {
                        json!({"metadata": {}, "addressType": "IPv4", "endpoints": []})
                    }
                    _ => json!({"metadata": {}}),
                };
                let (parent, last) = p.rsplit_once('.').map_or(("", p), |(a, b)| (a, b));
                let slot = if parent.is_empty() {
                    &mut o
                } else {
                    parent.split('.').fold(&mut o, |o, k| &mut o[k])
                };
                slot[last] = v.clone();
                o
            };
            let (oa, ob) = (object(&a), object(&b));
            let got = match kind {
                "Service" => deep_merge::<Service>(&oa, &ob),
                "Endpoints" => deep_merge::<Endpoints>(&oa, &ob),
                "EndpointSlice" => deep_merge::<EndpointSlice>(&oa, &ob),
                "Lease" => deep_merge::<Lease>(&oa, &ob),
                _ => unreachable!(),
            };
            assert_eq!(
                at(&got, p),
                &merged_by_shape(shape, &a, &b),
                "{kind} {p}: the table says {shape:?}"
            );
        }
    }
}
