//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cargo xtask` binary built for this test run.
pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.env("NO_COLOR", "1").env_remove("RUST_LOG");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("xtask runs");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every regular file under `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Renders every environment with the real binary into a fresh directory.
pub fn render_all() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = run(xtask().args(["render", "--out"]).arg(dir.path()));
    assert!(out.status.success(), "render failed");
    dir
}

/// When a sandbox host's ZooKeeper container was started (changes on every restart).
pub fn started_at(h: &sandbox::harness::ObserverHost) -> String {
    let id = h.container_id("zookeeper").unwrap();
    h.docker(&["inspect", "-f", "{{.State.StartedAt}}", &id])
        .unwrap()
        .trim()
        .to_string()
}

/// Runs `f` with a kube client for `kubeconfig` (YAML): edits made by "someone else".
pub fn with_client<T>(kubeconfig: String, f: impl AsyncFnOnce(kube::Client) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            f(kube::Client::try_from(config).unwrap()).await
        })
}
