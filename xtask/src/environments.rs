//! Choosing environments and refusing invalid ones.

use anyhow::{bail, Context, Result};
use hosts::Observer;
use manifests::Environment;

use crate::cli::{ClusterArgs, ClusterSelection, EnvSelection};
use crate::output;

/// The environments a command acts on: the one named by `--env`, or all.
pub fn select(selection: &EnvSelection) -> Result<Vec<Environment>> {
    match &selection.env {
        None => Ok(manifests::environments::all()),
        Some(name) => match manifests::environments::by_name(name) {
            Some(env) => Ok(vec![env]),
            None => bail!(
                "--env {name}: no such environment; known environments: {} (defined in manifests/src/environments/)",
                manifests::environments::names().join(", ")
            ),
        },
    }
}

/// Validates `env`, prints its warnings, and fails with every error if there is one.
pub fn validated(env: Environment) -> Result<Environment> {
    let problems = manifests::validate(&env);
    for w in problems.warnings() {
        output::problem(&env.name, w);
    }
    if problems.has_errors() {
        for e in problems.errors() {
            output::problem(&env.name, e);
        }
        bail!(
            "environment {} is invalid ({} error(s) above); nothing was changed",
            env.name,
            problems.errors().count()
        );
    }
    Ok(env)
}

/// The kubeconfig: `--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig(args: &ClusterArgs) -> Result<kube::config::Kubeconfig> {
    match &args.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display())),
        None => kube::config::Kubeconfig::read()
            .context("reading the kubeconfig (KUBECONFIG, else ~/.kube/config)"),
    }
}

/// The one environment a cluster command acts on: `--env`, or the environment pinned to the
/// kubeconfig's current context.
pub fn select_one(selection: &ClusterSelection, cluster: &ClusterArgs) -> Result<Environment> {
    if let Some(name) = &selection.env {
        return select(&EnvSelection {
            env: Some(name.clone()),
        })
        .map(|mut v| v.remove(0));
    }
    let current = kubeconfig(cluster).ok().and_then(|k| k.current_context);
    let all = manifests::environments::all();
    match current.as_deref().and_then(|c| all.iter().find(|e| e.kube_context == c)) {
        Some(env) => Ok(env.clone()),
        None => Err(crate::output::hinted(
            format!(
                "no --env given and the kubeconfig's current context ({}) is not pinned by any environment",
                current.as_deref().unwrap_or("none"),
            ),
            format!(
                "pass --env ({})",
                manifests::environments::names().join(", ")
            ),
        )),
    }
}

/// The valid environment a cluster command acts on.
pub fn cluster_env(selection: &ClusterSelection, cluster: &ClusterArgs) -> Result<Environment> {
    validated(select_one(selection, cluster)?)
}

/// The observers named by `--host` (all when none), in inventory order.
pub fn targets<'a>(env: &'a Environment, names: &[String]) -> Result<Vec<&'a Observer>> {
    for n in names {
        if !env.fleet.observers.iter().any(|o| &o.name == n) {
            let known: Vec<&str> = env
                .fleet
                .observers
                .iter()
                .map(|o| o.name.as_str())
                .collect();
            bail!(
                "--host {n}: environment {} has no such observer (observers: {})",
                env.name,
                known.join(", ")
            );
        }
    }
    Ok(env
        .fleet
        .observers
        .iter()
        .filter(|o| names.is_empty() || names.contains(&o.name))
        .collect())
}
