//! The host side of a deploy: read every observer's files over SSH, show what would change, then
//! update the hosts that need it one at a time, each gated on really observing, rolling a host
//! back and stopping the rollout when it does not.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures::stream::{self, StreamExt};
use hosts::{HostFiles, Metrics, Observer};
use manifests::Environment;
use serde::Serialize;

use crate::hostops::{self, ExporterCheck, Health, HostState, FILES};
use crate::ssh::{Host, SshArgs};
use crate::{output, yamldiff};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

impl HostReport {
    /// `  updated    <label>zk-observer-1 (198.18.1.4): detail`
    pub fn print(&self, label: &str) {
        let word = serde_json::to_value(self.result)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.detail)
        };
        output::outcome(
            &format!("{label}{} ({}){detail}", self.host, self.address),
            &word,
        );
    }

    pub fn ok(&self) -> bool {
        matches!(
            self.result,
            HostResult::Unchanged | HostResult::Updated | HostResult::WouldChange
        )
    }
}

pub struct Options {
    pub dry_run: bool,
    pub health_timeout: Duration,
    pub quiet: bool,
}

struct Target<'a> {
    observer: &'a Observer,
    files: Option<HostFiles>,
    conn: Option<(Host, HostState)>,
    report: HostReport,
}

fn desired<'a>(files: &'a HostFiles, name: &str) -> &'a str {
    files
        .files()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .expect("known file")
}

/// Connections to a set of observer hosts for one run: one SSH connection per host, opened once,
/// used for reading, planning, updating and probing.
pub struct Fleet<'a> {
    hosts: Vec<Target<'a>>,
    started: Instant,
}

impl<'a> Fleet<'a> {
    /// Connects to every observer (in parallel, bounded by --parallel) and reads its state and
    /// health.
    pub async fn connect(
        env: &Environment,
        observers: &[&'a Observer],
        ssh: &SshArgs,
    ) -> Fleet<'a> {
        let client = env.fleet.zookeeper.client_port.get();
        let metrics = env.fleet.metrics.port().get();
        let results: Vec<_> = stream::iter(observers.iter().map(|o| async move {
            let conn = async {
                let host = Host::connect(o, ssh).await?;
                let state = hostops::inspect(&host, o, client, metrics).await?;
                anyhow::Ok((host, state))
            }
            .await;
            (*o, conn)
        }))
        .buffered(ssh.parallel.max(1))
        .collect()
        .await;
        let hosts = results
            .into_iter()
            .map(|(observer, conn)| {
                let (conn, result, detail) = match conn {
                    Ok(c) => (Some(c), HostResult::Unchanged, String::new()),
                    Err(e) => (None, HostResult::Unreachable, format!("{e:#}")),
                };
                Target {
                    observer,
                    files: None,
                    conn,
                    report: HostReport {
                        host: observer.name.clone(),
                        address: observer.address.to_string(),
                        result,
                        changed_files: vec![],
                        restarted: false,
                        detail,
                        diff: String::new(),
                        restart_started_ms: None,
                        healthy_ms: None,
                    },
                }
            })
            .collect();
        Fleet {
            hosts,
            started: Instant::now(),
        }
    }

    /// Compares each reachable host with its desired files; hosts to change become `WouldChange`.
    pub fn plan(&mut self, env: &Environment, files: &[(&Observer, HostFiles)]) {
        let needs_exporter = matches!(env.fleet.metrics, Metrics::Exporter { .. });
        for t in &mut self.hosts {
            let Some((_, state)) = &t.conn else { continue };
            let Some((_, f)) = files.iter().find(|(o, _)| o.name == t.observer.name) else {
                continue;
            };
            t.files = Some(f.clone());
            t.report.changed_files.clear();
            t.report.diff.clear();
            for name in FILES {
                let want = desired(f, name);
                let have = state.file(name);
                if have != Some(want) {
                    t.report.changed_files.push(name.to_string());
                    let path = format!("{}:{}/{name}", t.observer.name, t.observer.deploy_dir);
                    t.report.diff.push_str(&yamldiff::unified(
                        have.unwrap_or(""),
                        want,
                        &format!("{path} (deployed)"),
                        &format!("{path} (desired)"),
                    ));
                }
            }
            let running = state.zookeeper_running()
                && (!needs_exporter
                    || state
                        .running
                        .iter()
                        .any(|s| s == hosts::render::EXPORTER_SERVICE));
            if !t.report.changed_files.is_empty() || !running {
                t.report.result = HostResult::WouldChange;
                t.report.detail = if t.report.changed_files.is_empty() {
                    "containers not running".into()
                } else {
                    format!("{} changed", t.report.changed_files.join(", "))
                };
            } else {
                t.report.result = HostResult::Unchanged;
                t.report.detail.clear();
            }
        }
    }

    pub fn print_plan(&self) {
        for t in &self.hosts {
            match t.report.result {
                HostResult::WouldChange => {
                    output::change(
                        '~',
                        "update",
                        &format!("host {} ({})", t.report.host, t.report.detail),
                    );
                    output::diff(&t.report.diff);
                }
                HostResult::Unreachable => output::change(
                    '!',
                    "unreachable",
                    &format!("host {}: {}", t.report.host, t.report.detail),
                ),
                _ => {}
            }
        }
    }

    /// Updates the hosts that need it, one at a time, in inventory order; stops at the first
    /// host that fails (after rolling it back).
    pub async fn update(&mut self, env: &Environment, opts: &Options) {
        let mut stopped: Option<String> = None;
        let started = self.started;
        for t in &mut self.hosts {
            if t.report.result != HostResult::WouldChange {
                continue;
            }
            if let Some(at) = &stopped {
                t.report.result = HostResult::NotTouched;
                t.report.detail = format!("not touched: the rollout stopped at {at}");
                continue;
            }
            update_one(env, t, opts, started).await;
            if !t.report.ok() {
                stopped = Some(t.report.host.clone());
            }
        }
    }

    /// Probes every reachable host once (no waiting), all at once.
    pub async fn probe(&self, env: &Environment) -> Vec<(String, Option<Health>)> {
        let client = env.fleet.zookeeper.client_port.get();
        let metrics = env.fleet.metrics.port().get();
        futures::future::join_all(self.hosts.iter().map(|t| async move {
            let h = match &t.conn {
                Some((host, _)) => {
                    hostops::probe(host, t.observer, client, metrics, ExporterCheck::Answers)
                        .await
                        .ok()
                }
                None => None,
            };
            (t.observer.name.clone(), h)
        }))
        .await
    }

    /// The health each reachable host reported when it was read (no new request).
    pub fn health(&self) -> Vec<(String, Option<Health>)> {
        self.hosts
            .iter()
            .map(|t| {
                (
                    t.observer.name.clone(),
                    t.conn.as_ref().map(|(_, s)| s.health.clone()),
                )
            })
            .collect()
    }

    /// The deployed zoo.cfg of each reachable host.
    pub fn deployed_zoo_cfgs(&self) -> Vec<(String, Option<String>)> {
        self.hosts
            .iter()
            .filter_map(|t| {
                t.conn.as_ref().map(|(_, s)| {
                    (
                        t.observer.name.clone(),
                        s.file(hosts::render::ZOO_CFG_FILE).map(String::from),
                    )
                })
            })
            .collect()
    }

    /// The load-balancer names each reachable host's deployed zoo.cfg uses, and what they
    /// resolved to there (`None`: not at all).
    pub fn resolved(&self) -> Vec<(String, std::collections::BTreeMap<String, Option<String>>)> {
        self.hosts
            .iter()
            .filter_map(|t| {
                t.conn
                    .as_ref()
                    .map(|(_, s)| (t.observer.name.clone(), s.resolved.clone()))
            })
            .collect()
    }

    pub fn reports(&self) -> Vec<HostReport> {
        self.hosts.iter().map(|t| t.report.clone()).collect()
    }

    pub async fn close(self) {
        for t in self.hosts {
            if let Some((host, _)) = t.conn {
                host.close().await;
            }
        }
    }
}

/// Push: connect, plan, show, update, close.
pub async fn rollout(
    env: &Environment,
    targets: &[(&Observer, &HostFiles)],
    ssh: &SshArgs,
    opts: &Options,
) -> Vec<HostReport> {
    let observers: Vec<&Observer> = targets.iter().map(|(o, _)| *o).collect();
    let files: Vec<(&Observer, HostFiles)> =
        targets.iter().map(|(o, f)| (*o, (*f).clone())).collect();
    let mut fleet = Fleet::connect(env, &observers, ssh).await;
    fleet.plan(env, &files);
    if !opts.quiet {
        fleet.print_plan();
    }
    if !opts.dry_run {
        fleet.update(env, opts).await;
    }
    let reports = fleet.reports();
    fleet.close().await;
    reports
}

/// Whether every load-balancer name the desired zoo.cfg uses resolves on the host: the reason
/// for refusing to write, if not.
async fn names_resolve(host: &Host, zoo_cfg: &str) -> Result<(), String> {
    let names = hostops::zoo_cfg_names(zoo_cfg);
    if names.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = names.iter().map(|(_, n)| n.clone()).collect();
    let resolved = hostops::resolve(host, &list).await.map_err(|e| {
        format!("nothing written: resolving the load balancers' names failed: {e:#}")
    })?;
    let bad: Vec<String> = names
        .iter()
        .filter(|(_, n)| resolved.get(n).is_none_or(Option::is_none))
        .map(|(id, n)| format!("{n} (server.{id})"))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "nothing written: the load balancer name {} does not resolve on this host, so ZooKeeper could not reach \
         that participant; fix the host's DNS (its resolv.conf, or the private DNS zone the cloud publishes load \
         balancer names in) and deploy again",
        bad.join(", ")
    ))
}

async fn update_one(env: &Environment, t: &mut Target<'_>, opts: &Options, started: Instant) {
    let (host, state) = t.conn.as_ref().expect("only reachable hosts are updated");
    let files = t.files.as_ref().expect("planned before updating");
    let (o, report) = (t.observer, &mut t.report);
    if let Err(why) = names_resolve(host, &files.zoo_cfg).await {
        report.result = HostResult::Refused;
        report.detail = why;
        return;
    }
    let mut written = Vec::new();
    let mut failure: Option<String> = None;
    for name in report.changed_files.clone() {
        match hostops::write_file(host, o, &env.fleet.layout, &name, desired(files, &name)).await {
            Ok(()) => written.push(name),
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    if failure.is_none() {
        report.restart_started_ms = Some(started.elapsed().as_millis());
        report.restarted = true;
        if !opts.quiet {
            output::progress(&format!("{}: docker compose up -d", o.name));
        }
        if let Err(e) = recreate(host, o, &report.changed_files).await {
            failure = Some(format!("{e:#}"));
        }
    }
    if failure.is_none() {
        match gate(env, host, o, opts).await {
            Ok(h) => {
                report.healthy_ms = Some(started.elapsed().as_millis());
                report.result = HostResult::Updated;
                report.detail = format!("{}; {}", report.detail, h.detail);
                return;
            }
            Err(detail) => failure = Some(detail),
        }
    }
    // Roll back: previous files, containers recreated from them.
    let reason = failure.unwrap_or_default();
    let first_deploy = written.iter().all(|n| state.file(n).is_none());
    let rollback = async {
        if first_deploy {
            hostops::compose(host, o, &["down"]).await.map(drop)?;
        }
        for name in written.iter().rev() {
            hostops::restore_file(host, o, name).await?;
        }
        if !first_deploy {
            recreate(host, o, &written).await?;
        }
        anyhow::Ok(())
    }
    .await;
    match rollback {
        Ok(()) => {
            report.result = HostResult::RolledBack;
            report.detail = format!(
                "{reason}; previous files restored and containers {}",
                if first_deploy {
                    "removed (there was no previous deployment)"
                } else {
                    "restarted"
                }
            );
        }
        Err(e) => {
            report.result = HostResult::Failed;
            report.detail = format!("{reason}; rollback failed too: {e:#}");
        }
    }
}

/// `docker compose up -d`, which recreates a container whose service definition changed. A new
/// zoo.cfg alone does not change the compose file (its hash label only follows the rendered file),
/// and the running container still has the replaced file's old inode mounted: recreate it.
async fn recreate(host: &Host, o: &Observer, changed: &[String]) -> Result<()> {
    hostops::compose(host, o, &["up", "-d", "--remove-orphans"]).await?;
    let zoo_cfg_only = changed.iter().any(|f| f == hosts::render::ZOO_CFG_FILE)
        && !changed.iter().any(|f| f == hosts::render::COMPOSE_FILE);
    if zoo_cfg_only {
        hostops::compose(
            host,
            o,
            &[
                "up",
                "-d",
                "--force-recreate",
                "--no-deps",
                hosts::render::ZOOKEEPER_SERVICE,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Polls the host until it observes and its exporter serves metrics, or the timeout passes.
async fn gate(
    env: &Environment,
    host: &Host,
    o: &Observer,
    opts: &Options,
) -> Result<Health, String> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    let client = env.fleet.zookeeper.client_port.get();
    let metrics = env.fleet.metrics.port().get();
    loop {
        let h = hostops::probe(host, o, client, metrics, ExporterCheck::Scrape)
            .await
            .map_err(|e| format!("{e:#}"))?;
        if h.healthy() {
            if !opts.quiet {
                output::progress(&format!(
                    "{}: healthy after {:.1}s ({})",
                    o.name,
                    started.elapsed().as_secs_f64(),
                    h.detail
                ));
            }
            return Ok(h);
        }
        if started.elapsed() >= opts.health_timeout {
            return Err(format!(
                "health gate failed after {}: {} (it must report Mode: observer, zk_peer_state observing - broadcast, and serve metrics)",
                output::duration(opts.health_timeout),
                h.detail
            ));
        }
        if !opts.quiet && last_report.elapsed() >= Duration::from_secs(5) {
            output::progress(&format!(
                "{}: waiting to observe ({}, {:.0}s)",
                o.name,
                h.detail,
                started.elapsed().as_secs_f64()
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Live status of each host (no writes).
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub address: String,
    pub reachable: bool,
    pub files_in_sync: Option<bool>,
    pub out_of_sync_files: Vec<String>,
    pub containers_running: Option<bool>,
    pub mode: Option<String>,
    pub synced: Option<bool>,
    pub exporter: Option<bool>,
    pub detail: String,
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

pub async fn status(
    env: &Environment,
    targets: &[(&Observer, &HostFiles)],
    ssh: &SshArgs,
) -> Vec<HostStatus> {
    let client = env.fleet.zookeeper.client_port.get();
    let metrics = env.fleet.metrics.port().get();
    let needs_exporter = matches!(env.fleet.metrics, Metrics::Exporter { .. });
    stream::iter(targets.iter().map(|(o, files)| async move {
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
        };
        let host = match Host::connect(o, ssh).await {
            Ok(h) => h,
            Err(e) => {
                s.detail = format!("{e:#}");
                return s;
            }
        };
        s.reachable = true;
        let result = async {
            let state = hostops::inspect(&host, o, client, metrics).await?;
            s.out_of_sync_files = FILES
                .iter()
                .filter(|n| state.file(n) != Some(desired(files, n)))
                .map(|n| n.to_string())
                .collect();
            s.files_in_sync = Some(s.out_of_sync_files.is_empty());
            s.containers_running = Some(
                state.zookeeper_running()
                    && (!needs_exporter
                        || state
                            .running
                            .iter()
                            .any(|x| x == hosts::render::EXPORTER_SERVICE)),
            );
            let h = state.health;
            s.mode = h.mode.clone();
            s.synced = Some(h.observing());
            s.exporter = Some(h.exporter);
            s.detail = h.detail;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            s.detail = format!("{e:#}");
        }
        host.close().await;
        s
    }))
    .buffered(ssh.parallel.max(1))
    .collect()
    .await
}
