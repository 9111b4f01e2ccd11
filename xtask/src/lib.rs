//! The effect layer: command-line interface, file system, the kube client and SSH. The pure model
//! lives in the `manifests` and `hosts` crates. One file per subcommand (`render`, `check`,
//! `diff`, `apply`, `push`, `status`, `deploy`, `drift`, `generate` for completions and the man
//! page, and `dev` for what the sandbox tool does);
//! no subcommand file uses another: what they share is in the modules below them.

// Subcommands.
pub mod apply;
pub mod check;
pub mod deploy;
mod dev;
pub mod diff;
pub mod drift;
pub mod generate;
pub mod push;
pub mod render;
pub mod status;

// What the subcommands share.
pub mod cli;
pub mod cluster;
pub mod ensemble;
pub mod environments;
pub mod execute;
pub mod exit;
mod fields;
pub mod fleet;
pub mod hostops;
pub mod lb;
pub mod lock;
pub mod output;
pub mod plan;
pub mod planfile;
pub mod prompt;
pub mod provenance;
pub mod report;
mod retry;
pub mod rollout;
pub mod secrets;
pub mod signals;
pub mod ssh;
mod yamldiff;

use std::process::ExitCode;

use clap::Parser;

pub use cli::{Cli, Command, OutputFormat};
use report::Report;

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
            output::emit(report.as_ref(), cli.output);
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
