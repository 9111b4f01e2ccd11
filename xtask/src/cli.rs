//! Command-line flags.

use std::path::PathBuf;

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
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: EnvSelection,
}
