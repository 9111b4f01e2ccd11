//! The cluster side (`cargo xtask diff` and `apply`) driven through the real binary against the
//! Kubernetes API test server (sandbox/src/apiserver), over real HTTP with the real kube client.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::run;
use sandbox::{ApiServer, Config, Fault, LoadBalancerMode};
use serde_json::{json, Value};

const CONTEXT: &str = "zk-observers-sandbox";
const NS: &str = "zookeeper";
/// Objects the sandbox environment desires: 3 per-pod Services, the monitoring Service, Endpoints,
/// EndpointSlice and ServiceMonitor.
const DESIRED: usize = 7;

struct Harness {
    server: ApiServer,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn sandbox_config() -> Config {
    Config {
        namespaces: vec![NS.into(), "default".into()],
        load_balancer: LoadBalancerMode::After(Duration::from_millis(300)),
        lb_addresses: BTreeMap::from([
            (format!("{NS}/zk0"), "198.18.0.11".into()),
            (format!("{NS}/zk1"), "198.18.0.12".into()),
            (format!("{NS}/zk2"), "198.18.0.13".into()),
        ]),
        crds: true,
    }
}

impl Harness {
    fn start(config: Config) -> Harness {
        Self::with_context(config, CONTEXT)
    }

    fn with_context(config: Config, context: &str) -> Harness {
        let server = ApiServer::start(config).expect("API test server starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig(context)).unwrap();
        Harness {
            server,
            _dir: dir,
            kubeconfig,
        }
    }

    fn xtask(&self, args: &[&str]) -> Output {
        let mut c: Command = common::xtask();
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self._dir.path())
            .args(args);
        run(&mut c)
    }

    /// A kube client for edits made by "someone else" (a human with kubectl, helm, ...).
    fn as_manager(&self, f: impl AsyncFnOnce(kube::Client)) {
        common::with_client(self.server.kubeconfig(CONTEXT), f)
    }

    fn service(&self, name: &str) -> Option<Value> {
        self.server.get("v1", "services", NS, name)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn services(client: kube::Client) -> kube::Api<k8s_openapi::api::core::v1::Service> {
    kube::Api::namespaced(client, NS)
}

#[test]
fn diff_on_an_empty_namespace_lists_every_create_and_exits_2() {
    let h = Harness::start(sandbox_config());
    let out = h.xtask(&["diff", "--env", "sandbox"]);
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
    assert_eq!(h.server.stats().writes, 0, "diff writes nothing");
    assert_eq!(h.server.object_count(), 0);
}

#[test]
fn apply_then_diff_is_in_sync_and_a_second_apply_writes_nothing() {
    let h = Harness::start(sandbox_config());
    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"]);
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
    let writes = h.server.stats().writes;
    assert_eq!(writes, DESIRED as u64);

    // Server-side defaults (clusterIP, sessionAffinity, nodePorts, ...) and the status written by
    // the load-balancer controller are not reported as changes.
    let zk0 = h.service("zk0").unwrap();
    assert!(
        zk0["spec"]["clusterIP"].is_string() && zk0["spec"]["ports"][0]["nodePort"].is_number(),
        "{zk0}"
    );
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!(
        "in sync: 0 to create, 0 to update, {DESIRED} unchanged, 0 to prune"
    )));
    assert!(!stdout(&out).contains("@@"), "no diff is printed");

    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(&format!("0 created, 0 configured, {DESIRED} unchanged")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        h.server.stats().writes,
        writes,
        "a second apply writes nothing"
    );
}

#[test]
fn a_human_edit_of_a_managed_field_shows_in_diff_and_is_only_overwritten_with_force() {
    let h = Harness::start(sandbox_config());
    assert_eq!(
        h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    // `kubectl edit` widens the source ranges of zk0.
    h.as_manager(async |client| {
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
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("~ update Service/zookeeper/zk0\n"), "{text}");
    assert!(text.contains("-  - 0.0.0.0/0\n"), "{text}");
    assert!(text.contains("+  - 198.18.1.4/32\n"), "{text}");
    assert!(text.contains("! conflict Service/zookeeper/zk0: .spec.loadBalancerSourceRanges is owned by \"kubectl-edit\""), "{text}");

    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"]);
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

    let out = h.xtask(&[
        "apply",
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
    assert_eq!(
        h.xtask(&["diff", "--env", "sandbox"]).status.code(),
        Some(0)
    );
}

#[test]
fn a_field_applied_by_another_manager_is_a_conflict_not_an_overwrite() {
    let h = Harness::start(sandbox_config());
    // helm already owns a Service zk1 that selects another pod.
    h.as_manager(async |client| {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk1", "namespace": NS},
            "spec": {"type": "LoadBalancer", "selector": {"statefulset.kubernetes.io/pod-name": "other-0"},
                     "ports": [{"name": "tcp-quorum", "port": 2888}]}
        });
        services(client).patch("zk1", &kube::api::PatchParams::apply("helm"), &kube::api::Patch::Apply(&svc)).await.unwrap();
    });
    let before = h.service("zk1").unwrap();
    let writes = h.server.stats().writes;
    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Service/zookeeper/zk1: .spec.selector.statefulset.kubernetes.io/pod-name is owned by field manager \"helm\""), "{err}");
    let after = h.service("zk1").unwrap();
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "zk1 untouched"
    );
    assert_eq!(
        h.server.stats().writes,
        writes,
        "nothing at all was applied"
    );
}

#[test]
fn prune_deletes_only_objects_with_our_labels_for_this_environment() {
    let h = Harness::start(sandbox_config());
    assert_eq!(
        h.xtask(&["apply", "--env", "sandbox", "--no-wait"])
            .status
            .code(),
        Some(0)
    );
    let svc = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS, "labels": labels},
               "spec": {"ports": [{"port": 80}]}})
    };
    let ours = json!({"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "sandbox"});
    h.server
        .insert(svc("zk9", ours), "zk-observers-xtask")
        .unwrap();
    h.server
        .insert(svc("other-env", json!({"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "staging"})), "x")
        .unwrap();
    h.server.insert(svc("helm-owned", json!({"app.kubernetes.io/managed-by": "Helm", "zk-observers.dev/environment": "sandbox"})), "helm").unwrap();
    h.server
        .insert(svc("unlabelled", json!({})), "kubectl")
        .unwrap();

    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("- prune Service/zookeeper/zk9 (no longer desired"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("1 to prune"));

    let out = h.xtask(&["apply", "--env", "sandbox", "--no-wait"]);
    assert!(
        stdout(&out).contains("kept       Service/zookeeper/zk9"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("rerun with --prune"));
    assert!(h.service("zk9").is_some(), "not pruned without --prune");

    let out = h.xtask(&["apply", "--env", "sandbox", "--no-wait", "--prune"]);
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
    let h = Harness::start(Config {
        load_balancer: LoadBalancerMode::Never,
        ..sandbox_config()
    });
    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "2s"]);
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
    let h = Harness::start(config);
    let out = h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"]);
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
    let out = h.xtask(&[
        "apply",
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
    let h = Harness::start(sandbox_config());
    let url = h.server.url();
    let Harness {
        server,
        _dir,
        kubeconfig,
    } = h;
    server.stop();
    let h2 = Harness {
        server: ApiServer::start(sandbox_config()).unwrap(),
        _dir,
        kubeconfig,
    };
    let started = std::time::Instant::now();
    let out = h2.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the Kubernetes API at {url}")),
        "{err}"
    );
    assert!(
        err.contains("(context `zk-observers-sandbox`) after 5 attempts"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retries are bounded"
    );
}

#[test]
fn a_context_other_than_the_pinned_one_is_refused() {
    let h = Harness::with_context(sandbox_config(), "someone-elses-cluster");
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the kubeconfig has no context `zk-observers-sandbox`, which environment sandbox is pinned to (contexts found: someone-elses-cluster)"), "{}", stderr(&out));
    let out = h.xtask(&[
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
    assert_eq!(h.server.stats().requests, 0, "refused before any request");
    // With the explicit flag it proceeds.
    let out = h.xtask(&[
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
    let h = Harness::start(sandbox_config());
    let out = h.xtask(&["diff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("cluster diff for sandbox (context zk-observers-sandbox"));
}

#[test]
fn transient_errors_are_retried_and_permanent_ones_reported() {
    let h = Harness::start(sandbox_config());
    h.server.inject(Fault {
        method: Some("GET".into()),
        path_contains: Some("/services/zk0".into()),
        status: 503,
        latency: Duration::ZERO,
        times: 2,
    });
    h.server.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/zk1".into()),
        status: 429,
        latency: Duration::ZERO,
        times: 1,
    });
    h.server.inject(Fault {
        method: None,
        path_contains: Some("/endpoints/".into()),
        status: 500,
        latency: Duration::from_millis(50),
        times: 1,
    });
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{DESIRED} to create")));

    h.server.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/zk2".into()),
        status: 403,
        latency: Duration::ZERO,
        times: u32::MAX,
    });
    let before = h.server.stats().requests;
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("server-side apply (dry run) of Service/zookeeper/zk2 failed: 403 Forbidden"),
        "{err}"
    );
    assert!(err.contains("lacks the RBAC permission"), "{err}");
    let zk2_patches = h.server.stats().requests - before;
    assert!(
        zk2_patches < 10,
        "a 403 is not retried ({zk2_patches} requests)"
    );
}

#[test]
fn a_missing_namespace_or_crd_is_reported_with_the_fix() {
    let h = Harness::start(Config {
        namespaces: vec!["default".into()],
        ..sandbox_config()
    });
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("404") && err.contains("namespaces \"zookeeper\" not found"),
        "{err}"
    );
    assert!(err.contains("create the namespace"), "{err}");

    let h = Harness::start(Config {
        crds: false,
        ..sandbox_config()
    });
    let out = h.xtask(&["diff", "--env", "sandbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ServiceMonitor CRD is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_json_has_one_entry_per_object() {
    let h = Harness::start(sandbox_config());
    assert_eq!(
        h.xtask(&["apply", "--env", "sandbox", "--no-wait"])
            .status
            .code(),
        Some(0)
    );
    h.server.insert(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk9", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "zk-observers-xtask", "zk-observers.dev/environment": "sandbox"}}, "spec": {"ports": [{"port": 80}]}}), "zk-observers-xtask").unwrap();
    let out = h.xtask(&["diff", "--env", "sandbox", "--output", "json"]);
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
    let count = |h: &Harness| {
        h.server.reset_stats();
        let out = h.xtask(&["diff", "--env", "sandbox"]);
        assert_eq!(out.status.code(), Some(0));
        h.server.stats()
    };
    let h = Harness::start(sandbox_config());
    assert_eq!(
        h.xtask(&["apply", "--env", "sandbox", "--timeout", "20s"])
            .status
            .code(),
        Some(0)
    );
    let quiet = count(&h);
    for i in 0..5000 {
        h.server
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
