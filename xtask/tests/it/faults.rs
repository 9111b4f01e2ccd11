//! Faults during a deploy, on the real peers (sshd, dockerd, ZooKeeper in network namespaces) and
//! the API test server: signals, a host whose write fails, a directory where zoo.cfg belongs,
//! every host unreachable, a stolen lock. Each test is a row of docs/faults.md. Needs
//! root, as the sandbox does.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, host, json, mode, signal, stderr, when_stderr_says, Ended, World, NS};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

const OBS1: &str = "zk-observer-1";
const OBS2: &str = "zk-observer-2";
const LEASE: &str = "zk-observers-deploy-sandbox";

/// Polls until `host` observes (a restarted observer takes a few seconds to sync).
fn observing(w: &World, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while mode(w.sb(), host) != "observer" {
        assert!(Instant::now() < deadline, "{host} does not observe");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn lease(w: &World) -> Option<Value> {
    w.api.get("coordination.k8s.io/v1", "leases", NS, LEASE)
}

/// The drift findings about `host`'s files: `(kind, detail)`.
fn host_drift(w: &World, host_name: &str) -> Vec<(String, String)> {
    let (_, d) = w.drift();
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object"] == format!("host/{host_name}"))
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Each host's zoo.cfg before and after the pending change.
struct Configs {
    old: BTreeMap<&'static str, String>,
    new: BTreeMap<&'static str, String>,
}

impl Configs {
    /// That `host` has the old or the new zoo.cfg, never something else; whether the new one.
    fn old_or_new(&self, w: &World, host: &'static str) -> bool {
        let cfg = w.deployed(host, "zoo.cfg");
        assert!(
            cfg == self.old[host] || cfg == self.new[host],
            "{host}: old or new, never partial:\n{cfg}"
        );
        cfg == self.new[host]
    }
}

/// A deployed sandbox whose hosts' zoo.cfg was edited by hand (`syncLimit=3`): the next deploy
/// rolls the rendered one (`syncLimit=10`) out to both, one at a time.
fn deployed_with_a_change_pending(w: &World) -> Configs {
    w.deploy();
    let mut c = Configs {
        old: BTreeMap::new(),
        new: BTreeMap::new(),
    };
    for h in [OBS1, OBS2] {
        c.new.insert(h, w.deployed(h, "zoo.cfg"));
        w.edit(h, "zoo.cfg", "syncLimit=10", "syncLimit=3");
        c.old.insert(h, w.deployed(h, "zoo.cfg"));
    }
    c
}

#[test]
fn sigterm_and_ctrl_c_finish_the_host_in_flight_release_the_lock_and_exit_130() {
    let w = World::sandbox();
    let configs = deployed_with_a_change_pending(&w);

    // SIGTERM (a CI job cancelled, systemd stopping the runner) once the load balancers are seen.
    let ended = when_stderr_says(
        w.sandbox_cmd(&["deploy", "--yes"]),
        "load-balancer addresses",
        |pid| signal(pid, "TERM"),
    );
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("SIGTERM: finishing (or rolling back) the host in flight"),
        "{}",
        ended.stderr
    );
    assert!(
        ended.stdout.contains("not touched: interrupted by SIGTERM"),
        "the next host is left alone: {}",
        ended.stdout
    );
    assert!(lease(&w).is_none(), "the deploy lock is released");
    for h in [OBS1, OBS2] {
        configs.old_or_new(&w, h);
        observing(&w, h);
    }
    assert!(!configs.old_or_new(&w, OBS2), "{OBS2} was not touched");

    // Ctrl-C (SIGINT) mid-rollout: the host in flight is finished or rolled back, then the lock is
    // released and the deploy exits 130.
    let ended = when_stderr_says(
        w.sandbox_cmd(&["deploy", "--yes"]),
        &format!("{OBS1}: docker restart zookeeper"),
        |pid| signal(pid, "INT"),
    );
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(ended.stderr.contains("SIGINT"), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("the deploy stopped: interrupted by SIGINT"),
        "{}",
        ended.stderr
    );
    assert!(lease(&w).is_none(), "the deploy lock is released");
    // `deploy --dry-run` is not refused by the lock: it plans (changes pending: exit 2).
    let out = w.on_sandbox(&["deploy", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Every observer serves the old or the new config, and drift says which.
    for h in [OBS1, OBS2] {
        observing(&w, h);
        let drifted = host_drift(&w, h);
        if configs.old_or_new(&w, h) {
            assert!(drifted.is_empty(), "{h} has the new config: {drifted:?}");
        } else {
            assert_eq!(
                drifted,
                [(
                    "host-files".to_string(),
                    "zoo.cfg differ from the code".to_string()
                )],
                "{h} has the old config"
            );
        }
    }
    // And a deploy finishes what was interrupted.
    let r = w.deploy();
    assert_eq!(r["stopped"], Value::Null);
    assert_eq!(w.drift().0, 0);
}

#[test]
fn a_host_whose_write_fails_keeps_serving_and_the_rollout_stops() {
    let w = World::sandbox();
    let configs = deployed_with_a_change_pending(&w);
    let started = w.started_at(OBS1);
    // A full disk on zk-observer-1, as its sshd sees it: a 64 KiB tmpfs over the deploy
    // directory, holding the deployed files and a filler up to the last byte (the running
    // containers keep the directory they were started with).
    let dir = w.sb().host(OBS1).deploy_dir.display().to_string();
    let fill = format!(
        "set -e; d={dir}; cp -a $d /tmp/keep; mount -t tmpfs -o size=64k tmpfs $d; cp -a /tmp/keep/. $d/; \
         dd if=/dev/zero of=$d/filler bs=1k 2>/dev/null || true; rm -rf /tmp/keep"
    );
    let mut ssh = w.sb().ssh(w.sb().host(OBS1).address);
    assert!(ssh.arg(&fill).status().unwrap().success());

    let out = w.on_sandbox(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let h1 = host(&r, OBS1);
    assert_eq!(h1["result"], "rolled-back", "{h1}");
    let detail = h1["detail"].as_str().unwrap();
    assert!(
        detail.contains("No space left on device")
            && detail.contains("nothing was written, so nothing was undone; still serving"),
        "{detail}"
    );
    assert_eq!(host(&r, OBS2)["result"], "not-touched");
    // The healthy observer was not stopped or restarted, and nothing half-written is left.
    assert_eq!(w.started_at(OBS1), started, "{OBS1} was not restarted");
    assert_eq!(mode(w.sb(), OBS1), "observer");
    let mut ls = w.sb().ssh(w.sb().host(OBS1).address);
    let listing = ls.arg(format!("ls -A {dir}")).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(!listing.contains(".tmp"), "{listing}");
    assert!(
        listing.lines().any(|l| l == "zoo.cfg"),
        "zoo.cfg is still there: {listing}"
    );
    // Monitoring still lists both observers.
    assert_eq!(
        r["monitored_observers"],
        serde_json::json!([OBS1, OBS2]),
        "{r}"
    );

    // Space again: the next deploy converges.
    let mut umount = w.sb().ssh(w.sb().host(OBS1).address);
    assert!(umount
        .arg(format!("umount {dir}"))
        .status()
        .unwrap()
        .success());
    assert!(!configs.old_or_new(&w, OBS1), "the old zoo.cfg is intact");
    w.deploy();
    assert_eq!(w.drift().0, 0);
}

#[test]
fn a_missing_zoo_cfg_is_never_made_a_directory_and_a_directory_is_repaired() {
    let w = World::sandbox();
    w.deploy();
    let zoo_cfg = w.sb().host(OBS1).deploy_dir.join("zoo.cfg");
    let zk = w.sb().host(OBS1).container_id("zookeeper").unwrap();

    // zoo.cfg deleted, then the container restarted (a reboot): with the long bind syntax docker
    // refuses the missing source instead of creating a directory there.
    std::fs::remove_file(&zoo_cfg).unwrap();
    let restart = w.sb().host(OBS1).docker(&["restart", &zk]);
    let err = format!("{:#}", restart.unwrap_err());
    // (The API refuses a new container with "bind source path does not exist"; a restart fails
    // in the runtime's mount.)
    assert!(
        err.contains("bind source path does not exist")
            || err.contains("no such file or directory"),
        "{err}"
    );
    assert!(!zoo_cfg.exists(), "no directory in its place");
    let drift = host_drift(&w, OBS1);
    assert!(
        drift.contains(&(
            "host-files".to_string(),
            "zoo.cfg differ from the code".to_string()
        )),
        "{drift:?}"
    );
    let out = w.on_sandbox(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(host(&json(&out), OBS1)["result"], "updated");
    observing(&w, OBS1);

    // A directory where zoo.cfg belongs (what docker made of a missing short-syntax source, as an
    // older compose file had it): drift says so, and deploy replaces it.
    w.sb()
        .host(OBS1)
        .docker(&[
            "rm",
            "-f",
            &w.sb().host(OBS1).container_id("zookeeper").unwrap(),
        ])
        .unwrap();
    std::fs::remove_file(&zoo_cfg).unwrap();
    std::fs::create_dir(&zoo_cfg).unwrap();
    let drift = host_drift(&w, OBS1);
    assert!(
        drift.contains(&(
            "host-files".to_string(),
            "zoo.cfg differ from the code; a directory stands where zoo.cfg belongs".to_string()
        )),
        "{drift:?}"
    );
    let out = w.on_sandbox(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let h1 = host(&json(&out), OBS1).clone();
    assert_eq!(h1["result"], "updated", "{h1}");
    assert!(zoo_cfg.is_file());
    observing(&w, OBS1);
    assert_eq!(w.drift().0, 0);
}

/// The observers the monitoring Endpoints and EndpointSlice list, as addresses.
fn monitored(w: &World) -> (Vec<String>, Vec<String>) {
    let name = "sandbox-zookeeper-external";
    let ep = w.api.get("v1", "endpoints", NS, name).unwrap();
    let mut from_ep: Vec<String> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect();
    let slice = w
        .api
        .get(
            "discovery.k8s.io/v1",
            "endpointslices",
            NS,
            &format!("{name}-ipv4"),
        )
        .unwrap();
    let mut from_slice: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    from_ep.sort();
    from_slice.sort();
    (from_ep, from_slice)
}

#[test]
fn a_deploy_with_every_host_unreachable_keeps_monitoring_every_observer_and_exits_1() {
    let w = World::sandbox();
    w.deploy();
    let everyone = vec!["198.18.1.4".to_string(), "198.18.1.5".to_string()];
    assert_eq!(monitored(&w), (everyone.clone(), everyone.clone()));
    for h in [OBS1, OBS2] {
        w.sb().host(h).set_link(false).unwrap();
    }
    let out = w.on_sandbox(&[
        "deploy",
        "--yes",
        "--output",
        "json",
        "--connect-timeout",
        "3s",
    ]);
    for h in [OBS1, OBS2] {
        w.sb().host(h).set_link(true).unwrap();
    }
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(host(&r, OBS1)["result"], "unreachable");
    assert_eq!(host(&r, OBS2)["result"], "unreachable");
    assert_eq!(r["monitored_observers"], serde_json::json!([OBS1, OBS2]));
    assert_eq!(r["unhealthy_observers"], serde_json::json!([OBS1, OBS2]));
    // A dead observer stays a scrape target: that is how `up == 0` notices it.
    assert_eq!(monitored(&w), (everyone.clone(), everyone));
    assert!(lease(&w).is_none(), "the deploy lock is released on error");
}

#[test]
fn a_stolen_lease_stops_the_deploy_before_its_next_write() {
    let w = World::sandbox();
    let configs = deployed_with_a_change_pending(&w);
    // While zk-observer-1 restarts, an operator breaks the lock (`--break-lock` elsewhere).
    let ended = when_stderr_says(
        w.sandbox_cmd(&["deploy", "--yes"]),
        &format!("{OBS1}: docker restart zookeeper"),
        |_| {
            w.client(async |c| {
                let leases: kube::Api<Lease> = kube::Api::namespaced(c, NS);
                let mut l = leases.get(LEASE).await.unwrap();
                l.spec.as_mut().unwrap().holder_identity = Some("bob@elsewhere pid 7".into());
                leases
                    .replace(LEASE, &Default::default(), &l)
                    .await
                    .unwrap();
            })
        },
    );
    assert_eq!(ended.code, Some(1), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(
            "the deploy lock was taken over: the Lease zookeeper/zk-observers-deploy-sandbox is now held by bob@elsewhere pid 7"
        ),
        "{}",
        ended.stderr
    );
    assert!(!configs.old_or_new(&w, OBS2), "{OBS2} was not touched");
    // The new holder's Lease is left alone (the release's precondition).
    let l = lease(&w).expect("bob's Lease is still there");
    assert_eq!(l["spec"]["holderIdentity"], "bob@elsewhere pid 7");
}

/// Polls `srvr` on every host of `sb` until stopped; the most observers seen out of service at one
/// moment (not answering `Mode: observer`).
struct OutOfService {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    poller: std::thread::JoinHandle<usize>,
}

impl OutOfService {
    fn watch(sb: &sandbox::Sandbox) -> OutOfService {
        use std::sync::atomic::{AtomicBool, Ordering};
        let addresses: Vec<String> = sb.hosts.iter().map(|h| h.address.to_string()).collect();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let poller = std::thread::spawn(move || {
            let mut most = 0;
            while !s.load(Ordering::SeqCst) {
                let down = std::thread::scope(|scope| {
                    let asks: Vec<_> = addresses
                        .iter()
                        .map(|a| {
                            scope.spawn(move || {
                                sandbox::harness::four_letter_word(a, 2181, "srvr")
                                    .map(|r| r.contains("Mode: observer"))
                                    .unwrap_or(false)
                            })
                        })
                        .collect();
                    asks.into_iter()
                        .map(|a| a.join().unwrap())
                        .filter(|up| !up)
                        .count()
                });
                most = most.max(down);
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        OutOfService { stop, poller }
    }

    fn most(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.poller.join().unwrap()
    }
}

#[test]
fn batches_never_take_more_observers_out_of_service_than_the_budget_and_a_failed_batch_stops_the_rollout(
) {
    use xtask::cli::{
        AddressChoice, ClusterArgs, ClusterSelection, HostTargets, MaxUnavailable, OutputFormat,
        PushArgs, RolloutArgs, SshArgs,
    };
    use xtask::output::report::Outcome as _;
    // Four observers (the benchmark's generated environment), one test-only host key.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("host_ed25519_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let private = std::fs::read_to_string(&key).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let env = sandbox::harness::bench::environment(4, public.trim());
    let sb = sandbox::Sandbox::start_with(env.clone(), &|_| private.clone(), Default::default())
        .expect("the sandbox starts");
    let observers: Vec<&hosts::Observer> = env.fleet.observers.iter().collect();
    let args = |max_unavailable: MaxUnavailable| PushArgs {
        selection: ClusterSelection {
            env: Some(env.name.clone()),
        },
        yes: true,
        targets: HostTargets {
            hosts: vec![],
            addresses: AddressChoice::Recorded,
        },
        dry_run: false,
        rollout: RolloutArgs {
            health_timeout: Duration::from_secs(20),
            max_unavailable,
        },
        lock: Default::default(),
        ssh: SshArgs {
            identity: Some(sb.ssh_identity().to_path_buf()),
            connect_timeout: Duration::from_secs(10),
            parallel: 8,
        },
        cluster: ClusterArgs::default(),
    };
    let push = |env: &manifests::Environment, max: MaxUnavailable| {
        let files = manifests::render_host_files(env, &manifests::AddressSource::Recorded).unwrap();
        xtask::cluster::block_on(xtask::commands::push::push(
            env,
            &observers,
            &files,
            &args(max),
            OutputFormat::Json,
            xtask::lock::Guard::NONE,
        ))
        .unwrap()
        .hosts
    };
    let results = |hosts: &[xtask::output::report::HostReport]| -> Vec<String> {
        hosts.iter().map(|h| h.result.word().to_string()).collect()
    };
    let two = MaxUnavailable::Count(2);
    assert_eq!(results(&push(&env, two)), ["updated"; 4]);

    // A config change, two hosts at a time: never more than two observers out of service.
    let mut changed = env.clone();
    changed.fleet.zookeeper.sync_limit += 1;
    let watch = OutOfService::watch(&sb);
    let hosts = push(&changed, two);
    let most = watch.most();
    assert_eq!(results(&hosts), ["updated"; 4]);
    assert!(most <= 2, "{most} observers were out of service at once");
    assert!(most >= 1, "the watch saw the restarts");
    // Each batch together, the next only after it was healthy.
    let (b1, b2) = (&hosts[0..2], &hosts[2..4]);
    let healthy =
        |b: &[xtask::output::report::HostReport]| b.iter().map(|h| h.healthy_ms.unwrap()).max();
    let started = |b: &[xtask::output::report::HostReport]| {
        b.iter().map(|h| h.restart_started_ms.unwrap()).min()
    };
    assert!(
        started(b2) >= healthy(b1),
        "batch 2 started after batch 1 was healthy"
    );
    assert!(
        b1[1].restart_started_ms < b1[0].healthy_ms,
        "the hosts of a batch restart together"
    );
    for h in &hosts {
        let spent = h.spent.unwrap();
        assert!(spent.docker_ms > 0 && spent.zookeeper_ms > 0, "{spent:?}");
    }

    // Addresses where no ZooKeeper listens: the first batch fails, is rolled back, and the second
    // never starts.
    let mut moved = changed.clone();
    for (i, address) in moved.ensemble.recorded_addresses.iter_mut() {
        *address = hosts::ServerAddress::Ip(format!("198.18.0.{}", 97 + i).parse().unwrap());
    }
    let watch = OutOfService::watch(&sb);
    let hosts = push(&moved, two);
    let most = watch.most();
    assert_eq!(
        results(&hosts),
        ["rolled-back", "rolled-back", "not-touched", "not-touched"]
    );
    assert!(
        most <= 2,
        "{most} observers were out of service at once during the failed batch and its rollback"
    );
    assert!(most >= 1, "the watch saw the failed batch");
    assert!(
        hosts[2]
            .detail
            .contains("the rollout stopped at bench-obs-1, bench-obs-2"),
        "{}",
        hosts[2].detail
    );
    for h in &sb.hosts {
        observing_at(&h.address.to_string());
    }
}

/// Polls until the observer at `address` observes.
fn observing_at(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sandbox::harness::four_letter_word(address, 2181, "srvr")
        .is_ok_and(|r| r.contains("Mode: observer"))
    {
        assert!(Instant::now() < deadline, "{address} does not observe");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn an_observer_behind_nat_is_refused_until_its_egress_is_declared() {
    let w = World::sandbox();
    w.deploy();
    observing(&w, OBS1);
    // An observer that is down while the load balancers are reachable is not said to be refused.
    let zk2 = w.sb().host(OBS2).container_id("zookeeper").unwrap();
    w.sb().host(OBS2).docker(&["stop", &zk2]).unwrap();
    let drift = host_drift(&w, OBS2);
    assert!(
        drift
            .iter()
            .any(|(kind, _)| kind == "observer-not-observing")
            && !drift
                .iter()
                .any(|(kind, _)| kind == "load-balancer-unreachable"),
        "{drift:?}"
    );
    // zk-observer-1's traffic to the load balancers now leaves from 198.18.3.4 (source NAT), which
    // their loadBalancerSourceRanges do not list: the cloud's firewall drops it. Restarted, the
    // observer cannot join.
    let egress: std::net::IpAddr = "198.18.3.4".parse().unwrap();
    sandbox::harness::netns::nat_egress(OBS1, egress).unwrap();
    let zk = w.sb().host(OBS1).container_id("zookeeper").unwrap();
    w.sb().host(OBS1).docker(&["restart", &zk]).unwrap();
    let drift = host_drift(&w, OBS1);
    let refused = drift
        .iter()
        .find(|(kind, _)| kind == "load-balancer-unreachable")
        .unwrap_or_else(|| panic!("drift names the refused observer: {drift:?}"));
    assert!(
        refused
            .1
            .contains("198.18.0.11:3888 (no answer within 3 s)")
            && refused.1.contains("admit 198.18.1.4/32, 198.18.1.5/32")
            && refused.1.contains("record it as fleet.observers[0].egress"),
        "{}",
        refused.1
    );
    assert_ne!(mode(w.sb(), OBS1), "observer");

    // Declared: the load balancers admit the egress address, and the observer joins.
    let mut env = manifests::environments::sandbox::environment();
    env.fleet.observers[0].egress = vec![egress];
    assert!(!manifests::validate(&env).has_errors());
    assert!(manifests::objects::source_ranges(&env).contains(&"198.18.3.4/32".to_string()));
    let args = common::deploy_args(&w, &env);
    xtask::cluster::block_on(async {
        let cluster = xtask::cluster::Cluster::connect(&env, &args.cluster, args.timeout).await?;
        xtask::commands::deploy::deploy(
            &cluster,
            &env,
            &args,
            xtask::cli::OutputFormat::Json,
            xtask::lock::Guard::NONE,
        )
        .await
    })
    .unwrap();
    let zk0 = w.service("zk0").unwrap();
    assert!(
        zk0["spec"]["loadBalancerSourceRanges"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("198.18.3.4/32")),
        "{zk0}"
    );
    observing(&w, OBS1);
}

/// Runs `cmd` on a terminal of its own (a pty, through util-linux's `script`), and when it asks
/// `[y/N]` types `keys` there; returns how it ended (stdout: everything the terminal showed).
fn at_the_prompt(cmd: &Command, keys: &[u8], at_prompt: impl FnOnce()) -> Ended {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let quote = |s: &std::ffi::OsStr| {
        format!(
            "'{}'",
            String::from_utf8_lossy(s.as_bytes()).replace('\'', r"'\''")
        )
    };
    let mut line = quote(cmd.get_program());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut script = Command::new("script");
    script
        .args(["-q", "-f", "-e", "-c", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script.spawn().unwrap();
    let mut keyboard = child.stdin.take().unwrap();
    let mut screen = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    let mut at_prompt = Some(at_prompt);
    loop {
        let n = screen.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
        if at_prompt.is_some() && String::from_utf8_lossy(&shown).contains("[y/N]") {
            (at_prompt.take().unwrap())();
            keyboard.write_all(keys).unwrap();
            keyboard.flush().unwrap();
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let stdout = String::from_utf8_lossy(&shown).into_owned();
    eprintln!("--- terminal\n{stdout}--- stderr\n{err}");
    assert!(at_prompt.is_none(), "the command never asked");
    Ended {
        code: status.code(),
        stdout,
        stderr: err,
    }
}

/// Ctrl-C at the confirmation prompt (typed on the terminal, where the line discipline turns it
/// into SIGINT): nothing is changed, exit 130. No lock is held while the prompt waits: it is
/// taken after the answer (an operator idling at the prompt holds up neither another deploy nor
/// drift). This test asserted the opposite until the lock moved behind the prompt (issue 21).
#[test]
fn ctrl_c_at_the_prompt_changes_nothing_takes_no_lock_and_exits_130() {
    let w = World::sandbox();
    let ended = at_the_prompt(&w.sandbox_cmd(&["deploy"]), b"\x03", || {
        assert!(
            lease(&w).is_none(),
            "no lock is held while the prompt waits"
        );
    });
    assert_eq!(ended.code, Some(130), "{}", ended.stdout);
    assert!(
        ended
            .stdout
            .contains("the deploy stopped: interrupted by SIGINT"),
        "{}",
        ended.stdout
    );
    assert!(lease(&w).is_none(), "no deploy lock was taken");
    assert_eq!(w.managed_writes(), 0, "nothing was changed");
    for h in [OBS1, OBS2] {
        assert!(
            !w.sb().host(h).deploy_dir.join("zoo.cfg").exists(),
            "{h}: nothing written"
        );
    }
}

/// The interactive deploy shows the plan before it asks (with --output json on stderr, stdout
/// keeping the report), holds no lock while the operator reads, and compares the plan that was
/// confirmed with the one it takes the lock for: what moved meanwhile (a hand edit on a host) is
/// refused, naming it; unmoved, the confirmed plan is carried out.
#[test]
fn the_prompt_holds_no_lock_and_a_plan_that_moved_while_read_is_refused() {
    let w = World::sandbox();
    w.deploy();
    w.edit(OBS2, "zoo.cfg", "maxClientCnxns=60", "maxClientCnxns=61");
    for moves in [true, false] {
        let cmd = w.sandbox_cmd(&["deploy", "--output", "json"]);
        let ended = at_the_prompt(&cmd, b"y\n", || {
            assert!(
                lease(&w).is_none(),
                "no lock is held while the operator reads"
            );
            if moves {
                w.edit(OBS1, "zoo.cfg", "maxClientCnxns=60", "maxClientCnxns=62");
            }
        });
        let shown = &ended.stdout;
        let plan = shown
            .find("update host zk-observer-2")
            .expect("the plan is shown");
        assert!(
            plan < shown.find("[y/N]").unwrap(),
            "before the prompt: {shown}"
        );
        if moves {
            assert_eq!(ended.code, Some(1), "{shown}");
            assert!(
                shown.contains("the plan you confirmed no longer matches the live state"),
                "{shown}"
            );
            assert!(
                shown.contains("host zk-observer-1: zoo.cfg on the host changed since the plan"),
                "{shown}"
            );
            assert!(
                w.deployed(OBS2, "zoo.cfg").contains("maxClientCnxns=61"),
                "nothing written"
            );
        } else {
            assert_eq!(ended.code, Some(0), "{shown}");
            for h in [OBS1, OBS2] {
                assert!(
                    w.deployed(h, "zoo.cfg").contains("maxClientCnxns=60"),
                    "{h}"
                );
            }
        }
        assert!(lease(&w).is_none(), "the lock is released");
    }
}
