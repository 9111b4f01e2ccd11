//! `cargo xtask completions SHELL` and `cargo xtask man [COMMAND]`: documents generated from the
//! clap definition in `cli.rs` (clap_complete, clap_mangen), so they cannot drift from the flags.

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::output::exit;
use crate::output::report::Report;

/// The name the completions complete: a single word (clap's `cargo xtask` has a space).
pub const COMPLETED_NAME: &str = "xtask";

/// A generated document, printed as it is.
#[derive(Debug, Serialize)]
pub struct Generated {
    /// `completions-bash`, `man`, `man-deploy`, ...
    pub kind: String,
    pub text: String,
}

impl Report for Generated {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("serializes")
    }

    fn print(&self) {
        use std::io::Write;
        // As generated: no colours, no added lines (it is piped into a file or `man -l -`).
        let _ = std::io::stdout().write_all(self.text.as_bytes());
    }

    fn exit_code(&self) -> u8 {
        exit::OK
    }
}

pub fn completions(args: &CompletionsArgs) -> Result<Generated> {
    let mut cmd = Cli::command().bin_name(COMPLETED_NAME).name(COMPLETED_NAME);
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, COMPLETED_NAME, &mut out);
    Ok(Generated {
        kind: format!("completions-{}", args.shell),
        text: String::from_utf8(out).context("the completion script is not UTF-8")?,
    })
}

pub fn man(args: &ManArgs) -> Result<Generated> {
    let root = Cli::command().name("cargo-xtask");
    let (kind, cmd) = match &args.command {
        None => ("man".to_string(), root),
        Some(name) => {
            let Some(sub) = root.find_subcommand(name).cloned() else {
                let known: Vec<String> = root
                    .get_subcommands()
                    .map(|c| c.get_name().to_string())
                    .collect();
                bail!(
                    "man {name}: no such command; commands: {}",
                    known.join(", ")
                );
            };
            (
                format!("man-{name}"),
                sub.name(format!("cargo-xtask-{name}")),
            )
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    Ok(Generated {
        kind,
        text: String::from_utf8(out).context("the man page is not UTF-8")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_offer_commands_flags_and_environment_names() {
        let bash = completions(&CompletionsArgs {
            shell: clap_complete::Shell::Bash,
        })
        .unwrap()
        .text;
        for word in [
            "deploy",
            "drift",
            "--max-unavailable",
            "--lock-wait",
            "--reset-data",
        ] {
            assert!(bash.contains(word), "{word} missing");
        }
        for env in manifests::environments::names() {
            assert!(bash.contains(&env), "environment {env} missing");
        }
        // The script is valid bash.
        let status = std::process::Command::new("bash")
            .args(["-n", "-c", &bash])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn the_man_pages_come_from_the_flags() {
        let top = man(&ManArgs { command: None }).unwrap().text;
        assert!(top.starts_with(".ie") || top.contains(".TH"), "{top}");
        assert!(top.contains("deploy"), "lists the commands");
        let deploy = man(&ManArgs {
            command: Some("deploy".into()),
        })
        .unwrap()
        .text;
        assert!(deploy.contains("max\\-unavailable"), "{deploy}");
        let err = man(&ManArgs {
            command: Some("nope".into()),
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no such command") && err.contains("deploy"),
            "{err}"
        );
    }
}
