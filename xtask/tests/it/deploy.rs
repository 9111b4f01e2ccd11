//! `cargo xtask deploy`, `drift` and `demo` end to end: the Kubernetes API test server plus the
//! sandbox's real observer hosts and ZooKeeper ensemble. Needs root.

use std::time::Duration;

use crate::common::{self, drift_key, drop_traffic_from, ssh_as, wait_for, World, NS};
use sandbox::harness::{ensemble_container, four_letter_word};
use serde_json::{json, Value};

/// The modification times of the managed files on every host.
fn mtimes(w: &World) -> Vec<std::time::SystemTime> {
    let mut v = Vec::new();
    for h in &w.sb().hosts {
        for f in ["zoo.cfg", "docker-compose.yaml"] {
            v.push(
                std::fs::metadata(h.deploy_dir.join(f))
                    .unwrap()
                    .modified()
                    .unwrap(),
            );
        }
    }
    v
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["kind"].as_str().unwrap(),
                f["object"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_second_deploy_changes_nothing_counted() {
    let w = World::sandbox();
    let out = w.on_sandbox(&["deploy", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the plan of a first deploy has changes"
    );
    assert_eq!(w.managed_writes(), 0, "--dry-run writes nothing");

    let first = w.deploy();
    assert_eq!(first["totals"]["objects"]["created"], 7);
    assert_eq!(first["totals"]["hosts"]["updated"], 2);
    assert_eq!(
        first["monitored_observers"],
        json!(["zk-observer-1", "zk-observer-2"])
    );
    let endpoints = w
        .api
        .get("v1", "endpoints", NS, "sandbox-zookeeper-external")
        .unwrap();
    assert_eq!(
        endpoints["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Where it came from: the commit on every object written and in every host's marker file
    // (not in zoo.cfg: its bytes do not change with the commit), and status reads both back.
    let commit = xtask::provenance::commit();
    let service = w.service("zk0").unwrap();
    assert_eq!(
        service["metadata"]["annotations"]["zk-observers.dev/deployed-commit"],
        commit.as_str()
    );
    assert!(service["metadata"]["annotations"]["zk-observers.dev/deployed-at"].is_string());
    let marker: Value =
        serde_json::from_str(&w.deployed("zk-observer-1", ".zk-observers/deployed.json")).unwrap();
    assert_eq!(marker["commit"], commit.as_str());
    assert_eq!(marker["environment"], "sandbox");
    assert!(!w.deployed("zk-observer-1", "zoo.cfg").contains(&commit));
    let status = common::json(&w.on_sandbox(&["status", "--output", "json"]));
    for h in status["hosts"].as_array().unwrap() {
        assert_eq!(h["deployed"]["commit"], commit.as_str(), "{h}");
    }
    let objects = status["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 7, "{status}");
    assert!(
        objects.iter().all(|o| o["commit"] == commit.as_str()),
        "{status}"
    );

    let writes = w.managed_writes();
    let restarts = (w.started_at("zk-observer-1"), w.started_at("zk-observer-2"));
    let before = mtimes(&w);
    let second = w.deploy();
    assert_eq!(w.managed_writes() - writes, 0, "0 API writes");
    assert_eq!(mtimes(&w), before, "0 file writes");
    assert_eq!(
        (w.started_at("zk-observer-1"), w.started_at("zk-observer-2")),
        restarts,
        "0 restarts"
    );
    assert_eq!(second["totals"]["objects"]["unchanged"], 7);
    assert_eq!(second["totals"]["hosts"]["unchanged"], 2);
    assert!(
        w.api
            .get(
                "coordination.k8s.io/v1",
                "leases",
                NS,
                "zk-observers-deploy-sandbox"
            )
            .is_none(),
        "the lock is released"
    );
}

/// `deploy --plan-out` saves what a deploy would do; `deploy --plan` carries out exactly that. A
/// plan the live state moved away from (an object deleted by someone else, a host file edited by
/// hand) is refused before anything is changed, naming what moved.
#[test]
fn a_saved_plan_is_carried_out_and_a_stale_one_is_refused() {
    let w = World::sandbox();
    let plan = w.dir().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let out = w.on_sandbox(&["deploy", "--plan-out", plan_arg, "--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "changes planned");
    assert_eq!(common::json(&out)["plan_file"], plan_arg);
    assert_eq!(w.managed_writes(), 0, "planning writes nothing");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(saved["format_version"], 1);
    assert_eq!(saved["commit"], xtask::provenance::commit().as_str());
    assert_eq!(saved["objects"].as_array().unwrap().len(), 7);
    assert!(saved["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["result"] == "would-change"));

    // Carried out as saved: no prompt (stdin is not a terminal), no --yes needed.
    let out = w.on_sandbox(&["deploy", "--plan", plan_arg, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let done = common::json(&out);
    assert_eq!(done["totals"]["objects"]["created"], 7);
    assert_eq!(done["totals"]["hosts"]["updated"], 2);

    // A plan that repairs a hand edit on zk-observer-2 ...
    w.edit(
        "zk-observer-2",
        "zoo.cfg",
        "maxClientCnxns=60",
        "maxClientCnxns=61",
    );
    let out = w.on_sandbox(&["deploy", "--plan-out", plan_arg]);
    assert_eq!(out.status.code(), Some(2));
    // ... then the live state moves before it is carried out.
    w.client(async |c| {
        let endpoints: kube::Api<k8s_openapi::api::core::v1::Endpoints> =
            kube::Api::namespaced(c, NS);
        endpoints
            .delete("sandbox-zookeeper-external", &Default::default())
            .await
            .unwrap();
    });
    w.edit(
        "zk-observer-1",
        "zoo.cfg",
        "maxClientCnxns=60",
        "maxClientCnxns=62",
    );
    let writes = w.managed_writes();
    let out = w.on_sandbox(&["deploy", "--plan", plan_arg]);
    assert_eq!(out.status.code(), Some(1), "a stale plan is an error");
    let err = common::stderr(&out);
    assert!(
        err.contains("no longer matches the live state or the code; nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("Endpoints/zookeeper/sandbox-zookeeper-external: planned to unchanged, now it would create"),
        "{err}"
    );
    assert!(
        err.contains("host zk-observer-1: zoo.cfg on the host changed since the plan"),
        "{err}"
    );
    assert_eq!(w.managed_writes(), writes, "nothing applied");
    assert!(
        w.deployed("zk-observer-2", "zoo.cfg")
            .contains("maxClientCnxns=61"),
        "nothing written"
    );
    assert!(
        w.api
            .get(
                "coordination.k8s.io/v1",
                "leases",
                NS,
                "zk-observers-deploy-sandbox"
            )
            .is_none(),
        "the lock is released"
    );

    // Planned again, it goes through, and drift is clean.
    let out = w.on_sandbox(&["deploy", "--plan-out", plan_arg]);
    assert_eq!(out.status.code(), Some(2));
    let out = w.on_sandbox(&["deploy", "--plan", plan_arg, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(common::json(&out)["totals"]["hosts"]["updated"], 2);
    let (code, report) = w.drift();
    assert_eq!(code, 0, "{report}");
}

/// A plan made before the load balancers had addresses renders the observers' files from the
/// recorded ones. When the cloud then gives another address, `--plan` applies the Services as
/// planned and touches no observer: their files would not be the ones that were reviewed.
#[test]
fn a_saved_plan_whose_load_balancer_gets_another_address_touches_no_observer() {
    let w = World::sandbox_with(|env| {
        let mut c = sandbox::harness::api_config(env, Duration::from_millis(300));
        c.lb_addresses = [("zookeeper/zk0".to_string(), "198.18.0.97".to_string())].into();
        c
    });
    let plan = w.dir().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let out = w.on_sandbox(&["deploy", "--plan-out", plan_arg]);
    assert_eq!(out.status.code(), Some(2));
    let out = w.on_sandbox(&["deploy", "--plan", plan_arg]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("the observers' files rendered from the load balancers' live addresses are not the ones the plan"),
        "{err}"
    );
    assert!(
        err.contains("host zk-observer-1: the zoo.cfg to write is not the one planned"),
        "{err}"
    );
    assert!(
        w.service("zk0").is_some(),
        "the Services were applied as planned"
    );
    for h in ["zk-observer-1", "zk-observer-2"] {
        assert!(
            !w.sb().host(h).deploy_dir.join("zoo.cfg").exists(),
            "{h}: no observer touched"
        );
    }
    assert!(
        w.api
            .get(
                "coordination.k8s.io/v1",
                "leases",
                NS,
                "zk-observers-deploy-sandbox"
            )
            .is_none(),
        "the lock is released"
    );
}

#[test]
fn drift_is_clean_after_a_deploy_and_finds_each_kind_of_drift() {
    let w = World::sandbox();
    w.deploy();
    // Reads leave ZooKeeper's statistics alone: the exporter resets them on every scrape
    // (-reset-on-scrape=true), so drift must not scrape it. A reset would drop this counter to 1.
    let packets_received = || -> u64 {
        let mntr = four_letter_word("198.18.1.4", 2181, "mntr").unwrap();
        mntr.lines()
            .find_map(|l| l.strip_prefix("zk_packets_received\t"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no zk_packets_received in {mntr}"))
    };
    let before = packets_received();
    let (code, report) = w.drift();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["clean"], true);
    let after = packets_received();
    assert!(
        after > before,
        "zk_packets_received went from {before} to {after}: drift reset ZooKeeper's statistics"
    );

    // A human edit in the cluster, a hand-edited file on a host, a stopped exporter.
    w.client(async |c| {
        let svc: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(c, NS);
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        svc.patch(
            "zk1",
            &params,
            &kube::api::Patch::Merge(
                &json!({"metadata": {"labels": {"zk-observers.dev/environment": "edited"}}}),
            ),
        )
        .await
        .unwrap();
    });
    w.edit(
        "zk-observer-2",
        "zoo.cfg",
        "maxClientCnxns=60",
        "maxClientCnxns=6000",
    );
    let h1 = w.sb().host("zk-observer-1");
    let exporter = h1.container_id("exporter").unwrap();
    h1.docker(&["stop", &exporter]).unwrap();

    let (code, report) = w.drift();
    assert_eq!(code, 2, "{report}");
    let found = kinds(&report);
    assert!(
        found.contains(&"cluster-changed Service/zookeeper/zk1".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"host-files host/zk-observer-2".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"host-containers host/zk-observer-1".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"exporter-down host/zk-observer-1".to_string()),
        "{found:?}"
    );
    let files = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "host-files")
        .unwrap();
    assert!(files["diff"]
        .as_str()
        .unwrap()
        .contains("-maxClientCnxns=6000\n+maxClientCnxns=60\n"));

    // The human now owns the label: a plain deploy refuses to take it, changing nothing...
    let out = w.on_sandbox(&["deploy", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("owned by field manager \"kubectl-edit\"")
    );
    // ...and a deploy that takes ownership back repairs all of it; drift is clean again.
    let out = w.on_sandbox(&["deploy", "--yes", "--force-conflicts"]);
    assert_eq!(out.status.code(), Some(0));
    let (code, report) = w.drift();
    assert_eq!(code, 0, "{report}");
}

#[test]
fn drift_finds_moved_load_balancers_and_observers_that_stopped_observing() {
    let w = World::sandbox();
    w.deploy();
    // The cloud moved zk1's load balancer: the observers still point at the old address.
    w.client(async |c| {
        let svc: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(c, NS);
        let params = kube::api::PatchParams {
            field_manager: Some("cloud-controller".into()),
            ..Default::default()
        };
        let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.42"}]}}});
        svc.patch_status("zk1", &params, &kube::api::Patch::Merge(&status))
            .await
            .unwrap();
    });
    let (code, report) = w.drift();
    assert_eq!(code, 2);
    let mismatches: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "address-mismatch")
        .collect();
    assert_eq!(mismatches.len(), 2, "one per observer: {report}");
    assert!(mismatches[0]["detail"]
        .as_str()
        .unwrap()
        .contains("server.2 at 198.18.0.12, but Service zk1 has 198.18.0.42"));

    // A paused ZooKeeper accepts connections and never answers: the probe gives up on each request
    // after its timeout instead of hanging the drift check, and reports what did not answer.
    let h1 = w.sb().host("zk-observer-1");
    let zk = h1.container_id("zookeeper").unwrap();
    h1.docker(&["pause", &zk]).unwrap();
    let (code, report) = w.drift();
    h1.docker(&["unpause", &zk]).unwrap();
    assert_eq!(code, 2, "{report}");
    let paused = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "observer-not-observing" && f["object"] == "host/zk-observer-1")
        .unwrap_or_else(|| panic!("no finding for the paused observer: {report}"));
    assert_eq!(paused["detail"], "srvr: no answer within 4 s", "{report}");

    // The whole ensemble stops: observers are up but no longer observing.
    let mut w = w;
    w.sb_mut().ensemble.as_mut().unwrap().stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, report) = w.drift();
        assert_eq!(code, 2);
        let found = kinds(&report);
        if found.contains(&"observer-not-observing host/zk-observer-1".to_string())
            && found.contains(&"observer-not-observing host/zk-observer-2".to_string())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "observers still observing without an ensemble: {found:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn the_deploy_lock_keeps_deploys_apart_and_drift_waits() {
    let w = World::sandbox();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let held = |renew: &str, seconds: u32| {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "zk-observers-deploy-sandbox", "namespace": NS},
            "spec": {"holderIdentity": "alice@laptop pid 42", "leaseDurationSeconds": seconds, "acquireTime": renew, "renewTime": renew}
        })
    };
    w.api
        .insert(held(&now, 1800), "zk-observers-xtask")
        .unwrap();

    let out = w.on_sandbox(&["deploy", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "another deploy of sandbox is in progress: alice@laptop pid 42 holds the lock"
        ),
        "{err}"
    );
    assert_eq!(w.managed_writes(), 0, "nothing was changed");

    // drift waits for the lock (polling), and still held after --lock-wait it is skipped: exit 1
    // (a check that did not run is no clean bill), and the JSON report says why.
    let out = w.on_sandbox(&["drift", "--lock-wait", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a deploy by alice@laptop pid 42 holds the lock: waiting for it"),
        "{err}"
    );
    assert!(
        err.contains("skipped: a deploy by alice@laptop pid 42 holds the lock"),
        "{err}"
    );
    let out = w.on_sandbox(&["drift", "--lock-wait", "1s", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["status"], "skipped");
    assert_eq!(report["clean"], Value::Null);
    assert!(
        report["skipped"]
            .as_str()
            .unwrap()
            .contains("alice@laptop pid 42"),
        "{report}"
    );

    // A lock whose holder died long ago is taken over once this deploy has watched it unchanged
    // for its duration (3 s here): its old renewTime alone is not trusted (clocks differ).
    w.client(async |c| {
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(c, NS);
        leases
            .delete("zk-observers-deploy-sandbox", &Default::default())
            .await
            .unwrap();
    });
    w.api
        .insert(held("2020-01-01T00:00:00.000000Z", 3), "zk-observers-xtask")
        .unwrap();
    let out = w.on_sandbox(&["deploy", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("the deploy lock is held by alice@laptop pid 42, not renewed since"));
}

#[test]
fn deploy_apply_and_push_refuse_without_a_terminal_or_yes() {
    let w = World::sandbox();
    for command in ["deploy", "apply", "push"] {
        let out = if command == "apply" {
            w.run(&["apply", "--env", "sandbox"])
        } else {
            w.on_sandbox(&[command])
        };
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = common::stderr(&out);
        // The fix on a `hint:` line of its own (issue 24), after the error.
        assert!(
            err.contains("there is no terminal to ask on\n") && err.contains("  hint: pass --yes"),
            "{command}: {err}"
        );
    }
    assert_eq!(
        w.api.stats().requests,
        0,
        "refused before contacting anything"
    );
    assert_eq!(w.managed_writes(), 0);
}

#[test]
fn diff_with_hosts_shows_each_observers_file_diff() {
    let w = World::sandbox();
    let out = w.on_sandbox(&["diff", "--hosts"]);
    assert_eq!(out.status.code(), Some(2), "nothing deployed yet");
    w.deploy();
    let out = w.on_sandbox(&["diff", "--hosts"]);
    assert_eq!(out.status.code(), Some(0), "in sync after a deploy");
    assert!(String::from_utf8_lossy(&out.stdout).contains("unchanged  host zk-observer-1"));
    w.edit("zk-observer-2", "zoo.cfg", "tickTime=2000", "tickTime=3000");
    let out = w.on_sandbox(&["diff", "--hosts"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("~ update host zk-observer-2 (zoo.cfg changed)"),
        "{text}"
    );
    assert!(text.contains("-tickTime=3000\n+tickTime=2000\n"), "{text}");
    assert!(
        text.contains("in sync: 0 to create, 0 to update, 7 unchanged"),
        "the cluster part is in sync: {text}"
    );
}

/// The uids of the Endpoints and EndpointSlices the controllers wrote for the per-pod Services
/// (they carry this tool's labels, copied from the Services).
fn controller_objects(w: &World) -> Vec<String> {
    let mut uids = Vec::new();
    w.client(async |c| {
        let eps: kube::Api<k8s_openapi::api::core::v1::Endpoints> = kube::Api::namespaced(c.clone(), NS);
        let slices: kube::Api<k8s_openapi::api::discovery::v1::EndpointSlice> = kube::Api::namespaced(c, NS);
        let ours = kube::api::ListParams::default()
            .labels("app.kubernetes.io/managed-by=zk-observers-xtask,zk-observers.dev/environment=sandbox,app.kubernetes.io/component=quorum-load-balancer");
        for e in eps.list(&ours).await.unwrap() {
            uids.push(e.metadata.uid.unwrap());
        }
        for e in slices.list(&ours).await.unwrap() {
            uids.push(e.metadata.uid.unwrap());
        }
    });
    uids.sort();
    uids
}

#[test]
fn with_the_controllers_on_deploy_is_idempotent_drift_clean_and_prune_spares_their_objects() {
    let w = World::sandbox();
    w.deploy();
    wait_for(
        "the controllers' Endpoints and EndpointSlices of zk0..zk2",
        || controller_objects(&w).len() == 6,
    );
    let theirs = controller_objects(&w);
    let (code, report) = w.drift();
    assert_eq!(code, 0, "drift right after a deploy: {report}");

    let writes = w.managed_writes();
    let out = w.on_sandbox(&["deploy", "--yes", "--prune", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["totals"]["objects"]["pruned"], 0, "{second}");
    assert_eq!(
        w.managed_writes() - writes,
        0,
        "a second deploy writes nothing"
    );
    assert_eq!(controller_objects(&w), theirs, "none of theirs deleted");
    let (code, report) = w.drift();
    assert_eq!(code, 0, "{report}");
}

#[test]
fn drift_with_a_read_only_identity_finds_each_drift_and_writes_nothing() {
    let w = World::sandbox_with(|env| {
        let mut config = sandbox::harness::api_config(env, Duration::from_millis(300));
        let drift_roles: Vec<Value> = manifests::rbac::roles(env)
            .into_iter()
            .filter(|r| r.metadata.name.as_deref() == Some(manifests::rbac::DRIFT_ROLE))
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        config.identities = vec![
            sandbox::Identity::read_only("auditor"),
            sandbox::Identity::from_roles("drift-job", &drift_roles).unwrap(),
        ];
        config
    });
    w.deploy();
    for user in ["auditor", "drift-job"] {
        let out = w.on_sandbox_as(user, &["drift", "--output", "json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Drift in the cluster (a human edit, a deleted ServiceMonitor, an extra object of ours) and
    // on a host (a hand-edited zoo.cfg).
    w.client(async |c| {
        let svc: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(c.clone(), NS);
        let edit = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        svc.patch(
            "zk0",
            &edit,
            &kube::api::Patch::Merge(&json!({"spec": {"loadBalancerSourceRanges": ["0.0.0.0/0"]}})),
        )
        .await
        .unwrap();
        let zk9 = common::cluster_ip_service("zk9");
        svc.patch(
            "zk9",
            &kube::api::PatchParams::apply("zk-observers-xtask"),
            &kube::api::Patch::Apply(&zk9),
        )
        .await
        .unwrap();
        let sm = kube::Api::<kube::api::DynamicObject>::namespaced_with(
            c,
            NS,
            &kube::api::ApiResource {
                group: "monitoring.coreos.com".into(),
                version: "v1".into(),
                api_version: "monitoring.coreos.com/v1".into(),
                kind: "ServiceMonitor".into(),
                plural: "servicemonitors".into(),
            },
        );
        sm.delete("sandbox-zookeeper-external", &Default::default())
            .await
            .unwrap();
    });
    w.edit("zk-observer-2", "zoo.cfg", "syncLimit=10", "syncLimit=3");

    let mut reports = Vec::new();
    for user in ["auditor", "drift-job"] {
        let out = w.on_sandbox_as(user, &["drift", "--output", "json"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = kinds(&report);
        for want in [
            "cluster-changed Service/zookeeper/zk0",
            "cluster-conflict Service/zookeeper/zk0",
            "cluster-missing ServiceMonitor/zookeeper/sandbox-zookeeper-external",
            "cluster-extra Service/zookeeper/zk9",
            "host-files host/zk-observer-2",
        ] {
            assert!(
                found.contains(&want.to_string()),
                "{user}: {want} not in {found:?}"
            );
        }
        reports.push(found);
    }
    assert_eq!(
        reports[0], reports[1],
        "the drift Role sees what a reader of everything sees"
    );
    let stats = w.api.stats();
    for user in ["auditor", "drift-job"] {
        assert_eq!(
            stats.write_requests(user),
            0,
            "{user}: {:?}",
            stats.by_user[user]
        );
    }
    // The same drift, found by the deploying identity, is the same report.
    let (_, admin) = w.drift();
    assert_eq!(kinds(&admin), reports[0]);
}

#[test]
fn load_balancers_with_dns_names_only_from_deploy_to_drift() {
    let w = World::sandbox_with(|env| {
        sandbox::harness::api_config_hostnames(env, Duration::from_millis(300))
    });
    let first = w.deploy();
    assert_eq!(first["totals"]["hosts"]["updated"], 2, "{first}");
    let cfg_path = w.sb().host("zk-observer-1").deploy_dir.join("zoo.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(
        cfg.contains("server.1=zk0.zookeeper.lb.sandbox.test:2888:3888:participant\n"),
        "zoo.cfg names the load balancers: {cfg}"
    );
    // ZooKeeper resolved them: the observer really observes through the names.
    let srvr = four_letter_word("198.18.1.4", 2181, "srvr").unwrap();
    assert!(srvr.contains("Mode: observer"), "{srvr}");
    let (code, report) = w.drift();
    assert_eq!(code, 0, "{report}");

    // The cloud gives zk1's load balancer a new name that the observers' DNS does not know yet.
    w.client(async |c| {
        let svc: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(c, NS);
        let cloud = kube::api::PatchParams { field_manager: Some("cloud-controller".into()), ..Default::default() };
        let status = json!({"status": {"loadBalancer": {"ingress": [{"hostname": "zk1-new.zookeeper.lb.sandbox.test"}]}}});
        svc.patch_status("zk1", &cloud, &kube::api::Patch::Merge(&status)).await.unwrap();
    });
    let (code, report) = w.drift();
    assert_eq!(code, 2);
    let mismatch = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "address-mismatch" && f["object"] == "host/zk-observer-1")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        mismatch["detail"].as_str().unwrap().contains("server.2 at zk1.zookeeper.lb.sandbox.test, but Service zk1 has zk1-new.zookeeper.lb.sandbox.test"),
        "{mismatch}"
    );
    // A deploy refuses to write a zoo.cfg naming what the host cannot resolve: nothing changes.
    let started = w.started_at("zk-observer-1");
    let out = w.on_sandbox(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h1 = refused["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "zk-observer-1")
        .unwrap();
    assert_eq!(h1["result"], "refused", "{refused}");
    assert!(
        h1["detail"]
            .as_str()
            .unwrap()
            .contains("zk1-new.zookeeper.lb.sandbox.test (server.2) does not resolve on this host"),
        "{h1}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg_path).unwrap(),
        cfg,
        "zoo.cfg untouched"
    );
    assert_eq!(w.started_at("zk-observer-1"), started, "not restarted");
    assert_eq!(
        refused["monitored_observers"],
        json!(["zk-observer-1", "zk-observer-2"]),
        "the untouched observers still serve and stay scrape targets"
    );

    // A deployed zoo.cfg whose name does not resolve on the host is drift of its own.
    std::fs::write(
        &cfg_path,
        cfg.replace(
            "zk0.zookeeper.lb.sandbox.test",
            "zk0-gone.zookeeper.lb.sandbox.test",
        ),
    )
    .unwrap();
    let (code, report) = w.drift();
    assert_eq!(code, 2);
    let dns = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "host-dns" && f["object"] == "host/zk-observer-1")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        dns["detail"]
            .as_str()
            .unwrap()
            .contains("zk0-gone.zookeeper.lb.sandbox.test, which does not resolve on this host"),
        "{dns}"
    );
}

#[test]
fn the_drift_key_reads_every_host_and_cannot_change_one() {
    let w = World::sandbox();
    let r = w.deploy();
    let installed = json!({"zk-observer-1": "installed", "zk-observer-2": "installed"});
    assert_eq!(r["read_only_access"], installed);
    let r = w.deploy();
    assert_eq!(
        r["read_only_access"],
        json!({"zk-observer-1": "unchanged", "zk-observer-2": "unchanged"}),
        "kept without a write"
    );
    // Drift with the drift job's key: every host read, clean; then a hand edit found.
    let key = drift_key(w.dir());
    let key_arg = key.display().to_string();
    let drift = |w: &World| {
        let out = w.run(&[
            "drift",
            "--env",
            "sandbox",
            "--identity",
            &key_arg,
            "--output",
            "json",
        ]);
        (out.status.code(), common::json(&out))
    };
    let (code, report) = drift(&w);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["clean"], true);
    w.edit("zk-observer-2", "zoo.cfg", "syncLimit=10", "syncLimit=4");
    let (code, report) = drift(&w);
    assert_eq!(code, Some(2), "{report}");
    assert_eq!(report["findings"][0]["kind"], "host-files");
    assert_eq!(report["findings"][0]["object"], "host/zk-observer-2");

    // The same key cannot change a host: whatever it asks, the read-only command runs.
    let dir = w.sb().host("zk-observer-1").deploy_dir.clone();
    let target = dir.join("zoo.cfg");
    let before = std::fs::read_to_string(&target).unwrap();
    let attempt = format!("echo pwned > {0}; touch {0}.pwned", target.display());
    let tried = ssh_as(&w, &key, "198.18.1.4", &[], Some(&attempt));
    assert!(
        String::from_utf8_lossy(&tried.stdout).contains("=== file zoo.cfg"),
        "the forced command ran instead: {}",
        String::from_utf8_lossy(&tried.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        before,
        "zoo.cfg untouched"
    );
    assert!(!dir.join("zoo.cfg.pwned").exists());
    // Nor use the host as a tunnel (restrict: no forwarding).
    let tunnel = ssh_as(&w, &key, "198.18.1.4", &["-W", "198.18.0.11:2181"], None);
    assert!(!tunnel.status.success(), "forwarding through the drift key");
    // The deploy key keeps its shell: the drift key's line is the only restricted one.
    let out = w.sb().ssh("198.18.1.4").arg("echo ok").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

// --- retiring observers -------------------------------------------------------------------------

/// The sandbox environment with `zk-observer-2` moved to `fleet.retired` (its data as `data`).
fn with_observer_2_retired(w: &World, data: hosts::RetiredData) -> manifests::Environment {
    let mut env = w.sb().env.clone();
    let observer = env.fleet.observers.remove(1);
    env.fleet.retired = vec![hosts::Retired { observer, data }];
    assert!(!manifests::validate(&env).has_errors());
    env
}

/// `deploy --yes` of `env`, in this process (an environment the binary does not have): its exit
/// code and JSON report. `raise`, when given, gets a handle that interrupts the deploy as a
/// signal would.
fn deploy_env(
    w: &World,
    env: &manifests::Environment,
    dry_run: bool,
    raise: Option<std::sync::mpsc::Sender<xtask::signals::Raiser>>,
) -> (u8, serde_json::Value) {
    deploy_env_with(w, env, raise, |a| a.dry_run = dry_run)
}

/// [`deploy_env`], its arguments changed by `edit` first.
fn deploy_env_with(
    w: &World,
    env: &manifests::Environment,
    raise: Option<std::sync::mpsc::Sender<xtask::signals::Raiser>>,
    edit: impl FnOnce(&mut xtask::cli::DeployArgs),
) -> (u8, serde_json::Value) {
    use xtask::output::report::Report as _;
    let mut args = common::deploy_args(w, env);
    edit(&mut args);
    let report = xtask::cluster::block_on(async {
        let cluster = xtask::cluster::Cluster::connect(env, &args.cluster, args.timeout).await?;
        let interrupt = xtask::signals::Interrupt::detached();
        if let Some(tx) = raise {
            tx.send(interrupt.raiser()).unwrap();
        }
        let guard = xtask::lock::Guard {
            lock: None,
            interrupt: Some(&interrupt),
        };
        xtask::commands::deploy::deploy(&cluster, env, &args, xtask::cli::OutputFormat::Json, guard)
            .await
    });
    match report {
        Ok(report) => (report.exit_code(), report.json()),
        // An error (exit 1), as the binary prints it.
        Err(e) => (1, json!({ "error": format!("{e:#}") })),
    }
}

/// The loadBalancerSourceRanges of zk0's Service.
fn source_ranges(w: &World) -> Value {
    w.api.get("v1", "services", NS, "zk0").unwrap()["spec"]["loadBalancerSourceRanges"].clone()
}

/// `drift` of `env`, in this process: its findings as `kind object` lines.
fn drift_env(w: &World, env: &manifests::Environment) -> Vec<String> {
    drift_env_as(w, env, w.sb().ssh_identity())
}

/// [`drift_env`], logging in to the hosts with `identity` (the drift job's key, say).
fn drift_env_as(
    w: &World,
    env: &manifests::Environment,
    identity: &std::path::Path,
) -> Vec<String> {
    drift_report_as(w, env, identity)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["kind"].as_str().unwrap(),
                f["object"].as_str().unwrap()
            )
        })
        .collect()
}

/// `drift` of `env`, in this process: its JSON report.
fn drift_report(w: &World, env: &manifests::Environment) -> Value {
    drift_report_as(w, env, w.sb().ssh_identity())
}

fn drift_report_as(w: &World, env: &manifests::Environment, identity: &std::path::Path) -> Value {
    let ssh = xtask::cli::SshArgs {
        identity: Some(identity.to_path_buf()),
        connect_timeout: Duration::from_secs(10),
        parallel: 4,
    };
    let cluster_args = xtask::cli::ClusterArgs {
        kubeconfig: Some(w.dir().join("kubeconfig")),
        ..Default::default()
    };
    use xtask::output::report::Report as _;
    let report = xtask::cluster::block_on(async {
        let cluster =
            xtask::cluster::Cluster::connect(env, &cluster_args, Duration::from_secs(30)).await?;
        xtask::commands::drift::drift(&cluster, env, &ssh).await
    })
    .unwrap();
    report.json()
}

/// `zk_synced_observers` on the ensemble's leader.
fn synced_observers(w: &World) -> u32 {
    let ensemble = w.sb().ensemble.as_ref().unwrap();
    let leader = ensemble.leader().expect("a leader");
    sandbox::harness::four_letter_word(&leader.address, 2181, "mntr")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("zk_synced_observers\t"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The addresses the monitoring Endpoints list.
fn monitored(w: &World) -> Vec<String> {
    let e = w
        .api
        .get("v1", "endpoints", NS, "sandbox-zookeeper-external")
        .unwrap();
    e["subsets"][0]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect()
}

/// Polls while `observing` holds for zk-observer-1, in the background, until told to stop:
/// whether it ever stopped observing.
struct KeepsObserving {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    poller: std::thread::JoinHandle<bool>,
}

impl KeepsObserving {
    fn watch(address: &str) -> KeepsObserving {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (s, a) = (stop.clone(), address.to_string());
        let poller = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if !sandbox::harness::four_letter_word(&a, 2181, "srvr")
                    .is_ok_and(|r| r.contains("Mode: observer"))
                {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            true
        });
        KeepsObserving { stop, poller }
    }

    fn throughout(self) -> bool {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.poller.join().unwrap()
    }
}

/// Retiring one of two observers: drift says it still runs; the plan shows each step (exit 2);
/// deploy stops it once the other is confirmed healthy, removes the tool's files and (wiped) its
/// data, revokes the drift key, and only then drops it from monitoring. The leader counts one
/// observer less, the other observes throughout, and drift is clean.
#[test]
fn retiring_an_observer_stops_it_and_drops_it_from_monitoring_while_the_other_serves() {
    let w = World::sandbox();
    w.deploy();
    assert_eq!(synced_observers(&w), 2);
    let env = with_observer_2_retired(&w, hosts::RetiredData::Wipe);
    // Retiring the last observer is refused before anything changes.
    let mut none_left = env.clone();
    let last = none_left.fleet.observers.remove(0);
    none_left.fleet.retired.push(hosts::Retired {
        observer: last,
        data: hosts::RetiredData::Keep,
    });
    let writes = w.managed_writes();
    let (code, report) = deploy_env(&w, &none_left, false, None);
    assert_eq!(code, 1, "{report}");
    let err = report["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("would leave no observer in service") && err.contains("--force-retire"),
        "{report}"
    );
    assert_eq!(w.managed_writes(), writes, "nothing changed in the cluster");
    assert_eq!(synced_observers(&w), 2, "nothing changed on the hosts");

    let before = drift_env(&w, &env);
    assert!(
        before.contains(&"retired-running host/zk-observer-2".to_string()),
        "{before:?}"
    );

    let (code, plan) = deploy_env(&w, &env, true, None);
    assert_eq!(code, 2, "{plan}");
    let h = common::host(&plan, "zk-observer-2");
    assert_eq!(h["result"], "would-retire", "{h}");
    assert_eq!(
        h["detail"],
        "stop and remove its containers; revoke the drift key; remove zoo.cfg, docker-compose.yaml, quorum-keystore.p12, quorum-keystore.pass, quorum-truststore.p12, quorum-truststore.pass; wipe data, datalog"
    );

    // While zk-observer-1 does not observe (the load balancers drop its traffic), retiring
    // zk-observer-2 is refused: it would leave no observer serving.
    drop_traffic_from("198.18.1.4", true);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while common::mode(w.sb(), "zk-observer-1") == "observer" {
        assert!(
            std::time::Instant::now() < deadline,
            "zk-observer-1 still observes"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, report) = deploy_env(&w, &env, false, None);
    drop_traffic_from("198.18.1.4", false);
    assert_eq!(code, 1, "{report}");
    let refused = common::host(&report, "zk-observer-2");
    assert_eq!(refused["result"], "refused", "{report}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("zk-observer-1 in service is not healthy")
            && refused["detail"]
                .as_str()
                .unwrap()
                .contains("--force-retire"),
        "{refused}"
    );
    assert!(
        w.sb()
            .host("zk-observer-2")
            .container_id("zookeeper")
            .is_ok(),
        "left running"
    );
    assert_eq!(
        monitored(&w),
        ["198.18.1.4", "198.18.1.5"],
        "still monitored"
    );
    // And still let through the load balancers: not cut off before its retirement.
    assert_eq!(
        source_ranges(&w),
        json!(["198.18.1.4/32", "198.18.1.5/32"]),
        "its egress stays in the source ranges"
    );
    assert_eq!(
        common::mode(w.sb(), "zk-observer-2"),
        "observer",
        "the refused retirement left it serving"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while common::mode(w.sb(), "zk-observer-1") != "observer" {
        assert!(
            std::time::Instant::now() < deadline,
            "zk-observer-1 does not observe again"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let watch = KeepsObserving::watch("198.18.1.4");
    let (code, report) = deploy_env(&w, &env, false, None);
    assert!(
        watch.throughout(),
        "zk-observer-1 stopped observing during the retirement"
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        common::host(&report, "zk-observer-2")["result"],
        "retired",
        "{report}"
    );
    assert_eq!(report["monitored_observers"], json!(["zk-observer-1"]));
    assert_eq!(monitored(&w), ["198.18.1.4"]);
    assert_eq!(
        source_ranges(&w),
        json!(["198.18.1.4/32"]),
        "retired, its egress leaves the source ranges"
    );
    let host2 = w.sb().host("zk-observer-2");
    assert!(
        host2.container_id("zookeeper").is_err(),
        "its ZooKeeper still runs"
    );
    assert!(
        !host2.deploy_dir.exists(),
        "its deploy directory (data wiped) is gone; left: {:?}",
        std::fs::read_dir(&host2.deploy_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    let keys = std::fs::read_to_string(host2.home().join(".ssh/authorized_keys")).unwrap();
    assert!(!keys.contains("zk-observers-drift@"), "{keys}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while synced_observers(&w) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader still counts two observers"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(drift_env(&w, &env), Vec::<String>::new(), "drift is clean");
    // Also for the scheduled drift job, whose key the retirement revoked on that host.
    let key = drift_key(w.dir());
    assert_eq!(
        drift_env_as(&w, &env, &key),
        Vec::<String>::new(),
        "drift with the drift key is clean"
    );
    // And nothing to do the next time.
    let (code, report) = deploy_env(&w, &env, true, None);
    assert_eq!(code, 0, "{report}");
    // The retired host switched off: it is not let back into monitoring or the source ranges.
    w.sb().host("zk-observer-2").set_link(false).unwrap();
    let (code, report) = deploy_env(&w, &env, false, None);
    w.sb().host("zk-observer-2").set_link(true).unwrap();
    assert_eq!(code, 1, "unreachable: {report}");
    assert_eq!(monitored(&w), ["198.18.1.4"], "not monitored again");
    assert_eq!(
        source_ranges(&w),
        json!(["198.18.1.4/32"]),
        "not admitted again"
    );

    // An observer the inventory no longer lists on a host it manages (here: zk-observer-1's
    // deploy directory moved in the code, its old deployment still running) is reported.
    let mut moved = env.clone();
    moved.fleet.observers[0].deploy_dir =
        hosts::RemoteDir::new("/var/lib/zk-observers-sandbox/zk-observer-1/moved");
    let found = drift_env(&w, &moved);
    assert!(
        found.contains(&"unlisted-observer host/zk-observer-1".to_string()),
        "{found:?}"
    );
}

/// A retired host that cannot be reached is reported (and kept in monitoring: it may still run)
/// and retired by the next deploy that reaches it. A deploy interrupted while it retires leaves
/// the host retired whole, never half-removed; the next deploy finishes the job.
#[test]
fn an_unreachable_or_interrupted_retirement_is_finished_by_the_next_deploy() {
    let w = World::sandbox();
    w.deploy();
    let env = with_observer_2_retired(&w, hosts::RetiredData::Keep);
    w.sb().host("zk-observer-2").set_link(false).unwrap();
    let (code, report) = deploy_env(&w, &env, false, None);
    w.sb().host("zk-observer-2").set_link(true).unwrap();
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        common::host(&report, "zk-observer-2")["result"],
        "unreachable"
    );
    assert_eq!(
        monitored(&w),
        ["198.18.1.4", "198.18.1.5"],
        "still monitored"
    );
    let found = drift_env(&w, &env);
    assert!(
        found.contains(&"retired-running host/zk-observer-2".to_string()),
        "{found:?}"
    );

    // Interrupted while it retires (its ZooKeeper already stopped).
    let (tx, rx) = std::sync::mpsc::channel();
    let (code, report) = std::thread::scope(|s| {
        let deploying = s.spawn(|| deploy_env(&w, &env, false, Some(tx)));
        let raiser = rx.recv().unwrap();
        let host2 = w.sb().host("zk-observer-2");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while host2.container_id("zookeeper").is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the retirement never began"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        raiser.raise("SIGINT");
        deploying.join().unwrap()
    });
    assert_eq!(code, 130, "{report}");
    let host2 = w.sb().host("zk-observer-2");
    assert_eq!(
        common::host(&report, "zk-observer-2")["result"],
        "retired",
        "{report}"
    );
    assert!(
        !host2.deploy_dir.join("zoo.cfg").exists(),
        "not half-removed"
    );
    assert!(
        host2.deploy_dir.join("data").exists(),
        "its data kept, as the inventory says"
    );
    // The monitoring change was not made (the deploy stopped before it): the next deploy does it.
    assert_eq!(monitored(&w), ["198.18.1.4", "198.18.1.5"]);
    let (code, report) = deploy_env(&w, &env, false, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(monitored(&w), ["198.18.1.4"]);
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());
}

// --- paying only for what changed ------------------------------------------------------------

/// A service's container on a host: its id and when it was started.
fn container(w: &World, host: &str, service: &str) -> (String, String) {
    let h = w.sb().host(host);
    let id = h.container_id(service).unwrap();
    let started = h
        .docker(&["inspect", "-f", "{{.State.StartedAt}}", &id])
        .unwrap()
        .trim()
        .to_string();
    (id, started)
}

/// What `conf` says of one key on a host's running ZooKeeper.
fn running_value(w: &World, host: &str, key: &str) -> String {
    let address = w.sb().host(host).address.to_string();
    let conf = four_letter_word(&address, 2181, "conf").unwrap();
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in conf: {conf}"))
}

/// A new zoo.cfg alone is loaded by restarting ZooKeeper's container: the same container (not
/// re-created), the compose file untouched, the exporter left running, the running server on the
/// new value. A zoo.cfg that is as the code says but not loaded (edited, restarted, edited back)
/// is drift (`config-not-loaded`) and the next deploy restarts ZooKeeper for it.
#[test]
fn a_zoo_cfg_change_restarts_zookeeper_in_place_and_a_file_not_loaded_is_drift() {
    let w = World::sandbox();
    w.deploy();
    let hosts = ["zk-observer-1", "zk-observer-2"];
    let before: Vec<_> = hosts
        .iter()
        .map(|h| {
            (
                container(&w, h, "zookeeper"),
                container(&w, h, "exporter"),
                w.deployed(h, "docker-compose.yaml"),
            )
        })
        .collect();
    let mut env = w.sb().env.clone();
    env.fleet.zookeeper.sync_limit += 1;
    let want = env.fleet.zookeeper.sync_limit.to_string();
    let (code, report) = deploy_env(&w, &env, false, None);
    assert_eq!(code, 0, "{report}");
    for (h, (zk, exporter, compose)) in hosts.iter().zip(&before) {
        let r = common::host(&report, h);
        assert_eq!(r["result"], "updated", "{r}");
        assert_eq!(r["changed_files"], json!(["zoo.cfg"]), "{r}");
        let now = container(&w, h, "zookeeper");
        assert_eq!(now.0, zk.0, "{h}: ZooKeeper's container was re-created");
        assert_ne!(now.1, zk.1, "{h}: ZooKeeper was not restarted");
        assert_eq!(
            &container(&w, h, "exporter"),
            exporter,
            "{h}: exporter touched"
        );
        assert_eq!(&w.deployed(h, "docker-compose.yaml"), compose);
        assert_eq!(
            running_value(&w, h, "syncLimit"),
            want,
            "{h} runs the new zoo.cfg"
        );
    }
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());

    // Edited by hand and loaded, then the file put back as the code says, not loaded.
    let h = "zk-observer-1";
    w.edit(h, "zoo.cfg", &format!("syncLimit={want}"), "syncLimit=3");
    let (id, _) = container(&w, h, "zookeeper");
    w.sb().host(h).docker(&["restart", &id]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while common::mode(w.sb(), h) != "observer" {
        assert!(
            std::time::Instant::now() < deadline,
            "{h} does not observe again"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(running_value(&w, h, "syncLimit"), "3");
    w.edit(h, "zoo.cfg", "syncLimit=3", &format!("syncLimit={want}"));
    let found = drift_env(&w, &env);
    assert_eq!(found, ["config-not-loaded host/zk-observer-1"], "{found:?}");
    let (code, plan) = deploy_env(&w, &env, true, None);
    assert_eq!(code, 2, "{plan}");
    let detail = common::host(&plan, h)["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&format!(
            "zoo.cfg not loaded (syncLimit: running 3, zoo.cfg {want})"
        )),
        "{detail}"
    );
    let written = std::fs::metadata(w.sb().host(h).deploy_dir.join("zoo.cfg"))
        .unwrap()
        .modified()
        .unwrap();
    let (code, report) = deploy_env(&w, &env, false, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(common::host(&report, h)["restarted"], true, "{report}");
    assert_eq!(running_value(&w, h, "syncLimit"), want);
    let after = std::fs::metadata(w.sb().host(h).deploy_dir.join("zoo.cfg"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(after, written, "nothing needed writing");
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());

    // The ensemble changed under the code (someone scaled the StatefulSet, moved its image, or
    // turned reconfigEnabled on in the chart's values):
    // drift names the field to update, deploy refuses before changing anything; put back, clean.
    let patch = |body: Value| {
        w.client(async |c| {
            let api: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
                kube::Api::namespaced(c, NS);
            api.patch(
                "sandbox-zookeeper",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&body),
            )
            .await
            .unwrap();
        })
    };
    let ensemble = format!("ensemble-changed StatefulSet/{NS}/sandbox-zookeeper");
    for (changed, back) in [
        (
            json!({"spec": {"replicas": 5}}),
            json!({"spec": {"replicas": 3}}),
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [ensemble_container("zookeeper:3.9.3", &[])]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [ensemble_container(sandbox::harness::ENSEMBLE_IMAGE, &[])]}}}}),
        ),
        // The chart's values turn reconfigEnabled on (the official image's ZOO_CFG_EXTRA).
        (
            json!({"spec": {"template": {"spec": {"containers": [ensemble_container(sandbox::harness::ENSEMBLE_IMAGE, &[("ZOO_CFG_EXTRA", "reconfigEnabled=true")])]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [ensemble_container(sandbox::harness::ENSEMBLE_IMAGE, &[])]}}}}),
        ),
    ] {
        patch(changed.clone());
        let found = drift_env(&w, &env);
        assert_eq!(found, std::slice::from_ref(&ensemble), "{changed}");
        let writes = w.managed_writes();
        let (code, report) = deploy_env(&w, &env, false, None);
        assert_eq!(code, 1, "{report}");
        let err = report["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("differs from environment") && err.contains("set ensemble."),
            "{err}"
        );
        assert_eq!(w.managed_writes(), writes, "nothing changed");
        patch(back);
        assert_eq!(
            drift_env(&w, &env),
            Vec::<String>::new(),
            "{changed} put back"
        );
    }
}

// --- the ensemble as it really behaves -----------------------------------------------------------

/// What `conf` says of the observer's id.
fn running_id(w: &World, host: &str) -> String {
    running_value(w, host, "serverId")
}

/// Polls until every observer observes (or panics after `within`); how long it took.
fn until_every_observer_observes(w: &World, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let modes: Vec<String> = ["zk-observer-1", "zk-observer-2"]
            .iter()
            .map(|h| common::mode(w.sb(), h))
            .collect();
        if modes.iter().all(|m| m == "observer") {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the observers do not observe within {within:?}: {modes:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Renumbering an observer in the inventory: its data/myid still names the old id, which
/// ZooKeeper would take and stop on ("My id N not in the peer list"). drift says so, the plan
/// sets the data aside (exit 2), deploy does it behind the gate, and the observer serves under
/// its new id. When the host fails the gate, its data is put back with its files and it serves
/// under the old id again.
#[test]
fn renumbering_an_observer_resets_its_data_behind_the_gate_and_a_failure_puts_it_back() {
    let w = World::sandbox();
    w.deploy();
    let h = "zk-observer-1";
    assert_eq!(running_id(&w, h), "104");
    let mut env = w.sb().env.clone();
    env.fleet.observers[0].myid = hosts::ServerId(106);
    let found = drift_env(&w, &env);
    assert!(found.contains(&format!("stale-myid host/{h}")), "{found:?}");
    let (code, plan) = deploy_env(&w, &env, true, None);
    assert_eq!(code, 2, "{plan}");
    let detail = common::host(&plan, h)["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("data reset: data/myid says 104, the inventory 106"),
        "{detail}"
    );

    // The load balancers drop its traffic while the new zoo.cfg is on the host: the gate fails,
    // and everything is put back (the old zoo.cfg back on disk lifts the fault, so the rollback's
    // own gate can pass).
    let dir = w.sb().host(h).deploy_dir.clone();
    let cfg = dir.join("zoo.cfg");
    let fault = std::thread::spawn(move || {
        let says = |id: &str| {
            std::fs::read_to_string(&cfg).is_ok_and(|t| t.contains(&format!("(myid {id})")))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut blocked = false;
        while std::time::Instant::now() < deadline {
            if !blocked && says("106") {
                drop_traffic_from("198.18.1.4", true);
                blocked = true;
            } else if blocked && says("104") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if blocked {
            drop_traffic_from("198.18.1.4", false);
        }
        blocked
    });
    let (code, report) = deploy_env_with(&w, &env, None, |a| {
        a.rollout.health_timeout = Duration::from_secs(20)
    });
    assert!(fault.join().unwrap(), "the fault was applied");
    assert_eq!(code, 1, "{report}");
    let r = common::host(&report, h);
    assert_eq!(r["result"], "rolled-back", "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("ZooKeeper's log ends with"),
        "the report says what ZooKeeper said: {r}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("data/myid"))
            .unwrap()
            .trim(),
        "104",
        "its data is back"
    );
    assert!(!dir.join(".data.reset").exists());
    until_every_observer_observes(&w, Duration::from_secs(60));
    assert_eq!(running_id(&w, h), "104", "serving under its old id again");

    // Reachable: renumbered, data reset, observing under the new id, nothing set aside left.
    let (code, report) = deploy_env(&w, &env, false, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(running_id(&w, h), "106");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/myid"))
            .unwrap()
            .trim(),
        "106"
    );
    assert!(!dir.join(".data.reset").exists() && !dir.join(".datalog.reset").exists());
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());
}

/// The leader goes away while the observers serve: each finds the new leader through that
/// server's load balancer, within a bound this test prints, and drift stays clean. Then the
/// ensemble is rebuilt from scratch while they cannot reach it (its epoch starts over below what
/// they accepted):
/// they cannot observe again by themselves, drift says `epoch-behind` and names the repair, and
/// `deploy --reset-data` brings both back.
#[test]
fn observers_follow_a_new_leader_and_a_rebuilt_ensemble_is_repaired_with_reset_data() {
    let w = World::sandbox();
    w.deploy();
    let env = w.sb().env.clone();
    let ensemble = w.sb().ensemble.as_ref().unwrap();
    // Two leader changes (the second also moves the epoch past what a rebuilt ensemble starts
    // at), each measured.
    for round in 1..=2 {
        let leader = ensemble.leader().expect("a leader");
        let old = leader.id;
        leader.stop();
        let took = until_every_observer_observes(&w, Duration::from_secs(90));
        let new = ensemble.leader().expect("a new leader");
        assert_ne!(new.id, old);
        eprintln!(
            "leader change {round}: server {old} stopped, server {} leads; both observers observed again after {:.1} s",
            new.id,
            took.as_secs_f64()
        );
        ensemble
            .servers
            .iter()
            .find(|s| s.id == old)
            .unwrap()
            .start()
            .unwrap();
        ensemble.wait_for_quorum(Duration::from_secs(60)).unwrap();
        until_every_observer_observes(&w, Duration::from_secs(60));
        assert_eq!(
            drift_env(&w, &env),
            Vec::<String>::new(),
            "drift clean after round {round}"
        );
    }

    // The ensemble is rebuilt while the observers cannot reach it: the new ensemble settles its
    // epoch without them (an observer that connects while a new leader still gathers epochs
    // raises the leader's to its own, and then it just syncs: seen when they stay connected).
    for address in ["198.18.1.4", "198.18.1.5"] {
        drop_traffic_from(address, true);
    }
    let rebuilt = ensemble.rebuild(Duration::from_secs(60));
    for address in ["198.18.1.4", "198.18.1.5"] {
        drop_traffic_from(address, false);
    }
    rebuilt.unwrap();
    // They reach the new leader, are refused for its lower epoch, and say so in their logs.
    let wanted = [
        "epoch-behind host/zk-observer-1",
        "epoch-behind host/zk-observer-2",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let found = drift_env(&w, &env);
        if wanted.iter().all(|k| found.contains(&k.to_string())) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        ["zk-observer-1", "zk-observer-2"]
            .iter()
            .all(|h| common::mode(w.sb(), h) != "observer"),
        "they cannot observe by themselves"
    );
    let (code, report) = deploy_env_with(&w, &env, None, |a| {
        a.reset_data = vec!["zk-observer-1".into(), "zk-observer-2".into()]
    });
    assert_eq!(code, 0, "{report}");
    until_every_observer_observes(&w, Duration::from_secs(60));
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());
}

// --- ZooKeeper's own metrics provider -----------------------------------------------------------

/// `GET /metrics` on `address:port`, from this machine (the observer hosts' published ports).
fn scrape(address: &str, port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((address, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Switching the sandbox from the exporter sidecar to ZooKeeper's own Prometheus provider
/// (`Metrics::Builtin`, served in the sandbox image by the stand-in of `sandbox/java`): the deploy
/// passes the gate on the provider's own names, the exporter container goes, each observer serves
/// `znode_count` (bare, no `zk_`) on port 7000, monitoring points at that port, and drift is clean.
#[test]
fn the_builtin_metrics_provider_deploys_end_to_end_and_passes_the_gate() {
    let w = World::sandbox();
    w.deploy();
    let mut env = w.sb().env.clone();
    env.fleet.metrics = hosts::Metrics::Builtin {
        port: hosts::port!(7000),
    };
    assert!(!manifests::validate(&env).has_errors());
    let (code, report) = deploy_env(&w, &env, false, None);
    assert_eq!(code, 0, "{report:#}");
    let text = report.to_string();
    assert!(
        text.contains("observing - broadcast, metrics provider serving"),
        "the gate read the provider: {report:#}"
    );
    for o in &env.fleet.observers {
        let address = o.address.to_string();
        let body = scrape(&address, 7000);
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        let znodes = body
            .lines()
            .find_map(|l| l.strip_prefix("znode_count "))
            .unwrap_or_else(|| panic!("no znode_count on {address}:\n{body}"));
        assert!(znodes.trim().parse::<f64>().unwrap() >= 1.0, "{znodes}");
        assert!(
            !body.lines().any(|l| l.starts_with("zk_")),
            "bare names:\n{body}"
        );
        let h = w.sb().host(&o.name);
        assert!(
            h.container_id("exporter").is_err(),
            "the exporter sidecar was removed on {}",
            o.name
        );
        assert!(
            std::net::TcpStream::connect((address.as_str(), 9141)).is_err(),
            "nothing serves the exporter's port on {address}"
        );
    }
    let e = w
        .api
        .get("v1", "endpoints", NS, "sandbox-zookeeper-external")
        .unwrap();
    assert_eq!(e["subsets"][0]["ports"][0]["port"], 7000, "{e:#}");
    assert_eq!(monitored(&w).len(), 2, "{e:#}");
    assert_eq!(drift_env(&w, &env), Vec::<String>::new());
}

/// Issue 20: a running plaintext ensemble moves to quorum TLS by the tool's ensemble artifact
/// (upstream's three rolling restarts through `portUnification`), the observers moved by a deploy
/// between the second and the last, and they keep serving throughout within the budget:
/// - while a follower restarts, both observers serve at every sample;
/// - after the leader restarts (an election: every observer resyncs), both serve again within
///   the gate's timeout;
/// - while the deploy moves the observers, at most `--max-unavailable` (1) is down at a time;
/// - the quorum takes a write after every restart.
///
/// Drift follows it: the election ports answer plaintext, then TLS; with the code at TLS before
/// the ensemble is, `ensemble-not-tls` for each participant; at the end clean.
#[test]
fn a_plaintext_ensemble_moves_to_tls_by_the_artifact_while_the_observers_keep_serving() {
    const OBS1: &str = "zk-observer-1";
    const OBS2: &str = "zk-observer-2";
    use manifests::ensemble_tls::Step;
    use sandbox::harness::artifact_keys;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let w = World::plaintext_sandbox();
    let sb = w.sb();
    let tls_env = sb.env.clone();
    let mut plain = sb.env.clone();
    plain.fleet.quorum = hosts::QuorumSecurity::Plaintext;
    let (code, report) = deploy_env(&w, &plain, false, None);
    assert_eq!(code, 0, "{report}");
    let answers = |r: &Value| -> Vec<String> {
        r["ensemble_tls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["participant"].as_str().unwrap(),
                    p["answer"].as_str().unwrap()
                )
            })
            .collect()
    };
    let all =
        |answer: &str| -> Vec<String> { (1..=3).map(|i| format!("server.{i} {answer}")).collect() };
    let before = drift_report(&w, &plain);
    assert_eq!(before["status"], "clean", "{before}");
    assert_eq!(answers(&before), all("plaintext"), "{before}");
    // The code at TLS before the ensemble is: each participant named.
    let early = drift_report(&w, &tls_env);
    let not_tls: Vec<&Value> = early["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "ensemble-not-tls")
        .collect();
    assert_eq!(not_tls.len(), 3, "{early}");
    assert!(
        not_tls[0]["detail"]
            .as_str()
            .unwrap()
            .contains("server.1 at 198.18.0.11:3888"),
        "{early}"
    );

    // Both observers sampled every 100 ms through everything below.
    /// (phase, whether each observer serves), every 100 ms.
    type Samples = Vec<(String, [bool; 2])>;
    let serving: Arc<Mutex<Samples>> = Arc::default();
    let phase = Arc::new(Mutex::new(String::from("start")));
    let done = Arc::new(AtomicBool::new(false));
    let addresses: Vec<String> = [OBS1, OBS2]
        .iter()
        .map(|h| sb.host(h).address.to_string())
        .collect();
    let sampler = {
        let (serving, phase, done) = (serving.clone(), phase.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let up = |a: &str| {
                    four_letter_word(a, 2181, "srvr").is_ok_and(|s| s.contains("Mode: observer"))
                };
                let sample = [up(&addresses[0]), up(&addresses[1])];
                let label = phase.lock().unwrap().clone();
                serving.lock().unwrap().push((label, sample));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let set_phase = |p: String| *phase.lock().unwrap() = p;
    let both_serve_within = |limit: Duration| {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if common::mode(sb, OBS1) == "observer" && common::mode(sb, OBS2) == "observer" {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let ensemble = sb.ensemble.as_ref().unwrap();
    let leader_before = ensemble.leader().unwrap().id;
    let roll = |step: Step| {
        let leader = ensemble.leader().unwrap().id;
        let mut n = 0;
        set_phase(format!("{step:?} follower"));
        ensemble
            .roll(&artifact_keys(&tls_env, step), Duration::from_secs(90), |id| {
                n += 1;
                let out = sandbox::harness::Ensemble::cli(
                    &format!("{}:2181", ensemble.servers[0].address),
                    &["create", &format!("/moved-{step:?}-{n}"), "x"],
                );
                assert!(out.unwrap().contains("Created"), "a write after server {id}");
                if id == leader {
                    assert!(
                        both_serve_within(Duration::from_secs(60)),
                        "the observers did not serve again after the leader (server {id}) restarted at {step:?}"
                    );
                }
                // The next restart is a follower's until the leader's, last.
                set_phase(format!("{step:?} after server {id}"));
                if n < 2 {
                    set_phase(format!("{step:?} follower"));
                }
            })
            .unwrap();
    };
    roll(Step::PortUnification);
    let unified = drift_report(&w, &plain);
    assert_eq!(unified["status"], "clean", "{unified}");
    assert_eq!(answers(&unified), all("tls"), "{unified}");
    let cert = &unified["ensemble_tls"][0]["certificate"];
    assert!(
        cert["subject"]
            .as_str()
            .unwrap()
            .contains("sandbox-zookeeper-participants"),
        "the artifact's shared store: {unified}"
    );
    roll(Step::Tls);
    set_phase("observers".into());
    let (code, moved) = deploy_env(&w, &tls_env, false, None);
    assert_eq!(code, 0, "{moved}");
    assert_eq!(moved["totals"]["hosts"]["updated"], 2, "{moved}");
    set_phase("after observers".into());
    roll(Step::TlsOnly);
    assert!(both_serve_within(Duration::from_secs(60)));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    let samples = serving.lock().unwrap().clone();
    let during = |label: &str| -> Vec<[bool; 2]> {
        samples
            .iter()
            .filter(|(p, _)| p == label)
            .map(|(_, s)| *s)
            .collect()
    };
    for step in [Step::PortUnification, Step::Tls, Step::TlsOnly] {
        let label = format!("{step:?} follower");
        assert!(
            !during(&label).is_empty(),
            "samples while followers restarted at {step:?}"
        );
        assert!(
            during(&label).iter().all(|s| s == &[true, true]),
            "an observer stopped serving while a follower restarted at {step:?}"
        );
    }
    let observers = during("observers");
    assert!(
        observers.iter().any(|s| s != &[true, true]),
        "the deploy restarted the observers"
    );
    assert!(
        observers.iter().all(|s| s.iter().any(|up| *up)),
        "both observers were down at once while the deploy moved them (max-unavailable 1)"
    );
    let after = drift_report(&w, &tls_env);
    assert_eq!(after["status"], "clean", "{after}");
    assert_eq!(answers(&after), all("tls"), "{after}");
    assert!(w.deployed(OBS1, "zoo.cfg").contains("sslQuorum=true"));
    for s in &ensemble.servers {
        let cfg = std::fs::read_to_string(s.dir.join("zoo.cfg")).unwrap();
        assert!(
            cfg.contains("sslQuorum=true\nportUnification=false\n"),
            "{cfg}"
        );
    }
    eprintln!(
        "moved to TLS: leader before {leader_before}, now {:?}; {} samples",
        ensemble.leader().map(|s| s.id),
        samples.len()
    );
}
