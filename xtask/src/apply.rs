//! `cargo xtask apply`: server-side apply of the desired objects, optional prune, and the wait for
//! the load balancers' addresses.

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;

use crate::cli::{ApplyArgs, OutputFormat};
use crate::cluster::{block_on, Applied, Cluster};
use crate::plan::{self, Action, Planner};
use crate::{environments, exit, lb, output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// Owned but no longer desired, and --prune was not given.
    Kept,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    pub object: String,
    pub result: Outcome,
}

pub fn run(args: &ApplyArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    let objects = manifests::desired_objects(&env);
    let timeout = args.timeout;
    block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster).await?;
        let plan = plan::plan(&cluster, &env, &objects, Planner::DryRun).await?;
        if !args.force_conflicts && plan.summary.conflicts > 0 {
            let list = plan.conflict_lines();
            bail!(
                "nothing was applied: {} field(s) are owned by another field manager with a different value:\n  {}\n\
                 Run `cargo xtask diff --env {}` to see the values. If this tool should own them, rerun with \
                 --force-conflicts (the other manager may set them back)",
                list.len(),
                list.join("\n  "),
                env.name
            );
        }
        let mut results = Vec::new();
        for change in &plan.changes {
            let outcome = match (change.action, &change.desired) {
                (Action::Unchanged, _) => Outcome::Unchanged,
                (Action::Create | Action::Update, Some(object)) => {
                    if change.deleting.is_some() {
                        cluster.wait_gone(&change.reference, timeout).await?;
                    }
                    match cluster.apply(object, false, args.force_conflicts).await? {
                        Applied::Ok(_) => {}
                        Applied::Conflicts(c) => bail!(
                            "{} changed while applying: {} is now owned by \"{}\"; rerun `cargo xtask apply`",
                            change.object,
                            c[0].field,
                            c[0].manager
                        ),
                    }
                    if change.action == Action::Create {
                        Outcome::Created
                    } else {
                        Outcome::Configured
                    }
                }
                (Action::Prune, _) if args.prune => {
                    cluster.delete_and_wait(&change.reference, timeout).await?;
                    Outcome::Pruned
                }
                _ => Outcome::Kept,
            };
            if format == OutputFormat::Text {
                output::outcome(&change.object, &format!("{outcome:?}").to_lowercase());
            }
            results.push(ObjectResult {
                object: change.object.clone(),
                result: outcome,
            });
        }
        let count = |o: Outcome| results.iter().filter(|r| r.result == o).count();
        let summary = json!({
            "created": count(Outcome::Created),
            "configured": count(Outcome::Configured),
            "unchanged": count(Outcome::Unchanged),
            "pruned": count(Outcome::Pruned),
            "kept": count(Outcome::Kept),
        });
        if format == OutputFormat::Text {
            output::line(&format!(
                "applied {}: {} created, {} configured, {} unchanged, {} pruned",
                env.name,
                count(Outcome::Created),
                count(Outcome::Configured),
                count(Outcome::Unchanged),
                count(Outcome::Pruned)
            ));
            if count(Outcome::Kept) > 0 {
                output::warning(&format!(
                    "{} object(s) carry this tool's labels for {} but are no longer desired; rerun with --prune to delete them",
                    count(Outcome::Kept),
                    env.name
                ));
            }
        }
        let mut addresses = Vec::new();
        let mut code = exit::OK;
        if !args.no_wait {
            let live =
                lb::wait_for_addresses(&cluster, &env, timeout, Duration::from_millis(250)).await?;
            addresses = lb::compare(&env, &live);
            if format == OutputFormat::Text {
                for a in &addresses {
                    output::line(&format!(
                        "  {:<12} {:<16} {}",
                        a.service,
                        a.live,
                        if a.matches {
                            "= recorded".to_string()
                        } else {
                            format!("!= recorded {}", a.recorded.as_deref().unwrap_or("(none)"))
                        }
                    ));
                }
            }
            if let Some(msg) = lb::mismatch_message(&env, &addresses) {
                if args.accept_live_addresses {
                    output::warning(&msg);
                } else {
                    if format == OutputFormat::Json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(
                                &json!({"environment": env.name, "objects": results, "addresses": addresses, "summary": summary})
                            )?
                        );
                    }
                    code = exit::ERROR;
                    output::error(&anyhow::anyhow!("{msg}; or pass --accept-live-addresses"));
                    return Ok(code);
                }
            }
        }
        if format == OutputFormat::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "environment": env.name,
                    "context": cluster.context,
                    "objects": results,
                    "addresses": addresses,
                    "summary": summary,
                }))?
            );
        }
        Ok(code)
    })
}
