//! Field ownership: field sets, server-side apply merge/conflicts/removal, update ownership
//! transfer, and rendering as `managedFields` (FieldsV1).
//!
//! A field set is a set of leaf paths. Maps are recursed by key; lists are atomic leaves except
//! map-lists (Service `spec.ports`, keyed by port and protocol), whose items are addressed by key:
//! the item path itself (`k:{...}` with `"."`) and one path per field inside the item.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::resources::Resource;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    Field(String),
    /// A map-list item, by its canonical key JSON, e.g. `{"port":2888,"protocol":"TCP"}`.
    Key(String),
}

pub(crate) type FieldPath = Vec<PathElement>;
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// Which part of an object an operation writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource: everything except `.status` (when the resource has a status subresource).
    Main,
    /// The status subresource: only `.status`.
    Status,
}

impl Scope {
    pub(crate) fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::Main => None,
            Scope::Status => Some("status"),
        }
    }
}

/// A key field of a map-list, with the value assumed when an item omits it.
pub(crate) struct ListKey {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

/// Sorted by name, as in the real `k:{...}` encoding.
static SERVICE_PORT_KEYS: [ListKey; 2] = [
    ListKey {
        name: "port",
        default: None,
    },
    ListKey {
        name: "protocol",
        default: Some("TCP"),
    },
];

/// Metadata fields that are never part of a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
];

fn is_field(pe: &PathElement, name: &str) -> bool {
    matches!(pe, PathElement::Field(f) if f == name)
}

/// The key fields of the map-list at `path`, or `None` when the list there is atomic.
pub(crate) fn list_keys(res: &Resource, path: &[PathElement]) -> Option<&'static [ListKey]> {
    if res.kind == "Service"
        && path.len() == 2
        && is_field(&path[0], "spec")
        && is_field(&path[1], "ports")
    {
        return Some(&SERVICE_PORT_KEYS);
    }
    None
}

/// The canonical key of a map-list item, or `None` if it lacks a key field (or is not a map).
pub(crate) fn item_key(item: &Value, keys: &[ListKey]) -> Option<String> {
    let obj = item.as_object()?;
    let mut parts = Vec::with_capacity(keys.len());
    for k in keys {
        let v = match obj.get(k.name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => json!(k.default?),
        };
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return None;
        }
        parts.push(format!("{}:{v}", json!(k.name)));
    }
    Some(format!("{{{}}}", parts.join(",")))
}

/// The keys of all items, if every item has one and they are unique (otherwise the list is
/// treated as atomic; validation then rejects it).
fn keyed(items: &[Value], keys: &[ListKey]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let k = item_key(item, keys)?;
        if out.contains(&k) {
            return None;
        }
        out.push(k);
    }
    Some(out)
}

fn child(path: &[PathElement], pe: PathElement) -> FieldPath {
    let mut p = path.to_vec();
    p.push(pe);
    p
}

/// The field set of `obj` for `scope`.
pub(crate) fn fields_of(res: &Resource, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        let include = match scope {
            Scope::Status => k == "status",
            Scope::Main => {
                k != "apiVersion" && k != "kind" && !(k == "status" && res.status_subresource)
            }
        };
        if !include || v.is_null() {
            continue;
        }
        let path = vec![PathElement::Field(k.clone())];
        if k == "metadata" {
            if let Some(m) = v.as_object() {
                for (mk, mv) in m {
                    if SERVER_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    walk(
                        res,
                        mv,
                        child(&path, PathElement::Field(mk.clone())),
                        &mut out,
                    );
                }
            }
            continue;
        }
        walk(res, v, path, &mut out);
    }
    out
}

fn walk(res: &Resource, v: &Value, path: FieldPath, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                walk(res, c, child(&path, PathElement::Field(k.clone())), out);
            }
        }
        Value::Array(items) => {
            if let Some(keys) = list_keys(res, &path) {
                if let Some(ks) = keyed(items, keys) {
                    for (item, key) in items.iter().zip(ks) {
                        let ip = child(&path, PathElement::Key(key));
                        if let Some(m) = item.as_object() {
                            for (k, c) in m {
                                walk(res, c, child(&ip, PathElement::Field(k.clone())), out);
                            }
                        }
                        out.insert(ip);
                    }
                    return;
                }
            }
            out.insert(path);
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at `path` (`None` if absent or null).
pub(crate) fn value_at<'a>(
    res: &Resource,
    obj: &'a Value,
    path: &[PathElement],
) -> Option<&'a Value> {
    let mut cur = obj;
    for (i, pe) in path.iter().enumerate() {
        cur = match pe {
            PathElement::Field(f) => cur.as_object()?.get(f).filter(|v| !v.is_null())?,
            PathElement::Key(k) => {
                let keys = list_keys(res, &path[..i])?;
                cur.as_array()?
                    .iter()
                    .find(|it| item_key(it, keys).as_deref() == Some(k.as_str()))?
            }
        };
    }
    Some(cur)
}

fn value_at_mut<'a>(
    res: &Resource,
    obj: &'a mut Value,
    path: &[PathElement],
) -> Option<&'a mut Value> {
    let mut cur = obj;
    for (i, pe) in path.iter().enumerate() {
        cur = match pe {
            PathElement::Field(f) => cur.as_object_mut()?.get_mut(f)?,
            PathElement::Key(k) => {
                let keys = list_keys(res, &path[..i])?;
                cur.as_array_mut()?
                    .iter_mut()
                    .find(|it| item_key(it, keys).as_deref() == Some(k.as_str()))?
            }
        };
    }
    Some(cur)
}

/// Removes the value at `path`; true if something was removed.
fn remove_at(res: &Resource, obj: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = value_at_mut(res, obj, parent_path) else {
        return false;
    };
    match last {
        PathElement::Field(f) => parent.as_object_mut().and_then(|m| m.remove(f)).is_some(),
        PathElement::Key(k) => {
            let (Some(keys), Some(arr)) = (list_keys(res, parent_path), parent.as_array_mut())
            else {
                return false;
            };
            let before = arr.len();
            arr.retain(|it| item_key(it, keys).as_deref() != Some(k.as_str()));
            arr.len() != before
        }
    }
}

/// Removes `path` and then every parent map (or map-list) it leaves empty, except parents in
/// `protected` (owned by someone), map-list items and `metadata` itself.
pub(crate) fn remove_path(
    res: &Resource,
    obj: &mut Value,
    path: &[PathElement],
    protected: &FieldSet,
) {
    if !remove_at(res, obj, path) {
        return;
    }
    let mut end = path.len() - 1;
    while end >= 1 {
        let prefix = &path[..end];
        if matches!(prefix.last(), Some(PathElement::Key(_)))
            || (prefix.len() == 1 && is_field(&prefix[0], "metadata"))
            || protected.contains(prefix)
        {
            break;
        }
        let empty = match value_at(res, obj, prefix) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty() && list_keys(res, prefix).is_some(),
            _ => false,
        };
        if !empty {
            break;
        }
        remove_at(res, obj, prefix);
        end -= 1;
    }
}

/// Whether two values at a path count as equal for ownership: maps (including map-list items)
/// are equal to each other; only leaves are compared by value.
pub(crate) fn leaf_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Object(_)), Some(Value::Object(_))) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `value` without null map members (nulls mean "not set" in an applied configuration).
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        v => v.clone(),
    }
}

/// Merges an applied configuration into the live object: maps by key, map-lists by item key
/// (live order, new items appended), everything else replaced by the configuration's value.
pub(crate) fn apply_merge(res: &Resource, live: &Value, config: &Value) -> Value {
    merge_at(res, live, config, &mut Vec::new())
}

fn merge_at(res: &Resource, live: &Value, cfg: &Value, path: &mut FieldPath) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    continue;
                }
                path.push(PathElement::Field(k.clone()));
                let nv = match l.get(k) {
                    Some(lv) if !lv.is_null() => merge_at(res, lv, cv, path),
                    _ => strip_nulls(cv),
                };
                path.pop();
                out.insert(k.clone(), nv);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            if let Some(keys) = list_keys(res, path) {
                if let (Some(lk), Some(ck)) = (keyed(l, keys), keyed(c, keys)) {
                    let mut out = Vec::with_capacity(l.len() + c.len());
                    for (item, key) in l.iter().zip(&lk) {
                        match ck.iter().position(|x| x == key) {
                            Some(pos) => {
                                path.push(PathElement::Key(key.clone()));
                                out.push(merge_at(res, item, &c[pos], path));
                                path.pop();
                            }
                            None => out.push(item.clone()),
                        }
                    }
                    for (item, key) in c.iter().zip(&ck) {
                        if !lk.contains(key) {
                            out.push(strip_nulls(item));
                        }
                    }
                    return Value::Array(out);
                }
            }
            strip_nulls(cfg)
        }
        _ => strip_nulls(cfg),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Apply,
    Update,
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManagedEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn is(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How conflict messages name this manager: `"m"`, `"m" using v1`,
    /// `"m" with subresource "status" using v1`.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// Equal apart from the timestamp.
    pub(crate) fn same_ignoring_time(&self, other: &ManagedEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.api_version == other.api_version
            && self.subresource == other.subresource
            && self.fields == other.fields
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert(
            "operation".into(),
            json!(match self.operation {
                Operation::Apply => "Apply",
                Operation::Update => "Update",
            }),
        );
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("time".into(), json!(self.time));
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), to_fields_v1(&self.fields));
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), json!(sub));
        }
        Value::Object(m)
    }
}

/// Renders a field set in the FieldsV1 shape.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            let key = match pe {
                PathElement::Field(f) => format!("f:{f}"),
                PathElement::Key(k) => format!("k:{k}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are maps");
        }
        if matches!(path.last(), Some(PathElement::Key(_))) {
            node.insert(".".into(), Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

/// A path as the real server prints it: `.spec.ports[port=2888,protocol="TCP"].name`.
pub(crate) fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            PathElement::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Map<String, Value>>(k) {
                    Ok(m) => m.iter().map(|(name, v)| format!("{name}={v}")).collect(),
                    Err(_) => vec![k.clone()],
                };
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
        }
    }
    s
}

/// One field owned by another manager whose value an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// `ManagedEntry::describe()` of the owner.
    pub owner: String,
    pub path: FieldPath,
}

/// The 409 answer for unforced conflicts.
pub(crate) fn conflict_error(res: &Resource, name: &str, conflicts: &[Conflict]) -> ApiError {
    let n = conflicts.len();
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with {}: {}", c.owner, path_string(&c.path)))
        .collect();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "type": "FieldManagerConflict",
                "message": format!("conflict with {}", c.owner),
                "field": path_string(&c.path),
            })
        })
        .collect();
    let mut details = json!({"name": name, "kind": res.plural, "causes": causes});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    ApiError {
        code: 409,
        reason: "Conflict",
        message: format!(
            "Apply failed with {n} conflict{}: {}",
            if n == 1 { "" } else { "s" },
            lines.join("\n")
        ),
        details: Some(details),
    }
}

/// Who is writing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub scope: Scope,
    pub now: &'a str,
}

/// Server-side apply of `config` (already restricted to `writer.scope`) onto `live`.
///
/// Returns the merged object (before defaulting) and the new managed fields, or the conflicts
/// when there are some and `force` is false.
pub(crate) fn apply(
    res: &Resource,
    live: &Value,
    managed: &[ManagedEntry],
    config: &Value,
    writer: Writer<'_>,
    force: bool,
) -> Result<(Value, Vec<ManagedEntry>), Vec<Conflict>> {
    let sub = writer.scope.subresource();
    let is_me = |e: &ManagedEntry| e.is(writer.manager, Operation::Apply, sub);
    let applied = fields_of(res, config, writer.scope);
    let merged = apply_merge(res, live, config);

    // 1. Conflicts: fields owned by others whose value this apply changes.
    let mut conflicts: Vec<(usize, Conflict)> = Vec::new();
    for (i, e) in managed.iter().enumerate().filter(|(_, e)| !is_me(e)) {
        for p in &e.fields {
            if !leaf_equal(value_at(res, live, p), value_at(res, &merged, p)) {
                conflicts.push((
                    i,
                    Conflict {
                        owner: e.describe(),
                        path: p.clone(),
                    },
                ));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts.into_iter().map(|(_, c)| c).collect());
    }
    let mut managed = managed.to_vec();
    for (i, c) in &conflicts {
        managed[*i].fields.remove(&c.path);
    }

    // 3. Fields this manager applied before, no longer applies and nobody else owns: remove them.
    let prev: FieldSet = managed
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = managed
        .iter()
        .filter(|e| !is_me(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut protected = others.clone();
    protected.extend(applied.iter().cloned());
    let mut obj = merged;
    for p in prev.difference(&applied) {
        let owned_below = others
            .range(p.clone()..)
            .next()
            .is_some_and(|q| q.starts_with(p));
        if owned_below || is_key_field(res, p) {
            continue;
        }
        remove_path(res, &mut obj, p, &protected);
    }

    // 4. This manager's Apply entry is exactly what it applied.
    match managed.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            e.fields = applied;
            e.api_version = writer.api_version.to_string();
            e.time = writer.now.to_string();
        }
        None => managed.push(ManagedEntry {
            manager: writer.manager.to_string(),
            operation: Operation::Apply,
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            subresource: sub.map(str::to_string),
            fields: applied,
        }),
    }
    Ok((obj, managed))
}

/// Whether `path` is a key field inside a map-list item (never removed on its own).
fn is_key_field(res: &Resource, path: &[PathElement]) -> bool {
    let n = path.len();
    if n < 3 {
        return false;
    }
    match (&path[n - 2], &path[n - 1]) {
        (PathElement::Key(_), PathElement::Field(f)) => {
            list_keys(res, &path[..n - 2]).is_some_and(|keys| keys.iter().any(|k| k.name == f))
        }
        _ => false,
    }
}

/// Ownership for an Update (create, replace, merge patch) by `writer`: it gains every path of
/// `submitted` it added or changed (all of them on create, when `old` is `None`), and those
/// paths are taken from every other manager. Updates never conflict.
pub(crate) fn update_ownership(
    res: &Resource,
    old: Option<&Value>,
    submitted: &FieldSet,
    new: &Value,
    managed: &mut Vec<ManagedEntry>,
    writer: Writer<'_>,
) {
    let sub = writer.scope.subresource();
    let gained: FieldSet = submitted
        .iter()
        .filter(|p| match old {
            None => true,
            Some(o) => !leaf_equal(value_at(res, o, p), value_at(res, new, p)),
        })
        .cloned()
        .collect();
    if gained.is_empty() {
        return;
    }
    for e in managed.iter_mut() {
        if !e.is(writer.manager, Operation::Update, sub) {
            e.fields.retain(|p| !gained.contains(p));
        }
    }
    match managed
        .iter_mut()
        .find(|e| e.is(writer.manager, Operation::Update, sub))
    {
        Some(e) => {
            e.fields.extend(gained);
            e.api_version = writer.api_version.to_string();
            e.time = writer.now.to_string();
        }
        None => managed.push(ManagedEntry {
            manager: writer.manager.to_string(),
            operation: Operation::Update,
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            subresource: sub.map(str::to_string),
            fields: gained,
        }),
    }
}

/// Drops owned paths that no longer exist in `obj` (or are no longer leaves), then entries
/// left without fields.
pub(crate) fn prune_ownership(res: &Resource, obj: &Value, managed: &mut Vec<ManagedEntry>) {
    for e in managed.iter_mut() {
        e.fields.retain(|p| match value_at(res, obj, p) {
            None => false,
            Some(Value::Object(m)) => m.is_empty() || matches!(p.last(), Some(PathElement::Key(_))),
            Some(_) => true,
        });
    }
    managed.retain(|e| !e.fields.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::{ENDPOINTS, SERVICES};

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn f(path: &str) -> FieldPath {
        path.split('.')
            .map(|s| PathElement::Field(s.to_string()))
            .collect()
    }

    fn port_path(port: u16, rest: Option<&str>) -> FieldPath {
        let mut p = f("spec.ports");
        p.push(PathElement::Key(format!(
            r#"{{"port":{port},"protocol":"TCP"}}"#
        )));
        if let Some(r) = rest {
            p.push(PathElement::Field(r.to_string()));
        }
        p
    }

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "v1",
            scope: Scope::Main,
            now: NOW,
        }
    }

    fn svc(spec: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "zk", "namespace": "ns", "labels": {"app": "zk"}, "uid": "x", "resourceVersion": "7"},
            "spec": spec,
            "status": {"loadBalancer": {}},
        })
    }

    /// Creates `config` through apply by `manager`.
    fn create(config: &Value, manager: &str) -> (Value, Vec<ManagedEntry>) {
        apply(&SERVICES, &json!({}), &[], config, writer(manager), false).unwrap()
    }

    #[test]
    fn field_set_recurses_maps_and_keys_service_ports() {
        let obj = svc(json!({
            "selector": {"app": "zk"},
            "ports": [{"name": "quorum", "port": 2888}, {"name": "client", "port": 2181, "protocol": "UDP"}],
            "ipFamilies": ["IPv4"],
        }));
        let set = fields_of(&SERVICES, &obj, Scope::Main);
        let mut udp = f("spec.ports");
        udp.push(PathElement::Key(r#"{"port":2181,"protocol":"UDP"}"#.into()));
        let expected: FieldSet = [
            f("metadata.labels.app"),
            f("spec.selector.app"),
            f("spec.ipFamilies"),
            port_path(2888, None),
            port_path(2888, Some("name")),
            port_path(2888, Some("port")),
            udp.clone(),
            [udp.clone(), vec![PathElement::Field("name".into())]].concat(),
            [udp.clone(), vec![PathElement::Field("port".into())]].concat(),
            [udp, vec![PathElement::Field("protocol".into())]].concat(),
        ]
        .into_iter()
        .collect();
        assert_eq!(set, expected);
        // The status subresource scope sees only status; status is never in the main scope.
        assert_eq!(
            fields_of(&SERVICES, &obj, Scope::Status),
            FieldSet::from([f("status.loadBalancer")])
        );
    }

    #[test]
    fn endpoints_subsets_are_atomic() {
        let obj =
            json!({"metadata": {"name": "zk"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(
            fields_of(&ENDPOINTS, &obj, Scope::Main),
            FieldSet::from([f("subsets")])
        );
    }

    #[test]
    fn renders_fields_v1_and_paths() {
        let set = FieldSet::from([
            f("metadata.labels.app"),
            port_path(2888, None),
            port_path(2888, Some("name")),
        ]);
        assert_eq!(
            to_fields_v1(&set),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:ports": {"k:{\"port\":2888,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}},
            })
        );
        assert_eq!(
            path_string(&port_path(2888, Some("name"))),
            r#".spec.ports[port=2888,protocol="TCP"].name"#
        );
    }

    #[test]
    fn conflict_with_other_manager_on_changed_value() {
        let (live, mut managed) = create(
            &svc(json!({"ports": [{"name": "quorum", "port": 2888}]})),
            "zkctl",
        );
        // kubectl-edit changes the port name by an Update.
        let mut edited = live.clone();
        edited["spec"]["ports"][0]["name"] = json!("peer");
        let submitted = fields_of(&SERVICES, &edited, Scope::Main);
        update_ownership(
            &SERVICES,
            Some(&live),
            &submitted,
            &edited,
            &mut managed,
            writer("kubectl-edit"),
        );
        let edit = managed
            .iter()
            .find(|e| e.manager == "kubectl-edit")
            .unwrap();
        assert_eq!(edit.fields, FieldSet::from([port_path(2888, Some("name"))]));

        let err = apply(
            &SERVICES,
            &edited,
            &managed,
            &svc(json!({"ports": [{"name": "quorum", "port": 2888}]})),
            writer("zkctl"),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                owner: r#""kubectl-edit" using v1"#.into(),
                path: port_path(2888, Some("name")),
            }]
        );
        let e = conflict_error(&SERVICES, "zk", &err);
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .spec.ports[port=2888,protocol="TCP"].name"#
        );
        let cause = &e.details.unwrap()["causes"][0];
        assert_eq!(cause["type"], "FieldManagerConflict");
        assert_eq!(cause["reason"], "FieldManagerConflict");
        assert_eq!(cause["message"], r#"conflict with "kubectl-edit" using v1"#);
        assert_eq!(
            cause["field"],
            r#".spec.ports[port=2888,protocol="TCP"].name"#
        );
    }

    #[test]
    fn equal_values_are_shared_not_conflicting() {
        let cfg = svc(json!({"selector": {"app": "zk"}}));
        let (live, managed) = create(&cfg, "a");
        let (obj, managed) = apply(&SERVICES, &live, &managed, &cfg, writer("b"), false).unwrap();
        assert_eq!(obj, live);
        assert_eq!(managed.len(), 2);
        assert!(managed
            .iter()
            .all(|e| e.fields.contains(&f("spec.selector.app"))));
        // Then a dropping the field keeps it, because b still owns it.
        let (obj, managed) = apply(
            &SERVICES,
            &obj,
            &managed,
            &svc(json!({})),
            writer("a"),
            false,
        )
        .unwrap();
        assert_eq!(obj["spec"]["selector"]["app"], "zk");
        let a = managed.iter().find(|e| e.manager == "a").unwrap();
        assert!(!a.fields.contains(&f("spec.selector.app")));
    }

    #[test]
    fn multiple_conflicts_are_listed_one_per_line() {
        let (live, managed) = create(&svc(json!({"selector": {"app": "zk", "tier": "db"}})), "a");
        let err = apply(
            &SERVICES,
            &live,
            &managed,
            &svc(json!({"selector": {"app": "x", "tier": "y"}})),
            writer("b"),
            false,
        )
        .unwrap_err();
        let e = conflict_error(&SERVICES, "zk", &err);
        assert_eq!(
            e.message,
            "Apply failed with 2 conflicts: conflict with \"a\": .spec.selector.app\nconflict with \"a\": .spec.selector.tier"
        );
    }

    #[test]
    fn force_moves_ownership() {
        let (live, managed) = create(&svc(json!({"selector": {"app": "zk", "tier": "db"}})), "a");
        let (obj, managed) = apply(
            &SERVICES,
            &live,
            &managed,
            &svc(json!({"selector": {"app": "other"}})),
            writer("b"),
            true,
        )
        .unwrap();
        assert_eq!(
            obj["spec"]["selector"],
            json!({"app": "other", "tier": "db"})
        );
        let a = managed.iter().find(|e| e.manager == "a").unwrap();
        let b = managed.iter().find(|e| e.manager == "b").unwrap();
        assert!(!a.fields.contains(&f("spec.selector.app")));
        assert!(a.fields.contains(&f("spec.selector.tier")));
        assert!(b.fields.contains(&f("spec.selector.app")));
    }

    #[test]
    fn dropped_fields_are_removed_with_empty_parents() {
        let (live, managed) = create(
            &svc(json!({
                "selector": {"app": "zk"},
                "ports": [{"name": "quorum", "port": 2888}, {"name": "election", "port": 3888}],
            })),
            "a",
        );
        let mut cfg = svc(json!({"ports": [{"name": "quorum", "port": 2888}]}));
        cfg["metadata"].as_object_mut().unwrap().remove("labels");
        let (obj, managed) = apply(&SERVICES, &live, &managed, &cfg, writer("a"), false).unwrap();
        assert!(obj["spec"].get("selector").is_none(), "{obj}");
        assert!(obj["metadata"].get("labels").is_none(), "{obj}");
        assert_eq!(
            obj["spec"]["ports"],
            json!([{"name": "quorum", "port": 2888}])
        );
        assert_eq!(
            managed[0].fields,
            FieldSet::from([
                port_path(2888, None),
                port_path(2888, Some("name")),
                port_path(2888, Some("port"))
            ])
        );
    }

    #[test]
    fn dropped_item_stays_while_another_manager_owns_part_of_it() {
        let (live, mut managed) = create(
            &svc(
                json!({"ports": [{"name": "quorum", "port": 2888}, {"name": "election", "port": 3888}]}),
            ),
            "a",
        );
        let mut edited = live.clone();
        edited["spec"]["ports"][1]["targetPort"] = json!(3889);
        let submitted = fields_of(&SERVICES, &edited, Scope::Main);
        update_ownership(
            &SERVICES,
            Some(&live),
            &submitted,
            &edited,
            &mut managed,
            writer("edit"),
        );
        let (obj, _) = apply(
            &SERVICES,
            &edited,
            &managed,
            &svc(json!({"ports": [{"name": "quorum", "port": 2888}]})),
            writer("a"),
            false,
        )
        .unwrap();
        // The item stays (edit owns its targetPort); a's name in it is removed, the key is kept.
        assert_eq!(
            obj["spec"]["ports"],
            json!([{"name": "quorum", "port": 2888}, {"port": 3888, "targetPort": 3889}])
        );
    }

    #[test]
    fn update_transfers_ownership_and_never_conflicts() {
        let (live, mut managed) = create(
            &svc(json!({"selector": {"app": "zk"}, "type": "ClusterIP"})),
            "a",
        );
        let mut edited = live.clone();
        edited["spec"]["selector"]["app"] = json!("other");
        let submitted = fields_of(&SERVICES, &edited, Scope::Main);
        update_ownership(
            &SERVICES,
            Some(&live),
            &submitted,
            &edited,
            &mut managed,
            writer("u"),
        );
        prune_ownership(&SERVICES, &edited, &mut managed);
        let a = managed.iter().find(|e| e.manager == "a").unwrap();
        let u = managed.iter().find(|e| e.manager == "u").unwrap();
        assert_eq!(u.operation, Operation::Update);
        assert_eq!(u.fields, FieldSet::from([f("spec.selector.app")]));
        assert!(!a.fields.contains(&f("spec.selector.app")));
        assert!(a.fields.contains(&f("spec.type")));
        // An update that changes nothing gains nothing.
        let before = managed.clone();
        update_ownership(
            &SERVICES,
            Some(&edited),
            &submitted,
            &edited,
            &mut managed,
            writer("v"),
        );
        assert_eq!(managed, before);
    }

    #[test]
    fn reapplying_the_same_config_changes_nothing() {
        let cfg = svc(json!({"ports": [{"name": "quorum", "port": 2888}]}));
        let (live, managed) = create(&cfg, "a");
        let (obj, again) = apply(&SERVICES, &live, &managed, &cfg, writer("a"), false).unwrap();
        assert_eq!(obj, live);
        assert!(again
            .iter()
            .zip(&managed)
            .all(|(x, y)| x.same_ignoring_time(y)));
    }

    #[test]
    fn prune_drops_vanished_paths_and_empty_entries() {
        let (live, mut managed) = create(&svc(json!({"selector": {"app": "zk"}})), "a");
        let mut obj = live.clone();
        obj["spec"].as_object_mut().unwrap().remove("selector");
        obj["metadata"].as_object_mut().unwrap().remove("labels");
        prune_ownership(&SERVICES, &obj, &mut managed);
        assert!(managed.is_empty());
    }

    #[test]
    fn describes_managers_like_the_real_server() {
        let mut e = ManagedEntry {
            manager: "m".into(),
            operation: Operation::Apply,
            api_version: "v1".into(),
            time: NOW.into(),
            subresource: None,
            fields: FieldSet::new(),
        };
        assert_eq!(e.describe(), r#""m""#);
        e.operation = Operation::Update;
        e.subresource = Some("status".into());
        assert_eq!(e.describe(), r#""m" with subresource "status" using v1"#);
    }
}
