//! `cargo xtask diff`: what `apply` would change in the live cluster, and with `--hosts` what
//! `push` would change on each observer.

use anyhow::{Context, Result};
use hosts::Observer;
use serde_json::json;

use crate::cli::DiffArgs;
use crate::cluster::lb::{self, Addresses};
use crate::cluster::plan::{self, Plan, Planner};
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::fleet::Fleet;
use crate::output::report::{HostReport, HostResult, Report};
use crate::{environments, output, output::exit};

pub struct DiffReport {
    environment: String,
    context: String,
    server: String,
    plan: Plan,
    hosts: Option<Vec<HostReport>>,
    /// Where the ensemble in the cluster differs from the environment (the code must change).
    ensemble: Vec<String>,
    /// The zoo.cfg settings the ensemble's StatefulSet gives its participants (the leader's
    /// `initLimit` and `syncLimit` decide when an observer is dropped).
    ensemble_settings: std::collections::BTreeMap<String, String>,
}

impl DiffReport {
    /// The plan as GitHub-flavoured markdown, for a pull request's job summary
    /// (`--summary-file "$GITHUB_STEP_SUMMARY"`): the counts, one row per object and host that
    /// would change, each diff folded under its name.
    pub fn markdown(&self) -> String {
        use crate::cluster::plan::Action;
        use crate::output::report::Outcome as _;
        let s = &self.plan.summary;
        let in_sync = self.plan.in_sync() && self.hosts_in_sync() && self.ensemble.is_empty();
        let mut md = format!(
            "### zk-observers: what merging would change in `{}`\n\nContext `{}` ({}). {}\n\n\
             **{} to create, {} to update, {} unchanged, {} to prune, {} conflict(s)**\n\n",
            self.environment,
            self.context,
            self.server,
            if in_sync {
                "The live cluster and hosts are as this branch says: merging changes nothing."
            } else {
                "Deploying this branch would make the changes below."
            },
            s.create,
            s.update,
            s.unchanged,
            s.prune,
            s.conflicts
        );
        for d in &self.ensemble {
            md.push_str(&format!("> **ensemble-changed**: {}\n\n", markdown_cell(d)));
        }
        let changed: Vec<_> = self
            .plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .collect();
        if !changed.is_empty() {
            md.push_str("| object | action | conflicts |\n|---|---|---|\n");
            for c in &changed {
                let action = serde_json::to_value(c.action).expect("serializes");
                md.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    c.object,
                    action.as_str().unwrap_or_default(),
                    c.conflicts.len()
                ));
            }
            md.push('\n');
            for c in changed.iter().filter(|c| !c.diff.is_empty()) {
                md.push_str(&folded(&c.object, &c.diff));
            }
        }
        if let Some(hosts) = &self.hosts {
            md.push_str("| host | result | changed files | detail |\n|---|---|---|---|\n");
            for h in hosts {
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    h.host,
                    h.result.word(),
                    h.changed_files.join(", "),
                    markdown_cell(&h.detail)
                ));
            }
            md.push('\n');
            for h in hosts.iter().filter(|h| !h.diff.is_empty()) {
                md.push_str(&folded(&format!("host/{}", h.host), &h.diff));
            }
        }
        md
    }

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
            "ensemble_settings": self.ensemble_settings,
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

/// Text safe inside a markdown table cell.
fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A diff folded under its object's name. The fence is longer than any backtick run in the diff.
fn folded(name: &str, diff: &str) -> String {
    let longest = diff
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "<details><summary><code>{name}</code></summary>\n\n{fence}diff\n{diff}{}{fence}\n\n</details>\n\n",
        if diff.ends_with('\n') { "" } else { "\n" }
    )
}

/// `diff`, and with `--summary-file` its plan appended to that file as markdown.
pub fn run_reporting(args: &DiffArgs) -> Result<DiffReport> {
    let report = run(args)?;
    if let Some(path) = &args.summary_file {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the summary file {}", path.display()))?;
        f.write_all(report.markdown().as_bytes())
            .with_context(|| format!("writing the summary file {}", path.display()))?;
    }
    Ok(report)
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
        let live_ensemble = crate::cluster::ensemble::read(&cluster, &env).await?;
        let ensemble = crate::cluster::ensemble::differences(&env, live_ensemble.as_ref());
        let hosts = if args.hosts {
            // The per-pod Services were read by the plan: their addresses need no request.
            let live = lb::addresses_from(&env, |r| plan.live(r).cloned());
            let (source, _) = lb::source(Addresses::LiveOrRecorded, &live)?;
            let mut files = manifests::render_host_files(&env, &source)?;
            crate::fleet::secrets::fill(&mut files)?;
            let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
            let fleet = Fleet::read(
                &env,
                &observers,
                &args.ssh,
                crate::fleet::hostops::ReadMode::Quick,
            )
            .await;
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
            ensemble_settings: live_ensemble
                .as_ref()
                .map(crate::cluster::ensemble::LiveEnsemble::settings)
                .unwrap_or_default(),
        })
    })
}
