//! Command-line flags: every argument type of every command, and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run ZooKeeper observers outside a Kubernetes cluster, as code.
///
/// The environments (ensemble, load balancers, observers, monitoring) are Rust modules in
/// manifests/src/environments/<env>/ (the environment and its observer hosts, inventory.rs). Every command validates the environment
/// first and changes nothing when it is invalid.
///
/// Exit codes: 0 success or in sync, 2 changes or drift found, 1 error.
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version = crate::provenance::VERSION,
    propagate_version = true
)]
pub struct Cli {
    /// Output format of the result on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, help_heading = "Output")]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the Kubernetes manifests, the RBAC and every observer's files to a directory tree.
    ///
    /// Layout: OUT/<env>/kubernetes.yaml (multi-document, for `kubectl apply -f`),
    /// OUT/<env>/rbac.yaml (the Roles the tool needs) and
    /// OUT/<env>/hosts/<observer>/{zoo.cfg,docker-compose.yaml}. Host files use the load-balancer
    /// addresses recorded in the environment; a participant without one is an error. Each
    /// OUT/<env> directory is replaced as a whole, never left half-written.
    Render(RenderArgs),
    /// Validate environments without touching anything. Exit 0 when valid (warnings allowed), 1 when not.
    Check(CheckArgs),
    /// Show what `apply` (and, with --hosts, `push`) would change: exit 0 in sync, 2 changes, 1 error.
    ///
    /// Every desired object goes through a server-side-apply dry run with this tool's field
    /// manager (or, with --read-only, is planned from reads alone), and the result is compared
    /// with the live object, without server bookkeeping (managedFields, resourceVersion, uid,
    /// timestamps, generation, status). Objects this tool wrote for the environment that are no
    /// longer desired are shown as prunes. Fields owned by another field manager with another
    /// value are shown as conflicts.
    Diff(DiffArgs),
    /// Server-side apply the desired objects, then wait for the per-pod load balancers' addresses.
    ///
    /// One constant field manager, no force unless --force-conflicts: a field another manager
    /// owns is reported (manager and field) and nothing is applied. --prune deletes objects this
    /// tool wrote for the environment that are no longer desired, nothing else, and waits until
    /// they are gone. The live addresses are compared with those recorded in the environment; a
    /// difference is an error unless --accept-live-addresses. Asks for confirmation first
    /// (--yes skips it), then takes the deploy lock and refuses a plan that moved meanwhile.
    Apply(ApplyArgs),
    /// Render each observer's zoo.cfg and docker-compose.yaml and roll them out over SSH.
    ///
    /// Reads the files on every host (one SSH connection per host, host keys pinned in the
    /// inventory), shows a unified diff, asks for confirmation (--yes skips it), takes the deploy
    /// lock, reads again (refusing what moved meanwhile), then updates the hosts that need it one
    /// at a time: the
    /// changed files are written atomically (temporary file, checksum, rename; the previous version
    /// kept), `docker compose up -d` recreates the containers, and the host must then report
    /// `Mode: observer`, `zk_peer_state observing - broadcast` and serve metrics. A host that fails
    /// gets its previous files back and its containers restarted, and the rollout stops. Hosts
    /// already in sync are not touched. Exit 0 success, 1 any host failed or unreachable
    /// (with --dry-run: 2 when something would change).
    Push(PushArgs),
    /// Show each observer: reachable, files in sync, containers running, mode, synced.
    /// Exit 0 all good, 2 something is not as desired, 1 a host is unreachable.
    Status(StatusArgs),
    /// Deploy everything, in order, under a deploy lock.
    ///
    /// Check; show the whole plan (cluster diff and host diffs); confirm (skipped with --yes or
    /// --plan; without a terminal it refuses); take the deploy lock (a Lease in the ensemble's
    /// namespace: one deploy at a time) and plan again, refusing when anything moved since the
    /// plan that was confirmed or saved; apply the per-pod Services; wait for their addresses;
    /// render the observers' files from the live addresses; rolling push with the health gate;
    /// apply the monitoring Service, Endpoints and EndpointSlice; summary per object and host.
    /// Every object and host changed records the commit. Exit 0 success, 1 failure; --dry-run and
    /// --plan-out: 0 in sync, 2 changes.
    Deploy(DeployArgs),
    /// Compare the live cluster and hosts with the code, read-only. Exit 0 clean, 2 drift, 1 error
    /// or skipped.
    ///
    /// Needs only get and list rights (the zk-observers-drift Role of rbac.yaml). Finds this
    /// tool's objects changed, missing, being deleted or extra; load-balancer addresses that
    /// differ from those the observers use, and names they cannot resolve; host files that
    /// differ; containers not running; observers not observing or not synced; exporters down.
    /// While a deploy holds the lock it waits for it (--lock-wait) instead of reading a
    /// half-finished deploy as drift; still held, it is skipped: exit 1. With --output json the
    /// report (docs/drift-report.md) is written in every case, an error included.
    Drift(DriftArgs),
    /// Print a shell completion script for SHELL on stdout.
    ///
    /// It completes `xtask` (the built binary, target/debug/xtask, or an alias:
    /// `alias xtask='cargo xtask'`), its commands, flags and the environment names. For bash:
    /// `cargo xtask completions bash > ~/.local/share/bash-completion/completions/xtask`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: the tool's, or one command's.
    ///
    /// `cargo xtask man | man -l -`, or `cargo xtask man deploy | man -l -`.
    Man(ManArgs),
    /// Run the whole tool on this machine: sandbox up, deploy, status, an impostor refused, drift
    /// made and caught, down.
    ///
    /// Runs the sandbox tool (`xtask-dev`, built on first use; the binary that acts on real
    /// environments does not contain the sandbox). Needs root. `cargo xtask demo --help` shows
    /// its options.
    #[command(disable_help_flag = true)]
    Demo(Forward),
    /// Benchmarks (not tests): edit-to-render, fan-out over N hosts, the Ansible peer, API cost.
    ///
    /// Runs the sandbox tool (`xtask-dev`), like `demo`. Needs root. `cargo xtask bench --help`
    /// shows its options; docs/benchmarks.md has the figures.
    #[command(disable_help_flag = true)]
    Bench(Forward),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command (e.g. deploy); default: the whole tool.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Arguments handed to the sandbox tool as they are.
#[derive(Debug, Args)]
pub struct Forward {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EnvSelection {
    /// Environment name (see manifests/src/environments/). Default: every environment.
    #[arg(long = "env", value_name = "ENV", value_parser = EnvName)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub selection: EnvSelection,
    /// Directory to write into; OUT/<env> is created or replaced.
    #[arg(long, value_name = "DIR", default_value = "target/rendered")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: EnvSelection,
    /// Treat warnings as errors: exit 1 when any environment has one.
    #[arg(long)]
    pub strict: bool,
}

/// `--env`: any name is taken here (an unknown one is refused later with the list of known
/// environments and where they are defined, and a drift report still gets written); the known
/// names are offered in `--help` and to shell completion.
#[derive(Debug, Clone, Copy)]
pub struct EnvName;

impl clap::builder::TypedValueParser for EnvName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::NonEmptyStringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            manifests::environments::names()
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ClusterSelection {
    /// Environment name. Default: the environment pinned to the kubeconfig's current context.
    #[arg(long = "env", value_name = "ENV", value_parser = EnvName)]
    pub env: Option<String>,
}

/// Flags shared by every command that talks to the cluster.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the environment's pinned one (needs --allow-other-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Allow --context to name a context other than the one the environment pins.
    #[arg(long)]
    pub allow_other_context: bool,
}

/// Flags shared by every command that talks to observer hosts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Hosts (SSH)")]
pub struct SshArgs {
    /// Private key to log in with (default: ssh's own defaults and agent).
    #[arg(long, value_name = "FILE", env = "ZK_OBSERVERS_SSH_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Give up connecting to a host after this long (e.g. 5s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Hosts contacted at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also read every observer's files over SSH and diff them with the files rendered from the
    /// live load-balancer addresses (recorded ones while the Services have none).
    #[arg(long)]
    pub hosts: bool,
    /// Plan from reads only (get and list: the live objects and their managedFields), as `drift`
    /// does, instead of server-side-apply dry runs: works with a read-only identity (for example
    /// the zk-observers-drift Role in a pull-request job), but the server does not validate the
    /// objects.
    #[arg(long)]
    pub read_only: bool,
    /// Also append the plan as markdown to FILE (in a pull-request job:
    /// --summary-file "$GITHUB_STEP_SUMMARY", which GitHub shows on the run's page).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub summary_file: Option<PathBuf>,
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Do not ask for confirmation (without a terminal, apply refuses unless given).
    #[arg(long)]
    pub yes: bool,
    /// Take ownership of fields another field manager owns (server-side apply force).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete objects this tool wrote for the environment that are no longer desired.
    #[arg(long)]
    pub prune: bool,
    /// Do not wait for the load balancers' addresses.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the load balancers' addresses, and for a pruned object to go.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
    /// Accept live load-balancer addresses that differ from the recorded ones (warn instead of failing).
    #[arg(long)]
    pub accept_live_addresses: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// Where host files get the participants' load-balancer addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddressChoice {
    /// `ensemble.recorded_addresses` of the environment.
    Recorded,
    /// The per-pod Services' `status.loadBalancer.ingress` in the live cluster.
    Live,
}

/// Which observers, and the load-balancer addresses their files are rendered from.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Hosts")]
pub struct HostTargets {
    /// Only these observers (repeatable). Default: all.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Load-balancer addresses zoo.cfg is rendered from.
    #[arg(long, value_enum, default_value_t = AddressChoice::Recorded)]
    pub addresses: AddressChoice,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub targets: HostTargets,
    /// Do not ask for confirmation (without a terminal, push refuses unless given or --dry-run).
    #[arg(long)]
    pub yes: bool,
    /// Show what would change on each host; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The deploy lock, which `deploy`, `apply` and `push` take.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Lock")]
pub struct LockArgs {
    /// Take the deploy lock even though another holder has it (only when you know that holder is
    /// dead: its Lease would otherwise expire within a minute). The takeover names the holder.
    #[arg(long)]
    pub break_lock: bool,
}

/// How hosts are updated (push and deploy).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rollout")]
pub struct RolloutArgs {
    /// How long a host may take to observe after its containers were recreated.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = duration)]
    pub health_timeout: Duration,
    /// The most observers the rollout takes out of service at once: a count (`5`) or a share of
    /// the inventory (`25%`, rounded down, at least one). Hosts are updated in batches of that
    /// many, each batch health-gated before the next starts.
    #[arg(long, value_name = "N|P%", default_value = "1", value_parser = max_unavailable)]
    pub max_unavailable: MaxUnavailable,
}

/// `--max-unavailable`: how many observers a rollout may take out of service at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnavailable {
    Count(u32),
    /// 1..=100.
    Percent(u8),
}

impl MaxUnavailable {
    /// Hosts per batch in an inventory of `observers`: a share rounds down (as Kubernetes rounds
    /// `maxUnavailable`), and is at least one, or nothing could ever be restarted.
    pub fn batch(self, observers: usize) -> usize {
        match self {
            MaxUnavailable::Count(n) => n as usize,
            MaxUnavailable::Percent(p) => observers * usize::from(p) / 100,
        }
        .max(1)
    }
}

impl std::fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnavailable::Count(n) => write!(f, "{n}"),
            MaxUnavailable::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Parses `--max-unavailable`: `N` (at least 1) or `P%` (1 to 100).
pub fn max_unavailable(s: &str) -> Result<MaxUnavailable, String> {
    let fix = "write a count of observers such as 1 or 5, or a share of the inventory such as 25%";
    if let Some(p) = s.strip_suffix('%') {
        match p.parse::<u8>() {
            Ok(p @ 1..=100) => Ok(MaxUnavailable::Percent(p)),
            _ => Err(format!("`{s}`: a share must be 1% to 100%; {fix}")),
        }
    } else {
        match s.parse::<u32>() {
            Ok(0) => Err(format!(
                "`{s}`: a rollout that may take no observer out of service could restart none; {fix}"
            )),
            Ok(n) => Ok(MaxUnavailable::Count(n)),
            Err(_) => Err(format!("`{s}` is not a count or a share; {fix}")),
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub targets: HostTargets,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Show the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Plan only (as --dry-run) and save the plan to FILE, for `--plan FILE` to carry out after
    /// review. It holds the digest of each object's change and of each host file (deployed and
    /// to write), the live load-balancer addresses and the commit it was made with; the diffs are
    /// in it for reading (`review`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["yes", "plan"])]
    pub plan_out: Option<std::path::PathBuf>,
    /// Carry out the plan saved by --plan-out, exactly. Under the deploy lock it plans again and
    /// refuses (exit 1, naming what moved, nothing changed) when the live state or the code no
    /// longer match the file. The file is the approval: no prompt. Its options (--prune,
    /// --force-conflicts, --force-retire, --reset-data) are the plan's, not given again.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["dry_run", "plan_out", "prune", "force_conflicts", "force_retire", "reset_data"]
    )]
    pub plan: Option<std::path::PathBuf>,
    /// Take ownership of fields another field manager owns.
    #[arg(long, help_heading = "Cluster")]
    pub force_conflicts: bool,
    /// Delete objects this tool wrote that are no longer desired.
    #[arg(long, help_heading = "Cluster")]
    pub prune: bool,
    /// Retire the observers listed in `fleet.retired` even when an observer in service is not
    /// healthy, or none is left in service.
    #[arg(long, help_heading = "Hosts")]
    pub force_retire: bool,
    /// Set the data of this observer aside for an empty directory (repeatable): it resyncs the
    /// whole tree from the leader. The repair for an observer whose ensemble was rebuilt (drift's
    /// `epoch-behind`); gated, and put back if the host fails. A stale data/myid is reset without
    /// asking.
    #[arg(long = "reset-data", value_name = "OBSERVER", help_heading = "Hosts")]
    pub reset_data: Vec<String>,
    /// How long to wait for the load balancers' addresses, and for a pruned object to go.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration, help_heading = "Cluster")]
    pub timeout: Duration,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    /// While a deploy holds the lock, wait up to this long for it before checking (a deploy in
    /// progress would look like drift); still held after it, the check is skipped with exit 1.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration, help_heading = "Lock")]
    pub lock_wait: Duration,
    /// Report a quorum TLS certificate (an observer's, its CA's, a participant's) this long
    /// before it expires, e.g. `30d`, `2w`.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = certificate_warning)]
    pub certificate_warning: Duration,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Parses a certificate warning window: a humantime duration from one day to a year.
pub fn certificate_warning(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it like 30d or 2w"))?;
    if !(Duration::from_secs(86_400)..=Duration::from_secs(366 * 86_400)).contains(&d) {
        return Err(format!("`{s}`: the warning window is one day to a year"));
    }
    Ok(d)
}

/// The longest duration any flag takes: beyond it a wait is a mistake, not a plan.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses `500ms`, `90s`, `10m`, `1h 30m` (humantime), from 1 ms to [`MAX_DURATION`].
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("`{s}` is not a duration ({e}); write it like 500ms, 90s, 10m or 1h")
    })?;
    if d.is_zero() {
        return Err(format!("`{s}`: a duration must be longer than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "`{s}` is longer than {}: no wait of this tool should last that long",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unavailable_is_a_count_or_a_share_rounded_down_but_at_least_one() {
        assert_eq!(max_unavailable("5"), Ok(MaxUnavailable::Count(5)));
        assert_eq!(max_unavailable("25%").map(|m| m.batch(20)), Ok(5));
        assert_eq!(max_unavailable("25%").map(|m| m.batch(7)), Ok(1));
        assert_eq!(max_unavailable("10%").map(|m| m.batch(2)), Ok(1));
        assert_eq!(max_unavailable("100%").map(|m| m.batch(20)), Ok(20));
        for bad in ["0", "0%", "101%", "-1", "five", "25 %", ""] {
            assert!(max_unavailable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_and_overflow_is_an_error_not_a_panic() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["99999999999999999h", "48h", "0s", "10", "ten minutes"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
