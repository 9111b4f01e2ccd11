//! The deploy lock: a Lease (coordination.k8s.io/v1) in the ensemble's namespace, so that two
//! deploys never run at once, wherever they run from, and a drift check never reads a
//! half-finished deploy as drift. A lock whose holder died expires after [`LEASE_SECONDS`].

use anyhow::{bail, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, PostParams};
use manifests::Environment;

use crate::cluster::Cluster;

/// How long a lock lives without renewal.
pub const LEASE_SECONDS: i32 = 1800;

pub fn lease_name(env: &Environment) -> String {
    manifests::rbac::lease_name(env)
}

/// Who holds a lock, and until when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Holder {
    pub holder: String,
    pub acquired: String,
    pub expires: String,
    pub expired: bool,
}

fn holder_of(lease: &Lease) -> Holder {
    let spec = lease.spec.clone().unwrap_or_default();
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let expires = renewed
        + SignedDuration::from_secs(i64::from(
            spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS),
        ));
    Holder {
        holder: spec.holder_identity.unwrap_or_else(|| "unknown".into()),
        acquired: spec
            .acquire_time
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        expires: expires.to_string(),
        expired: expires < Timestamp::now(),
    }
}

fn me() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host} pid {}", std::process::id())
}

pub struct DeployLock {
    name: String,
    namespace: String,
    holder: String,
}

fn lease(env: &Environment, holder: &str, resource_version: Option<String>) -> Lease {
    let now = MicroTime(Timestamp::now());
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(env)),
            namespace: Some(env.ensemble.namespace.clone()),
            labels: Some(manifests::labels::recommended(env, "deploy-lock")),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    }
}

/// The lock's holder, if a deploy holds it now.
pub async fn current(cluster: &Cluster, env: &Environment) -> Result<Option<Holder>> {
    let api = cluster.typed::<Lease>(&env.ensemble.namespace);
    let got = api
        .get_opt(&lease_name(env))
        .await
        .map_err(|e| cluster.error("reading the deploy lock", e))?;
    Ok(got.map(|l| holder_of(&l)).filter(|h| !h.expired))
}

pub async fn acquire(cluster: &Cluster, env: &Environment) -> Result<DeployLock> {
    let api = cluster.typed::<Lease>(&env.ensemble.namespace);
    let name = lease_name(env);
    let holder = me();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| cluster.error("reading the deploy lock", e))?;
    let taken = match existing {
        None => {
            api.create(&PostParams::default(), &lease(env, &holder, None))
                .await
        }
        Some(l) => {
            let h = holder_of(&l);
            if !h.expired {
                bail!(
                    "another deploy of {} is in progress: {} holds the lock since {} (Lease {}/{name}, expires {}). \
                     Wait for it; if it died, delete the Lease or wait until it expires",
                    env.name,
                    h.holder,
                    h.acquired,
                    env.ensemble.namespace,
                    h.expires
                );
            }
            tracing::warn!(holder = %h.holder, "taking over an expired deploy lock");
            api.replace(
                &name,
                &PostParams::default(),
                &lease(env, &holder, l.metadata.resource_version.clone()),
            )
            .await
        }
    };
    match taken {
        Ok(_) => Ok(DeployLock {
            name,
            namespace: env.ensemble.namespace.clone(),
            holder,
        }),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            bail!(
                "another deploy of {} took the lock at the same moment; nothing was changed",
                env.name
            )
        }
        Err(e) => Err(cluster.error("taking the deploy lock", e)),
    }
}

impl DeployLock {
    pub async fn release(self, cluster: &Cluster) {
        let api = cluster.typed::<Lease>(&self.namespace);
        if let Err(e) = api.delete(&self.name, &DeleteParams::default()).await {
            tracing::warn!(holder = %self.holder, error = %e, "could not release the deploy lock; it expires by itself");
        }
    }
}
