//! Pure: what a server-side apply of a desired object would do to a live object, worked out from
//! the live object's `managedFields` alone, so that a read-only identity (get and list, no patch)
//! can tell whether the cluster drifted from the code.
//!
//! The model is the one of server-side apply (structured-merge-diff): a field set is a set of leaf
//! paths; maps are recursed by key; lists are atomic, except Service `spec.ports`, a map-list keyed
//! by `port` and `protocol`. An apply by manager M with configuration A
//! - conflicts on every field another manager owns whose value merging A would change;
//! - changes the object when merging A changes a value, or when it removes a field M applied
//!   before, no longer applies, and nobody else owns.
//!
//! `cargo xtask diff` and `deploy` ask the server itself (a dry-run apply); `drift` uses this. A
//! test keeps both answers equal on every kind of drift.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Field(String),
    /// A map-list item by its key fields (name -> JSON text of the value).
    Key(BTreeMap<String, String>),
    /// A set member (`v:`) or index (`i:`) of a list this model treats as atomic.
    Other(String),
}

pub type Path = Vec<Step>;
pub type FieldSet = BTreeSet<Path>;

/// Metadata that is never part of a field set.
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

/// The key fields of the map-list at `path` of a `kind` object (with the value a missing key
/// field defaults to), or `None` when the list there is atomic.
fn list_keys(kind: &str, path: &[Step]) -> Option<&'static [(&'static str, Option<&'static str>)]> {
    static SERVICE_PORTS: [(&str, Option<&str>); 2] = [("port", None), ("protocol", Some("TCP"))];
    match (kind, path) {
        ("Service", [Step::Field(a), Step::Field(b)]) if a == "spec" && b == "ports" => {
            Some(&SERVICE_PORTS)
        }
        _ => None,
    }
}

fn item_key(
    item: &Value,
    keys: &[(&'static str, Option<&'static str>)],
) -> Option<BTreeMap<String, String>> {
    let obj = item.as_object()?;
    keys.iter()
        .map(|(name, default)| {
            let v = match obj.get(*name) {
                Some(v) if !v.is_null() => v.clone(),
                _ => Value::String((*default)?.to_string()),
            };
            Some((name.to_string(), v.to_string()))
        })
        .collect()
}

fn child(path: &[Step], step: Step) -> Path {
    let mut p = path.to_vec();
    p.push(step);
    p
}

/// The field set of `obj` (its apiVersion, kind, server metadata and status excluded).
pub fn fields_of(obj: &Value) -> FieldSet {
    let kind = obj["kind"].as_str().unwrap_or("");
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        if matches!(k.as_str(), "apiVersion" | "kind" | "status") || v.is_null() {
            continue;
        }
        let path = vec![Step::Field(k.clone())];
        if k == "metadata" {
            for (mk, mv) in v.as_object().into_iter().flatten() {
                if !SERVER_METADATA.contains(&mk.as_str()) {
                    walk(kind, mv, child(&path, Step::Field(mk.clone())), &mut out);
                }
            }
            continue;
        }
        walk(kind, v, path, &mut out);
    }
    out
}

fn walk(kind: &str, v: &Value, path: Path, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                walk(kind, c, child(&path, Step::Field(k.clone())), out);
            }
        }
        Value::Array(items) => {
            if let Some(keys) = list_keys(kind, &path) {
                let ks: Option<Vec<_>> = items.iter().map(|i| item_key(i, keys)).collect();
                if let Some(ks) = ks {
                    for (item, key) in items.iter().zip(ks) {
                        let ip = child(&path, Step::Key(key));
                        for (k, c) in item.as_object().into_iter().flatten() {
                            walk(kind, c, child(&ip, Step::Field(k.clone())), out);
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

/// A FieldsV1 document (`managedFields[].fieldsV1`) as a field set: `f:` steps are fields, `k:`
/// steps map-list items, `.` marks the node itself; leaves are empty nodes.
pub fn parse_fields_v1(doc: &Value) -> FieldSet {
    fn go(node: &Map<String, Value>, path: Path, out: &mut FieldSet) {
        if node.is_empty() {
            out.insert(path);
            return;
        }
        for (k, v) in node {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            let step = if let Some(f) = k.strip_prefix("f:") {
                Step::Field(f.to_string())
            } else if let Some(key) = k.strip_prefix("k:") {
                match serde_json::from_str::<Map<String, Value>>(key) {
                    Ok(m) => Step::Key(m.iter().map(|(n, v)| (n.clone(), v.to_string())).collect()),
                    Err(_) => Step::Other(k.clone()),
                }
            } else {
                Step::Other(k.clone())
            };
            let sub = v.as_object().cloned().unwrap_or_default();
            go(&sub, child(&path, step), out);
        }
    }
    let mut out = FieldSet::new();
    if let Some(m) = doc.as_object() {
        go(m, Vec::new(), &mut out);
    }
    out
}

/// The value at `path` (`None` if absent or null).
pub fn value_at<'a>(obj: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let kind = obj["kind"].as_str().unwrap_or("");
    let mut cur = obj;
    for (i, step) in path.iter().enumerate() {
        cur = match step {
            Step::Field(f) => cur.as_object()?.get(f).filter(|v| !v.is_null())?,
            Step::Key(k) => {
                let keys = list_keys(kind, &path[..i])?;
                cur.as_array()?
                    .iter()
                    .find(|it| item_key(it, keys).as_ref() == Some(k))?
            }
            Step::Other(_) => return None,
        };
    }
    Some(cur)
}

/// Maps (and map-list items) count as equal; leaves are compared by value.
fn leaf_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Object(_)), Some(Value::Object(_))) => true,
        (x, y) => x == y,
    }
}

/// Merges `desired` into `live` as an apply does: maps by key, map-lists by item key (live order,
/// new items appended), everything else replaced.
fn merge(kind: &str, live: &Value, desired: &Value, path: &mut Path) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for (k, dv) in d {
                if dv.is_null() {
                    continue;
                }
                path.push(Step::Field(k.clone()));
                let nv = match l.get(k) {
                    Some(lv) if !lv.is_null() => merge(kind, lv, dv, path),
                    _ => dv.clone(),
                };
                path.pop();
                out.insert(k.clone(), nv);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(d)) => {
            if let Some(keys) = list_keys(kind, path) {
                let lk: Option<Vec<_>> = l.iter().map(|i| item_key(i, keys)).collect();
                let dk: Option<Vec<_>> = d.iter().map(|i| item_key(i, keys)).collect();
                if let (Some(lk), Some(dk)) = (lk, dk) {
                    let mut out = Vec::new();
                    for (item, key) in l.iter().zip(&lk) {
                        match dk.iter().position(|x| x == key) {
                            Some(pos) => {
                                path.push(Step::Key(key.clone()));
                                out.push(merge(kind, item, &d[pos], path));
                                path.pop();
                            }
                            None => out.push(item.clone()),
                        }
                    }
                    for (item, key) in d.iter().zip(&dk) {
                        if !lk.contains(key) {
                            out.push(item.clone());
                        }
                    }
                    return Value::Array(out);
                }
            }
            desired.clone()
        }
        _ => desired.clone(),
    }
}

fn remove_at(obj: &mut Value, path: &[Step]) {
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = &mut *obj;
    for (i, step) in parent_path.iter().enumerate() {
        let next = match step {
            Step::Field(f) => cur.as_object_mut().and_then(|m| m.get_mut(f)),
            Step::Key(k) => match list_keys(&kind, &parent_path[..i]) {
                Some(keys) => cur.as_array_mut().and_then(|a| {
                    a.iter_mut()
                        .find(|it| item_key(it, keys).as_ref() == Some(k))
                }),
                None => None,
            },
            Step::Other(_) => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Step::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Step::Key(k) => {
            if let (Some(keys), Some(a)) = (list_keys(&kind, parent_path), cur.as_array_mut()) {
                a.retain(|it| item_key(it, keys).as_ref() != Some(k));
            }
        }
        Step::Other(_) => {}
    }
}

/// A field another manager owns whose value the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedElsewhere {
    pub manager: String,
    /// As the API server prints it: `.spec.ports[port=2888,protocol="TCP"].name`.
    pub field: String,
}

/// What applying a desired object would do to the live one.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The live object as the apply would leave it.
    pub after: Value,
    pub changes: bool,
    pub conflicts: Vec<OwnedElsewhere>,
}

/// One `managedFields` entry.
struct Entry {
    manager: String,
    apply: bool,
    subresource: bool,
    fields: FieldSet,
}

fn entries(live: &Value) -> Vec<Entry> {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or("").to_string(),
            apply: e["operation"] == "Apply",
            subresource: e
                .get("subresource")
                .is_some_and(|s| s.as_str().is_some_and(|s| !s.is_empty())),
            fields: parse_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Whether `manager` has written `live` at all (any managedFields entry): what tells this tool's
/// objects from the copies controllers make of their labels.
pub fn written_by(live: &Value, manager: &str) -> bool {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["manager"] == manager)
}

/// What a server-side apply of `desired` by `manager` would do to `live`.
pub fn predict(desired: &Value, live: &Value, manager: &str) -> Prediction {
    let kind = desired["kind"].as_str().unwrap_or("");
    let applied = fields_of(desired);
    let merged = merge(kind, live, desired, &mut Vec::new());
    let all = entries(live);
    let (mine, others): (Vec<&Entry>, Vec<&Entry>) = all
        .iter()
        .filter(|e| !e.subresource)
        .partition(|e| e.manager == manager && e.apply);

    let mut conflicts = Vec::new();
    for e in &others {
        for p in &e.fields {
            if !leaf_equal(value_at(live, p), value_at(&merged, p)) {
                conflicts.push(OwnedElsewhere {
                    manager: e.manager.clone(),
                    field: path_string(p),
                });
            }
        }
    }
    let owned_elsewhere: FieldSet = others
        .iter()
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut after = merged;
    let previously: FieldSet = mine.iter().flat_map(|e| e.fields.iter().cloned()).collect();
    for p in previously.difference(&applied) {
        let owned_below = owned_elsewhere.iter().any(|q| q.starts_with(p));
        let key_field = matches!(p.len().checked_sub(2).map(|i| &p[i]), Some(Step::Key(k))
            if matches!(p.last(), Some(Step::Field(f)) if k.contains_key(f)));
        if !owned_below && !key_field && value_at(&after, p).is_some() {
            remove_at(&mut after, p);
        }
    }
    Prediction {
        changes: after != *live,
        after,
        conflicts,
    }
}

/// `.spec.ports[port=2888,protocol="TCP"].name`.
pub fn path_string(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Step::Key(k) => {
                let parts: Vec<String> = k.iter().map(|(n, v)| format!("{n}={v}")).collect();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
            Step::Other(o) => {
                s.push('[');
                s.push_str(o);
                s.push(']');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ME: &str = "zk-observers-xtask";

    fn desired() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk0", "namespace": "zookeeper", "labels": {"app": "zk"}},
            "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["198.18.1.4/32"],
                     "ports": [{"name": "tcp-quorum", "port": 2888, "protocol": "TCP", "targetPort": 2888}]}})
    }

    /// `desired` as the server stores it after an apply by ME, with defaults and allocations.
    fn live() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk0", "namespace": "zookeeper", "labels": {"app": "zk"}, "uid": "u",
              "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
              "managedFields": [
                {"manager": ME, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {
                  "f:metadata": {"f:labels": {"f:app": {}}},
                  "f:spec": {"f:type": {}, "f:loadBalancerSourceRanges": {},
                    "f:ports": {"k:{\"port\":2888,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}}}},
                {"manager": "cloud-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"service.kubernetes.io/load-balancer-cleanup\"": {}}}}},
                {"manager": "cloud-controller-manager", "operation": "Update", "apiVersion": "v1", "subresource": "status",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}}]},
            "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["198.18.1.4/32"], "clusterIP": "10.96.0.10",
                     "sessionAffinity": "None",
                     "ports": [{"name": "tcp-quorum", "port": 2888, "protocol": "TCP", "targetPort": 2888, "nodePort": 30000}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.11"}]}}})
    }

    #[test]
    fn an_applied_object_is_in_sync() {
        let p = predict(&desired(), &live(), ME);
        assert!(!p.changes, "{p:?}");
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn a_value_changed_by_another_manager_is_a_change_and_a_conflict() {
        let mut live = live();
        live["spec"]["loadBalancerSourceRanges"] = json!(["0.0.0.0/0"]);
        let mf = live["metadata"]["managedFields"].as_array_mut().unwrap();
        mf[0]["fieldsV1"]["f:spec"]
            .as_object_mut()
            .unwrap()
            .remove("f:loadBalancerSourceRanges");
        mf.push(
            json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1",
            "fieldsV1": {"f:spec": {"f:loadBalancerSourceRanges": {}}}}),
        );
        let p = predict(&desired(), &live, ME);
        assert!(p.changes);
        assert_eq!(
            p.conflicts,
            [OwnedElsewhere {
                manager: "kubectl-edit".into(),
                field: ".spec.loadBalancerSourceRanges".into()
            }]
        );
        assert_eq!(
            p.after["spec"]["loadBalancerSourceRanges"],
            json!(["198.18.1.4/32"])
        );
    }

    #[test]
    fn a_field_no_longer_desired_is_removed_unless_someone_else_owns_it() {
        let mut d = desired();
        d["metadata"]["labels"] = json!({});
        let p = predict(&d, &live(), ME);
        assert!(p.changes);
        assert!(p.after["metadata"]["labels"].get("app").is_none());
        let mut shared = live();
        shared["metadata"]["managedFields"].as_array_mut().unwrap().push(
            json!({"manager": "helm", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}));
        assert!(!predict(&d, &shared, ME).changes);
    }

    #[test]
    fn a_new_port_merges_by_key_and_a_port_value_change_is_seen() {
        let mut d = desired();
        d["spec"]["ports"].as_array_mut().unwrap().push(
            json!({"name": "tcp-election", "port": 3888, "protocol": "TCP", "targetPort": 3888}),
        );
        let p = predict(&d, &live(), ME);
        assert!(p.changes);
        assert_eq!(
            p.after["spec"]["ports"][0]["nodePort"], 30000,
            "live fields of kept items stay"
        );
        assert_eq!(p.after["spec"]["ports"][1]["port"], 3888);
        let mut d = desired();
        d["spec"]["ports"][0]["name"] = json!("quorum");
        assert!(predict(&d, &live(), ME).changes);
    }

    #[test]
    fn fields_v1_parses_into_the_same_paths() {
        let live = live();
        let from_doc = parse_fields_v1(&live["metadata"]["managedFields"][0]["fieldsV1"]);
        assert_eq!(from_doc, fields_of(&desired()));
        assert_eq!(
            path_string(&from_doc.iter().find(|p| p.len() == 4).unwrap().clone()),
            ".spec.ports[port=2888,protocol=\"TCP\"].name"
        );
    }

    #[test]
    fn who_wrote_an_object() {
        assert!(written_by(&live(), ME));
        assert!(!written_by(&live(), "kube-controller-manager"));
    }
}
