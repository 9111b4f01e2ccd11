//! `cargo xtask check`: validation only.

use anyhow::Result;
use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};
use crate::{environments, exit, output};

#[derive(Serialize)]
struct Report<'a> {
    environment: &'a str,
    valid: bool,
    errors: usize,
    warnings: usize,
    problems: &'a hosts::Problems,
}

pub fn run(args: &CheckArgs, format: OutputFormat) -> Result<u8> {
    let envs = environments::select(&args.selection)?;
    let mut code = exit::OK;
    let mut reports = Vec::new();
    let checked: Vec<_> = envs.iter().map(|e| (e, manifests::validate(e))).collect();
    for (env, problems) in &checked {
        let valid = !problems.has_errors();
        if !valid {
            code = exit::ERROR;
        }
        match format {
            OutputFormat::Text => {
                for p in problems {
                    output::problem(&env.name, p);
                }
                let summary = format!(
                    "{}: {} error(s), {} warning(s)",
                    env.name,
                    problems.errors().count(),
                    problems.warnings().count()
                );
                if valid {
                    output::ok(&summary);
                } else {
                    output::line(&format!("invalid {summary}"));
                }
            }
            OutputFormat::Json => reports.push(Report {
                environment: &env.name,
                valid,
                errors: problems.errors().count(),
                warnings: problems.warnings().count(),
                problems,
            }),
        }
    }
    if format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(code)
}
