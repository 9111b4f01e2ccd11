//! Every command's result is a typed value: serialized as it is for `--output json`, rendered for
//! people by the same value, carrying its exit code. `emit` is the one printer.
//! Outcome words and their colours come from the outcome types here, never from matching text.

use std::collections::BTreeMap;

use hosts::host_plan::{HostPlan, Update};
use hosts::Observer;
use serde::Serialize;

use crate::output::{self, unified_diff};

/// The one way a command's result reaches stdout: JSON, or text for people.
pub fn emit(report: &dyn Report, format: crate::cli::OutputFormat) {
    match format {
        crate::cli::OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report.json()).expect("JSON values serialize")
        ),
        crate::cli::OutputFormat::Text => report.print(),
    }
}

/// A command's result.
pub trait Report {
    /// The `--output json` document.
    fn json(&self) -> serde_json::Value;
    /// The text for people, on stdout (and stderr for errors).
    fn print(&self);
    /// 0 success or in sync, 2 changes or drift, 1 error.
    fn exit_code(&self) -> u8;
}

pub use crate::output::printer::{Outcome, Tone};

/// What happened to one Kubernetes object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectOutcome {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// This tool's but no longer desired, and --prune was not given.
    Kept,
}

impl Outcome for ObjectOutcome {
    fn word(&self) -> &'static str {
        match self {
            ObjectOutcome::Created => "created",
            ObjectOutcome::Configured => "configured",
            ObjectOutcome::Unchanged => "unchanged",
            ObjectOutcome::Pruned => "pruned",
            ObjectOutcome::Kept => "kept",
        }
    }

    fn tone(&self) -> Tone {
        match self {
            ObjectOutcome::Created | ObjectOutcome::Configured | ObjectOutcome::Pruned => {
                Tone::Good
            }
            ObjectOutcome::Unchanged => Tone::Quiet,
            ObjectOutcome::Kept => Tone::Warn,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    pub object: String,
    pub result: ObjectOutcome,
}

/// Counts of object outcomes, as reports print them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectTotals {
    pub created: usize,
    pub configured: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub kept: usize,
}

impl ObjectTotals {
    pub fn of(results: &[ObjectResult]) -> ObjectTotals {
        let count = |o: ObjectOutcome| results.iter().filter(|r| r.result == o).count();
        ObjectTotals {
            created: count(ObjectOutcome::Created),
            configured: count(ObjectOutcome::Configured),
            unchanged: count(ObjectOutcome::Unchanged),
            pruned: count(ObjectOutcome::Pruned),
            kept: count(ObjectOutcome::Kept),
        }
    }
}

/// What happened to one observer host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostResult {
    /// Files and containers already as desired: nothing written, nothing restarted.
    Unchanged,
    /// Files written, containers recreated, health gate passed.
    Updated,
    /// Dry run: this host would be changed.
    WouldChange,
    /// Could not be reached; nothing was done to it.
    Unreachable,
    /// Failed the health gate (or compose failed): previous files restored, containers restarted.
    RolledBack,
    /// Something failed and the host could not be rolled back cleanly.
    Failed,
    /// Not touched because the rollout stopped at an earlier host.
    NotTouched,
    /// Nothing written: a check before writing failed (a load balancer's DNS name that does not
    /// resolve on the host). The rollout stops here.
    Refused,
    /// A retired observer: its containers stopped, the tool's files removed, the drift key
    /// revoked (or all that was found done already).
    Retired,
    /// Dry run: this retired observer would be retired.
    WouldRetire,
}

impl Outcome for HostResult {
    fn word(&self) -> &'static str {
        match self {
            HostResult::Unchanged => "unchanged",
            HostResult::Updated => "updated",
            HostResult::WouldChange => "would-change",
            HostResult::Unreachable => "unreachable",
            HostResult::RolledBack => "rolled-back",
            HostResult::Failed => "failed",
            HostResult::NotTouched => "not-touched",
            HostResult::Refused => "refused",
            HostResult::Retired => "retired",
            HostResult::WouldRetire => "would-retire",
        }
    }

    fn tone(&self) -> Tone {
        match self {
            HostResult::Unchanged => Tone::Quiet,
            HostResult::Updated | HostResult::Retired => Tone::Good,
            HostResult::WouldChange | HostResult::WouldRetire | HostResult::NotTouched => {
                Tone::Warn
            }
            HostResult::Unreachable
            | HostResult::RolledBack
            | HostResult::Failed
            | HostResult::Refused => Tone::Bad,
        }
    }
}

impl HostResult {
    /// Whether the host is where the run meant it to be.
    pub fn ok(self) -> bool {
        matches!(
            self,
            HostResult::Unchanged
                | HostResult::Updated
                | HostResult::WouldChange
                | HostResult::Retired
                | HostResult::WouldRetire
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub address: String,
    pub result: HostResult,
    pub changed_files: Vec<String>,
    pub restarted: bool,
    pub detail: String,
    /// Unified diff of the files, deployed -> desired.
    pub diff: String,
    /// Milliseconds since the rollout began when this host's containers were (re)created, and when
    /// it passed its health gate.
    pub restart_started_ms: Option<u128>,
    pub healthy_ms: Option<u128>,
    /// Where this host's update spent its time (none when it was not updated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent: Option<Spent>,
}

/// Where a host's update spent its time, in milliseconds: over SSH writing files (and checking
/// names), in docker (`compose up`, including a rollback's), and waiting for ZooKeeper to observe
/// (the health gates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spent {
    pub ssh_ms: u128,
    pub docker_ms: u128,
    pub zookeeper_ms: u128,
}

impl HostReport {
    fn new(o: &Observer, result: HostResult, detail: String) -> HostReport {
        HostReport {
            host: o.name.clone(),
            address: o.address.to_string(),
            result,
            changed_files: vec![],
            restarted: false,
            detail,
            diff: String::new(),
            restart_started_ms: None,
            spent: None,
            healthy_ms: None,
        }
    }

    pub fn unreachable(o: &Observer, why: &str) -> HostReport {
        HostReport::new(o, HostResult::Unreachable, why.to_string())
    }

    /// A retired observer as planned: retired already, or (until it is) would be, with its steps.
    pub fn retirement(o: &Observer, plan: &hosts::host_plan::Retirement) -> HostReport {
        if plan.needed() {
            HostReport::new(o, HostResult::WouldRetire, plan.steps().join("; "))
        } else {
            HostReport::new(o, HostResult::Unchanged, "retired".to_string())
        }
    }

    /// What happened to a retired observer.
    pub fn retired(o: &Observer, result: HostResult, detail: String) -> HostReport {
        HostReport::new(o, result, detail)
    }

    /// A host as planned: unchanged, or (until the update runs) would change, with its diff.
    pub fn planned(o: &Observer, plan: &HostPlan) -> HostReport {
        match plan {
            HostPlan::InSync => HostReport::new(o, HostResult::Unchanged, String::new()),
            HostPlan::Update(u) => HostReport {
                changed_files: u.changed().iter().map(|s| s.to_string()).collect(),
                diff: update_diff(o, u),
                ..HostReport::new(o, HostResult::WouldChange, u.reason())
            },
        }
    }

    pub fn ok(&self) -> bool {
        self.result.ok()
    }

    /// `  updated    <label>zk-observer-1 (198.18.1.4): detail`
    pub fn print(&self, label: &str) {
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.detail)
        };
        output::outcome(
            &format!("{label}{} ({}){detail}", self.host, self.address),
            &self.result,
        );
    }

    /// The plan line of a host: its diff when it would change, why when unreachable.
    pub fn print_plan(&self) {
        match self.result {
            HostResult::WouldChange => {
                output::change(
                    '~',
                    "update",
                    &format!("host {} ({})", self.host, self.detail),
                );
                output::diff(&self.diff);
            }
            HostResult::Unreachable => output::change(
                '!',
                "unreachable",
                &format!("host {}: {}", self.host, self.detail),
            ),
            HostResult::WouldRetire => output::change(
                '-',
                "retire",
                &format!("host {} ({}): {}", self.host, self.address, self.detail),
            ),
            _ => {}
        }
    }
}

/// The unified diff of an update, deployed -> desired, file by file.
pub fn update_diff(o: &Observer, u: &Update) -> String {
    let short = |d: Option<&str>| match d {
        None => "(none)".to_string(),
        Some("") => "(not read here)".to_string(),
        Some(d) => format!("sha256:{}", &d[..d.len().min(12)]),
    };
    u.files
        .iter()
        .map(|f| {
            let path = format!("{}:{}/{}", o.name, o.deploy_dir, f.name);
            unified_diff::unified(
                f.deployed.as_deref().unwrap_or(""),
                &f.desired,
                &format!("{path} (deployed)"),
                &format!("{path} (desired)"),
            )
        })
        // Secret files by digest only.
        .chain(u.secrets.iter().map(|s| {
            format!(
                "{}:{}/{}: {} -> {} (secret, shown by digest)\n",
                o.name,
                o.deploy_dir,
                s.name,
                short(s.deployed_sha256.as_deref()),
                short(Some(&s.desired_sha256))
            )
        }))
        .collect()
}

/// Counts of host results, for summaries, keyed `updated`, `would_change`, `rolled_back`, ...
pub fn host_counts(reports: &[HostReport]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in [
        HostResult::Updated,
        HostResult::Unchanged,
        HostResult::WouldChange,
        HostResult::Unreachable,
        HostResult::RolledBack,
        HostResult::Failed,
        HostResult::NotTouched,
        HostResult::Refused,
        HostResult::Retired,
        HostResult::WouldRetire,
    ] {
        counts.insert(
            r.word().replace('-', "_"),
            reports.iter().filter(|h| h.result == r).count(),
        );
    }
    counts
}

/// Replaces the planned report of each host the rollout handled with what happened to it.
pub fn merge_hosts(planned: &mut [HostReport], done: Vec<HostReport>) {
    for d in done {
        if let Some(p) = planned.iter_mut().find(|p| p.host == d.host) {
            *p = d;
        }
    }
}
