//! `cargo xtask deploy`: the whole rollout in order, under the deploy lock: check, plan (cluster
//! and hosts), confirm, per-pod Services, their addresses, the observers (rolling, health-gated)
//! rendered from those live addresses, then the monitoring objects listing the healthy observers.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use hosts::Observer;
use manifests::{AddressSource, Environment, Object};
use serde::Serialize;
use serde_json::json;

use crate::apply::Outcome;
use crate::cli::{DeployArgs, OutputFormat};
use crate::cluster::{block_on, Applied, Cluster, ObjectRef};
use crate::hostops::Health;
use crate::plan::{self, Action, Planner};
use crate::rollout::{Fleet, HostReport, HostResult, Options};
use crate::{diff, environments, exit, lb, lock, output};

#[derive(Debug, Clone, Serialize)]
struct ObjectSummary {
    object: String,
    result: Outcome,
}

pub fn run(args: &DeployArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
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
        let result = deploy(&cluster, &env, args, Some(format)).await;
        if let Some(l) = lock {
            l.release(&cluster).await;
        }
        result
    })
}

fn text(format: Option<OutputFormat>) -> bool {
    format == Some(OutputFormat::Text)
}

/// The deploy itself (the caller holds the lock); the benchmarks drive it in-process.
pub async fn deploy(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: Option<OutputFormat>,
) -> Result<u8> {
    // The plan: every desired object (monitoring listing every observer), and every host.
    let plan::Reads {
        plan: cluster_plan,
        live,
        mut fleet,
    } = plan::read_cluster_and_hosts(cluster, env, &args.ssh, Planner::DryRun).await?;
    let (source, note) = match live {
        Ok(live) => (
            AddressSource::Live(live),
            "rendered from the live load-balancer addresses",
        ),
        Err(_) => (
            AddressSource::Recorded,
            "rendered from the recorded addresses until the load balancers have theirs",
        ),
    };
    let files = manifests::render_host_files(env, &source)?;
    fleet.plan(env, &files);
    tracing::info!("hosts read and planned");
    let host_changes = fleet
        .reports()
        .iter()
        .filter(|r| r.result == HostResult::WouldChange)
        .count();
    if text(format) {
        diff::print_plan(&env.name, cluster, &cluster_plan);
        output::line(&format!("hosts of {} ({note}):", env.name));
        fleet.print_plan();
        output::line(&format!(
            "{} host(s) to update, {} unchanged",
            host_changes,
            fleet
                .reports()
                .iter()
                .filter(|r| r.result == HostResult::Unchanged)
                .count()
        ));
    }
    let unreachable: Vec<String> = fleet
        .reports()
        .iter()
        .filter(|r| r.result == HostResult::Unreachable)
        .map(|r| r.host.clone())
        .collect();
    if args.dry_run {
        let reports = fleet.reports();
        fleet.close().await;
        if format == Some(OutputFormat::Json) {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"environment": env.name, "dry_run": true, "cluster": cluster_plan, "hosts": reports})
                )?
            );
        }
        return Ok(if !unreachable.is_empty() {
            exit::ERROR
        } else if cluster_plan.in_sync() && host_changes == 0 {
            exit::OK
        } else {
            exit::CHANGES
        });
    }
    if !args.force_conflicts && cluster_plan.summary.conflicts > 0 {
        fleet.close().await;
        let list = cluster_plan.conflict_lines();
        bail!(
            "nothing was changed: {}\nRerun with --force-conflicts if this tool should own them",
            list.join("\n")
        );
    }
    let nothing_to_do = cluster_plan.in_sync() && host_changes == 0;
    if !nothing_to_do && !args.yes && !confirm(env)? {
        fleet.close().await;
        bail!("not confirmed; nothing was changed");
    }

    // 1. The per-pod load-balancer Services.
    let lb_refs: BTreeSet<ObjectRef> = manifests::objects::load_balancer_services(env)
        .iter()
        .map(ObjectRef::of)
        .collect();
    let mut summaries = Vec::new();
    for change in cluster_plan
        .changes
        .iter()
        .filter(|c| lb_refs.contains(&c.reference))
    {
        summaries.push(apply_change(cluster, change, args, format).await?);
    }
    // 2. Their addresses: the observers are configured from what the cloud gave.
    tracing::info!("load-balancer Services applied");
    let live = lb::wait_for_addresses(
        cluster,
        env,
        args.timeout,
        std::time::Duration::from_millis(250),
    )
    .await?;
    let addresses = lb::compare(env, &live);
    if let Some(msg) = lb::mismatch_message(env, &addresses) {
        output::warning(&format!(
            "{msg}. This deploy configures the observers with the live addresses"
        ));
    }
    // 3. The observers, rendered from the live addresses, one at a time behind the health gate.
    let files = manifests::render_host_files(env, &AddressSource::Live(live))?;
    fleet.plan(env, &files);
    fleet
        .update(
            env,
            &Options {
                dry_run: false,
                health_timeout: args.health_timeout,
                quiet: !text(format),
            },
        )
        .await;
    // 4. Monitoring lists the observers that are healthy now.
    tracing::info!("hosts updated");
    let healthy = healthy_observers(env, &fleet).await;
    tracing::info!("hosts probed");
    let hosts_report = fleet.reports();
    fleet.close().await;
    let monitoring = manifests::objects::monitoring_objects(env, &healthy);
    let monitoring_plan =
        plan::plan_with(cluster, env, &monitoring, false, Planner::DryRun).await?;
    for change in monitoring_plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Prune)
    {
        summaries.push(apply_change(cluster, change, args, format).await?);
    }
    tracing::info!("monitoring applied");
    // 5. Prune what is no longer desired.
    for change in cluster_plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
    {
        let result = if args.prune {
            cluster
                .delete_and_wait(&change.reference, args.timeout)
                .await?;
            Outcome::Pruned
        } else {
            Outcome::Kept
        };
        summaries.push(ObjectSummary {
            object: change.object.clone(),
            result,
        });
    }
    report(env, &summaries, &hosts_report, &healthy, format)
}

async fn apply_change(
    cluster: &Cluster,
    change: &plan::Change,
    args: &DeployArgs,
    format: Option<OutputFormat>,
) -> Result<ObjectSummary> {
    let result = match (change.action, &change.desired) {
        (Action::Create | Action::Update, Some(object)) => {
            if change.deleting.is_some() {
                // Applying now would change an object about to disappear: create it anew.
                cluster.wait_gone(&change.reference, args.timeout).await?;
            }
            apply_object(cluster, object, args.force_conflicts).await?;
            if change.action == Action::Create {
                Outcome::Created
            } else {
                Outcome::Configured
            }
        }
        _ => Outcome::Unchanged,
    };
    if text(format) && result != Outcome::Unchanged {
        output::outcome(&change.object, &format!("{result:?}").to_lowercase());
    }
    Ok(ObjectSummary {
        object: change.object.clone(),
        result,
    })
}

async fn apply_object(cluster: &Cluster, object: &Object, force: bool) -> Result<()> {
    match cluster.apply(object, false, force).await? {
        Applied::Ok(_) => Ok(()),
        Applied::Conflicts(c) => bail!(
            "{}: {} is now owned by \"{}\"; rerun the deploy (or pass --force-conflicts)",
            ObjectRef::of(object),
            c[0].field,
            c[0].manager
        ),
    }
}

/// Observers updated behind the gate, unchanged ones that were healthy when read, and the others
/// (rolled back, not touched) if they answer healthy now.
async fn healthy_observers<'e>(env: &'e Environment, fleet: &Fleet<'_>) -> Vec<&'e Observer> {
    let reports = fleet.reports();
    let at_read = fleet.health();
    let needs_probe = reports.iter().any(|r| {
        matches!(
            r.result,
            HostResult::RolledBack
                | HostResult::NotTouched
                | HostResult::Failed
                | HostResult::Refused
        )
    });
    let now = if needs_probe {
        fleet.probe(env).await
    } else {
        vec![]
    };
    let healthy = |list: &[(String, Option<Health>)], name: &str| {
        list.iter()
            .any(|(n, h)| n == name && h.as_ref().is_some_and(Health::healthy))
    };
    env.fleet
        .observers
        .iter()
        .filter(
            |o| match reports.iter().find(|r| r.host == o.name).map(|r| r.result) {
                Some(HostResult::Updated) => true,
                Some(HostResult::Unchanged) => healthy(&at_read, &o.name),
                _ => healthy(&now, &o.name),
            },
        )
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

fn report(
    env: &Environment,
    objects: &[ObjectSummary],
    hosts: &[HostReport],
    healthy: &[&Observer],
    format: Option<OutputFormat>,
) -> Result<u8> {
    let count = |o: Outcome| objects.iter().filter(|s| s.result == o).count();
    let hcount = |r: HostResult| hosts.iter().filter(|h| h.result == r).count();
    let failed_hosts: Vec<&HostReport> = hosts.iter().filter(|h| !h.ok()).collect();
    let code = if failed_hosts.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    };
    match format {
        Some(OutputFormat::Json) => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": env.name,
                "objects": objects,
                "hosts": hosts,
                "monitored_observers": healthy.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
                "totals": {
                    "objects": {"created": count(Outcome::Created), "configured": count(Outcome::Configured), "unchanged": count(Outcome::Unchanged), "pruned": count(Outcome::Pruned), "kept": count(Outcome::Kept)},
                    "hosts": {"updated": hcount(HostResult::Updated), "unchanged": hcount(HostResult::Unchanged), "unreachable": hcount(HostResult::Unreachable), "rolled_back": hcount(HostResult::RolledBack), "failed": hcount(HostResult::Failed), "not_touched": hcount(HostResult::NotTouched), "refused": hcount(HostResult::Refused)},
                },
            }))?
        ),
        None => {}
        Some(OutputFormat::Text) => {
            output::line(&format!("deploy of {}:", env.name));
            for s in objects {
                output::outcome(&s.object, &format!("{:?}", s.result).to_lowercase());
            }
            for h in hosts {
                h.print("host ");
            }
            output::line(&format!(
                "totals: objects {} created, {} configured, {} unchanged, {} pruned; hosts {} updated, {} unchanged, {} failed; monitoring lists {} observer(s)",
                count(Outcome::Created),
                count(Outcome::Configured),
                count(Outcome::Unchanged),
                count(Outcome::Pruned),
                hcount(HostResult::Updated),
                hcount(HostResult::Unchanged),
                failed_hosts.len(),
                healthy.len()
            ));
        }
    }
    Ok(code)
}
