//! The effect layer: command-line interface, file system, and (in later subcommands) the kube
//! client and SSH. The pure model lives in the `manifests` and `hosts` crates.

mod apply;
mod bench;
mod check;
mod cli;
mod cluster;
mod demo;
mod deploy;
mod diff;
mod drift;
mod environments;
mod fields;
pub mod hostops;
mod lb;
mod lock;
mod output;
mod plan;
mod push;
mod render;
mod rollout;
mod ssh;
mod status;
mod yamldiff;

use std::process::ExitCode;

use clap::Parser;

pub use cli::{Cli, Command, OutputFormat};

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Success, or in sync.
    pub const OK: u8 = 0;
    /// An error: nothing was changed unless the message says so.
    pub const ERROR: u8 = 1;
    /// Changes or drift found (diff, drift, deploy --dry-run).
    pub const CHANGES: u8 = 2;
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(&e);
            ExitCode::from(exit::ERROR)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Render(args) => render::run(args, cli.output),
        Command::Check(args) => check::run(args, cli.output),
        Command::Diff(args) => diff::run(args, cli.output),
        Command::Apply(args) => apply::run(args, cli.output),
        Command::Push(args) => push::run(args, cli.output),
        Command::Status(args) => status::run(args, cli.output),
        Command::Deploy(args) => deploy::run(args, cli.output),
        Command::Drift(args) => drift::run(args, cli.output),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never)
        .init();
}
