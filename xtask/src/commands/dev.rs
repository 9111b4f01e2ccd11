//! `cargo xtask demo` and `cargo xtask bench`: handed to the sandbox tool, `xtask-dev` (the `dev/`
//! package), which cargo builds on first use. The sandbox (the Kubernetes API test server, network
//! namespaces, test keys) lives there, never in this binary, which is the one that acts on real
//! environments.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::cli::Forward;

/// Runs `xtask-dev <command> <args...>` through cargo in place of this process; returns only when
/// that cannot start.
pub fn forward(command: &str, args: &Forward) -> Result<u8> {
    let sh = Shell::new()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let rest = &args.args;
    let mut run: std::process::Command = cmd!(
        sh,
        "{cargo} run --quiet --manifest-path {manifest} --package xtask-dev --bin xtask-dev -- {command} {rest...}"
    )
    .into();
    // Replaced by cargo (which in turn execs xtask-dev), not waited for: Ctrl-C then reaches the
    // sandbox tool, which tears its sandbox down, instead of killing this process and leaving the
    // terminal to a tool still printing.
    let err = std::os::unix::process::CommandExt::exec(&mut run);
    Err(err).context("running the sandbox tool (xtask-dev) through cargo")
}
