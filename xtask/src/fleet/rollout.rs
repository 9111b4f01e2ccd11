//! The rolling update of planned hosts: in batches of at most `--max-unavailable` hosts (one by
//! default), each host of a batch written atomically, its containers recreated, and gated on really
//! observing, the hosts of a batch at the same time; a host that fails is rolled back and no
//! further batch starts. Works only on hosts the plan says need an update ([`Target`]): the type
//! says what it needs. A rollback undoes only what this run wrote, then checks the host's health
//! again. Before each batch the guard is asked (signals, the deploy lock); a signal during a
//! host's health gate rolls that host back. A connection that breaks during the gate or the
//! rollback is made again once, and what was left is done over the new one.

use std::time::{Duration, Instant};

use anyhow::Result;
use hosts::host_files::{COMPOSE_FILE, ZOO_CFG_FILE};
use hosts::host_plan::{self, Health, HostPlan, Update};
use hosts::Observer;
use manifests::Environment;

use crate::fleet::hostops::{self, ExporterCheck, Ports, ResetStep};
use crate::fleet::ssh::Host;
use crate::fleet::{Planned, Reached};
use crate::lock::{Guard, Stop};
use crate::output;
use crate::output::report::{HostReport, HostResult, Spent};

pub struct Options<'a> {
    pub health_timeout: Duration,
    /// How to connect again to a host whose connection broke.
    pub ssh: &'a crate::cli::SshArgs,
    /// Hosts updated at once (at least 1): the most observers this rollout takes out of service.
    pub batch: usize,
    /// No progress lines on stderr (JSON output, benchmarks).
    pub quiet: bool,
    pub guard: Guard<'a>,
    /// The secret files read for this run (quorum TLS key material), written where the plan
    /// says.
    pub secrets: std::sync::Arc<crate::fleet::secrets::Resolved>,
    /// What each host updated records in its marker file once it passed its gate.
    pub deployed: crate::provenance::Deployed,
}

impl<'a> Options<'a> {
    /// As `--health-timeout` and `--max-unavailable` say, for `env`'s inventory.
    pub fn new(
        env: &Environment,
        args: &crate::cli::RolloutArgs,
        ssh: &'a crate::cli::SshArgs,
        quiet: bool,
        guard: Guard<'a>,
    ) -> Options<'a> {
        Options {
            health_timeout: args.health_timeout,
            ssh,
            batch: args.max_unavailable.batch(env.fleet.observers.len()),
            quiet,
            guard,
            secrets: Default::default(),
            deployed: crate::provenance::Deployed::now(&env.name),
        }
    }
}

/// A reached host and the update its plan calls for.
pub struct Target<'a, 'e> {
    pub reached: &'a Reached<'e>,
    pub update: &'a Update,
}

/// The hosts of `planned` that need an update, as rollout targets.
pub fn targets<'a, 'e>(planned: &'a [Planned<'a, 'e>]) -> Vec<Target<'a, 'e>> {
    planned
        .iter()
        .filter_map(|p| match &p.plan {
            HostPlan::Update(u) => Some(Target {
                reached: p.reached,
                update: u,
            }),
            HostPlan::InSync => None,
        })
        .collect()
}

/// What a rollout did, and why it stopped early if it did (a signal, the lost lock).
pub struct RolledOut {
    pub reports: Vec<HostReport>,
    pub stopped: Option<Stop>,
}

/// Updates `targets` in order, `opts.batch` hosts at a time; after a batch in which a host failed
/// (and was rolled back) no further batch starts, nor after the guard said stop. One report per
/// target, in order.
pub async fn update(
    env: &Environment,
    targets: &[Target<'_, '_>],
    opts: &Options<'_>,
) -> RolledOut {
    let started = Instant::now();
    let mut failed_at: Vec<String> = Vec::new();
    let mut stopped: Option<Stop> = None;
    let mut reports = Vec::new();
    let batches: Vec<&[Target<'_, '_>]> = targets.chunks(opts.batch.max(1)).collect();
    for (i, batch) in batches.iter().enumerate() {
        let mut planned: Vec<HostReport> = batch
            .iter()
            .map(|t| HostReport::planned(t.reached.observer, &HostPlan::Update(t.update.clone())))
            .collect();
        if stopped.is_none() && failed_at.is_empty() {
            if let Err(stop) = opts.guard.check().await {
                stopped = Some(stop);
            }
        }
        if let Some(stop) = &stopped {
            for report in &mut planned {
                report.result = HostResult::NotTouched;
                report.detail = format!("not touched: {stop}");
            }
        } else if !failed_at.is_empty() {
            for report in &mut planned {
                report.result = HostResult::NotTouched;
                report.detail = format!(
                    "not touched: the rollout stopped at {}",
                    failed_at.join(", ")
                );
            }
        } else {
            if !opts.quiet && batches.len() > 1 && opts.batch > 1 {
                let names: Vec<&str> = batch
                    .iter()
                    .map(|t| t.reached.observer.name.as_str())
                    .collect();
                output::progress(&format!(
                    "batch {}/{}: {}",
                    i + 1,
                    batches.len(),
                    names.join(", ")
                ));
            }
            // The hosts of a batch at the same time: each written, restarted and gated.
            futures::future::join_all(
                batch
                    .iter()
                    .zip(planned.iter_mut())
                    .map(|(t, report)| update_one(env, t, opts, started, report)),
            )
            .await;
            if let Err(stop) = opts.guard.interrupted() {
                stopped = Some(stop);
            }
            failed_at = planned
                .iter()
                .filter(|r| !r.ok())
                .map(|r| r.host.clone())
                .collect();
        }
        reports.extend(planned);
    }
    RolledOut { reports, stopped }
}

/// Whether every load-balancer name the desired zoo.cfg uses resolves on the host: the reason
/// for refusing to write, if not.
async fn names_resolve(host: &Host, zoo_cfg: &str) -> Result<(), String> {
    let names = host_plan::zoo_cfg_names(zoo_cfg);
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

/// A host's connection during its update: the fleet's, or a new one once that broke.
struct Conn<'a> {
    original: &'a Host,
    fresh: Option<Host>,
    observer: &'a Observer,
}

impl Conn<'_> {
    fn host(&self) -> &Host {
        self.fresh.as_ref().unwrap_or(self.original)
    }

    /// Connects again, once; false when it was done already or fails.
    async fn reconnect(&mut self, env: &Environment, opts: &Options<'_>) -> bool {
        if self.fresh.is_some() {
            return false;
        }
        match Host::connect(
            self.observer,
            self.observer.jump_hosts(&env.fleet),
            opts.ssh,
        )
        .await
        {
            Ok(h) => {
                if !opts.quiet {
                    output::progress(&format!(
                        "{}: the SSH connection broke; connected again",
                        self.observer.name
                    ));
                }
                self.fresh = Some(h);
                true
            }
            Err(e) => {
                tracing::warn!(host = %self.observer.name, error = %format!("{e:#}"), "connecting again failed");
                false
            }
        }
    }

    async fn close(self) {
        if let Some(h) = self.fresh {
            h.close().await;
        }
    }
}

async fn update_one(
    env: &Environment,
    t: &Target<'_, '_>,
    opts: &Options<'_>,
    started: Instant,
    report: &mut HostReport,
) {
    let mut conn = Conn {
        original: &t.reached.host,
        fresh: None,
        observer: t.reached.observer,
    };
    update_over(env, t, &mut conn, opts, started, report).await;
    conn.close().await;
}

async fn update_over(
    env: &Environment,
    t: &Target<'_, '_>,
    conn: &mut Conn<'_>,
    opts: &Options<'_>,
    started: Instant,
    report: &mut HostReport,
) {
    let (o, update) = (t.reached.observer, t.update);
    let mut spent = Spent::default();
    let clock = Instant::now();
    if let Some(why) = update.refusal() {
        report.result = HostResult::Refused;
        report.detail = why;
        return;
    }
    if let Some(zoo) = update.files.iter().find(|f| f.name == ZOO_CFG_FILE) {
        if let Err(why) = names_resolve(conn.host(), &zoo.desired).await {
            report.result = HostResult::Refused;
            report.detail = why;
            return;
        }
    }
    let mut written = Vec::new();
    let mut failure: Option<String> = None;
    for f in &update.files {
        match hostops::write_file(conn.host(), o, &env.fleet.layout, f.name, &f.desired).await {
            Ok(()) => written.push(f.name),
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    for s in update.secrets.iter().filter(|_| failure.is_none()) {
        let Some(bytes) = opts.secrets.bytes(&o.name, s.name) else {
            failure = Some(format!("{}: not read on this machine", s.name));
            break;
        };
        match hostops::write_secret(conn.host(), o, &env.fleet.layout, s.name, bytes).await {
            Ok(()) => written.push(s.name),
            Err(e) => {
                failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    // The data set aside (a stale myid, or --reset-data): put back if the host fails.
    let mut reset = false;
    if failure.is_none() && update.reset_data.is_some() {
        if !opts.quiet {
            output::progress(&format!("{}: setting its data aside", o.name));
        }
        match hostops::reset_data(conn.host(), o, &env.fleet.layout, ResetStep::Set).await {
            Ok(()) => reset = true,
            Err(e) => failure = Some(format!("{e:#}")),
        }
    }
    spent.ssh_ms = clock.elapsed().as_millis();
    // Whether this run asked for the containers to be (re)started: only then does a rollback
    // restart them, or stop them on a first deployment.
    let mut restarted = false;
    if failure.is_none() {
        report.restart_started_ms = Some(started.elapsed().as_millis());
        report.restarted = true;
        restarted = true;
        let how = update.restart();
        if !opts.quiet {
            output::progress(&format!("{}: {}", o.name, hostops::restart_words(how)));
        }
        let clock = Instant::now();
        if let Err(e) = hostops::restart(conn.host(), o, how).await {
            failure = Some(format!("{e:#}"));
        }
        spent.docker_ms = clock.elapsed().as_millis();
    }
    if failure.is_none() {
        let clock = Instant::now();
        // The gate also proves the restart loaded the zoo.cfg that is there now.
        let zoo_cfg = update
            .files
            .iter()
            .find(|f| f.name == ZOO_CFG_FILE)
            .map(|f| f.desired.clone())
            .or_else(|| update.deployed_before.get(ZOO_CFG_FILE).cloned().flatten());
        let gate = gate(env, conn, opts, zoo_cfg.as_deref());
        let gated = match opts.guard.interrupt {
            Some(interrupt) => tokio::select! {
                g = gate => g,
                _ = interrupt.wait() => Err(format!(
                    "{} during the health gate",
                    opts.guard.interrupted().err().map(|s| s.to_string()).unwrap_or_default()
                )),
            },
            None => gate.await,
        };
        spent.zookeeper_ms = clock.elapsed().as_millis();
        match gated {
            Ok(h) => {
                report.healthy_ms = Some(started.elapsed().as_millis());
                report.result = HostResult::Updated;
                report.detail = format!("{}; {}", report.detail, h.detail);
                // Where this deployment came from: a record, so its failure undoes nothing.
                if let Err(e) = hostops::record_deployed(conn.host(), o, &opts.deployed).await {
                    report
                        .detail
                        .push_str(&format!("; where it came from was not recorded ({e:#})"));
                }
                if reset {
                    // Serving on the new data: what was set aside goes.
                    if let Err(e) =
                        hostops::reset_data(conn.host(), o, &env.fleet.layout, ResetStep::Commit)
                            .await
                    {
                        report.detail.push_str(&format!(
                            "; its old data is still set aside as .data.reset and .datalog.reset ({e:#})"
                        ));
                    }
                }
                report.spent = Some(spent);
                return;
            }
            Err(detail) => {
                // What ZooKeeper said, for the report: the operator should not need a shell.
                let log = hostops::zookeeper_log(conn.host(), o, 8)
                    .await
                    .unwrap_or_default();
                failure = Some(if log.is_empty() {
                    detail
                } else {
                    format!(
                        "{detail}; ZooKeeper's log ends with: {}",
                        log.lines().collect::<Vec<_>>().join(" | ")
                    )
                });
            }
        }
    }
    let reason = failure.unwrap_or_default();
    let done = Done {
        written: &written,
        reset,
        restarted,
    };
    let (result, detail) = roll_back(env, conn, update, done, opts, &mut spent).await;
    report.result = result;
    report.detail = format!("{reason}; {detail}");
    report.spent = Some(spent);
}

/// Undoes what this run did on the host, and only that: the files it wrote are put back; the
/// containers are restarted (or, on a first deployment, stopped and the deployment removed) only
/// if this run started them; then the host's health is checked again. A connection that broke is
/// made again once, and the rollback done over the new one.
async fn roll_back(
    env: &Environment,
    conn: &mut Conn<'_>,
    update: &Update,
    done: Done<'_>,
    opts: &Options<'_>,
    spent: &mut Spent,
) -> (HostResult, String) {
    let o = conn.observer;
    let Done {
        written,
        reset,
        restarted,
    } = done;
    if written.is_empty() && !reset {
        // Nothing was written (the first write failed, or only the containers were down): the
        // host's files are as they were, and whatever ran keeps running. Said as probed now.
        let undone = "nothing was written, so nothing was undone";
        let mut probed =
            hostops::probe(conn.host(), o, Ports::of(env), ExporterCheck::Answers).await;
        if probed.is_err() && conn.reconnect(env, opts).await {
            probed = hostops::probe(conn.host(), o, Ports::of(env), ExporterCheck::Answers).await;
        }
        return match probed {
            Ok(h) if h.healthy() => (
                HostResult::RolledBack,
                format!("{undone}; still serving: {}", h.detail),
            ),
            Ok(h) => (
                HostResult::Failed,
                format!("{undone}; the host is not healthy: {}", h.detail),
            ),
            Err(e) => (
                HostResult::Failed,
                format!("{undone}; the host could not be probed: {e:#}"),
            ),
        };
    }
    // This run created the deployment (none of its files existed): undo it whole.
    let created = update.first_deployment();
    let clock = Instant::now();
    let layout = &env.fleet.layout;
    let mut undone = undo(conn.host(), o, layout, done, created).await;
    if undone.is_err() && conn.reconnect(env, opts).await {
        undone = undo(conn.host(), o, layout, done, created).await;
    }
    spent.docker_ms += clock.elapsed().as_millis();
    if let Err(e) = undone {
        return (HostResult::Failed, format!("rollback failed too: {e:#}"));
    }
    if created {
        return (
            HostResult::RolledBack,
            if restarted {
                "its new files removed and containers stopped (there was no previous deployment)"
            } else {
                "its new files removed (there was no previous deployment; nothing had been started)"
            }
            .to_string(),
        );
    }
    if !restarted {
        return (
            HostResult::RolledBack,
            "previous files restored; the containers were not restarted by this run and were left running"
                .to_string(),
        );
    }
    // The previous files are back: is the host serving again?
    let again = Options {
        quiet: true,
        deployed: opts.deployed.clone(),
        secrets: opts.secrets.clone(),
        ..*opts
    };
    let clock = Instant::now();
    let gated = gate_with(env, conn, &again, ExporterCheck::Answers, None).await;
    spent.zookeeper_ms += clock.elapsed().as_millis();
    match gated {
        Ok(h) => (
            HostResult::RolledBack,
            format!(
                "previous files restored and containers restarted; {} again",
                h.detail
            ),
        ),
        Err(why) => (
            HostResult::Failed,
            format!("previous files restored and containers restarted, but the host is not healthy again: {why}"),
        ),
    }
}

/// The rollback's remote part: containers stopped first on a first deployment this run started
/// (while its compose file is still there), the written files put back, the containers restarted
/// on the previous files if this run had restarted them, an emptied first deployment removed.
async fn undo(
    host: &Host,
    o: &Observer,
    layout: &hosts::observer::ImageLayout,
    done: Done<'_>,
    created: bool,
) -> Result<()> {
    let Done {
        written,
        reset,
        restarted,
    } = done;
    if created && restarted {
        hostops::compose(host, o, &["down"]).await.map(drop)?;
    }
    for name in written.iter().rev() {
        hostops::restore_file(host, o, name).await?;
    }
    if reset {
        hostops::reset_data(host, o, layout, ResetStep::Undo).await?;
    }
    if created {
        hostops::remove_empty_deployment(host, o).await?;
    } else if restarted {
        let how = hosts::host_plan::restart_for(
            written
                .iter()
                .any(|n| *n == ZOO_CFG_FILE || hosts::tls::is_secret(n))
                || reset,
            written.contains(&COMPOSE_FILE),
        );
        hostops::restart(host, o, how).await?;
    }
    Ok(())
}

/// What this run did on a host, which a rollback undoes and only that.
#[derive(Clone, Copy)]
struct Done<'a> {
    /// The files it wrote, in order.
    written: &'a [&'static str],
    /// It set the observer's data aside.
    reset: bool,
    /// It asked for the containers to be (re)started.
    restarted: bool,
}

/// Polls the host until it observes and its exporter serves metrics, or the timeout passes.
async fn gate(
    env: &Environment,
    conn: &mut Conn<'_>,
    opts: &Options<'_>,
    zoo_cfg: Option<&str>,
) -> Result<Health, String> {
    gate_with(env, conn, opts, ExporterCheck::Scrape, zoo_cfg).await
}

/// [`gate`], asking the exporter as `check` says. A probe that fails (the connection broke) is
/// tried again over a new connection, once.
async fn gate_with(
    env: &Environment,
    conn: &mut Conn<'_>,
    opts: &Options<'_>,
    check: ExporterCheck,
    zoo_cfg: Option<&str>,
) -> Result<Health, String> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    let ports = Ports::of(env);
    let o = conn.observer;
    loop {
        // The host waits for ZooKeeper itself (polling it every 0.1 s), up to GATE_WAIT or what
        // is left of the timeout, so that the gate sees it observe within a tenth of a second
        // at the cost of one SSH command per wait.
        let left = opts.health_timeout.saturating_sub(started.elapsed());
        let wait = GATE_WAIT.min(left).max(Duration::from_millis(200));
        let h = match hostops::probe_waiting(conn.host(), o, ports, check, wait).await {
            Ok(h) => h,
            Err(e) => {
                if !conn.reconnect(env, opts).await {
                    return Err(format!("{e:#}"));
                }
                hostops::probe_waiting(conn.host(), o, ports, check, wait)
                    .await
                    .map_err(|e| format!("{e:#}"))?
            }
        };
        // Observing on a configuration other than the file's: the restart did not load it.
        let not_loaded = match (zoo_cfg, h.conf.as_deref()) {
            (Some(cfg), Some(conf)) => hosts::host_plan::not_loaded(cfg, conf),
            _ => vec![],
        };
        let detail = if h.healthy() && !not_loaded.is_empty() {
            format!("zoo.cfg not loaded ({})", not_loaded.join(", "))
        } else {
            h.detail.clone()
        };
        if h.healthy() && not_loaded.is_empty() {
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
                "health gate failed after {}: {} (it must report Mode: observer, zk_peer_state observing - broadcast, run the zoo.cfg on disk, and serve metrics)",
                output::duration(opts.health_timeout),
                detail
            ));
        }
        if !opts.quiet && last_report.elapsed() >= Duration::from_secs(5) {
            output::progress(&format!(
                "{}: waiting to observe ({}, {:.0}s)",
                o.name,
                detail,
                started.elapsed().as_secs_f64()
            ));
            last_report = Instant::now();
        }
        // Observing, but not yet healthy (the host returned early): ask again soon.
        if h.observing() || wait < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long one probe of the health gate waits on the host for ZooKeeper to observe.
const GATE_WAIT: Duration = Duration::from_secs(5);
