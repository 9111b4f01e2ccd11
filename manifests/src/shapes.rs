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
//! k8s-openapi's `DeepMerge`, which is generated from the same markers (tests in `shapes/tests.rs`).
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
mod tests;
