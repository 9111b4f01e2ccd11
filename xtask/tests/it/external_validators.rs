//! The rendered files checked by the tools that consume them: the official Kubernetes schemas
//! (`kubernetes-validate` from PyPI) and Debian's `docker-compose config`. `.ci/run` installs both.

use std::path::Path;
use std::process::Command;

use crate::common::{files_under, render_all};

/// Runs an external validator; a missing tool is a failure that says how to install it.
fn tool(program: &str, install: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "`{program}` is not installed: {install} (bash .ci/run does it)"
    );
    Command::new(program)
}

const K8S_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

fn kubernetes_validate(file: &Path, version: &str) -> std::process::Output {
    tool("kubernetes-validate", "pip install kubernetes-validate")
        .args(["--strict", "--kubernetes-version", version])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn manifests_pass_the_official_kubernetes_schemas() {
    let dir = render_all();
    for env in manifests::environments::all() {
        let file = dir.path().join(&env.name).join("kubernetes.yaml");
        let objects = manifests::desired_objects(&env);
        let crds = objects
            .iter()
            .filter(|o| o.kind() == "ServiceMonitor")
            .count();
        for version in K8S_VERSIONS {
            let out = kubernetes_validate(&file, version);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{}: kubernetes-validate {version} failed:\n{stdout}\n{stderr}",
                env.name
            );
            // Every built-in object is checked against a schema; the ServiceMonitor (a CRD) has none.
            let passed = stdout.matches(" passed for resource ").count()
                + stderr.matches(" passed for resource ").count();
            assert_eq!(
                passed,
                objects.len() - crds,
                "{}: {stdout}{stderr}",
                env.name
            );
        }
    }
}

#[test]
fn the_rbac_roles_pass_the_official_kubernetes_schemas() {
    let dir = render_all();
    for env in manifests::environments::all() {
        let file = dir.path().join(&env.name).join("rbac.yaml");
        for version in K8S_VERSIONS {
            let out = kubernetes_validate(&file, version);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{}: {version}: {text}", env.name);
            assert_eq!(
                text.matches(" passed for resource ").count(),
                manifests::rbac::roles(&env).len(),
                "{}: {text}",
                env.name
            );
        }
    }
    // And the validator would notice a broken Role (a rule without verbs).
    let env = manifests::environments::sandbox::environment();
    let broken = manifests::rbac::render_rbac(&env).replacen("  verbs:\n", "  verbz:\n", 1);
    let file = dir.path().join("broken-rbac.yaml");
    std::fs::write(&file, broken).unwrap();
    assert!(!kubernetes_validate(&file, K8S_VERSIONS[0]).status.success());
}

#[test]
fn kubernetes_validate_does_reject_a_broken_object() {
    // Proves the validator above is live: the same Service with a string port fails.
    let env = manifests::environments::sandbox::environment();
    let yaml = manifests::render_manifests(&env).replacen("port: 2888", "port: quorum", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = kubernetes_validate(&file, K8S_VERSIONS[0]);
    assert!(!out.status.success(), "a string port must be rejected");
}

#[test]
fn compose_files_pass_docker_compose_config() {
    let dir = render_all();
    let composes: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| p.ends_with("docker-compose.yaml"))
        .collect();
    assert_eq!(
        composes.len(),
        manifests::environments::all()
            .iter()
            .map(|e| e.fleet.observers.len())
            .sum::<usize>()
    );
    for rel in composes {
        let path = dir.path().join(&rel);
        let out = tool("docker-compose", "apt-get install docker-compose")
            .args(["--file"])
            .arg(&path)
            .args(["config", "--quiet"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            rel.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn docker_compose_config_does_reject_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-compose.yaml");
    std::fs::write(
        &file,
        "services:\n  zookeeper:\n    image: zookeeper:3.8.6\n    ports: 2181\n",
    )
    .unwrap();
    let out = tool("docker-compose", "apt-get install docker-compose")
        .arg("--file")
        .arg(&file)
        .args(["config", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ports must be a list");
}
