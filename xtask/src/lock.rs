//! The deploy lock: a Lease (coordination.k8s.io/v1) in the ensemble's namespace, so that two
//! commands that change an environment (`deploy`, `apply`, `push`) never run at once, wherever
//! they run from, and a drift check never reads a half-finished deploy as drift.
//!
//! The Lease is short ([`LEASE_SECONDS`]) and renewed in the background every
//! [`RENEW_EVERY`], so a holder that died frees it within a minute. Every renewal, the release and
//! a takeover carry the `resourceVersion` they last saw as a precondition: they never overwrite or
//! delete a successor's Lease. A holder that finds its Lease gone or taken stops before its next
//! write ([`Guard::check`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use manifests::Environment;

use crate::cluster::Cluster;
use crate::output;
use crate::signals::Interrupt;

/// How long a Lease lives without renewal.
pub const LEASE_SECONDS: i32 = 60;
/// How often the holder renews it: well inside its duration, so that two renewals may fail in a
/// row without losing it.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// A Lease's duration and how often it is renewed: [`LEASE_SECONDS`] and [`RENEW_EVERY`] (tests
/// shorten both to watch renewals happen).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease_seconds: i32,
    pub renew_every: Duration,
}

impl Timing {
    pub const STANDARD: Timing = Timing {
        lease_seconds: LEASE_SECONDS,
        renew_every: RENEW_EVERY,
    };
}

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

fn lease(
    env: &Environment,
    holder: &str,
    acquired: MicroTime,
    resource_version: Option<String>,
    timing: Timing,
) -> Lease {
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
            lease_duration_seconds: Some(timing.lease_seconds),
            acquire_time: Some(acquired),
            renew_time: Some(MicroTime(Timestamp::now())),
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

/// What the renewals know.
struct State {
    resource_version: String,
    /// Why the lock was lost, once it was.
    lost: Option<String>,
}

/// A held deploy lock, renewed in the background until released.
pub struct DeployLock {
    name: String,
    namespace: String,
    holder: String,
    state: Arc<Mutex<State>>,
    renewer: tokio::task::JoinHandle<()>,
    /// The Lease, through the renewals' client (short retries).
    api: Api<Lease>,
}

/// Takes the lock of `env`. With `break_lock`, a Lease another holder has (an operator knows it is
/// dead) is taken over, with a warning that names it.
pub async fn acquire(cluster: &Cluster, env: &Environment, break_lock: bool) -> Result<DeployLock> {
    acquire_with(cluster, env, break_lock, Timing::STANDARD).await
}

/// [`acquire`] with a Lease of `timing`.
pub async fn acquire_with(
    cluster: &Cluster,
    env: &Environment,
    break_lock: bool,
    timing: Timing,
) -> Result<DeployLock> {
    let api = cluster.typed::<Lease>(&env.ensemble.namespace);
    let name = lease_name(env);
    let holder = me();
    let now = MicroTime(Timestamp::now());
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| cluster.error("reading the deploy lock", e))?;
    let taken = match existing {
        None => {
            api.create(
                &PostParams::default(),
                &lease(env, &holder, now, None, timing),
            )
            .await
        }
        Some(l) => {
            let h = holder_of(&l);
            if !h.expired && !break_lock {
                bail!(
                    "another deploy of {} is in progress: {} holds the lock since {} (Lease {}/{name}, expires {}). \
                     Wait for it; if its holder is dead, wait until the Lease expires or pass --break-lock",
                    env.name,
                    h.holder,
                    h.acquired,
                    env.ensemble.namespace,
                    h.expires
                );
            }
            if h.expired {
                tracing::warn!(holder = %h.holder, "taking over an expired deploy lock");
            } else {
                output::warning(&format!(
                    "--break-lock: taking the deploy lock from {} (held since {}, would expire {})",
                    h.holder, h.acquired, h.expires
                ));
            }
            // The precondition: only the Lease just read is replaced, never a newer one.
            api.replace(
                &name,
                &PostParams::default(),
                &lease(
                    env,
                    &holder,
                    now,
                    l.metadata.resource_version.clone(),
                    timing,
                ),
            )
            .await
        }
    };
    let lease = match taken {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 409 => bail!(
            "another deploy of {} took the lock at the same moment; nothing was changed",
            env.name
        ),
        Err(e) => return Err(cluster.error("taking the deploy lock", e)),
    };
    let state = Arc::new(Mutex::new(State {
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        lost: None,
    }));
    // Renewals get their own client: each may retry only well inside the Lease's duration.
    let renewals = cluster.with_budget(timing.renew_every)?;
    let lease_api: Api<Lease> = renewals.typed(&env.ensemble.namespace);
    let renewer = tokio::spawn(renew(
        renewals,
        env.clone(),
        holder.clone(),
        lease
            .spec
            .and_then(|s| s.acquire_time)
            .unwrap_or(MicroTime(Timestamp::now())),
        state.clone(),
        timing,
    ));
    Ok(DeployLock {
        name,
        namespace: env.ensemble.namespace.clone(),
        holder,
        state,
        renewer,
        api: lease_api,
    })
}

/// Renews the Lease every `timing.renew_every` with the last seen resourceVersion as precondition; on a
/// conflict or a missing Lease the lock is lost (someone broke or took it).
async fn renew(
    cluster: Cluster,
    env: Environment,
    holder: String,
    acquired: MicroTime,
    state: Arc<Mutex<State>>,
    timing: Timing,
) {
    let api: Api<Lease> = cluster.typed(&env.ensemble.namespace);
    let name = lease_name(&env);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(timing.renew_every).await;
        let rv = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resource_version
            .clone();
        let body = lease(&env, &holder, acquired.clone(), Some(rv), timing);
        match api.replace(&name, &PostParams::default(), &body).await {
            Ok(l) => {
                last_renewed = tokio::time::Instant::now();
                state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resource_version = l.metadata.resource_version.unwrap_or_default();
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                let now = api.get_opt(&name).await.ok().flatten();
                let who = now.map_or_else(
                    || "nobody (the Lease was deleted)".to_string(),
                    |l| holder_of(&l).holder,
                );
                state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(format!(
                    "the deploy lock was taken over: the Lease {}/{name} is now held by {who}",
                    env.ensemble.namespace
                ));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the deploy lock; trying again");
                let lease_seconds = timing.lease_seconds;
                if last_renewed.elapsed()
                    >= Duration::from_secs(lease_seconds.unsigned_abs().into())
                {
                    state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(format!(
                        "the deploy lock expired: it could not be renewed for {lease_seconds}s ({e})"
                    ));
                    return;
                }
            }
        }
    }
}

impl DeployLock {
    /// Why the lock is no longer held, if it is not, as the renewals found.
    pub fn lost(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost
            .clone()
    }

    /// Whether the Lease is still this holder's, read now (before a write). A read that fails
    /// leaves the answer to the renewals.
    pub async fn verify(&self) -> Option<String> {
        if let Some(why) = self.lost() {
            return Some(why);
        }
        let why = match self.api.get_opt(&self.name).await {
            Ok(None) => "the deploy lock's Lease was deleted".to_string(),
            Ok(Some(l)) => {
                let h = holder_of(&l);
                if h.holder == self.holder {
                    return None;
                }
                format!(
                    "the deploy lock was taken over: the Lease {}/{} is now held by {}",
                    self.namespace, self.name, h.holder
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the deploy lock before a write");
                return None;
            }
        };
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(why.clone());
        Some(why)
    }

    /// Stops renewing and deletes the Lease, unless someone else holds it by now (the
    /// resourceVersion precondition: a successor's Lease is never deleted).
    pub async fn release(self, cluster: &Cluster) {
        self.renewer.abort();
        if self.lost().is_some() {
            return;
        }
        let rv = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resource_version
            .clone();
        let api = cluster.typed::<Lease>(&self.namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(rv),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                tracing::warn!(holder = %self.holder, "the deploy lock was taken over meanwhile; left to its new holder");
            }
            Err(e) => {
                tracing::warn!(holder = %self.holder, error = %e, "could not release the deploy lock; it expires by itself within {LEASE_SECONDS}s");
            }
        }
    }
}

/// What every write of a command that changes things consults first: the lock it holds (if any)
/// and the interrupt signals.
#[derive(Clone, Copy)]
pub struct Guard<'a> {
    pub lock: Option<&'a DeployLock>,
    pub interrupt: Option<&'a Interrupt>,
}

/// Why a command stopped before its next write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT or SIGTERM.
    Interrupted(&'static str),
    /// The deploy lock was lost.
    LockLost(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Interrupted(signal) => write!(f, "interrupted by {signal}"),
            Stop::LockLost(why) => write!(f, "{why}; stopped before the next write"),
        }
    }
}

impl std::error::Error for Stop {}

impl Guard<'_> {
    pub const NONE: Guard<'static> = Guard {
        lock: None,
        interrupt: None,
    };

    /// Whether the next write may go ahead: no signal received, the lock still ours.
    pub async fn check(&self) -> Result<(), Stop> {
        self.interrupted()?;
        if let Some(lock) = self.lock {
            if let Some(why) = lock.verify().await {
                return Err(Stop::LockLost(why));
            }
        }
        Ok(())
    }

    /// Whether a signal was received.
    pub fn interrupted(&self) -> Result<(), Stop> {
        match self.interrupt.and_then(Interrupt::received) {
            Some(signal) => Err(Stop::Interrupted(signal)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ClusterArgs;

    const NS: &str = "zookeeper";

    /// An API test server with the sandbox's namespace, and the sandbox environment.
    fn cluster() -> (
        sandbox::ApiServer,
        tempfile::TempDir,
        ClusterArgs,
        Environment,
    ) {
        let env = manifests::environments::sandbox::environment();
        let api = sandbox::ApiServer::start(sandbox::Config {
            namespaces: vec![NS.into()],
            ..sandbox::Config::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context)).unwrap();
        let args = ClusterArgs {
            kubeconfig: Some(kubeconfig),
            context: None,
            allow_other_context: false,
        };
        (api, dir, args, env)
    }

    const QUICK: Timing = Timing {
        lease_seconds: 2,
        renew_every: Duration::from_millis(200),
    };

    /// Polls `ready` every 50 ms for at most 10 s.
    async fn until(what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn the_lease_outlives_its_duration_while_renewed_and_is_released() {
        let (api, _dir, args, env) = cluster();
        let name = lease_name(&env);
        crate::cluster::block_on(async {
            let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
            let lock = acquire_with(&cluster, &env, false, QUICK).await?;
            let acquired = Timestamp::now();
            // Renewed in the background: after twice its duration it is still held.
            until("the Lease renewed past twice its duration", || {
                let l = api
                    .get("coordination.k8s.io/v1", "leases", NS, &name)
                    .unwrap();
                let renewed: Timestamp = l["spec"]["renewTime"].as_str().unwrap().parse().unwrap();
                renewed > acquired + SignedDuration::from_secs(4)
            })
            .await;
            assert!(current(&cluster, &env).await?.is_some(), "not expired");
            assert_eq!(lock.verify().await, None, "still ours");
            // A second holder is refused while it is renewed.
            let second = acquire_with(&cluster, &env, false, QUICK).await;
            let err = format!("{:#}", second.err().expect("refused"));
            assert!(
                err.contains("another deploy of sandbox is in progress"),
                "{err}"
            );
            lock.release(&cluster).await;
            assert!(api
                .get("coordination.k8s.io/v1", "leases", NS, &name)
                .is_none());
            anyhow::Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_taken_over_lease_is_noticed_and_never_deleted_by_the_old_holder() {
        let (api, _dir, args, env) = cluster();
        let name = lease_name(&env);
        crate::cluster::block_on(async {
            let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
            let lock = acquire_with(&cluster, &env, false, QUICK).await?;
            // Someone breaks the lock (`--break-lock` elsewhere).
            let leases = cluster.typed::<Lease>(NS);
            let mut l = leases.get(&name).await?;
            l.spec.as_mut().unwrap().holder_identity = Some("bob@elsewhere pid 7".into());
            leases.replace(&name, &PostParams::default(), &l).await?;
            // The next renewal meets the resourceVersion precondition and gives up the lock.
            until("the takeover noticed by the renewals", || {
                lock.lost().is_some()
            })
            .await;
            let why = lock.lost().unwrap();
            assert!(why.contains("now held by bob@elsewhere pid 7"), "{why}");
            let guard = Guard {
                lock: Some(&lock),
                interrupt: None,
            };
            assert!(matches!(guard.check().await, Err(Stop::LockLost(_))));
            lock.release(&cluster).await;
            let left = api
                .get("coordination.k8s.io/v1", "leases", NS, &name)
                .unwrap();
            assert_eq!(left["spec"]["holderIdentity"], "bob@elsewhere pid 7");
            anyhow::Ok(())
        })
        .unwrap();
    }
}
