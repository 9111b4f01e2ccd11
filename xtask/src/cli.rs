//! Command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run ZooKeeper observers outside a Kubernetes cluster, as code.
///
/// The environments (ensemble, load balancers, observers, monitoring) are Rust modules in
/// manifests/src/environments/ and hosts/src/inventory/. Every command validates the environment
/// first and changes nothing when it is invalid.
///
/// Exit codes: 0 success or in sync, 2 changes or drift found, 1 error.
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
pub struct Cli {
    /// Output format of the result on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
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
    /// Write the Kubernetes manifests and every observer's files to a directory tree.
    ///
    /// Layout: OUT/<env>/kubernetes.yaml (multi-document, for `kubectl apply -f`) and
    /// OUT/<env>/hosts/<observer>/{zoo.cfg,docker-compose.yaml}. Host files use the load-balancer
    /// addresses recorded in the environment; a participant without one is an error. Each
    /// OUT/<env> directory is replaced as a whole, never left half-written.
    Render(RenderArgs),
    /// Validate environments without touching anything. Exit 0 when valid (warnings allowed), 1 when not.
    Check(CheckArgs),
    /// Show what `apply` (and, with --hosts, `push`) would change: exit 0 in sync, 2 changes, 1 error.
    ///
    /// Every desired object goes through a server-side-apply dry run with this tool's field
    /// manager, and the result is compared with the live object, without server bookkeeping
    /// (managedFields, resourceVersion, uid, timestamps, generation, status). Objects carrying this
    /// tool's labels for the environment that are no longer desired are shown as prunes. Fields
    /// owned by another field manager with another value are shown as conflicts.
    Diff(DiffArgs),
    /// Server-side apply the desired objects, then wait for the per-pod load balancers' addresses.
    ///
    /// One constant field manager, no force unless --force-conflicts: a field another manager
    /// owns is reported (manager and field) and nothing is applied. --prune deletes objects that
    /// carry this tool's managed-by and environment labels and are no longer desired, nothing
    /// else. The live addresses are compared with those recorded in the environment; a difference
    /// is an error unless --accept-live-addresses.
    Apply(ApplyArgs),
    /// Render each observer's zoo.cfg and docker-compose.yaml and roll them out over SSH.
    ///
    /// Reads the files on every host (one SSH connection per host, host keys pinned in the
    /// inventory), shows a unified diff, then updates the hosts that need it one at a time: the
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
    /// Check; show the whole plan (cluster diff and host diffs); confirm (skipped with --yes; without
    /// a terminal and without --yes it refuses); apply the per-pod Services; wait for their
    /// addresses; render the observers' files from the live addresses; rolling push with the health
    /// gate; apply the monitoring Service, Endpoints and EndpointSlice listing the healthy
    /// observers; summary per object and host. A Lease in the ensemble's namespace keeps two
    /// deploys from running at once. Exit 0 success, 1 failure; --dry-run: 0 in sync, 2 changes.
    Deploy(DeployArgs),
    /// Compare the live cluster and hosts with the code, read-only. Exit 0 clean, 2 drift, 1 error.
    ///
    /// Finds owned objects changed, missing or extra; load-balancer addresses that differ from
    /// those the observers use; host files that differ; containers not running; observers not
    /// observing or not synced; exporters down. While a deploy holds the lock it reports that and
    /// exits 0 instead of reading a half-finished deploy as drift.
    Drift(DriftArgs),
    /// Run the whole tool on this machine: sandbox up, deploy, status, drift made and caught, down.
    ///
    /// Needs root. Installs the Debian packages the sandbox needs when they are missing. The first
    /// run builds the sandbox's images from Debian packages (about 1.5 minutes).
    Demo(DemoArgs),
    /// Benchmarks (not tests): edit-to-render, fan-out over N hosts, the Ansible peer, API cost.
    ///
    /// Needs root (it starts sandboxes with N observer hosts). Prints one table; see
    /// docs/benchmarks.md for the figures and how they were taken.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct EnvSelection {
    /// Environment name (see manifests/src/environments/). Default: every environment.
    #[arg(long = "env", value_name = "ENV")]
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

#[derive(Debug, Clone, Args)]
pub struct ClusterSelection {
    /// Environment name. Default: the environment pinned to the kubeconfig's current context.
    #[arg(long = "env", value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
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
    #[command(flatten)]
    pub ssh: crate::ssh::SshArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
    /// Take ownership of fields another field manager owns (server-side apply force).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete objects with this tool's managed-by and environment labels that are no longer desired.
    #[arg(long)]
    pub prune: bool,
    /// Do not wait for the load balancers' addresses.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the load balancers' addresses (e.g. 90s, 10m).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Accept live load-balancer addresses that differ from the recorded ones (warn instead of failing).
    #[arg(long)]
    pub accept_live_addresses: bool,
}

/// Parses `500ms`, `90s`, `10m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (ms, s, m or h)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{unit}` is not a unit: use ms, s, m or h")),
    })
}

/// Where host files get the participants' load-balancer addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddressChoice {
    /// `ensemble.recorded_addresses` of the environment.
    Recorded,
    /// The per-pod Services' `status.loadBalancer.ingress` in the live cluster.
    Live,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    /// Only these observers (repeatable). Default: all.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Show what would change on each host; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a host may take to observe after its containers were recreated.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub health_timeout: Duration,
    /// Load-balancer addresses to render zoo.cfg from.
    #[arg(long, value_enum, default_value_t = AddressChoice::Recorded)]
    pub addresses: AddressChoice,
    #[command(flatten)]
    pub ssh: crate::ssh::SshArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    /// Only these observers (repeatable). Default: all.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Load-balancer addresses the files are expected to use.
    #[arg(long, value_enum, default_value_t = AddressChoice::Recorded)]
    pub addresses: AddressChoice,
    #[command(flatten)]
    pub ssh: crate::ssh::SshArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Show the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Take ownership of fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete owned objects that are no longer desired.
    #[arg(long)]
    pub prune: bool,
    /// How long to wait for the load balancers' addresses.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long a host may take to observe after its containers were recreated.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub health_timeout: Duration,
    #[command(flatten)]
    pub ssh: crate::ssh::SshArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub selection: ClusterSelection,
    #[command(flatten)]
    pub ssh: crate::ssh::SshArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fan-out sizes (comma-separated), e.g. 1,5,20; 0 alone skips the fan-out.
    #[arg(long, value_delimiter = ',', default_value = "1,5,20")]
    pub hosts: Vec<u8>,
    /// Skip the edit-to-render section.
    #[arg(long)]
    pub skip_build: bool,
    /// Skip the cold build (about two minutes).
    #[arg(long)]
    pub skip_cold: bool,
    /// Skip the Ansible comparison.
    #[arg(long)]
    pub skip_ansible: bool,
    /// Skip the API-efficiency section.
    #[arg(long)]
    pub skip_api: bool,
    /// After each fan-out size, keep its sandbox up to profile by hand: prints how to reach the
    /// hosts, times one more no-op deploy for each line read from stdin, tears down at end of input.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the sandbox up until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: EnvSelection,
}
