use super::*;
use crate::apiserver::ssa::Scope;
use crate::apiserver::store::WriteOutcome;

fn setup(controllers: Controllers) -> Setup {
    let pod = |n: u32, ip: &str| Pod {
        namespace: "ns".into(),
        name: format!("zk-{n}"),
        labels: BTreeMap::from([
            (
                "statefulset.kubernetes.io/pod-name".to_string(),
                format!("zk-{n}"),
            ),
            ("app".to_string(), "zk".to_string()),
        ]),
        ip: ip.parse().unwrap(),
        node: "node-a".into(),
    };
    Setup {
        lb_after: Some(Duration::ZERO),
        ingress: Ingress::Ip,
        lb_cleanup: Duration::ZERO,
        lb_addresses: BTreeMap::from([("ns/lb".to_string(), "198.18.1.1".to_string())]),
        controllers,
        pods: vec![
            (pod(0, "10.0.0.10"), "uid-0".into()),
            (pod(1, "10.0.0.11"), "uid-1".into()),
        ],
        firewall: None,
    }
}

fn state() -> State {
    State::new(&["ns".to_string()], true)
}

fn apply(st: &mut State, obj: &Value, manager: &str) -> WriteOutcome {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let res = super::super::resources::lookup_kind(
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
        true,
    )
    .unwrap();
    st.apply(
        res,
        "ns",
        &name,
        obj,
        false,
        WriteOptions::client(manager, false, Scope::Main),
    )
    .unwrap()
}

fn svc(name: &str, ty: &str, selector: Option<Value>) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "tool", "team": "a"}},
        "spec": {"type": ty, "ports": [{"name": "tcp-quorum", "port": 2888, "targetPort": 2888}]}});
    if let Some(sel) = selector {
        s["spec"]["selector"] = sel;
    }
    s
}

fn items<'a>(st: &'a State, res: &Resource) -> Vec<&'a Value> {
    let r = res.qualified();
    st.objects
        .iter()
        .filter(|((k, _, _), _)| *k == r)
        .map(|(_, s)| &s.object)
        .collect()
}

fn manager_of(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_cloud_adds_its_finalizer_then_an_address_and_holds_deletion() {
    let mut st = state();
    let mut s = setup(Controllers::NONE);
    s.lb_after = None;
    apply(&mut st, &svc("lb", "LoadBalancer", None), "tool");
    st.controllers_tick(&s);
    let obj = st.peek(&SERVICES, "ns", "lb").unwrap().object.clone();
    assert_eq!(obj["metadata"]["finalizers"], json!([LB_CLEANUP_FINALIZER]));
    assert_eq!(
        obj["status"],
        json!({"loadBalancer": {}}),
        "never: no address"
    );
    s.lb_after = Some(Duration::ZERO);
    st.controllers_tick(&s);
    let obj = st.peek(&SERVICES, "ns", "lb").unwrap().object.clone();
    assert_eq!(
        obj["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "198.18.1.1", "ipMode": "VIP"}])
    );
    assert!(manager_of(&obj).contains(&CLOUD_CONTROLLER.to_string()));
    // Re-applying (which mentions neither status nor finalizers) is a no-op.
    assert!(!apply(&mut st, &svc("lb", "LoadBalancer", None), "tool").changed);

    // A DELETE only marks it while the cloud holds it.
    s.lb_cleanup = Duration::from_secs(3600);
    let deleted = st
        .delete(&SERVICES, "ns", "lb", None, false, Actor::Client)
        .unwrap();
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    st.controllers_tick(&s);
    let held = st.peek(&SERVICES, "ns", "lb").unwrap().clone();
    assert!(held.object["metadata"]["deletionTimestamp"].is_string());
    // Creating it again is refused while it is being deleted; adding a finalizer too.
    let e = st
        .create(
            &SERVICES,
            "ns",
            &svc("lb", "LoadBalancer", None),
            WriteOptions::client("x", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        r#"object is being deleted: services "lb" already exists"#
    );
    let mut more = held.object.clone();
    more["metadata"]["finalizers"] = json!([LB_CLEANUP_FINALIZER, "example.com/other"]);
    let e = st
        .replace(
            &SERVICES,
            "ns",
            "lb",
            &more,
            WriteOptions::client("x", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!(e.code, 422, "{e}");
    // Once released, it is gone; re-created, it gets a new address.
    s.lb_cleanup = Duration::ZERO;
    st.controllers_tick(&s);
    assert!(st.peek(&SERVICES, "ns", "lb").is_none());
    apply(&mut st, &svc("lb", "LoadBalancer", None), "tool");
    st.controllers_tick(&s);
    st.controllers_tick(&s);
    let obj = &st.peek(&SERVICES, "ns", "lb").unwrap().object;
    assert_eq!(
        obj["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.18.0.100"
    );
}

#[test]
fn hostname_mode_and_leaving_type_load_balancer() {
    let mut st = state();
    let mut s = setup(Controllers::NONE);
    s.ingress = Ingress::Hostname;
    s.lb_addresses = BTreeMap::new();
    apply(&mut st, &svc("lb", "LoadBalancer", None), "tool");
    st.controllers_tick(&s);
    st.controllers_tick(&s);
    let obj = &st.peek(&SERVICES, "ns", "lb").unwrap().object;
    assert_eq!(
        obj["status"]["loadBalancer"]["ingress"],
        json!([{"hostname": "lb-0.ns.elb.sandbox.test"}])
    );
    apply(&mut st, &svc("lb", "ClusterIP", None), "tool");
    st.controllers_tick(&s);
    st.controllers_tick(&s);
    let obj = &st.peek(&SERVICES, "ns", "lb").unwrap().object;
    assert_eq!(obj["status"], json!({"loadBalancer": {}}));
    assert!(obj["metadata"].get("finalizers").is_none(), "{obj}");
}

#[test]
fn endpoints_and_slices_of_a_selector_service_copy_its_labels() {
    let mut st = state();
    let s = setup(Controllers::ALL);
    let sel = json!({"statefulset.kubernetes.io/pod-name": "zk-0"});
    apply(&mut st, &svc("zk0", "LoadBalancer", Some(sel)), "tool");
    st.controllers_tick(&s);
    let ep = &st.peek(&ENDPOINTS, "ns", "zk0").unwrap().object;
    assert_eq!(
        ep["metadata"]["labels"],
        json!({"app.kubernetes.io/managed-by": "tool", "team": "a", ENDPOINTS_MANAGED_BY: ENDPOINTS_CONTROLLER})
    );
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.0.10");
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"name": "tcp-quorum", "port": 2888, "protocol": "TCP"}])
    );
    assert_eq!(manager_of(ep), [KUBE_CONTROLLER_MANAGER]);
    let slices = items(&st, &ENDPOINT_SLICES);
    assert_eq!(slices.len(), 1);
    let slice = slices[0];
    assert!(slice["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("zk0-"));
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"app.kubernetes.io/managed-by": "tool", "team": "a",
               SLICE_SERVICE_NAME: "zk0", SLICE_MANAGED_BY: SLICE_CONTROLLER})
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    // Steady state: nothing more is written.
    let writes = st.stats.controller_writes;
    st.controllers_tick(&s);
    assert_eq!(st.stats.controller_writes, writes);
    // A label change on the Service is copied.
    let mut relabelled = svc(
        "zk0",
        "LoadBalancer",
        Some(json!({"statefulset.kubernetes.io/pod-name": "zk-0"})),
    );
    relabelled["metadata"]["labels"]["team"] = json!("b");
    apply(&mut st, &relabelled, "tool");
    st.controllers_tick(&s);
    assert_eq!(
        st.peek(&ENDPOINTS, "ns", "zk0").unwrap().object["metadata"]["labels"]["team"],
        "b"
    );
    assert_eq!(
        items(&st, &ENDPOINT_SLICES)[0]["metadata"]["labels"]["team"],
        "b"
    );
    // Deleted with the Service (the cloud releases it at once here).
    st.delete(&SERVICES, "ns", "zk0", None, false, Actor::Client)
        .unwrap();
    for _ in 0..3 {
        st.controllers_tick(&s);
    }
    assert!(st.peek(&SERVICES, "ns", "zk0").is_none());
    assert!(st.peek(&ENDPOINTS, "ns", "zk0").is_none());
    assert!(items(&st, &ENDPOINT_SLICES).is_empty());
}

#[test]
fn mirroring_copies_selectorless_endpoints_unless_told_to_skip() {
    let mut st = state();
    let s = setup(Controllers::ALL);
    apply(&mut st, &svc("metrics", "ClusterIP", None), "tool");
    let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "metrics", "labels": {"app.kubernetes.io/managed-by": "tool"}},
        "subsets": [{"addresses": [{"ip": "198.18.1.4", "hostname": "obs-1"}],
                     "ports": [{"name": "metrics", "port": 9141, "protocol": "TCP"}]}]});
    apply(&mut st, &ep, "tool");
    st.controllers_tick(&s);
    assert!(
        st.peek(&ENDPOINTS, "ns", "metrics").is_some(),
        "not the Endpoints controller's"
    );
    let slices = items(&st, &ENDPOINT_SLICES);
    assert_eq!(slices.len(), 1);
    assert_eq!(
        slices[0]["metadata"]["labels"],
        json!({"app.kubernetes.io/managed-by": "tool", SLICE_SERVICE_NAME: "metrics",
               SLICE_MANAGED_BY: MIRRORING_CONTROLLER})
    );
    assert_eq!(slices[0]["endpoints"][0]["hostname"], "obs-1");
    assert_eq!(
        slices[0]["metadata"]["ownerReferences"][0]["kind"],
        "Endpoints"
    );
    ep["metadata"]["labels"][SLICE_SKIP_MIRROR] = json!("true");
    apply(&mut st, &ep, "tool");
    st.controllers_tick(&s);
    assert!(
        items(&st, &ENDPOINT_SLICES).is_empty(),
        "skip-mirror removes the mirror"
    );
}

#[test]
fn switched_off_controllers_write_nothing() {
    let mut st = state();
    let mut s = setup(Controllers::NONE);
    s.lb_after = None;
    apply(
        &mut st,
        &svc("zk0", "ClusterIP", Some(json!({"app": "zk"}))),
        "tool",
    );
    st.controllers_tick(&s);
    assert_eq!(st.stats.controller_writes, 0);
    assert_eq!(st.object_count(), 1);
}

#[test]
fn a_create_owns_the_scheme_defaults_but_not_the_allocations() {
    let mut st = state();
    let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk0"},
        "spec": {"ports": [{"name": "tcp-quorum", "port": 2888}]}});
    let out = st
        .create(
            &SERVICES,
            "ns",
            &body,
            WriteOptions::client("kubectl-create", false, Scope::Main),
        )
        .unwrap();
    let owned = &out.object["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    for f in ["f:type", "f:sessionAffinity", "f:internalTrafficPolicy"] {
        assert!(owned.get(f).is_some(), "{f} in {owned}");
    }
    let port = &owned["f:ports"]["k:{\"port\":2888,\"protocol\":\"TCP\"}"];
    assert!(
        port.get("f:protocol").is_some() && port.get("f:targetPort").is_some(),
        "{owned}"
    );
    for f in [
        "f:clusterIP",
        "f:clusterIPs",
        "f:ipFamilies",
        "f:ipFamilyPolicy",
    ] {
        assert!(owned.get(f).is_none(), "{f} in {owned}");
    }
    // Taking it over as a LoadBalancer with apply conflicts on the type.
    let e = st
        .apply(
            &SERVICES,
            "ns",
            "zk0",
            &svc("zk0", "LoadBalancer", None),
            false,
            WriteOptions::client("tool", false, Scope::Main),
        )
        .unwrap_err();
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains(r#"conflict with "kubectl-create" using v1: .spec.type"#),
        "{e}"
    );
}
