use super::*;
use k8s_openapi::DeepMerge;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

fn path(p: &str) -> Vec<&str> {
    p.split('.').collect()
}

#[test]
fn rules_match_whole_paths_and_wildcards() {
    let s = for_kind("Service");
    assert_eq!(
        s.shape(&path("spec.selector"), &json!({})),
        &Shape::AtomicMap
    );
    assert_eq!(
        s.shape(&path("metadata.labels.app"), &json!("x")),
        &Shape::Scalar
    );
    // Without a rule: upstream's defaults for the JSON type.
    assert_eq!(s.shape(&path("spec.other"), &json!({})), &Shape::Struct);
    assert_eq!(s.shape(&path("spec.other"), &json!([])), &Shape::AtomicList);
    assert_eq!(
        s.rule(&path("spec")).map(|r| &r.shape),
        Some(&Shape::Struct)
    );
    assert!(s.rule(&path("spec.selector.app")).is_none());
    assert_eq!(for_kind("Foo").name, "unknown");
}

/// Every path of every object this tool writes, in every environment, has a rule, or lies
/// inside an atomic field: nothing the tool writes is left to a default.
#[test]
fn every_field_the_tool_writes_has_a_rule() {
    fn walk(schema: &Schema, path: &mut Vec<String>, v: &Value, missing: &mut Vec<String>) {
        let shape = match schema.rule(path) {
            Some(r) => r.shape.clone(),
            None => {
                missing.push(format!("{}.{}", schema.name, path.join(".")));
                return;
            }
        };
        match (shape, v) {
            (Shape::Struct | Shape::Map, Value::Object(m)) => {
                for (k, c) in m {
                    path.push(k.clone());
                    walk(schema, path, c, missing);
                    path.pop();
                }
            }
            (Shape::MapList(_), Value::Array(items)) => {
                for item in items {
                    for (k, c) in item.as_object().into_iter().flatten() {
                        path.push(k.clone());
                        walk(schema, path, c, missing);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for env in crate::environments::all() {
        for object in crate::desired_objects(&env) {
            let v = serde_json::to_value(&object).unwrap();
            let schema = for_kind(object.kind());
            for (k, c) in v.as_object().unwrap() {
                if k == "apiVersion" || k == "kind" {
                    continue;
                }
                let mut p = vec![k.clone()];
                if k == "metadata" {
                    for (mk, mv) in c.as_object().unwrap() {
                        if mk == "name" || mk == "namespace" {
                            continue;
                        }
                        p.push(mk.clone());
                        walk(schema, &mut p, mv, &mut missing);
                        p.pop();
                    }
                    continue;
                }
                walk(schema, &mut p, c, &mut missing);
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "fields without a rule: {missing:?}");
}

/// What an apply of `b` over `a` leaves at a path of this shape, as structured-merge-diff
/// merges (`typed/merge.go`): granular maps key by key, atomic values replaced, sets united,
/// map-lists merged by item key.
fn merged_by_shape(shape: &Shape, a: &Value, b: &Value) -> Value {
    match shape {
        Shape::Map | Shape::Struct => {
            let mut out = a.as_object().unwrap().clone();
            out.extend(b.as_object().unwrap().clone());
            Value::Object(out)
        }
        Shape::Set => {
            let mut out = a.as_array().unwrap().clone();
            for x in b.as_array().unwrap() {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
            Value::Array(out)
        }
        Shape::MapList(keys) => {
            let key = |item: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| item.get(&*k.name).cloned().or(k.default.clone()).unwrap())
                    .collect()
            };
            let mut out = a.as_array().unwrap().clone();
            for item in b.as_array().unwrap() {
                match out.iter_mut().find(|x| key(x) == key(item)) {
                    Some(x) => x
                        .as_object_mut()
                        .unwrap()
                        .extend(item.as_object().unwrap().clone()),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        Shape::Scalar | Shape::AtomicMap | Shape::AtomicList => b.clone(),
    }
}

/// k8s-openapi's `DeepMerge` of `b` into `a` (both `T` as JSON), as JSON.
fn deep_merge<T: DeserializeOwned + Serialize + DeepMerge>(a: &Value, b: &Value) -> Value {
    let mut x: T = serde_json::from_value(a.clone()).unwrap();
    x.merge_from(serde_json::from_value(b.clone()).unwrap());
    serde_json::to_value(x).unwrap()
}

fn at<'v>(v: &'v Value, p: &str) -> &'v Value {
    p.split('.').fold(v, |v, k| &v[k])
}

/// The table agrees with the merge strategies k8s-openapi generated from the Kubernetes
/// OpenAPI document's `x-kubernetes-list-type` / `x-kubernetes-map-type` (the same markers):
/// for each rule on a built-in type, two objects that differ only there merge as the shape
/// says. (k8s-openapi keys a Service's ports by `port` alone; the `protocol` key is from the
/// marker itself, so the probe keeps protocol equal.)
#[test]
fn the_table_agrees_with_k8s_openapi_deep_merge() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    let probes: Vec<(&str, &str, Value, Value)> = vec![
        (
            "Service",
            "metadata.labels",
            json!({"a": "1"}),
            json!({"b": "2"}),
        ),
        (
            "Service",
            "metadata.annotations",
            json!({"a": "1"}),
            json!({"b": "2"}),
        ),
        (
            "Service",
            "metadata.finalizers",
            json!(["a", "b"]),
            json!(["b", "c"]),
        ),
        (
            "Service",
            "metadata.ownerReferences",
            json!([{"apiVersion": "v1", "kind": "Service", "name": "x", "uid": "u1"}]),
            json!([{"apiVersion": "v1", "kind": "Service", "name": "y", "uid": "u1"},
                   {"apiVersion": "v1", "kind": "Service", "name": "z", "uid": "u2"}]),
        ),
        (
            "Service",
            "spec.selector",
            json!({"a": "1"}),
            json!({"b": "2"}),
        ),
        (
            "Service",
            "spec.ports",
            json!([{"name": "q", "port": 2888, "protocol": "TCP"}]),
            json!([{"name": "quorum", "port": 2888, "protocol": "TCP"},
                   {"name": "election", "port": 3888, "protocol": "TCP"}]),
        ),
        (
            "Service",
            "spec.loadBalancerSourceRanges",
            json!(["10.0.0.0/8"]),
            json!(["10.1.0.0/16"]),
        ),
        (
            "Service",
            "spec.clusterIPs",
            json!(["10.0.0.1"]),
            json!(["10.0.0.2"]),
        ),
        (
            "Service",
            "spec.externalIPs",
            json!(["10.0.0.1"]),
            json!(["10.0.0.2"]),
        ),
        (
            "Service",
            "spec.ipFamilies",
            json!(["IPv4"]),
            json!(["IPv6"]),
        ),
        (
            "Service",
            "status.loadBalancer.ingress",
            json!([{"ip": "10.0.0.1"}]),
            json!([{"ip": "10.0.0.2"}]),
        ),
        (
            "Service",
            "status.conditions",
            json!([{"type": "A", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"}]),
            json!([{"type": "A", "status": "False", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                   {"type": "B", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2025-01-01T00:00:00Z"}]),
        ),
        (
            "Endpoints",
            "subsets",
            json!([{"addresses": [{"ip": "10.0.0.1"}]}]),
            json!([{"addresses": [{"ip": "10.0.0.2"}]}]),
        ),
        (
            "EndpointSlice",
            "endpoints",
            json!([{"addresses": ["10.0.0.1"]}]),
            json!([{"addresses": ["10.0.0.2"]}]),
        ),
        (
            "EndpointSlice",
            "ports",
            json!([{"port": 1}]),
            json!([{"port": 2}]),
        ),
    ];
    for (kind, p, a, b) in probes {
        let schema = for_kind(kind);
        let shape = &schema.rule(&path(p)).expect("a rule").shape;
        let object = |v: &Value| {
            let mut o = match kind {
                "Service" => {
                    json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}})
                }
                "EndpointSlice" => {
                    json!({"metadata": {}, "addressType": "IPv4", "endpoints": []})
                }
                _ => json!({"metadata": {}}),
            };
            let (parent, last) = p.rsplit_once('.').map_or(("", p), |(a, b)| (a, b));
            let slot = if parent.is_empty() {
                &mut o
            } else {
                parent.split('.').fold(&mut o, |o, k| &mut o[k])
            };
            slot[last] = v.clone();
            o
        };
        let (oa, ob) = (object(&a), object(&b));
        let got = match kind {
            "Service" => deep_merge::<Service>(&oa, &ob),
            "Endpoints" => deep_merge::<Endpoints>(&oa, &ob),
            "EndpointSlice" => deep_merge::<EndpointSlice>(&oa, &ob),
            "Lease" => deep_merge::<Lease>(&oa, &ob),
            _ => unreachable!(),
        };
        assert_eq!(
            at(&got, p),
            &merged_by_shape(shape, &a, &b),
            "{kind} {p}: the table says {shape:?}"
        );
    }
}
