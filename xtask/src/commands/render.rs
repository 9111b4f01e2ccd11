//! `cargo xtask render`: write manifests and host files to a directory tree.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use manifests::{AddressSource, Environment};
use serde::Serialize;

use crate::cli::RenderArgs;
use crate::output::report::Report;
use crate::{environments, output, output::exit};

/// Name of the manifest file in OUT/<env>/.
pub const MANIFEST_FILE: &str = "kubernetes.yaml";
/// Name of the RBAC file (the Roles the tool needs) in OUT/<env>/.
pub const RBAC_FILE: &str = "rbac.yaml";
/// Marks a directory as written by `render`, so that it may be replaced.
pub const STAMP_FILE: &str = ".rendered-by-zk-observers";

/// A rendered tree, in memory: relative path and contents.
pub type Tree = Vec<(PathBuf, String)>;

/// Everything `render` writes for `env`, without writing it.
pub fn tree(env: &Environment) -> Result<Tree> {
    let mut files = vec![
        (
            PathBuf::from(STAMP_FILE),
            format!(
                "Written by `cargo xtask render --env {}`; replaced as a whole on every render.\n",
                env.name
            ),
        ),
        (
            PathBuf::from(MANIFEST_FILE),
            manifests::render_manifests(env),
        ),
        (PathBuf::from(RBAC_FILE), manifests::rbac::render_rbac(env)),
    ];
    let hosts = manifests::render_host_files(env, &AddressSource::Recorded)
        .with_context(|| format!("rendering the observers' files of environment {}", env.name))?;
    // The ensemble's side of quorum TLS: a reviewed artifact for the helm release's owners.
    for (name, contents) in manifests::ensemble_tls::files(env) {
        files.push((Path::new("ensemble").join(name), contents));
    }
    for (observer, host_files) in hosts {
        for (name, contents) in host_files.files() {
            files.push((
                Path::new("hosts").join(&observer.name).join(name),
                contents.to_string(),
            ));
        }
    }
    Ok(files)
}

/// What `render` wrote.
#[derive(Debug, Serialize)]
pub struct Rendered {
    pub environment: String,
    pub directory: PathBuf,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct RenderReport(Vec<Rendered>);

impl Report for RenderReport {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("serializes")
    }

    fn print(&self) {
        for r in &self.0 {
            output::ok(&format!(
                "{}: {} file(s) in {}",
                r.environment,
                r.files.len(),
                r.directory.display()
            ));
        }
    }

    fn exit_code(&self) -> u8 {
        exit::OK
    }
}

pub fn run(args: &RenderArgs) -> Result<RenderReport> {
    let envs = environments::select(&args.selection)?;
    // Validate and render everything before writing anything.
    let mut rendered = Vec::new();
    for env in envs {
        let env = environments::validated(env)?;
        let files = tree(&env)?;
        rendered.push((env.name.clone(), files));
    }
    let mut written = Vec::new();
    for (name, files) in &rendered {
        let dir = args.out.join(name);
        write_tree(&dir, files).with_context(|| format!("writing {}", dir.display()))?;
        written.push(Rendered {
            environment: name.clone(),
            directory: dir,
            files: files.iter().map(|(p, _)| p.clone()).collect(),
        });
    }
    Ok(RenderReport(written))
}

/// Replaces `dir` with exactly `files`: written to a sibling temporary directory first, then
/// swapped in by rename, so that `dir` is either the old tree or the new one.
fn write_tree(dir: &Path, files: &Tree) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    if dir.exists() {
        let ours = dir.join(STAMP_FILE).is_file();
        let empty = fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !ours && !empty {
            bail!(
                "{} exists and was not written by `cargo xtask render`; remove it or choose another --out",
                dir.display()
            );
        }
    }
    let base = dir
        .file_name()
        .context("the output directory has no name")?
        .to_string_lossy()
        .into_owned();
    let staging = parent.join(format!(".{base}.new-{}", std::process::id()));
    let retired = parent.join(format!(".{base}.old-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    for (rel, contents) in files {
        let path = staging.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    if dir.exists() {
        fs::rename(dir, &retired)
            .with_context(|| format!("moving the previous {} aside", dir.display()))?;
    }
    fs::rename(&staging, dir)
        .with_context(|| format!("moving the new tree into {}", dir.display()))?;
    if retired.exists() {
        fs::remove_dir_all(&retired).with_context(|| format!("removing {}", retired.display()))?;
    }
    Ok(())
}
