//! The command line and the product binary itself: what it links, how it parses, where demo and
//! bench go.

use crate::common::{run, xtask};

/// The binary that acts on real environments carries no sandbox: no API test server, no test keys.
#[test]
fn the_product_binary_links_no_sandbox_and_no_test_key() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_xtask")).unwrap();
    let contains = |needle: &str| binary.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains("BEGIN OPENSSH PRIVATE KEY"));
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sandbox/ssh");
    // The private keys (the sandbox environment pins the hosts' public keys, as any would).
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pub") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text
            .lines()
            .filter(|l| l.len() > 40 && !l.starts_with("-----"))
        {
            let body = line
                .split_whitespace()
                .find(|w| w.len() > 40)
                .unwrap_or(line);
            assert!(!contains(body), "{} is in the binary", path.display());
        }
    }
    for marker in ["sandbox API server", "sandbox-apiserver", "zkobs-cluster"] {
        assert!(!contains(marker), "{marker} is in the product binary");
    }
    // And cargo agrees: the sandbox is not among its normal dependencies.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "xtask",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("kube v"), "{tree}");
    assert!(!tree.lines().any(|l| l.starts_with("sandbox v")), "{tree}");
}

#[test]
fn demo_and_bench_are_handed_to_the_sandbox_tool() {
    let out = run(xtask().args(["demo", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Leave the sandbox up until Ctrl-C"));
    let out = run(xtask().args(["bench", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--skip-ansible"));
}

#[test]
fn a_bad_duration_is_a_clear_error_not_a_panic() {
    for (flag, value) in [
        ("--timeout", "99999999999999999h"),
        ("--timeout", "48h"),
        ("--health-timeout", "soon"),
    ] {
        let out = run(xtask().args(["deploy", "--env", "sandbox", flag, value]));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{flag} {value}: usage errors exit 1"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(value) && !err.contains("panicked"), "{err}");
    }
    let out = run(xtask().arg("--help"));
    assert_eq!(out.status.code(), Some(0));
}

/// `--version` names the commit the binary was built from: `git rev-parse HEAD` of this checkout
/// when built inside one.
#[test]
fn the_version_names_the_commit() {
    let out = run(xtask().arg("--version"));
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(
            printed.contains(&format!("(commit {head}, dirty: ")),
            "{printed} does not name {head}"
        );
    } else {
        assert!(printed.contains("(commit unknown"), "{printed}");
    }
}
