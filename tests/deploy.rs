//! `cargo xtask deploy`, `drift` and `demo` end to end: the Kubernetes API test server plus the
//! sandbox's real observer hosts and ZooKeeper ensemble. Needs root.

mod common;

use std::time::Duration;

use common::{drift_key, ssh_as, wait_for, World, NS};
use sandbox::harness::four_letter_word;
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

    let out = w.on_sandbox(&["drift"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("skipped: a deploy by alice@laptop pid 42 holds the lock"));

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
fn deploy_refuses_without_a_terminal_or_yes() {
    let w = World::sandbox();
    let out = w.on_sandbox(&["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no terminal to ask on: pass --yes")
    );
    assert_eq!(
        w.api.stats().requests,
        0,
        "refused before contacting anything"
    );
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
