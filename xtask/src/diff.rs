//! `cargo xtask diff`: what `apply` would change in the live cluster, and with `--hosts` what
//! `push` would change on each observer.

use anyhow::Result;
use hosts::Observer;
use manifests::AddressSource;
use serde_json::json;

use crate::cli::{DiffArgs, OutputFormat};
use crate::cluster::{block_on, Cluster};
use crate::plan::{self, Action, Plan, Planner};
use crate::rollout::{Fleet, HostReport, HostResult};
use crate::{environments, exit, lb, output};

pub fn run(args: &DiffArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    let objects = manifests::desired_objects(&env);
    let (cluster, plan, hosts) = block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster).await?;
        let plan = plan::plan(
            &cluster,
            &env,
            &objects,
            if args.read_only {
                Planner::Read
            } else {
                Planner::DryRun
            },
        )
        .await?;
        let hosts = if args.hosts {
            Some(host_diff(&cluster, &env, args).await?)
        } else {
            None
        };
        Ok((cluster, plan, hosts))
    })?;
    let hosts_in_sync = hosts
        .iter()
        .flatten()
        .all(|h| h.result == HostResult::Unchanged);
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": env.name,
                "context": cluster.context,
                "in_sync": plan.in_sync() && hosts_in_sync,
                "objects": plan.changes,
                "summary": plan.summary,
                "hosts": hosts,
            }))?
        ),
        OutputFormat::Text => {
            print_plan(&env.name, &cluster, &plan);
            for h in hosts.iter().flatten() {
                match h.result {
                    HostResult::WouldChange => {
                        output::change('~', "update", &format!("host {} ({})", h.host, h.detail));
                        output::diff(&h.diff);
                    }
                    HostResult::Unchanged => {
                        output::outcome(&format!("host {}", h.host), "unchanged")
                    }
                    _ => output::change(
                        '!',
                        "unreachable",
                        &format!("host {}: {}", h.host, h.detail),
                    ),
                }
            }
        }
    }
    Ok(
        if hosts
            .iter()
            .flatten()
            .any(|h| h.result == HostResult::Unreachable)
        {
            exit::ERROR
        } else if plan.in_sync() && hosts_in_sync {
            exit::OK
        } else {
            exit::CHANGES
        },
    )
}

async fn host_diff(
    cluster: &Cluster,
    env: &manifests::Environment,
    args: &DiffArgs,
) -> Result<Vec<HostReport>> {
    let source = match lb::current_addresses(cluster, env).await {
        Ok(live) => AddressSource::Live(live),
        Err(_) => AddressSource::Recorded,
    };
    let files = manifests::render_host_files(env, &source)?;
    let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
    let mut fleet = Fleet::connect(env, &observers, &args.ssh).await;
    fleet.plan(env, &files);
    let reports = fleet.reports();
    fleet.close().await;
    Ok(reports)
}

/// Prints a plan for people: each change with its coloured diff, then a summary.
pub fn print_plan(env: &str, cluster: &Cluster, plan: &Plan) {
    output::line(&format!(
        "cluster diff for {env} (context {}, {})",
        cluster.context, cluster.server
    ));
    for c in &plan.changes {
        match c.action {
            Action::Unchanged => continue,
            Action::Create => match &c.deleting {
                Some(why) => output::change(
                    '+',
                    "create",
                    &format!("{} ({why}; created again once it is gone)", c.object),
                ),
                None => output::change('+', "create", &c.object),
            },
            Action::Update => output::change('~', "update", &c.object),
            Action::Prune => output::change(
                '-',
                "prune",
                &match &c.deleting {
                    Some(why) => format!("{} (no longer desired; {why})", c.object),
                    None => format!(
                        "{} (no longer desired; `apply --prune` deletes it)",
                        c.object
                    ),
                },
            ),
        }
        output::diff(&c.diff);
        for k in &c.conflicts {
            output::change(
                '!',
                "conflict",
                &format!(
                    "{}: {} is owned by \"{}\"; applying needs --force-conflicts",
                    c.object, k.field, k.manager
                ),
            );
        }
    }
    let s = &plan.summary;
    output::line(&format!(
        "{}: {} to create, {} to update, {} unchanged, {} to prune, {} conflict(s)",
        if plan.in_sync() { "in sync" } else { "changes" },
        s.create,
        s.update,
        s.unchanged,
        s.prune,
        s.conflicts
    ));
}
