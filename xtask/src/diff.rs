//! `cargo xtask diff`: what `apply` would change in the live cluster, and with `--hosts` what
//! `push` would change on each observer.

use anyhow::Result;
use hosts::Observer;
use serde_json::json;

use crate::cli::DiffArgs;
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::fleet::Fleet;
use crate::lb::{self, Addresses};
use crate::plan::{self, Plan, Planner};
use crate::report::{HostReport, HostResult, Report};
use crate::{environments, exit, output};

pub struct DiffReport {
    environment: String,
    context: String,
    server: String,
    plan: Plan,
    hosts: Option<Vec<HostReport>>,
    /// Where the ensemble in the cluster differs from the environment (the code must change).
    ensemble: Vec<String>,
}

impl DiffReport {
    fn hosts_in_sync(&self) -> bool {
        self.hosts
            .iter()
            .flatten()
            .all(|h| h.result == HostResult::Unchanged)
    }
}

impl Report for DiffReport {
    fn json(&self) -> serde_json::Value {
        json!({
            "environment": self.environment,
            "context": self.context,
            "in_sync": self.plan.in_sync() && self.hosts_in_sync() && self.ensemble.is_empty(),
            "ensemble_changed": self.ensemble,
            "objects": self.plan.changes,
            "summary": self.plan.summary,
            "hosts": self.hosts,
        })
    }

    fn print(&self) {
        for d in &self.ensemble {
            output::warning(&format!("ensemble-changed: {d}"));
        }
        self.plan.print(&format!(
            "cluster diff for {} (context {}, {})",
            self.environment, self.context, self.server
        ));
        for h in self.hosts.iter().flatten() {
            match h.result {
                HostResult::Unchanged => {
                    output::outcome(&format!("host {}", h.host), &HostResult::Unchanged)
                }
                _ => h.print_plan(),
            }
        }
    }

    fn exit_code(&self) -> u8 {
        if self
            .hosts
            .iter()
            .flatten()
            .any(|h| h.result == HostResult::Unreachable)
        {
            exit::ERROR
        } else if self.plan.in_sync() && self.hosts_in_sync() && self.ensemble.is_empty() {
            exit::OK
        } else {
            exit::CHANGES
        }
    }
}

pub fn run(args: &DiffArgs) -> Result<DiffReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    let objects = manifests::desired_objects(&env);
    let planner = if args.read_only {
        Planner::Read
    } else {
        Planner::DryRun
    };
    block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
        let plan = plan::plan(&cluster, &env, &objects, planner).await?;
        let live_ensemble = crate::ensemble::read(&cluster, &env).await?;
        let ensemble = crate::ensemble::differences(&env, live_ensemble.as_ref());
        let hosts = if args.hosts {
            // The per-pod Services were read by the plan: their addresses need no request.
            let live = lb::addresses_from(&env, |r| plan.live(r).cloned());
            let (source, _) = lb::source(Addresses::LiveOrRecorded, &live)?;
            let files = manifests::render_host_files(&env, &source)?;
            let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
            let fleet =
                Fleet::read(&env, &observers, &args.ssh, crate::hostops::ReadMode::Quick).await;
            let reports = fleet.plan_reports(&fleet.plan(&env, &files));
            fleet.close().await;
            Some(reports)
        } else {
            None
        };
        Ok(DiffReport {
            environment: env.name.clone(),
            context: cluster.context.clone(),
            server: cluster.server.clone(),
            plan,
            hosts,
            ensemble,
        })
    })
}
