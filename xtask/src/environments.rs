//! Choosing environments and refusing invalid ones.

use anyhow::{bail, Result};
use manifests::Environment;

use crate::cli::{ClusterSelection, EnvSelection};
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

/// The one environment a cluster command acts on: `--env`, or the environment pinned to the
/// kubeconfig's current context.
pub fn select_one(selection: &ClusterSelection) -> Result<Environment> {
    if let Some(name) = &selection.env {
        return select(&EnvSelection {
            env: Some(name.clone()),
        })
        .map(|mut v| v.remove(0));
    }
    let current = kube::config::Kubeconfig::read()
        .ok()
        .and_then(|k| k.current_context);
    let all = manifests::environments::all();
    match current.as_deref().and_then(|c| all.iter().find(|e| e.kube_context == c)) {
        Some(env) => Ok(env.clone()),
        None => bail!(
            "no --env given and the kubeconfig's current context ({}) is not pinned by any environment; pass --env ({})",
            current.as_deref().unwrap_or("none"),
            manifests::environments::names().join(", ")
        ),
    }
}
