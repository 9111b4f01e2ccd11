use super::*;
use crate::apiserver::resources::{ENDPOINTS, SERVICES};

fn state() -> State {
    State::new(&["ns".to_string()], true)
}

fn cfg(ports: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "zk", "namespace": "ns", "labels": {"app": "zk"}},
        "spec": {"selector": {"app": "zk"}, "ports": ports},
    })
}

fn apply(
    st: &mut State,
    config: &Value,
    manager: &str,
    force: bool,
    dry_run: bool,
) -> Result<WriteOutcome, ApiError> {
    st.apply(
        &SERVICES,
        "ns",
        "zk",
        config,
        force,
        WriteOptions::client(manager, dry_run, Scope::Main),
    )
}

fn rv(obj: &Value) -> String {
    meta_str(obj, "resourceVersion").unwrap().to_string()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
}

#[test]
fn apply_creates_with_defaults_owned_by_nobody() {
    let mut st = state();
    let out = apply(
        &mut st,
        &cfg(json!([{"name": "client", "port": 2181}])),
        "zkctl",
        false,
        false,
    )
    .unwrap();
    assert!(out.created && out.changed);
    let obj = &out.object;
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(obj["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(obj["spec"]["ports"][0]["targetPort"], 2181);
    assert_eq!(obj["status"], json!({"loadBalancer": {}}));
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                // +mapType=atomic (ServiceSpec.Selector): one field.
                "f:selector": {},
                "f:ports": {"k:{\"port\":2181,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}},
            },
        })
    );
    assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(obj["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(st.stats.writes, 1);
}

#[test]
fn noop_apply_keeps_resource_version_and_is_not_a_write() {
    let mut st = state();
    let c = cfg(json!([{"name": "client", "port": 2181}]));
    let first = apply(&mut st, &c, "zkctl", false, false).unwrap();
    let second = apply(&mut st, &c, "zkctl", false, false).unwrap();
    assert!(!second.changed);
    assert_eq!(rv(&first.object), rv(&second.object));
    assert_eq!(first.object, second.object);
    assert_eq!(st.stats.writes, 1);
    // A no-op update (PUT of the stored object) is not a write either.
    let out = st
        .replace(
            &SERVICES,
            "ns",
            "zk",
            &second.object,
            WriteOptions::client("x", false, Scope::Main),
        )
        .unwrap();
    assert!(!out.changed);
    assert_eq!(rv(&out.object), rv(&first.object));
}

#[test]
fn dry_run_stores_nothing() {
    let mut st = state();
    let c = cfg(json!([{"name": "client", "port": 2181}]));
    let before = st.resource_version();
    let out = apply(&mut st, &c, "zkctl", false, true).unwrap();
    assert!(out.created);
    assert_eq!(out.object["spec"]["clusterIP"], "10.96.0.10");
    assert!(out.object["metadata"].get("resourceVersion").is_none());
    assert!(entry(&out.object, "zkctl").is_some());
    assert_eq!(st.object_count(), 0);
    assert_eq!(st.resource_version(), before);

    let stored = apply(&mut st, &c, "zkctl", false, false).unwrap().object;
    let changed = cfg(json!([{"name": "client", "port": 2182}]));
    let dry = apply(&mut st, &changed, "zkctl", false, true).unwrap();
    assert!(dry.changed);
    assert_eq!(dry.object["spec"]["ports"][0]["port"], 2182);
    assert_eq!(rv(&dry.object), rv(&stored));
    assert_eq!(st.peek(&SERVICES, "ns", "zk").unwrap().object, stored);
    assert_eq!(st.stats.writes, 1);
}

#[test]
fn conflict_then_force_through_the_store() {
    let mut st = state();
    apply(
        &mut st,
        &cfg(json!([{"name": "quorum", "port": 2888}])),
        "zkctl",
        false,
        false,
    )
    .unwrap();
    let patch = json!({"spec": {"ports": [{"name": "peer", "port": 2888}]}});
    st.patch(
        &SERVICES,
        "ns",
        "zk",
        &patch,
        WriteOptions::client("kubectl-edit", false, Scope::Main),
    )
    .unwrap();
    let err = apply(
        &mut st,
        &cfg(json!([{"name": "quorum", "port": 2888}])),
        "zkctl",
        false,
        false,
    )
    .unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert!(err.message.contains(
        r#"conflict with "kubectl-edit" using v1: .spec.ports[port=2888,protocol="TCP"].name"#
    ));
    // The merge patch replaced the (atomic-in-merge-patch) list, so kubectl-edit took the
    // changed name only: the other port fields were equal.
    let out = apply(
        &mut st,
        &cfg(json!([{"name": "quorum", "port": 2888}])),
        "zkctl",
        true,
        false,
    )
    .unwrap();
    assert_eq!(out.object["spec"]["ports"][0]["name"], "quorum");
    assert!(
        entry(&out.object, "kubectl-edit").is_none(),
        "kubectl-edit owned only the name"
    );
}

#[test]
fn dropped_fields_are_removed_but_shared_ones_stay() {
    let mut st = state();
    let mut c = cfg(json!([{"name": "client", "port": 2181}]));
    c["metadata"]["annotations"] = json!({"a": "1", "b": "2"});
    apply(&mut st, &c, "zkctl", false, false).unwrap();
    // Another manager applies annotation b with the same value: shared.
    let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk", "annotations": {"b": "2"}}});
    apply(&mut st, &other, "other", false, false).unwrap();
    c["metadata"].as_object_mut().unwrap().remove("annotations");
    let out = apply(&mut st, &c, "zkctl", false, false).unwrap();
    assert_eq!(out.object["metadata"]["annotations"], json!({"b": "2"}));
}

#[test]
fn updates_transfer_ownership_and_bump_generation() {
    let mut st = state();
    let first = apply(
        &mut st,
        &cfg(json!([{"name": "client", "port": 2181}])),
        "zkctl",
        false,
        false,
    )
    .unwrap();
    let patch = json!({"spec": {"selector": {"app": "other"}}});
    let out = st
        .patch(
            &SERVICES,
            "ns",
            "zk",
            &patch,
            WriteOptions::client("kubectl-edit", false, Scope::Main),
        )
        .unwrap();
    assert_eq!(out.object["metadata"]["generation"], 2);
    assert_ne!(rv(&out.object), rv(&first.object));
    let edit = entry(&out.object, "kubectl-edit").unwrap();
    assert_eq!(edit["operation"], "Update");
    assert_eq!(
        edit["fieldsV1"],
        // +mapType=atomic (ServiceSpec.Selector): the whole selector is one field.
        json!({"f:spec": {"f:selector": {}}})
    );
    let zk = entry(&out.object, "zkctl").unwrap();
    assert!(zk["fieldsV1"]["f:spec"].get("f:selector").is_none());
    // Label-only changes do not bump the generation.
    let out = st
        .patch(
            &SERVICES,
            "ns",
            "zk",
            &json!({"metadata": {"labels": {"x": "y"}}}),
            WriteOptions::client("m", false, Scope::Main),
        )
        .unwrap();
    assert_eq!(out.object["metadata"]["generation"], 2);
}

#[test]
fn status_writes_touch_only_status() {
    let mut st = state();
    apply(
        &mut st,
        &cfg(json!([{"name": "client", "port": 2181}])),
        "zkctl",
        false,
        false,
    )
    .unwrap();
    let patch = json!({"spec": {"selector": {"app": "ignored"}}, "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.9"}]}}});
    let out = st
        .patch(
            &SERVICES,
            "ns",
            "zk",
            &patch,
            WriteOptions::client("lb", false, Scope::Status),
        )
        .unwrap();
    assert_eq!(out.object["spec"]["selector"]["app"], "zk");
    assert_eq!(
        out.object["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.18.0.9"
    );
    let lb = entry(&out.object, "lb").unwrap();
    assert_eq!(lb["subresource"], "status");
    // And main-resource writes cannot change status.
    let out = st
        .patch(
            &SERVICES,
            "ns",
            "zk",
            &json!({"status": null}),
            WriteOptions::client("m", false, Scope::Main),
        )
        .unwrap();
    assert_eq!(
        out.object["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.18.0.9"
    );
}

#[test]
fn put_with_stale_resource_version_conflicts() {
    let mut st = state();
    let obj = apply(
        &mut st,
        &cfg(json!([{"name": "client", "port": 2181}])),
        "zkctl",
        false,
        false,
    )
    .unwrap()
    .object;
    let mut stale = obj.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let err = st
        .replace(
            &SERVICES,
            "ns",
            "zk",
            &stale,
            WriteOptions::client("u", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    let mut fresh = obj;
    fresh["spec"]["ports"][0]["port"] = json!(2182);
    fresh["spec"]["ports"][0]["targetPort"] = json!(2182);
    let out = st
        .replace(
            &SERVICES,
            "ns",
            "zk",
            &fresh,
            WriteOptions::client("u", false, Scope::Main),
        )
        .unwrap();
    // The key of the item changed, so the new item (all its fields) is u's.
    let u = entry(&out.object, "u").unwrap();
    assert!(u["fieldsV1"]["f:spec"]["f:ports"]
        .get("k:{\"port\":2182,\"protocol\":\"TCP\"}")
        .is_some());
    assert_eq!(u["operation"], "Update");
}

#[test]
fn create_errors() {
    let mut st = state();
    let c = cfg(json!([{"name": "client", "port": 2181}]));
    st.create(
        &SERVICES,
        "ns",
        &c,
        WriteOptions::client("unknown", false, Scope::Main),
    )
    .unwrap();
    let e = st
        .create(
            &SERVICES,
            "ns",
            &c,
            WriteOptions::client("unknown", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!((e.code, e.reason), (409, "AlreadyExists"));
    assert_eq!(e.message, r#"services "zk" already exists"#);
    let e = st
        .create(
            &SERVICES,
            "nope",
            &c,
            WriteOptions::client("unknown", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!(e.message, r#"namespaces "nope" not found"#);
    let mut bad = c.clone();
    bad["metadata"]["name"] = json!("Bad_Name");
    bad["spec"]["ports"][0]["port"] = json!(70000);
    let e = st
        .create(
            &SERVICES,
            "ns",
            &bad,
            WriteOptions::client("unknown", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let fields: Vec<&str> = e.details.as_ref().unwrap()["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    // The defaulted targetPort (= port) is invalid too, as in a real server.
    assert_eq!(
        fields,
        [
            "metadata.name",
            "spec.ports[0].port",
            "spec.ports[0].targetPort"
        ]
    );
    let mut wrong_ns = c;
    wrong_ns["metadata"]["namespace"] = json!("other");
    let e = st
        .create(
            &SERVICES,
            "ns",
            &wrong_ns,
            WriteOptions::client("unknown", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!(e.code, 400);
}

#[test]
fn post_owner_owns_everything_it_set() {
    let mut st = state();
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "zk"},
        "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 2181}]}]});
    let out = st
        .create(
            &ENDPOINTS,
            "ns",
            &ep,
            WriteOptions::client("unknown", false, Scope::Main),
        )
        .unwrap();
    assert_eq!(out.object["subsets"][0]["ports"][0]["protocol"], "TCP");
    let e = &out.object["metadata"]["managedFields"][0];
    assert_eq!(e["manager"], "unknown");
    assert_eq!(e["fieldsV1"], json!({"f:subsets": {}}));
}

#[test]
fn merge_patch_follows_rfc7386() {
    let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
    merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
    assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    let mut t = json!({"a": [1, 2]});
    merge_patch(&mut t, &json!({"a": [3]}));
    assert_eq!(t, json!({"a": [3]}));
}

#[test]
fn seeding_is_an_update_and_not_a_client_write() {
    let mut st = state();
    let svc = cfg(json!([{"name": "client", "port": 2181}]));
    st.seed(&svc, "seeder").unwrap();
    assert_eq!(st.stats.writes, 0);
    let stored = &st.peek(&SERVICES, "ns", "zk").unwrap().object;
    let e = &stored["metadata"]["managedFields"][0];
    assert_eq!(
        (e["manager"].as_str(), e["operation"].as_str()),
        (Some("seeder"), Some("Update"))
    );
}
