//! `cargo xtask status`: for each observer, reachable, files in sync, containers running, mode,
//! synced. Reads only.

use anyhow::Result;
use hosts::host_plan;
use serde::Serialize;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::fleet::Fleet;
use crate::output::report::Report;
use crate::{cluster::lb, environments, output, output::exit};

/// One host as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub address: String,
    pub reachable: bool,
    pub files_in_sync: Option<bool>,
    pub out_of_sync_files: Vec<&'static str>,
    pub containers_running: Option<bool>,
    pub mode: Option<String>,
    pub synced: Option<bool>,
    pub exporter: Option<bool>,
    pub detail: String,
    /// Which commit last deployed the host (its marker file), when recorded.
    pub deployed: Option<crate::provenance::Record>,
}

impl HostStatus {
    pub fn good(&self) -> bool {
        self.reachable
            && self.files_in_sync == Some(true)
            && self.containers_running == Some(true)
            && self.synced == Some(true)
            && self.exporter == Some(true)
    }
}

pub struct StatusReport {
    environment: String,
    hosts: Vec<HostStatus>,
    /// Which commit last changed each object of this tool, or why the cluster could not be read.
    objects: Result<Vec<crate::provenance::Record>, String>,
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "?",
    }
}

impl Report for StatusReport {
    fn json(&self) -> serde_json::Value {
        let (objects, error) = match &self.objects {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(e)),
        };
        json!({
            "environment": self.environment,
            "hosts": self.hosts,
            "objects": objects,
            "objects_error": error,
        })
    }

    fn print(&self) {
        output::line(&format!(
            "{:<16} {:<15} {:<9} {:<8} {:<8} {:<9} {:<7} {:<8} {:<12} detail",
            "host",
            "address",
            "reachable",
            "in-sync",
            "running",
            "mode",
            "synced",
            "exporter",
            "commit"
        ));
        for s in &self.hosts {
            output::line(&format!(
                "{:<16} {:<15} {:<9} {:<8} {:<8} {:<9} {:<7} {:<8} {:<12} {}",
                s.host,
                s.address,
                if s.reachable { "yes" } else { "NO" },
                yes_no(s.files_in_sync),
                yes_no(s.containers_running),
                s.mode.as_deref().unwrap_or("-"),
                yes_no(s.synced),
                yes_no(s.exporter),
                crate::provenance::short(s.deployed.as_ref().and_then(|d| d.commit.as_deref())),
                if s.out_of_sync_files.is_empty() {
                    s.detail.clone()
                } else {
                    format!("{} differ; {}", s.out_of_sync_files.join(", "), s.detail)
                }
            ));
        }
        if let Err(e) = &self.objects {
            output::warning(&format!("objects not read: {e}"));
        }
        if let Ok(objects) = &self.objects {
            // One line per commit: which objects it last changed.
            let mut by_commit: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
            for o in objects {
                by_commit
                    .entry(crate::provenance::short(o.commit.as_deref()))
                    .or_default()
                    .push(&o.object);
            }
            for (commit, objects) in by_commit {
                output::line(&format!(
                    "objects deployed from {commit}: {}",
                    objects.join(", ")
                ));
            }
        }
    }

    fn exit_code(&self) -> u8 {
        if self.hosts.iter().any(|s| !s.reachable) {
            exit::ERROR
        } else if self.hosts.iter().all(HostStatus::good) {
            exit::OK
        } else {
            exit::CHANGES
        }
    }
}

pub fn run(args: &StatusArgs) -> Result<StatusReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    let wanted = environments::targets(&env, &args.targets.hosts)?;
    block_on(async {
        let files = lb::host_files(&env, args.targets.addresses, &args.cluster).await?;
        let fleet = Fleet::read(
            &env,
            &wanted,
            &args.ssh,
            crate::fleet::hostops::ReadMode::Quick,
        )
        .await;
        let hosts = wanted
            .iter()
            .map(|o| {
                let mut s = HostStatus {
                    host: o.name.clone(),
                    address: o.address.to_string(),
                    reachable: false,
                    files_in_sync: None,
                    out_of_sync_files: vec![],
                    containers_running: None,
                    mode: None,
                    synced: None,
                    exporter: None,
                    detail: String::new(),
                    deployed: None,
                };
                if let Some((_, why)) = fleet.unreachable.iter().find(|(u, _)| u.name == o.name) {
                    s.detail = why.clone();
                }
                let reached = fleet.get(&o.name);
                let desired = files.iter().find(|(f, _)| f.name == o.name);
                if let (Some(r), Some((_, desired))) = (reached, desired) {
                    let st = host_plan::status(desired, &r.observed, &env.fleet.metrics);
                    s.reachable = true;
                    s.files_in_sync = Some(st.files_in_sync);
                    s.out_of_sync_files = st.out_of_sync_files;
                    s.containers_running = Some(st.containers_running);
                    s.mode = st.mode;
                    s.synced = Some(st.synced);
                    s.exporter = Some(st.exporter);
                    s.detail = st.detail;
                    s.deployed = Some(crate::provenance::host_record(
                        &o.name,
                        r.observed.deployed.as_deref(),
                    ));
                }
                s
            })
            .collect();
        fleet.close().await;
        // The objects' provenance: shown when the cluster can be read; status is about the
        // hosts, so a cluster that cannot be read is said, not fatal.
        let objects = async {
            let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
            let owned = crate::cluster::plan::owned(&cluster, &env).await?;
            anyhow::Ok(
                owned
                    .iter()
                    .map(|(r, live)| crate::provenance::object_record(&r.to_string(), live))
                    .collect(),
            )
        }
        .await
        .map_err(|e| format!("{e:#}"));
        Ok(StatusReport {
            environment: env.name.clone(),
            hosts,
            objects,
        })
    })
}
