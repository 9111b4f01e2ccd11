//! A Kubernetes API test server: enough of kube-apiserver (server-side apply with field
//! ownership, merge patches, dry runs, defaulting, validation, label selectors and a simulated
//! cloud load-balancer controller) for the real `kube` client to talk to over HTTP.
//!
//! See `README.md` in this directory for exactly what is implemented and where it differs from a
//! real API server.

mod controller;
mod defaults;
mod errors;
mod http;
mod resources;
mod selector;
mod ssa;
mod store;
mod util;
mod validate;

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

/// What the server simulates.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces that exist. Requests in any other namespace get 404 `namespaces "x" not found`.
    pub namespaces: Vec<String>,
    pub load_balancer: LoadBalancerMode,
    /// Address the simulated cloud controller gives Service "namespace/name"; others get
    /// 198.18.0.100, 198.18.0.101, ... in order of assignment.
    pub lb_addresses: BTreeMap<String, String>,
    /// Whether monitoring.coreos.com/v1 servicemonitors is served (if false: 404 for that group).
    pub crds: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespaces: vec!["default".to_string(), "kube-system".to_string()],
            load_balancer: LoadBalancerMode::After(Duration::from_millis(200)),
            lb_addresses: BTreeMap::new(),
            crds: true,
        }
    }
}

/// When the simulated cloud controller gives LoadBalancer Services an ingress address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalancerMode {
    /// Once the Service has existed for at least this long.
    After(Duration),
    /// Never (the Service stays pending).
    Never,
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
}

/// Request and write counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Every HTTP request received (faulted and unauthorized ones too).
    pub requests: u64,
    /// Requests by verb and resource: "get services", "list services", "apply services",
    /// "apply-dry-run services", "create services", "update services", "patch services",
    /// "patch services/status", "delete services", ... (dry runs of any verb get "-dry-run").
    pub by_verb: BTreeMap<String, u64>,
    /// Client requests that changed stored state (not dry-run, not no-op applies).
    pub writes: u64,
    /// Changes made by the simulated cloud controller.
    pub controller_writes: u64,
}

/// State shared by the HTTP handlers, the controller and the `ApiServer` handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<Vec<Fault>>,
    token: String,
    addr: SocketAddr,
    crds: bool,
    lb_after: Option<Duration>,
    lb_addresses: BTreeMap<String, String>,
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut ids = util::IdGen::new();
        let token = format!("sandbox-{:016x}{:016x}", ids.next_u64(), ids.next_u64());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&config.namespaces, config.crds)),
            faults: Mutex::new(Vec::new()),
            token,
            addr,
            crds: config.crds,
            lb_after: match config.load_balancer {
                LoadBalancerMode::After(d) => Some(d),
                LoadBalancerMode::Never => None,
            },
            lb_addresses: config.lb_addresses,
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
                    let controller = tokio::spawn(controller::run(thread_shared.clone()));
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
        Ok(ApiServer {
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// "http://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A complete kubeconfig YAML: one cluster (server = url()), one user with the bearer token
    /// the server requires, one context named `context` (cluster + user, no default namespace),
    /// and current-context = `context`.
    pub fn kubeconfig(&self, context: &str) -> String {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url()}}],
            "users": [{"name": context, "user": {"token": self.shared.token}}],
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
