//! `cargo xtask demo` and `cargo xtask bench`: handed to the sandbox tool, `xtask-dev` (the `dev/`
//! package), which cargo builds on first use. The sandbox (the Kubernetes API test server, network
//! namespaces, test keys) lives there, never in this binary, which is the one that acts on real
//! environments.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::cli::Forward;
use crate::exit;

/// Runs `xtask-dev <command> <args...>` through cargo and returns its exit code.
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
    let status = run
        .status()
        .context("running the sandbox tool (xtask-dev) through cargo")?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::ERROR))
}
