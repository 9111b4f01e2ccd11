//! A Kubernetes API test server: enough of kube-apiserver (server-side apply with field
//! ownership, merge patches, dry runs, defaulting, validation, label selectors and a simulated
//! cloud load-balancer controller) for the real `kube` client to talk to over HTTP.
//!
//! See `README.md` in this directory for exactly what is implemented and where it differs from a
//! real API server.

mod controllers;
mod defaults;
mod errors;
mod http;
mod object_rules;
mod resources;
mod selector;
mod ssa;
mod store;
pub mod upstream;
mod util;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tokio::sync::oneshot;

use store::State;

pub use controllers::{
    Controllers, Pod, ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY, LB_CLEANUP_FINALIZER,
    MIRRORING_CONTROLLER, SLICE_CONTROLLER, SLICE_MANAGED_BY,
};
pub use defaults::Ingress;

/// What the server simulates.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces that exist. Requests in any other namespace get 404 `namespaces "x" not found`.
    pub namespaces: Vec<String>,
    /// When the simulated cloud gives a LoadBalancer Service its ingress.
    pub load_balancer: LoadBalancerMode,
    /// What the ingress is: an IP address, or only a hostname (as AWS gives).
    pub ingress: Ingress,
    /// How long the cloud takes to release a deleted Service's load balancer: until then the
    /// Service stays, marked with a deletionTimestamp, held by the cleanup finalizer.
    pub lb_cleanup: Duration,
    /// Address (or hostname, with [`Ingress::Hostname`]) the simulated cloud gives the first
    /// Service "namespace/name"; re-created Services and others get 198.18.0.100, .101, ... (or
    /// `<name>-<n>.<namespace>.elb.sandbox.test`) in order of assignment.
    pub lb_addresses: BTreeMap<String, String>,
    /// Whether monitoring.coreos.com/v1 servicemonitors is served (if false: 404 for that group).
    pub crds: bool,
    /// Which kube-controller-manager controllers run (all, as in a real cluster, by default).
    pub controllers: Controllers,
    /// The pods the Endpoints and EndpointSlice controllers select from.
    pub pods: Vec<Pod>,
    /// Users besides the administrator of [`ApiServer::kubeconfig`], each with its own token
    /// ([`ApiServer::kubeconfig_as`]) and RBAC rules.
    pub identities: Vec<Identity>,
    /// The cloud's firewall in front of its load balancers: told, whenever they change, which
    /// sources may reach each load balancer (from `spec.loadBalancerSourceRanges`, as the cloud
    /// controllers turn the field into security-group or firewall rules). `None`: no firewall.
    pub firewall: Option<Firewall>,
    /// Objects stored at start (as if created by their `metadata.managedFields`-less Update of
    /// manager `helm`): what existed before the tool, such as the ensemble's StatefulSet and pods.
    pub seed: Vec<serde_json::Value>,
}

/// What may reach one load balancer: its address, its ports, and the source ranges (empty: any
/// source, as `GetLoadBalancerSourceRanges` returns allow-all for an empty field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbRule {
    pub service: String,
    pub address: String,
    pub ports: Vec<i64>,
    pub source_ranges: Vec<String>,
}

/// How the simulated cloud programs its firewall: told every load balancer's rule.
pub type ProgramFirewall = dyn Fn(&[LbRule]) + Send + Sync;

/// The hook the simulated cloud programs its firewall through (see [`Config::firewall`]).
#[derive(Clone)]
pub struct Firewall(pub std::sync::Arc<ProgramFirewall>);

impl std::fmt::Debug for Firewall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Firewall(..)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespaces: vec!["default".to_string(), "kube-system".to_string()],
            load_balancer: LoadBalancerMode::After(Duration::from_millis(200)),
            ingress: Ingress::Ip,
            lb_cleanup: Duration::from_millis(200),
            lb_addresses: BTreeMap::new(),
            crds: true,
            controllers: Controllers::ALL,
            pods: vec![],
            identities: vec![],
            firewall: None,
            seed: vec![],
        }
    }
}

/// When the simulated cloud controller gives LoadBalancer Services an ingress address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancerMode {
    /// Once the Service has existed for at least this long (a long one is a slow cloud).
    After(Duration),
    /// Never (the Service stays pending: quota, subnet exhausted).
    Never,
}

/// The user name of [`ApiServer::kubeconfig`]'s token, which may do everything.
pub const ADMIN: &str = "admin";

/// A user of the API test server and what RBAC allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// What it may do; everything else is answered 403 Forbidden, dry runs included.
    pub grants: Vec<Grant>,
}

/// One RBAC PolicyRule (rbac.authorization.k8s.io/v1), in the namespace of the Role that carries
/// it (`None`: a ClusterRole bound cluster-wide). `"*"` matches anything in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub namespace: Option<String>,
    pub api_groups: Vec<String>,
    /// Plural names, `services/status` for a subresource.
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// Empty: any object.
    pub resource_names: Vec<String>,
}

impl Identity {
    /// A user that may only `get`, `list` and `watch`, anything, anywhere.
    pub fn read_only(name: &str) -> Identity {
        Identity {
            name: name.to_string(),
            grants: vec![Grant {
                namespace: None,
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                resource_names: vec![],
            }],
        }
    }

    /// A user bound to these rbac.authorization.k8s.io/v1 Role (or ClusterRole) documents.
    pub fn from_roles(name: &str, roles: &[serde_json::Value]) -> anyhow::Result<Identity> {
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let mut grants = Vec::new();
        for role in roles {
            let kind = role["kind"].as_str().unwrap_or("");
            anyhow::ensure!(
                role["apiVersion"] == "rbac.authorization.k8s.io/v1"
                    && (kind == "Role" || kind == "ClusterRole"),
                "not an rbac.authorization.k8s.io/v1 Role or ClusterRole: {role}"
            );
            let namespace = (kind == "Role")
                .then(|| role["metadata"]["namespace"].as_str().map(str::to_string))
                .flatten();
            anyhow::ensure!(
                kind == "ClusterRole" || namespace.is_some(),
                "a Role needs metadata.namespace: {role}"
            );
            for rule in role["rules"].as_array().into_iter().flatten() {
                grants.push(Grant {
                    namespace: namespace.clone(),
                    api_groups: strings(&rule["apiGroups"]),
                    resources: strings(&rule["resources"]),
                    verbs: strings(&rule["verbs"]),
                    resource_names: strings(&rule["resourceNames"]),
                });
            }
        }
        Ok(Identity {
            name: name.to_string(),
            grants,
        })
    }

    /// Whether a request with these attributes is allowed (`RuleAllows` of the RBAC authorizer,
    /// plugin/pkg/auth/authorizer/rbac/rbac.go).
    pub(crate) fn allows(&self, a: &Attributes<'_>) -> bool {
        let has = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        self.grants.iter().any(|g| {
            g.namespace
                .as_deref()
                .is_none_or(|ns| a.namespace == Some(ns))
                && has(&g.verbs, a.verb)
                && has(&g.api_groups, a.group)
                && has(&g.resources, &a.resource)
                && (g.resource_names.is_empty()
                    || a.name
                        .is_some_and(|n| g.resource_names.iter().any(|x| x == n)))
        })
    }
}

/// What the authorizer is asked about a resource request.
#[derive(Clone, Debug)]
pub(crate) struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// Plural, with `/subresource`.
    pub resource: String,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// An injected failure or delay.
#[derive(Clone, Debug)]
pub struct Fault {
    /// "GET", "PATCH", ...; None = any method.
    pub method: Option<String>,
    /// Substring of the request path (no query); None = any.
    pub path_contains: Option<String>,
    /// HTTP status to answer with; 0 = no error, only latency.
    pub status: u16,
    /// Delay before answering (or before the real handling when status is 0).
    pub latency: Duration,
    /// Matching requests it applies to; u32::MAX = forever.
    pub times: u32,
    /// The request is carried out first (and its write committed), then answered with `status`
    /// instead: kube-apiserver answers 504 when a request's deadline passes while the storage
    /// write goes on and may commit (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
    /// finisher/finisher.go`, `finishRequest`), so a client that retries meets its own write.
    pub commits: bool,
}

/// Request and write counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// `by_verb` per authenticated user (forbidden requests too).
    pub by_user: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every HTTP request received (faulted and unauthorized ones too).
    pub requests: u64,
    /// Requests by verb and resource: "get services", "list services", "apply services",
    /// "apply-dry-run services", "create services", "update services", "patch services",
    /// "patch services/status", "delete services", ... (dry runs of any verb get "-dry-run").
    pub by_verb: BTreeMap<String, u64>,
    /// Client requests that changed stored state (not dry-run, not no-op applies).
    pub writes: u64,
    /// Changes made by the simulated controllers (cloud, Endpoints, EndpointSlice, mirroring,
    /// garbage collector).
    pub controller_writes: u64,
}

impl Stats {
    /// Requests of `user` that asked to change something (create, update, patch, apply, delete,
    /// deletecollection, dry runs included), whatever the answer.
    pub fn write_requests(&self, user: &str) -> u64 {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                let verb = k.split(' ').next().unwrap_or("");
                let verb = verb.strip_suffix("-dry-run").unwrap_or(verb);
                matches!(
                    verb,
                    "create" | "update" | "patch" | "apply" | "delete" | "deletecollection"
                )
            })
            .map(|(_, n)| n)
            .sum()
    }
}

/// State shared by the HTTP handlers, the controller and the `ApiServer` handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<Vec<Fault>>,
    /// token -> user; the first is the administrator's.
    users: Vec<(String, Option<Identity>)>,
    addr: SocketAddr,
    crds: bool,
    setup: controllers::Setup,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Vec<Fault>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first fault matching the request that has uses left (one use is consumed).
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = self.faults();
        let f = faults.iter_mut().find(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
        })?;
        if f.times != u32::MAX {
            f.times -= 1;
        }
        Some(f.clone())
    }
}

/// A running API test server. Stops on `stop()` or drop.
pub struct ApiServer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Binds 127.0.0.1:0 and serves on a dedicated std::thread with its own tokio runtime, so it
    /// works from sync tests and from async code alike. Returns once it is listening.
    pub fn start(config: Config) -> anyhow::Result<ApiServer> {
        let seed = config.seed.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut ids = util::IdGen::new();
        let mut token = || format!("sandbox-{:016x}{:016x}", ids.next_u64(), ids.next_u64());
        let mut users: Vec<(String, Option<Identity>)> = vec![(token(), None)];
        for identity in &config.identities {
            anyhow::ensure!(
                identity.name != ADMIN
                    && !users
                        .iter()
                        .any(|(_, u)| u.as_ref().is_some_and(|u| u.name == identity.name)),
                "identity names must be unique and not {ADMIN:?}: {}",
                identity.name
            );
            users.push((token(), Some(identity.clone())));
        }
        let pods = config
            .pods
            .iter()
            .map(|p| (p.clone(), ids.uuid()))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&config.namespaces, config.crds)),
            faults: Mutex::new(Vec::new()),
            users,
            addr,
            crds: config.crds,
            setup: controllers::Setup {
                lb_after: match config.load_balancer {
                    LoadBalancerMode::After(d) => Some(d),
                    LoadBalancerMode::Never => None,
                },
                ingress: config.ingress,
                lb_cleanup: config.lb_cleanup,
                lb_addresses: config.lb_addresses,
                controllers: config.controllers,
                pods,
                firewall: config.firewall,
            },
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sandbox-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("building the tokio runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("registering the listener: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let controller = tokio::spawn(controllers::run(thread_shared.clone()));
                    http::serve(listener, thread_shared, shutdown_rx).await;
                    controller.abort();
                });
                // Dropping the runtime here cancels the connection tasks and closes their sockets.
            })
            .context("spawning the API server thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("sandbox API server failed to start: {e}"),
            Err(_) => anyhow::bail!("sandbox API server thread exited during startup"),
        }
        tracing::debug!("sandbox API server listening on {addr}");
        let server = ApiServer {
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        for object in &seed {
            server.insert(object.clone(), "helm")?;
        }
        Ok(server)
    }

    /// "http://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A complete kubeconfig YAML: one cluster (server = url()), one user with the bearer token
    /// the server requires, one context named `context` (cluster + user, no default namespace),
    /// and current-context = `context`.
    pub fn kubeconfig(&self, context: &str) -> String {
        self.kubeconfig_with_token(context, &self.shared.users[0].0)
    }

    /// Like [`kubeconfig`](Self::kubeconfig), as the [`Identity`] called `user` of the
    /// configuration.
    pub fn kubeconfig_as(&self, context: &str, user: &str) -> anyhow::Result<String> {
        let token = self
            .shared
            .users
            .iter()
            .find(|(_, u)| u.as_ref().is_some_and(|u| u.name == user))
            .map(|(t, _)| t.clone())
            .ok_or_else(|| anyhow::anyhow!("the API test server has no identity {user:?}"))?;
        Ok(self.kubeconfig_with_token(context, &token))
    }

    fn kubeconfig_with_token(&self, context: &str, token: &str) -> String {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url()}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "preferences": {},
        });
        serde_yaml::to_string(&doc).expect("a JSON document serializes as YAML")
    }

    pub fn stats(&self) -> Stats {
        self.shared.state().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.shared.state().stats = Stats::default();
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults().push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Stores `object` (a full JSON object with apiVersion, kind, metadata.name/namespace) as if
    /// created by an Update from `manager`, bypassing HTTP (for seeding, e.g. 5,000 unrelated
    /// Services). Defaulting and validation apply; it is not counted in `Stats`.
    pub fn insert(&self, object: serde_json::Value, manager: &str) -> anyhow::Result<()> {
        self.shared
            .state()
            .seed(&object, manager)
            .map_err(|e| anyhow::anyhow!("inserting {}: {}", object_label(&object), e.message))
    }

    /// Sets the Ready condition of a configured pod (as its kubelet would when its readiness
    /// probe fails or passes); the Endpoints and EndpointSlice controllers follow.
    pub fn set_pod_ready(&self, namespace: &str, name: &str, ready: bool) {
        let mut st = self.shared.state();
        let key = (namespace.to_string(), name.to_string());
        let changed = if ready {
            st.not_ready.remove(&key)
        } else {
            st.not_ready.insert(key)
        };
        st.pods_changed |= changed;
    }

    /// Direct read of stored state for assertions, e.g. get("v1", "services", "ns", "zk0").
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let res = resources::lookup_api_version(api_version, plural, self.shared.crds)?;
        self.shared
            .state()
            .peek(res, namespace, name)
            .map(|s| s.object.clone())
    }

    /// Number of stored objects (namespaces not included).
    pub fn object_count(&self) -> usize {
        self.shared.state().object_count()
    }

    /// Stops accepting connections and closes the port (also done on Drop). After stop,
    /// connecting to url() is refused.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn object_label(object: &serde_json::Value) -> String {
    format!(
        "{} {}/{}",
        object.get("kind").and_then(|k| k.as_str()).unwrap_or("?"),
        util::meta_str(object, "namespace").unwrap_or("?"),
        util::meta_str(object, "name").unwrap_or("?"),
    )
}
