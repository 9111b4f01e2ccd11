//! The resource types the sandbox serves.

/// Which metadata.name syntax a resource requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// Services: `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    Dns1035Label,
    /// Everything else: an RFC 1123 subdomain, at most 253 characters.
    Dns1123Subdomain,
}

/// What `metadata.generation` tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GenerationScope {
    /// Changes to `.spec`.
    Spec,
    /// Changes to any top-level field other than apiVersion, kind and metadata (Endpoints,
    /// EndpointSlices, which have no spec).
    TopLevel,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub short_names: &'static [&'static str],
    /// Whether `/status` is a subresource (then `.status` is only written through it).
    pub status_subresource: bool,
    pub name_rule: NameRule,
    pub generation: GenerationScope,
    /// Served only when `Config::crds` is true.
    pub crd: bool,
    /// The type's empty object as a real server sees it before a create (a Go zero value: its
    /// non-pointer structs are there, empty), which a creating Update is compared with: what is
    /// added on top is the creator's, a map or list it adds with a `"."` of its own.
    pub zero: &'static str,
}

impl Resource {
    /// `v1` or `group/version`.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `services`, `endpointslices.discovery.k8s.io`: how error messages name the resource.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub(crate) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The shapes of the type's fields (the upstream markers).
    pub(crate) fn schema(&self) -> &'static manifests::shapes::Schema {
        manifests::shapes::for_kind(self.kind)
    }

    pub(crate) fn zero(&self) -> serde_json::Value {
        serde_json::from_str(self.zero).expect("zero objects are JSON")
    }
}

pub(crate) static SERVICES: Resource = Resource {
    group: "",
    version: "v1",
    plural: "services",
    singular: "service",
    kind: "Service",
    short_names: &["svc"],
    status_subresource: true,
    name_rule: NameRule::Dns1035Label,
    generation: GenerationScope::Spec,
    crd: false,
    zero: r#"{"metadata":{},"spec":{},"status":{"loadBalancer":{}}}"#,
};

pub(crate) static ENDPOINTS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "endpoints",
    singular: "endpoints",
    kind: "Endpoints",
    short_names: &["ep"],
    status_subresource: false,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::TopLevel,
    crd: false,
    zero: r#"{"metadata":{}}"#,
};

pub(crate) static ENDPOINT_SLICES: Resource = Resource {
    group: "discovery.k8s.io",
    version: "v1",
    plural: "endpointslices",
    singular: "endpointslice",
    kind: "EndpointSlice",
    short_names: &[],
    status_subresource: false,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::TopLevel,
    crd: false,
    zero: r#"{"metadata":{}}"#,
};

pub(crate) static SERVICE_MONITORS: Resource = Resource {
    group: "monitoring.coreos.com",
    version: "v1",
    plural: "servicemonitors",
    singular: "servicemonitor",
    kind: "ServiceMonitor",
    short_names: &["smon"],
    status_subresource: false,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::Spec,
    crd: true,
    zero: r#"{}"#,
};

/// Leases: the deploy lock of the tool under test.
pub(crate) static LEASES: Resource = Resource {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    short_names: &[],
    status_subresource: false,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::Spec,
    crd: false,
    zero: r#"{"metadata":{},"spec":{}}"#,
};

/// StatefulSets: what the ensemble's chart deployed, read by the tool (never written).
pub(crate) static STATEFUL_SETS: Resource = Resource {
    group: "apps",
    version: "v1",
    plural: "statefulsets",
    singular: "statefulset",
    kind: "StatefulSet",
    short_names: &["sts"],
    status_subresource: true,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::Spec,
    crd: false,
    zero: r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}},"updateStrategy":{}},"status":{"replicas":0}}"#,
};

/// Pods: the ensemble's, read by the tool (never written).
pub(crate) static PODS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    short_names: &["po"],
    status_subresource: true,
    name_rule: NameRule::Dns1123Subdomain,
    generation: GenerationScope::Spec,
    crd: false,
    zero: r#"{"metadata":{},"spec":{"containers":null},"status":{}}"#,
};

pub(crate) static ALL: [&Resource; 7] = [
    &SERVICES,
    &ENDPOINTS,
    &ENDPOINT_SLICES,
    &SERVICE_MONITORS,
    &LEASES,
    &STATEFUL_SETS,
    &PODS,
];

/// The served resource at `group`/`version`/`plural` (`group` empty for core).
pub(crate) fn lookup(
    group: &str,
    version: &str,
    plural: &str,
    crds: bool,
) -> Option<&'static Resource> {
    ALL.iter().copied().find(|r| {
        r.group == group && r.version == version && r.plural == plural && (crds || !r.crd)
    })
}

/// The served resource for an object's `apiVersion` and `kind`.
pub(crate) fn lookup_kind(api_version: &str, kind: &str, crds: bool) -> Option<&'static Resource> {
    ALL.iter()
        .copied()
        .find(|r| r.api_version() == api_version && r.kind == kind && (crds || !r.crd))
}

/// The served resource for `apiVersion` and plural.
pub(crate) fn lookup_api_version(
    api_version: &str,
    plural: &str,
    crds: bool,
) -> Option<&'static Resource> {
    ALL.iter()
        .copied()
        .find(|r| r.api_version() == api_version && r.plural == plural && (crds || !r.crd))
}

/// Whether an API group (`""` = core) is served.
pub(crate) fn group_served(group: &str, crds: bool) -> bool {
    ALL.iter().any(|r| r.group == group && (crds || !r.crd))
}
