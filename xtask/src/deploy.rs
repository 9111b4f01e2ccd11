//! `cargo xtask deploy`: the whole rollout in order, under the deploy lock: check, plan (cluster
//! and hosts), confirm, per-pod Services, their addresses, the observers (rolling, health-gated)
//! rendered from those live addresses, then the monitoring objects, which list every observer of
//! the inventory whatever its health (a dead observer stays a scrape target: that is how it gets
//! noticed). SIGINT or SIGTERM, or a lost lock, stop it before its next write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use hosts::Observer;
use manifests::{AddressSource, Environment};
use serde_json::json;

use crate::cli::{DeployArgs, OutputFormat};
use crate::cluster::{block_on, Cluster, ObjectRef};
use crate::execute::{self, Execution};
use crate::fleet::Fleet;
use crate::hostops::ReadMode;
use crate::lb::{self, Addresses};
use crate::lock::{Guard, Stop};
use crate::plan::{self, Action, Plan, Planner};
use crate::report::{
    host_counts, merge_hosts, HostReport, HostResult, ObjectResult, ObjectTotals, Report,
};
use crate::rollout::{self, Options};
use crate::signals::{self, Interrupt};
use crate::{environments, exit, lock, output};

pub struct DeployReport {
    environment: String,
    /// With --dry-run: the plan only.
    dry_run: Option<Plan>,
    objects: Vec<ObjectResult>,
    hosts: Vec<HostReport>,
    monitored: Vec<String>,
    /// Observers that were not healthy at the end (still monitored).
    unhealthy: Vec<String>,
    /// Why the deploy stopped before its end, if it did.
    stopped: Option<Stop>,
    /// The drift key's read-only command per observer reached: `installed`, `unchanged` or
    /// `failed: ...` (empty without `fleet.drift_key`).
    read_only_access: BTreeMap<String, String>,
}

impl Report for DeployReport {
    fn json(&self) -> serde_json::Value {
        match &self.dry_run {
            Some(plan) => json!({
                "environment": self.environment,
                "dry_run": true,
                "cluster": plan,
                "hosts": self.hosts,
            }),
            None => json!({
                "environment": self.environment,
                "objects": self.objects,
                "hosts": self.hosts,
                "monitored_observers": self.monitored,
                "unhealthy_observers": self.unhealthy,
                "read_only_access": self.read_only_access,
                "stopped": self.stopped.as_ref().map(ToString::to_string),
                "totals": {
                    "objects": ObjectTotals::of(&self.objects),
                    "hosts": host_counts(&self.hosts),
                },
            }),
        }
    }

    fn print(&self) {
        if self.dry_run.is_some() {
            // The plan was shown before anything else.
            return;
        }
        output::line(&format!("deploy of {}:", self.environment));
        for s in &self.objects {
            output::outcome(&s.object, &s.result);
        }
        for h in &self.hosts {
            h.print("host ");
        }
        for (host, result) in &self.read_only_access {
            if result != "unchanged" {
                output::line(&format!("  drift key  {host}: read-only command {result}"));
            }
        }
        let t = ObjectTotals::of(&self.objects);
        let c = host_counts(&self.hosts);
        let mut hosts = format!("{} updated, {} unchanged", c["updated"], c["unchanged"]);
        for (key, word) in [
            ("rolled_back", "rolled back"),
            ("failed", "failed"),
            ("refused", "refused"),
            ("unreachable", "unreachable"),
            ("not_touched", "not touched"),
        ] {
            if c[key] > 0 {
                hosts.push_str(&format!(", {} {word}", c[key]));
            }
        }
        let monitoring = if self.stopped.is_some() {
            "monitoring not changed (the deploy stopped before it)".to_string()
        } else if self.unhealthy.is_empty() {
            format!("monitoring lists {} observer(s)", self.monitored.len())
        } else {
            format!(
                "monitoring lists {} observer(s), {} of them not healthy ({})",
                self.monitored.len(),
                self.unhealthy.len(),
                self.unhealthy.join(", ")
            )
        };
        output::line(&format!(
            "totals: objects {} created, {} configured, {} unchanged, {} pruned; hosts {hosts}; {monitoring}",
            t.created, t.configured, t.unchanged, t.pruned,
        ));
        if let Some(stop) = &self.stopped {
            output::error(&anyhow::anyhow!(
                "the deploy stopped: {stop}; what is above was done, the rest was not (the deploy lock is released)"
            ));
        }
    }

    fn exit_code(&self) -> u8 {
        match &self.dry_run {
            Some(_)
                if self
                    .hosts
                    .iter()
                    .any(|h| h.result == HostResult::Unreachable) =>
            {
                exit::ERROR
            }
            Some(plan)
                if plan.in_sync()
                    && self.hosts.iter().all(|h| h.result == HostResult::Unchanged) =>
            {
                exit::OK
            }
            Some(_) => exit::CHANGES,
            None => match &self.stopped {
                Some(Stop::Interrupted(_)) => signals::INTERRUPTED,
                Some(Stop::LockLost(_)) => exit::ERROR,
                None if self.hosts.iter().all(HostReport::ok)
                    && !self
                        .read_only_access
                        .values()
                        .any(|r| r.starts_with("failed")) =>
                {
                    exit::OK
                }
                None => exit::ERROR,
            },
        }
    }
}

pub fn run(args: &DeployArgs, format: OutputFormat) -> Result<DeployReport> {
    let env = environments::cluster_env(&args.selection, &args.cluster)?;
    // --reset-data names observers of the inventory (checked before anything is read).
    environments::targets(&env, &args.reset_data).context("--reset-data")?;
    if !args.dry_run {
        crate::ssh::refuse_the_drift_key_as_identity(&env, &args.ssh)?;
    }
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        bail!(
            "deploy changes environment {} and asks for confirmation, but there is no terminal to ask on: \
             pass --yes (after reviewing `cargo xtask deploy --env {} --dry-run`), or run it interactively",
            env.name,
            env.name
        );
    }
    block_on(async {
        let interrupt = Interrupt::install()?;
        let cluster = Cluster::connect(&env, &args.cluster, args.timeout).await?;
        let lock = if args.dry_run {
            None
        } else {
            Some(lock::acquire(&cluster, &env, args.lock.break_lock, Some(&interrupt)).await?)
        };
        let guard = Guard {
            lock: lock.as_ref(),
            interrupt: Some(&interrupt),
        };
        let result = deploy(&cluster, &env, args, format, guard).await;
        if let Some(l) = lock {
            l.release(&cluster).await;
        }
        result
    })
}

/// The deploy itself (the caller holds the lock: `guard`); the benchmarks drive it in-process.
pub async fn deploy(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: OutputFormat,
    guard: Guard<'_>,
) -> Result<DeployReport> {
    let text = format == OutputFormat::Text;
    // The plan: every desired object (monitoring listing every observer), and every host.
    let reads =
        plan::read_cluster_and_hosts(cluster, env, &args.ssh, Planner::DryRun, ReadMode::Quick)
            .await?;
    // Observers configured for an ensemble the code does not describe would list the wrong
    // participants: refused before anything is changed.
    let differs = crate::ensemble::differences(env, reads.ensemble.as_ref());
    if !differs.is_empty() {
        reads.close().await;
        bail!(
            "the ensemble in the cluster differs from environment {}; nothing was changed:\n  - {}",
            env.name,
            differs.join("\n  - ")
        );
    }
    let (source, note) = match lb::source(Addresses::LiveOrRecorded, &reads.live) {
        Ok(s) => s,
        Err(e) => {
            reads.close().await;
            return Err(e);
        }
    };
    let files = match manifests::render_host_files(env, &source) {
        Ok(f) => f,
        Err(e) => {
            reads.close().await;
            return Err(e.into());
        }
    };
    let (fleet, retired, cluster_plan) = (reads.fleet, reads.retired, reads.plan);
    let mut hosts = fleet.plan_reports(&fleet.plan_resetting(env, &files, &args.reset_data));
    hosts.extend(retirement_reports(env, &retired));
    tracing::info!("hosts read and planned");
    if text {
        cluster_plan.print(&format!(
            "cluster diff for {} (context {}, {})",
            env.name, cluster.context, cluster.server
        ));
        output::line(&format!("hosts of {} ({note}):", env.name));
        for h in &hosts {
            h.print_plan();
        }
        let count = |r: HostResult| hosts.iter().filter(|h| h.result == r).count();
        let retire = count(HostResult::WouldRetire);
        output::line(&format!(
            "{} host(s) to update, {} unchanged{}",
            count(HostResult::WouldChange),
            count(HostResult::Unchanged),
            if retire > 0 {
                format!(", {retire} to retire")
            } else {
                String::new()
            }
        ));
    }
    let mut report = DeployReport {
        environment: env.name.clone(),
        dry_run: None,
        objects: vec![],
        hosts,
        monitored: vec![],
        unhealthy: vec![],
        read_only_access: BTreeMap::new(),
        stopped: None,
    };
    if args.dry_run {
        close(fleet, retired).await;
        report.dry_run = Some(cluster_plan);
        return Ok(report);
    }
    let refused = cluster_plan
        .refuse_conflicts(&env.name, args.force_conflicts)
        .and_then(|()| fleet.refuse_the_drift_key())
        .and_then(|()| retired.refuse_the_drift_key());
    let refused = refused.and_then(|()| refuse_retiring_the_last(env, &report.hosts, args));
    if let Err(e) = refused {
        close(fleet, retired).await;
        return Err(e);
    }
    let nothing_to_do = cluster_plan.in_sync()
        && report
            .hosts
            .iter()
            .all(|h| h.result != HostResult::WouldChange && h.result != HostResult::WouldRetire);
    if !nothing_to_do && !args.yes {
        let stdin = std::io::BufReader::new(std::io::stdin());
        let answer = confirm(env, guard.interrupt, stdin).await;
        match answer {
            Ok(Answer::Yes) => {}
            Ok(Answer::No) => {
                close(fleet, retired).await;
                bail!("not confirmed; nothing was changed");
            }
            Ok(Answer::Interrupted(signal)) => {
                close(fleet, retired).await;
                report.stopped = Some(Stop::Interrupted(signal));
                return Ok(report);
            }
            Err(e) => {
                close(fleet, retired).await;
                return Err(e);
            }
        }
    }
    let result = carry_out(
        cluster,
        env,
        args,
        text,
        &cluster_plan,
        (&fleet, &retired),
        guard,
        &mut report,
    )
    .await;
    close(fleet, retired).await;
    result?;
    Ok(report)
}

/// Retiring the last observer (none left in service) is refused before anything is changed,
/// unless `--force-retire`: clients outside the cluster would lose their last server.
fn refuse_retiring_the_last(
    env: &Environment,
    hosts: &[HostReport],
    args: &DeployArgs,
) -> Result<()> {
    let retiring: Vec<&str> = hosts
        .iter()
        .filter(|h| h.result == HostResult::WouldRetire)
        .map(|h| h.host.as_str())
        .collect();
    if env.fleet.observers.is_empty() && !retiring.is_empty() && !args.force_retire {
        bail!(
            "refused: retiring {} would leave no observer in service in {} (fleet.observers is empty), \
             and clients outside the cluster would lose their last server; nothing was changed. Add \
             the replacement observer to the inventory first, or pass --force-retire if that is the intent",
            retiring.join(", "),
            env.name
        );
    }
    Ok(())
}

/// What the live cluster admits and monitors, as the plan read it: every
/// `loadBalancerSourceRanges` entry of the per-pod Services, every address the monitoring
/// Endpoints list.
struct Admitted {
    ranges: BTreeSet<String>,
    monitored: BTreeSet<String>,
}

impl Admitted {
    fn of(env: &Environment, plan: &Plan) -> Admitted {
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let mut ranges = BTreeSet::new();
        for o in manifests::objects::load_balancer_services(env) {
            if let Some(live) = plan.live(&ObjectRef::of(&o)) {
                ranges.extend(strings(&live["spec"]["loadBalancerSourceRanges"]));
            }
        }
        let endpoints = ObjectRef {
            kind: crate::cluster::Kind::Endpoints,
            namespace: env.monitoring.namespace.clone(),
            name: env.monitoring.service_name.clone(),
        };
        let monitored = plan
            .live(&endpoints)
            .and_then(|e| e["subsets"].as_array())
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect();
        Admitted { ranges, monitored }
    }

    /// Whether every egress address of `o` is admitted now.
    fn admits(&self, o: &Observer) -> bool {
        o.egress_addresses().into_iter().all(|a| {
            let bits = if a.is_ipv4() { 32 } else { 128 };
            self.ranges.contains(&format!("{a}/{bits}"))
        })
    }

    fn monitors(&self, o: &Observer) -> bool {
        self.monitored.contains(&o.scrape_address().to_string())
    }
}

/// The retired observers that may still run: their containers seen running, or their host not
/// read while the load balancers still admit it (a host not read that they no longer admit was
/// retired before: it is not let back in). Their traffic stays allowed until they are retired.
fn still_running<'e>(
    env: &'e Environment,
    retired: &Fleet<'_>,
    admitted: &Admitted,
) -> Vec<&'e Observer> {
    env.fleet
        .retired
        .iter()
        .filter(|r| match retired.get(&r.observer.name) {
            Some(reached) => !reached.observed.running.is_empty(),
            None => admitted.admits(&r.observer),
        })
        .map(|r| &r.observer)
        .collect()
}

/// Closes the connections of both fleets (the listed and the retired observers).
async fn close(fleet: Fleet<'_>, retired: Fleet<'_>) {
    fleet.close().await;
    retired.close().await;
}

/// The plan of each retired observer's host (unreachable ones as such), in inventory order.
fn retirement_reports(env: &Environment, retired: &Fleet<'_>) -> Vec<HostReport> {
    env.fleet
        .retired
        .iter()
        .map(|r| match retired.get(&r.observer.name) {
            Some(reached) => HostReport::retirement(
                &r.observer,
                &hosts::plan::retirement(&reached.observed, r.data),
            ),
            None => HostReport::unreachable(
                &r.observer,
                retired
                    .unreachable
                    .iter()
                    .find(|(o, _)| o.name == r.observer.name)
                    .map_or("not read", |(_, why)| why.as_str()),
            ),
        })
        .collect()
}

/// Steps 1 to 5, once confirmed, into `report`; a guard's stop ends them early (noted in the
/// report), an error ends them with the error.
#[allow(clippy::too_many_arguments)]
async fn carry_out(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    text: bool,
    cluster_plan: &Plan,
    (fleet, retired): (&Fleet<'_>, &Fleet<'_>),
    guard: Guard<'_>,
    report: &mut DeployReport,
) -> Result<()> {
    let how = Execution {
        force: args.force_conflicts,
        prune: args.prune,
        timeout: args.timeout,
        progress: text,
        guard,
    };
    // 1. The per-pod load-balancer Services. Retired observers that still run keep their way in
    // until they are retired (3c): their egress leaves the source ranges in 4.
    let admitted = Admitted::of(env, cluster_plan);
    let retiring = still_running(env, retired, &admitted);
    let transitional = if retiring.is_empty() {
        None
    } else {
        let objects = manifests::objects::load_balancer_services_with(env, &retiring);
        Some(plan::plan_with(cluster, env, &objects, false, Planner::DryRun).await?)
    };
    let lb_refs: BTreeSet<ObjectRef> = manifests::objects::load_balancer_services(env)
        .iter()
        .map(ObjectRef::of)
        .collect();
    let lb_changes = transitional
        .as_ref()
        .unwrap_or(cluster_plan)
        .changes
        .iter()
        .filter(|c| lb_refs.contains(&c.reference));
    let done = execute::execute_all(cluster, lb_changes, &how).await?;
    report.objects.extend(done.results);
    if let Some(stop) = done.stopped {
        report.stopped = Some(stop);
        return Ok(());
    }
    tracing::info!("load-balancer Services applied");
    // 2. Their addresses: the observers are configured from what the cloud gave.
    let live = match lb::wait_for_addresses(cluster, env, args.timeout, &guard).await? {
        Ok(live) => live,
        Err(stop) => {
            report.stopped = Some(stop);
            return Ok(());
        }
    };
    if let Some(msg) = lb::mismatch_message(env, &lb::compare(env, &live)) {
        output::warning(&format!(
            "{msg}. This deploy configures the observers with the live addresses"
        ));
    }
    // 3. The observers, rendered from the live addresses, one at a time behind the health gate.
    let files = manifests::render_host_files(env, &AddressSource::Live(live))?;
    let planned = fleet.plan_resetting(env, &files, &args.reset_data);
    let targets = rollout::targets(&planned);
    let opts = Options::new(env, &args.rollout, &args.ssh, !text, guard);
    let rolled = rollout::update(env, &targets, &opts).await;
    merge_hosts(&mut report.hosts, rolled.reports);
    if let Some(stop) = rolled.stopped {
        report.stopped = Some(stop);
        return Ok(());
    }
    tracing::info!("hosts updated");
    // 3b. The drift job's key on every observer reached: its one way in (the forced read-only
    // command and one line; every other line for the key removed), or revoked when the code has
    // none. Written only where the host read found it otherwise.
    let key = crate::hostops::drift_key(env);
    let ports = crate::hostops::Ports::of(env);
    let wanted: Vec<_> = fleet
        .reached
        .iter()
        .map(|r| {
            let want = key
                .as_ref()
                .map(|k| crate::hostops::drift_access(r.observer, ports, &env.name, k));
            (r, want)
        })
        .collect();
    let (kept, to_set): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(r, want)| match want {
        Some(w) => w.installed_as(&r.observed.drift_access),
        None => !r.observed.drift_access.any(),
    });
    if !to_set.is_empty() {
        if let Err(stop) = guard.check().await {
            report.stopped = Some(stop);
            return Ok(());
        }
    }
    let set = futures::future::join_all(to_set.iter().map(|(r, want)| async {
        let result = crate::hostops::set_drift_access(
            &r.host,
            r.observer,
            &env.name,
            key.as_ref(),
            want.as_ref(),
        )
        .await
        .unwrap_or_else(|e| format!("failed: {e:#}"));
        (r.observer.name.clone(), result)
    }))
    .await;
    report.read_only_access = kept
        .iter()
        .filter(|(_, want)| want.is_some())
        .map(|(r, _)| (r.observer.name.clone(), "unchanged".to_string()))
        .chain(set)
        .collect();
    // 3c. The retired observers, once those in service are confirmed healthy: each one's
    // containers stopped and removed, the tool's files removed, its data kept or wiped, the drift
    // key revoked; only then is it dropped from monitoring (4).
    let healthy = healthy_observers(env, fleet, &report.hosts).await;
    report.unhealthy = env
        .fleet
        .observers
        .iter()
        .filter(|o| !healthy.iter().any(|h| h.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    let unhealthy = report.unhealthy.clone();
    let still_serving = retire_all(
        env, args, retired, &admitted, &unhealthy, text, guard, report,
    )
    .await;
    if report.stopped.is_some() {
        return Ok(());
    }
    // 4. Monitoring lists every observer of the inventory, whatever its health, and every retired
    // one not yet retired; the report says which are not healthy.
    // With them, the load balancers' source ranges: what step 1 kept open for a retired observer
    // now retired closes.
    let mut everyone: Vec<&Observer> = env.fleet.observers.iter().collect();
    everyone.extend(still_serving.iter().copied());
    let mut monitoring = manifests::objects::monitoring_objects(env, &everyone);
    if !retiring.is_empty() {
        let running: Vec<&Observer> = still_serving
            .iter()
            .copied()
            .filter(|o| retiring.iter().any(|r| r.name == o.name))
            .collect();
        monitoring.extend(manifests::objects::load_balancer_services_with(
            env, &running,
        ));
    }
    let monitoring_plan =
        plan::plan_with(cluster, env, &monitoring, false, Planner::DryRun).await?;
    let done = execute::execute_all(
        cluster,
        monitoring_plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Prune),
        &how,
    )
    .await?;
    report.objects.extend(done.results);
    report.monitored = everyone.iter().map(|o| o.name.clone()).collect();
    if let Some(stop) = done.stopped {
        report.stopped = Some(stop);
        return Ok(());
    }
    tracing::info!("monitoring applied");
    // 5. Prune what is no longer desired (not what step 4 keeps for a retired observer that
    // still serves).
    let kept: BTreeSet<&ObjectRef> = monitoring_plan
        .changes
        .iter()
        .map(|c| &c.reference)
        .collect();
    let done = execute::execute_all(
        cluster,
        cluster_plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Prune && !kept.contains(&c.reference)),
        &how,
    )
    .await?;
    report.objects.extend(done.results);
    report.stopped = done.stopped;
    Ok(())
}

/// Retires the retired observers whose hosts still need it, one at a time behind the guard,
/// unless an observer in service is not healthy or none is left in service (then refused, unless
/// `--force-retire`). Returns the retired observers that may still be serving (not retired: to
/// keep in monitoring).
#[allow(clippy::too_many_arguments)]
async fn retire_all<'e>(
    env: &'e Environment,
    args: &DeployArgs,
    retired: &Fleet<'_>,
    admitted: &Admitted,
    unhealthy: &[String],
    progress: bool,
    guard: Guard<'_>,
    report: &mut DeployReport,
) -> Vec<&'e Observer> {
    let mut serving = Vec::new();
    let refusal = if args.force_retire {
        None
    } else if env.fleet.observers.is_empty() {
        Some(
            "refused: it would retire the last observer; pass --force-retire if that is the intent"
                .to_string(),
        )
    } else if !unhealthy.is_empty() {
        Some(format!(
            "refused: {} in service {} not healthy, and retiring now would leave fewer observers serving; \
             repair {}, or pass --force-retire",
            unhealthy.join(", "),
            if unhealthy.len() == 1 { "is" } else { "are" },
            if unhealthy.len() == 1 { "it" } else { "them" }
        ))
    } else {
        None
    };
    for r in &env.fleet.retired {
        let o = &r.observer;
        let Some(reached) = retired.get(&o.name) else {
            // Not read: not known to be stopped; kept in monitoring while it is listed there
            // (a host retired before and since switched off is not added back). Retried by the
            // next deploy.
            if admitted.monitors(o) {
                serving.push(o);
            }
            continue;
        };
        let plan = hosts::plan::retirement(&reached.observed, r.data);
        if !plan.needed() {
            continue;
        }
        let result = if let Some(why) = &refusal {
            serving.push(o);
            HostReport::retired(o, HostResult::Refused, why.clone())
        } else if let Err(stop) = guard.check().await {
            serving.push(o);
            let detail = format!("not touched: {stop}");
            report.stopped.get_or_insert(stop);
            HostReport::retired(o, HostResult::NotTouched, detail)
        } else {
            if progress {
                output::progress(&format!(
                    "{}: retiring ({})",
                    o.name,
                    plan.steps().join("; ")
                ));
            }
            match crate::hostops::retire(&reached.host, o, env, r.data, &plan).await {
                Ok(()) => HostReport::retired(o, HostResult::Retired, plan.steps().join("; ")),
                Err(e) => {
                    serving.push(o);
                    HostReport::retired(o, HostResult::Failed, format!("retiring failed: {e:#}"))
                }
            }
        };
        merge_hosts(&mut report.hosts, vec![result]);
    }
    serving
}

/// Observers updated behind the gate, unchanged ones that were healthy when read, and the others
/// (rolled back, not touched, refused) if they answer healthy now.
async fn healthy_observers<'e>(
    env: &'e Environment,
    fleet: &Fleet<'_>,
    hosts: &[HostReport],
) -> Vec<&'e Observer> {
    let result = |name: &str| hosts.iter().find(|h| h.host == name).map(|h| h.result);
    let to_probe: Vec<&str> = hosts
        .iter()
        .filter(|h| {
            matches!(
                h.result,
                HostResult::RolledBack
                    | HostResult::NotTouched
                    | HostResult::Failed
                    | HostResult::Refused
            )
        })
        .map(|h| h.host.as_str())
        .collect();
    let now = if to_probe.is_empty() {
        Default::default()
    } else {
        fleet.probe(env, &to_probe).await
    };
    env.fleet
        .observers
        .iter()
        .filter(|o| match result(&o.name) {
            Some(HostResult::Updated) => true,
            Some(HostResult::Unchanged) => fleet
                .get(&o.name)
                .is_some_and(|r| r.observed.health.healthy()),
            _ => now.get(&o.name).is_some_and(|h| h.healthy()),
        })
        .collect()
}

/// The operator's answer to the confirmation prompt.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    /// A signal (Ctrl-C) came first: nothing was changed.
    Interrupted(&'static str),
}

/// Asks for confirmation. The answer is read on a thread of its own, so that the deploy lock's
/// renewals go on while the operator reads the plan (however long that takes), and a signal ends
/// the wait.
async fn confirm(
    env: &Environment,
    interrupt: Option<&Interrupt>,
    mut input: impl BufRead + Send + 'static,
) -> Result<Answer> {
    eprint!(
        "Deploy this plan to environment {} (context {})? [y/N] ",
        env.name, env.kube_context
    );
    std::io::stderr().flush()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("confirm".into())
        .spawn(move || {
            let mut answer = String::new();
            let _ = tx.send(input.read_line(&mut answer).map(|_| answer));
        })
        .context("starting the prompt's reader")?;
    let read = match interrupt {
        Some(i) => tokio::select! {
            read = rx => read,
            _ = i.wait() => {
                eprintln!();
                return Ok(Answer::Interrupted(i.received().unwrap_or("SIGINT")));
            }
        },
        None => rx.await,
    };
    let answer = read
        .context("reading the answer")?
        .context("reading the answer")?;
    Ok(if matches!(answer.trim(), "y" | "Y" | "yes") {
        Answer::Yes
    } else {
        Answer::No
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lock::{acquire_with, lease_name, Timing};

    /// While the prompt waits for the operator, the deploy lock's renewals go on (its Lease
    /// outlives twice its duration), and Ctrl-C at the prompt ends the wait: nothing is confirmed.
    #[test]
    fn renewals_go_on_while_the_prompt_waits_and_ctrl_c_ends_it() {
        let env = manifests::environments::sandbox::environment();
        let ns = env.ensemble.namespace.clone();
        let api = sandbox::ApiServer::start(sandbox::Config {
            namespaces: vec![ns.clone()],
            ..sandbox::Config::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context)).unwrap();
        let args = crate::cli::ClusterArgs {
            kubeconfig: Some(kubeconfig),
            context: None,
            allow_other_context: false,
        };
        let quick = Timing {
            lease_seconds: 1,
            renew_every: Duration::from_millis(100),
        };
        let renewed = || -> k8s_openapi::jiff::Timestamp {
            api.get("coordination.k8s.io/v1", "leases", &ns, &lease_name(&env))
                .unwrap()["spec"]["renewTime"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        // The operator's terminal: nothing is typed.
        let (input, _keyboard) = std::io::pipe().unwrap();
        block_on(async {
            let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
            let interrupt = Interrupt::detached();
            let lock = acquire_with(&cluster, &env, false, None, quick).await?;
            let acquired = renewed();
            let operator = async {
                // Reads the plan for three times the Lease's duration, then presses Ctrl-C.
                tokio::time::sleep(Duration::from_secs(3)).await;
                interrupt.raise("SIGINT");
            };
            let (answer, ()) = tokio::join!(
                confirm(&env, Some(&interrupt), std::io::BufReader::new(input)),
                operator
            );
            assert_eq!(answer?, Answer::Interrupted("SIGINT"));
            let during = renewed();
            assert!(
                during > acquired + k8s_openapi::jiff::SignedDuration::from_secs(2),
                "renewed while the prompt waited: acquired {acquired}, last renewed {during}"
            );
            assert_eq!(lock.lost(), None);
            lock.release(&cluster).await;
            anyhow::Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_prompt_takes_yes_and_anything_else_is_no() {
        let env = manifests::environments::sandbox::environment();
        for (typed, want) in [
            ("y\n", Answer::Yes),
            ("yes\n", Answer::Yes),
            ("n\n", Answer::No),
            ("\n", Answer::No),
        ] {
            let got = block_on(confirm(
                &env,
                None,
                std::io::Cursor::new(typed.as_bytes().to_vec()),
            ))
            .unwrap();
            assert_eq!(got, want, "{typed:?}");
        }
    }
}
