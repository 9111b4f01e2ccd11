//! `cargo xtask drift`: read-only comparison of the live cluster and hosts with the code. Exit 0
//! clean, 2 drift, 1 error. Skips (exit 0, says so) while a deploy holds the lock, so that a
//! half-finished deploy is never reported as drift.

use anyhow::Result;
use hosts::ServerAddress;
use manifests::AddressSource;
use serde::Serialize;
use serde_json::json;

use crate::cli::{DriftArgs, OutputFormat};
use crate::cluster::{block_on, Cluster};
use crate::plan::{self, Action, Planner};
use crate::rollout::HostResult;
use crate::{environments, exit, hostops, lock, output};

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// cluster-missing, cluster-deleting, cluster-changed, cluster-extra, cluster-conflict,
    /// load-balancer-pending, address-mismatch, host-unreachable, host-files, host-containers,
    /// host-dns, observer-not-observing, exporter-down.
    pub kind: &'static str,
    pub object: String,
    pub detail: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

fn finding(kind: &'static str, object: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        object: object.into(),
        detail: detail.into(),
        diff: String::new(),
    }
}

pub fn run(args: &DriftArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster).await?;
        if let Some(h) = lock::current(&cluster, &env).await? {
            let msg = format!(
                "a deploy by {} holds the lock (since {}, expires {}): not checking for drift now",
                h.holder, h.acquired, h.expires
            );
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"environment": env.name, "skipped": msg, "clean": null, "findings": []})
                    )?
                ),
                OutputFormat::Text => output::line(&format!("skipped: {msg}")),
            }
            return Ok(exit::OK);
        }
        let mut findings = Vec::new();

        let plan::Reads {
            plan,
            live,
            mut fleet,
        } = plan::read_cluster_and_hosts(&cluster, &env, &args.ssh, Planner::Read).await?;

        // The cluster: owned objects missing, changed or extra.
        for c in &plan.changes {
            let (kind, detail) = match (c.action, &c.deleting) {
                (Action::Unchanged, _) => continue,
                (Action::Create, Some(why)) => (
                    "cluster-deleting",
                    format!("{why}; the next deploy creates it again once it is gone"),
                ),
                (Action::Create, None) => (
                    "cluster-missing",
                    "desired but absent from the cluster".to_string(),
                ),
                (Action::Update, _) => (
                    "cluster-changed",
                    "live object differs from the code".to_string(),
                ),
                (Action::Prune, why) => (
                    "cluster-extra",
                    format!(
                        "written by this tool but no longer desired{}",
                        why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                ),
            };
            let mut f = finding(kind, &c.object, detail);
            f.diff = c.diff.clone();
            findings.push(f);
            for k in &c.conflicts {
                findings.push(finding(
                    "cluster-conflict",
                    &c.object,
                    format!("{} is owned by \"{}\"", k.field, k.manager),
                ));
            }
        }

        // The load balancers' addresses, and the hosts rendered from them.
        let live = match live {
            Ok(a) => Some(a),
            Err(e) => {
                findings.push(finding(
                    "load-balancer-pending",
                    format!("Service/{}", env.ensemble.namespace),
                    format!("{e:#}"),
                ));
                None
            }
        };
        let source = live
            .clone()
            .map_or(AddressSource::Recorded, AddressSource::Live);
        let files = manifests::render_host_files(&env, &source)?;
        fleet.plan(&env, &files);
        let reports = fleet.reports();
        for r in &reports {
            match r.result {
                HostResult::Unreachable => findings.push(finding(
                    "host-unreachable",
                    format!("host/{}", r.host),
                    &r.detail,
                )),
                HostResult::WouldChange if !r.changed_files.is_empty() => {
                    let mut f = finding(
                        "host-files",
                        format!("host/{}", r.host),
                        format!("{} differ from the code", r.changed_files.join(", ")),
                    );
                    f.diff = r.diff.clone();
                    findings.push(f);
                }
                HostResult::WouldChange => findings.push(finding(
                    "host-containers",
                    format!("host/{}", r.host),
                    "containers not running",
                )),
                _ => {}
            }
        }
        if let Some(live) = &live {
            for (host, cfg) in fleet.deployed_zoo_cfgs() {
                let Some(cfg) = cfg else { continue };
                for p in env.ensemble.participants() {
                    let used = server_address(&cfg, p.id.get());
                    let want = live.get(&p.ordinal).map(ServerAddress::to_string);
                    if used.is_some() && used != want {
                        findings.push(finding(
                            "address-mismatch",
                            format!("host/{host}"),
                            format!(
                                "its zoo.cfg points server.{} at {}, but Service {} has {}",
                                p.id,
                                used.unwrap_or_default(),
                                p.service_name,
                                want.unwrap_or_else(|| "no address".into())
                            ),
                        ));
                    }
                }
            }
        }
        for (host, resolved) in fleet.resolved() {
            for (name, address) in resolved {
                if address.is_none() {
                    findings.push(finding(
                        "host-dns",
                        format!("host/{host}"),
                        format!(
                            "its zoo.cfg names the load balancer {name}, which does not resolve on this host: \
                             ZooKeeper there cannot reach that participant. Fix the host's DNS (its resolv.conf, \
                             or the private DNS zone the cloud publishes load balancer names in)"
                        ),
                    ));
                }
            }
        }
        for (host, health) in fleet.health() {
            let Some(h) = health else { continue };
            if !h.observing() {
                findings.push(finding(
                    "observer-not-observing",
                    format!("host/{host}"),
                    h.detail.clone(),
                ));
            } else if !h.exporter {
                findings.push(finding(
                    "exporter-down",
                    format!("host/{host}"),
                    h.detail.clone(),
                ));
            }
        }
        fleet.close().await;

        let clean = findings.is_empty();
        match format {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"environment": env.name, "clean": clean, "findings": findings})
                )?
            ),
            OutputFormat::Text => {
                for f in &findings {
                    output::change('!', f.kind, &format!("{}: {}", f.object, f.detail));
                    output::diff(&f.diff);
                }
                output::line(&if clean {
                    format!("no drift in {}", env.name)
                } else {
                    format!("drift in {}: {} finding(s)", env.name, findings.len())
                });
            }
        }
        Ok(if clean { exit::OK } else { exit::CHANGES })
    })
}

/// The address of `server.<id>` in a deployed zoo.cfg.
fn server_address(cfg: &str, id: u32) -> Option<String> {
    hostops::zoo_cfg_servers(cfg)
        .into_iter()
        .find_map(|(n, host)| (n == id).then_some(host))
}
