use super::*;
use sandbox::apiserver::upstream::{self, OpKind};
use serde_json::json;

const ME: &str = "zk-observers-xtask";

fn desired() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk0", "namespace": "zookeeper", "labels": {"app": "zk"}},
        "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["198.18.1.4/32"],
                 "selector": {"statefulset.kubernetes.io/pod-name": "zk-0"},
                 "ports": [{"name": "tcp-quorum", "port": 2888, "protocol": "TCP", "targetPort": 2888}]}})
}

/// `desired` as a real server stores it after an apply by ME, with defaults, allocations and
/// the managedFields a real server writes: the selector one field (`+mapType=atomic`), the
/// finalizer a set member.
fn live() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk0", "namespace": "zookeeper", "labels": {"app": "zk"}, "uid": "u",
          "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
          "managedFields": [
            {"manager": ME, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {
              "f:metadata": {"f:labels": {"f:app": {}}},
              "f:spec": {"f:type": {}, "f:loadBalancerSourceRanges": {}, "f:selector": {},
                "f:ports": {"k:{\"port\":2888,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}}}},
            {"manager": "cloud-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"service.kubernetes.io/load-balancer-cleanup\"": {}}}}},
            {"manager": "cloud-controller-manager", "operation": "Update", "apiVersion": "v1", "subresource": "status",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}}]},
        "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["198.18.1.4/32"], "clusterIP": "10.96.0.10",
                 "sessionAffinity": "None", "selector": {"statefulset.kubernetes.io/pod-name": "zk-0"},
                 "ports": [{"name": "tcp-quorum", "port": 2888, "protocol": "TCP", "targetPort": 2888, "nodePort": 30000}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.11"}]}}})
}

fn add_manager(live: &mut Value, entry: Value) {
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(entry);
}

#[test]
fn an_applied_object_is_in_sync() {
    let p = predict(&desired(), &live(), ME);
    assert!(!p.changes, "{p:?}");
    assert!(p.conflicts.is_empty());
}

/// A real server records the selector as `f:selector: {}`: the planner must not take it for a
/// field applied before and no longer applied (issue 17: every per-pod Service reported changed).
#[test]
fn an_atomic_selector_recorded_whole_is_in_sync() {
    let set = field_set(manifests::shapes::for_kind("Service"), &desired());
    let selector = vec![Step::Field("spec".into()), Step::Field("selector".into())];
    assert!(set.contains(&selector));
    assert!(!set.iter().any(|p| p.len() > 2 && p.starts_with(&selector)));
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
    add_manager(
        &mut live,
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

/// `kubectl edit` adding a selector key takes the whole selector: a conflict on `.spec.selector`,
/// and the apply would replace the selector whole.
#[test]
fn a_selector_key_added_by_hand_is_a_conflict_on_the_whole_selector() {
    let mut live = live();
    live["spec"]["selector"]["tier"] = json!("db");
    live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
        .as_object_mut()
        .unwrap()
        .remove("f:selector");
    add_manager(
        &mut live,
        json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1",
        "fieldsV1": {"f:spec": {"f:selector": {}}}}),
    );
    let p = predict(&desired(), &live, ME);
    assert!(p.changes);
    assert_eq!(
        p.conflicts,
        [OwnedElsewhere {
            manager: "kubectl-edit".into(),
            field: ".spec.selector".into()
        }]
    );
    assert_eq!(
        p.after["spec"]["selector"],
        json!({"statefulset.kubernetes.io/pod-name": "zk-0"})
    );
}

#[test]
fn a_field_no_longer_desired_is_removed_unless_someone_else_owns_it() {
    let mut d = desired();
    d["metadata"]["labels"] = json!({});
    let p = predict(&d, &live(), ME);
    assert!(p.changes);
    assert!(p.after["metadata"].get("labels").is_none());
    let mut shared = live();
    add_manager(
        &mut shared,
        json!({"manager": "helm", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}),
    );
    assert!(!predict(&d, &shared, ME).changes);
}

#[test]
fn a_new_port_merges_by_key_and_a_port_value_change_is_seen() {
    let mut d = desired();
    d["spec"]["ports"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tcp-election", "port": 3888, "protocol": "TCP", "targetPort": 3888}));
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
    let mut applied = field_set(manifests::shapes::for_kind("Service"), &desired());
    // A real server never records these (stripmeta.go).
    for f in ["apiVersion", "kind"] {
        applied.remove(&vec![Step::Field(f.into())]);
    }
    for f in ["name", "namespace"] {
        applied.remove(&vec![Step::Field("metadata".into()), Step::Field(f.into())]);
    }
    assert_eq!(from_doc, applied);
    assert_eq!(
        path_string(from_doc.iter().find(|p| p.len() == 4).unwrap()),
        ".spec.ports[port=2888,protocol=\"TCP\"].name"
    );
    let finalizers = parse_fields_v1(&live["metadata"]["managedFields"][1]["fieldsV1"]);
    assert!(finalizers.iter().any(|p| path_string(p)
        == r#".metadata.finalizers[="service.kubernetes.io/load-balancer-cleanup"]"#));
}

#[test]
fn who_wrote_an_object() {
    assert!(written_by(&live(), ME));
    assert!(!written_by(&live(), "kube-controller-manager"));
}

/// The list merge order upstream gives, on lists where it differs from "live order, new items
/// appended" (structured-merge-diff set_test.go "apply_update_apply_no_overlap").
#[test]
fn list_items_merge_in_upstream_order() {
    let set_schema = upstream::scenarios()
        .unwrap()
        .into_iter()
        .find(|s| s.schema.name == "set")
        .unwrap()
        .schema;
    let m = |l: Value, r: Value| {
        merge(
            &set_schema,
            &Vec::new(),
            &json!({"list": l}),
            &json!({"list": r}),
        )["list"]
            .clone()
    };
    assert_eq!(
        m(
            json!(["a", "b", "c", "d"]),
            json!(["a", "aprime", "c", "cprime"])
        ),
        json!(["a", "b", "aprime", "c", "d", "cprime"])
    );
    assert_eq!(
        m(json!(["x", "a"]), json!(["a", "y"])),
        json!(["x", "a", "y"])
    );
}

/// structured-merge-diff's worked scenarios, predicted from the managed fields before each apply:
/// an apply upstream refuses has exactly upstream's conflicts; the last apply of a scenario leaves
/// exactly upstream's object. (The states between operations come from the API test server's
/// replay, which its own tests check against upstream's end states.)
#[test]
fn upstream_scenarios_are_predicted_as_upstream_says() {
    let scenarios = upstream::scenarios().unwrap();
    let mut failures = Vec::new();
    let mut ends_checked = 0;
    for s in &scenarios {
        let steps = upstream::replay(s).unwrap_or_else(|e| panic!("{e}"));
        let last = steps.len() - 1;
        for (i, step) in steps.iter().enumerate() {
            if step.op.kind == OpKind::Update {
                continue;
            }
            let entries: Vec<Entry> = step
                .before
                .managed
                .iter()
                .map(|(m, doc)| Entry {
                    manager: m.clone(),
                    apply: true,
                    subresource: false,
                    fields: parse_fields_v1(doc),
                })
                .collect();
            let p = predict_with(
                &s.schema,
                &step.op.object,
                &step.before.object,
                &entries,
                &step.op.manager,
            );
            let mut got: Vec<(String, String)> = p
                .conflicts
                .iter()
                .map(|c| (c.manager.clone(), c.field.clone()))
                .collect();
            got.sort();
            match &step.op.conflicts {
                Some(want) => {
                    let mut want = want.clone();
                    want.sort();
                    if got != want {
                        failures.push(format!(
                            "{} ({}): operation {i} conflicts {got:?}, upstream {want:?}",
                            s.name, s.source
                        ));
                    }
                }
                None if step.op.kind == OpKind::Apply && !got.is_empty() => failures.push(format!(
                    "{} ({}): operation {i} predicted conflicts {got:?}",
                    s.name, s.source
                )),
                None => {}
            }
            if step.op.conflicts.is_none() && i == last {
                ends_checked += 1;
                if p.after != s.object {
                    failures.push(format!(
                        "{} ({}): predicted {}, upstream {}",
                        s.name, s.source, p.after, s.object
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        ends_checked >= 12,
        "only {ends_checked} scenarios end in an apply"
    );
}
