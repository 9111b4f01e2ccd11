//! The effect layer: command-line interface, file system, the kube client and SSH. The pure model
//! lives in the `manifests` and `hosts` crates. One file per subcommand in `commands/` (`render`,
//! `check`, `diff`, `apply`, `push`, `status`, `deploy`, `drift`, `generate` for completions and
//! the man page, and `dev` for what the sandbox tool does); no subcommand file uses another:
//! what they share is in the layers below them.

// The layers, as ARCHITECTURE.md's code map draws them: one file per subcommand in `commands/`
// (with what reads both sides at once, `commands::reads`); the cluster side (`cluster/`) and the
// host side (`fleet/`), which never import each other; and what every layer shares: the CLI, the
// environments, the deploy lock, signals, provenance, and the one output path (`output/`).
pub mod commands;

pub mod cluster;
pub mod fleet;

pub mod cli;
pub mod environments;
pub mod lock;
pub mod output;
pub mod provenance;
pub mod signals;

#[cfg(test)]
mod layers;

use std::process::ExitCode;

use clap::Parser;

pub use cli::{Cli, Command, OutputFormat};
use commands::{apply, check, deploy, dev, diff, drift, generate, push, render, status};
use output::exit;
use output::report::Report;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    init_tracing();
    ExitCode::from(run_and_report(&cli))
}

/// `--help` and `--version` exit 0; a usage error is an error like any other: exit 1 (clap's own
/// 2 would read as "changes found").
pub fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(if e.use_stderr() {
        exit::ERROR
    } else {
        exit::OK
    })
}

/// Runs `cli`, prints the result (or the error), and returns the exit code.
pub fn run_and_report(cli: &Cli) -> u8 {
    match run(cli) {
        Ok(Done::Report(report)) => {
            output::report::emit(report.as_ref(), cli.output);
            report.exit_code()
        }
        Ok(Done::Code(code)) => code,
        Err(e) => {
            output::error(&e);
            exit::ERROR
        }
    }
}

/// What a command ended with.
pub enum Done {
    Report(Box<dyn Report>),
    /// The sandbox tool ran and printed for itself.
    Code(u8),
}

fn boxed(r: impl Report + 'static) -> Done {
    Done::Report(Box::new(r))
}

pub fn run(cli: &Cli) -> anyhow::Result<Done> {
    let format = cli.output;
    Ok(match &cli.command {
        Command::Render(args) => boxed(render::run(args)?),
        Command::Check(args) => boxed(check::run(args)?),
        Command::Diff(args) => boxed(diff::run_reporting(args)?),
        Command::Apply(args) => boxed(apply::run(args, format)?),
        Command::Push(args) => boxed(push::run(args, format)?),
        Command::Status(args) => boxed(status::run(args)?),
        Command::Deploy(args) => boxed(deploy::run(args, format)?),
        Command::Drift(args) => boxed(drift::run(args)),
        Command::Completions(args) => boxed(generate::completions(args)?),
        Command::Man(args) => boxed(generate::man(args)?),
        Command::Demo(args) => Done::Code(dev::forward("demo", args)?),
        Command::Bench(args) => Done::Code(dev::forward("bench", args)?),
    })
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // kube-client logs every failed attempt as an error; the retry layer says what happens.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,kube_client::client::builder=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never)
        .init();
}
