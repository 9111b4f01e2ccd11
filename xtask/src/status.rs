//! `cargo xtask status`: for each observer, reachable, files in sync, containers running, mode,
//! synced. Reads only.

use anyhow::Result;
use hosts::{HostFiles, Observer};
use serde_json::json;

use crate::cli::{OutputFormat, StatusArgs};
use crate::cluster::block_on;
use crate::rollout::{self, HostStatus};
use crate::{environments, exit, output, push};

pub fn run(args: &StatusArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    let wanted = push::targets(&env, &args.hosts)?;
    block_on(async {
        let files = push::host_files(&env, args.addresses, &args.cluster).await?;
        let targets: Vec<(&Observer, &HostFiles)> = files
            .iter()
            .filter(|(o, _)| wanted.iter().any(|w| w.name == o.name))
            .map(|(o, f)| (*o, f))
            .collect();
        let statuses = rollout::status(&env, &targets, &args.ssh).await;
        print(&env.name, &statuses, format);
        Ok(code(&statuses))
    })
}

pub fn code(statuses: &[HostStatus]) -> u8 {
    if statuses.iter().any(|s| !s.reachable) {
        exit::ERROR
    } else if statuses.iter().all(HostStatus::good) {
        exit::OK
    } else {
        exit::CHANGES
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "?",
    }
}

pub fn print(env: &str, statuses: &[HostStatus], format: OutputFormat) {
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"environment": env, "hosts": statuses}))
                .expect("serializes")
        ),
        OutputFormat::Text => {
            output::line(&format!(
                "{:<16} {:<15} {:<9} {:<8} {:<8} {:<9} {:<7} {:<8} detail",
                "host", "address", "reachable", "in-sync", "running", "mode", "synced", "exporter"
            ));
            for s in statuses {
                output::line(&format!(
                    "{:<16} {:<15} {:<9} {:<8} {:<8} {:<9} {:<7} {:<8} {}",
                    s.host,
                    s.address,
                    if s.reachable { "yes" } else { "NO" },
                    yes_no(s.files_in_sync),
                    yes_no(s.containers_running),
                    s.mode.as_deref().unwrap_or("-"),
                    yes_no(s.synced),
                    yes_no(s.exporter),
                    if s.out_of_sync_files.is_empty() {
                        s.detail.clone()
                    } else {
                        format!("{} differ; {}", s.out_of_sync_files.join(", "), s.detail)
                    }
                ));
            }
        }
    }
}
