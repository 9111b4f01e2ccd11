//! The cluster plan: what applying the desired objects would change, found by server-side apply
//! dry runs (so the server's defaulting and field ownership decide, as with `kubectl diff`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use hosts::{Observer, ServerAddress};
use manifests::{Environment, Object};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{Applied, Cluster, Conflict, Kind, ObjectRef};
use crate::lb;
use crate::rollout::Fleet;
use crate::ssh::SshArgs;
use crate::yamldiff::{normalize, to_yaml, unified};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// Carries this tool's labels for the environment but is no longer desired.
    Prune,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub object: String,
    pub action: Action,
    /// Fields another manager owns with a different value: applying needs --force-conflicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// Unified YAML diff, live -> desired (uncoloured); empty when unchanged.
    pub diff: String,
    #[serde(skip)]
    pub reference: ObjectRef,
    #[serde(skip)]
    pub desired: Option<Object>,
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

    pub fn conflicts(&self) -> impl Iterator<Item = (&Change, &Conflict)> {
        self.changes
            .iter()
            .flat_map(|c| c.conflicts.iter().map(move |k| (c, k)))
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

/// Plans `objects` against the live cluster, and lists owned objects of `env` that are no longer
/// desired. Requests: one GET and one dry-run PATCH per object (two PATCHes on a conflict), and one
/// label-filtered LIST per kind and namespace, whatever else the namespaces hold.
pub async fn plan(cluster: &Cluster, env: &Environment, objects: &[Object]) -> Result<Plan> {
    plan_with(cluster, env, objects, true).await
}

/// Like [`plan`]; without `prune`, owned objects that are not desired are not looked for.
pub async fn plan_with(
    cluster: &Cluster,
    env: &Environment,
    objects: &[Object],
    prune: bool,
) -> Result<Plan> {
    let mut changes = Vec::new();
    for object in objects {
        changes.push(plan_one(cluster, object).await?);
    }
    let desired: BTreeSet<ObjectRef> = objects.iter().map(ObjectRef::of).collect();
    let owned = if prune {
        owned(cluster, env).await?
    } else {
        vec![]
    };
    for r in owned {
        if !desired.contains(&r.0) {
            let old = to_yaml(&normalize(&r.1));
            changes.push(Change {
                object: r.0.to_string(),
                action: Action::Prune,
                conflicts: vec![],
                diff: unified(&old, "", &format!("{} (live)", r.0), "/dev/null (pruned)"),
                reference: r.0,
                desired: None,
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

async fn plan_one(cluster: &Cluster, object: &Object) -> Result<Change> {
    let r = ObjectRef::of(object);
    let live = cluster.get(&r).await?;
    // The dry run also proves the object would be accepted (namespace exists, schema, RBAC).
    let (dry, conflicts) = match cluster.apply(object, true, false).await? {
        Applied::Ok(v) => (v, vec![]),
        Applied::Conflicts(c) => match cluster.apply(object, true, true).await? {
            Applied::Ok(v) => (v, c),
            Applied::Conflicts(_) => unreachable!("a forced apply does not conflict"),
        },
    };
    let (action, diff) = match &live {
        None => {
            let new = to_yaml(&normalize(&serde_json::to_value(object)?));
            (
                Action::Create,
                unified("", &new, "/dev/null", &format!("{r} (desired)")),
            )
        }
        Some(live) => {
            let old = to_yaml(&normalize(live));
            let new = to_yaml(&normalize(&dry));
            let d = unified(
                &old,
                &new,
                &format!("{r} (live)"),
                &format!("{r} (desired)"),
            );
            (
                if d.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Update
                },
                d,
            )
        }
    };
    Ok(Change {
        object: r.to_string(),
        action,
        conflicts,
        diff,
        reference: r,
        desired: Some(object.clone()),
    })
}

/// Every live object carrying this tool's managed-by label and `env`'s environment label.
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

/// What deploy and drift read before deciding anything: the plan of every desired object, the
/// load balancers' live addresses (an error while they are pending), and every observer host,
/// connected, read and probed. The cluster and the hosts are read at the same time: the SSH
/// handshakes do not wait for the API server.
pub struct Reads<'e> {
    pub plan: Plan,
    pub live: Result<BTreeMap<u32, ServerAddress>>,
    pub fleet: Fleet<'e>,
}

pub async fn read_cluster_and_hosts<'e>(
    cluster: &Cluster,
    env: &'e Environment,
    ssh: &SshArgs,
) -> Result<Reads<'e>> {
    let objects = manifests::desired_objects(env);
    let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
    let cluster_reads = async {
        let plan = plan(cluster, env, &objects).await?;
        tracing::info!("cluster planned");
        anyhow::Ok((plan, lb::current_addresses(cluster, env).await))
    };
    let (cluster_reads, fleet) = tokio::join!(cluster_reads, Fleet::connect(env, &observers, ssh));
    match cluster_reads {
        Ok((plan, live)) => Ok(Reads { plan, live, fleet }),
        Err(e) => {
            fleet.close().await;
            Err(e)
        }
    }
}
