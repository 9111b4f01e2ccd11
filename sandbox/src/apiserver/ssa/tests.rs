use super::*;
use crate::apiserver::resources::{ENDPOINTS, SERVICES};
use crate::apiserver::upstream;

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
        "metadata": {"name": "zk", "namespace": "ns", "labels": {"app": "zk"}},
        "spec": spec,
    })
}

/// Creates `config` through apply by `manager`.
fn create(config: &Value, manager: &str) -> (Value, Vec<ManagedEntry>) {
    apply(&SERVICES, &json!({}), &[], config, writer(manager), false).unwrap()
}

/// An Update by `manager` that leaves `live` as `edited`.
fn edit(
    live: &Value,
    managed: &[ManagedEntry],
    edited: &Value,
    manager: &str,
) -> Vec<ManagedEntry> {
    update(&SERVICES, Some(live), edited, managed, writer(manager))
}

fn entry<'a>(managed: &'a [ManagedEntry], manager: &str) -> &'a ManagedEntry {
    managed
        .iter()
        .find(|e| e.manager == manager)
        .unwrap_or_else(|| panic!("no entry for {manager}: {managed:?}"))
}

#[test]
fn a_service_selector_is_one_field_and_ports_are_keyed() {
    let obj = svc(json!({
        "selector": {"app": "zk", "tier": "db"},
        "ports": [{"name": "quorum", "port": 2888}, {"name": "client", "port": 2181, "protocol": "UDP"}],
        "ipFamilies": ["IPv4"],
    }));
    let set = fields_of(&SERVICES, &obj, Scope::Main);
    let mut udp = f("spec.ports");
    udp.push(PathElement::Key(r#"{"port":2181,"protocol":"UDP"}"#.into()));
    let expected: FieldSet = [
        f("metadata.labels.app"),
        // +mapType=atomic: the selector is one field, never one per key.
        f("spec.selector"),
        f("spec.ipFamilies"),
        port_path(2888, None),
        port_path(2888, Some("name")),
        port_path(2888, Some("port")),
        udp.clone(),
        [udp.clone(), vec![field("name")]].concat(),
        [udp.clone(), vec![field("port")]].concat(),
        [udp, vec![field("protocol")]].concat(),
    ]
    .into_iter()
    .collect();
    assert_eq!(set, expected);
    let mut with_status = obj.clone();
    with_status["status"] = json!({"loadBalancer": {}});
    // The status subresource scope sees only status; status is never in the main scope.
    assert_eq!(
        fields_of(&SERVICES, &with_status, Scope::Status),
        FieldSet::from([f("status.loadBalancer")])
    );
}

#[test]
fn endpoints_subsets_are_atomic_and_finalizers_a_set() {
    let obj = json!({"metadata": {"name": "zk", "finalizers": ["a", "b"]},
                     "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
    let mut a = f("metadata.finalizers");
    a.push(PathElement::Value(r#""a""#.into()));
    let mut b = f("metadata.finalizers");
    b.push(PathElement::Value(r#""b""#.into()));
    assert_eq!(
        fields_of(&ENDPOINTS, &obj, Scope::Main),
        FieldSet::from([f("subsets"), a.clone(), b])
    );
    assert_eq!(path_string(&a), r#".metadata.finalizers[="a"]"#);
}

#[test]
fn renders_fields_v1_with_dots_where_a_member_has_members_below() {
    let mut labels_node = f("metadata.labels");
    labels_node.truncate(2);
    let set = FieldSet::from([
        labels_node,
        f("metadata.labels.app"),
        port_path(2888, None),
        port_path(2888, Some("name")),
    ]);
    assert_eq!(
        to_fields_v1(&set),
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":2888,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}},
        })
    );
    assert_eq!(
        path_string(&port_path(2888, Some("name"))),
        r#".spec.ports[port=2888,protocol="TCP"].name"#
    );
}

/// What a creating Update owns: what it sent on top of the type's empty object, a map it added
/// as a member of its own (`"."`), the way kube-apiserver records `kubectl create`.
#[test]
fn a_create_owns_what_it_sent_and_the_maps_it_added() {
    let obj = svc(json!({"type": "ClusterIP", "ports": [{"port": 2888}]}));
    let managed = update(&SERVICES, None, &obj, &[], writer("kubectl-create"));
    let e = entry(&managed, "kubectl-create");
    assert_eq!(e.operation, Operation::Update);
    assert_eq!(
        to_fields_v1(&e.fields),
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:type": {}, "f:ports": {".": {}, "k:{\"port\":2888,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}},
        })
    );
}

#[test]
fn conflict_with_other_manager_on_changed_value() {
    let (live, managed) = create(
        &svc(json!({"ports": [{"name": "quorum", "port": 2888}]})),
        "zkctl",
    );
    // kubectl-edit changes the port name by an Update.
    let mut edited = live.clone();
    edited["spec"]["ports"][0]["name"] = json!("peer");
    let managed = edit(&live, &managed, &edited, "kubectl-edit");
    assert_eq!(
        entry(&managed, "kubectl-edit").fields,
        FieldSet::from([port_path(2888, Some("name"))])
    );

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

/// A selector key added by `kubectl edit` takes the whole selector (one field): the tool's next
/// apply conflicts on `.spec.selector`, and a forced apply replaces the selector whole, dropping
/// the added key (structured-merge-diff, TestMultipleApplierAtomicMaps "force").
#[test]
fn a_selector_key_added_by_hand_conflicts_and_force_replaces_the_selector_whole() {
    let cfg = svc(json!({"selector": {"app": "zk"}}));
    let (live, managed) = create(&cfg, "zk-observers-xtask");
    let mut edited = live.clone();
    edited["spec"]["selector"]["tier"] = json!("db");
    let managed = edit(&live, &managed, &edited, "kubectl-edit");
    assert_eq!(
        entry(&managed, "kubectl-edit").fields,
        FieldSet::from([f("spec.selector")])
    );
    assert!(!entry(&managed, "zk-observers-xtask")
        .fields
        .contains(&f("spec.selector")));
    let err = apply(
        &SERVICES,
        &edited,
        &managed,
        &cfg,
        writer("zk-observers-xtask"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        vec![Conflict {
            owner: r#""kubectl-edit" using v1"#.into(),
            path: f("spec.selector"),
        }]
    );
    let (obj, managed) = apply(
        &SERVICES,
        &edited,
        &managed,
        &cfg,
        writer("zk-observers-xtask"),
        true,
    )
    .unwrap();
    assert_eq!(obj["spec"]["selector"], json!({"app": "zk"}));
    assert!(managed.iter().all(|e| e.manager != "kubectl-edit"));
    assert!(entry(&managed, "zk-observers-xtask")
        .fields
        .contains(&f("spec.selector")));
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
        .all(|e| e.fields.contains(&f("spec.selector"))));
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
    assert!(!entry(&managed, "a").fields.contains(&f("spec.selector")));
}

#[test]
fn multiple_conflicts_are_listed_one_per_line() {
    let (live, managed) = create(
        &svc(json!({"selector": {"app": "zk"}, "type": "ClusterIP"})),
        "a",
    );
    let err = apply(
        &SERVICES,
        &live,
        &managed,
        &svc(json!({"selector": {"app": "x"}, "type": "NodePort"})),
        writer("b"),
        false,
    )
    .unwrap_err();
    let e = conflict_error(&SERVICES, "zk", &err);
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflict with \"a\": .spec.selector\nconflict with \"a\": .spec.type"
    );
}

#[test]
fn dropped_fields_are_removed_with_the_maps_they_leave_empty() {
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

/// A port the applier no longer applies goes whole, even when an Update changed a field inside it:
/// only an owner of the item itself keeps it (structured-merge-diff,
/// TestMultipleAppliersNestedType "remove_one_with_managed_subitem_keep_one").
#[test]
fn a_dropped_port_goes_whole_unless_someone_owns_the_item() {
    let two = svc(
        json!({"ports": [{"name": "quorum", "port": 2888}, {"name": "election", "port": 3888}]}),
    );
    let one = svc(json!({"ports": [{"name": "quorum", "port": 2888}]}));
    let (live, managed) = create(&two, "a");
    let mut edited = live.clone();
    edited["spec"]["ports"][1]["targetPort"] = json!(3889);
    let managed = edit(&live, &managed, &edited, "edit");
    let (obj, after) = apply(&SERVICES, &edited, &managed, &one, writer("a"), false).unwrap();
    assert_eq!(
        obj["spec"]["ports"],
        json!([{"name": "quorum", "port": 2888}])
    );
    assert!(after.iter().all(|e| e.manager != "edit"), "{after:?}");
    // Another applier of the item keeps it, with what it applied.
    let (live, managed) = create(&two, "a");
    let election = svc(json!({"ports": [{"name": "election", "port": 3888}]}));
    let (live, managed) = apply(&SERVICES, &live, &managed, &election, writer("b"), false).unwrap();
    let (obj, _) = apply(&SERVICES, &live, &managed, &one, writer("a"), false).unwrap();
    assert_eq!(
        obj["spec"]["ports"],
        json!([{"name": "quorum", "port": 2888}, {"name": "election", "port": 3888}])
    );
}

#[test]
fn update_transfers_ownership_and_never_conflicts() {
    let (live, managed) = create(
        &svc(json!({"selector": {"app": "zk"}, "type": "ClusterIP"})),
        "a",
    );
    let mut edited = live.clone();
    edited["spec"]["selector"]["app"] = json!("other");
    let mut managed = edit(&live, &managed, &edited, "u");
    prune_ownership(&SERVICES, &edited, &mut managed);
    let u = entry(&managed, "u");
    assert_eq!(u.operation, Operation::Update);
    assert_eq!(u.fields, FieldSet::from([f("spec.selector")]));
    let a = entry(&managed, "a");
    assert!(!a.fields.contains(&f("spec.selector")));
    assert!(a.fields.contains(&f("spec.type")));
    // An update that changes nothing gains nothing.
    let again = edit(&edited, &managed, &edited, "v");
    assert_eq!(again, managed);
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

/// Upstream's list merge order: items both lists have in the configuration's order, items only the
/// live object has where they were, new items at their place in the configuration
/// (structured-merge-diff `typed/merge.go`, `visitListItems`; its set_test.go
/// "apply_update_apply_no_overlap" shows [a b c d] + [a aprime c cprime] = [a b aprime c d cprime]).
#[test]
fn list_items_merge_in_upstream_order() {
    let schema = upstream::scenarios()
        .unwrap()
        .into_iter()
        .find(|s| s.schema.name == "set")
        .unwrap()
        .schema;
    let m = |l: Value, r: Value| {
        merge(&schema, &json!({"list": l}), &json!({"list": r}))["list"].clone()
    };
    assert_eq!(
        m(
            json!(["a", "b", "c", "d"]),
            json!(["a", "aprime", "c", "cprime"])
        ),
        json!(["a", "b", "aprime", "c", "d", "cprime"])
    );
    assert_eq!(
        m(json!(["a", "c"]), json!(["a", "b", "c"])),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        m(json!(["a", "b", "c", "d"]), json!(["a", "d", "c", "b"])),
        json!(["a", "d", "c", "b"])
    );
    assert_eq!(
        m(json!(["x", "a"]), json!(["a", "y"])),
        json!(["x", "a", "y"])
    );
}

/// Every ported upstream scenario, through this server's apply and update: each refused apply
/// meets exactly upstream's conflicts, and the last state is upstream's object and managed fields.
#[test]
fn upstream_scenarios_end_as_upstream_says() {
    let scenarios = upstream::scenarios().unwrap();
    assert!(scenarios.len() >= 12, "{} scenarios", scenarios.len());
    let mut failures = Vec::new();
    for s in &scenarios {
        let steps = match upstream::replay(s) {
            Ok(steps) => steps,
            Err(e) => {
                failures.push(format!("{} ({}): {e}", s.name, s.source));
                continue;
            }
        };
        for (i, (step, op)) in steps.iter().zip(&s.ops).enumerate() {
            if let Some(want) = &op.conflicts {
                let mut got = step.conflicts.clone();
                let mut want = want.clone();
                got.sort();
                want.sort();
                if got != want {
                    failures.push(format!(
                        "{} ({}): operation {i} conflicts {got:?}, upstream {want:?}",
                        s.name, s.source
                    ));
                }
            }
        }
        let last = &steps.last().expect("scenarios have operations").after;
        if last.object != s.object {
            failures.push(format!(
                "{} ({}): object {}, upstream {}",
                s.name, s.source, last.object, s.object
            ));
        }
        if let Some(want) = &s.managed {
            if &last.managed != want {
                failures.push(format!(
                    "{} ({}): managed {:?}, upstream {:?}",
                    s.name, s.source, last.managed, want
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
