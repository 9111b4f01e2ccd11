//! `cargo xtask check`: validation only.

use anyhow::Result;
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::output::report::Report;
use crate::{environments, output, output::exit};

#[derive(Serialize)]
pub struct Checked {
    environment: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    problems: hosts::Problems,
    /// Which commands the environment as committed can run, and why the others cannot.
    commands: Vec<Readiness>,
}

/// Whether one command can run on an environment as committed.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Readiness {
    command: &'static str,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why_not: Option<String>,
}

/// The commands that only read or write the cluster, and those that also connect to the hosts.
const CLUSTER_COMMANDS: [&str; 4] = ["render", "check", "diff", "apply"];
const HOST_COMMANDS: [&str; 4] = ["push", "status", "drift", "deploy"];

/// What `env` can run: nothing when it is invalid; the host commands only when every host's key
/// is pinned (ssh refuses otherwise: no trust on first use).
pub fn readiness(env: &manifests::Environment, valid: bool) -> Vec<Readiness> {
    let unpinned: Vec<String> = env
        .fleet
        .observers
        .iter()
        .enumerate()
        .filter(|(_, o)| o.host_key == hosts::HostKey::NotPinned)
        .map(|(i, _)| format!("fleet.observers[{i}].host_key"))
        .chain(
            env.fleet
                .retired
                .iter()
                .enumerate()
                .filter(|(_, r)| r.observer.host_key == hosts::HostKey::NotPinned)
                .map(|(i, _)| format!("fleet.retired[{i}].observer.host_key")),
        )
        .collect();
    let hosts_blocked =
        (!unpinned.is_empty()).then(|| format!("host keys not pinned: {}", unpinned.join(", ")));
    let of = |command: &'static str, blocked: &Option<String>| {
        let why_not = if !valid {
            Some("the environment is invalid".to_string())
        } else {
            blocked.clone()
        };
        Readiness {
            command,
            ready: why_not.is_none(),
            why_not,
        }
    };
    CLUSTER_COMMANDS
        .iter()
        .map(|c| of(c, &None))
        .chain(HOST_COMMANDS.iter().map(|c| of(c, &hosts_blocked)))
        .collect()
}

/// The JSON is the list of environments (unchanged by `--strict`, which decides the exit code).
pub struct CheckReport {
    /// `--strict`: warnings count as errors.
    strict: bool,
    environments: Environments,
}

#[derive(Serialize)]
#[serde(transparent)]
struct Environments(Vec<Checked>);

impl Report for CheckReport {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.environments).expect("serializes")
    }

    fn print(&self) {
        for c in &self.environments.0 {
            for p in &c.problems {
                output::problem(&c.environment, p);
            }
            let summary = format!(
                "{}: {} error(s), {} warning(s)",
                c.environment, c.errors, c.warnings
            );
            if !c.valid {
                output::line(&format!("invalid {summary}"));
            } else if self.strict && c.warnings > 0 {
                output::line(&format!("not ok (--strict: warnings count) {summary}"));
            } else {
                output::ok(&summary);
            }
            let ready: Vec<&str> = c
                .commands
                .iter()
                .filter(|r| r.ready)
                .map(|r| r.command)
                .collect();
            let mut not: Vec<(&str, &str)> = c
                .commands
                .iter()
                .filter_map(|r| Some((r.command, r.why_not.as_deref()?)))
                .collect();
            let mut line = format!(
                "  can run: {}",
                if ready.is_empty() {
                    "nothing".to_string()
                } else {
                    ready.join(", ")
                }
            );
            // Commands blocked for the same reason are named together.
            while let Some(&(_, why)) = not.first() {
                let (same, rest): (Vec<_>, Vec<_>) = not.into_iter().partition(|(_, w)| *w == why);
                let names: Vec<&str> = same.iter().map(|(c, _)| *c).collect();
                line.push_str(&format!("; not {} ({why})", names.join(", ")));
                not = rest;
            }
            output::line(&line);
        }
    }

    fn exit_code(&self) -> u8 {
        let passes = |c: &Checked| c.valid && !(self.strict && c.warnings > 0);
        if self.environments.0.iter().all(passes) {
            exit::OK
        } else {
            exit::ERROR
        }
    }
}

pub fn run(args: &CheckArgs) -> Result<CheckReport> {
    let envs = environments::select(&args.selection)?;
    Ok(CheckReport {
        strict: args.strict,
        environments: Environments(
            envs.iter()
                .map(|env| {
                    let problems = manifests::validate(env);
                    let valid = !problems.has_errors();
                    Checked {
                        environment: env.name.clone(),
                        valid,
                        errors: problems.errors().count(),
                        warnings: problems.warnings().count(),
                        problems,
                        commands: readiness(env, valid),
                    }
                })
                .collect(),
        ),
    })
}
