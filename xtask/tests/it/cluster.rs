//! The cluster side (`cargo xtask diff` and `apply`) driven through the real binary against the
//! Kubernetes API test server (sandbox/src/apiserver), over real HTTP with the real kube client.

use std::time::Duration;

use crate::common::{
    self, apply_as_the_tool, per_pod_service, roles, stderr, stdout, wait_for, World, CONTEXT, NS,
};
use sandbox::{ApiServer, Config, Fault, LoadBalancerMode};
use serde_json::{json, Value};
/// Objects the sandbox environment desires: 3 per-pod Services, the monitoring Service, Endpoints,
/// EndpointSlice and ServiceMonitor.
const DESIRED: usize = 7;

/// The sandbox environment's cluster as the test server makes it: controllers on, the
/// ensemble's pods present, load balancers at the recorded addresses after 300 ms.
fn sandbox_config() -> Config {
    let mut config = sandbox::harness::api_config(
        &manifests::environments::sandbox::environment(),
        Duration::from_millis(300),
    );
    config.namespaces.push("default".into());
    config
}

fn services(client: kube::Client) -> kube::Api<k8s_openapi::api::core::v1::Service> {
    kube::Api::namespaced(client, NS)
}

/// `diff --summary-file` appends the plan as markdown (what a pull-request job writes to
/// `$GITHUB_STEP_SUMMARY`): the counts, a row per object that would change, each diff folded
/// under its name; and says plainly when merging would change nothing.
#[test]
fn diff_appends_its_plan_as_markdown_for_a_pull_request() {
    let h = World::cluster(sandbox_config());
    let summary = h.dir().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = h.run(&[
        "diff",
        "--env",
        "sandbox",
        "--summary-file",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### zk-observers: what merging would change in `sandbox`"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "**{DESIRED} to create, 0 to update, 0 unchanged, 0 to prune, 0 conflict(s)**"
        )),
        "{md}"
    );
    assert!(
        md.contains("| `Service/zookeeper/zk0` | create | 0 |"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary><code>Service/zookeeper/zk0</code></summary>"),
        "{md}"
    );
    assert!(md.contains("```diff\n"), "{md}");
    assert_eq!(h.api.stats().writes, 0, "diff writes nothing");

    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(&summary, "").unwrap();
    let out = h.run(&[
        "diff",
        "--env",
        "sandbox",
        "--summary-file",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("merging changes nothing"), "{md}");
    assert!(!md.contains("| object |"), "{md}");
}

#[test]
fn diff_on_an_empty_namespace_lists_every_create_and_exits_2() {
    let h = World::cluster(sandbox_config());
    let ensemble_objects = h.api.object_count();
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    for object in [
        "Service/zookeeper/zk0",
        "Service/zookeeper/zk1",
        "Service/zookeeper/zk2",
        "Service/zookeeper/sandbox-zookeeper-external",
        "Endpoints/zookeeper/sandbox-zookeeper-external",
        "EndpointSlice/zookeeper/sandbox-zookeeper-external-ipv4",
        "ServiceMonitor/zookeeper/sandbox-zookeeper-external",
    ] {
        assert!(
            text.contains(&format!("+ create {object}\n")),
            "{object} missing from:\n{text}"
        );
    }
    assert!(
        text.contains("+  type: LoadBalancer"),
        "the diff shows the object: {text}"
    );
    assert!(
        text.contains(&format!(
            "changes: {DESIRED} to create, 0 to update, 0 unchanged, 0 to prune, 0 conflict(s)"
        )),
        "{text}"
    );
    assert_eq!(h.api.stats().writes, 0, "diff writes nothing");
    assert_eq!(
        h.api.object_count(),
        ensemble_objects,
        "nothing but the ensemble's own objects (StatefulSet, pods)"
    );
}

#[test]
fn apply_then_diff_is_in_sync_and_a_second_apply_writes_nothing() {
    let h = World::cluster(sandbox_config());
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("  created ").count(), DESIRED, "{text}");
    assert!(
        text.contains(&format!(
            "applied sandbox: {DESIRED} created, 0 configured, 0 unchanged, 0 pruned"
        )),
        "{text}"
    );
    for (svc, ip) in [
        ("zk0", "198.18.0.11"),
        ("zk1", "198.18.0.12"),
        ("zk2", "198.18.0.13"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(svc) && l.contains(ip) && l.contains("= recorded")),
            "{svc} {ip}: {text}"
        );
    }
    assert!(
        stderr(&out).contains("load-balancer addresses: 3/3 ready"),
        "progress is shown"
    );
    let writes = h.managed_writes();
    assert_eq!(writes, DESIRED as u64);
    // The rest: the deploy lock, which apply takes like deploy and push (created, then deleted).
    assert_eq!(
        h.api.stats().writes - writes,
        2,
        "the Lease taken and released"
    );

    // Server-side defaults (clusterIP, sessionAffinity, nodePorts, ...) and the status written by
    // the load-balancer controller are not reported as changes.
    let zk0 = h.service("zk0").unwrap();
    assert!(
        zk0["spec"]["clusterIP"].is_string() && zk0["spec"]["ports"][0]["nodePort"].is_number(),
        "{zk0}"
    );
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!(
        "in sync: 0 to create, 0 to update, {DESIRED} unchanged, 0 to prune"
    )));
    assert!(!stdout(&out).contains("@@"), "no diff is printed");

    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(&format!("0 created, 0 configured, {DESIRED} unchanged")),
        "{}",
        stdout(&out)
    );
    assert_eq!(h.managed_writes(), writes, "a second apply writes nothing");
}

#[test]
fn a_human_edit_of_a_managed_field_shows_in_diff_and_is_only_overwritten_with_force() {
    let h = World::cluster(sandbox_config());
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    // `kubectl edit` widens the source ranges of zk0.
    h.client(async |client| {
        let patch = json!({"spec": {"loadBalancerSourceRanges": ["0.0.0.0/0"]}});
        services(client)
            .patch(
                "zk0",
                &kube::api::PatchParams {
                    field_manager: Some("kubectl-edit".into()),
                    ..Default::default()
                },
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
    });
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("~ update Service/zookeeper/zk0\n"), "{text}");
    assert!(text.contains("-  - 0.0.0.0/0\n"), "{text}");
    assert!(text.contains("+  - 198.18.1.4/32\n"), "{text}");
    assert!(text.contains("! conflict Service/zookeeper/zk0: .spec.loadBalancerSourceRanges is owned by \"kubectl-edit\""), "{text}");

    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("nothing was applied"), "{err}");
    assert!(err.contains("Service/zookeeper/zk0: .spec.loadBalancerSourceRanges is owned by field manager \"kubectl-edit\""), "{err}");
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(
        h.service("zk0").unwrap()["spec"]["loadBalancerSourceRanges"],
        json!(["0.0.0.0/0"]),
        "not overwritten"
    );

    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--timeout",
        "20s",
        "--force-conflicts",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("configured Service/zookeeper/zk0"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        h.service("zk0").unwrap()["spec"]["loadBalancerSourceRanges"],
        json!(["198.18.1.4/32", "198.18.1.5/32"])
    );
    assert_eq!(h.run(&["diff", "--env", "sandbox"]).status.code(), Some(0));
}

/// `kubectl edit` adding a key to a per-pod Service's selector: a real server records the selector
/// as one field (`+mapType=atomic` on `ServiceSpec.Selector`), so the editor takes the whole
/// selector. Both planners report a conflict on `.spec.selector` (not on one key), apply refuses,
/// and a forced apply replaces the selector whole: the added key goes.
#[test]
fn a_selector_key_added_by_hand_is_a_conflict_and_force_replaces_the_whole_selector() {
    let h = World::cluster(sandbox_config());
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    let desired = h.service("zk2").unwrap()["spec"]["selector"].clone();
    h.client(async |client| {
        let patch = json!({"spec": {"selector": {"tier": "zookeeper"}}});
        services(client)
            .patch(
                "zk2",
                &kube::api::PatchParams {
                    field_manager: Some("kubectl-edit".into()),
                    ..Default::default()
                },
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
    });
    let edited = h.service("zk2").unwrap();
    let mf = edited["metadata"]["managedFields"].as_array().unwrap();
    let edit = mf.iter().find(|e| e["manager"] == "kubectl-edit").unwrap();
    assert_eq!(edit["fieldsV1"], json!({"f:spec": {"f:selector": {}}}));
    for read_only in [false, true] {
        let mut args = vec!["diff", "--env", "sandbox"];
        if read_only {
            args.push("--read-only");
        }
        let out = h.run(&args);
        assert_eq!(out.status.code(), Some(2));
        let text = stdout(&out);
        assert!(
            text.contains(
                "! conflict Service/zookeeper/zk2: .spec.selector is owned by \"kubectl-edit\""
            ),
            "{text}"
        );
        assert!(
            text.contains("-    tier: zookeeper\n"),
            "the added key goes: {text}"
        );
    }
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "Service/zookeeper/zk2: .spec.selector is owned by field manager \"kubectl-edit\""
        ),
        "{}",
        stderr(&out)
    );
    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--timeout",
        "20s",
        "--force-conflicts",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let zk2 = h.service("zk2").unwrap();
    assert_eq!(
        zk2["spec"]["selector"], desired,
        "replaced whole, not merged key by key"
    );
    assert!(zk2["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["manager"] != "kubectl-edit"));
    assert_eq!(
        h.run(&["diff", "--env", "sandbox", "--read-only"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(h.run(&["diff", "--env", "sandbox"]).status.code(), Some(0));
}

/// Observers whose addresses sort one way as numbers and the other as strings (198.18.1.9 and
/// 198.18.1.10, like production's 10.104.42.205 and 10.104.170.174): the Endpoints are stored as
/// written (a v1.20+ API server no longer reorders them: kubernetes/kubernetes#94112 emptied
/// `endpointsStrategy.Canonicalize`), and the read-only planner (drift) and the server's dry run
/// (diff) agree that everything is in sync.
#[test]
fn observers_whose_addresses_sort_differently_as_strings_stay_in_sync() {
    use xtask::cluster::plan::{self, Action, Planner};
    let mut env = manifests::environments::sandbox::environment();
    env.fleet.observers[0].scrape = Some("198.18.1.9".parse().unwrap());
    env.fleet.observers[1].scrape = Some("198.18.1.10".parse().unwrap());
    assert!(!manifests::validate(&env).has_errors());
    let h = World::cluster(sandbox_config());
    let args = xtask::cli::ClusterArgs {
        kubeconfig: Some(h.dir().join("kubeconfig")),
        context: None,
        allow_other_context: false,
    };
    let objects = manifests::desired_objects(&env);
    xtask::cluster::block_on(async {
        let cluster =
            xtask::cluster::Cluster::connect(&env, &args, Duration::from_secs(20)).await?;
        for o in &objects {
            assert!(matches!(
                cluster.apply(o, false, false).await?,
                xtask::cluster::Applied::Ok(_)
            ));
        }
        let stored = h
            .api
            .get("v1", "endpoints", NS, "sandbox-zookeeper-external")
            .unwrap();
        let ips: Vec<&str> = stored["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ip"].as_str().unwrap())
            .collect();
        assert_eq!(ips, ["198.18.1.9", "198.18.1.10"], "stored as written");
        // The cloud's controller adds its finalizer to each load-balancer Service on its own
        // time, as on a real cluster: plan once it has (a plan made meanwhile shows that write).
        for name in ["zk0", "zk1", "zk2"] {
            wait_for(&format!("the cloud's finalizer on {name}"), || {
                h.service(name)
                    .is_some_and(|s| s["metadata"]["finalizers"].is_array())
            });
        }
        for planner in [Planner::Read, Planner::DryRun] {
            let p = plan::plan(&cluster, &env, &objects, planner).await?;
            assert!(
                p.changes.iter().all(|c| c.action == Action::Unchanged),
                "{planner:?}: {:?}",
                p.changes
                    .iter()
                    .map(|c| (&c.object, c.action, &c.diff))
                    .collect::<Vec<_>>()
            );
        }
        anyhow::Ok(())
    })
    .unwrap();
}

#[test]
fn a_field_applied_by_another_manager_is_a_conflict_not_an_overwrite() {
    let h = World::cluster(sandbox_config());
    // helm already owns a Service zk1 that selects another pod.
    h.client(async |client| {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk1", "namespace": NS},
            "spec": {"type": "LoadBalancer", "selector": {"statefulset.kubernetes.io/pod-name": "other-0"},
                     "ports": [{"name": "tcp-quorum", "port": 2888}]}
        });
        services(client).patch("zk1", &kube::api::PatchParams::apply("helm"), &kube::api::Patch::Apply(&svc)).await.unwrap();
    });
    let before = h.service("zk1").unwrap();
    let writes = h.managed_writes();
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("Service/zookeeper/zk1: .spec.selector is owned by field manager \"helm\""),
        "{err}"
    );
    // (Its resourceVersion moves: the cloud's controller writes its finalizer and address.)
    let after = h.service("zk1").unwrap();
    assert_eq!(before["spec"], after["spec"], "zk1 untouched");
    assert_eq!(h.managed_writes(), writes, "nothing at all was applied");
}

#[test]
fn prune_deletes_only_objects_with_our_labels_for_this_environment() {
    let h = World::cluster(sandbox_config());
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--no-wait"])
            .status
            .code(),
        Some(0)
    );
    let svc = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS, "labels": labels},
               "spec": {"ports": [{"port": 80}]}})
    };
    let ours = json!({"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "sandbox"});
    h.api
        .insert(svc("zk9", ours), "zk-observers-xtask")
        .unwrap();
    h.api
        .insert(svc("other-env", json!({"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "staging"})), "x")
        .unwrap();
    h.api.insert(svc("helm-owned", json!({"app.kubernetes.io/managed-by": "Helm", "zk-observers.dev/environment": "sandbox"})), "helm").unwrap();
    h.api
        .insert(svc("unlabelled", json!({})), "kubectl")
        .unwrap();

    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("- prune Service/zookeeper/zk9 (no longer desired"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("1 to prune"));

    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--no-wait"]);
    assert!(
        stdout(&out).contains("kept       Service/zookeeper/zk9"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("rerun with --prune"));
    assert!(h.service("zk9").is_some(), "not pruned without --prune");

    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--no-wait", "--prune"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("pruned     Service/zookeeper/zk9"),
        "{}",
        stdout(&out)
    );
    assert!(h.service("zk9").is_none());
    for kept in [
        "other-env",
        "helm-owned",
        "unlabelled",
        "zk0",
        "zk1",
        "zk2",
        "sandbox-zookeeper-external",
    ] {
        assert!(h.service(kept).is_some(), "{kept} must survive the prune");
    }
}

#[test]
fn the_address_wait_times_out_with_a_clear_message() {
    let h = World::cluster(Config {
        load_balancer: LoadBalancerMode::Never,
        ..sandbox_config()
    });
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("load-balancer addresses: 0/3 ready, waiting for zk0, zk1, zk2"),
        "{err}"
    );
    assert!(err.contains("timed out after 2s waiting for the load-balancer address of Service(s) zk0, zk1, zk2 in namespace zookeeper"), "{err}");
}

#[test]
fn live_addresses_that_differ_from_the_recorded_ones_are_an_error_unless_accepted() {
    let mut config = sandbox_config();
    config
        .lb_addresses
        .insert(format!("{NS}/zk1"), "198.18.0.99".into());
    let h = World::cluster(config);
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("zk1: recorded 198.18.0.12, live 198.18.0.99"),
        "{err}"
    );
    assert!(
        err.contains("would point the observers at the wrong servers"),
        "{err}"
    );
    assert!(
        err.contains("(1, ServerAddress::Ip(v4(198, 18, 0, 99)))"),
        "{err}"
    );
    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--timeout",
        "20s",
        "--accept-live-addresses",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("warning: the load balancers' addresses differ"));
}

#[test]
fn an_unreachable_api_server_is_a_clear_error() {
    // The kubeconfig points at an API server that has gone away.
    let h = World::cluster(sandbox_config());
    let gone = ApiServer::start(sandbox_config()).unwrap();
    let url = gone.url();
    std::fs::write(h.dir().join("kubeconfig"), gone.kubeconfig(CONTEXT)).unwrap();
    gone.stop();
    let started = std::time::Instant::now();
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the Kubernetes API at {url}")),
        "{err}"
    );
    assert_eq!(
        err.lines().last().unwrap(),
        "  hint: check the network path to the API server and that the context is the one meant: \
         `kubectl --context zk-observers-sandbox get --raw /readyz` from this machine",
        "{err}"
    );
    // Said as it happened: how often and for how long it was tried.
    assert!(
        err.contains("(context `zk-observers-sandbox`) (after 8 attempts over"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retries are bounded"
    );
}

#[test]
fn a_context_other_than_the_pinned_one_is_refused() {
    let h = World::cluster_with_context(sandbox_config(), "someone-elses-cluster");
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the kubeconfig has no context `zk-observers-sandbox`, which environment sandbox is pinned to (contexts found: someone-elses-cluster)"), "{}", stderr(&out));
    let out = h.run(&[
        "diff",
        "--env",
        "sandbox",
        "--context",
        "someone-elses-cluster",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to act on context `someone-elses-cluster`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.api.stats().requests, 0, "refused before any request");
    // With the explicit flag it proceeds.
    let out = h.run(&[
        "diff",
        "--env",
        "sandbox",
        "--context",
        "someone-elses-cluster",
        "--allow-other-context",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_environment_defaults_to_the_one_pinned_to_the_current_context() {
    let h = World::cluster(sandbox_config());
    let out = h.run(&["diff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("cluster diff for sandbox (context zk-observers-sandbox"));
}

#[test]
fn transient_errors_are_retried_and_permanent_ones_reported() {
    let h = World::cluster(sandbox_config());
    h.api.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/services/zk0".into()),
        status: 503,
        latency: Duration::ZERO,
        times: 2,
        commits: false,
    });
    h.api.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/zk1".into()),
        status: 429,
        latency: Duration::ZERO,
        times: 1,
        commits: false,
    });
    h.api.inject(Fault {
        method: None,
        path_contains: Some("/endpoints/".into()),
        status: 500,
        latency: Duration::from_millis(50),
        times: 1,
        commits: false,
    });
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{DESIRED} to create")));

    h.api.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/zk2".into()),
        status: 403,
        latency: Duration::ZERO,
        times: u32::MAX,
        commits: false,
    });
    let before = h.api.stats().requests;
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("server-side apply (dry run) of Service/zookeeper/zk2 failed: 403 Forbidden"),
        "{err}"
    );
    assert!(err.contains("lacks the RBAC permission"), "{err}");
    let zk2_patches = h.api.stats().requests - before;
    assert!(
        zk2_patches < 10,
        "a 403 is not retried ({zk2_patches} requests)"
    );
}

/// A drift check that fails still writes its report: the scheduled job keeps a document naming
/// the error (docs/drift-report.md), exit 1. Here the namespace is gone (a 404 from a real API
/// server's reads), and then the environment is unknown.
#[test]
fn drift_writes_its_report_on_an_error_too() {
    let h = World::cluster(Config {
        namespaces: vec!["default".into()],
        seed: vec![],
        ..sandbox_config()
    });
    let out = h.run(&["drift", "--env", "sandbox", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("a JSON report on stdout");
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["environment"], "sandbox");
    assert_eq!(report["status"], "error");
    assert_eq!(report["clean"], Value::Null);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("namespaces \"zookeeper\" not found"),
        "{report}"
    );
    let out = h.run(&["drift", "--env", "nowhere", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["status"], "error");
    assert!(
        report["error"].as_str().unwrap().contains("nowhere"),
        "{report}"
    );
    // In text the error goes to stderr, as every command's.
    let out = h.run(&["drift", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: "), "{}", stderr(&out));
}

#[test]
fn a_missing_namespace_or_crd_is_reported_with_the_fix() {
    // A cluster without the namespace has nothing in it: no ensemble either.
    let h = World::cluster(Config {
        namespaces: vec!["default".into()],
        seed: vec![],
        ..sandbox_config()
    });
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("404") && err.contains("namespaces \"zookeeper\" not found"),
        "{err}"
    );
    assert!(err.contains("create the namespace"), "{err}");

    let h = World::cluster(Config {
        crds: false,
        ..sandbox_config()
    });
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ServiceMonitor CRD is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_json_has_one_entry_per_object() {
    let h = World::cluster(sandbox_config());
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--no-wait"])
            .status
            .code(),
        Some(0)
    );
    h.api.insert(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk9", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "sandbox"}}, "spec": {"ports": [{"port": 80}]}}), "zk-observers-xtask").unwrap();
    let out = h.run(&["diff", "--env", "sandbox", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["in_sync"], false);
    assert_eq!(v["summary"]["unchanged"], DESIRED);
    assert_eq!(v["summary"]["prune"], 1);
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(objects.len(), DESIRED + 1);
    let prune = objects.iter().find(|o| o["action"] == "prune").unwrap();
    assert_eq!(prune["object"], "Service/zookeeper/zk9");
    assert!(prune["diff"].as_str().unwrap().contains("-  name: zk9"));
}

#[test]
fn diff_sends_no_more_requests_with_5000_unrelated_services() {
    let count = |h: &World| {
        h.api.reset_stats();
        let out = h.run(&["diff", "--env", "sandbox"]);
        assert_eq!(out.status.code(), Some(0));
        h.api.stats()
    };
    let h = World::cluster(sandbox_config());
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    let quiet = count(&h);
    for i in 0..5000 {
        h.api
            .insert(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("unrelated-{i}"), "namespace": NS, "labels": {"app": "other"}}, "spec": {"ports": [{"port": 80}]}}), "someone")
            .unwrap();
    }
    let busy = count(&h);
    eprintln!(
        "requests: {} without, {} with 5,000 unrelated Services ({:?})",
        quiet.requests, busy.requests, busy.by_verb
    );
    assert_eq!(busy.requests, quiet.requests);
    assert_eq!(busy.by_verb, quiet.by_verb);
}

/// The Endpoints and EndpointSlices the controllers write for the per-pod Services.
fn controller_objects(h: &World) -> Vec<Value> {
    let mut out = Vec::new();
    for svc in ["zk0", "zk1", "zk2"] {
        if let Some(e) = h.api.get("v1", "endpoints", NS, svc) {
            out.push(e);
        }
    }
    out
}

fn slices_of(h: &World, svc: &str) -> Vec<Value> {
    // The test server's direct reads go by name; slices have generated names, so list them.
    let mut out = Vec::new();
    h.client(async |client| {
        let api: kube::Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
            kube::Api::namespaced(client, NS);
        let lp =
            kube::api::ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
        for s in api.list(&lp).await.unwrap() {
            out.push(serde_json::to_value(s).unwrap());
        }
    });
    out
}

#[test]
fn the_controllers_objects_are_never_taken_for_ours() {
    let h = World::cluster(sandbox_config());
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    wait_for("the controllers' Endpoints and slices", || {
        controller_objects(&h).len() == 3
            && ["zk0", "zk1", "zk2"]
                .iter()
                .all(|s| slices_of(&h, s).len() == 1)
    });
    // They carry this tool's labels, copied from the Services: a label selector alone finds them.
    let ep = h.api.get("v1", "endpoints", NS, "zk0").unwrap();
    assert_eq!(
        ep["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "zk-observers-xtask"
    );
    assert_eq!(
        ep["metadata"]["labels"]["zk-observers.dev/environment"],
        "sandbox"
    );
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "198.18.0.11");
    let slice = &slices_of(&h, "zk0")[0];
    assert_eq!(
        slice["metadata"]["labels"]["zk-observers.dev/environment"],
        "sandbox"
    );
    let uids: Vec<Value> = controller_objects(&h)
        .iter()
        .map(|o| o["metadata"]["uid"].clone())
        .collect();

    for args in [vec!["diff"], vec!["diff", "--read-only"]] {
        let mut a = args.clone();
        a.extend(["--env", "sandbox"]);
        let out = h.run(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} in sync: {}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("0 to prune"), "{}", stdout(&out));
    }
    let writes = h.managed_writes();
    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--prune",
        "--timeout",
        "20s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 pruned"), "{}", stdout(&out));
    assert_eq!(h.managed_writes(), writes, "no write at all");
    let after: Vec<Value> = controller_objects(&h)
        .iter()
        .map(|o| o["metadata"]["uid"].clone())
        .collect();
    assert_eq!(after, uids, "none deleted (and re-created)");
}

/// A participant whose pod is not ready (a server in an election, or restarting) stays behind
/// its load balancer: the per-pod Services set `publishNotReadyAddresses`, so the Endpoints
/// controller lists it as an address and the EndpointSlice controller marks it ready but not
/// serving (upstream: endpoints_controller.go `addEndpointSubset(..., tolerateUnreadyEndpoints =
/// spec.publishNotReadyAddresses)`; kubernetes/endpointslice utils.go `podToEndpoint`: ready =
/// publishNotReadyAddresses || (serving && !terminating)). The same pod behind a Service without
/// the field is a notReadyAddress, not ready, not serving.
#[test]
fn a_participant_whose_pod_is_not_ready_stays_behind_its_load_balancer() {
    let h = World::cluster(sandbox_config());
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let svc = h.service("zk0").unwrap();
    assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
    // The same selection without the field, for contrast.
    let mut plain = common::cluster_ip_service("zk0-plain");
    plain["spec"]
        .as_object_mut()
        .unwrap()
        .remove("publishNotReadyAddresses");
    common::apply_as_the_tool(&h, &plain);
    h.api.set_pod_ready(NS, "sandbox-zookeeper-0", false);
    wait_for("the controllers to see the pod not ready", || {
        h.api
            .get("v1", "endpoints", NS, "zk0-plain")
            .is_some_and(|e| e["subsets"][0]["notReadyAddresses"].is_array())
            && slices_of(&h, "zk0")
                .first()
                .is_some_and(|s| s["endpoints"][0]["conditions"]["serving"] == false)
    });
    let ep = h.api.get("v1", "endpoints", NS, "zk0").unwrap();
    assert_eq!(
        ep["subsets"][0]["addresses"][0]["ip"], "198.18.0.11",
        "{ep}"
    );
    assert!(ep["subsets"][0].get("notReadyAddresses").is_none(), "{ep}");
    let conditions = &slices_of(&h, "zk0")[0]["endpoints"][0]["conditions"];
    assert_eq!(conditions["ready"], true, "{conditions}");
    assert_eq!(conditions["serving"], false, "{conditions}");
    let plain_ep = h.api.get("v1", "endpoints", NS, "zk0-plain").unwrap();
    assert_eq!(
        plain_ep["subsets"][0]["notReadyAddresses"][0]["ip"], "198.18.0.11",
        "{plain_ep}"
    );
    assert!(
        plain_ep["subsets"][0].get("addresses").is_none(),
        "{plain_ep}"
    );
    let conditions = &slices_of(&h, "zk0-plain")[0]["endpoints"][0]["conditions"];
    assert_eq!(conditions["ready"], false, "{conditions}");
    // Ready again: an address everywhere.
    h.api.set_pod_ready(NS, "sandbox-zookeeper-0", true);
    wait_for("the pod ready again", || {
        h.api
            .get("v1", "endpoints", NS, "zk0-plain")
            .is_some_and(|e| e["subsets"][0]["addresses"].is_array())
    });
}

#[test]
fn taking_over_a_service_kubectl_created_meets_real_conflicts() {
    let h = World::cluster(sandbox_config());
    // `kubectl create service clusterip zk0 --tcp=2888:2888` before the tool was adopted: the
    // defaulted type (ClusterIP) belongs to kubectl-create.
    h.client(async |client| {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "zk0", "namespace": NS},
            "spec": {"ports": [{"name": "tcp-quorum", "port": 2888}], "selector": {"statefulset.kubernetes.io/pod-name": "sandbox-zookeeper-0"}}
        })).unwrap();
        let pp = kube::api::PostParams { field_manager: Some("kubectl-create".into()), ..Default::default() };
        services(client).create(&pp, &svc).await.unwrap();
    });
    for args in [vec!["diff"], vec!["diff", "--read-only"]] {
        let mut a = args.clone();
        a.extend(["--env", "sandbox"]);
        let out = h.run(&a);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stdout(&out).contains(
                r#"! conflict Service/zookeeper/zk0: .spec.type is owned by "kubectl-create""#
            ),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    let writes = h.managed_writes();
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            r#"Service/zookeeper/zk0: .spec.type is owned by field manager "kubectl-create""#
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.managed_writes(), writes, "nothing applied");
    assert_eq!(h.service("zk0").unwrap()["spec"]["type"], "ClusterIP");

    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--force-conflicts",
        "--timeout",
        "20s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(h.service("zk0").unwrap()["spec"]["type"], "LoadBalancer");
    // Taken over for good: in sync, a plain apply writes nothing.
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let writes = h.managed_writes();
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(h.managed_writes(), writes);
}

/// An applied sandbox, plus zk9: a per-pod Service this tool applied when the ensemble had 10
/// replicas, held by the cloud's finalizer, which the cloud releases `lb_cleanup` after a DELETE.
fn with_a_load_balancer_no_longer_desired(lb_cleanup: Duration) -> World {
    let mut config = sandbox_config();
    config.lb_cleanup = lb_cleanup;
    let h = World::cluster(config);
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    apply_as_the_tool(&h, &per_pod_service("zk9"));
    wait_for("the cloud's finalizer on zk9", || {
        h.service("zk9")
            .is_some_and(|s| s["metadata"]["finalizers"].is_array())
    });
    h
}

#[test]
fn pruning_a_load_balancer_waits_until_the_cloud_releases_it() {
    let h = with_a_load_balancer_no_longer_desired(Duration::from_millis(1500));

    let started = std::time::Instant::now();
    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--prune",
        "--timeout",
        "20s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "reported before the cloud let go"
    );
    assert!(
        stdout(&out).contains("pruned     Service/zookeeper/zk9"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("Service/zookeeper/zk9: being deleted since")
            && stderr(&out)
                .contains("held by finalizer service.kubernetes.io/load-balancer-cleanup; waiting"),
        "progress while waiting: {}",
        stderr(&out)
    );
    assert!(h.service("zk9").is_none());
}

#[test]
fn a_prune_the_cloud_never_releases_times_out_clearly() {
    let h = with_a_load_balancer_no_longer_desired(Duration::from_secs(3600));
    let out = h.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--prune",
        "--timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Service/zookeeper/zk9 is still being deleted since")
            && stderr(&out).contains("after 2s"),
        "{}",
        stderr(&out)
    );
    // diff (and drift) say it is going, not gone.
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert!(
        stdout(&out)
            .contains("- prune Service/zookeeper/zk9 (no longer desired; being deleted since"),
        "{}",
        stdout(&out)
    );
}

/// Each kind of cluster drift, planned by the server (dry run) and from reads only, the same way.
#[test]
fn reads_alone_plan_what_the_server_plans() {
    let h = World::cluster(sandbox_config());
    let plan = |read_only: bool| -> Value {
        let mut args = vec!["diff", "--env", "sandbox", "--output", "json"];
        if read_only {
            args.push("--read-only");
        }
        let out = h.run(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| json!({"object": o["object"], "action": o["action"], "conflicts": o["conflicts"]}))
            .collect()
    };
    let same = |what: &str| {
        let (server, reads) = (plan(false), plan(true));
        assert_eq!(server, reads, "{what}");
        server
    };
    same("nothing applied yet");
    assert_eq!(
        h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    let p = same("in sync");
    assert!(
        p.as_array()
            .unwrap()
            .iter()
            .all(|o| o["action"] == "unchanged"),
        "{p}"
    );
    // A human edit (changes the value and takes the field), a label another tool added, a
    // changed EndpointSlice, a deleted ServiceMonitor, an extra object of ours.
    h.client(async |client| {
        let edit = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        services(client.clone())
            .patch(
                "zk0",
                &edit,
                &kube::api::Patch::Merge(
                    &json!({"spec": {"loadBalancerSourceRanges": ["0.0.0.0/0"]}}),
                ),
            )
            .await
            .unwrap();
        services(client.clone())
            .patch(
                "zk1",
                &edit,
                &kube::api::Patch::Merge(&json!({"metadata": {"labels": {"team": "storage"}}})),
            )
            .await
            .unwrap();
        let slices: kube::Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
            kube::Api::namespaced(client.clone(), NS);
        slices
            .patch(
                "sandbox-zookeeper-external-ipv4",
                &edit,
                &kube::api::Patch::Merge(&json!({"endpoints": []})),
            )
            .await
            .unwrap();
        let sm = kube::Api::<kube::api::DynamicObject>::namespaced_with(
            client.clone(),
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
    apply_as_the_tool(&h, &common::cluster_ip_service("zk9"));
    let p = same("after the edits");
    let action = |name: &str| {
        p.as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"] == name)
            .unwrap_or_else(|| panic!("{name} in {p}"))["action"]
            .clone()
    };
    assert_eq!(action("Service/zookeeper/zk0"), "update");
    assert_eq!(
        action("Service/zookeeper/zk1"),
        "unchanged",
        "a label we do not set is not ours to remove"
    );
    assert_eq!(
        action("EndpointSlice/zookeeper/sandbox-zookeeper-external-ipv4"),
        "update"
    );
    assert_eq!(
        action("ServiceMonitor/zookeeper/sandbox-zookeeper-external"),
        "create"
    );
    assert_eq!(action("Service/zookeeper/zk9"), "prune");
}

#[test]
fn the_rendered_roles_are_enough_and_read_only_identities_cannot_write() {
    let mut config = sandbox_config();
    config.identities = vec![
        sandbox::Identity::from_roles("deployer", &roles(manifests::rbac::Access::Deploy)).unwrap(),
        sandbox::Identity::from_roles("drift-job", &roles(manifests::rbac::Access::Drift)).unwrap(),
        sandbox::Identity::read_only("auditor"),
    ];
    let h = World::cluster(config);
    // The deploy Role: diff (dry runs), apply, a second apply, prune.
    let out = h.run_as("deployer", &["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = h.run_as(
        "deployer",
        &["apply", "--yes", "--env", "sandbox", "--timeout", "20s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    apply_as_the_tool(&h, &per_pod_service("zk9"));
    let out = h.run_as(
        "deployer",
        &[
            "apply",
            "--yes",
            "--env",
            "sandbox",
            "--prune",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(h.service("zk9").is_none());

    // The drift Role and a read-only identity: a read-only plan works, and asks for no write.
    for user in ["drift-job", "auditor"] {
        let out = h.run_as(user, &["diff", "--env", "sandbox", "--read-only"]);
        assert_eq!(out.status.code(), Some(0), "{user}: {}", stderr(&out));
        // A dry-run plan needs write rights, and says so.
        let out = h.run_as(user, &["diff", "--env", "sandbox"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("403 Forbidden")
                && stderr(&out).contains("cannot patch resource"),
            "{}",
            stderr(&out)
        );
        let out = h.run_as(
            user,
            &["apply", "--yes", "--env", "sandbox", "--timeout", "20s"],
        );
        assert_eq!(out.status.code(), Some(1));
    }
    let stats = h.api.stats();
    assert!(stats.write_requests("deployer") > 0);
    assert_eq!(
        stats.by_user["drift-job"]
            .keys()
            .filter(|k| !k.contains("dry-run")
                && (k.starts_with("apply") || k.starts_with("create") || k.starts_with("delete")))
            .count(),
        0
    );
    // Only the refused dry runs of the plain diffs and applies were write requests, and none of
    // them changed anything.
    assert!(
        stats.by_user["drift-job"]
            .keys()
            .all(|k| ["get ", "list ", "apply-dry-run "]
                .iter()
                .any(|p| k.starts_with(p))),
        "{:?}",
        stats.by_user["drift-job"]
    );
}

#[test]
fn a_server_that_answers_409_even_to_a_forced_dry_run_is_an_error_not_a_panic() {
    let h = World::cluster(sandbox_config());
    h.api.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/zk0".into()),
        status: 409,
        latency: Duration::ZERO,
        times: u32::MAX,
        commits: false,
    });
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1), "an error, not a panic (101)");
    let err = stderr(&out);
    assert!(
        err.contains("the forced dry run of Service/zookeeper/zk0 still reported conflicts"),
        "{err}"
    );
}

#[test]
fn an_api_server_that_answers_503_for_ever_is_given_up_on_within_the_budget() {
    let h = World::cluster(sandbox_config());
    h.api.inject(Fault {
        method: None,
        path_contains: Some("/services".into()),
        status: 503,
        latency: Duration::ZERO,
        times: u32::MAX,
        commits: false,
    });
    let out = h.run(&["apply", "--yes", "--env", "sandbox", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // One retry layer: a call is tried at most 8 times (kube-client's own retries are off, so
    // they do not nest), and the message says how often and for how long.
    assert!(err.contains("503"), "{err}");
    let attempts: u32 = err
        .split("(after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("says how often it tried: {err}"));
    assert!(
        (2..=8).contains(&attempts),
        "retried within the 5 s budget, at most 8 times: {err}"
    );
    let services: u64 = h
        .api
        .stats()
        .by_verb
        .iter()
        .filter(|(k, _)| k.contains(" services"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        services <= u64::from(attempts) * 4,
        "never nested: {services} requests for Services, {attempts} attempts per call"
    );
    assert!(
        lease_gone(&h),
        "the deploy lock is released after the error"
    );
}

#[test]
fn overload_answers_are_retried_after_what_retry_after_asks() {
    let h = World::cluster(sandbox_config());
    // kube-apiserver's overload answer: 429, text/plain, `Retry-After: 1`.
    h.api.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/services/zk0".into()),
        status: 429,
        latency: Duration::ZERO,
        times: 2,
        commits: false,
    });
    let started = std::time::Instant::now();
    let out = h.run(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Two answers asked for a second's pause each; the exponential back-off alone would have
    // waited 0.6 s in all.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured ({:?})",
        started.elapsed()
    );
}

fn lease_gone(h: &World) -> bool {
    h.api
        .get(
            "coordination.k8s.io/v1",
            "leases",
            NS,
            "zk-observers-deploy-sandbox",
        )
        .is_none()
}
