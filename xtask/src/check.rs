//! `cargo xtask check`: validation only.

use anyhow::Result;
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::report::Report;
use crate::{environments, exit, output};

#[derive(Serialize)]
pub struct Checked {
    environment: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    problems: hosts::Problems,
}

#[derive(Serialize)]
#[serde(transparent)]
pub struct CheckReport(Vec<Checked>);

impl Report for CheckReport {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("serializes")
    }

    fn print(&self) {
        for c in &self.0 {
            for p in &c.problems {
                output::problem(&c.environment, p);
            }
            let summary = format!(
                "{}: {} error(s), {} warning(s)",
                c.environment, c.errors, c.warnings
            );
            if c.valid {
                output::ok(&summary);
            } else {
                output::line(&format!("invalid {summary}"));
            }
        }
    }

    fn exit_code(&self) -> u8 {
        if self.0.iter().all(|c| c.valid) {
            exit::OK
        } else {
            exit::ERROR
        }
    }
}

pub fn run(args: &CheckArgs) -> Result<CheckReport> {
    let envs = environments::select(&args.selection)?;
    Ok(CheckReport(
        envs.iter()
            .map(|env| {
                let problems = manifests::validate(env);
                Checked {
                    environment: env.name.clone(),
                    valid: !problems.has_errors(),
                    errors: problems.errors().count(),
                    warnings: problems.warnings().count(),
                    problems,
                }
            })
            .collect(),
    ))
}
