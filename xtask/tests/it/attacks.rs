//! Attacks, tried as an attacker would on the real peers (sshd, dockerd, ZooKeeper in network
//! namespaces): holding the drift key, a file on an observer host, a port there, or the job's
//! signals. Every one is refused or reported. Each test is a row of docs/faults.md's fault table
//! or of the drift-key section of docs/networking.md. Needs root, as the sandbox does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    self, drift_key, drop_traffic_from, signal, ssh_as, ssh_bastion_as, stderr, stdout,
    when_stderr_says, World,
};
use serde_json::Value;

const OBS1: &str = "zk-observer-1";
const OBS2: &str = "zk-observer-2";

/// The findings of a drift report about `object`: `(kind, detail)`.
fn findings(report: &Value, object: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object"] == object)
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn authorized_keys(w: &World, host: &str) -> std::path::PathBuf {
    w.sb().host(host).home().join(".ssh/authorized_keys")
}

/// What the drift key gets when it asks an observer for a shell command.
fn drift_key_runs(w: &World, key: &Path, address: &str) -> String {
    let out = ssh_as(w, key, address, &[], Some("id -u"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An unrestricted line for the drift key placed ahead of the tool's (sshd uses the first line
/// that matches a key): drift reports it, deploy removes it and leaves exactly one line for the
/// key, its own; the key then runs the read-only command only, whatever it asks.
#[test]
fn an_unrestricted_line_for_the_drift_key_is_reported_and_removed() {
    let w = World::sandbox();
    w.deploy();
    let key = drift_key(w.dir());
    let public = manifests::environments::sandbox::inventory::drift_key().unwrap();
    let ak = authorized_keys(&w, OBS1);
    let installed = std::fs::read_to_string(&ak).unwrap();
    std::fs::write(&ak, format!("{public} attacker\n{installed}")).unwrap();
    assert_eq!(
        drift_key_runs(&w, &key, "198.18.1.4").trim(),
        "0",
        "the planted line gives the drift key a root shell"
    );
    let (code, report) = w.drift();
    assert_eq!(code, 2, "{report}");
    assert!(
        findings(&report, "host/zk-observer-1")
            .iter()
            .any(|(k, d)| k == "drift-access"
                && d.contains("another authorized_keys line for the drift key")
                && d.contains("attacker")),
        "{report}"
    );
    let r = w.deploy();
    let result = r["read_only_access"][OBS1].as_str().unwrap();
    assert!(
        result.starts_with("installed; removed 1 other line(s) for the drift key")
            && result.contains("attacker"),
        "{result}"
    );
    let lines: Vec<String> = std::fs::read_to_string(&ak)
        .unwrap()
        .lines()
        .filter(|l| l.contains(public.split(' ').nth(1).unwrap()))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("restrict,command="), "{lines:?}");
    let ran = drift_key_runs(&w, &key, "198.18.1.4");
    assert!(
        ran.starts_with("=== invoked "),
        "the forced command ran instead: {ran}"
    );
    assert_eq!(w.drift().0, 0);
}

/// The forced command edited on the host, its first line kept: drift finds it by the digest the
/// host computes, deploy replaces it. A symbolic link in its place is not trusted either.
#[test]
fn a_tampered_forced_command_is_found_and_replaced() {
    let w = World::sandbox();
    w.deploy();
    let cmd = w
        .sb()
        .host(OBS2)
        .deploy_dir
        .join(".zk-observers/read-only.sh");
    let original = std::fs::read_to_string(&cmd).unwrap();
    std::fs::write(&cmd, format!("{original}\ntouch /tmp/zk-observers-pwned\n")).unwrap();
    let (code, report) = w.drift();
    assert_eq!(code, 2, "{report}");
    assert!(
        findings(&report, "host/zk-observer-2")
            .iter()
            .any(|(k, d)| k == "drift-access" && d.contains("was changed on the host")),
        "{report}"
    );
    let r = w.deploy();
    assert_eq!(r["read_only_access"][OBS2], "installed", "{r}");
    assert_eq!(std::fs::read_to_string(&cmd).unwrap(), original);
    assert_eq!(w.drift().0, 0);
}

/// The drift key cannot change anything, whoever offers it: `--identity` naming it is refused
/// before anything is contacted; an agent that offers it first (no `--identity`) is found at the
/// host read (the host runs the forced command for it) and the deploy stops before any write.
#[test]
fn a_deploy_with_the_drift_key_is_refused_before_any_write() {
    let w = World::sandbox();
    w.deploy();
    w.edit(OBS1, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    let key = drift_key(w.dir());
    let out = w.run(&[
        "deploy",
        "--env",
        "sandbox",
        "--yes",
        "--identity",
        &key.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is the drift key of sandbox"),
        "{}",
        stderr(&out)
    );
    // An agent holding only the drift key, and no --identity.
    let agent_dir = tempfile::tempdir().unwrap();
    let socket = agent_dir.path().join("agent");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for("the agent's socket", || socket.exists());
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let writes = w.managed_writes();
    let out = common::run(
        w.cmd(&["deploy", "--env", "sandbox", "--yes"])
            .env("SSH_AUTH_SOCK", &socket),
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("authenticated with the drift key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.managed_writes(), writes, "nothing was applied");
    assert!(
        w.deployed(OBS1, "zoo.cfg").contains("syncLimit=3"),
        "nothing was written"
    );
}

/// On the bastion the drift key may forward to the observers' SSH, and nothing else: no shell,
/// no command, no forward to another port, no remote listener.
#[test]
fn the_drift_key_on_the_bastion_forwards_to_the_observers_ssh_only() {
    let w = World::sandbox();
    let key = drift_key(w.dir());
    let shell = ssh_bastion_as(&key, &[], Some("id -u"));
    assert!(!shell.status.success(), "a command ran");
    assert!(
        !String::from_utf8_lossy(&shell.stdout).contains('0'),
        "{shell:?}"
    );
    // (The deploy key may forward there: it is the drift key's line that refuses it.)
    let elsewhere = ssh_bastion_as(&key, &["-W", "198.18.1.4:2181"], None);
    assert!(!elsewhere.status.success(), "forwarded to another port");
    assert!(
        String::from_utf8_lossy(&elsewhere.stderr).contains("administratively prohibited"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );
    let listener = ssh_bastion_as(&key, &["-N", "-R", "127.0.0.1:2222:127.0.0.1:22"], None);
    assert!(!listener.status.success(), "a remote listener was opened");
    assert!(
        String::from_utf8_lossy(&listener.stderr).contains("remote port forwarding failed"),
        "{}",
        String::from_utf8_lossy(&listener.stderr)
    );
    // What it is for: the observer's SSH, through it.
    let to_ssh = ssh_bastion_as(&key, &["-W", "198.18.1.4:22"], None);
    assert!(
        String::from_utf8_lossy(&to_ssh.stdout).starts_with("SSH-2.0-"),
        "{to_ssh:?}"
    );
    // And drift, with that key end to end through it, reads every host.
    w.deploy();
    let out = w.run(&[
        "drift",
        "--env",
        "sandbox",
        "--identity",
        &key.display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A listener on the exporter's port (the exporter down, or a compromised exporter image) that
/// answers with a section of its own (`=== file zoo.cfg` with the rendered file) cannot make a
/// host read report a hand-edited zoo.cfg as clean: sections are framed by length.
#[test]
fn a_forged_section_in_a_relayed_answer_does_not_hide_drift() {
    let w = World::sandbox();
    w.deploy();
    let clean = w.deployed(OBS1, "zoo.cfg");
    w.edit(OBS1, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    let exporter = w.sb().host(OBS1).container_id("exporter").unwrap();
    w.sb().host(OBS1).docker(&["stop", &exporter]).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&clean);
    let forged = format!(
        "HTTP/1.0 200 OK\r\n\r\n\n=== file zoo.cfg\n{b64}\n=== file zoo.cfg {}\n{b64}\n=== running 20\nzookeeper\nexporter\n",
        b64.len()
    );
    let answers = std::fs::write(w.dir().join("answer"), &forged);
    answers.unwrap();
    // The impostor, in the observer's namespace, on the exporter's published address.
    let mut impostor = Command::new("ip")
        .args(["netns", "exec", &w.sb().host(OBS1).ns, "python3", "-c"])
        .arg(
            "import socket,sys\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('198.18.1.4', 9141)); s.listen(8)\n\
             body=open(sys.argv[1],'rb').read()\n\
             while True:\n  c,_=s.accept(); c.recv(4096); c.sendall(body); c.close()\n",
        )
        .arg(w.dir().join("answer"))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, report) = w.drift();
    let _ = impostor.kill();
    let _ = impostor.wait();
    assert_eq!(code, 2, "{report}");
    let found = findings(&report, "host/zk-observer-1");
    assert!(
        found
            .iter()
            .any(|(k, d)| k == "host-files" && d.contains("zoo.cfg differ")),
        "the edit is found: {found:?}"
    );
}

/// A symbolic link where zoo.cfg belongs, pointing at a secret: never read (the secret never
/// reaches a drift report), never written through (deploy refuses the host, the secret is
/// unchanged), never restored through.
#[test]
fn a_symbolic_link_in_place_of_zoo_cfg_is_neither_read_nor_written_through() {
    let w = World::sandbox();
    w.deploy();
    let dir = w.sb().host(OBS2).deploy_dir.clone();
    let secret = w.dir().join("secret");
    std::fs::write(&secret, "password=hunter2\n").unwrap();
    std::fs::remove_file(dir.join("zoo.cfg")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("zoo.cfg")).unwrap();
    let out = w.on_sandbox(&["drift", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let report = stdout(&out);
    assert!(
        !report.contains("hunter2"),
        "the secret is in the report: {report}"
    );
    assert!(report.contains("zoo.cfg is a symbolic link to"), "{report}");
    let out = w.on_sandbox(&["deploy", "--yes", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = common::json(&out);
    let h = common::host(&r, OBS2);
    assert_eq!(h["result"], "refused", "{h}");
    assert!(h["detail"]
        .as_str()
        .unwrap()
        .contains("a symbolic link stands where"));
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "password=hunter2\n"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

/// Compose files and an .env the tool did not write, in a deploy directory: compose is run on
/// docker-compose.yaml alone (an override that swaps the image and adds a mount is not applied),
/// and drift reports them.
#[test]
fn a_hand_placed_compose_override_is_not_applied_and_is_reported() {
    let w = World::sandbox();
    w.deploy();
    let dir = w.sb().host(OBS1).deploy_dir.clone();
    std::fs::write(
        dir.join("docker-compose.override.yaml"),
        "services:\n  zookeeper:\n    labels:\n      planted: \"yes\"\n    volumes:\n      - /etc:/host-etc:ro\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".env"),
        "COMPOSE_FILE=docker-compose.override.yaml\n",
    )
    .unwrap();
    // ZooKeeper's container gone, so that deploy runs compose to create it (a new zoo.cfg alone
    // no longer runs compose at all), and compose would read whatever files it finds.
    let zk = w.sb().host(OBS1).container_id("zookeeper").unwrap();
    w.sb().host(OBS1).docker(&["rm", "-f", &zk]).unwrap();
    let (code, report) = w.drift();
    assert_eq!(code, 2);
    assert!(
        findings(&report, "host/zk-observer-1")
            .iter()
            .any(|(k, d)| k == "host-extra-files"
                && d.contains("docker-compose.override.yaml")
                && d.contains(".env")),
        "{report}"
    );
    w.deploy();
    let created = w.sb().host(OBS1).container_id("zookeeper").unwrap();
    assert_ne!(created, zk, "compose created ZooKeeper's container anew");
    let zk = created;
    let inspect = w
        .sb()
        .host(OBS1)
        .docker(&[
            "inspect",
            "-f",
            "{{json .Config.Labels}} {{json .Mounts}}",
            &zk,
        ])
        .unwrap();
    assert!(!inspect.contains("planted"), "{inspect}");
    assert!(!inspect.contains("/host-etc"), "{inspect}");
}

/// Paths with a space (`--identity`, `TMPDIR`) reach ssh whole, through the bastion.
#[test]
fn paths_with_spaces_reach_ssh_whole() {
    let w = World::sandbox();
    let spaced = w.dir().join("a dir");
    std::fs::create_dir_all(spaced.join("tmp here")).unwrap();
    let identity = spaced.join("deploy key");
    std::fs::copy(w.sb().ssh_identity(), &identity).unwrap();
    let mut cmd = w.cmd(&[
        "status",
        "--env",
        "sandbox",
        "--identity",
        &identity.display().to_string(),
    ]);
    cmd.env("TMPDIR", spaced.join("tmp here"));
    let out = common::run(&mut cmd);
    // Not deployed yet: status exits 2 (not in sync), not 1 (unreachable).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("zk-observer-1"), "{}", stdout(&out));
}

/// Drift with the drift key while an observer's sshd is down: the bastion (which runs no command
/// for that key) is not blamed; the observer is named.
#[test]
fn an_observer_down_behind_a_forwarding_only_bastion_is_named_not_the_bastion() {
    let mut w = World::sandbox();
    w.deploy();
    let key = drift_key(w.dir());
    w.sb_mut().hosts[1].stop_sshd();
    let out = w.run(&[
        "drift",
        "--env",
        "sandbox",
        "--identity",
        &key.display().to_string(),
        "--output",
        "json",
    ]);
    let report = common::json(&out);
    let unreachable = findings(&report, "host/zk-observer-2");
    assert!(
        unreachable.iter().any(|(k, d)| k == "host-unreachable"
            && d.contains("198.18.1.5")
            && !d.contains("cannot reach jump host")),
        "{unreachable:?}"
    );
}

/// A broken SSH connection during the health gate is made again once, and the gate goes on over
/// the new one: the host is updated, not rolled back over a dead connection.
#[test]
fn a_connection_broken_during_the_gate_is_made_again() {
    let w = World::sandbox();
    w.deploy();
    w.edit(OBS1, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    // Keep zk-observer-1 from syncing for now: the load balancers drop its traffic.
    drop_traffic_from("198.18.1.4", true);
    let sshd = w.sb().host(OBS1).sshd_pid().unwrap();
    let ended = when_stderr_says(
        w.sandbox_cmd(&["push", "--yes", "--host", OBS1, "--health-timeout", "90s"]),
        "zk-observer-1: waiting to observe",
        |_| {
            // Every connection to the host's sshd drops, then the host can sync again.
            let _ = Command::new("pkill")
                .args(["-P", &sshd.to_string()])
                .status();
            drop_traffic_from("198.18.1.4", false);
        },
    );
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("zk-observer-1: the SSH connection broke; connected again"),
        "{}",
        ended.stderr
    );
    assert!(
        ended
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("updated") && l.contains(OBS1)),
        "{}",
        ended.stdout
    );
}

/// SIGINT, then SIGTERM (a cancelled CI job) while a host's gate waits: the host is restored
/// before the exit (130), and no SSH connection master is left running. Three signals exit at
/// once, and end the masters too.
#[test]
fn a_second_signal_restores_the_host_first_and_a_third_exits_leaving_no_ssh_master() {
    let w = World::sandbox();
    w.deploy();
    w.edit(OBS1, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    let edited = w.deployed(OBS1, "zoo.cfg");
    drop_traffic_from("198.18.1.4", true);
    let ended = when_stderr_says(
        w.sandbox_cmd(&["push", "--yes", "--host", OBS1, "--health-timeout", "8s"]),
        "zk-observer-1: docker restart zookeeper",
        |pid| {
            signal(pid, "INT");
            std::thread::sleep(Duration::from_millis(300));
            signal(pid, "TERM");
        },
    );
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("still restoring the host in flight"),
        "{}",
        ended.stderr
    );
    assert_eq!(
        w.deployed(OBS1, "zoo.cfg"),
        edited,
        "the previous (hand-edited) file is back"
    );
    common::wait_for("no SSH master left running", || ssh_masters() == 0);

    // Three signals: out at once, the masters ended on the way.
    let ended = when_stderr_says(
        w.sandbox_cmd(&["push", "--yes", "--host", OBS1, "--health-timeout", "60s"]),
        "zk-observer-1: docker restart zookeeper",
        |pid| {
            for s in ["INT", "TERM", "INT"] {
                signal(pid, s);
                std::thread::sleep(Duration::from_millis(200));
            }
        },
    );
    drop_traffic_from("198.18.1.4", false);
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("a third time: exiting at once"),
        "{}",
        ended.stderr
    );
    common::wait_for("no SSH master left running", || ssh_masters() == 0);
}

/// A rollback touches only what this run changed: a zoo.cfg written whose compose file's write
/// then failed is put back without restarting ZooKeeper (this run never restarted it); on a first
/// deployment whose compose write failed, the written zoo.cfg is removed and nothing is left.
#[test]
fn a_rollback_undoes_only_what_this_run_did() {
    let w = World::sandbox();
    w.deploy();
    // Both files differ from the code; the compose file cannot be replaced (a mount point: its
    // rename fails), so the write fails after zoo.cfg was written.
    w.edit(OBS1, "zoo.cfg", "syncLimit=10", "syncLimit=3");
    w.edit(
        OBS1,
        "docker-compose.yaml",
        "restart: unless-stopped",
        "restart: always",
    );
    let edited = w.deployed(OBS1, "zoo.cfg");
    let started = common::started_at(w.sb().host(OBS1));
    let compose = w.sb().host(OBS1).deploy_dir.join("docker-compose.yaml");
    // In the host's own mount namespace (its sshd's), where the tool's writes happen.
    let mount = |on: bool| {
        let c = compose.display();
        let command = if on {
            format!("mount --bind {c} {c}")
        } else {
            format!("umount {c}")
        };
        let out = w
            .sb()
            .ssh(w.sb().host(OBS1).address)
            .arg(&command)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mount(true);
    let out = w.on_sandbox(&["push", "--yes", "--host", OBS1, "--output", "json"]);
    mount(false);
    assert_eq!(out.status.code(), Some(1));
    let r = common::json(&out);
    let h = common::host(&r, OBS1);
    assert_eq!(h["result"], "rolled-back", "{h}");
    assert!(
        h["detail"]
            .as_str()
            .unwrap()
            .contains("containers were not restarted by this run"),
        "{h}"
    );
    assert_eq!(w.deployed(OBS1, "zoo.cfg"), edited, "zoo.cfg put back");
    assert_eq!(
        common::started_at(w.sb().host(OBS1)),
        started,
        "ZooKeeper not restarted"
    );

    // A first deployment of zk-observer-2 whose compose write fails: nothing stays behind.
    let dir = w.sb().host(OBS2).deploy_dir.clone();
    let zk = w.sb().host(OBS2).container_id("zookeeper").unwrap();
    let exporter = w.sb().host(OBS2).container_id("exporter").unwrap();
    w.sb()
        .host(OBS2)
        .docker(&["rm", "-f", &zk, &exporter])
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(dir.join("docker-compose.yaml/keep")).unwrap();
    let out = w.on_sandbox(&["push", "--yes", "--host", OBS2, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = common::json(&out);
    let h = common::host(&r, OBS2);
    assert_eq!(h["result"], "rolled-back", "{h}");
    assert!(
        h["detail"]
            .as_str()
            .unwrap()
            .contains("nothing had been started"),
        "{h}"
    );
    assert!(
        !dir.join("zoo.cfg").exists(),
        "the written zoo.cfg is removed"
    );
    assert!(!dir.join("data").exists() && !dir.join("datalog").exists());
}

// --- signals -------------------------------------------------------------------------------------

/// SSH connection masters of this tool running now (their control directories are named
/// `zk-observers-ssh-*`).
fn ssh_masters() -> usize {
    let out = Command::new("pgrep")
        .args(["-f", "zk-observers-ssh-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The participants' lines of an observer's zoo.cfg: all an impostor needs to know.
fn participant_lines(env: &manifests::Environment) -> Vec<String> {
    let e = &env.ensemble;
    e.participants()
        .iter()
        .map(|p| {
            format!(
                "server.{}={}:{}:{}:participant",
                p.id, e.recorded_addresses[&p.ordinal], e.quorum_port, e.election_port
            )
        })
        .collect()
}

/// Writes a znode on the leader: what an impostor must never receive.
fn write_secret_znode(sb: &sandbox::Sandbox) {
    let leader = sb.ensemble.as_ref().unwrap().leader().expect("a leader");
    let created = sandbox::harness::Ensemble::cli(
        &format!("{}:2181", leader.address),
        &["create", "/secret", "every-znode-of-the-ensemble"],
    )
    .unwrap();
    assert!(created.contains("Created /secret"), "{created}");
}

/// With a plaintext quorum (production's setting today: `check` warns on `fleet.quorum`),
/// whoever reaches the load balancers' quorum ports from an address they admit joins as an
/// observer and copies the whole data tree: the leader accepts any learner that announces itself
/// as an observer (apache/zookeeper `LearnerHandler.java` only logs an id outside its
/// configuration) and ACLs guard client requests only. The source ranges are then the only guard:
/// the same impostor from an address they do not admit (the bastion's) never joins.
#[test]
fn an_impostor_observer_copies_a_plaintext_quorum_from_an_admitted_address_only() {
    use sandbox::harness::{netns, Impostor};
    let w = World::plaintext_sandbox();
    // The per-pod Services and their source ranges (the sandbox's cloud firewall enforces them).
    let out = w.run(&["apply", "--env", "sandbox", "--yes", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sb = w.sb();
    write_secret_znode(sb);
    let servers = participant_lines(&sb.env);

    // On an observer host (an address the load balancers admit), with no credential at all.
    let host = sb.host(OBS1);
    let inside = Impostor::start(&host.ns, 99, &servers, &host.address.to_string(), 2182).unwrap();
    let took = joins_and_copies(&inside, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "the impostor on {OBS1}'s address did not join:\n{}",
            inside.log()
        )
    });
    assert_eq!(inside.mode(), "observer");
    eprintln!("an impostor on an admitted address joined and copied the tree in {took:.1?}");
    drop(inside);

    // From the bastion's address, which the source ranges do not admit: it never joins, within
    // three times what the admitted one took (at least 15 s).
    let bastion = &sb.bastions[0];
    let outside = Impostor::start(
        &netns::jump_ns(&bastion.name),
        98,
        &servers,
        &bastion.address.to_string(),
        2182,
    )
    .unwrap();
    let window = (took * 3).max(Duration::from_secs(15));
    never_joins(&outside, window, "an impostor outside the source ranges");
}

/// Asserts that `impostor` does not join within `window`: never an observer, never serving
/// `/secret`.
fn never_joins(impostor: &sandbox::harness::Impostor, window: Duration, what: &str) {
    assert_eq!(
        joins_and_copies(impostor, window),
        None,
        "{what} joined:\n{}",
        impostor.log()
    );
    assert_ne!(impostor.mode(), "observer", "{what}");
}

/// Polls `impostor` until it serves `/secret` (`Some(time taken)`) or `within` passes (`None`).
fn joins_and_copies(impostor: &sandbox::harness::Impostor, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if impostor
            .get("/secret")
            .contains("every-znode-of-the-ensemble")
        {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

/// Quorum TLS end to end (the sandbox's default): deploy pushes each observer's key store and the
/// quorum's trust store (mode 0600, owned by the image's user, shown in plans by digest only),
/// and the observers pass the health gate over TLS. On an observer host's own address, which the
/// load balancers admit, an impostor without a certificate, or with one of another CA, never
/// joins and never receives a znode written on the leader. A rotated key store is rolled out
/// behind the gate; one of another CA fails the gate and the previous store is put back.
#[test]
fn quorum_tls_admits_the_deployed_observers_and_refuses_impostors() {
    use sandbox::harness::{keystores, netns, Impostor};
    use std::os::unix::fs::MetadataExt;
    let w = World::sandbox();
    let password = std::fs::read_to_string(format!(
        "{}/zk-observer-1.pass",
        manifests::environments::sandbox::inventory::TLS_DIR
    ))
    .unwrap();
    let plan = w.on_sandbox(&["deploy", "--dry-run"]);
    let shown = stdout(&plan);
    assert!(
        shown.contains("quorum-keystore.p12: (none) -> sha256:"),
        "the plan shows the stores by digest: {shown}"
    );
    assert!(!shown.contains(password.trim()), "a password in the plan");
    let report = w.deploy();
    assert_eq!(report["totals"]["hosts"]["updated"], 2, "{report}");
    let sb = w.sb();
    let layout = &sb.env.fleet.layout;
    for h in [OBS1, OBS2] {
        let dir = &sb.host(h).deploy_dir;
        for f in [
            "quorum-keystore.p12",
            "quorum-keystore.pass",
            "quorum-truststore.p12",
        ] {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            assert_eq!(m.mode() & 0o777, 0o600, "{h}: {f}");
            assert_eq!((m.uid(), m.gid()), (layout.uid, layout.gid), "{h}: {f}");
        }
        assert!(w.deployed(h, "zoo.cfg").contains("sslQuorum=true"));
    }
    // Another user on the host reads zoo.cfg (the control: the directories let it through) but
    // not the key store's password.
    let as_nobody = |file: &str| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", "cat"])
            .arg(sb.host(OBS1).deploy_dir.join(file))
            .output()
            .unwrap()
    };
    assert!(as_nobody("zoo.cfg").status.success(), "the control");
    let denied = as_nobody("quorum-keystore.pass");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    let (code, drift) = w.drift();
    assert_eq!(code, 0, "{drift}");
    // Drift's handshake from the observer hosts: every participant answers TLS with the
    // participants' store of the ensemble artifact, valid beyond the warning window.
    assert_eq!(drift["quorum_tls"], true, "{drift}");
    let probes = drift["ensemble_tls"].as_array().unwrap();
    assert_eq!(probes.len(), 3, "{drift}");
    for p in probes {
        assert_eq!(p["answer"], "tls", "{drift}");
        let c = &p["certificate"];
        assert!(
            c["subject"]
                .as_str()
                .unwrap()
                .contains("sandbox-zookeeper-participants"),
            "{drift}"
        );
        assert!(
            c["issuer"].as_str().unwrap().contains("sandbox-quorum-ca"),
            "{drift}"
        );
        let until: jiff::Timestamp = c["not_after"].as_str().unwrap().parse().unwrap();
        assert!(
            until > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 300),
            "{drift}"
        );
    }

    write_secret_znode(sb);
    let servers = participant_lines(&sb.env);
    let o = &sb.env.fleet.observers[0];
    let (ns, address) = (netns::observer_ns(&o.name), o.address.to_string());
    // The observers joined over TLS: the same server with a store of the CA joins in this long.
    let (ca, trust) = sb.tls.as_ref().unwrap();
    let key = ca.issue("control", &address, None, 30).unwrap();
    let member =
        Impostor::start_with(&ns, 98, &servers, &address, 2182, Some((&key, trust))).unwrap();
    let took = joins_and_copies(&member, Duration::from_secs(90)).unwrap_or_else(|| {
        panic!(
            "a server with the CA's certificate did not join:\n{}",
            member.log()
        )
    });
    drop(member);
    let window = (took * 3).max(Duration::from_secs(15));
    let plain = Impostor::start(&ns, 99, &servers, &address, 2182).unwrap();
    never_joins(&plain, window, "an impostor without a certificate");
    drop(plain);
    let dir = tempfile::tempdir().unwrap();
    let other = keystores::Ca::new(dir.path(), "another-ca").unwrap();
    let other_trust = other.trust_store("truststore").unwrap();
    let forged = other.issue("forged", &address, None, 30).unwrap();
    let impostor = Impostor::start_with(
        &ns,
        97,
        &servers,
        &address,
        2182,
        Some((&forged, &other_trust)),
    )
    .unwrap();
    never_joins(
        &impostor,
        window,
        "an impostor with another CA's certificate",
    );
    drop(impostor);

    // Rotation: a new store of the same CA goes out behind the gate; it is valid for 10 more
    // days (issued 340 days ago for 350), which drift reports with its date.
    let before = std::fs::read(sb.host(OBS1).deploy_dir.join("quorum-keystore.p12")).unwrap();
    ca.issue(OBS1, &address, Some("-340d"), 350).unwrap();
    let rotated = w.deploy();
    assert_eq!(
        common::host(&rotated, OBS1)["result"],
        "updated",
        "{rotated}"
    );
    assert_eq!(
        common::host(&rotated, OBS2)["result"],
        "unchanged",
        "{rotated}"
    );
    let after = std::fs::read(sb.host(OBS1).deploy_dir.join("quorum-keystore.p12")).unwrap();
    assert_ne!(before, after);
    let (code, drift) = w.drift();
    assert_eq!(code, 2, "{drift}");
    let expiring = certificate_findings(&drift);
    assert_eq!(expiring.len(), 1, "{drift}");
    assert_eq!(expiring[0]["object"], format!("host/{OBS1}"));
    let detail = expiring[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "key store's certificate CN={OBS1} (issued by CN=sandbox-quorum-ca) expires on "
        )) && (detail.contains("(in 9 day(s))") || detail.contains("(in 10 day(s))")),
        "{detail}"
    );
    // A warning window shorter than what is left: nothing to report.
    let narrow = w.on_sandbox(&["drift", "--output", "json", "--certificate-warning", "5d"]);
    assert_eq!(narrow.status.code(), Some(0), "{}", stdout(&narrow));
    // A store of another CA cannot join: the gate fails and the previous store is put back.
    let store = format!(
        "{}/{OBS1}.p12",
        manifests::environments::sandbox::inventory::TLS_DIR
    );
    std::fs::copy(&forged.path, &store).unwrap();
    std::fs::copy(
        &forged.password_file,
        format!(
            "{}/{OBS1}.pass",
            manifests::environments::sandbox::inventory::TLS_DIR
        ),
    )
    .unwrap();
    refused_by_the_gate_and_put_back(&w, &after, "another CA's store");
    assert_eq!(
        common::mode(sb, OBS1),
        "observer",
        "it serves again on the previous store"
    );

    // An expired store (of the quorum's CA) cannot join either: the participants refuse it, the
    // gate fails and the previous store is put back.
    let expired = ca.issue("expired", &address, Some("-40d"), 30).unwrap();
    std::fs::copy(&expired.path, &store).unwrap();
    refused_by_the_gate_and_put_back(&w, &after, "an expired store");
    // A store that expired while deployed (as time passes: the running server keeps its
    // connection, the file on the host is past its date): drift names it and the date.
    std::fs::copy(
        &expired.path,
        sb.host(OBS1).deploy_dir.join("quorum-keystore.p12"),
    )
    .unwrap();
    let (code, drift) = w.drift();
    assert_eq!(code, 2, "{drift}");
    let found = certificate_findings(&drift);
    let detail = found
        .iter()
        .map(|f| f["detail"].as_str().unwrap())
        .find(|d| d.contains("CN=expired"))
        .unwrap_or_else(|| panic!("no finding for the expired store: {drift}"));
    assert!(
        detail.contains("expired on ") && detail.contains("day(s) ago"),
        "{detail}"
    );
}

/// A deploy whose key store for OBS1 cannot join (`what`): exit 1, OBS1 rolled back, its
/// previous store (`previous`) back on the host.
fn refused_by_the_gate_and_put_back(w: &World, previous: &[u8], what: &str) {
    let out = w.on_sandbox(&[
        "deploy",
        "--yes",
        "--output",
        "json",
        "--health-timeout",
        "30s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{what}");
    let failed = common::json(&out);
    assert_eq!(
        common::host(&failed, OBS1)["result"],
        "rolled-back",
        "{what}: {failed}"
    );
    let store = w.sb().host(OBS1).deploy_dir.join("quorum-keystore.p12");
    assert_eq!(
        std::fs::read(store).unwrap(),
        previous,
        "{what}: the previous store is back"
    );
}

/// The `quorum-certificate` findings of a drift report.
fn certificate_findings(drift: &serde_json::Value) -> Vec<serde_json::Value> {
    drift["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "quorum-certificate")
        .cloned()
        .collect()
}
