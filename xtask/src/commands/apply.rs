//! `cargo xtask apply`: server-side apply of the desired objects, optional prune, and the wait for
//! the load balancers' addresses.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use serde_json::json;

use crate::cli::{ApplyArgs, OutputFormat};
use crate::cluster::execute::{self, Execution};
use crate::cluster::lb::{self, Address};
use crate::cluster::plan::{self, Planner};
use crate::cluster::{block_on, Cluster};
use crate::lock::{self, Guard, Halt, Stop};
use crate::output::report::{ObjectResult, ObjectTotals, Report};
use crate::signals;
use crate::{commands::planfile, commands::prompt, environments, output, output::exit};

pub struct ApplyReport {
    environment: String,
    context: String,
    objects: Vec<ObjectResult>,
    addresses: Vec<Address>,
    /// Live addresses that differ from the recorded ones, when not accepted: an error.
    address_mismatch: Option<String>,
    /// Why it stopped before its end, if it did.
    stopped: Option<Stop>,
}

impl Report for ApplyReport {
    fn json(&self) -> serde_json::Value {
        json!({
            "environment": self.environment,
            "context": self.context,
            "objects": self.objects,
            "addresses": self.addresses,
            "summary": ObjectTotals::of(&self.objects),
            "error": self.address_mismatch,
            "stopped": self.stopped.as_ref().map(ToString::to_string),
        })
    }

    fn print(&self) {
        for r in &self.objects {
            output::outcome(&r.object, &r.result);
        }
        let t = ObjectTotals::of(&self.objects);
        output::line(&format!(
            "applied {}: {} created, {} configured, {} unchanged, {} pruned",
            self.environment, t.created, t.configured, t.unchanged, t.pruned
        ));
        if t.kept > 0 {
            output::warning(&format!(
                "{} object(s) this tool wrote for {} are no longer desired; rerun with --prune to delete them",
                t.kept, self.environment
            ));
        }
        for a in &self.addresses {
            output::line(&format!(
                "  {:<12} {:<16} {}",
                a.service,
                a.live,
                if a.matches {
                    "= recorded".to_string()
                } else {
                    format!("!= recorded {}", a.recorded.as_deref().unwrap_or("(none)"))
                }
            ));
        }
        if let Some(msg) = &self.address_mismatch {
            output::error(&anyhow::anyhow!("{msg}"));
        }
        if let Some(stop) = &self.stopped {
            output::error(&anyhow::anyhow!("apply stopped: {stop}"));
        }
    }

    fn exit_code(&self) -> u8 {
        if let Some(Stop::Interrupted(_)) = self.stopped {
            signals::INTERRUPTED
        } else if self.address_mismatch.is_some() || self.stopped.is_some() {
            exit::ERROR
        } else {
            exit::OK
        }
    }
}

pub fn run(args: &ApplyArgs, format: OutputFormat) -> Result<ApplyReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(crate::output::hinted(
            format!(
                "apply changes environment {} and asks for confirmation, but there is no terminal to ask on",
                env.name
            ),
            format!(
                "pass --yes (after reviewing `cargo xtask diff --env {}`), or run it interactively",
                env.name
            ),
        ));
    }
    let objects = manifests::desired_objects(&env);
    block_on(async {
        let interrupt = crate::commands::install_interrupt()?;
        let cluster = Cluster::connect(&env, &args.cluster, args.timeout).await?;
        let plan = plan::plan(&cluster, &env, &objects, Planner::DryRun).await?;
        plan.refuse_conflicts(&env.name, args.force_conflicts)?;
        // Asked before the lock is taken; what moved while the operator read is refused below.
        let confirmed = if args.yes || plan.in_sync() {
            None
        } else {
            output::to_stderr(format == OutputFormat::Json);
            plan.print(&format!(
                "cluster diff for {} (context {}, {})",
                env.name, cluster.context, cluster.server
            ));
            output::to_stderr(false);
            let stdin = std::io::BufReader::new(std::io::stdin());
            match prompt::confirm("Apply", &env, Some(&interrupt), stdin).await? {
                prompt::Answer::Yes => Some(planfile::objects(&plan)),
                prompt::Answer::No => bail!("not confirmed; nothing was changed"),
                prompt::Answer::Interrupted(signal) => {
                    return Ok(ApplyReport::new(
                        &env,
                        &cluster,
                        Some(Stop::Interrupted(signal)),
                    ))
                }
            }
        };
        let lock = lock::acquire(&cluster, &env, args.lock.break_lock, Some(&interrupt)).await?;
        let guard = Guard {
            lock: Some(&lock),
            interrupt: Some(&interrupt),
        };
        let result = async {
            let plan = match &confirmed {
                None => plan,
                Some(was) => {
                    let now = plan::plan(&cluster, &env, &objects, Planner::DryRun).await?;
                    let moved = planfile::moved_objects(was, &planfile::objects(&now));
                    if !moved.is_empty() {
                        bail!(
                            "the plan you confirmed no longer matches the live state; nothing was changed:\n  - {}\n\
                             Run apply again and review the new plan",
                            moved.join("\n  - ")
                        );
                    }
                    now
                }
            };
            apply(&cluster, &env, &plan, args, guard).await
        }
        .await;
        lock.release(&cluster).await;
        result
    })
}

impl ApplyReport {
    fn new(env: &manifests::Environment, cluster: &Cluster, stopped: Option<Stop>) -> ApplyReport {
        ApplyReport {
            environment: env.name.clone(),
            context: cluster.context.clone(),
            objects: vec![],
            addresses: vec![],
            address_mismatch: None,
            stopped,
        }
    }
}

async fn apply(
    cluster: &Cluster,
    env: &manifests::Environment,
    plan: &plan::Plan,
    args: &ApplyArgs,
    guard: Guard<'_>,
) -> Result<ApplyReport> {
    let deployed_at = crate::provenance::now();
    let how = Execution {
        force: args.force_conflicts,
        prune: args.prune,
        timeout: args.timeout,
        progress: false,
        guard,
        deployed_at: &deployed_at,
    };
    let done = execute::execute_all(cluster, &plan.changes, &how).await?;
    let mut report = ApplyReport {
        environment: env.name.clone(),
        context: cluster.context.clone(),
        objects: done.results,
        addresses: vec![],
        address_mismatch: None,
        stopped: done.stopped,
    };
    if args.no_wait || report.stopped.is_some() {
        return Ok(report);
    }
    let live = match lb::wait_for_addresses(cluster, env, args.timeout, &guard).await {
        Ok(live) => live,
        Err(Halt::Stopped(stop)) => {
            report.stopped = Some(stop);
            return Ok(report);
        }
        Err(Halt::Failed(e)) => return Err(e),
    };
    report.addresses = lb::compare(env, &live);
    if let Some(msg) = lb::mismatch_message(env, &report.addresses) {
        if args.accept_live_addresses {
            output::warning(&msg);
        } else {
            report.address_mismatch = Some(format!("{msg}; or pass --accept-live-addresses"));
        }
    }
    Ok(report)
}
