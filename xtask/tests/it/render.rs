//! Snapshots of every rendered file of every environment, taken from the bytes `cargo xtask render`
//! writes. Review changes with `cargo insta review`. The snapshots live in the top-level
//! `tests/snapshots/`, named `render__<env>__<path>.snap` (see `snapshots()`).

use std::fs;

use crate::common::{files_under, render_all, run, xtask};
use sha2::{Digest, Sha256};

/// Where the snapshots live and what they are called: the workspace's `tests/snapshots/`, each
/// named `render__` + its name, whatever module of the test binary asserts it.
fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn snapshot_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/snapshots")
}

#[test]
fn every_rendered_file_matches_its_snapshot() {
    let _snapshots = snapshots().bind_to_scope();
    let dir = render_all();
    let envs = manifests::environments::names();
    assert_eq!(
        files_under(dir.path())
            .iter()
            .filter_map(|p| p.iter().next())
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>(),
        envs.iter().cloned().collect(),
        "one directory per environment"
    );
    let mut expected_snapshots = std::collections::BTreeSet::new();
    for env in &envs {
        let root = dir.path().join(env);
        let files = files_under(&root);
        // The exact bytes of every file, so that even whitespace-only changes show up in review.
        let mut digests = String::new();
        for rel in &files {
            let bytes = fs::read(root.join(rel)).unwrap();
            digests.push_str(&format!(
                "{:x}  {:>6}  {}\n",
                Sha256::digest(&bytes),
                bytes.len(),
                rel.display()
            ));
            let text = String::from_utf8(bytes).expect("rendered files are UTF-8");
            assert!(
                text.ends_with('\n') && !text.ends_with("\n\n"),
                "{env}/{}: exactly one final newline",
                rel.display()
            );
            assert!(
                !text.contains('\r'),
                "{env}/{}: no carriage returns",
                rel.display()
            );
            let name = format!(
                "{env}__{}",
                rel.display()
                    .to_string()
                    .replace('/', "__")
                    .trim_start_matches('.')
            );
            expected_snapshots.insert(format!("render__{name}.snap"));
            insta::assert_snapshot!(format!("render__{name}"), text);
        }
        expected_snapshots.insert(format!("render__{env}__sha256sums.snap"));
        insta::assert_snapshot!(format!("render__{env}__sha256sums"), digests);
    }
    // A snapshot of a file that is no longer rendered, or an unreviewed new one, fails too.
    let on_disk: std::collections::BTreeSet<String> = fs::read_dir(snapshot_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("render__"))
        .collect();
    assert_eq!(
        on_disk, expected_snapshots,
        "stale or pending snapshots in tests/snapshots (review with `cargo insta review`)"
    );
}

#[test]
fn production_zoo_cfg_points_at_the_recorded_load_balancers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(xtask()
        .args(["render", "--env", "production", "--out"])
        .arg(dir.path()));
    assert!(out.status.success());
    for (observer, myid) in [("zk-observer-1", 104), ("zk-observer-2", 105)] {
        let cfg = fs::read_to_string(
            dir.path()
                .join("production/hosts")
                .join(observer)
                .join("zoo.cfg"),
        )
        .unwrap();
        let lines: Vec<&str> = cfg.lines().filter(|l| !l.starts_with('#')).collect();
        let servers: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("server."))
            .collect();
        assert_eq!(
            servers,
            [
                "server.1=10.1.0.12:2888:3888:participant",
                "server.2=10.1.0.13:2888:3888:participant",
                "server.3=10.1.0.6:2888:3888:participant",
                &format!("server.{myid}=0.0.0.0:2888:3888:observer"),
            ]
        );
        assert!(lines.contains(&"peerType=observer"));
        assert!(lines.contains(&"autopurge.purgeInterval=24"));
        assert!(!cfg.contains("purgeInteval"), "the runbook's misspelt key");
        assert!(
            lines.contains(&"4lw.commands.whitelist=conf,mntr,srst,srvr"),
            "minimal whitelist: {cfg}"
        );
        assert!(lines.contains(&"admin.enableServer=false"));
        let compose = fs::read_to_string(
            dir.path()
                .join("production/hosts")
                .join(observer)
                .join("docker-compose.yaml"),
        )
        .unwrap();
        assert!(
            compose.contains(&format!("ZOO_MY_ID: '{myid}'")),
            "myid comes from the image's entrypoint, not a manual echo"
        );
        assert!(
            compose.contains("image: zookeeper:3.8.6"),
            "pinned image of the ensemble's minor version"
        );
    }
    // Only production was rendered.
    assert!(!dir.path().join("sandbox").exists());
}

#[test]
fn render_is_deterministic_and_replaces_the_tree_whole() {
    let dir = tempfile::tempdir().unwrap();
    let render = || {
        run(xtask()
            .args(["render", "--env", "sandbox", "--out"])
            .arg(dir.path()))
    };
    assert!(render().status.success());
    let first: Vec<_> = files_under(dir.path())
        .into_iter()
        .map(|p| (p.clone(), fs::read(dir.path().join(&p)).unwrap()))
        .collect();
    // A stale file from an observer that no longer exists must not survive a render.
    let stale = dir.path().join("sandbox/hosts/retired-observer/zoo.cfg");
    fs::create_dir_all(stale.parent().unwrap()).unwrap();
    fs::write(&stale, "stale").unwrap();
    assert!(render().status.success());
    let second: Vec<_> = files_under(dir.path())
        .into_iter()
        .map(|p| (p.clone(), fs::read(dir.path().join(&p)).unwrap()))
        .collect();
    assert_eq!(first, second);
    assert!(!stale.exists());
}

#[test]
fn render_refuses_to_replace_a_directory_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("sandbox/precious.txt");
    fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    fs::write(&foreign, "keep me").unwrap();
    let out = run(xtask()
        .args(["render", "--env", "sandbox", "--out"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was not written by `cargo xtask render`")
    );
    assert_eq!(fs::read_to_string(&foreign).unwrap(), "keep me");
}

#[test]
fn unknown_environment_is_an_error_listing_the_known_ones() {
    let out = run(xtask().args(["render", "--env", "staging"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--env staging: no such environment"), "{err}");
    assert!(err.contains("production, sandbox"), "{err}");
}

#[test]
fn check_passes_for_every_environment() {
    let out = run(xtask().arg("check"));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for env in manifests::environments::names() {
        assert!(
            stdout.contains(&format!("ok {env}: 0 error(s)")),
            "{stdout}"
        );
    }
}

#[test]
fn check_json_lists_each_problem_with_field_and_fix() {
    let out = run(xtask().args(["check", "--env", "production", "--output", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let report = &v[0];
    assert_eq!(report["environment"], "production");
    assert_eq!(report["valid"], true);
    // Production's quorum is plaintext (a warning naming the exposure), its host keys are not
    // pinned yet (a warning per observer), and its TKE load balancers bind no security group, so
    // nothing enforces their source ranges (a warning): warnings, not errors.
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(report["warnings"], problems.len());
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "fleet.quorum",
            "load_balancer.security_groups",
            "fleet.observers[0].host_key",
            "fleet.observers[1].host_key",
        ]
    );
    for p in problems {
        assert_eq!(p["severity"], "warning");
        assert!(!p["fix"].as_str().unwrap().is_empty());
    }
}

#[test]
fn help_documents_every_subcommand() {
    let out = run(xtask().arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["render", "check"] {
        assert!(help.contains(sub), "{help}");
        let out = run(xtask().args([sub, "--help"]));
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--env"));
    }
    assert!(help.contains("Exit codes"));
}

/// `check --strict` fails on warnings (production as committed has three) and passes without.
#[test]
fn check_strict_fails_on_warnings_and_names_what_can_run() {
    let out = run(xtask().args(["check", "--strict", "--env", "production"]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not ok (--strict: warnings count) production"),
        "{stdout}"
    );
    assert!(
        stdout.contains("can run: render, check, diff, apply; not push, status, drift, deploy (host keys not pinned: fleet.observers[0].host_key, fleet.observers[1].host_key)"),
        "{stdout}"
    );
    let out = run(xtask().args(["check", "--strict", "--env", "sandbox"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(xtask().args(["check", "--env", "sandbox", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let commands = v[0]["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 8);
    assert!(commands.iter().all(|c| c["ready"] == true), "{v}");
}

/// `--help` groups options under headings and offers the environments' names.
#[test]
fn help_groups_options_and_lists_environments() {
    let out = run(xtask().args(["deploy", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "Cluster:",
        "Hosts:",
        "Hosts (SSH):",
        "Rollout:",
        "Lock:",
        "Output:",
    ] {
        assert!(help.contains(heading), "{heading} missing:\n{help}");
    }
    assert!(
        help.contains("[possible values: production, sandbox]"),
        "{help}"
    );
}
