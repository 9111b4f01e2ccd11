//! `cargo xtask deploy`: the whole rollout in order, under the deploy lock: check, plan (cluster
//! and hosts), confirm, per-pod Services, their addresses, the observers (rolling, health-gated)
//! rendered from those live addresses, then the monitoring objects, which list every observer of
//! the inventory whatever its health (a dead observer stays a scrape target: that is how it gets
//! noticed). SIGINT or SIGTERM, or a lost lock, stop it before its next write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use hosts::Observer;
use manifests::{AddressSource, Environment};
use serde_json::json;

use crate::cli::{DeployArgs, OutputFormat};
use crate::cluster::execute::{self, Execution};
use crate::cluster::lb::{self, Addresses};
use crate::cluster::plan::{self, Action, Plan, Planner};
use crate::cluster::{block_on, Cluster, ObjectRef};
use crate::commands::planfile::{self, SavedPlan};
use crate::fleet::hostops::ReadMode;
use crate::fleet::rollout::{self, Options};
use crate::fleet::Fleet;
use crate::lock::{Guard, Halt, Stop};
use crate::output::report::{
    host_counts, merge_hosts, HostReport, HostResult, ObjectResult, ObjectTotals, Report,
};
use crate::signals::{self, Interrupt};
use crate::{commands::prompt, environments, lock, output, output::exit};

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
    /// Where --plan-out saved the plan.
    plan_file: Option<String>,
}

impl DeployReport {
    fn new(env: &Environment, hosts: Vec<HostReport>) -> DeployReport {
        DeployReport {
            environment: env.name.clone(),
            dry_run: None,
            objects: vec![],
            hosts,
            monitored: vec![],
            unhealthy: vec![],
            stopped: None,
            read_only_access: BTreeMap::new(),
            plan_file: None,
        }
    }
}

impl Report for DeployReport {
    fn json(&self) -> serde_json::Value {
        match &self.dry_run {
            Some(plan) => json!({
                "environment": self.environment,
                "dry_run": true,
                "cluster": plan,
                "hosts": self.hosts,
                "plan_file": self.plan_file,
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
            if let Some(path) = &self.plan_file {
                output::line(&format!(
                    "plan saved to {path}; carry it out with `cargo xtask deploy --env {} --plan {path}`",
                    self.environment
                ));
            }
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
    // A saved plan is read first: its options are the deploy's.
    let saved = match &args.plan {
        Some(path) => Some(planfile::read(path, &env.name)?),
        None => None,
    };
    let args = &match &saved {
        Some(plan) => with_options(args, &plan.options),
        None => args.clone(),
    };
    // --reset-data names observers of the inventory (checked before anything is read).
    environments::targets(&env, &args.reset_data).context("--reset-data")?;
    let planning = args.dry_run || args.plan_out.is_some();
    if !planning {
        crate::fleet::ssh::refuse_the_drift_key_as_identity(&env, &args.ssh)?;
    }
    let prompting = !args.yes && !planning && saved.is_none();
    if prompting && !std::io::stdin().is_terminal() {
        return Err(crate::output::hinted(
            format!(
                "deploy changes environment {} and asks for confirmation, but there is no terminal to ask on",
                env.name
            ),
            format!(
                "pass --yes (after reviewing `cargo xtask deploy --env {} --dry-run`), or save a plan with \
                 --plan-out FILE and carry it out with --plan FILE, or run it interactively",
                env.name
            ),
        ));
    }
    block_on(async {
        let interrupt = crate::commands::install_interrupt()?;
        let cluster = Cluster::connect(&env, &args.cluster, args.timeout).await?;
        let unlocked = Guard {
            lock: None,
            interrupt: Some(&interrupt),
        };
        if planning {
            return deploy_expecting(&cluster, &env, args, format, unlocked, None).await;
        }
        // What the locked run must find unchanged: the saved plan, or the plan the operator
        // confirmed. The lock is taken after the prompt: an operator reading a plan holds no
        // lock, and whatever moved meanwhile is caught by the comparison.
        let expected = match (saved, &args.plan) {
            (Some(plan), Some(path)) => Some(Expected {
                plan,
                what: format!("the plan {}", path.display()),
            }),
            _ if prompting => match review(&cluster, &env, args, format, &interrupt).await? {
                Reviewed::Confirmed(plan) => Some(Expected {
                    plan,
                    what: "the plan you confirmed".into(),
                }),
                Reviewed::Stopped(report) => return Ok(report),
            },
            _ => None,
        };
        let lock = lock::acquire(&cluster, &env, args.lock.break_lock, Some(&interrupt)).await?;
        let guard = Guard {
            lock: Some(&lock),
            interrupt: Some(&interrupt),
        };
        let result = deploy_expecting(&cluster, &env, args, format, guard, expected.as_ref()).await;
        lock.release(&cluster).await;
        result
    })
}

/// `args` with the options a saved plan fixes.
fn with_options(args: &DeployArgs, o: &planfile::PlanOptions) -> DeployArgs {
    DeployArgs {
        prune: o.prune,
        force_conflicts: o.force_conflicts,
        force_retire: o.force_retire,
        reset_data: o.reset_data.clone(),
        yes: true,
        ..args.clone()
    }
}

/// A plan the locked run must find unchanged, and what to call it.
pub struct Expected {
    pub plan: SavedPlan,
    pub what: String,
}

/// How the review before the lock ended.
enum Reviewed {
    Confirmed(SavedPlan),
    /// Ctrl-C at the prompt: nothing was changed.
    Stopped(DeployReport),
}

/// Plans without the lock, shows the plan (on stderr with --output json: stdout keeps the one
/// report), refuses what would be refused anyway, and asks. The hosts' connections are closed
/// while the operator reads.
async fn review(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: OutputFormat,
    interrupt: &Interrupt,
) -> Result<Reviewed> {
    let shown = if format == OutputFormat::Text {
        Shown::Stdout
    } else {
        Shown::Stderr
    };
    let p = plan_deploy(cluster, env, args, shown).await?;
    if let Err(e) = p.refusals(env, args) {
        p.close().await;
        return Err(e);
    }
    let nothing_to_do = p.nothing_to_do();
    let (saved, hosts) = (p.saved.clone(), p.hosts.clone());
    p.close().await;
    if nothing_to_do {
        return Ok(Reviewed::Confirmed(saved));
    }
    let stdin = std::io::BufReader::new(std::io::stdin());
    match prompt::confirm("Deploy", env, Some(interrupt), stdin).await? {
        prompt::Answer::Yes => Ok(Reviewed::Confirmed(saved)),
        prompt::Answer::No => bail!("not confirmed; nothing was changed"),
        prompt::Answer::Interrupted(signal) => Ok(Reviewed::Stopped(DeployReport {
            stopped: Some(Stop::Interrupted(signal)),
            ..DeployReport::new(env, hosts)
        })),
    }
}

/// Where the plan is shown for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Not,
    Stdout,
    Stderr,
}

/// What a deploy would do, with the connections it read it over.
struct DeployPlan<'e> {
    fleet: Fleet<'e>,
    retired: Fleet<'e>,
    cluster_plan: Plan,
    hosts: Vec<HostReport>,
    saved: SavedPlan,
    /// The secret files read for the plan (the rollout writes these, not a second read).
    secrets: std::sync::Arc<crate::fleet::secrets::Resolved>,
}

impl DeployPlan<'_> {
    async fn close(self) {
        close(self.fleet, self.retired).await;
    }

    fn nothing_to_do(&self) -> bool {
        self.cluster_plan.in_sync()
            && self
                .hosts
                .iter()
                .all(|h| h.result != HostResult::WouldChange && h.result != HostResult::WouldRetire)
    }

    /// What is refused before anything is changed: fields another manager owns, a host reached
    /// with the drift key, retiring the last observer.
    fn refusals(&self, env: &Environment, args: &DeployArgs) -> Result<()> {
        self.cluster_plan
            .refuse_conflicts(&env.name, args.force_conflicts)
            .and_then(|()| self.fleet.refuse_the_drift_key())
            .and_then(|()| self.retired.refuse_the_drift_key())
            .and_then(|()| refuse_retiring_the_last(env, &self.hosts, args))
    }
}

/// Reads the cluster and every host and plans the deploy: refused when the ensemble differs from
/// the code. Shows the plan as `shown` says.
async fn plan_deploy<'e>(
    cluster: &Cluster,
    env: &'e Environment,
    args: &DeployArgs,
    shown: Shown,
) -> Result<DeployPlan<'e>> {
    // The plan: every desired object (monitoring listing every observer), and every host.
    let reads = crate::commands::reads::read_cluster_and_hosts(
        cluster,
        env,
        &args.ssh,
        Planner::DryRun,
        ReadMode::Quick,
    )
    .await?;
    // Observers configured for an ensemble the code does not describe would list the wrong
    // participants: refused before anything is changed.
    let differs = crate::cluster::ensemble::differences(env, reads.ensemble.as_ref());
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
    let rendered = manifests::render_host_files(env, &source)
        .map_err(anyhow::Error::from)
        .and_then(|mut f| crate::fleet::secrets::fill(&mut f).map(|s| (f, s)));
    let (files, secrets) = match rendered {
        Ok(f) => f,
        Err(e) => {
            reads.close().await;
            return Err(e);
        }
    };
    let (fleet, retired, cluster_plan) = (reads.fleet, reads.retired, reads.plan);
    let planned = fleet.plan_resetting(env, &files, &args.reset_data);
    let mut hosts = fleet.plan_reports(&planned);
    hosts.extend(retirement_reports(env, &retired));
    tracing::info!("hosts read and planned");
    let planned_hosts = planfile::hosts(&hosts, &planned, &files);
    drop(planned);
    let saved = SavedPlan {
        format_version: planfile::FORMAT_VERSION,
        environment: env.name.clone(),
        context: cluster.context.clone(),
        commit: crate::provenance::commit(),
        planned_at: crate::provenance::now(),
        planned_by: crate::provenance::operator(),
        options: planfile::PlanOptions {
            prune: args.prune,
            force_conflicts: args.force_conflicts,
            force_retire: args.force_retire,
            reset_data: args.reset_data.clone(),
        },
        addresses: match &reads.live {
            Ok(live) => live.iter().map(|(id, a)| (*id, a.to_string())).collect(),
            Err(_) => BTreeMap::new(),
        },
        objects: planfile::objects(&cluster_plan),
        hosts: planned_hosts,
        review: json!({
            "environment": env.name,
            "dry_run": true,
            "cluster": cluster_plan,
            "hosts": hosts,
        }),
    };
    if shown != Shown::Not {
        output::to_stderr(shown == Shown::Stderr);
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
        output::to_stderr(false);
    }
    Ok(DeployPlan {
        fleet,
        retired,
        cluster_plan,
        hosts,
        saved,
        secrets: std::sync::Arc::new(secrets),
    })
}

/// The deploy itself, with no prompt (the caller holds the lock: `guard`); the benchmarks and
/// tests drive it in-process.
pub async fn deploy(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: OutputFormat,
    guard: Guard<'_>,
) -> Result<DeployReport> {
    deploy_expecting(cluster, env, args, format, guard, None).await
}

/// The deploy: planned (and, with `--dry-run` or `--plan-out`, only that); with `expected`, refused
/// unless the plan made now is that plan; then carried out.
pub async fn deploy_expecting(
    cluster: &Cluster,
    env: &Environment,
    args: &DeployArgs,
    format: OutputFormat,
    guard: Guard<'_>,
    expected: Option<&Expected>,
) -> Result<DeployReport> {
    let text = format == OutputFormat::Text;
    let planning = args.dry_run || args.plan_out.is_some();
    // The confirmed plan was shown before the prompt; a saved one is shown as carried out.
    let confirmed = expected.is_some() && args.plan.is_none();
    let shown = if text && !confirmed {
        Shown::Stdout
    } else {
        Shown::Not
    };
    let p = plan_deploy(cluster, env, args, shown).await?;
    let mut report = DeployReport::new(env, p.hosts.clone());
    if planning {
        if let Some(path) = &args.plan_out {
            if let Err(e) = planfile::write(path, &p.saved) {
                p.close().await;
                return Err(e);
            }
            report.plan_file = Some(path.display().to_string());
        }
        let DeployPlan {
            fleet,
            retired,
            cluster_plan,
            ..
        } = p;
        close(fleet, retired).await;
        report.dry_run = Some(cluster_plan);
        return Ok(report);
    }
    if let Some(e) = expected {
        let moved = planfile::moved(&e.plan, &p.saved);
        if !moved.is_empty() {
            p.close().await;
            bail!(
                "{} no longer matches the live state or the code; nothing was changed:\n  - {}\n\
                 Plan again (`cargo xtask deploy --env {} --dry-run`, or --plan-out FILE) and review the new plan",
                e.what,
                moved.join("\n  - "),
                env.name
            );
        }
    }
    if let Err(e) = p.refusals(env, args) {
        p.close().await;
        return Err(e);
    }
    let result = carry_out(
        cluster,
        env,
        args,
        text,
        &p.cluster_plan,
        (&p.fleet, &p.retired, &p.secrets),
        guard,
        expected,
        &mut report,
    )
    .await;
    p.close().await;
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
                &hosts::host_plan::retirement(&reached.observed, r.data),
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
    (fleet, retired, secrets): (
        &Fleet<'_>,
        &Fleet<'_>,
        &std::sync::Arc<crate::fleet::secrets::Resolved>,
    ),
    guard: Guard<'_>,
    expected: Option<&Expected>,
    report: &mut DeployReport,
) -> Result<()> {
    let deployed_at = crate::provenance::now();
    let how = Execution {
        force: args.force_conflicts,
        prune: args.prune,
        timeout: args.timeout,
        progress: text,
        guard,
        deployed_at: &deployed_at,
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
    let live = match lb::wait_for_addresses(cluster, env, args.timeout, &guard).await {
        Ok(live) => live,
        Err(Halt::Stopped(stop)) => {
            report.stopped = Some(stop);
            return Ok(());
        }
        Err(Halt::Failed(e)) => return Err(e),
    };
    if let Some(msg) = lb::mismatch_message(env, &lb::compare(env, &live)) {
        output::warning(&format!(
            "{msg}. This deploy configures the observers with the live addresses"
        ));
    }
    // 3. The observers, rendered from the live addresses, one at a time behind the health gate.
    let mut files = manifests::render_host_files(env, &AddressSource::Live(live))?;
    secrets.digests_into(&mut files);
    let planned = fleet.plan_resetting(env, &files, &args.reset_data);
    // A plan made while the load balancers had no address rendered the files from the recorded
    // ones: the files rendered now must be the ones it showed, or no observer is touched.
    if let Some(e) = expected {
        let now = planfile::hosts(&fleet.plan_reports(&planned), &planned, &files);
        let was: Vec<planfile::PlannedHost> = e
            .plan
            .hosts
            .iter()
            .filter(|h| now.iter().any(|n| n.host == h.host))
            .cloned()
            .collect();
        let moved = planfile::moved_hosts(&was, &now);
        if !moved.is_empty() {
            bail!(
                "the observers' files rendered from the load balancers' live addresses are not the ones {} \
                 showed:\n  - {}\nThe load-balancer Services were applied as planned; no observer was touched. \
                 Plan again now that the load balancers have their addresses",
                e.what,
                moved.join("\n  - ")
            );
        }
    }
    let targets = rollout::targets(&planned);
    let mut opts = Options::new(env, &args.rollout, &args.ssh, !text, guard);
    opts.secrets = secrets.clone();
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
    let key = crate::fleet::hostops::drift_key(env);
    let ports = crate::fleet::hostops::Ports::of(env);
    let wanted: Vec<_> = fleet
        .reached
        .iter()
        .map(|r| {
            let want = key
                .as_ref()
                .map(|k| crate::fleet::hostops::drift_access(r.observer, ports, &env.name, k));
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
        let result = crate::fleet::hostops::set_drift_access(
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
        let plan = hosts::host_plan::retirement(&reached.observed, r.data);
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
            match crate::fleet::hostops::retire(&reached.host, o, env, r.data, &plan).await {
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
