//! `cargo xtask push`: render each observer's files and roll them out over SSH.

use anyhow::Result;
use hosts::{HostFiles, Observer};
use manifests::Environment;
use serde_json::json;

use crate::cli::{OutputFormat, PushArgs};
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::fleet::Fleet;
use crate::lock::{self, Guard, Stop};
use crate::report::{host_counts, merge_hosts, HostReport, HostResult, Report};
use crate::rollout::{self, Options};
use crate::signals::{self, Interrupt};
use crate::{environments, exit, lb, output};

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
        crate::ssh::refuse_the_drift_key_as_identity(&env, &args.ssh)?;
    }
    block_on(async {
        let files = lb::host_files(&env, args.targets.addresses, &args.cluster).await?;
        if args.dry_run {
            return push(&env, &wanted, &files, args, format, Guard::NONE).await;
        }
        // A push changes the environment: it takes the deploy lock like deploy and apply.
        let interrupt = Interrupt::install()?;
        let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
        let lock = lock::acquire(&cluster, &env, args.lock.break_lock, Some(&interrupt)).await?;
        let guard = Guard {
            lock: Some(&lock),
            interrupt: Some(&interrupt),
        };
        let result = push(&env, &wanted, &files, args, format, guard).await;
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
    let fleet = Fleet::read(env, wanted, &args.ssh, crate::hostops::ReadMode::Quick).await;
    let planned = fleet.plan(env, files);
    let mut hosts = fleet.plan_reports(&planned);
    if format == OutputFormat::Text {
        for h in &hosts {
            h.print_plan();
        }
    }
    let mut stopped = None;
    if !args.dry_run {
        if let Err(e) = fleet.refuse_the_drift_key() {
            fleet.close().await;
            return Err(e);
        }
        let targets = rollout::targets(&planned);
        let opts = Options::new(
            env,
            &args.rollout,
            &args.ssh,
            format == OutputFormat::Json,
            guard,
        );
        let rolled = rollout::update(env, &targets, &opts).await;
        merge_hosts(&mut hosts, rolled.reports);
        stopped = rolled.stopped;
    }
    fleet.close().await;
    Ok(PushReport {
        environment: env.name.clone(),
        dry_run: args.dry_run,
        hosts,
        stopped,
    })
}
