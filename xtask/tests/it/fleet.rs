//! The observer side (`cargo xtask push` and `status`) driven through the real binary against real
//! peers: observer hosts in network namespaces running OpenSSH's sshd and a dockerd each, and a
//! real three-server ZooKeeper ensemble that cannot open connections to them. Needs root; the
//! sandbox (sandbox/src/harness) sets everything up and tears it down.

use std::time::Duration;

use crate::common::{self, host, json, mode, World};
use sandbox::harness::Ensemble;
use sandbox::Sandbox;

const OBS1: &str = "zk-observer-1";
const OBS2: &str = "zk-observer-2";

fn started_at(sb: &Sandbox, name: &str) -> String {
    common::started_at(sb.host(name))
}

fn deployed(sb: &Sandbox, name: &str, file: &str) -> String {
    std::fs::read_to_string(sb.host(name).deploy_dir.join(file)).unwrap()
}

fn mtime(sb: &Sandbox, name: &str, file: &str) -> std::time::SystemTime {
    std::fs::metadata(sb.host(name).deploy_dir.join(file))
        .unwrap()
        .modified()
        .unwrap()
}

fn first_push(w: &World) {
    let out = w.on_sandbox(&["push", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "first push");
    let r = json(&out);
    assert_eq!(host(&r, OBS1)["result"], "updated");
    assert_eq!(host(&r, OBS2)["result"], "updated");
}

#[test]
fn first_push_makes_real_observers_and_a_second_push_changes_nothing() {
    let w = World::sandbox();
    let sb = w.sb();
    let out = w.on_sandbox(&["push", "--yes", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a dry run on empty hosts shows changes"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+server.104=0.0.0.0:2888:3888:observer"));
    assert!(
        !sb.host(OBS1).deploy_dir.join("zoo.cfg").exists(),
        "a dry run writes nothing"
    );

    first_push(&w);
    assert_eq!(mode(sb, OBS1), "observer");
    assert_eq!(mode(sb, OBS2), "observer");
    // myid comes from the image's entrypoint; data and log directories need no manual chown.
    let myid = std::fs::read_to_string(sb.host(OBS1).deploy_dir.join("data/myid")).unwrap();
    assert_eq!(myid.trim(), "104");

    // A value written on the leader is served by each observer.
    let ens = sb.ensemble.as_ref().unwrap();
    let leader = ens.leader().expect("a leader");
    let created = Ensemble::cli(
        &format!("{}:2181", leader.address),
        &["create", "/probe", "hello-from-the-leader"],
    )
    .unwrap();
    assert!(created.contains("Created /probe"), "{created}");
    for name in [OBS1, OBS2] {
        let got = Ensemble::cli(
            &format!("{}:2181", sb.host(name).address),
            &["get", "/probe"],
        )
        .unwrap();
        assert!(got.contains("hello-from-the-leader"), "{name}: {got}");
    }

    // A second push writes nothing and restarts nothing.
    let before = (
        started_at(sb, OBS1),
        started_at(sb, OBS2),
        mtime(sb, OBS1, "zoo.cfg"),
        mtime(sb, OBS2, "docker-compose.yaml"),
    );
    let out = w.on_sandbox(&["push", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let r = json(&out);
    for name in [OBS1, OBS2] {
        assert_eq!(host(&r, name)["result"], "unchanged");
        assert_eq!(host(&r, name)["restarted"], false);
    }
    let after = (
        started_at(sb, OBS1),
        started_at(sb, OBS2),
        mtime(sb, OBS1, "zoo.cfg"),
        mtime(sb, OBS2, "docker-compose.yaml"),
    );
    assert_eq!(before, after, "no write, no restart");

    let out = w.on_sandbox(&["status", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    for h in json(&out)["hosts"].as_array().unwrap() {
        assert_eq!(h["reachable"], true);
        assert_eq!(h["files_in_sync"], true);
        assert_eq!(h["containers_running"], true);
        assert_eq!(h["mode"], "observer");
        assert_eq!(h["synced"], true);
        assert_eq!(h["exporter"], true);
    }
    let out = w.on_sandbox(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(OBS1) && l.contains("observer")),
        "{text}"
    );
}

#[test]
fn a_config_change_restarts_hosts_one_at_a_time() {
    let w = World::sandbox();
    let sb = w.sb();
    first_push(&w);
    // Someone edits zoo.cfg on both hosts; push puts the rendered one back.
    for name in [OBS1, OBS2] {
        w.edit(name, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    }
    let before = (started_at(sb, OBS1), started_at(sb, OBS2));
    let out = w.on_sandbox(&["push", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let r = json(&out);
    let (h1, h2) = (host(&r, OBS1), host(&r, OBS2));
    assert_eq!(h1["result"], "updated");
    assert_eq!(h2["result"], "updated");
    assert_eq!(
        h1["changed_files"],
        serde_json::json!(["zoo.cfg"]),
        "only the edited file is written"
    );
    assert!(h1["diff"]
        .as_str()
        .unwrap()
        .contains("-syncLimit=3\n+syncLimit=10\n"));
    let healthy1 = h1["healthy_ms"].as_u64().unwrap();
    let restart2 = h2["restart_started_ms"].as_u64().unwrap();
    assert!(
        restart2 >= healthy1,
        "host 2 restarted ({restart2} ms) only after host 1 was healthy ({healthy1} ms)"
    );
    let after = (started_at(sb, OBS1), started_at(sb, OBS2));
    assert_ne!(before.0, after.0, "{OBS1} restarted");
    assert_ne!(before.1, after.1, "{OBS2} restarted");
    assert!(deployed(sb, OBS1, "zoo.cfg").contains("\nsyncLimit=10\n"));
    assert_eq!(mode(sb, OBS1), "observer");
}

#[test]
fn a_config_that_cannot_sync_is_rolled_back_and_the_rest_is_left_alone() {
    let w = World::sandbox();
    let sb = w.sb();
    first_push(&w);
    let good = deployed(sb, OBS1, "zoo.cfg");
    let untouched = started_at(sb, OBS2);

    // The cluster's load balancers now report addresses where no ZooKeeper listens.
    let moved = World::cluster(sandbox::Config {
        namespaces: vec!["zookeeper".into()],
        load_balancer: sandbox::LoadBalancerMode::After(Duration::from_millis(100)),
        lb_addresses: [
            ("zk0", "198.18.0.97"),
            ("zk1", "198.18.0.98"),
            ("zk2", "198.18.0.99"),
        ]
        .into_iter()
        .map(|(s, a)| (format!("zookeeper/{s}"), a.to_string()))
        .collect(),
        ..sandbox::Config::default()
    });
    let apply = moved.run(&[
        "apply",
        "--yes",
        "--env",
        "sandbox",
        "--timeout",
        "20s",
        "--accept-live-addresses",
    ]);
    assert_eq!(apply.status.code(), Some(0));
    let mut push = moved.cmd(&[
        "push",
        "--yes",
        "--env",
        "sandbox",
        "--addresses",
        "live",
        "--health-timeout",
        "15s",
        "--output",
        "json",
        "--identity",
    ]);
    push.arg(sb.ssh_identity());
    let out = common::run(&mut push);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let (h1, h2) = (host(&r, OBS1), host(&r, OBS2));
    assert_eq!(h1["result"], "rolled-back");
    let detail = h1["detail"].as_str().unwrap();
    assert!(detail.contains("health gate failed after 15s"), "{detail}");
    assert!(
        detail.contains("previous files restored and containers restarted; observing - broadcast"),
        "health is checked again after the rollback: {detail}"
    );
    assert_eq!(h2["result"], "not-touched");
    assert!(h2["detail"]
        .as_str()
        .unwrap()
        .contains("the rollout stopped at zk-observer-1"));

    assert_eq!(
        deployed(sb, OBS1, "zoo.cfg"),
        good,
        "previous zoo.cfg restored"
    );
    assert!(!deployed(sb, OBS2, "zoo.cfg").contains("198.18.0.97"));
    assert_eq!(started_at(sb, OBS2), untouched, "{OBS2} was not restarted");
    // The rolled-back host observes again.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while mode(sb, OBS1) != "observer" {
        assert!(
            std::time::Instant::now() < deadline,
            "{OBS1} did not come back after the rollback"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_unreachable_host_is_reported_while_the_others_proceed() {
    let w = World::sandbox();
    let sb = w.sb();
    first_push(&w);
    for name in [OBS1, OBS2] {
        w.edit(name, "zoo.cfg", "initLimit=5", "initLimit=6");
    }
    sb.host(OBS2).set_link(false).unwrap();
    let out = w.on_sandbox(&[
        "push",
        "--yes",
        "--output",
        "json",
        "--connect-timeout",
        "3s",
    ]);
    sb.host(OBS2).set_link(true).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(host(&r, OBS1)["result"], "updated");
    assert_eq!(host(&r, OBS2)["result"], "unreachable");
    assert!(
        host(&r, OBS2)["detail"]
            .as_str()
            .unwrap()
            .contains("198.18.1.5"),
        "{}",
        host(&r, OBS2)["detail"]
    );
    assert!(deployed(sb, OBS1, "zoo.cfg").contains("\ninitLimit=5\n"));
}

#[test]
fn a_host_key_mismatch_is_refused_showing_both_fingerprints() {
    let mut w = World::sandbox();
    let dir = tempfile::tempdir().unwrap();
    let (impostor, presented) = common::impostor_key(dir.path());
    w.sb_mut()
        .hosts
        .iter_mut()
        .find(|h| h.name == OBS1)
        .unwrap()
        .start_sshd(&impostor)
        .unwrap();

    let out = w.on_sandbox(&["push", "--yes", "--host", OBS1]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("does not match the pinned one; refusing to connect"),
        "{text}"
    );
    assert!(text.contains("pinned:    SHA256:"), "{text}");
    assert!(text.contains(&format!("presented: {presented}")), "{text}");
    assert!(
        !w.sb().host(OBS1).deploy_dir.join("zoo.cfg").exists(),
        "nothing was written"
    );
}

#[test]
fn an_interrupted_upload_leaves_the_old_file_and_a_rerun_converges() {
    let w = World::sandbox();
    let sb = w.sb();
    first_push(&w);
    let old = deployed(sb, OBS1, "zoo.cfg");
    let dir = sb.host(OBS1).deploy_dir.display().to_string();

    // The upload protocol itself: a stream cut short never replaces the file.
    let new = old.replace("syncLimit=10", "syncLimit=7");
    let sum = xtask::fleet::hostops::sha256_hex(new.as_bytes());
    let mut ssh = sb.ssh("198.18.1.4");
    ssh.arg(format!(
        "sh -c '{}' zk-observers {dir} zoo.cfg {sum} 1000 1000",
        xtask::fleet::hostops::Script::Write
            .text()
            .replace('\'', "'\\''")
    ))
    .stdin(std::process::Stdio::piped());
    let mut child = ssh.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&new.as_bytes()[..new.len() / 2]).unwrap();
    } // the connection's stdin closes half-way, as when the pushing process dies
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the short upload is detected");
    assert_eq!(deployed(sb, OBS1, "zoo.cfg"), old, "the old file is intact");
    let leftovers: Vec<_> = std::fs::read_dir(sb.host(OBS1).deploy_dir.clone())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A push killed while it uploads: the files are old or new, never partial, and a rerun converges.
    std::fs::write(
        sb.host(OBS1).deploy_dir.join("zoo.cfg"),
        old.replace("syncLimit=10", "syncLimit=2"),
    )
    .unwrap();
    let mut push = w.sandbox_cmd(&["push", "--yes"]);
    push.env("RUST_LOG", "xtask=debug");
    push.stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = push.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "push ended before uploading");
        if line.contains("uploading") {
            child.kill().unwrap();
            break;
        }
    }
    let killed = child.id();
    child.wait().unwrap();
    let now = deployed(sb, OBS1, "zoo.cfg");
    assert!(
        now == old || now == old.replace("syncLimit=10", "syncLimit=2"),
        "never partial:\n{now}"
    );
    // SIGKILL leaves no chance to release the deploy lock: the next push is refused, naming the
    // dead holder, until the Lease expires or an operator who knows it is dead breaks it.
    let out = w.on_sandbox(&["push", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("another deploy of sandbox is in progress")
            && err.contains(&format!("pid {killed}"))
            && err.contains("--break-lock"),
        "{err}"
    );
    let out = w.on_sandbox(&["push", "--yes", "--break-lock"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        common::stderr(&out).contains("--break-lock: taking the deploy lock from")
            && common::stderr(&out).contains(&format!("pid {killed}")),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(deployed(sb, OBS1, "zoo.cfg"), old);
    assert_eq!(w.on_sandbox(&["status"]).status.code(), Some(0));
}

#[test]
fn the_observers_are_reached_only_through_the_bastion() {
    let mut w = World::sandbox();
    // Straight from here, the observers' SSH does not answer: only the bastion may connect.
    let direct = std::net::TcpStream::connect_timeout(
        &"198.18.1.4:22".parse().unwrap(),
        Duration::from_secs(2),
    );
    assert!(direct.is_err(), "the observer's SSH answers directly");
    first_push(&w);

    // A bastion presenting another key is refused, naming it, with both fingerprints.
    let dir = tempfile::tempdir().unwrap();
    let (impostor, presented) = common::impostor_key(dir.path());
    w.sb_mut().bastions[0].start_sshd(&impostor).unwrap();
    let out = w.on_sandbox(&["status", "--host", OBS1]);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out) + &common::stderr(&out);
    assert!(
        text.contains("the host key presented by jump host sandbox-bastion (198.18.1.2) does not match the pinned one"),
        "{text}"
    );
    assert!(text.contains(&format!("presented: {presented}")), "{text}");

    // The bastion down: every observer is unreachable, and the report says through what.
    w.sb_mut().bastions[0].stop();
    let out = w.on_sandbox(&["status", "--connect-timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out) + &common::stderr(&out);
    assert_eq!(
        text.matches("cannot reach jump host sandbox-bastion (198.18.1.2:22)")
            .count(),
        2,
        "{text}"
    );
}
