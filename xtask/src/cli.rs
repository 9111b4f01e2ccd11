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
    /// Show what `apply` would change in the live cluster: exit 0 in sync, 2 changes, 1 error.
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

#[derive(Debug, Args)]
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

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: EnvSelection,
}
