//! Carrying out a cluster plan's changes: server-side apply of what is to be created or updated,
//! deletion (waited for) of what is to be pruned. One implementation for `apply` and `deploy`.
//! Before every write the guard is asked: a signal or a lost deploy lock stops it there.

use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::cluster::plan::{Action, Change};
use crate::cluster::{Applied, Cluster};
use crate::lock::{Guard, Guarded, Halt, Stop};
use crate::output;
use crate::output::report::{ObjectOutcome, ObjectResult};

pub struct Execution<'a> {
    /// Take fields another manager owns.
    pub force: bool,
    /// Delete what is to be pruned (else it is kept and reported).
    pub prune: bool,
    /// How long to wait for a deleted object (held by a finalizer) to go.
    pub timeout: Duration,
    /// Print each outcome as it happens (text output).
    pub progress: bool,
    pub guard: Guard<'a>,
    /// When this run began (RFC 3339): recorded with the commit on every object it writes.
    pub deployed_at: &'a str,
}

/// `object` carrying where this write comes from: the commit and the time (the plan compares
/// without them, so they change nothing by themselves).
fn with_provenance(object: &manifests::Object, at: &str) -> manifests::Object {
    let mut o = object.clone();
    let ann = o.metadata_mut().annotations.get_or_insert_default();
    ann.insert(
        crate::provenance::COMMIT_ANNOTATION.to_string(),
        crate::provenance::commit(),
    );
    ann.insert(
        crate::provenance::DEPLOYED_AT_ANNOTATION.to_string(),
        at.to_string(),
    );
    o
}

/// What was carried out, and why it stopped early if it did.
pub struct Executed {
    pub results: Vec<ObjectResult>,
    pub stopped: Option<Stop>,
}

/// Carries out one planned change, unless the guard says no (`Halt::Stopped`).
async fn execute(cluster: &Cluster, change: &Change, how: &Execution<'_>) -> Guarded<ObjectResult> {
    let writes = match change.action {
        Action::Create | Action::Update => true,
        Action::Prune => how.prune,
        Action::Unchanged => false,
    };
    if writes {
        how.guard.check().await?;
    }
    let result = match (change.action, &change.desired) {
        (Action::Create | Action::Update, Some(object)) => {
            if change.deleting.is_some() {
                // Applying now would change an object about to disappear: create it anew.
                cluster.wait_gone(&change.reference, how.timeout).await?;
            }
            match cluster
                .apply(&with_provenance(object, how.deployed_at), false, how.force)
                .await?
            {
                Applied::Ok(_) => {}
                Applied::Conflicts(c) => {
                    return Err(anyhow!(
                        "{} changed while applying: {} is now owned by \"{}\"; run again (or pass --force-conflicts)",
                        change.object,
                        c[0].field,
                        c[0].manager
                    )
                    .into())
                }
            }
            if change.action == Action::Create {
                ObjectOutcome::Created
            } else {
                ObjectOutcome::Configured
            }
        }
        (Action::Prune, _) if how.prune => {
            cluster
                .delete_and_wait(&change.reference, how.timeout)
                .await?;
            ObjectOutcome::Pruned
        }
        (Action::Prune, _) => ObjectOutcome::Kept,
        _ => ObjectOutcome::Unchanged,
    };
    if how.progress && result != ObjectOutcome::Unchanged {
        output::outcome(&change.object, &result);
    }
    Ok(ObjectResult {
        object: change.object.clone(),
        result,
    })
}

/// Carries out `changes` in order, stopping (not failing) where the guard says so.
pub async fn execute_all<'c>(
    cluster: &Cluster,
    changes: impl IntoIterator<Item = &'c Change>,
    how: &Execution<'_>,
) -> Result<Executed> {
    let mut results = Vec::new();
    for c in changes {
        match execute(cluster, c, how).await {
            Ok(r) => results.push(r),
            Err(Halt::Stopped(stop)) => {
                return Ok(Executed {
                    results,
                    stopped: Some(stop),
                })
            }
            Err(Halt::Failed(e)) => return Err(e),
        }
    }
    Ok(Executed {
        results,
        stopped: None,
    })
}
