//! `cargo xtask push`: render each observer's files and roll them out over SSH.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use hosts::{HostFiles, Observer};
use manifests::Environment;
use serde_json::json;

use crate::cli::{OutputFormat, PushArgs};
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::fleet::rollout::{self, Options};
use crate::fleet::Fleet;
use crate::lock::{self, Guard, Stop};
use crate::output::report::{host_counts, merge_hosts, HostReport, HostResult, Report};
use crate::signals;
use crate::{
    cluster::lb, commands::planfile, commands::prompt, environments, output, output::exit,
};

pub struct PushReport {
    environment: String,
    dry_run: bool,
    pub hosts: Vec<HostReport>,
    /// Why the push stopped before its end, if it did.
    stopped: Option<Stop>,
}

impl Report for PushReport {
    fn json(&self) -> serde_json::Value {
        json!({
            "environment": self.environment,
            "dry_run": self.dry_run,
            "hosts": self.hosts,
            "summary": host_counts(&self.hosts),
            "stopped": self.stopped.as_ref().map(ToString::to_string),
        })
    }

    fn print(&self) {
        for h in &self.hosts {
            h.print("");
        }
        let c = host_counts(&self.hosts);
        output::line(&format!(
            "hosts of {}: {} updated, {} unchanged, {} would change, {} unreachable, {} rolled back, {} failed, {} not touched, {} refused",
            self.environment,
            c["updated"],
            c["unchanged"],
            c["would_change"],
            c["unreachable"],
            c["rolled_back"],
            c["failed"],
            c["not_touched"],
            c["refused"],
        ));
        if let Some(stop) = &self.stopped {
            output::error(&anyhow::anyhow!("the push stopped: {stop}"));
        }
    }

    fn exit_code(&self) -> u8 {
        if let Some(Stop::Interrupted(_)) = self.stopped {
            signals::INTERRUPTED
        } else if self.stopped.is_some() || self.hosts.iter().any(|h| !h.ok()) {
            exit::ERROR
        } else if self.dry_run
            && self
                .hosts
                .iter()
                .any(|h| h.result == HostResult::WouldChange)
        {
            exit::CHANGES
        } else {
            exit::OK
        }
    }
}

pub fn run(args: &PushArgs, format: OutputFormat) -> Result<PushReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    let wanted = environments::targets(&env, &args.targets.hosts)?;
    if !args.dry_run {
        crate::fleet::ssh::refuse_the_drift_key_as_identity(&env, &args.ssh)?;
        if !args.yes && !std::io::stdin().is_terminal() {
            return Err(crate::output::hinted(
                format!(
                    "push changes the observers of environment {} and asks for confirmation, but there is no \
                     terminal to ask on",
                    env.name
                ),
                format!(
                    "pass --yes (after reviewing `cargo xtask push --env {} --dry-run`), or run it interactively",
                    env.name
                ),
            ));
        }
    }
    block_on(async {
        let mut files = lb::host_files(&env, args.targets.addresses, &args.cluster).await?;
        let secrets = std::sync::Arc::new(crate::fleet::secrets::fill(&mut files)?);
        if args.dry_run {
            // The secrets were read above: not again.
            return push_expecting(
                &env,
                &wanted,
                &files,
                args,
                format,
                Guard::NONE,
                (None, secrets),
            )
            .await;
        }
        let interrupt = crate::commands::install_interrupt()?;
        // Asked before the lock is taken; what moved while the operator read is refused below.
        let confirmed = if args.yes {
            None
        } else {
            let fleet = Fleet::read(
                &env,
                &wanted,
                &args.ssh,
                crate::fleet::hostops::ReadMode::Quick,
            )
            .await;
            let planned = fleet.plan(&env, &files);
            let hosts = fleet.plan_reports(&planned);
            let fingerprint = planfile::hosts(&hosts, &planned, &files);
            drop(planned);
            let refused = fleet.refuse_the_drift_key();
            fleet.close().await;
            refused?;
            output::to_stderr(format == OutputFormat::Json);
            for h in &hosts {
                h.print_plan();
            }
            output::to_stderr(false);
            if hosts.iter().all(|h| h.result != HostResult::WouldChange) {
                Some(fingerprint)
            } else {
                let stdin = std::io::BufReader::new(std::io::stdin());
                match prompt::confirm("Push", &env, Some(&interrupt), stdin).await? {
                    prompt::Answer::Yes => Some(fingerprint),
                    prompt::Answer::No => bail!("not confirmed; nothing was changed"),
                    prompt::Answer::Interrupted(signal) => {
                        return Ok(PushReport {
                            environment: env.name.clone(),
                            dry_run: false,
                            hosts,
                            stopped: Some(Stop::Interrupted(signal)),
                        })
                    }
                }
            }
        };
        // A push changes the environment: it takes the deploy lock like deploy and apply.
        let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
        let lock = lock::acquire(&cluster, &env, args.lock.break_lock, Some(&interrupt)).await?;
        let guard = Guard {
            lock: Some(&lock),
            interrupt: Some(&interrupt),
        };
        let result = push_expecting(
            &env,
            &wanted,
            &files,
            args,
            format,
            guard,
            (confirmed.as_deref(), secrets),
        )
        .await;
        lock.release(&cluster).await;
        result
    })
}

/// The push of `files` to the `wanted` observers of `env` (the benchmarks drive it in-process).
pub async fn push(
    env: &Environment,
    wanted: &[&Observer],
    files: &[(&Observer, HostFiles)],
    args: &PushArgs,
    format: OutputFormat,
    guard: Guard<'_>,
) -> Result<PushReport> {
    // The secret files are read here too: the benchmarks and tests hand over rendered files.
    let mut files = files.to_vec();
    let secrets = std::sync::Arc::new(crate::fleet::secrets::fill(&mut files)?);
    push_expecting(env, wanted, &files, args, format, guard, (None, secrets)).await
}

/// The push; with `expected` (the hosts as the operator confirmed them), refused unless the hosts
/// read now are as they were then.
async fn push_expecting(
    env: &Environment,
    wanted: &[&Observer],
    files: &[(&Observer, HostFiles)],
    args: &PushArgs,
    format: OutputFormat,
    guard: Guard<'_>,
    (expected, secrets): (
        Option<&[planfile::PlannedHost]>,
        std::sync::Arc<crate::fleet::secrets::Resolved>,
    ),
) -> Result<PushReport> {
    let fleet = Fleet::read(
        env,
        wanted,
        &args.ssh,
        crate::fleet::hostops::ReadMode::Quick,
    )
    .await;
    let planned = fleet.plan(env, files);
    let mut hosts = fleet.plan_reports(&planned);
    if let Some(was) = expected {
        let moved = planfile::moved_hosts(was, &planfile::hosts(&hosts, &planned, files));
        if !moved.is_empty() {
            drop(planned);
            fleet.close().await;
            bail!(
                "the plan you confirmed no longer matches the hosts; nothing was changed:\n  - {}\n\
                 Run push again and review the new plan",
                moved.join("\n  - ")
            );
        }
    } else if format == OutputFormat::Text {
        for h in &hosts {
            h.print_plan();
        }
    }
    let mut stopped = None;
    if !args.dry_run {
        if let Err(e) = fleet.refuse_the_drift_key() {
            drop(planned);
            fleet.close().await;
            return Err(e);
        }
        let targets = rollout::targets(&planned);
        let mut opts = Options::new(
            env,
            &args.rollout,
            &args.ssh,
            format == OutputFormat::Json,
            guard,
        );
        opts.secrets = secrets;
        let rolled = rollout::update(env, &targets, &opts).await;
        merge_hosts(&mut hosts, rolled.reports);
        stopped = rolled.stopped;
    }
    drop(planned);
    fleet.close().await;
    Ok(PushReport {
        environment: env.name.clone(),
        dry_run: args.dry_run,
        hosts,
        stopped,
    })
}
