//! The cluster plan: what applying the desired objects would change. `diff`, `apply` and `deploy`
//! find it with server-side apply dry runs (so the server's defaulting and field ownership decide,
//! as with `kubectl diff`); `drift` with reads only, from the live objects' managedFields
//! ([`crate::cluster::fields`]), so that its identity needs no write right.
//!
//! Only what this tool wrote counts as its own: an object is this tool's when its managedFields
//! name this tool's field manager. Labels alone do not tell: the Endpoints and EndpointSlice
//! controllers copy a Service's labels onto the objects they write for it.

use std::collections::BTreeSet;

use anyhow::Result;
use manifests::{Environment, Object, FIELD_MANAGER};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::yamldiff::{normalize, to_yaml, unified};
use crate::cluster::{deleting, Applied, Cluster, Conflict, Kind, ObjectRef};
use crate::{cluster::fields, output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// Carries this tool's labels for the environment but is no longer desired.
    Prune,
}

/// How a plan finds out what applying would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planner {
    /// The server decides: a server-side-apply dry run per object. Needs the rights of a deploy
    /// (`patch`, and `create` for objects that do not exist yet: a dry run is authorized like the
    /// real request), and proves each object would be accepted.
    DryRun,
    /// Reads only (`get`, `list`): the live object and its managedFields.
    Read,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub object: String,
    pub action: Action,
    /// The live object is being deleted (a finalizer holds it): why, and since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleting: Option<String>,
    /// Fields another manager owns with a different value: applying needs --force-conflicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// Unified YAML diff, live -> desired (uncoloured); empty when unchanged.
    pub diff: String,
    #[serde(skip)]
    pub reference: ObjectRef,
    #[serde(skip)]
    pub desired: Option<Object>,
    /// The live object, when there is one.
    #[serde(skip)]
    pub live: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub prune: usize,
    pub conflicts: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub summary: Summary,
}

impl Plan {
    pub fn in_sync(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Unchanged)
    }

    /// The live object of a desired or owned object, by reference.
    pub fn live(&self, r: &ObjectRef) -> Option<&Value> {
        self.changes
            .iter()
            .find(|c| c.reference == *r)
            .and_then(|c| c.live.as_ref())
    }

    pub fn conflicts(&self) -> impl Iterator<Item = (&Change, &Conflict)> {
        self.changes
            .iter()
            .flat_map(|c| c.conflicts.iter().map(move |k| (c, k)))
    }

    /// An error listing the fields another manager owns with a different value, unless `force`
    /// or there are none: nothing may be applied then.
    pub fn refuse_conflicts(&self, env: &str, force: bool) -> Result<()> {
        let list = self.conflict_lines();
        if force || list.is_empty() {
            return Ok(());
        }
        Err(crate::output::hinted(
            format!(
                "nothing was applied: {} field(s) are owned by another field manager with a different value:\n  {}",
                list.len(),
                list.join("\n  ")
            ),
            format!(
                "`cargo xtask diff --env {env}` shows the values; if this tool should own them, rerun with \
                 --force-conflicts (the other manager may set them back)"
            ),
        ))
    }

    /// One line per conflicting field: object, field, owning manager.
    pub fn conflict_lines(&self) -> Vec<String> {
        self.conflicts()
            .map(|(c, k)| {
                format!(
                    "{}: {} is owned by field manager \"{}\"",
                    c.object, k.field, k.manager
                )
            })
            .collect()
    }
}

impl Plan {
    /// The plan for people: each change with its coloured diff and conflicts, then a summary.
    pub fn print(&self, heading: &str) {
        output::line(heading);
        for c in &self.changes {
            match c.action {
                Action::Unchanged => continue,
                Action::Create => match &c.deleting {
                    Some(why) => output::change(
                        '+',
                        "create",
                        &format!("{} ({why}; created again once it is gone)", c.object),
                    ),
                    None => output::change('+', "create", &c.object),
                },
                Action::Update => output::change('~', "update", &c.object),
                Action::Prune => output::change(
                    '-',
                    "prune",
                    &match &c.deleting {
                        Some(why) => format!("{} (no longer desired; {why})", c.object),
                        None => format!(
                            "{} (no longer desired; `apply --prune` deletes it)",
                            c.object
                        ),
                    },
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
        let s = &self.summary;
        output::line(&format!(
            "{}: {} to create, {} to update, {} unchanged, {} to prune, {} conflict(s)",
            if self.in_sync() { "in sync" } else { "changes" },
            s.create,
            s.update,
            s.unchanged,
            s.prune,
            s.conflicts
        ));
    }
}

/// Plans `objects` against the live cluster, and lists this tool's objects of `env` that are no
/// longer desired. Requests: one GET per object (plus, with [`Planner::DryRun`], one dry-run PATCH,
/// two on a conflict), and one label-filtered LIST per kind and namespace, whatever else the
/// namespaces hold.
pub async fn plan(
    cluster: &Cluster,
    env: &Environment,
    objects: &[Object],
    planner: Planner,
) -> Result<Plan> {
    plan_with(cluster, env, objects, true, planner).await
}

/// Like [`plan`]; without `prune`, owned objects that are not desired are not looked for.
pub async fn plan_with(
    cluster: &Cluster,
    env: &Environment,
    objects: &[Object],
    prune: bool,
    planner: Planner,
) -> Result<Plan> {
    let mut changes = Vec::new();
    for object in objects {
        changes.push(plan_one(cluster, object, planner).await?);
    }
    let desired: BTreeSet<ObjectRef> = objects.iter().map(ObjectRef::of).collect();
    let owned = if prune {
        owned(cluster, env).await?
    } else {
        vec![]
    };
    for (r, live) in owned {
        if !desired.contains(&r) {
            let old = to_yaml(&normalize(&live));
            changes.push(Change {
                object: r.to_string(),
                action: Action::Prune,
                deleting: deleting(&live),
                conflicts: vec![],
                diff: unified(&old, "", &format!("{r} (live)"), "/dev/null (pruned)"),
                reference: r,
                desired: None,
                live: Some(live),
            });
        }
    }
    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Unchanged => summary.unchanged += 1,
            Action::Prune => summary.prune += 1,
        }
        summary.conflicts += c.conflicts.len();
    }
    Ok(Plan { changes, summary })
}

async fn plan_one(cluster: &Cluster, object: &Object, planner: Planner) -> Result<Change> {
    let r = ObjectRef::of(object);
    let desired = serde_json::to_value(object)?;
    let live = cluster.get(&r).await?;
    let being_deleted = live.as_ref().and_then(deleting);
    let create_diff = || {
        unified(
            "",
            &to_yaml(&normalize(&desired)),
            "/dev/null",
            &format!("{r} (desired)"),
        )
    };
    let (action, diff, conflicts) = match (&live, planner) {
        // Going away: applying now would change an object about to disappear; it is created
        // again once it is gone.
        (Some(_), _) if being_deleted.is_some() => (Action::Create, create_diff(), vec![]),
        (live, Planner::DryRun) => {
            // The dry run also proves the object would be accepted (namespace, schema, RBAC).
            let (dry, conflicts) = match cluster.apply(object, true, false).await? {
                Applied::Ok(v) => (v, vec![]),
                Applied::Conflicts(c) => match cluster.apply(object, true, true).await? {
                    Applied::Ok(v) => (v, c),
                    Applied::Conflicts(c) => anyhow::bail!(
                        "the forced dry run of {r} still reported conflicts ({}): the API server does not honour force",
                        c.iter().map(|k| k.field.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                },
            };
            match live {
                None => (Action::Create, create_diff(), conflicts),
                Some(live) => {
                    let d = live_diff(&r, live, &dry);
                    (changed(&d), d, conflicts)
                }
            }
        }
        (None, Planner::Read) => (Action::Create, create_diff(), vec![]),
        (Some(live), Planner::Read) => {
            let p = fields::predict(&desired, live, FIELD_MANAGER);
            let conflicts = p
                .conflicts
                .into_iter()
                .map(|c| Conflict {
                    manager: c.manager,
                    field: c.field,
                })
                .collect();
            let d = if p.changes {
                live_diff(&r, live, &p.after)
            } else {
                String::new()
            };
            (changed(&d), d, conflicts)
        }
    };
    Ok(Change {
        object: r.to_string(),
        action,
        deleting: being_deleted,
        conflicts,
        diff,
        reference: r,
        desired: Some(object.clone()),
        live,
    })
}

fn live_diff(r: &ObjectRef, live: &Value, after: &Value) -> String {
    unified(
        &to_yaml(&normalize(live)),
        &to_yaml(&normalize(after)),
        &format!("{r} (live)"),
        &format!("{r} (desired)"),
    )
}

fn changed(diff: &str) -> Action {
    if diff.is_empty() {
        Action::Unchanged
    } else {
        Action::Update
    }
}

/// Every live object of `env` this tool wrote: found by its managed-by and environment labels,
/// kept when its managedFields name this tool's field manager (the controllers' Endpoints and
/// EndpointSlices carry copies of the labels, never this manager).
pub async fn owned(cluster: &Cluster, env: &Environment) -> Result<Vec<(ObjectRef, Value)>> {
    let selector = manifests::labels::ownership_selector(env);
    let namespaces: BTreeSet<&str> = [
        env.ensemble.namespace.as_str(),
        env.monitoring.namespace.as_str(),
    ]
    .into();
    let mut out = Vec::new();
    for ns in namespaces {
        for kind in Kind::ALL {
            let Some(items) = cluster.list(kind, ns, &selector).await? else {
                continue;
            };
            for item in items {
                if !fields::written_by(&item, FIELD_MANAGER) {
                    continue;
                }
                let name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                out.push((
                    ObjectRef {
                        kind,
                        namespace: ns.to_string(),
                        name,
                    },
                    item,
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
