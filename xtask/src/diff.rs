//! `cargo xtask diff`: what `apply` would change in the live cluster.

use anyhow::Result;
use serde_json::json;

use crate::cli::{DiffArgs, OutputFormat};
use crate::cluster::{block_on, Cluster};
use crate::plan::{self, Action, Plan};
use crate::{environments, exit, output};

pub fn run(args: &DiffArgs, format: OutputFormat) -> Result<u8> {
    let env = environments::validated(environments::select_one(&args.selection)?)?;
    let objects = manifests::desired_objects(&env);
    let (cluster, plan) = block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster).await?;
        let plan = plan::plan(&cluster, &env, &objects).await?;
        Ok((cluster, plan))
    })?;
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "environment": env.name,
                "context": cluster.context,
                "in_sync": plan.in_sync(),
                "objects": plan.changes,
                "summary": plan.summary,
            }))?
        ),
        OutputFormat::Text => print_plan(&env.name, &cluster, &plan),
    }
    Ok(if plan.in_sync() {
        exit::OK
    } else {
        exit::CHANGES
    })
}

/// Prints a plan for people: each change with its coloured diff, then a summary.
pub fn print_plan(env: &str, cluster: &Cluster, plan: &Plan) {
    output::line(&format!(
        "cluster diff for {env} (context {}, {})",
        cluster.context, cluster.server
    ));
    for c in &plan.changes {
        match c.action {
            Action::Unchanged => continue,
            Action::Create => output::change('+', "create", &c.object),
            Action::Update => output::change('~', "update", &c.object),
            Action::Prune => output::change(
                '-',
                "prune",
                &format!(
                    "{} (no longer desired; `apply --prune` deletes it)",
                    c.object
                ),
            ),
        }
        output::diff(&c.diff);
        for k in &c.conflicts {
            output::change(
                '!',
                "conflict",
                &format!(
                    "{}: {} is owned by \"{}\"; applying needs --force-conflicts",
                    c.object, k.field, k.manager
                ),
            );
        }
    }
    let s = &plan.summary;
    output::line(&format!(
        "{}: {} to create, {} to update, {} unchanged, {} to prune, {} conflict(s)",
        if plan.in_sync() { "in sync" } else { "changes" },
        s.create,
        s.update,
        s.unchanged,
        s.prune,
        s.conflicts
    ));
}
