//! One test per validation rule: a valid environment, broken in one place, is rejected with a
//! message that names the field and says how to fix it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hosts::net::v4;
use hosts::{
    port, AdminServer, FourLetterWord, FourLetterWords, HostKey, ImageRef, Metrics, Problem,
    RemoteDir, ServerAddress, ServerId, Severity,
};
use manifests::objects::Object;
use manifests::{Environment, EnvironmentKind, LoadBalancerProvider};

fn sandbox() -> Environment {
    manifests::environments::sandbox::environment()
}

fn production() -> Environment {
    manifests::environments::production::environment()
}

fn problems(env: &Environment, severity: Severity) -> Vec<Problem> {
    manifests::validate(env)
        .iter()
        .filter(|p| p.severity == severity)
        .cloned()
        .collect()
}

/// Asserts that `env` has an error on `field` whose message contains `fragment`, and returns it.
#[track_caller]
fn rejected(env: &Environment, field: &str, fragment: &str) -> Problem {
    let errors = problems(env, Severity::Error);
    let found = errors
        .iter()
        .find(|p| p.field == field && p.message.contains(fragment));
    let Some(p) = found else {
        panic!("expected an error on `{field}` containing {fragment:?}; got:\n{errors:#?}");
    };
    assert!(!p.fix.is_empty(), "every error says how to fix it");
    p.clone()
}

#[track_caller]
fn warned(env: &Environment, field: &str, fragment: &str) {
    let warnings = problems(env, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|p| p.field == field && p.message.contains(fragment)),
        "expected a warning on `{field}` containing {fragment:?}; got:\n{warnings:#?}"
    );
}

#[test]
fn shipped_environments_are_valid() {
    for env in manifests::environments::all() {
        let errors = problems(&env, Severity::Error);
        assert!(errors.is_empty(), "{}: {errors:#?}", env.name);
    }
    assert!(problems(&sandbox(), Severity::Warning).is_empty());
}

// --- ids -------------------------------------------------------------------------------------

#[test]
fn observer_ids_must_be_unique() {
    let mut env = sandbox();
    env.fleet.observers[1].myid = env.fleet.observers[0].myid;
    rejected(
        &env,
        "fleet.observers[1].myid",
        "also the myid of observers[0]",
    );
}

#[test]
fn observer_id_must_not_be_a_participant_id() {
    let mut env = sandbox();
    env.fleet.observers[0].myid = ServerId(2);
    rejected(
        &env,
        "fleet.observers[0].myid",
        "already the id of participant sandbox-zookeeper-1",
    );
}

#[test]
fn observer_id_must_exceed_every_participant_id() {
    let mut env = sandbox();
    env.ensemble.replicas = 5; // participants 1..=5 now include the observer's 4
    env.fleet.observers[0].myid = ServerId(4);
    let p = rejected(
        &env,
        "fleet.observers[0].myid",
        "not greater than every participant id (the highest is 5)",
    );
    assert!(
        p.message.contains("only the observer can open connections"),
        "says why: {}",
        p.message
    );
    assert!(p.fix.contains("above 5"));
}

/// The runbook's ids 4 and 5 exceed its three participants' today, and are the ids the
/// StatefulSet gives its next participants when scaled out (the chart numbers pods ordinal + 1):
/// observers keep 100 and up.
#[test]
fn observer_ids_leave_room_for_the_statefulset_to_grow() {
    let mut env = sandbox();
    env.fleet.observers[0].myid = ServerId(4);
    let p = rejected(
        &env,
        "fleet.observers[0].myid",
        "the id the StatefulSet gives its participant 4 when it is scaled out",
    );
    assert!(p.fix.contains("from 100 to 255"), "{}", p.fix);
    env.fleet.observers[0].myid = ServerId(100);
    assert!(problems(&env, Severity::Error).is_empty());
}

/// The seed's chart ships ZooKeeper 3.5.5, whose observers never report zk_peer_state: refused
/// with the reason, not left to a health gate that can never pass.
#[test]
fn an_ensemble_older_than_3_6_is_refused() {
    let mut env = sandbox();
    env.ensemble.version = hosts::ZkVersion::minor(3, 5);
    let p = rejected(&env, "ensemble.version", "reports no zk_peer_state");
    assert!(p.message.contains("3.5.5"), "{}", p.message);
}

#[test]
fn ids_must_be_within_1_to_255() {
    let mut env = sandbox();
    env.fleet.observers[0].myid = ServerId(256);
    rejected(
        &env,
        "fleet.observers[0].myid",
        "outside ZooKeeper's id range 1..=255",
    );
    env.fleet.observers[0].myid = ServerId(0);
    rejected(
        &env,
        "fleet.observers[0].myid",
        "outside ZooKeeper's id range",
    );
    let mut env = sandbox();
    env.ensemble.replicas = 300;
    rejected(&env, "ensemble.replicas", "beyond ZooKeeper's 255");
}

// --- observers --------------------------------------------------------------------------------

#[test]
fn no_observer_is_an_error_and_one_is_a_warning() {
    let mut env = sandbox();
    env.fleet.observers.truncate(1);
    warned(&env, "fleet.observers", "single point of failure");
    assert!(
        problems(&env, Severity::Error).is_empty(),
        "one observer is accepted"
    );
    env.fleet.observers.clear();
    rejected(&env, "fleet.observers", "no observers are listed");
}

#[test]
fn observer_addresses_must_be_unique() {
    let mut env = sandbox();
    env.fleet.observers[1].address = env.fleet.observers[0].address;
    rejected(
        &env,
        "fleet.observers[1].address",
        "also the address of observers[0]",
    );
}

#[test]
fn load_balancer_addresses_must_not_repeat_observer_or_each_other() {
    let mut env = sandbox();
    let observer = env.fleet.observers[0].address;
    env.ensemble
        .recorded_addresses
        .insert(2, ServerAddress::Ip(observer));
    rejected(
        &env,
        "ensemble.recorded_addresses[2]",
        "is also fleet.observers[0].address",
    );
    let mut env = sandbox();
    env.ensemble
        .recorded_addresses
        .insert(1, ServerAddress::Ip(v4(198, 18, 0, 11)));
    rejected(
        &env,
        "ensemble.recorded_addresses[1]",
        "is also ensemble.recorded_addresses[0]",
    );
}

#[test]
fn addresses_must_be_host_addresses() {
    let mut env = sandbox();
    env.fleet.observers[0].address = v4(0, 0, 0, 0);
    rejected(
        &env,
        "fleet.observers[0].address",
        "not a unicast host address",
    );
    env.fleet.observers[0].address = v4(224, 0, 0, 1);
    rejected(
        &env,
        "fleet.observers[0].address",
        "not a unicast host address",
    );
    let mut env = sandbox();
    env.ensemble
        .recorded_addresses
        .insert(0, ServerAddress::Ip(v4(255, 255, 255, 255)));
    rejected(
        &env,
        "ensemble.recorded_addresses[0]",
        "not a unicast address",
    );
    env.ensemble
        .recorded_addresses
        .insert(0, ServerAddress::Dns("not a name!".into()));
    rejected(&env, "ensemble.recorded_addresses[0]", "not a DNS name");
}

#[test]
fn source_ranges_must_be_networks_and_not_everything() {
    let mut env = sandbox();
    env.extra_source_ranges = vec!["198.18.1.7/24".parse().unwrap()];
    let p = rejected(&env, "extra_source_ranges[0]", "has host bits set");
    assert!(p.fix.contains("198.18.1.0/24"), "{}", p.fix);
    env.extra_source_ranges = vec!["0.0.0.0/0".parse().unwrap()];
    rejected(
        &env,
        "extra_source_ranges[0]",
        "lets every address reach the quorum and election ports",
    );
}

#[test]
fn sandbox_never_names_an_address_outside_the_sandbox() {
    let mut env = sandbox();
    env.fleet.observers[0].address = v4(10, 104, 170, 174);
    rejected(&env, "fleet.observers[0].address", "outside the sandbox");
    let mut env = sandbox();
    env.ensemble
        .recorded_addresses
        .insert(0, ServerAddress::Ip(v4(10, 1, 0, 12)));
    rejected(
        &env,
        "ensemble.recorded_addresses[0]",
        "outside the sandbox",
    );
    // Load balancers that have names (AWS): only .test names, which the sandbox's DNS answers.
    let mut env = sandbox();
    env.ensemble.recorded_addresses.insert(
        0,
        ServerAddress::Dns("internal-zk0-123.us-east-1.elb.amazonaws.com".into()),
    );
    rejected(
        &env,
        "ensemble.recorded_addresses[0]",
        "outside the sandbox",
    );
    let mut env = sandbox();
    env.ensemble.recorded_addresses.insert(
        0,
        ServerAddress::Dns("zk0.zookeeper.lb.sandbox.test".into()),
    );
    assert!(
        !manifests::validate(&env).has_errors(),
        "{:?}",
        manifests::validate(&env)
    );
}

#[test]
fn production_never_names_a_loopback_or_sandbox_address() {
    let mut env = production();
    env.fleet.observers[0].address = v4(127, 0, 0, 1);
    rejected(
        &env,
        "fleet.observers[0].address",
        "loopback or sandbox address in a production environment",
    );
    let mut env = production();
    env.ensemble.recorded_addresses.insert(
        0,
        ServerAddress::Dns("zk0.zookeeper.lb.sandbox.test".into()),
    );
    rejected(
        &env,
        "ensemble.recorded_addresses[0]",
        "sandbox name (.test) in a production environment",
    );
}

#[test]
fn observer_fields_are_checked() {
    let mut env = sandbox();
    env.fleet.observers[0].name = "Observer_1".into();
    rejected(&env, "fleet.observers[0].name", "not a DNS-1123 label");
    let mut env = sandbox();
    env.fleet.observers[1].name = env.fleet.observers[0].name.clone();
    rejected(
        &env,
        "fleet.observers[1].name",
        "also the name of observers[0]",
    );
    let mut env = sandbox();
    env.fleet.observers[0].deploy_dir = RemoteDir::new("srv/zk");
    rejected(
        &env,
        "fleet.observers[0].deploy_dir",
        "not an absolute path",
    );
    env.fleet.observers[0].deploy_dir = RemoteDir::new("/srv/../etc");
    rejected(&env, "fleet.observers[0].deploy_dir", "`..`");
    let mut env = sandbox();
    env.fleet.observers[0].ssh.user = "-oProxyCommand=x".into();
    rejected(
        &env,
        "fleet.observers[0].ssh.user",
        "not a valid login name",
    );
}

#[test]
fn host_keys_must_parse_and_unpinned_keys_are_warned_about() {
    let mut env = sandbox();
    env.fleet.observers[0].host_key = HostKey::Pinned("ssh-ed25519 not-base64!".into());
    rejected(&env, "fleet.observers[0].host_key", "not base64");
    env.fleet.observers[0].host_key = HostKey::Pinned("ssh-dss AAAA".into());
    rejected(
        &env,
        "fleet.observers[0].host_key",
        "not an SSH host key algorithm",
    );
    env.fleet.observers[0].host_key = HostKey::NotPinned;
    warned(&env, "fleet.observers[0].host_key", "not pinned");
}

// --- monitoring objects ---------------------------------------------------------------------

#[test]
fn service_and_endpoints_port_names_must_be_equal() {
    let env = sandbox();
    let mut objects = manifests::desired_objects(&env);
    for o in &mut objects {
        if let Object::Endpoints(e) = o {
            e.subsets.as_mut().unwrap()[0].ports.as_mut().unwrap()[0].name = Some("metrics".into());
        }
    }
    let p = manifests::validate::check_objects(&env, &objects);
    let e = p
        .errors()
        .find(|p| p.field == "monitoring.port_name")
        .expect("port name mismatch found");
    assert!(
        e.message.contains(
            "Endpoints `sandbox-zookeeper-external` names its port `metrics` but Service"
        ),
        "{}",
        e.message
    );
    // The same for the EndpointSlice.
    let mut objects = manifests::desired_objects(&env);
    for o in &mut objects {
        if let Object::EndpointSlice(s) = o {
            s.ports.as_mut().unwrap()[0].name = Some("metrics".into());
        }
    }
    let p = manifests::validate::check_objects(&env, &objects);
    assert!(p.errors().any(|p| p
        .message
        .contains("EndpointSlice `sandbox-zookeeper-external-ipv4` names its port `metrics`")));
    // And the untampered objects pass.
    assert!(
        !manifests::validate::check_objects(&env, &manifests::desired_objects(&env)).has_errors()
    );
}

#[test]
fn service_labels_must_match_the_service_monitor_selector() {
    let mut env = sandbox();
    // A selector that collides with one of this tool's own labels cannot be satisfied.
    env.monitoring
        .service_monitor_selector
        .insert("app.kubernetes.io/managed-by".into(), "Helm".into());
    let p = rejected(
        &env,
        "monitoring.service_monitor_selector",
        "selects `app.kubernetes.io/managed-by=Helm`",
    );
    assert!(p
        .message
        .contains("Prometheus would not scrape the observers"));
    // A live Service whose labels were edited is caught by the same rule.
    let env = sandbox();
    let mut objects = manifests::desired_objects(&env);
    for o in &mut objects {
        if let Object::Service(s) = o {
            if s.metadata.name.as_deref() == Some("sandbox-zookeeper-external") {
                s.metadata.labels.as_mut().unwrap().remove("position");
            }
        }
    }
    let p = manifests::validate::check_objects(&env, &objects);
    assert!(p.errors().any(
        |p| p.message.contains("selects `position=external`") && p.message.contains("<absent>")
    ));
}

#[test]
fn monitoring_names_and_labels_are_checked() {
    let mut env = sandbox();
    env.monitoring.port_name = "zookeeper-exporter-metrics".into();
    rejected(&env, "monitoring.port_name", "not an IANA service name");
    let mut env = sandbox();
    env.monitoring.service_monitor_selector.clear();
    rejected(
        &env,
        "monitoring.service_monitor_selector",
        "the selector is empty",
    );
    let mut env = sandbox();
    env.monitoring
        .service_monitor_selector
        .insert("bad key!".into(), "x".into());
    rejected(
        &env,
        "monitoring.service_monitor_selector",
        "not a valid label key",
    );
    let mut env = sandbox();
    env.monitoring.service_monitor.as_mut().unwrap().interval = "often".into();
    rejected(
        &env,
        "monitoring.service_monitor.interval",
        "not a Prometheus duration",
    );
}

// --- zoo.cfg ----------------------------------------------------------------------------------

#[test]
fn min_session_timeout_must_not_exceed_max() {
    let mut env = sandbox();
    env.fleet.zookeeper.min_session_timeout_ms = 50_000;
    rejected(
        &env,
        "fleet.zookeeper.min_session_timeout_ms",
        "greater than maxSessionTimeout 40000 ms",
    );
}

#[test]
fn init_and_sync_limits_must_be_non_zero() {
    let mut env = sandbox();
    env.fleet.zookeeper.init_limit = 0;
    rejected(&env, "fleet.zookeeper.init_limit", "initLimit is 0");
    let mut env = sandbox();
    env.fleet.zookeeper.sync_limit = 0;
    rejected(&env, "fleet.zookeeper.sync_limit", "syncLimit is 0");
    let mut env = sandbox();
    env.fleet.zookeeper.tick_time_ms = 0;
    rejected(&env, "fleet.zookeeper.tick_time_ms", "tickTime is 0");
}

#[test]
fn purging_must_be_on() {
    let mut env = sandbox();
    env.fleet.zookeeper.autopurge_purge_interval_hours = 0;
    rejected(
        &env,
        "fleet.zookeeper.autopurge_purge_interval_hours",
        "turns purging off",
    );
    let mut env = sandbox();
    env.fleet.zookeeper.autopurge_snap_retain_count = 1;
    rejected(
        &env,
        "fleet.zookeeper.autopurge_snap_retain_count",
        "below ZooKeeper's minimum of 3",
    );
}

#[test]
fn whitelist_is_never_star() {
    // The whitelist is a set of `FourLetterWord` variants: `*` (or any unknown word) cannot be
    // written in an environment at all, so no environment can panic or fail on it. Even every
    // word enabled renders as a list.
    let mut env = sandbox();
    env.fleet.zookeeper.four_letter_words = FourLetterWords::of(FourLetterWord::ALL);
    let files = manifests::render_host_files(&env, &manifests::AddressSource::Recorded).unwrap();
    let line = files[0]
        .1
        .zoo_cfg
        .lines()
        .find(|l| l.starts_with("4lw.commands.whitelist="))
        .unwrap()
        .to_string();
    assert!(!line.contains('*'), "{line}");
    // ... and validation refuses the expensive ones by name.
    rejected(
        &env,
        "fleet.zookeeper.four_letter_words",
        "`wchc` walks every watch",
    );
}

#[test]
fn whitelist_holds_what_the_exporter_needs_and_refuses_expensive_commands() {
    // What the exporter needs is always written, whatever the user lists.
    let env = sandbox();
    let files = manifests::render_host_files(&env, &manifests::AddressSource::Recorded).unwrap();
    assert!(files[0]
        .1
        .zoo_cfg
        .contains("\n4lw.commands.whitelist=conf,mntr,srst,srvr\n"));
    let mut env = sandbox();
    env.fleet.metrics = Metrics::Exporter {
        image: ImageRef::new("zk-observers/zookeeper-exporter:1.0.0-standin"),
        port: port!(9141),
        reset_on_scrape: false,
    };
    let files = manifests::render_host_files(&env, &manifests::AddressSource::Recorded).unwrap();
    assert!(
        files[0]
            .1
            .zoo_cfg
            .contains("\n4lw.commands.whitelist=conf,mntr,srvr\n"),
        "no srst without reset-on-scrape"
    );
    // CPU-heavy commands are refused, other extras are warned about.
    let mut env = sandbox();
    env.fleet.zookeeper.four_letter_words = FourLetterWords::of([FourLetterWord::Wchc]);
    rejected(
        &env,
        "fleet.zookeeper.four_letter_words",
        "`wchc` walks every watch",
    );
    env.fleet.zookeeper.four_letter_words = FourLetterWords::of([FourLetterWord::Dump]);
    warned(
        &env,
        "fleet.zookeeper.four_letter_words",
        "`dump` is enabled although",
    );
}

#[test]
fn admin_server_must_not_listen_beyond_loopback() {
    let mut env = sandbox();
    env.fleet.zookeeper.admin_server = AdminServer::Enabled {
        address: IpAddr::from([0, 0, 0, 0]),
        port: port!(8080),
    };
    rejected(
        &env,
        "fleet.zookeeper.admin_server",
        "would listen on 0.0.0.0",
    );
    env.fleet.zookeeper.admin_server = AdminServer::Enabled {
        address: IpAddr::from([127, 0, 0, 1]),
        port: port!(8080),
    };
    assert!(problems(&env, Severity::Error).is_empty());
    let files = manifests::render_host_files(&env, &manifests::AddressSource::Recorded).unwrap();
    assert!(files[0]
        .1
        .zoo_cfg
        .contains("\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=8080\n"));
}

#[test]
fn image_tags_must_be_pinned() {
    let mut env = sandbox();
    env.fleet.image = ImageRef::new("zookeeper");
    rejected(&env, "fleet.image", "has no tag, which means `latest`");
    env.fleet.image = ImageRef::new("zookeeper:latest");
    rejected(
        &env,
        "fleet.image",
        "uses the tag `latest`, which does not name a patch release",
    );
    let mut env = sandbox();
    env.fleet.metrics = Metrics::Exporter {
        image: ImageRef::new("josdotso/zookeeper-exporter"),
        port: port!(9141),
        reset_on_scrape: true,
    };
    rejected(&env, "fleet.metrics.image", "has no tag");
}

#[test]
fn image_must_be_of_the_ensembles_minor_version() {
    let mut env = sandbox();
    env.fleet.image = ImageRef::new("zookeeper:3.9.5");
    let p = rejected(
        &env,
        "fleet.image",
        "is ZooKeeper 3.9.5, the ensemble runs 3.8",
    );
    assert!(p.fix.contains("3.8.x"));
}

#[test]
fn ensemble_with_dynamic_reconfig_is_refused() {
    let mut env = sandbox();
    env.ensemble.reconfig_enabled = true;
    rejected(
        &env,
        "ensemble.reconfig_enabled",
        "restarts leader election on every message",
    );
}

// --- cluster side -----------------------------------------------------------------------------

#[test]
fn ensemble_names_and_ports_are_checked() {
    let mut env = sandbox();
    env.ensemble.namespace = "Kube_Public".into();
    rejected(&env, "ensemble.namespace", "not a DNS-1123 label");
    let mut env = sandbox();
    env.ensemble.election_port = env.ensemble.quorum_port;
    rejected(&env, "ensemble.election_port", "also the quorum port");
    let mut env = sandbox();
    env.ensemble
        .recorded_addresses
        .insert(7, ServerAddress::Ip(v4(198, 18, 0, 17)));
    rejected(
        &env,
        "ensemble.recorded_addresses[7]",
        "pod ordinal 7, but the ensemble has 3 replicas",
    );
    let mut env = sandbox();
    env.kube_context = String::new();
    rejected(&env, "kube_context", "no kubeconfig context is pinned");
}

#[test]
fn provider_settings_are_checked_and_sandbox_provider_is_sandbox_only() {
    let mut env = production();
    env.load_balancer = LoadBalancerProvider::Tke {
        cluster_id: "xxx".into(),
        subnet_id: "subnet-xxxxxx".into(),
        security_groups: vec![],
    };
    rejected(&env, "load_balancer.cluster_id", "not a TKE cluster id");
    env.load_balancer = LoadBalancerProvider::Tke {
        cluster_id: "cls-a1".into(),
        subnet_id: "subnet-xxxxxx".into(),
        security_groups: vec!["sg-ok1".into(), "0.0.0.0/0".into()],
    };
    rejected(
        &env,
        "load_balancer.security_groups[1]",
        "not a Tencent Cloud security group id",
    );
    env.load_balancer = LoadBalancerProvider::Sandbox;
    rejected(
        &env,
        "load_balancer",
        "only exists on the local Kubernetes API test server",
    );
    let mut env = sandbox();
    env.load_balancer = LoadBalancerProvider::Gke { subnet: None };
    rejected(
        &env,
        "load_balancer",
        "must use the sandbox load-balancer controller",
    );
    let mut env = production();
    env.load_balancer = LoadBalancerProvider::Aws {
        controller: manifests::AwsController::InTree,
        subnets: vec!["sn-1".into()],
    };
    rejected(&env, "load_balancer.subnets[0]", "not an AWS subnet id");
}

#[test]
fn every_provider_yields_an_internal_load_balancer() {
    use manifests::AwsController::*;
    let cases: Vec<(LoadBalancerProvider, (&str, &str))> = vec![
        (
            LoadBalancerProvider::Tke {
                cluster_id: "cls-a1".into(),
                subnet_id: "subnet-b2".into(),
                security_groups: vec!["sg-c3".into()],
            },
            (
                "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid",
                "subnet-b2",
            ),
        ),
        (
            LoadBalancerProvider::Aws {
                controller: InTree,
                subnets: vec![],
            },
            (
                "service.beta.kubernetes.io/aws-load-balancer-internal",
                "true",
            ),
        ),
        (
            LoadBalancerProvider::Aws {
                controller: LoadBalancerController,
                subnets: vec![],
            },
            (
                "service.beta.kubernetes.io/aws-load-balancer-scheme",
                "internal",
            ),
        ),
        (
            LoadBalancerProvider::Gke { subnet: None },
            ("networking.gke.io/load-balancer-type", "Internal"),
        ),
        (
            LoadBalancerProvider::Aks {
                subnet: None,
                deny_all_except_source_ranges: true,
            },
            (
                "service.beta.kubernetes.io/azure-load-balancer-internal",
                "true",
            ),
        ),
    ];
    for (provider, (key, value)) in cases {
        let mut env = production();
        env.load_balancer = provider.clone();
        assert!(!manifests::validate(&env).has_errors(), "{provider:?}");
        for o in manifests::objects::load_balancer_services(&env) {
            let Object::Service(s) = o else {
                unreachable!()
            };
            let annotations: &BTreeMap<String, String> = s.metadata.annotations.as_ref().unwrap();
            assert_eq!(
                annotations.get(key).map(String::as_str),
                Some(value),
                "{provider:?}"
            );
            assert_eq!(
                s.spec.as_ref().unwrap().type_.as_deref(),
                Some("LoadBalancer")
            );
        }
    }
}

#[test]
fn host_files_need_every_participant_address() {
    let mut env = production();
    env.ensemble.recorded_addresses.remove(&1);
    let err = manifests::render_host_files(&env, &manifests::AddressSource::Recorded)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "no load-balancer address is recorded for Service(s) zk1 of environment production"
        ),
        "{err}"
    );
    assert!(err.contains("cargo xtask apply --env production"), "{err}");
    // The manifests themselves do not need the addresses.
    assert!(manifests::render_manifests(&env).contains("name: zk1"));
    // Live addresses, when given, are used instead of the recorded ones.
    let live = BTreeMap::from([
        (0, ServerAddress::Ip(v4(10, 9, 0, 1))),
        (1, ServerAddress::Dns("zk1.internal.example".into())),
        (2, ServerAddress::Ip(v4(10, 9, 0, 3))),
    ]);
    let files = manifests::render_host_files(&env, &manifests::AddressSource::Live(live)).unwrap();
    assert!(files[0]
        .1
        .zoo_cfg
        .contains("\nserver.2=zk1.internal.example:2888:3888:participant\n"));
}

#[test]
fn production_is_what_the_runbook_deployed() {
    let env = production();
    assert_eq!(env.kind, EnvironmentKind::Production);
    assert_eq!(env.ensemble.namespace, "kube-public");
    assert_eq!(env.ensemble.replicas, 3);
    let observers: Vec<_> = env
        .fleet
        .observers
        .iter()
        .map(|o| (o.address, o.myid.get()))
        .collect();
    // The runbook's hosts, renumbered: its ids 4 and 5 are the ones the StatefulSet gives its
    // 4th and 5th participants when scaled out, so the observers moved to 104 and 105.
    assert_eq!(
        observers,
        [(v4(10, 104, 170, 174), 104), (v4(10, 104, 42, 205), 105)]
    );
    let lbs: Vec<String> = env
        .ensemble
        .recorded_addresses
        .values()
        .map(ToString::to_string)
        .collect();
    assert_eq!(lbs, ["10.1.0.12", "10.1.0.13", "10.1.0.6"]);
    assert!(matches!(
        env.load_balancer,
        LoadBalancerProvider::Tke { .. }
    ));
}

/// Inputs that once passed `check` and would have reached a host or the cluster (issue: deploy
/// safety under bad input). Each is refused with the field and the fix.
#[test]
fn strings_rendered_into_host_files_are_plain_absolute_paths() {
    let mut env = sandbox();
    env.fleet.layout.data_dir = "/data\nskipACL=yes";
    rejected(&env, "fleet.layout.data_dir", "characters other than");
    let mut env = sandbox();
    env.fleet.layout.data_log_dir = "datalog";
    rejected(&env, "fleet.layout.data_log_dir", "not an absolute path");
    let mut env = sandbox();
    env.fleet.layout.config_file = "/conf//zoo.cfg";
    rejected(&env, "fleet.layout.config_file", "not normalised");
}

#[test]
fn deploy_directories_are_directories_of_their_own() {
    for (dir, fragment) in [
        ("/etc", "system directory /etc"),
        ("/etc/zk", "system directory /etc"),
        ("/tmp", "system directory /tmp"),
        ("/usr/local/zk", "system directory /usr"),
        ("/var/lib", "other things share"),
        ("/opt", "other things share"),
        ("/opt/zk/", "not normalised"),
    ] {
        let mut env = sandbox();
        env.fleet.observers[0].deploy_dir = RemoteDir::new(dir);
        rejected(&env, "fleet.observers[0].deploy_dir", fragment);
    }
    let mut env = sandbox();
    env.fleet.observers[0].deploy_dir = RemoteDir::new("/opt/zk-observer");
    assert!(problems(&env, Severity::Error)
        .iter()
        .all(|p| p.field != "fleet.observers[0].deploy_dir"));
}

#[test]
fn images_are_pinned_to_a_patch_release_or_a_digest() {
    let mut env = production();
    env.fleet.image = ImageRef::new("zookeeper:3.8");
    rejected(&env, "fleet.image", "does not name a patch release");
    let mut env = production();
    env.fleet.metrics = Metrics::Exporter {
        image: ImageRef::new("josdotso/zookeeper-exporter:master"),
        port: port!(9141),
        reset_on_scrape: true,
    };
    rejected(&env, "fleet.metrics.image", "does not name a patch release");
    let mut env = production();
    env.fleet.image = ImageRef::new(&format!("zookeeper:3.8.6@sha256:{}", "z".repeat(64)));
    rejected(&env, "fleet.image", "64 lowercase hex digits");
    let mut env = production();
    env.fleet.image = ImageRef::new(&format!("zookeeper:3.8.6@sha256:{}", "0f".repeat(32)));
    assert!(problems(&env, Severity::Error).is_empty(), "a digest pins");
}

#[test]
fn an_observers_ports_never_collide() {
    let mut env = sandbox();
    env.fleet.zookeeper.client_port = port!(3888);
    rejected(
        &env,
        "fleet.zookeeper.client_port",
        "port 3888 is also ensemble.election_port",
    );
    let mut env = sandbox();
    env.fleet.zookeeper.admin_server = AdminServer::Enabled {
        address: v4(127, 0, 0, 1),
        port: port!(2888),
    };
    rejected(
        &env,
        "fleet.zookeeper.admin_server",
        "port 2888 is also ensemble.quorum_port",
    );
    let mut env = sandbox();
    env.fleet.metrics = Metrics::Exporter {
        image: ImageRef::new("zk-observers/zookeeper-exporter:1.0.0-standin"),
        port: port!(2181),
        reset_on_scrape: true,
    };
    rejected(
        &env,
        "fleet.metrics.port",
        "port 2181 is also fleet.zookeeper.client_port",
    );
}

#[test]
fn kubernetes_names_follow_the_apis_rules_derived_ones_included() {
    let mut env = sandbox();
    env.ensemble.service_name_prefix = "1zk".into();
    rejected(
        &env,
        "ensemble.service_name_prefix",
        "starting with a letter",
    );
    let mut env = sandbox();
    env.monitoring.service_name = "9-external".into();
    rejected(&env, "monitoring.service_name", "starting with a letter");
    let mut env = sandbox();
    env.ensemble.statefulset = "z".repeat(62);
    rejected(&env, "ensemble.statefulset", "not a valid label value");
}

/// Where `loadBalancerSourceRanges` alone restricts nothing (TKE without a CLB security group, an
/// internal AKS load balancer without the deny-all annotation), `check` warns naming the field;
/// with the setting the provider's annotations carry it and the warning goes.
#[test]
fn a_source_restriction_the_cloud_does_not_enforce_is_a_warning_naming_the_setting() {
    let warned = |env: &Environment, field: &str| {
        manifests::validate(env)
            .warnings()
            .any(|w| w.field == field && w.message.contains("not enforced"))
    };
    let mut env = production();
    assert!(
        warned(&env, "load_balancer.security_groups"),
        "the runbook's TKE CLB binds no security group"
    );
    env.load_balancer = LoadBalancerProvider::Tke {
        cluster_id: "cls-a1".into(),
        subnet_id: "subnet-b2".into(),
        security_groups: vec!["sg-c3".into()],
    };
    assert!(!warned(&env, "load_balancer.security_groups"));
    let annotations = env.load_balancer.annotations();
    assert_eq!(
        annotations["service.cloud.tencent.com/security-groups"],
        "sg-c3"
    );
    assert_eq!(
        annotations["service.cloud.tencent.com/pass-to-target"],
        "true"
    );
    env.load_balancer = LoadBalancerProvider::Aks {
        subnet: None,
        deny_all_except_source_ranges: false,
    };
    assert!(warned(&env, "load_balancer.deny_all_except_source_ranges"));
    env.load_balancer = LoadBalancerProvider::Aks {
        subnet: None,
        deny_all_except_source_ranges: true,
    };
    assert!(!warned(&env, "load_balancer.deny_all_except_source_ranges"));
    assert_eq!(
        env.load_balancer.annotations()
            ["service.beta.kubernetes.io/azure-deny-all-except-load-balancer-source-ranges"],
        "true"
    );
    for provider in [
        LoadBalancerProvider::Gke { subnet: None },
        LoadBalancerProvider::Aws {
            controller: manifests::AwsController::InTree,
            subnets: vec![],
        },
    ] {
        env.load_balancer = provider;
        assert!(env.load_balancer.source_restriction().gap.is_none());
    }
}

/// A NAT'd observer: its egress address (not its own) goes into the load balancers' source
/// ranges, its scrape address (not its own) into the monitoring Endpoints and EndpointSlice; bad
/// ones are refused naming the field.
#[test]
fn egress_and_scrape_addresses_go_where_the_network_sees_the_observer() {
    let mut env = production();
    env.fleet.observers[0].egress = vec![v4(10, 200, 0, 7)];
    env.fleet.observers[1].scrape = Some(v4(10, 200, 1, 9));
    assert!(
        !manifests::validate(&env).has_errors(),
        "{}",
        manifests::validate(&env)
    );
    assert_eq!(
        manifests::objects::source_ranges(&env),
        ["10.104.42.205/32", "10.200.0.7/32"],
        "observer 0 is seen from its egress address only"
    );
    let everyone: Vec<&hosts::Observer> = env.fleet.observers.iter().collect();
    let monitoring = manifests::objects::monitoring_objects(&env, &everyone);
    let addresses: Vec<String> = monitoring
        .iter()
        .find_map(|o| match o {
            Object::Endpoints(e) => Some(
                e.subsets
                    .iter()
                    .flatten()
                    .flat_map(|s| s.addresses.iter().flatten())
                    .map(|a| a.ip.clone())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap();
    assert_eq!(addresses, ["10.104.170.174", "10.200.1.9"]);

    env.fleet.observers[0].egress = vec![v4(0, 0, 0, 0)];
    rejected(
        &env,
        "fleet.observers[0].egress[0]",
        "not a unicast host address",
    );
    env.fleet.observers[0].egress = vec![];
    env.fleet.observers[0].scrape = Some(v4(10, 200, 1, 9));
    rejected(
        &env,
        "fleet.observers[1].scrape",
        "is also where Prometheus scrapes observers[0]",
    );
    let mut env = production();
    env.fleet.observers[0].egress = vec![v4(198, 18, 3, 4)];
    rejected(&env, "fleet.observers[0].egress[0]", "");
}

#[test]
fn jump_hosts_and_the_drift_key_are_checked() {
    let mut env = production();
    env.fleet.jump = vec![hosts::JumpHost {
        name: "Bastion!".into(),
        address: "not a host".into(),
        ssh: hosts::SshLogin {
            user: "-oProxyCommand=x".into(),
            port: hosts::port!(22),
        },
        host_key: HostKey::Pinned("ssh-ed25519 !!!".into()),
    }];
    rejected(&env, "fleet.jump[0].name", "not a DNS-1123 label");
    rejected(
        &env,
        "fleet.jump[0].address",
        "neither a host address nor a DNS name",
    );
    rejected(&env, "fleet.jump[0].ssh.user", "not a valid login name");
    rejected(&env, "fleet.jump[0].host_key", "");
    // A jump host may not take an observer's name or address: the generated SSH configuration
    // names hosts and pins their keys by those.
    let observer = env.fleet.observers[0].clone();
    env.fleet.jump[0].name = observer.name.clone();
    env.fleet.jump[0].address = observer.address.to_string();
    rejected(&env, "fleet.jump[0].name", "is also the name of observer");
    rejected(
        &env,
        "fleet.jump[0].address",
        "is also the address of observer",
    );
    env.fleet.jump = vec![];
    env.fleet.drift_key = Some("ssh-ed25519".into());
    rejected(&env, "fleet.drift_key", "");
}

#[test]
fn retired_observers_are_checked() {
    // Retiring one of two observers is valid as it stands.
    let mut env = sandbox();
    let observer = env.fleet.observers.remove(1);
    env.fleet.retired = vec![hosts::Retired {
        observer: observer.clone(),
        data: hosts::RetiredData::Wipe,
    }];
    assert!(
        problems(&env, Severity::Error).is_empty(),
        "{:#?}",
        problems(&env, Severity::Error)
    );
    // An observer is in service or retired, never both; nor does a retired one take an active
    // observer's host.
    let mut both = env.clone();
    both.fleet.observers.push(observer.clone());
    rejected(
        &both,
        "fleet.retired[0].observer.name",
        "is also an observer in service",
    );
    rejected(
        &both,
        "fleet.retired[0].observer.address",
        "is also the host of observer",
    );
    let mut twice = env.clone();
    twice.fleet.retired.push(twice.fleet.retired[0].clone());
    rejected(
        &twice,
        "fleet.retired[1].observer.name",
        "is also the name of retired[0]",
    );
    // Reachable the way deploy reaches it: a valid login, a pinned and parsable key, its deploy
    // directory a directory of its own.
    let mut broken = env.clone();
    let o = &mut broken.fleet.retired[0].observer;
    o.name = "Observer_2".into();
    o.ssh.user = "-oProxyCommand=x".into();
    o.host_key = HostKey::Pinned("ssh-ed25519 !!!".into());
    o.deploy_dir = RemoteDir::new("/");
    rejected(&broken, "fleet.retired[0].observer.name", "DNS-1123");
    rejected(
        &broken,
        "fleet.retired[0].observer.ssh.user",
        "not a valid login name",
    );
    rejected(&broken, "fleet.retired[0].observer.host_key", "");
    rejected(&broken, "fleet.retired[0].observer.deploy_dir", "");
    let mut unpinned = env.clone();
    unpinned.fleet.retired[0].observer.host_key = HostKey::NotPinned;
    warned(
        &unpinned,
        "fleet.retired[0].observer.host_key",
        "cannot retire this observer",
    );
    // A sandbox never names an address outside it, retired hosts included.
    let mut outside = env.clone();
    outside.fleet.retired[0].observer.address = v4(10, 104, 170, 174);
    rejected(
        &outside,
        "fleet.retired[0].observer.address",
        "outside the sandbox",
    );
    // A jump host may not take a retired observer's name either.
    let mut jump = production();
    let retired = jump.fleet.observers.remove(1);
    jump.fleet.retired = vec![hosts::Retired {
        observer: retired.clone(),
        data: hosts::RetiredData::Keep,
    }];
    jump.fleet.jump = vec![hosts::JumpHost {
        name: retired.name.clone(),
        address: "192.0.2.10".into(),
        ssh: hosts::SshLogin {
            user: "deploy".into(),
            port: hosts::port!(22),
        },
        host_key: HostKey::NotPinned,
    }];
    rejected(&jump, "fleet.jump[0].name", "is also the name of observer");
    // Retiring every observer is allowed (deploy still refuses without --force-retire), warned.
    let mut last = env.clone();
    let o = last.fleet.observers.remove(0);
    last.fleet.retired.push(hosts::Retired {
        observer: o,
        data: hosts::RetiredData::Keep,
    });
    warned(&last, "fleet.observers", "every observer is retired");
    // ... but not with nothing in the source ranges: an empty loadBalancerSourceRanges admits
    // every source.
    rejected(&last, "fleet.observers", "admits every source");
    last.extra_source_ranges = vec!["198.18.3.0/24".parse().unwrap()];
    assert!(
        problems(&last, Severity::Error).is_empty(),
        "{:#?}",
        problems(&last, Severity::Error)
    );
    // A retired entry for the machine an observer in service runs on (the same host key) would
    // stop that observer.
    let mut moved = env.clone();
    moved.fleet.retired[0].observer.host_key = moved.fleet.observers[0].host_key.clone();
    rejected(
        &moved,
        "fleet.retired[0].observer.host_key",
        "the same host key as observer zk-observer-1",
    );
}

#[test]
fn the_ensembles_quorum_tls_secret_and_mount_dir_are_checked() {
    let mut env = production();
    env.ensemble.quorum_tls.secret = "Quorum_TLS".into();
    rejected(
        &env,
        "ensemble.quorum_tls.secret",
        "`Quorum_TLS` is not a DNS-1123 subdomain",
    );
    for bad in ["quorum-tls", "/", "/quorum tls", "/quorum-tls/"] {
        let mut env = production();
        env.ensemble.quorum_tls.mount_dir = bad.into();
        rejected(
            &env,
            "ensemble.quorum_tls.mount_dir",
            "is not an absolute directory path",
        );
    }
}
