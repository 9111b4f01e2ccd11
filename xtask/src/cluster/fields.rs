//! Pure: what a server-side apply of a desired object would do to a live object, worked out from
//! the live object's `managedFields` alone, so that a read-only identity (get and list, no patch)
//! can tell whether the cluster drifted from the code.
//!
//! The model is structured-merge-diff's (`merge/update.go`, `Updater.Apply`), with the shape of
//! every field from `manifests::shapes` (the upstream markers: a Service's `spec.selector` is one
//! field, its `spec.ports` a map-list keyed by port and protocol, `finalizers` a set). An apply by
//! manager M with configuration A:
//! - merges A into the live object (granular maps key by key, atomic values replaced, sets and
//!   map-lists item by item in upstream's order);
//! - removes what M applied before, no longer applies, and no manager (A included) owns, with
//!   everything below it; a struct field someone owns something inside stays;
//! - conflicts on every field another manager owns that the apply adds or whose (leaf) value it
//!   changes.
//!
//! `cargo xtask diff` and `deploy` ask the server itself (a dry-run apply); `drift` uses this. A
//! test keeps both answers equal on every kind of drift, and this module's tests replay
//! structured-merge-diff's own worked scenarios (`tests/upstream/structured-merge-diff.yaml`).
//! The API test server implements the same upstream rules separately
//! (`sandbox/src/apiserver/ssa.rs`): neither is checked only against the other.

use std::collections::{BTreeMap, BTreeSet};

use manifests::shapes::{ListKey, Schema, Shape};
use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Field(String),
    /// A map-list item by its key fields (name -> JSON text of the value).
    Key(BTreeMap<String, String>),
    /// A set member by its value (JSON text).
    Value(String),
    /// A step this model does not address (`i:` list indexes).
    Other(String),
}

pub type Path = Vec<Step>;
pub type FieldSet = BTreeSet<Path>;

static STRUCT: Shape = Shape::Struct;
static MAP: Shape = Shape::Map;
static SCALAR: Shape = Shape::Scalar;

/// The shape of the node `value` at `path`, whose field names are `names`.
fn node_shape<'s>(schema: &'s Schema, path: &[Step], names: &[&str], value: &Value) -> &'s Shape {
    match path.last() {
        None if schema.objects == Shape::Map => &MAP,
        None => &STRUCT,
        Some(Step::Key(_)) => &STRUCT,
        Some(Step::Value(_)) => &SCALAR,
        _ => schema.shape(names, value),
    }
}

/// The field names of a path (list items left out), as the schema addresses it.
fn names(path: &[Step]) -> Vec<&str> {
    path.iter()
        .filter_map(|s| match s {
            Step::Field(f) => Some(f.as_str()),
            _ => None,
        })
        .collect()
}

fn key_of(item: &Value, keys: &[ListKey]) -> Option<BTreeMap<String, String>> {
    let obj = item.as_object()?;
    keys.iter()
        .map(|k| {
            let v = match obj.get(&*k.name) {
                Some(v) if !v.is_null() => v.clone(),
                _ => k.default.clone()?,
            };
            (v.is_string() || v.is_number() || v.is_boolean())
                .then(|| (k.name.to_string(), v.to_string()))
        })
        .collect()
}

/// Each item's step, when the list is a set or a map-list whose items all have their keys.
fn item_steps(shape: &Shape, items: &[Value]) -> Option<Vec<Step>> {
    items
        .iter()
        .map(|item| match shape {
            Shape::Set => Some(Step::Value(item.to_string())),
            Shape::MapList(keys) => key_of(item, keys).map(Step::Key),
            _ => None,
        })
        .collect()
}

fn child(path: &[Step], step: Step) -> Path {
    let mut p = path.to_vec();
    p.push(step);
    p
}

/// The field set of an applied configuration: scalars, atomic values, set members, map-list
/// items and their fields, map keys, empty maps.
pub fn field_set(schema: &Schema, obj: &Value) -> FieldSet {
    fn walk(schema: &Schema, path: &Path, v: &Value, out: &mut FieldSet) {
        let shape = node_shape(schema, path, &names(path), v);
        match (shape, v) {
            (_, Value::Null) => {}
            (Shape::Struct | Shape::Map, Value::Object(m)) => {
                for (k, c) in m.iter().filter(|(_, c)| !c.is_null()) {
                    let p = child(path, Step::Field(k.clone()));
                    walk(schema, &p, c, out);
                    if *shape == Shape::Map || c.as_object().is_some_and(Map::is_empty) {
                        out.insert(p);
                    }
                }
            }
            (Shape::Set | Shape::MapList(_), Value::Array(items)) => {
                match item_steps(shape, items) {
                    Some(steps) => {
                        for (item, step) in items.iter().zip(steps) {
                            let p = child(path, step);
                            walk(schema, &p, item, out);
                            out.insert(p);
                        }
                    }
                    None => {
                        out.insert(path.clone());
                    }
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    walk(schema, &Vec::new(), obj, &mut out);
    out
}

/// A FieldsV1 document (`managedFields[].fieldsV1`) as a field set: `f:` fields, `k:` map-list
/// items, `v:` set members, `.` the node itself; a leaf is an empty node.
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
            } else if let Some(value) = k.strip_prefix("v:") {
                match serde_json::from_str::<Value>(value) {
                    Ok(v) => Step::Value(v.to_string()),
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
pub fn value_at<'a>(schema: &Schema, obj: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut cur = obj;
    for (i, step) in path.iter().enumerate() {
        cur = match step {
            Step::Field(f) => cur.as_object()?.get(f).filter(|v| !v.is_null())?,
            Step::Key(_) | Step::Value(_) => {
                let items = cur.as_array()?;
                let shape = node_shape(schema, &path[..i], &names(&path[..i]), cur);
                let steps = item_steps(shape, items)?;
                &items[steps.iter().position(|s| s == step)?]
            }
            Step::Other(_) => return None,
        };
    }
    Some(cur)
}

/// `set` with every named field (a struct's field, not a map's key) that has members below it:
/// structured-merge-diff's `EnsureNamedFieldsAreMembers` (`fieldpath/set.go`).
fn with_named_fields(schema: &Schema, set: &FieldSet) -> FieldSet {
    let mut out = set.clone();
    for path in set {
        for i in 0..path.len().saturating_sub(1) {
            let Step::Field(_) = &path[i] else { continue };
            let parent = &path[..i];
            let parent_is_struct = match parent.last() {
                None => schema.objects == Shape::Struct,
                Some(Step::Key(_)) => true,
                Some(Step::Field(_)) => schema
                    .rule(&names(parent))
                    .map_or(schema.objects == Shape::Struct, |r| {
                        r.shape == Shape::Struct
                    }),
                Some(_) => false,
            };
            if parent_is_struct {
                out.insert(path[..=i].to_vec());
            }
        }
    }
    out
}

/// `desired` merged into `live` as an apply merges (structured-merge-diff `typed/merge.go`).
fn merge(schema: &Schema, path: &Path, live: &Value, desired: &Value) -> Value {
    let shape = node_shape(schema, path, &names(path), desired);
    match (shape, live, desired) {
        (Shape::Struct | Shape::Map, Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for (k, dv) in d.iter().filter(|(_, v)| !v.is_null()) {
                let p = child(path, Step::Field(k.clone()));
                let nv = match l.get(k).filter(|v| !v.is_null()) {
                    Some(lv) => merge(schema, &p, lv, dv),
                    None => without_nulls(dv),
                };
                out.insert(k.clone(), nv);
            }
            Value::Object(out)
        }
        (Shape::Set | Shape::MapList(_), Value::Array(l), Value::Array(d)) => {
            match (item_steps(shape, l), item_steps(shape, d)) {
                (Some(ls), Some(ds)) => {
                    Value::Array(merge_lists(&ls, l, &ds, d, |s, lv, dv| match (shape, lv) {
                        (Shape::MapList(_), Some(lv)) => {
                            merge(schema, &child(path, s.clone()), lv, dv)
                        }
                        _ => without_nulls(dv),
                    }))
                }
                _ => without_nulls(desired),
            }
        }
        _ => without_nulls(desired),
    }
}

/// The order structured-merge-diff's list merge gives (`mergingWalker.visitListItems`): both
/// lists walked together; an item both have is merged at its turn in the configuration's order
/// (a live item that the configuration places later waits for it); a live-only item stays where
/// it was; a configuration-only item comes at its place in the configuration.
fn merge_lists(
    ls: &[Step],
    l: &[Value],
    ds: &[Step],
    d: &[Value],
    item: impl Fn(&Step, Option<&Value>, &Value) -> Value,
) -> Vec<Value> {
    let live_index = |s: &Step| ls.iter().position(|x| x == s);
    let desired_has = |s: &Step| ds.contains(s);
    let mut turns = ds.iter().filter(|s| live_index(s).is_some());
    let mut next_turn = turns.next();
    let mut merged: BTreeSet<&Step> = BTreeSet::new();
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < ls.len() || j < ds.len() {
        if i < ls.len() && j < ds.len() {
            if ls[i] == ds[j] {
                out.push(item(&ds[j], Some(&l[i]), &d[j]));
                merged.insert(&ds[j]);
                i += 1;
                j += 1;
                next_turn = turns.next();
                continue;
            }
            if desired_has(&ls[i]) && next_turn.is_some_and(|t| *t != ls[i]) {
                i += 1;
                continue;
            }
        }
        if i < ls.len() {
            if !desired_has(&ls[i]) {
                out.push(l[i].clone());
                i += 1;
                continue;
            }
            if merged.contains(&ls[i]) {
                i += 1;
            }
        }
        if j < ds.len() {
            out.push(item(&ds[j], live_index(&ds[j]).map(|k| &l[k]), &d[j]));
            merged.insert(&ds[j]);
            if next_turn == Some(&ds[j]) {
                next_turn = turns.next();
            }
            j += 1;
        }
    }
    out
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, c)| !c.is_null())
                .map(|(k, c)| (k.clone(), without_nulls(c)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes the value at `path` and every map or list the removal leaves empty above it.
fn remove_at(schema: &Schema, obj: &mut Value, path: &[Step]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let steps = match last {
        Step::Key(_) | Step::Value(_) => value_at(schema, obj, parent_path).and_then(|p| {
            let shape = node_shape(schema, parent_path, &names(parent_path), p);
            item_steps(shape, p.as_array()?)
        }),
        _ => None,
    };
    let Some(parent) = value_mut(schema, obj, parent_path) else {
        return;
    };
    let emptied = match (last, parent) {
        (Step::Field(f), Value::Object(m)) => {
            m.remove(f);
            m.is_empty()
        }
        (Step::Key(_) | Step::Value(_), Value::Array(a)) => {
            if let Some(i) = steps.and_then(|s| s.iter().position(|x| x == last)) {
                a.remove(i);
            }
            a.is_empty()
        }
        _ => false,
    };
    if emptied && !parent_path.is_empty() {
        remove_at(schema, obj, parent_path);
    }
}

fn value_mut<'a>(schema: &Schema, obj: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let index: Vec<Option<usize>> = (0..path.len())
        .map(|i| match &path[i] {
            Step::Key(_) | Step::Value(_) => {
                let list = value_at(schema, obj, &path[..i])?;
                let shape = node_shape(schema, &path[..i], &names(&path[..i]), list);
                item_steps(shape, list.as_array()?)?
                    .iter()
                    .position(|s| s == &path[i])
            }
            _ => None,
        })
        .collect();
    let mut cur = obj;
    for (step, i) in path.iter().zip(index) {
        cur = match step {
            Step::Field(f) => cur.as_object_mut()?.get_mut(f)?,
            Step::Key(_) | Step::Value(_) => cur.as_array_mut()?.get_mut(i?)?,
            Step::Other(_) => return None,
        };
    }
    Some(cur)
}

/// Whether the node at `path` is compared as one value (structured-merge-diff `compare.go`
/// `doLeaf`): scalars and atomic values, and maps or lists that are empty on both sides.
fn compared_whole(schema: &Schema, path: &[Step], a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(x) => x.is_empty(),
        _ => false,
    };
    match node_shape(schema, path, &names(path), b) {
        Shape::Struct | Shape::Map => !(a.is_object() && b.is_object()) || empty(a) && empty(b),
        shape @ (Shape::Set | Shape::MapList(_)) => match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                x.is_empty() && y.is_empty()
                    || item_steps(shape, x).is_none()
                    || item_steps(shape, y).is_none()
            }
            _ => true,
        },
        _ => true,
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
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub apply: bool,
    /// Written through a subresource (`status`): never part of a main-resource apply.
    pub subresource: bool,
    pub fields: FieldSet,
}

/// The `managedFields` entries of a live object.
pub fn entries(live: &Value) -> Vec<Entry> {
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

/// What a server-side apply of `desired` by `manager` would do to `live` (a Kubernetes object
/// with its managedFields).
pub fn predict(desired: &Value, live: &Value, manager: &str) -> Prediction {
    let schema = manifests::shapes::for_kind(desired["kind"].as_str().unwrap_or(""));
    // Only the main resource: `status` belongs to its subresource.
    let main = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        v
    };
    let mut p = predict_with(schema, &main(desired), live, &entries(live), manager);
    p.changes = main(&p.after) != main(live);
    p
}

/// [`predict`] with the schema and the managers given: the core, which the upstream scenarios
/// check.
pub fn predict_with(
    schema: &Schema,
    desired: &Value,
    live: &Value,
    entries: &[Entry],
    manager: &str,
) -> Prediction {
    let (mine, others): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .filter(|e| !e.subresource)
        .partition(|e| e.manager == manager && e.apply);
    let applied = field_set(schema, desired);
    let merged = merge(schema, &Vec::new(), live, desired);

    // What this manager applied before and no longer applies, owned by no one: removed, with
    // everything below it.
    let last = with_named_fields(
        schema,
        &mine.iter().flat_map(|e| e.fields.iter().cloned()).collect(),
    );
    let owned = with_named_fields(
        schema,
        &others
            .iter()
            .flat_map(|e| e.fields.iter().cloned())
            .chain(applied)
            .collect(),
    );
    let mut after = merged;
    for p in last.iter().filter(|p| !owned.contains(*p)) {
        if value_at(schema, &after, p).is_some() {
            remove_at(schema, &mut after, p);
        }
    }

    // Fields another manager owns that the apply adds or whose value it changes.
    let mut conflicts = Vec::new();
    for e in &others {
        for p in &e.fields {
            let changed = match (value_at(schema, live, p), value_at(schema, &after, p)) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => a != b && compared_whole(schema, p, a, b),
                _ => false,
            };
            if changed {
                conflicts.push(OwnedElsewhere {
                    manager: e.manager.clone(),
                    field: path_string(p),
                });
            }
        }
    }
    Prediction {
        changes: after != *live,
        after,
        conflicts,
    }
}

/// `.spec.ports[port=2888,protocol="TCP"].name`, `.metadata.finalizers[="x"]`.
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
            Step::Value(v) => {
                s.push_str("[=");
                s.push_str(v);
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
mod tests;
