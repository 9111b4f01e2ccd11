//! The Kubernetes side of the effect layer: a kube client for an environment's pinned context,
//! typed access to the kinds this tool owns, retries of transient errors, and readable errors.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::KubeConfigOptions;
use kube::core::ApiResource;
use manifests::{Environment, Object, FIELD_MANAGER};
use serde_json::Value;

use crate::cli::ClusterArgs;
use crate::cluster::retry::{Attempts, Retry};

/// The kinds of object this tool owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Service,
    Endpoints,
    EndpointSlice,
    ServiceMonitor,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Service,
        Kind::Endpoints,
        Kind::EndpointSlice,
        Kind::ServiceMonitor,
    ];

    pub fn of(object: &Object) -> Kind {
        match object {
            Object::Service(_) => Kind::Service,
            Object::Endpoints(_) => Kind::Endpoints,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::ServiceMonitor(_) => Kind::ServiceMonitor,
        }
    }

    pub fn resource(self) -> ApiResource {
        match self {
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Endpoints => ApiResource::erase::<Endpoints>(&()),
            Kind::EndpointSlice => ApiResource::erase::<EndpointSlice>(&()),
            Kind::ServiceMonitor => ApiResource {
                group: "monitoring.coreos.com".into(),
                version: "v1".into(),
                api_version: "monitoring.coreos.com/v1".into(),
                kind: "ServiceMonitor".into(),
                plural: "servicemonitors".into(),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::ServiceMonitor => "ServiceMonitor",
        }
    }
}

/// `Kind/namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn of(object: &Object) -> ObjectRef {
        ObjectRef {
            kind: Kind::of(object),
            namespace: object.namespace().into(),
            name: object.name().into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.name(), self.namespace, self.name)
    }
}

/// A field another manager owns, from a server-side-apply conflict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

/// The outcome of one server-side apply.
pub enum Applied {
    Ok(Value),
    Conflicts(Vec<Conflict>),
}

/// A connected client for one environment.
pub struct Cluster {
    client: kube::Client,
    /// What the last retried call came to (the one retry layer, [`crate::cluster::retry`]).
    retries: Arc<Mutex<Option<Attempts>>>,
    config: kube::Config,
    pub context: String,
    pub server: String,
}

/// How long one API call may keep retrying in commands without a `--timeout` of their own.
pub const API_BUDGET: Duration = Duration::from_secs(60);

impl Cluster {
    /// Connects to the context `env` pins (or, with --allow-other-context, the one given). Each
    /// call may keep retrying transient failures for `budget`.
    pub async fn connect(
        env: &Environment,
        args: &ClusterArgs,
        budget: Duration,
    ) -> Result<Cluster> {
        let context = match &args.context {
            Some(c) if *c != env.kube_context && !args.allow_other_context => bail!(
                "environment {} is pinned to kube context `{}`; refusing to act on context `{c}`. \
                 Pass --allow-other-context if that is really the same cluster",
                env.name,
                env.kube_context
            ),
            Some(c) => c.clone(),
            None => env.kube_context.clone(),
        };
        let kubeconfig = crate::environments::kubeconfig(args)?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(crate::output::hinted(
                format!(
                    "the kubeconfig has no context `{context}`, which environment {} is pinned to (contexts found: {})",
                    env.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") },
                ),
                format!(
                    "add it, or fix kube_context in manifests/src/environments/{}/mod.rs",
                    env.name
                ),
            ));
        }
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("loading kube context `{context}`"))?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        config.write_timeout = Some(Duration::from_secs(30));
        // One retry layer: ours, with a budget and Retry-After (kube's own would nest under it).
        config.default_retry = false;
        let server = config.cluster_url.to_string();
        let cluster = Cluster::with_config(config, context, server, budget)?;
        tracing::info!(context = %cluster.context, server = %cluster.server, "connected");
        Ok(cluster)
    }

    fn with_config(
        config: kube::Config,
        context: String,
        server: String,
        budget: Duration,
    ) -> Result<Cluster> {
        let retry = Retry::new(budget);
        let retries = retry.last();
        let layer = tower::ServiceBuilder::new()
            .layer(tower::retry::RetryLayer::new(retry))
            .layer(tower::buffer::BufferLayer::new(64))
            .into_inner();
        let client = kube::client::ClientBuilder::try_from(config.clone())
            .context("building the kube client")?
            .with_layer(&layer)
            .build();
        Ok(Cluster {
            client,
            retries,
            config,
            context,
            server,
        })
    }

    /// Another client to the same cluster whose calls may retry for `budget` (the deploy lock's
    /// renewals must give up well inside the Lease's duration).
    pub fn with_budget(&self, budget: Duration) -> Result<Cluster> {
        Cluster::with_config(
            self.config.clone(),
            self.context.clone(),
            self.server.clone(),
            budget,
        )
    }

    /// A typed API for `K` in `namespace` (used for the deploy lock's Lease).
    pub fn typed<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Turns a kube error into this tool's error text.
    pub fn error(&self, what: &str, e: kube::Error) -> anyhow::Error {
        self.explain(what, e)
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.resource())
    }

    /// The live object, or None.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>> {
        let api = self.api(r.kind, &r.namespace);
        let got = api
            .get_opt(&r.name)
            .await
            .map_err(|e| self.explain(&format!("GET {r}"), e))?;
        got.map(|o| serde_json::to_value(o).context("encoding the live object"))
            .transpose()
    }

    /// Server-side apply of `object` with this tool's field manager.
    pub async fn apply(&self, object: &Object, dry_run: bool, force: bool) -> Result<Applied> {
        let r = ObjectRef::of(object);
        let api = self.api(r.kind, &r.namespace);
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let body = serde_json::to_value(object).context("encoding the desired object")?;
        let what = format!(
            "server-side apply{} of {r}",
            if dry_run { " (dry run)" } else { "" }
        );
        let patch = Patch::Apply(&body);
        match api.patch(&r.name, &params, &patch).await {
            Ok(o) => Ok(Applied::Ok(serde_json::to_value(o)?)),
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                Ok(Applied::Conflicts(conflicts(&status)))
            }
            Err(e) => Err(self.explain(&what, e)),
        }
    }

    /// Objects of `kind` in `namespace` matching `selector` (filtered by the server).
    pub async fn list(
        &self,
        kind: Kind,
        namespace: &str,
        selector: &str,
    ) -> Result<Option<Vec<Value>>> {
        let api = self.api(kind, namespace);
        let what = format!("LIST {} in {namespace} ({selector})", kind.name());
        let params = ListParams::default().labels(selector);
        match api.list(&params).await {
            Ok(list) => Ok(Some(
                list.items
                    .into_iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?,
            )),
            // The kind is not served (a CRD that is not installed): nothing of it can exist.
            Err(kube::Error::Api(s))
                if s.code == 404
                    && kind == Kind::ServiceMonitor
                    && !s.message.contains("namespaces") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.explain(&what, e)),
        }
    }

    pub async fn delete(&self, r: &ObjectRef) -> Result<()> {
        let api = self.api(r.kind, &r.namespace);
        let params = DeleteParams::default();
        match api.delete(&r.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
            Err(e) => Err(self.explain(&format!("DELETE {r}"), e)),
        }
    }

    /// Deletes `r` and waits until it is gone, with progress, up to `timeout`: a deleted object
    /// stays while finalizers hold it (a LoadBalancer Service until the cloud has released its
    /// load balancer).
    pub async fn delete_and_wait(&self, r: &ObjectRef, timeout: Duration) -> Result<()> {
        self.delete(r).await?;
        self.wait_gone(r, timeout).await
    }

    /// Waits until `r` no longer exists, with progress, up to `timeout`.
    pub async fn wait_gone(&self, r: &ObjectRef, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        let mut last_report: Option<std::time::Instant> = None;
        loop {
            let Some(live) = self.get(r).await? else {
                if last_report.is_some() {
                    crate::output::progress(&format!(
                        "{r}: deleted ({:.1}s elapsed)",
                        started.elapsed().as_secs_f64()
                    ));
                }
                return Ok(());
            };
            let why = deleting(&live).unwrap_or_else(|| "still there after the delete".to_string());
            if started.elapsed() >= timeout {
                return Err(crate::output::hinted(
                    format!(
                        "{r} is still {why} after {}: the controller behind the finalizer has not let it go (for \
                         service.kubernetes.io/load-balancer-cleanup, the cloud has not released the load balancer)",
                        crate::output::duration(timeout),
                    ),
                    format!(
                        "look at `kubectl -n {} describe {} {}` for its events",
                        r.namespace,
                        r.kind.name().to_lowercase(),
                        r.name
                    ),
                ));
            }
            if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                crate::output::progress(&format!(
                    "{r}: {why}; waiting ({:.1}s elapsed)",
                    started.elapsed().as_secs_f64()
                ));
                last_report = Some(std::time::Instant::now());
            }
            tokio::time::sleep(
                Duration::from_millis(250).min(timeout.saturating_sub(started.elapsed())),
            )
            .await;
        }
    }

    fn explain(&self, what: &str, e: kube::Error) -> anyhow::Error {
        let retried = self
            .retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|a| a.attempts > 1)
            .map(|a| {
                format!(
                    " (after {} attempts over {:.1}s)",
                    a.attempts,
                    a.elapsed.as_secs_f64()
                )
            })
            .unwrap_or_default();
        match e {
            kube::Error::Api(s) => {
                let hint = match s.code {
                    401 => " (the credentials of this context were refused)",
                    403 => " (this context's user lacks the RBAC permission)",
                    404 if s.message.contains("namespaces") => " (create the namespace, or fix it in the environment)",
                    404 if what.contains("ServiceMonitor") => {
                        " (the Prometheus Operator's ServiceMonitor CRD is not installed: install it, or set monitoring.service_monitor to None)"
                    }
                    422 => " (the server rejected the object)",
                    _ => "",
                };
                let reason = if s.reason.is_empty() || s.reason == "Failed to parse error data" {
                    crate::cluster::retry::reason(s.code)
                } else {
                    s.reason.clone()
                };
                anyhow!(
                    "{what} failed: {} {reason}: {}{hint}{retried}",
                    s.code,
                    s.message.trim()
                )
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => crate::output::hinted(
                format!(
                    "{what} failed: cannot reach the Kubernetes API at {} (context `{}`){retried}: {}",
                    self.server,
                    self.context,
                    error_chain(&e)
                ),
                format!(
                    "check the network path to the API server and that the context is the one \
                     meant: `kubectl --context {} get --raw /readyz` from this machine",
                    self.context
                ),
            ),
            other => anyhow!("{what} failed: {}", error_chain(&other)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The managers and fields of a 409 from server-side apply.
fn conflicts(status: &kube::core::Status) -> Vec<Conflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    let mut out: Vec<Conflict> = causes
        .iter()
        .map(|c| Conflict {
            manager: c
                .message
                .split('"')
                .nth(1)
                .unwrap_or(&c.message)
                .to_string(),
            field: c.field.clone(),
        })
        .collect();
    if out.is_empty() {
        out.push(Conflict {
            manager: "unknown".into(),
            field: status.message.clone(),
        });
    }
    out
}

/// Runs an async cluster command on a single-threaded runtime.
pub fn block_on<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// Why a live object is still there although deleted: its deletionTimestamp and finalizers.
pub fn deleting(live: &Value) -> Option<String> {
    let since = live["metadata"]["deletionTimestamp"].as_str()?;
    let finalizers: Vec<&str> = live["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Some(if finalizers.is_empty() {
        format!("being deleted since {since}")
    } else {
        format!(
            "being deleted since {since}, held by finalizer {}",
            finalizers.join(", ")
        )
    })
}
