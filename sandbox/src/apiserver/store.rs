//! In-memory object store and the write pipeline shared by every verb:
//! ownership -> defaulting -> validation -> no-op detection -> metadata -> store.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::defaults::{apply_defaults, scheme_defaults, Allocator};
use super::errors::{ApiError, FieldError};
use super::resources::{self, GenerationScope, Resource};
use super::selector::{FieldSelector, LabelSelector};
use super::ssa::{self, ManagedEntry, Scope, Writer};
use super::util::{map_entry, meta_str, now_rfc3339, IdGen};
use super::Stats;

/// Metadata the server owns; stripped from request bodies and ignored in comparisons.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// The object as served (with uid, resourceVersion, managedFields, ...).
    pub object: Value,
    pub managed: Vec<ManagedEntry>,
    pub created: Instant,
    /// When a DELETE found finalizers and only marked the object (`metadata.deletionTimestamp`).
    pub deleting_since: Option<Instant>,
}

impl Stored {
    pub(crate) fn finalizers(&self) -> Vec<String> {
        finalizers_of(&self.object)
    }
}

/// `metadata.finalizers` of an object.
pub(crate) fn finalizers_of(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Who caused a write (decides which counter it goes to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    Client,
    Controller,
    Seed,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteOptions<'a> {
    pub manager: &'a str,
    pub dry_run: bool,
    pub scope: Scope,
    pub actor: Actor,
}

impl<'a> WriteOptions<'a> {
    pub(crate) fn client(manager: &'a str, dry_run: bool, scope: Scope) -> Self {
        WriteOptions {
            manager,
            dry_run,
            scope,
            actor: Actor::Client,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WriteOutcome {
    pub object: Value,
    pub created: bool,
    /// Whether stored state changed (or, for a dry run, would have).
    pub changed: bool,
}

/// How the writer's ownership is decided in `commit`.
enum Ownership {
    /// Already decided (server-side apply).
    Decided,
    /// An Update: what the writer submitted (with the scheme's defaults, before allocations),
    /// compared with the old object, decides what it gains.
    Update(Value),
}

#[derive(Clone, Debug)]
struct NamespaceInfo {
    name: String,
    uid: String,
    created: String,
}

pub(crate) struct State {
    /// (resource, namespace, name) -> object; resource as in `Resource::qualified`.
    pub(super) objects: BTreeMap<(String, String, String), Stored>,
    namespaces: Vec<NamespaceInfo>,
    rv: u64,
    pub(super) ids: IdGen,
    pub(crate) alloc: Allocator,
    pub(crate) stats: Stats,
    pub(crate) crds: bool,
    /// Whether a controller waits for time to pass (a load balancer being provisioned or
    /// released): then the controllers run although nothing was written.
    pub(crate) timers_pending: bool,
    /// Pods (namespace, name) whose Ready condition is false (a server that is down, a pod
    /// being started); every other configured pod is ready.
    pub(crate) not_ready: std::collections::BTreeSet<(String, String)>,
    /// A pod's readiness changed since the controllers last ran.
    pub(crate) pods_changed: bool,
}

pub(super) fn key(res: &Resource, ns: &str, name: &str) -> (String, String, String) {
    (res.qualified(), ns.to_string(), name.to_string())
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("just made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// `obj` without server-owned metadata (a copy).
fn without_server_metadata(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_METADATA {
            meta.remove(*f);
        }
    }
    obj
}

/// The part of an object `metadata.generation` tracks.
fn generation_data(res: &Resource, obj: &Value) -> Value {
    match res.generation {
        GenerationScope::Spec => obj.get("spec").cloned().unwrap_or(Value::Null),
        GenerationScope::TopLevel => Value::Object(
            obj.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| {
                            !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
    }
}

fn require_object(body: &Value) -> Result<(), ApiError> {
    if body.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ))
    }
}

/// Checks that a body's apiVersion, kind, name and namespace fit the request. With `strict`
/// (apply), apiVersion, kind and name must be present.
fn check_identity(
    res: &Resource,
    ns: &str,
    url_name: Option<&str>,
    body: &Value,
    strict: bool,
) -> Result<(), ApiError> {
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if strict && api_version.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'apiVersion' is missing in '{body}'"
        )));
    }
    if strict && kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{body}'"
        )));
    }
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.kind
        )));
    }
    if let Some(body_ns) = meta_str(body, "namespace").filter(|n| !n.is_empty()) {
        if body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    if let Some(url_name) = url_name {
        match meta_str(body, "name").filter(|n| !n.is_empty()) {
            Some(n) if n != url_name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )))
            }
            None if strict => {
                return Err(ApiError::bad_request(
                    "metadata.name is required for apply requests",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A request body reduced to what a client may set: server metadata removed, and apiVersion,
/// kind, name and namespace set from the request.
fn sanitize(res: &Resource, ns: &str, name: &str, body: &Value) -> Value {
    let mut obj = without_server_metadata(body);
    let root = obj.as_object_mut().expect("checked to be an object");
    root.insert("apiVersion".into(), json!(res.api_version()));
    root.insert("kind".into(), json!(res.kind));
    let meta = map_entry(root, "metadata");
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    obj
}

/// The object written by a `scope` write: for the main resource, `desired` with the old status
/// kept (resources with a status subresource); for the status subresource, `old` with only its
/// status replaced by `desired`'s.
fn scoped(res: &Resource, scope: Scope, old: Option<&Value>, mut desired: Value) -> Value {
    match scope {
        Scope::Main if res.status_subresource => {
            let root = desired.as_object_mut().expect("objects");
            match old.and_then(|o| o.get("status")) {
                Some(s) => {
                    root.insert("status".into(), s.clone());
                }
                None => {
                    root.remove("status");
                }
            }
            desired
        }
        Scope::Main => desired,
        Scope::Status => {
            let mut obj = old
                .map(without_server_metadata)
                .unwrap_or_else(|| json!({}));
            let root = obj.as_object_mut().expect("objects");
            match desired.get("status") {
                Some(s) if !s.is_null() => {
                    root.insert("status".into(), s.clone());
                }
                _ => {
                    root.remove("status");
                }
            }
            obj
        }
    }
}

impl State {
    pub(crate) fn new(namespaces: &[String], crds: bool) -> State {
        let mut ids = IdGen::new();
        let created = now_rfc3339();
        let namespaces = namespaces
            .iter()
            .map(|n| NamespaceInfo {
                name: n.clone(),
                uid: ids.uuid(),
                created: created.clone(),
            })
            .collect();
        State {
            objects: BTreeMap::new(),
            namespaces,
            rv: 1,
            ids,
            alloc: Allocator::default(),
            stats: Stats::default(),
            crds,
            timers_pending: false,
            not_ready: Default::default(),
            pods_changed: false,
        }
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn object_count(&self) -> usize {
        self.objects.len()
    }

    fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        if self.namespaces.iter().any(|n| n.name == ns) {
            Ok(())
        } else {
            Err(ApiError::namespace_not_found(ns))
        }
    }

    fn namespace_json(&self, n: &NamespaceInfo) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": n.name,
                "uid": n.uid,
                "resourceVersion": "1",
                "creationTimestamp": n.created,
                "labels": {"kubernetes.io/metadata.name": n.name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })
    }

    pub(crate) fn get_namespace(&self, name: &str) -> Result<Value, ApiError> {
        self.namespaces
            .iter()
            .find(|n| n.name == name)
            .map(|n| self.namespace_json(n))
            .ok_or_else(|| ApiError::namespace_not_found(name))
    }

    pub(crate) fn list_namespaces(&self, labels: &LabelSelector, fields: &FieldSelector) -> Value {
        let items: Vec<Value> = self
            .namespaces
            .iter()
            .map(|n| self.namespace_json(n))
            .filter(|o| labels.matches(o["metadata"].get("labels")) && fields.matches(o))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "NamespaceList",
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        })
    }

    /// Direct read (no namespace check).
    pub(crate) fn peek(&self, res: &Resource, ns: &str, name: &str) -> Option<&Stored> {
        self.objects.get(&key(res, ns, name))
    }

    pub(crate) fn get(&self, res: &Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.check_namespace(ns)?;
        self.peek(res, ns, name)
            .map(|s| s.object.clone())
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// A list in namespace `ns` (all namespaces when `None`).
    pub(crate) fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Result<Value, ApiError> {
        if let Some(ns) = ns {
            self.check_namespace(ns)?;
        }
        let r = res.qualified();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((kr, kns, _), _)| *kr == r && ns.is_none_or(|ns| ns == kns))
            .map(|(_, s)| &s.object)
            .filter(|o| {
                labels.matches(o.get("metadata").and_then(|m| m.get("labels"))) && fields.matches(o)
            })
            .cloned()
            .collect();
        Ok(json!({
            "apiVersion": res.api_version(),
            "kind": res.list_kind(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        }))
    }

    /// POST: create, the writer owning every field it set.
    pub(crate) fn create(
        &mut self,
        res: &Resource,
        ns: &str,
        body: &Value,
        opts: WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        self.check_namespace(ns)?;
        require_object(body)?;
        check_identity(res, ns, None, body, false)?;
        let name = match (meta_str(body, "name"), meta_str(body, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(g)) if !g.is_empty() => format!("{g}{}", self.ids.name_suffix()),
            _ => {
                return Err(ApiError::invalid(
                    res,
                    "",
                    &[FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ))
            }
        };
        if let Some(existing) = self.peek(res, ns, &name) {
            let mut e = ApiError::already_exists(res, &name);
            if existing.deleting_since.is_some() {
                e.message = format!("object is being deleted: {}", e.message);
            }
            return Err(e);
        }
        let mut obj = scoped(res, Scope::Main, None, sanitize(res, ns, &name, body));
        // The writer owns what it sent, with the scheme's defaults (handlers/create.go runs the
        // field manager on the decoded, defaulted object); allocations stay unowned.
        scheme_defaults(res, &mut obj);
        let submitted = obj.clone();
        self.commit(
            res,
            ns,
            &name,
            None,
            obj,
            Vec::new(),
            Ownership::Update(submitted),
            opts,
        )
    }

    /// PUT (main resource or status).
    pub(crate) fn replace(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        body: &Value,
        opts: WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        self.check_namespace(ns)?;
        require_object(body)?;
        check_identity(res, ns, Some(name), body, false)?;
        let old = self
            .peek(res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        check_resource_version(res, name, body, &old.object)?;
        let mut desired = sanitize(res, ns, name, body);
        scheme_defaults(res, &mut desired);
        let submitted = desired.clone();
        let obj = scoped(res, opts.scope, Some(&old.object), desired);
        let managed = old.managed.clone();
        self.commit(
            res,
            ns,
            name,
            Some(&old),
            obj,
            managed,
            Ownership::Update(submitted),
            opts,
        )
    }

    /// PATCH with a JSON merge patch (also used for strategic merge patches).
    pub(crate) fn patch(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        patch: &Value,
        opts: WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        self.check_namespace(ns)?;
        require_object(patch)?;
        let old = self
            .peek(res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        check_resource_version(res, name, patch, &old.object)?;
        let mut patched = old.object.clone();
        merge_patch(&mut patched, patch);
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patched object is not an object"));
        }
        check_identity(res, ns, Some(name), &patched, false)?;
        let mut desired = sanitize(res, ns, name, &patched);
        scheme_defaults(res, &mut desired);
        let submitted = desired.clone();
        let obj = scoped(res, opts.scope, Some(&old.object), desired);
        let managed = old.managed.clone();
        self.commit(
            res,
            ns,
            name,
            Some(&old),
            obj,
            managed,
            Ownership::Update(submitted),
            opts,
        )
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply.
    pub(crate) fn apply(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        config: &Value,
        force: bool,
        opts: WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        self.check_namespace(ns)?;
        require_object(config)?;
        check_identity(res, ns, Some(name), config, true)?;
        if config
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let old = self.peek(res, ns, name).cloned();
        if let Some(rv) = meta_str(config, "resourceVersion").filter(|rv| !rv.is_empty()) {
            if old
                .as_ref()
                .and_then(|o| meta_str(&o.object, "resourceVersion"))
                != Some(rv)
            {
                return Err(ApiError::modified(res, name));
            }
        }
        let mut cfg = sanitize(res, ns, name, config);
        let root = cfg.as_object_mut().expect("objects");
        match opts.scope {
            Scope::Main if res.status_subresource => {
                root.remove("status");
            }
            Scope::Main => {}
            Scope::Status => root
                .retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")),
        }
        if opts.scope == Scope::Status {
            if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.retain(|k, _| k == "name" || k == "namespace");
            }
        }
        let (live, managed) = match &old {
            Some(o) => (o.object.clone(), o.managed.clone()),
            None if opts.scope == Scope::Status => return Err(ApiError::not_found(res, name)),
            None => (json!({}), Vec::new()),
        };
        let api_version = res.api_version();
        let now = now_rfc3339();
        let writer = Writer {
            manager: opts.manager,
            api_version: &api_version,
            scope: opts.scope,
            now: &now,
        };
        let (merged, managed) = ssa::apply(res, &live, &managed, &cfg, writer, force)
            .map_err(|conflicts| ssa::conflict_error(res, name, &conflicts))?;
        self.commit(
            res,
            ns,
            name,
            old.as_ref(),
            merged,
            managed,
            Ownership::Decided,
            opts,
        )
    }

    /// DELETE; returns the deleted object. An object with finalizers is only marked
    /// (`metadata.deletionTimestamp`, graceful deletion) and returned; it goes once its last
    /// finalizer is removed (`staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go`,
    /// `Delete` and `updateForGracefulDeletionAndFinalizers`).
    pub(crate) fn delete(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        preconditions: Option<&Value>,
        dry_run: bool,
        actor: Actor,
    ) -> Result<Value, ApiError> {
        self.check_namespace(ns)?;
        let old = self
            .peek(res, ns, name)
            .ok_or_else(|| ApiError::not_found(res, name))?;
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(want) = preconditions
                .and_then(|p| p.get(field))
                .and_then(Value::as_str)
            {
                let have = meta_str(&old.object, field).unwrap_or("");
                if want != have {
                    return Err(ApiError::precondition(
                        res,
                        name,
                        format!("Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"),
                    ));
                }
            }
        }
        if old.deleting_since.is_some() {
            return Ok(old.object.clone());
        }
        let mut object = old.object.clone();
        if !old.finalizers().is_empty() {
            let meta = map_entry(object.as_object_mut().expect("objects"), "metadata");
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if !dry_run {
                self.rv += 1;
                meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
                let stored = self
                    .objects
                    .get_mut(&key(res, ns, name))
                    .expect("just looked up");
                stored.object = object.clone();
                stored.deleting_since = Some(Instant::now());
                self.count_write(actor);
            }
            return Ok(object);
        }
        if !dry_run {
            self.objects.remove(&key(res, ns, name));
            self.rv += 1;
            self.count_write(actor);
        }
        Ok(object)
    }

    fn count_write(&mut self, actor: Actor) {
        match actor {
            Actor::Client => self.stats.writes += 1,
            Actor::Controller => self.stats.controller_writes += 1,
            Actor::Seed => {}
        }
    }

    /// Stores an object as if created by an Update from `manager`, outside HTTP.
    pub(crate) fn seed(&mut self, object: &Value, manager: &str) -> Result<(), ApiError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let res = resources::lookup_kind(api_version, kind, self.crds).ok_or_else(|| {
            ApiError::bad_request(format!(
                "the sandbox does not serve {kind} in {api_version:?}"
            ))
        })?;
        let ns = meta_str(object, "namespace").unwrap_or("").to_string();
        let opts = WriteOptions {
            manager,
            dry_run: false,
            scope: Scope::Main,
            actor: Actor::Seed,
        };
        self.create(res, &ns, object, opts).map(|_| ())
    }

    /// The shared tail of every write.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        old: Option<&Stored>,
        mut obj: Value,
        mut managed: Vec<ManagedEntry>,
        ownership: Ownership,
        opts: WriteOptions<'_>,
    ) -> Result<WriteOutcome, ApiError> {
        {
            let root = obj.as_object_mut().expect("objects");
            root.insert("apiVersion".into(), json!(res.api_version()));
            root.insert("kind".into(), json!(res.kind));
            let meta = map_entry(root, "metadata");
            meta.insert("name".into(), json!(name));
            meta.insert("namespace".into(), json!(ns));
            for f in SERVER_METADATA {
                meta.remove(*f);
            }
        }
        apply_defaults(
            res,
            &mut obj,
            &format!("{ns}/{name}"),
            &mut self.alloc,
            !opts.dry_run,
        );
        let mut errors = super::object_rules::validate(res, &obj);
        let deleting = old.is_some_and(|o| o.deleting_since.is_some());
        if deleting {
            let before = old.map(Stored::finalizers).unwrap_or_default();
            let added: Vec<String> = finalizers_of(&obj)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                errors.push(FieldError::forbidden(
                    "metadata.finalizers",
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(res, name, &errors));
        }
        let api_version = res.api_version();
        let now = now_rfc3339();
        if let Ownership::Update(submitted) = ownership {
            let writer = Writer {
                manager: opts.manager,
                api_version: &api_version,
                scope: opts.scope,
                now: &now,
            };
            managed = ssa::update(res, old.map(|o| &o.object), &submitted, &managed, writer);
        }
        ssa::prune_ownership(res, &obj, &mut managed);

        if let Some(old) = old {
            let same_content = without_server_metadata(&old.object) == obj;
            let same_owners = old.managed.len() == managed.len()
                && old
                    .managed
                    .iter()
                    .zip(&managed)
                    .all(|(a, b)| a.same_ignoring_time(b));
            if same_content && same_owners {
                return Ok(WriteOutcome {
                    object: old.object.clone(),
                    created: false,
                    changed: false,
                });
            }
        }

        let generation = match old {
            None => 1,
            Some(o) => {
                let g = o.object["metadata"]["generation"].as_i64().unwrap_or(1);
                if generation_data(res, &o.object) == generation_data(res, &obj) {
                    g
                } else {
                    g + 1
                }
            }
        };
        let (uid, created_ts) = match old {
            Some(o) => (
                meta_str(&o.object, "uid").unwrap_or("").to_string(),
                meta_str(&o.object, "creationTimestamp")
                    .unwrap_or("")
                    .to_string(),
            ),
            None => (self.ids.uuid(), now.clone()),
        };
        let rv = if opts.dry_run {
            old.and_then(|o| meta_str(&o.object, "resourceVersion"))
                .map(str::to_string)
        } else {
            self.rv += 1;
            Some(self.rv.to_string())
        };
        {
            let meta = map_entry(obj.as_object_mut().expect("objects"), "metadata");
            meta.insert("uid".into(), json!(uid));
            if let Some(rv) = rv {
                meta.insert("resourceVersion".into(), json!(rv));
            }
            meta.insert("generation".into(), json!(generation));
            meta.insert("creationTimestamp".into(), json!(created_ts));
            if let Some(o) = old.filter(|o| o.deleting_since.is_some()) {
                for f in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                    if let Some(v) = o.object["metadata"].get(f) {
                        meta.insert(f.into(), v.clone());
                    }
                }
            }
            meta.insert(
                "managedFields".into(),
                Value::Array(managed.iter().map(ManagedEntry::to_json).collect()),
            );
        }
        let outcome = WriteOutcome {
            object: obj.clone(),
            created: old.is_none(),
            changed: true,
        };
        if !opts.dry_run {
            let deleting_since = old.and_then(|o| o.deleting_since);
            if deleting_since.is_some() && finalizers_of(&obj).is_empty() {
                // The last finalizer is gone: the marked object is deleted now.
                self.objects.remove(&key(res, ns, name));
                self.rv += 1;
            } else {
                self.objects.insert(
                    key(res, ns, name),
                    Stored {
                        object: obj,
                        managed,
                        created: old.map_or_else(Instant::now, |o| o.created),
                        deleting_since,
                    },
                );
            }
            self.count_write(opts.actor);
        }
        Ok(outcome)
    }
}

/// A `metadata.resourceVersion` in a request body is a precondition: it must match the stored one.
fn check_resource_version(
    res: &Resource,
    name: &str,
    body: &Value,
    stored: &Value,
) -> Result<(), ApiError> {
    match meta_str(body, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta_str(stored, "resourceVersion") => {
            Err(ApiError::modified(res, name))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
