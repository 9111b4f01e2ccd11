//! Field ownership: field sets, server-side apply (merge, conflicts, removal of what an applier
//! no longer applies), Update ownership, and rendering as `managedFields` (FieldsV1).
//!
//! Built the way structured-merge-diff builds it (kubernetes-sigs/structured-merge-diff v6), with
//! each piece named after its upstream counterpart: [`field_set`] (`typed/tofieldset.go`),
//! [`merge`] (`typed/merge.go`), [`compare`] (`typed/compare.go`), [`remove_items`]
//! (`typed/remove.go`), [`ensure_named_fields`] (`fieldpath/set.go`,
//! `EnsureNamedFieldsAreMembers`), and [`apply_core`] / [`update_core`] (`merge/update.go`,
//! `Updater.Apply` / `Updater.Update`). The shape of every field (granular or atomic map, atomic
//! list, set, map-list with keys) comes from `manifests::shapes`, the table of upstream markers;
//! nothing is decided from the JSON's shape where upstream has a marker. The generic core runs
//! upstream's own worked scenarios (`tests/upstream/structured-merge-diff.yaml`, see the tests at
//! the end).

use std::collections::{BTreeMap, BTreeSet};

use manifests::shapes::{ListKey, Schema, Shape};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::resources::Resource;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// A map-list item by its keys, as canonical JSON sorted by key name: `k:{"port":2888,"protocol":"TCP"}`.
    Key(String),
    /// A set member by its value, as JSON: `v:"service.kubernetes.io/load-balancer-cleanup"`.
    Value(String),
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

fn field(name: &str) -> PathElement {
    PathElement::Field(name.to_string())
}

/// Whether `set` holds a path strictly below `prefix`.
fn has_below(set: &FieldSet, prefix: &[PathElement]) -> bool {
    set.range(prefix.to_vec()..)
        .find(|q| q.as_slice() != prefix)
        .is_some_and(|q| q.starts_with(prefix))
}

/// The canonical key of a map-list item (`{"port":2888,"protocol":"TCP"}`, keys sorted by name),
/// or `None` when it lacks a key field that has no default (or is not a map).
pub(crate) fn item_key(item: &Value, keys: &[ListKey]) -> Option<String> {
    let obj = item.as_object()?;
    let mut parts: BTreeMap<&str, Value> = BTreeMap::new();
    for k in keys {
        let v = match obj.get(&*k.name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => k.default.clone()?,
        };
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return None;
        }
        parts.insert(&k.name, v);
    }
    let inner: Vec<String> = parts
        .iter()
        .map(|(n, v)| format!("{}:{v}", json!(n)))
        .collect();
    Some(format!("{{{}}}", inner.join(",")))
}

/// The path elements of a list's items under `shape`, if every item has one; `None` makes the
/// list behave as one atomic value (upstream refuses such a list; validation does here).
fn item_elements(shape: &Shape, items: &[Value]) -> Option<Vec<PathElement>> {
    items
        .iter()
        .map(|item| match shape {
            Shape::Set => Some(PathElement::Value(item.to_string())),
            Shape::MapList(keys) => item_key(item, keys).map(PathElement::Key),
            _ => None,
        })
        .collect()
}

/// Where a walk is: the field path (with list items) and the schema path (field names only).
#[derive(Clone, Default)]
struct At {
    path: FieldPath,
    names: Vec<String>,
}

impl At {
    fn field(&self, name: &str) -> At {
        let mut a = self.clone();
        a.path.push(field(name));
        a.names.push(name.to_string());
        a
    }

    fn item(&self, pe: PathElement) -> At {
        let mut a = self.clone();
        a.path.push(pe);
        a
    }
}

/// The shape of `value` at `at`; `None` for a map-list item (always a struct).
fn shape_at<'s>(schema: &'s Schema, at: &At, value: &Value) -> &'s Shape {
    schema.shape(&at.names, value)
}

fn is_item(at: &At) -> bool {
    matches!(
        at.path.last(),
        Some(PathElement::Key(_) | PathElement::Value(_))
    )
}

// ---------------------------------------------------------------------------------------------
// ToFieldSet (typed/tofieldset.go)

/// The field set of `value`: scalars, atomic maps and lists, set members, map-list items (and
/// their fields), map keys, and empty maps. Null members are not set (an applied `null` is
/// ignored here: see README, "Knowingly different").
pub(crate) fn field_set(schema: &Schema, value: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    set_walk(schema, &At::default(), value, &mut out, true);
    out
}

fn set_walk(schema: &Schema, at: &At, v: &Value, out: &mut FieldSet, root: bool) {
    let shape = if is_item(at) || root {
        &Shape::Struct
    } else {
        shape_at(schema, at, v)
    };
    match (shape, v) {
        (_, Value::Null) => {}
        (Shape::Struct | Shape::Map, Value::Object(m)) => {
            let keys_are_members = *shape == Shape::Map && !is_item(at) && !root
                || root && schema.objects == Shape::Map;
            for (k, c) in m {
                if c.is_null() {
                    continue;
                }
                let a = at.field(k);
                set_walk(schema, &a, c, out, false);
                if keys_are_members || c.as_object().is_some_and(Map::is_empty) {
                    out.insert(a.path);
                }
            }
        }
        (Shape::Set | Shape::MapList(_), Value::Array(items)) => {
            match item_elements(shape, items) {
                Some(pes) => {
                    for (item, pe) in items.iter().zip(pes) {
                        let a = at.item(pe);
                        if matches!(shape, Shape::MapList(_)) {
                            set_walk(schema, &a, item, out, false);
                        }
                        out.insert(a.path);
                    }
                }
                None => {
                    out.insert(at.path.clone());
                }
            }
        }
        _ => {
            out.insert(at.path.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Merge (typed/merge.go)

/// `lhs` with `rhs` merged in, as an apply merges its configuration into the live object:
/// granular maps key by key, atomic values replaced, sets and map-lists item by item in the
/// order upstream's merge gives (rhs order for the items both have, lhs-only items where they
/// were, new items at their place in rhs).
pub(crate) fn merge(schema: &Schema, lhs: &Value, rhs: &Value) -> Value {
    merge_walk(schema, &At::default(), Some(lhs), rhs, true)
}

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

fn merge_walk(schema: &Schema, at: &At, lhs: Option<&Value>, rhs: &Value, root: bool) -> Value {
    let Some(lhs) = lhs.filter(|l| !l.is_null()) else {
        return strip_nulls(rhs);
    };
    let shape = if is_item(at) || root {
        &Shape::Struct
    } else {
        shape_at(schema, at, rhs)
    };
    match (shape, lhs, rhs) {
        (Shape::Struct | Shape::Map, Value::Object(l), Value::Object(r)) => {
            let mut out = l.clone();
            for (k, rv) in r {
                if rv.is_null() {
                    continue;
                }
                let merged = merge_walk(schema, &at.field(k), l.get(k), rv, false);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Shape::Set | Shape::MapList(_), Value::Array(l), Value::Array(r)) => {
            match (item_elements(shape, l), item_elements(shape, r)) {
                (Some(lp), Some(rp)) => {
                    let merge_item = |pe: &PathElement, lv: Option<&Value>, rv: &Value| {
                        if matches!(shape, Shape::MapList(_)) {
                            merge_walk(schema, &at.item(pe.clone()), lv, rv, false)
                        } else {
                            rv.clone()
                        }
                    };
                    Value::Array(merge_items(&lp, l, &rp, r, merge_item))
                }
                _ => strip_nulls(rhs),
            }
        }
        _ => strip_nulls(rhs),
    }
}

/// The items of two keyed lists merged in upstream's order (`mergingWalker.visitListItems`):
/// walking both lists, an item both have is merged where the rhs has it, in rhs order; an item
/// only the lhs has stays where it was; an item only the rhs has comes where the rhs has it.
fn merge_items(
    lp: &[PathElement],
    l: &[Value],
    rp: &[PathElement],
    r: &[Value],
    merge_item: impl Fn(&PathElement, Option<&Value>, &Value) -> Value,
) -> Vec<Value> {
    let in_l = |pe: &PathElement| lp.iter().position(|x| x == pe);
    let in_r = |pe: &PathElement| rp.iter().position(|x| x == pe);
    // The items both lists have, in rhs order: the next of them is the one to merge next.
    let mut shared = rp.iter().filter(|pe| in_l(pe).is_some()).peekable();
    let mut done: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lp.len() || ri < rp.len() {
        if li < lp.len() && ri < rp.len() {
            if lp[li] == rp[ri] {
                out.push(merge_item(&rp[ri], Some(&l[li]), &r[ri]));
                done.insert(&rp[ri]);
                li += 1;
                ri += 1;
                shared.next();
                continue;
            }
            // A shared item that comes later in the rhs: it is merged when the rhs gets there.
            if in_r(&lp[li]).is_some() && shared.peek().is_some_and(|s| **s != lp[li]) {
                li += 1;
                continue;
            }
        }
        if li < lp.len() {
            if in_r(&lp[li]).is_none() {
                out.push(l[li].clone());
                li += 1;
                continue;
            }
            if done.contains(&lp[li]) {
                li += 1;
            }
        }
        if ri < rp.len() {
            let pe = &rp[ri];
            let lv = in_l(pe).map(|i| &l[i]);
            out.push(merge_item(pe, lv, &r[ri]));
            done.insert(pe);
            ri += 1;
            if shared.peek().is_some_and(|s| *s == pe) {
                shared.next();
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Compare (typed/compare.go)

/// What changed from `lhs` to `rhs`, as field sets: a node is added or removed when it appears or
/// goes (whatever its shape: a map created by an Update is owned as `"."`); leaves (scalars,
/// atomic values, containers empty on both sides) are modified when their values differ.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

pub(crate) fn compare(schema: &Schema, lhs: &Value, rhs: &Value) -> Comparison {
    let mut c = Comparison::default();
    compare_walk(schema, &At::default(), Some(lhs), Some(rhs), &mut c, true);
    c
}

fn empty_or_none(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn compare_walk(
    schema: &Schema,
    at: &At,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    c: &mut Comparison,
    root: bool,
) {
    let lhs = lhs.filter(|v| !v.is_null());
    let rhs = rhs.filter(|v| !v.is_null());
    let Some(either) = rhs.or(lhs) else {
        return;
    };
    let shape = if is_item(at) || root {
        &Shape::Struct
    } else {
        shape_at(schema, at, either)
    };
    let both_empty = empty_or_none(lhs) && empty_or_none(rhs);
    let leaf = match (shape, lhs, rhs) {
        (Shape::Struct | Shape::Map, l, r) => {
            both_empty || !l.is_none_or(Value::is_object) || !r.is_none_or(Value::is_object)
        }
        (Shape::Set | Shape::MapList(_), l, r) => {
            both_empty
                || !l.is_none_or(Value::is_array)
                || !r.is_none_or(Value::is_array)
                || l.and_then(|l| item_elements(shape, l.as_array()?))
                    .is_none()
                    && l.is_some()
                || r.and_then(|r| item_elements(shape, r.as_array()?))
                    .is_none()
                    && r.is_some()
        }
        _ => true,
    };
    if leaf {
        match (lhs, rhs) {
            (None, Some(_)) => {
                c.added.insert(at.path.clone());
            }
            (Some(_), None) => {
                c.removed.insert(at.path.clone());
            }
            (Some(l), Some(r)) if l != r => {
                c.modified.insert(at.path.clone());
            }
            _ => {}
        }
        return;
    }
    match shape {
        Shape::Set | Shape::MapList(_) => {
            let items = |v: Option<&Value>| -> Vec<(PathElement, Value)> {
                let Some(a) = v.and_then(Value::as_array) else {
                    return vec![];
                };
                item_elements(shape, a)
                    .map(|pes| pes.into_iter().zip(a.iter().cloned()).collect())
                    .unwrap_or_default()
            };
            let (li, ri) = (items(lhs), items(rhs));
            let mut seen = BTreeSet::new();
            for pe in li.iter().chain(&ri).map(|(pe, _)| pe) {
                if !seen.insert(pe.clone()) {
                    continue;
                }
                let find = |v: &[(PathElement, Value)]| {
                    v.iter().find(|(p, _)| p == pe).map(|(_, x)| x.clone())
                };
                let (lv, rv) = (find(&li), find(&ri));
                compare_walk(
                    schema,
                    &at.item(pe.clone()),
                    lv.as_ref(),
                    rv.as_ref(),
                    c,
                    false,
                );
            }
        }
        _ => {
            let empty = Map::new();
            let lm = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let rm = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let keys: BTreeSet<&String> = lm.keys().chain(rm.keys()).collect();
            for k in keys {
                compare_walk(schema, &at.field(k), lm.get(k), rm.get(k), c, false);
            }
        }
    }
    if !root {
        match (lhs, rhs) {
            (None, Some(_)) => {
                c.added.insert(at.path.clone());
            }
            (Some(_), None) => {
                c.removed.insert(at.path.clone());
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RemoveItems (typed/remove.go) and EnsureNamedFieldsAreMembers (fieldpath/set.go)

/// `value` without the fields (and whatever lies below them) at the paths of `set`. A map or list
/// left empty by the removal goes too.
pub(crate) fn remove_items(schema: &Schema, value: &Value, set: &FieldSet) -> Value {
    remove_walk(schema, &At::default(), value, set, true).unwrap_or_else(|| json!({}))
}

fn remove_walk(schema: &Schema, at: &At, v: &Value, set: &FieldSet, root: bool) -> Option<Value> {
    let shape = if is_item(at) || root {
        &Shape::Struct
    } else {
        shape_at(schema, at, v)
    };
    match (shape, v) {
        (Shape::Struct | Shape::Map, Value::Object(m)) => {
            let mut out = Map::new();
            for (k, c) in m {
                let a = at.field(k);
                if set.contains(&a.path) {
                    continue;
                }
                if has_below(set, &a.path) {
                    if let Some(kept) = remove_walk(schema, &a, c, set, false) {
                        out.insert(k.clone(), kept);
                    }
                } else {
                    out.insert(k.clone(), c.clone());
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (Shape::Set | Shape::MapList(_), Value::Array(items)) => {
            let Some(pes) = item_elements(shape, items) else {
                return Some(v.clone());
            };
            let mut out = Vec::new();
            for (item, pe) in items.iter().zip(pes) {
                let a = at.item(pe);
                if set.contains(&a.path) {
                    continue;
                }
                if has_below(set, &a.path) {
                    if let Some(kept) = remove_walk(schema, &a, item, set, false) {
                        out.push(kept);
                    }
                } else {
                    out.push(item.clone());
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        _ => Some(v.clone()),
    }
}

/// `set` plus every named field (a struct's field, not a map's key) that has members below it:
/// `spec.type` makes `spec` a member too, `metadata.labels.app` makes `metadata` one but not
/// `metadata.labels`.
pub(crate) fn ensure_named_fields(schema: &Schema, set: &FieldSet) -> FieldSet {
    let mut out = set.clone();
    for path in set {
        let mut names: Vec<String> = Vec::new();
        for i in 0..path.len() {
            let parent_is_struct = if i == 0 {
                schema.objects == Shape::Struct
            } else if matches!(path[i - 1], PathElement::Key(_)) {
                true
            } else {
                match schema.rule(&names) {
                    Some(r) => r.shape == Shape::Struct,
                    None => schema.objects == Shape::Struct,
                }
            };
            if let PathElement::Field(f) = &path[i] {
                if parent_is_struct && i + 1 < path.len() {
                    out.insert(path[..=i].to_vec());
                }
                names.push(f.clone());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Apply and Update (merge/update.go)

/// The managers of one object, by name (structured-merge-diff's `ManagedFields`).
pub(crate) type Managers = BTreeMap<String, FieldSet>;

/// Why an apply was refused: fields other managers own whose value it would change.
pub(crate) type CoreConflicts = Vec<(String, FieldPath)>;

/// `Updater.prune`: fields `applier` applied before (`last`), no longer applies, and no manager
/// (the applier's new configuration included) owns, removed from `merged`; an unowned field
/// below one of them goes with it, an unowned field elsewhere stays.
fn prune(schema: &Schema, merged: &Value, managers: &Managers, last: &FieldSet) -> Value {
    if last.is_empty() {
        return merged.clone();
    }
    let last = ensure_named_fields(schema, last);
    let managed: FieldSet = managers
        .values()
        .flat_map(|s| ensure_named_fields(schema, s))
        .collect();
    let pruned = remove_items(schema, merged, &last);
    let merged_set = ensure_named_fields(schema, &field_set(schema, merged));
    // Add back what someone owns (addBackOwnedItems).
    let pruned_set = ensure_named_fields(schema, &field_set(schema, &pruned));
    let not_owned: FieldSet = merged_set
        .iter()
        .filter(|p| !pruned_set.contains(*p) && !managed.contains(*p))
        .cloned()
        .collect();
    let pruned = remove_items(schema, merged, &not_owned);
    // Add back what the applier never owned (addBackDanglingItems).
    let pruned_set = ensure_named_fields(schema, &field_set(schema, &pruned));
    let dangling: FieldSet = merged_set
        .iter()
        .filter(|p| !pruned_set.contains(*p) && last.contains(*p))
        .cloned()
        .collect();
    remove_items(schema, merged, &dangling)
}

/// `Updater.Apply`: `config` applied by `applier` to `live`. Returns the new object and managers,
/// or the conflicts when some other manager owns a field whose value the apply would change and
/// `force` is false (with `force`, those fields move to the applier).
pub(crate) fn apply_core(
    schema: &Schema,
    live: &Value,
    managers: &Managers,
    config: &Value,
    applier: &str,
    force: bool,
) -> Result<(Value, Managers), CoreConflicts> {
    let merged = merge(schema, live, config);
    let last = managers.get(applier).cloned().unwrap_or_default();
    let mut managers = managers.clone();
    managers.insert(applier.to_string(), field_set(schema, config));
    let new = prune(schema, &merged, &managers, &last);
    let c = compare(schema, live, &new);
    let changed: FieldSet = c.modified.union(&c.added).cloned().collect();
    let mut conflicts = CoreConflicts::new();
    for (name, set) in managers.iter().filter(|(n, _)| *n != applier) {
        for p in set.intersection(&changed) {
            conflicts.push((name.clone(), p.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (name, set) in managers.iter_mut().filter(|(n, _)| *n != applier) {
        set.retain(|p| !changed.contains(p) && !c.removed.contains(p));
        let _ = name;
    }
    managers.retain(|_, s| !s.is_empty());
    Ok((new, managers))
}

/// `Updater.Update`: `writer` wrote `new` over `live` (a create, replace or patch). It gains what
/// it added or changed and loses what it removed; every other manager loses those fields. An
/// update never conflicts.
pub(crate) fn update_core(
    schema: &Schema,
    live: &Value,
    new: &Value,
    managers: &mut Managers,
    writer: &str,
) {
    let c = compare(schema, live, new);
    let changed: FieldSet = c.modified.union(&c.added).cloned().collect();
    for (_, set) in managers.iter_mut().filter(|(n, _)| *n != writer) {
        set.retain(|p| !changed.contains(p) && !c.removed.contains(p));
    }
    let mine = managers.entry(writer.to_string()).or_default();
    mine.retain(|p| !c.removed.contains(p));
    mine.extend(changed);
    managers.retain(|_, s| !s.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The API server's side: managers identified by (name, operation, subresource), scopes, the
// fields a real server never records, managedFields rendering, conflict errors.

/// What managedFields never list (kubernetes/apimachinery
/// `pkg/util/managedfields/internal/stripmeta.go`, `NewStripMetaManager`).
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

fn strip_meta(set: &mut FieldSet) {
    set.retain(|p| {
        !STRIPPED.iter().any(|s| {
            s.len() == p.len()
                && s.iter()
                    .zip(p)
                    .all(|(a, b)| matches!(b, PathElement::Field(f) if f == a))
        })
    });
}

/// The part of `obj` a write of `scope` may own: for the main resource everything but
/// `.status` of a resource with a status subresource; for the status subresource `.status`.
fn scoped_view(res: &Resource, obj: &Value, scope: Scope) -> Value {
    let Some(m) = obj.as_object() else {
        return json!({});
    };
    Value::Object(
        m.iter()
            .filter(|(k, _)| match scope {
                Scope::Status => *k == "status",
                Scope::Main => !(*k == "status" && res.status_subresource),
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// The field set of `obj` for `scope`, as managedFields would record it.
#[cfg(test)]
pub(crate) fn fields_of(res: &Resource, obj: &Value, scope: Scope) -> FieldSet {
    let mut set = field_set(res.schema(), &scoped_view(res, obj, scope));
    strip_meta(&mut set);
    set
}

/// The value at `path` (`None` if absent or null).
pub(crate) fn value_at<'a>(
    schema: &Schema,
    obj: &'a Value,
    path: &[PathElement],
) -> Option<&'a Value> {
    let mut cur = obj;
    let mut names: Vec<String> = Vec::new();
    for pe in path {
        cur = match pe {
            PathElement::Field(f) => {
                names.push(f.clone());
                cur.as_object()?.get(f).filter(|v| !v.is_null())?
            }
            PathElement::Key(_) | PathElement::Value(_) => {
                let items = cur.as_array()?;
                let shape = schema.shape(&names, cur);
                let pes = item_elements(shape, items)?;
                let i = pes.iter().position(|p| p == pe)?;
                &items[i]
            }
        };
    }
    Some(cur)
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

    /// The key a real server tells managers apart by (manager, operation, subresource;
    /// kubernetes/apimachinery `pkg/util/managedfields/internal/managedfields.go`,
    /// `BuildManagerIdentifier`): the same name applying and updating is two managers.
    fn identifier(&self) -> String {
        identifier(&self.manager, self.operation, self.subresource.as_deref())
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

fn identifier(manager: &str, operation: Operation, subresource: Option<&str>) -> String {
    format!(
        "{manager}\u{0}{operation:?}\u{0}{}",
        subresource.unwrap_or("")
    )
}

/// Renders a field set in the FieldsV1 shape: `f:`, `k:` and `v:` steps; `"."` where a member
/// also has members below it.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            let key = match pe {
                PathElement::Field(f) => format!("f:{f}"),
                PathElement::Key(k) => format!("k:{k}"),
                PathElement::Value(v) => format!("v:{v}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are maps");
        }
        if has_below(set, path) {
            node.insert(".".into(), Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

/// A path as the real server prints it: `.spec.ports[port=2888,protocol="TCP"].name`,
/// `.metadata.finalizers[="x"]`.
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
            PathElement::Value(v) => {
                s.push_str("[=");
                s.push_str(v);
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

/// The entries as the core's managers, keyed by [`ManagedEntry::identifier`].
fn core_managers(managed: &[ManagedEntry]) -> Managers {
    managed
        .iter()
        .map(|e| (e.identifier(), e.fields.clone()))
        .collect()
}

/// The core's managers back as entries: existing entries keep their place (with new fields),
/// `writer`'s entry is updated or added, emptied entries go.
fn entries_from(
    managed: &[ManagedEntry],
    managers: Managers,
    writer: Writer<'_>,
    operation: Operation,
) -> Vec<ManagedEntry> {
    let sub = writer.scope.subresource();
    let me = identifier(writer.manager, operation, sub);
    let mut out: Vec<ManagedEntry> = Vec::new();
    for e in managed {
        let Some(fields) = managers.get(&e.identifier()) else {
            continue;
        };
        let mut fields = fields.clone();
        strip_meta(&mut fields);
        if fields.is_empty() {
            continue;
        }
        let mut e = e.clone();
        if e.identifier() == me && fields != e.fields {
            e.api_version = writer.api_version.to_string();
            e.time = writer.now.to_string();
        }
        e.fields = fields;
        out.push(e);
    }
    if !managed.iter().any(|e| e.is(writer.manager, operation, sub)) {
        if let Some(fields) = managers.get(&me) {
            let mut fields = fields.clone();
            strip_meta(&mut fields);
            if !fields.is_empty() {
                out.push(ManagedEntry {
                    manager: writer.manager.to_string(),
                    operation,
                    api_version: writer.api_version.to_string(),
                    time: writer.now.to_string(),
                    subresource: sub.map(str::to_string),
                    fields,
                });
            }
        }
    }
    out
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
    let schema = res.schema();
    let sub = writer.scope.subresource();
    let me = identifier(writer.manager, Operation::Apply, sub);
    let mut managers = core_managers(managed);
    // The applier's last set as stored (stripped); what it applies now, unstripped: an applied
    // configuration always names the object, so `metadata` itself stays.
    match apply_core(schema, live, &managers, config, &me, force) {
        Ok((new, core)) => {
            managers = core;
            let mut entries = entries_from(managed, managers, writer, Operation::Apply);
            // The applier's entry is exactly what it applied, even when nothing changed.
            if let Some(e) = entries
                .iter_mut()
                .find(|e| e.is(writer.manager, Operation::Apply, sub))
            {
                e.api_version = writer.api_version.to_string();
                e.time = writer.now.to_string();
            }
            Ok((new, entries))
        }
        Err(conflicts) => {
            let by_id: BTreeMap<String, &ManagedEntry> =
                managed.iter().map(|e| (e.identifier(), e)).collect();
            Err(conflicts
                .into_iter()
                .map(|(id, path)| Conflict {
                    owner: by_id.get(&id).map_or(id.clone(), |e| e.describe()),
                    path,
                })
                .collect())
        }
    }
}

/// Ownership for an Update (create, replace, merge patch, status write) by `writer`: compared
/// with `old` (the type's empty object on create), `submitted` (what the writer sent, with the
/// scheme's defaults; allocations are not in it and stay unowned) gives the writer what it added
/// or changed and takes those fields from every other manager.
pub(crate) fn update(
    res: &Resource,
    old: Option<&Value>,
    submitted: &Value,
    managed: &[ManagedEntry],
    writer: Writer<'_>,
) -> Vec<ManagedEntry> {
    let schema = res.schema();
    let zero = res.zero();
    let old = scoped_view(res, old.unwrap_or(&zero), writer.scope);
    let new = scoped_view(res, submitted, writer.scope);
    let me = identifier(
        writer.manager,
        Operation::Update,
        writer.scope.subresource(),
    );
    let mut managers = core_managers(managed);
    update_core(schema, &old, &new, &mut managers, &me);
    entries_from(managed, managers, writer, Operation::Update)
}

/// Drops owned paths that no longer exist in `obj` (a field the server dropped while defaulting),
/// then entries left without fields.
pub(crate) fn prune_ownership(res: &Resource, obj: &Value, managed: &mut Vec<ManagedEntry>) {
    let schema = res.schema();
    for e in managed.iter_mut() {
        e.fields.retain(|p| value_at(schema, obj, p).is_some());
    }
    managed.retain(|e| !e.fields.is_empty());
}

#[cfg(test)]
mod tests;
