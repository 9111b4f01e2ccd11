//! `cargo xtask deploy`: the whole rollout in order, under the deploy lock: check, plan (cluster
//! and hosts), confirm, per-pod Services, their addresses, the observers (rolling, health-gated)
//! rendered from those live addresses, then the monitoring objects.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use hosts::Observer;
use manifests::{AddressSource, Environment};
use serde_json::json;

use crate::cli::{DeployArgs, OutputFormat};
use crate::cluster::{block_on, Cluster, ObjectRef};
use crate::execute::{self, Execution};
use crate::fleet::Fleet;
use crate::lb::{self, Addresses};
use crate::plan::{self, Action, Plan, Planner};
use crate::report::{
    host_counts, merge_hosts, HostReport, HostResult, ObjectResult, ObjectTotals, Report,
};
use crate::rollout::{self, Options};
use crate::{environments, exit, lock, output};

pub struct DeployReport {
    environment: String,
    /// With --dry-run: the plan only.
    dry_run: Option<Plan>,
    objects: Vec<ObjectResult>,
    hosts: Vec<HostReport>,
    monitored: Vec<String>,
}

impl Report for DeployReport {
    fn json(&self) -> serde_json::Value {
        match &self.dry_run {
            Some(plan) => json!({
                "environment": self.environment,
                "dry_run": true,
                "cluster": plan,
                "hosts": self.hosts,
            }),
            None => json!({
                "environment": self.environment,
                "objects": self.objects,
                "hosts": self.hosts,
                "monitored_observers": self.monitored,
                "totals": {
                    "objects": ObjectTotals::of(&self.objects),
                    "hosts": host_counts(&self.hosts),
                },
            }),
        }
    }

    fn print(&self) {
        if self.dry_run.is_some() {
            // The plan was shown before anything else.
            return;
        }
        output::line(&format!("deploy of {}:", self.environment));
        for s in &self.objects {
            output::outcome(&s.object, &s.result);
        }
        for h in &self.hosts {
            h.print("host ");
        }
        let t = ObjectTotals::of(&self.objects);
        let c = host_counts(&self.hosts);
        output::line(&format!(
            "totals: objects {} created, {} configured, {} unchanged, {} pruned; hosts {} updated, {} unchanged, {} failed; monitoring lists {} observer(s)",
            t.created,
            t.configured,
            t.unchanged,
            t.pruned,
            c["updated"],
            c["unchanged"],
            self.hosts.iter().filter(|h| !h.ok()).count(),
            self.monitored.len()
        ));
    }

    fn exit_code(&self) -> u8 {
        match &self.dry_run {
            Some(_)
                if self
                    .hosts
                    .iter()
                    .any(|h| h.result == HostResult::Unreachable) =>
            {
                exit::ERROR
            }
            Some(plan)
                if plan.in_sync()
                    && self.hosts.iter().all(|h| h.result == HostResult::Unchanged) =>
            {
                exit::OK
            }
            Some(_) => exit::CHANGES,
            None if self.hosts.iter().all(HostReport::ok) => exit::OK,
            None => exit::ERROR,
        }
    }
}

pub fn run(args: &DeployArgs, format: OutputFormat) -> Result<DeployReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        bail!(
            "deploy changes environment {} and asks for confirmation, but there is no terminal to ask on: \
             pass --yes (after reviewing `cargo xtask deploy --env {} --dry-run`), or run it interactively",
            env.name,
            env.name
        );
    }
    block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster).await?;
        let lock = if args.dry_run {
            None
        } else {
            Some(lock::acquire(&cluster, &env).await?)
        };
        let result = deploy(&cluster, &env, args, format).await;
        if let Some(l) = lock {
            l.release(&cluster).await;
        }
        result
    })
}

/// The deploy itself (the caller holds the lock); the benchmarks drive it in-process.
pub async fn deploy(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: OutputFormat,
) -> Result<DeployReport> {
    let text = format == OutputFormat::Text;
    // The plan: every desired object (monitoring listing every observer), and every host.
    let reads = plan::read_cluster_and_hosts(cluster, env, &args.ssh, Planner::DryRun).await?;
    let (source, note) = lb::source(Addresses::LiveOrRecorded, &reads.live)?;
    let files = manifests::render_host_files(env, &source)?;
    let fleet = reads.fleet;
    let cluster_plan = reads.plan;
    let mut hosts = fleet.plan_reports(&fleet.plan(env, &files));
    tracing::info!("hosts read and planned");
    if text {
        cluster_plan.print(&format!(
            "cluster diff for {} (context {}, {})",
            env.name, cluster.context, cluster.server
        ));
        output::line(&format!("hosts of {} ({note}):", env.name));
        for h in &hosts {
            h.print_plan();
        }
        output::line(&format!(
            "{} host(s) to update, {} unchanged",
            hosts
                .iter()
                .filter(|h| h.result == HostResult::WouldChange)
                .count(),
            hosts
                .iter()
                .filter(|h| h.result == HostResult::Unchanged)
                .count()
        ));
    }
    if args.dry_run {
        fleet.close().await;
        return Ok(DeployReport {
            environment: env.name.clone(),
            dry_run: Some(cluster_plan),
            objects: vec![],
            hosts,
            monitored: vec![],
        });
    }
    if let Err(e) = cluster_plan.refuse_conflicts(&env.name, args.force_conflicts) {
        fleet.close().await;
        return Err(e);
    }
    let nothing_to_do =
        cluster_plan.in_sync() && hosts.iter().all(|h| h.result != HostResult::WouldChange);
    if !nothing_to_do && !args.yes && !confirm(env)? {
        fleet.close().await;
        bail!("not confirmed; nothing was changed");
    }
    let result = carry_out(cluster, env, args, text, &cluster_plan, &fleet, &mut hosts).await;
    fleet.close().await;
    let (objects, monitored) = result?;
    Ok(DeployReport {
        environment: env.name.clone(),
        dry_run: None,
        objects,
        hosts,
        monitored,
    })
}

/// Steps 1 to 5, once confirmed.
async fn carry_out(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    text: bool,
    cluster_plan: &Plan,
    fleet: &Fleet<'_>,
    hosts: &mut [HostReport],
) -> Result<(Vec<ObjectResult>, Vec<String>)> {
    let how = Execution {
        force: args.force_conflicts,
        prune: args.prune,
        timeout: args.timeout,
        progress: text,
    };
    // 1. The per-pod load-balancer Services.
    let lb_refs: BTreeSet<ObjectRef> = manifests::objects::load_balancer_services(env)
        .iter()
        .map(ObjectRef::of)
        .collect();
    let mut objects = execute::execute_all(
        cluster,
        cluster_plan
            .changes
            .iter()
            .filter(|c| lb_refs.contains(&c.reference)),
        &how,
    )
    .await?;
    tracing::info!("load-balancer Services applied");
    // 2. Their addresses: the observers are configured from what the cloud gave.
    let live = lb::wait_for_addresses(
        cluster,
        env,
        args.timeout,
        std::time::Duration::from_millis(250),
    )
    .await?;
    if let Some(msg) = lb::mismatch_message(env, &lb::compare(env, &live)) {
        output::warning(&format!(
            "{msg}. This deploy configures the observers with the live addresses"
        ));
    }
    // 3. The observers, rendered from the live addresses, one at a time behind the health gate.
    let files = manifests::render_host_files(env, &AddressSource::Live(live))?;
    let planned = fleet.plan(env, &files);
    let targets = rollout::targets(&planned);
    let opts = Options {
        health_timeout: args.rollout.health_timeout,
        quiet: !text,
    };
    merge_hosts(hosts, rollout::update(env, &targets, &opts).await);
    tracing::info!("hosts updated");
    // 4. Monitoring lists the observers that are healthy now.
    let healthy = healthy_observers(env, fleet, hosts).await;
    let monitoring = manifests::objects::monitoring_objects(env, &healthy);
    let monitoring_plan =
        plan::plan_with(cluster, env, &monitoring, false, Planner::DryRun).await?;
    objects.extend(
        execute::execute_all(
            cluster,
            monitoring_plan
                .changes
                .iter()
                .filter(|c| c.action != Action::Prune),
            &how,
        )
        .await?,
    );
    tracing::info!("monitoring applied");
    // 5. Prune what is no longer desired.
    objects.extend(
        execute::execute_all(
            cluster,
            cluster_plan
                .changes
                .iter()
                .filter(|c| c.action == Action::Prune),
            &how,
        )
        .await?,
    );
    Ok((objects, healthy.iter().map(|o| o.name.clone()).collect()))
}

/// Observers updated behind the gate, unchanged ones that were healthy when read, and the others
/// (rolled back, not touched, refused) if they answer healthy now.
async fn healthy_observers<'e>(
    env: &'e Environment,
    fleet: &Fleet<'_>,
    hosts: &[HostReport],
) -> Vec<&'e Observer> {
    let result = |name: &str| hosts.iter().find(|h| h.host == name).map(|h| h.result);
    let to_probe: Vec<&str> = hosts
        .iter()
        .filter(|h| {
            matches!(
                h.result,
                HostResult::RolledBack
                    | HostResult::NotTouched
                    | HostResult::Failed
                    | HostResult::Refused
            )
        })
        .map(|h| h.host.as_str())
        .collect();
    let now = if to_probe.is_empty() {
        Default::default()
    } else {
        fleet.probe(env, &to_probe).await
    };
    env.fleet
        .observers
        .iter()
        .filter(|o| match result(&o.name) {
            Some(HostResult::Updated) => true,
            Some(HostResult::Unchanged) => fleet
                .get(&o.name)
                .is_some_and(|r| r.observed.health.healthy()),
            _ => now.get(&o.name).is_some_and(|h| h.healthy()),
        })
        .collect()
}

fn confirm(env: &Environment) -> Result<bool> {
    eprint!(
        "Deploy this plan to environment {} (context {})? [y/N] ",
        env.name, env.kube_context
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
