//! Builds the commit this binary was built from into it (`--version`, the deploy's provenance
//! annotations, the hosts' marker file, the lock holder, plan files): `ZK_OBSERVERS_COMMIT`, the
//! full hash or `unknown` outside a git checkout, and `ZK_OBSERVERS_DIRTY`, whether tracked files
//! differ from that commit. Rerun when HEAD, the index or any source the binary embeds changes,
//! so that an edit without a commit is never reported as clean.

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("xtask sits in the workspace");
    let commit = git(root, &["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let dirty = commit.is_some()
        && git(root, &["status", "--porcelain", "--untracked-files=no"])
            .is_none_or(|s| !s.is_empty());
    println!(
        "cargo:rustc-env=ZK_OBSERVERS_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=ZK_OBSERVERS_DIRTY={dirty}");
    if let Some(git_dir) = git(root, &["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "index", "packed-refs", "refs"] {
            println!("cargo:rerun-if-changed={git_dir}/{f}");
        }
    }
    // What the binary is made of: an edit there makes the tree dirty before any commit.
    for dir in [
        "xtask/src",
        "hosts/src",
        "manifests/src",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
}
