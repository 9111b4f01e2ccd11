//! `xtask-dev`: the sandbox tool behind `cargo xtask demo` and `cargo xtask bench` (the product's
//! `xtask` binary hands those two to it through cargo). It holds the local sandbox (the Kubernetes
//! API test server, network namespaces, test keys) and the product's commands, which the demo runs
//! through this same binary. The binary that acts on real environments, `xtask`, links none of it.

mod bench;
mod demo;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct DevCli {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
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
    /// (For the benchmark.) One deploy of a generated bench environment in a process of its own,
    /// so that the benchmark can read this tool's peak memory; prints one JSON line.
    #[command(hide = true)]
    BenchChild(BenchChildArgs),
}

#[derive(Debug, Args)]
pub struct BenchChildArgs {
    /// Observers in the generated environment.
    #[arg(long)]
    pub hosts: u8,
    /// The hosts' public key file.
    #[arg(long)]
    pub host_key: std::path::PathBuf,
    #[arg(long)]
    pub kubeconfig: std::path::PathBuf,
    #[arg(long)]
    pub identity: std::path::PathBuf,
    /// Added to the environment's syncLimit: a config change to roll out.
    #[arg(long, default_value_t = 0)]
    pub sync_limit_plus: u32,
    #[arg(long, default_value = "1", value_parser = xtask::cli::max_unavailable)]
    pub max_unavailable: xtask::cli::MaxUnavailable,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the sandbox up until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
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

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("demo" | "bench" | "bench-child") => {}
        // The product's own commands (the demo runs them through this binary).
        _ => return xtask::main(),
    }
    let cli = match DevCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return xtask::usage(&e),
    };
    xtask::init_tracing();
    let result = match &cli.command {
        DevCommand::Demo(args) => demo::run(args),
        DevCommand::Bench(args) => bench::run(args),
        DevCommand::BenchChild(args) => bench::child(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            xtask::output::error(&e);
            ExitCode::from(xtask::output::exit::ERROR)
        }
    }
}
