//! HTTP surface: accept loop, routing, auth, faults, request parsing, discovery documents.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::errors::ApiError;
use super::resources::{self, Resource};
use super::selector::{FieldSelector, LabelSelector};
use super::ssa::Scope;
use super::store::WriteOptions;
use super::util::parse_query;
use super::Shared;

type Resp = Response<Full<Bytes>>;

const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const APPLY_PATCH: &str = "application/apply-patch+yaml";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
const RESOURCE_VERBS: [&str; 6] = ["create", "delete", "get", "list", "patch", "update"];

/// Accepts connections until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                        });
                        if let Err(e) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!("sandbox API server connection error: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("sandbox API server accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// What a request path addresses.
#[derive(Debug)]
enum Route {
    Version,
    Health,
    ApiVersions,
    CoreResources,
    ApiGroups,
    Group(String),
    GroupResources(String),
    Namespaces,
    Namespace(String),
    Collection {
        res: &'static Resource,
        ns: Option<String>,
    },
    Item {
        res: &'static Resource,
        ns: String,
        name: String,
        status: bool,
    },
    NotFound,
}

fn route(path: &str, crds: bool) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz"] => return Route::Health,
        ["api"] => return Route::ApiVersions,
        ["api", "v1"] => return Route::CoreResources,
        ["apis"] => return Route::ApiGroups,
        ["apis", g] if resources::group_served(g, crds) => return Route::Group(g.to_string()),
        ["apis", g, "v1"] if resources::group_served(g, crds) => {
            return Route::GroupResources(g.to_string())
        }
        ["api", "v1", "namespaces"] => return Route::Namespaces,
        ["api", "v1", "namespaces", ns] => return Route::Namespace(ns.to_string()),
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Route::NotFound,
    };
    let (ns, plural, tail): (Option<&str>, &str, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns), plural, tail),
        [plural] => (None, plural, &[]),
        _ => return Route::NotFound,
    };
    let Some(res) = resources::lookup(group, version, plural, crds) else {
        return Route::NotFound;
    };
    match (ns, tail) {
        (ns, []) => Route::Collection {
            res,
            ns: ns.map(str::to_string),
        },
        (Some(ns), [name]) => Route::Item {
            res,
            ns: ns.to_string(),
            name: name.to_string(),
            status: false,
        },
        (Some(ns), [name, "status"]) if res.status_subresource => Route::Item {
            res,
            ns: ns.to_string(),
            name: name.to_string(),
            status: true,
        },
        _ => Route::NotFound,
    }
}

/// A parsed request.
struct Req<'a> {
    method: &'a str,
    query: Vec<(String, String)>,
    content_type: String,
    accept: String,
    body: Bytes,
}

impl Req<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    /// `dryRun` from the query or (for DELETE, where kube puts it) the DeleteOptions body.
    fn dry_run(&self) -> Result<bool, ApiError> {
        let mut values: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v.clone())
            .collect();
        if self.method == "DELETE" && !self.body.is_empty() {
            if let Ok(opts) = serde_json::from_slice::<Value>(&self.body) {
                if let Some(list) = opts.get("dryRun").and_then(Value::as_array) {
                    values.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
        }
        let mut dry = false;
        for v in values {
            match v.as_str() {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dry run value: {other:?} (supported: \"All\")"
                    )))
                }
            }
        }
        Ok(dry)
    }
}

/// The `Stats::by_verb` key of a request.
fn classify(route: &Route, req: &Req<'_>) -> String {
    let dry = if req.dry_run().unwrap_or(false) {
        "-dry-run"
    } else {
        ""
    };
    let m = req.method.to_ascii_lowercase();
    match route {
        Route::Version => format!("{m} version"),
        Route::Health => format!("{m} healthz"),
        Route::ApiVersions
        | Route::CoreResources
        | Route::ApiGroups
        | Route::Group(_)
        | Route::GroupResources(_) => {
            format!("{m} discovery")
        }
        Route::Namespaces if m == "get" => "list namespaces".to_string(),
        Route::Namespaces | Route::Namespace(_) => format!("{m} namespaces"),
        Route::Collection { res, .. } => match req.method {
            "GET" if req.flag("watch") => format!("watch {}", res.plural),
            "GET" => format!("list {}", res.plural),
            "POST" => format!("create{dry} {}", res.plural),
            "DELETE" => format!("deletecollection {}", res.plural),
            _ => format!("{m} {}", res.plural),
        },
        Route::Item { res, status, .. } => {
            let r = if *status {
                format!("{}/status", res.plural)
            } else {
                res.plural.to_string()
            };
            match req.method {
                "GET" => format!("get {r}"),
                "PUT" => format!("update{dry} {r}"),
                "PATCH" if req.content_type == APPLY_PATCH => format!("apply{dry} {r}"),
                "PATCH" => format!("patch{dry} {r}"),
                "DELETE" => format!("delete{dry} {r}"),
                _ => format!("{m} {r}"),
            }
        }
        Route::NotFound => "unknown".to_string(),
    }
}

fn json_response(code: u16, body: &Value) -> Resp {
    json_response_typed(code, body, "application/json")
}

fn json_response_typed(code: u16, body: &Value, content_type: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(body).expect("JSON values serialize"),
    )));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn error_response(e: &ApiError) -> Resp {
    if e.code == 429 {
        return too_many_requests();
    }
    json_response(e.code, &e.to_status())
}

/// Overload, as the max-in-flight and priority-and-fairness filters answer it
/// (`tooManyRequests` in staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go): not a
/// Status object but `http.Error`'s text/plain line, and `Retry-After: 1`.
fn too_many_requests() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(
        b"Too many requests, please try again later.\n",
    )));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The RBAC check of a request by a restricted identity. Non-resource requests (version,
/// health, discovery) are allowed to every authenticated user, as the `system:discovery` and
/// `system:public-info-viewer` ClusterRoles do. A server-side apply that would create the object
/// also needs `create` (handlers/patch.go checks `createAuthorizerAttributes`). Dry runs need the
/// same verbs as the real request.
fn authorize(
    shared: &Shared,
    identity: &super::Identity,
    route: &Route,
    req: &Req<'_>,
) -> Result<(), ApiError> {
    use super::Attributes;
    let (res, ns, name, status) = match route {
        Route::Collection { res, ns } => (*res, ns.as_deref(), None, false),
        Route::Item {
            res,
            ns,
            name,
            status,
        } => (*res, Some(ns.as_str()), Some(name.as_str()), *status),
        Route::Namespaces => {
            let a = Attributes {
                verb: "list",
                group: "",
                resource: "namespaces".into(),
                namespace: None,
                name: None,
            };
            return check(identity, &a);
        }
        Route::Namespace(n) => {
            let a = Attributes {
                verb: "get",
                group: "",
                resource: "namespaces".into(),
                namespace: Some(n),
                name: Some(n),
            };
            return check(identity, &a);
        }
        _ => return Ok(()),
    };
    let verb = match (req.method, name) {
        ("GET", None) if req.flag("watch") => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => return Ok(()),
    };
    let resource = if status {
        format!("{}/status", res.plural)
    } else {
        res.plural.to_string()
    };
    let a = Attributes {
        verb,
        group: res.group,
        resource,
        namespace: ns,
        name,
    };
    check(identity, &a)?;
    if verb == "patch" && req.content_type == APPLY_PATCH {
        let exists = match (ns, name) {
            (Some(ns), Some(name)) => shared.state().peek(res, ns, name).is_some(),
            _ => true,
        };
        if !exists {
            check(
                identity,
                &Attributes {
                    verb: "create",
                    ..a
                },
            )?;
        }
    }
    Ok(())
}

fn check(identity: &super::Identity, a: &super::Attributes<'_>) -> Result<(), ApiError> {
    if identity.allows(a) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            &identity.name,
            a.verb,
            a.group,
            &a.resource,
            a.namespace,
            a.name,
        ))
    }
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let content_type = header(&req, CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accept = header(&req, ACCEPT);
    let authorization = header(&req, AUTHORIZATION);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )))
        }
    };
    let req = Req {
        method: &method,
        query,
        content_type,
        accept,
        body,
    };
    let route = route(&path, shared.crds);
    let verb = classify(&route, &req);
    let user = authorization
        .strip_prefix("Bearer ")
        .and_then(|t| shared.users.iter().find(|(token, _)| token == t))
        .map(|(_, identity)| identity.as_ref());
    {
        let mut st = shared.state();
        st.stats.requests += 1;
        if let Some(u) = user {
            let name = u.map_or(super::ADMIN, |i| i.name.as_str());
            *st.stats
                .by_user
                .entry(name.to_string())
                .or_default()
                .entry(verb.clone())
                .or_default() += 1;
        }
        *st.stats.by_verb.entry(verb).or_default() += 1;
    }
    let fault = shared.take_fault(&method, &path);
    if let Some(fault) = fault.as_ref().filter(|f| !f.commits) {
        if !fault.latency.is_zero() {
            tokio::time::sleep(fault.latency).await;
        }
        if fault.status != 0 {
            let e = ApiError::new(
                fault.status,
                format!("injected fault: HTTP {} for {method} {path}", fault.status),
            );
            return error_response(&e);
        }
    }
    let Some(identity) = user else {
        return error_response(&ApiError::unauthorized());
    };
    if let Some(identity) = identity {
        if let Err(e) = authorize(shared, identity, &route, &req) {
            return error_response(&e);
        }
    }
    let resp = match dispatch(shared, route, &req) {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    };
    match fault.filter(|f| f.commits) {
        // Done, and the answer lost: what the client sees is the timeout.
        Some(fault) => {
            if !fault.latency.is_zero() {
                tokio::time::sleep(fault.latency).await;
            }
            error_response(&timeout_error(fault.status))
        }
        None => resp,
    }
}

/// The answer to a request whose deadline passed: `504 Timeout` as apimachinery's
/// `NewTimeoutError` words it (`pkg/api/errors/errors.go`), or another status's usual answer.
fn timeout_error(status: u16) -> ApiError {
    ApiError::new(
        status,
        "Timeout: request did not complete within requested timeout - context deadline exceeded",
    )
}

fn not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Apply bodies may be JSON or YAML.
fn parse_json_or_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).or_else(|_| {
        serde_yaml::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
        })
    })
}

fn selectors(req: &Req<'_>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn refuse_watch() -> ApiError {
    ApiError::method_not_allowed(
        "watch is not supported by the sandbox API server; poll with GET instead",
    )
}

/// `PartialObjectMetadata` conversions for `Accept: ...;as=PartialObjectMetadata[List]`.
fn partial_metadata(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]})
}

fn dispatch(shared: &Shared, route: Route, req: &Req<'_>) -> Result<Resp, ApiError> {
    let crds = shared.crds;
    let discovery = matches!(
        route,
        Route::Version
            | Route::ApiVersions
            | Route::CoreResources
            | Route::ApiGroups
            | Route::Group(_)
            | Route::GroupResources(_)
    );
    if discovery && req.method != "GET" {
        return Err(not_allowed());
    }
    match route {
        Route::NotFound => Err(ApiError::no_route()),
        Route::Health => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(resp)
        }
        Route::Version => Ok(json_response(200, &version_info())),
        Route::ApiVersions if req.accept.contains("as=APIGroupDiscoveryList") => Ok(
            json_response_typed(200, &aggregated(&[""], crds), AGGREGATED_DISCOVERY),
        ),
        Route::ApiVersions => Ok(json_response(
            200,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}],
            }),
        )),
        Route::CoreResources => Ok(json_response(200, &resource_list("", crds))),
        Route::ApiGroups if req.accept.contains("as=APIGroupDiscoveryList") => {
            Ok(json_response_typed(
                200,
                &aggregated(&served_groups(crds), crds),
                AGGREGATED_DISCOVERY,
            ))
        }
        Route::ApiGroups => {
            let groups: Vec<Value> = served_groups(crds).iter().map(|g| api_group(g)).collect();
            Ok(json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            ))
        }
        Route::Group(g) => {
            let mut doc = api_group(&g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Ok(json_response(200, &doc))
        }
        Route::GroupResources(g) => Ok(json_response(200, &resource_list(&g, crds))),
        Route::Namespaces => match req.method {
            "GET" if req.flag("watch") => Err(refuse_watch()),
            "GET" => {
                let (labels, fields) = selectors(req)?;
                Ok(json_response(
                    200,
                    &shared.state().list_namespaces(&labels, &fields),
                ))
            }
            _ => Err(ApiError::method_not_allowed(
                "the sandbox API server's namespaces are fixed by its Config",
            )),
        },
        Route::Namespace(name) => match req.method {
            "GET" => Ok(json_response(200, &shared.state().get_namespace(&name)?)),
            _ => Err(ApiError::method_not_allowed(
                "the sandbox API server's namespaces are fixed by its Config",
            )),
        },
        Route::Collection { res, ns } => match req.method {
            "GET" if req.flag("watch") => Err(refuse_watch()),
            "GET" => {
                let (labels, fields) = selectors(req)?;
                let mut list = shared.state().list(res, ns.as_deref(), &labels, &fields)?;
                if req.accept.contains("as=PartialObjectMetadataList") {
                    let items: Vec<Value> = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(partial_metadata)
                        .collect();
                    list = json!({
                        "apiVersion": "meta.k8s.io/v1",
                        "kind": "PartialObjectMetadataList",
                        "metadata": list["metadata"],
                        "items": items,
                    });
                }
                Ok(json_response(200, &list))
            }
            "POST" => {
                let Some(ns) = ns else {
                    return Err(not_allowed());
                };
                let body = parse_json(&req.body)?;
                let manager = req
                    .param("fieldManager")
                    .filter(|m| !m.is_empty())
                    .unwrap_or("unknown");
                let opts = WriteOptions::client(manager, req.dry_run()?, Scope::Main);
                let out = shared.state().create(res, &ns, &body, opts)?;
                Ok(json_response(201, &out.object))
            }
            "DELETE" => Err(ApiError::method_not_allowed(
                "deletecollection is not supported by the sandbox API server",
            )),
            _ => Err(not_allowed()),
        },
        Route::Item {
            res,
            ns,
            name,
            status,
        } => {
            let scope = if status { Scope::Status } else { Scope::Main };
            let dry_run = req.dry_run()?;
            let manager = req.param("fieldManager").filter(|m| !m.is_empty());
            let force = req.flag("force");
            match req.method {
                "GET" => {
                    let obj = shared.state().get(res, &ns, &name)?;
                    if req.accept.contains("as=PartialObjectMetadata") {
                        return Ok(json_response(200, &partial_metadata(&obj)));
                    }
                    Ok(json_response(200, &obj))
                }
                "PUT" => {
                    let body = parse_json(&req.body)?;
                    let opts = WriteOptions::client(manager.unwrap_or("unknown"), dry_run, scope);
                    let out = shared.state().replace(res, &ns, &name, &body, opts)?;
                    Ok(json_response(200, &out.object))
                }
                "PATCH" => match req.content_type.as_str() {
                    APPLY_PATCH => {
                        let Some(manager) = manager else {
                            return Err(ApiError::bad_request(
                                "PATCH: fieldManager is required for apply requests",
                            ));
                        };
                        let config = parse_json_or_yaml(&req.body)?;
                        let opts = WriteOptions::client(manager, dry_run, scope);
                        let out = shared
                            .state()
                            .apply(res, &ns, &name, &config, force, opts)?;
                        Ok(json_response(
                            if out.created { 201 } else { 200 },
                            &out.object,
                        ))
                    }
                    MERGE_PATCH | STRATEGIC_MERGE_PATCH => {
                        if force {
                            return Err(ApiError::bad_request(
                                "force may only be set for apply patches",
                            ));
                        }
                        let patch = parse_json(&req.body)?;
                        let opts =
                            WriteOptions::client(manager.unwrap_or("unknown"), dry_run, scope);
                        let out = shared.state().patch(res, &ns, &name, &patch, opts)?;
                        Ok(json_response(200, &out.object))
                    }
                    other => Err(ApiError::unsupported_media_type(other)),
                },
                "DELETE" => {
                    let options = if req.body.is_empty() {
                        Value::Null
                    } else {
                        parse_json(&req.body)?
                    };
                    let obj = shared.state().delete(
                        res,
                        &ns,
                        &name,
                        options.get("preconditions"),
                        dry_run,
                        super::store::Actor::Client,
                    )?;
                    Ok(json_response(200, &obj))
                }
                _ => Err(not_allowed()),
            }
        }
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn served_groups(crds: bool) -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in resources::ALL
        .iter()
        .filter(|r| !r.group.is_empty() && (crds || !r.crd))
    {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

fn api_group(group: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

fn served(group: &str, crds: bool) -> impl Iterator<Item = &'static Resource> + '_ {
    resources::ALL
        .iter()
        .copied()
        .filter(move |r| r.group == group && (crds || !r.crd))
}

/// `APIResourceList` for a group (`""` = core v1, which also lists namespaces).
fn resource_list(group: &str, crds: bool) -> Value {
    let mut list = Vec::new();
    if group.is_empty() {
        list.push(
            json!({"name": "namespaces", "singularName": "namespace", "namespaced": false,
            "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]}),
        );
    }
    for r in served(group, crds) {
        list.push(
            json!({"name": r.plural, "singularName": r.singular, "namespaced": true,
            "kind": r.kind, "verbs": RESOURCE_VERBS, "shortNames": r.short_names}),
        );
        if r.status_subresource {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": true,
                "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// Aggregated discovery (apidiscovery.k8s.io/v2) for the given groups.
fn aggregated(groups: &[&str], crds: bool) -> Value {
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut res: Vec<Value> = Vec::new();
            if g.is_empty() {
                res.push(json!({"resource": "namespaces", "responseKind": {"group": "", "version": "v1", "kind": "Namespace"},
                    "scope": "Cluster", "singularResource": "namespace", "verbs": ["get", "list"], "shortNames": ["ns"]}));
            }
            for r in served(g, crds) {
                let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
                let subresources: Vec<Value> = if r.status_subresource {
                    vec![json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]})]
                } else {
                    vec![]
                };
                res.push(json!({"resource": r.plural, "responseKind": kind, "scope": "Namespaced",
                    "singularResource": r.singular, "verbs": RESOURCE_VERBS, "shortNames": r.short_names,
                    "subresources": subresources}));
            }
            json!({"metadata": {"name": g}, "versions": [{"version": "v1", "freshness": "Current", "resources": res}]})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/version", true), Route::Version));
        assert!(matches!(
            route("/api/v1/namespaces/ns/services", true),
            Route::Collection { res, ns: Some(_) } if res.plural == "services"
        ));
        assert!(matches!(
            route("/api/v1/services", true),
            Route::Collection { ns: None, .. }
        ));
        assert!(matches!(
            route("/api/v1/namespaces/ns/services/zk/status", true),
            Route::Item { status: true, .. }
        ));
        assert!(matches!(
            route("/api/v1/namespaces/ns/endpoints/zk/status", true),
            Route::NotFound
        ));
        assert!(matches!(
            route(
                "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices/zk-1",
                true
            ),
            Route::Item { status: false, .. }
        ));
        assert!(matches!(
            route(
                "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors",
                true
            ),
            Route::Collection { .. }
        ));
        assert!(matches!(
            route(
                "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors",
                false
            ),
            Route::NotFound
        ));
        assert!(matches!(
            route("/apis/monitoring.coreos.com", false),
            Route::NotFound
        ));
        assert!(matches!(
            route("/api/v1/namespaces/ns/configmaps", true),
            Route::NotFound
        ));
        assert!(matches!(
            route("/apis/apps/v1/namespaces/ns/deployments", true),
            Route::NotFound
        ));
    }
}
