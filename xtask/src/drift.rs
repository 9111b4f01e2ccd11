//! `cargo xtask drift`: read-only comparison of the live cluster and hosts with the code. Exit 0
//! clean, 2 drift, 1 error. Needs no write right: the cluster is planned from reads
//! ([`Planner::Read`]). Skips (exit 0, says so) while a deploy holds the lock, so that a
//! half-finished deploy is never reported as drift.

use anyhow::Result;
use hosts::plan::{zoo_cfg_servers, HostPlan};
use hosts::render::ZOO_CFG_FILE;
use hosts::ServerAddress;
use serde::Serialize;
use serde_json::json;

use crate::cli::DriftArgs;
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::lb::{self, Addresses};
use crate::plan::{self, Action, Planner};
use crate::report::{update_diff, Report};
use crate::{environments, exit, hostops, lock, output};

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// cluster-missing, cluster-deleting, cluster-changed, cluster-extra, cluster-conflict,
    /// load-balancer-pending, address-mismatch, host-unreachable, host-files, host-extra-files,
    /// host-containers, config-not-loaded, host-dns, drift-access, retired-running,
    /// unlisted-observer, load-balancer-unreachable, observer-not-observing, exporter-down.
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

pub struct DriftReport {
    environment: String,
    /// Why the check did not run (a deploy holds the lock).
    skipped: Option<String>,
    findings: Vec<Finding>,
}

impl Report for DriftReport {
    fn json(&self) -> serde_json::Value {
        match &self.skipped {
            Some(msg) => {
                json!({"environment": self.environment, "skipped": msg, "clean": null, "findings": []})
            }
            None => {
                json!({"environment": self.environment, "clean": self.findings.is_empty(), "findings": self.findings})
            }
        }
    }

    fn print(&self) {
        if let Some(msg) = &self.skipped {
            output::line(&format!("skipped: {msg}"));
            return;
        }
        for f in &self.findings {
            output::change('!', f.kind, &format!("{}: {}", f.object, f.detail));
            output::diff(&f.diff);
        }
        output::line(&if self.findings.is_empty() {
            format!("no drift in {}", self.environment)
        } else {
            format!(
                "drift in {}: {} finding(s)",
                self.environment,
                self.findings.len()
            )
        });
    }

    fn exit_code(&self) -> u8 {
        if self.skipped.is_some() || self.findings.is_empty() {
            exit::OK
        } else {
            exit::CHANGES
        }
    }
}

pub fn run(args: &DriftArgs) -> Result<DriftReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
        drift(&cluster, &env, &args.ssh).await
    })
}

/// The drift check of `env` (the tests drive it in-process): skipped while a deploy holds the
/// lock.
pub async fn drift(
    cluster: &Cluster,
    env: &manifests::Environment,
    ssh: &crate::cli::SshArgs,
) -> Result<DriftReport> {
    if let Some(h) = lock::current(cluster, env).await? {
        return Ok(DriftReport {
            environment: env.name.clone(),
            skipped: Some(format!(
                "a deploy by {} holds the lock (since {}, expires {}): not checking for drift now",
                h.holder, h.acquired, h.expires
            )),
            findings: vec![],
        });
    }
    let reads =
        plan::read_cluster_and_hosts(cluster, env, ssh, Planner::Read, hostops::ReadMode::Full)
            .await?;
    let mut findings = cluster_findings(&reads.plan);

    // The load balancers' addresses, and the hosts rendered from them.
    if let Err(e) = &reads.live {
        findings.push(finding(
            "load-balancer-pending",
            format!("Service/{}", env.ensemble.namespace),
            format!("{e:#}"),
        ));
    }
    let (source, _) = lb::source(Addresses::LiveOrRecorded, &reads.live)?;
    let files = manifests::render_host_files(env, &source)?;
    let fleet = &reads.fleet;
    for (o, why) in &fleet.unreachable {
        findings.push(finding("host-unreachable", format!("host/{}", o.name), why));
    }
    for p in fleet.plan(env, &files) {
        let (o, observed) = (p.reached.observer, &p.reached.observed);
        let object = format!("host/{}", o.name);
        match &p.plan {
            HostPlan::Update(u) if !u.files.is_empty() => {
                let mut detail = format!("{} differ from the code", u.changed().join(", "));
                if !u.directories.is_empty() {
                    detail.push_str(&format!(
                        "; a directory stands where {} belongs",
                        u.directories.join(", ")
                    ));
                }
                for (name, target) in &u.symlinks {
                    detail.push_str(&format!(
                            "; {name} is a symbolic link to {target} (never followed; move it away and deploy)"
                        ));
                }
                let mut f = finding("host-files", &object, detail);
                f.diff = update_diff(o, u);
                findings.push(f);
            }
            HostPlan::Update(u) => {
                if u.containers_down {
                    findings.push(finding(
                        "host-containers",
                        &object,
                        "containers not running",
                    ));
                }
                if !u.not_loaded.is_empty() {
                    findings.push(finding(
                        "config-not-loaded",
                        &object,
                        format!(
                            "{ZOO_CFG_FILE} is as the code says, but the running ZooKeeper has not loaded it ({}): deploy restarts it",
                            u.not_loaded.join(", ")
                        ),
                    ));
                }
            }
            HostPlan::InSync => {}
        }
        if !observed.stray.is_empty() {
            findings.push(finding(
                    "host-extra-files",
                    &object,
                    format!(
                        "{} in {}: compose files or an .env this tool did not write (it runs compose on its \
                         docker-compose.yaml alone, but an operator running docker compose there would get them); \
                         remove them",
                        observed.stray.join(", "),
                        o.deploy_dir.0
                    ),
                ));
        }
        let want = hostops::drift_key(env)
            .map(|k| hostops::drift_access(o, hostops::Ports::of(env), &env.name, &k));
        let access = match &want {
            Some(w) => w.problems_in(&observed.drift_access),
            None if observed.drift_access.any() => vec![format!(
                "the drift key's access is still on the host although fleet.drift_key is unset \
                     ({} authorized_keys line(s){}); deploy revokes it",
                observed.drift_access.lines.len(),
                if observed.drift_access.digest.is_some() {
                    ", its read-only command"
                } else {
                    ""
                }
            )],
            None => vec![],
        };
        for problem in access {
            findings.push(finding(
                "drift-access",
                &object,
                format!("the drift key: {problem}"),
            ));
        }
        if let (Ok(live), Some(cfg)) = (&reads.live, observed.file(ZOO_CFG_FILE)) {
            findings.extend(address_mismatches(env, &object, cfg, live));
        }
        for name in observed.unresolved() {
            findings.push(finding(
                    "host-dns",
                    &object,
                    format!(
                        "its zoo.cfg names the load balancer {name}, which does not resolve on this host: \
                         ZooKeeper there cannot reach that participant. Fix the host's DNS (its resolv.conf, \
                         or the private DNS zone the cloud publishes load balancer names in)"
                    ),
                ));
        }
        let blocked = observed.unreachable_load_balancers();
        if !blocked.is_empty() {
            findings.push(finding(
                "load-balancer-unreachable",
                &object,
                unreachable_load_balancers(env, o, &blocked),
            ));
        }
        let h = &observed.health;
        if !h.observing() {
            findings.push(finding("observer-not-observing", &object, &h.detail));
        } else if !h.exporter {
            findings.push(finding("exporter-down", &object, &h.detail));
        }
    }
    findings.extend(retired_findings(env, &reads.retired));
    findings.extend(unlisted_observers(env, &reads));
    reads.close().await;
    Ok(DriftReport {
        environment: env.name.clone(),
        skipped: None,
        findings,
    })
}

/// A retired observer still running (or with anything of the tool's left: files, the drift key),
/// and a retired host that could not be read.
fn retired_findings(
    env: &manifests::Environment,
    retired: &crate::fleet::Fleet<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (o, why) in &retired.unreachable {
        // A retirement revokes the drift key after the containers are stopped: a retired host
        // that refuses this key was retired that far (drift runs with the drift key in CI).
        if why.contains("Permission denied (publickey") {
            continue;
        }
        out.push(finding(
            "host-unreachable",
            format!("host/{}", o.name),
            format!("retired, but not read: {why}"),
        ));
    }
    for r in &env.fleet.retired {
        let Some(reached) = retired.get(&r.observer.name) else {
            continue;
        };
        let plan = hosts::plan::retirement(&reached.observed, r.data);
        if plan.needed() {
            out.push(finding(
                "retired-running",
                format!("host/{}", r.observer.name),
                format!(
                    "retired in the inventory, but {}: deploy retires it ({})",
                    if plan.stop_containers {
                        "it still runs"
                    } else {
                        "not all of it is gone"
                    },
                    plan.steps().join("; ")
                ),
            ));
        }
    }
    out
}

/// Containers this tool made, on a host it manages, for an observer the inventory does not list
/// there (another name, or another deploy directory): an observer it would never touch again.
fn unlisted_observers(env: &manifests::Environment, reads: &plan::Reads<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let hosts = reads.fleet.reached.iter().chain(&reads.retired.reached);
    for r in hosts {
        let o = r.observer;
        let mut seen = std::collections::BTreeSet::new();
        for (name, dir) in &r.observed.containers {
            // The deploy directory as given, or with its links resolved (compose v2 records that);
            // compose before 1.25 records none.
            let here = dir.is_empty()
                || dir == &o.deploy_dir.0
                || r.observed.deploy_dir_resolved.as_deref() == Some(dir.as_str());
            let listed = name == &o.name && here;
            if listed || !seen.insert((name.clone(), dir.clone())) {
                continue;
            }
            out.push(finding(
                "unlisted-observer",
                format!("host/{}", o.name),
                format!(
                    "an observer {name} runs here from {dir}, which the inventory of {} does not list on this \
                     host: nothing will update or retire it. Once sure it is not in use, remove its containers \
                     on the host: docker rm -f $(docker ps -aq --filter label={}/observer={name} \
                     --filter label=com.docker.compose.project.working_dir={dir})",
                    env.name,
                    hosts::LABEL_DOMAIN
                ),
            ));
        }
    }
    out
}

/// Why an observer cannot reach the load balancers, and what to do: a firewall or security group
/// that drops its connections usually means they arrive from an address the load balancers'
/// `loadBalancerSourceRanges` do not list (its traffic is NAT'd).
fn unreachable_load_balancers(
    env: &manifests::Environment,
    o: &hosts::Observer,
    blocked: &[(&str, hosts::plan::Reach)],
) -> String {
    let list: Vec<String> = blocked
        .iter()
        .map(|(t, r)| format!("{t} ({})", r.describe()))
        .collect();
    let index = env
        .fleet
        .observers
        .iter()
        .position(|x| x.name == o.name)
        .unwrap_or_default();
    format!(
        "cannot open a connection to the load balancer(s) {}, so it cannot join the ensemble. Their \
         loadBalancerSourceRanges admit {}: if this observer's traffic leaves through NAT, the load balancers \
         see another source address; record it as fleet.observers[{index}].egress and deploy. Otherwise check \
         the firewall or security groups between this host and the load balancers (TCP 2888, 3888)",
        list.join(", "),
        manifests::objects::source_ranges(env).join(", ")
    )
}

/// This tool's objects missing, being deleted, changed, extra, and fields another manager took.
fn cluster_findings(plan: &plan::Plan) -> Vec<Finding> {
    let mut findings = Vec::new();
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
    findings
}

/// The `server.N` lines of a deployed zoo.cfg that point elsewhere than the live load balancers.
fn address_mismatches(
    env: &manifests::Environment,
    object: &str,
    cfg: &str,
    live: &std::collections::BTreeMap<u32, ServerAddress>,
) -> Vec<Finding> {
    let servers = zoo_cfg_servers(cfg);
    env.ensemble
        .participants()
        .iter()
        .filter_map(|p| {
            let used = servers.iter().find(|(id, _)| *id == p.id.get())?.1.clone();
            let want = live.get(&p.ordinal).map(ServerAddress::to_string);
            (Some(&used) != want.as_ref()).then(|| {
                finding(
                    "address-mismatch",
                    object,
                    format!(
                        "its zoo.cfg points server.{} at {used}, but Service {} has {}",
                        p.id,
                        p.service_name,
                        want.unwrap_or_else(|| "no address".into())
                    ),
                )
            })
        })
        .collect()
}
