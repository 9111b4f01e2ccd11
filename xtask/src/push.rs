//! `cargo xtask push`: render each observer's files and roll them out over SSH.

use anyhow::{bail, Result};
use hosts::{HostFiles, Observer};
use manifests::{AddressSource, Environment};
use serde_json::json;

use crate::cli::{AddressChoice, OutputFormat, PushArgs};
use crate::cluster::{block_on, Cluster};
use crate::rollout::{self, HostReport, HostResult, Options};
use crate::{environments, exit, lb, output};

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

/// Host files for every observer, from the recorded or the live load-balancer addresses.
pub async fn host_files<'e>(
    env: &'e Environment,
    choice: AddressChoice,
    cluster: &crate::cluster::ClusterArgs,
) -> Result<Vec<(&'e Observer, HostFiles)>> {
    let source = match choice {
        AddressChoice::Recorded => AddressSource::Recorded,
        AddressChoice::Live => {
            let c = Cluster::connect(env, cluster).await?;
            AddressSource::Live(lb::current_addresses(&c, env).await?)
        }
    };
    Ok(manifests::render_host_files(env, &source)?)
}

pub fn run(args: &PushArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    let wanted = targets(&env, &args.hosts)?;
    block_on(async {
        let files = host_files(&env, args.addresses, &args.cluster).await?;
        let targets: Vec<(&Observer, &HostFiles)> = files
            .iter()
            .filter(|(o, _)| wanted.iter().any(|w| w.name == o.name))
            .map(|(o, f)| (*o, f))
            .collect();
        let opts = Options {
            dry_run: args.dry_run,
            health_timeout: args.health_timeout,
            quiet: format == OutputFormat::Json,
        };
        let reports = rollout::rollout(&env, &targets, &args.ssh, &opts).await;
        Ok(report(&env, &reports, args.dry_run, format))
    })
}

/// Prints the per-host results and returns the exit code.
pub fn report(
    env: &Environment,
    reports: &[HostReport],
    dry_run: bool,
    format: OutputFormat,
) -> u8 {
    let count = |r: HostResult| reports.iter().filter(|h| h.result == r).count();
    let failed = reports.iter().filter(|h| !h.ok()).count();
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": env.name,
                "dry_run": dry_run,
                "hosts": reports,
                "summary": {
                    "unchanged": count(HostResult::Unchanged),
                    "updated": count(HostResult::Updated),
                    "would_change": count(HostResult::WouldChange),
                    "unreachable": count(HostResult::Unreachable),
                    "rolled_back": count(HostResult::RolledBack),
                    "failed": count(HostResult::Failed),
                    "not_touched": count(HostResult::NotTouched),
                    "refused": count(HostResult::Refused),
                },
            }))
            .expect("report serializes")
        ),
        OutputFormat::Text => {
            for h in reports {
                h.print("");
            }
            output::line(&format!(
                "hosts of {}: {} updated, {} unchanged, {} would change, {} unreachable, {} rolled back, {} failed, {} not touched, {} refused",
                env.name,
                count(HostResult::Updated),
                count(HostResult::Unchanged),
                count(HostResult::WouldChange),
                count(HostResult::Unreachable),
                count(HostResult::RolledBack),
                count(HostResult::Failed),
                count(HostResult::NotTouched),
                count(HostResult::Refused)
            ));
        }
    }
    if failed > 0 {
        exit::ERROR
    } else if dry_run && count(HostResult::WouldChange) > 0 {
        exit::CHANGES
    } else {
        exit::OK
    }
}
