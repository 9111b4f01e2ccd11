//! The deploy lock: a Lease (coordination.k8s.io/v1) in the ensemble's namespace, so that two
//! commands that change an environment (`deploy`, `apply`, `push`) never run at once, wherever
//! they run from, and a drift check never reads a half-finished deploy as drift.
//!
//! The Lease is short ([`LEASE_SECONDS`]) and renewed in the background every
//! [`RENEW_EVERY`], so a holder that died frees it within a minute. Every renewal, the release and
//! a takeover carry the `resourceVersion` they last saw as a precondition: they never overwrite or
//! delete a successor's Lease. A holder that finds its Lease gone or taken stops before its next
//! write ([`Guard::check`]).
//!
//! Two things a real cluster does that this lock is built for:
//! - A write that times out at the API server (504) may still commit
//!   (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/finisher/finisher.go`), and the retry
//!   then meets its own write (409). Each run marks its Lease with a token of its own
//!   ([`TOKEN_ANNOTATION`]); after a 409 the Lease is read again, and a Lease with this run's holder
//!   and token is this run's write, not someone else's.
//! - Another machine's clock is never compared with ours. A Lease is expired only when this process
//!   has watched it stay unchanged for its `leaseDurationSeconds` of our monotonic clock, as
//!   client-go's leader election judges it (`tools/leaderelection/leaderelection.go`,
//!   `observedTime`). The holder's `renewTime` can only make us more careful: a Lease that looks
//!   live by the timestamps is refused at once; one that looks expired is watched first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use manifests::Environment;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::output;
use crate::signals::Interrupt;

/// How long a Lease lives without renewal.
pub const LEASE_SECONDS: i32 = 60;
/// How often the holder renews it: well inside its duration, so that two renewals may fail in a
/// row without losing it.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);
/// The annotation on the Lease that tells this run's writes from any other's.
pub const TOKEN_ANNOTATION: &str = "zk-observers.dev/lock-token";

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

/// Who holds a lock, and until when by its holder's clock.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Holder {
    pub holder: String,
    pub acquired: String,
    /// `renewTime + leaseDurationSeconds`, written by the holder's clock.
    pub expires: String,
}

impl Holder {
    fn of(lease: &Lease) -> Holder {
        let spec = lease.spec.clone().unwrap_or_default();
        Holder {
            holder: spec.holder_identity.unwrap_or_else(|| "unknown".into()),
            acquired: spec
                .acquire_time
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            expires: expiry(lease).to_string(),
        }
    }
}

/// `renewTime + leaseDurationSeconds` by the holder's clock.
fn expiry(lease: &Lease) -> Timestamp {
    let spec = lease.spec.clone().unwrap_or_default();
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    renewed + SignedDuration::from_secs(i64::from(duration_seconds(lease)))
}

fn duration_seconds(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .unwrap_or(LEASE_SECONDS)
        .max(1)
}

fn token_of(lease: &Lease) -> Option<&str> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(TOKEN_ANNOTATION)
        .map(String::as_str)
}

/// Who this run is, for people (`alice@laptop pid 42`), and its token, for the Lease.
#[derive(Debug, Clone)]
struct Me {
    holder: String,
    token: String,
}

impl Me {
    fn new() -> Me {
        Me {
            holder: format!(
                "{} pid {} commit {}",
                crate::provenance::operator(),
                std::process::id(),
                crate::provenance::commit()
            ),
            token: random_token(),
        }
    }

    /// Whether `lease` was written by this run.
    fn wrote(&self, lease: &Lease) -> bool {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(&self.holder)
            && token_of(lease) == Some(&self.token)
    }
}

/// 128 random bits as hex, from the kernel.
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: the clock and the process still tell runs apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lease(
    env: &Environment,
    me: &Me,
    acquired: MicroTime,
    resource_version: Option<String>,
    timing: Timing,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(env)),
            namespace: Some(env.ensemble.namespace.clone()),
            labels: Some(manifests::labels::recommended(env, "deploy-lock")),
            annotations: Some([(TOKEN_ANNOTATION.to_string(), me.token.clone())].into()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.holder.clone()),
            lease_duration_seconds: Some(timing.lease_seconds),
            acquire_time: Some(acquired),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }),
    }
}

/// What watching another holder's Lease showed.
enum Seen {
    /// Its holder keeps it: renewed while watched, or live by its own timestamps.
    Held(Holder),
    /// Unchanged for its whole duration while watched (this Lease, as last read).
    Expired(Box<Lease>),
    /// Deleted while watched.
    Gone,
}

/// Whether `lease`'s holder still keeps it, judged as client-go judges it: by what this process
/// sees change, on its own monotonic clock. A Lease whose timestamps say it is live is held; one
/// whose timestamps say it expired is watched for its duration (with progress): renewed meanwhile,
/// it is held; unchanged, it expired. `interrupt` ends the watch (as held).
async fn watch(
    api: &Api<Lease>,
    cluster: &Cluster,
    lease: Lease,
    interrupt: Option<&Interrupt>,
) -> Result<Seen> {
    if expiry(&lease) > Timestamp::now() {
        return Ok(Seen::Held(Holder::of(&lease)));
    }
    let name = lease.metadata.name.clone().unwrap_or_default();
    let seen_rv = lease.metadata.resource_version.clone();
    let h = Holder::of(&lease);
    let duration = Duration::from_secs(duration_seconds(&lease).unsigned_abs().into());
    let started = Instant::now();
    let mut reported: Option<Instant> = None;
    loop {
        if reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            output::progress(&format!(
                "the deploy lock is held by {}, not renewed since {} by its clock; watching it for {} \
                 before taking it over ({} elapsed; clocks of other machines are not trusted; \
                 --break-lock takes it at once)",
                h.holder,
                h.expires,
                output::duration(duration),
                output::duration(Duration::from_secs(started.elapsed().as_secs()))
            ));
            reported = Some(Instant::now());
        }
        let step = (duration / 8).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let left = duration.saturating_sub(started.elapsed());
        let pause = tokio::time::sleep(step.min(left));
        match interrupt {
            Some(i) => {
                tokio::select! {
                    _ = pause => {}
                    _ = i.wait() => return Ok(Seen::Held(h)),
                }
            }
            None => pause.await,
        }
        let now = api
            .get_opt(&name)
            .await
            .map_err(|e| cluster.error("reading the deploy lock", e))?;
        match now {
            None => return Ok(Seen::Gone),
            Some(l) if l.metadata.resource_version != seen_rv => {
                return Ok(Seen::Held(Holder::of(&l)))
            }
            Some(l) if started.elapsed() >= duration => return Ok(Seen::Expired(Box::new(l))),
            Some(_) => {}
        }
    }
}

/// The lock's holder, if a deploy holds it now. A Lease that looks expired by its holder's clock
/// is watched for its duration first (see [`watch`]).
pub async fn current(cluster: &Cluster, env: &Environment) -> Result<Option<Holder>> {
    let api = cluster.typed::<Lease>(&env.ensemble.namespace);
    let got = api
        .get_opt(&lease_name(env))
        .await
        .map_err(|e| cluster.error("reading the deploy lock", e))?;
    let Some(lease) = got else {
        return Ok(None);
    };
    Ok(match watch(&api, cluster, lease, None).await? {
        Seen::Held(h) => Some(h),
        Seen::Expired(_) | Seen::Gone => None,
    })
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
    me: Me,
    state: Arc<Mutex<State>>,
    renewer: tokio::task::JoinHandle<()>,
    /// The Lease, through the renewals' client (short retries).
    api: Api<Lease>,
}

/// Takes the lock of `env`. With `break_lock`, a Lease another holder has (an operator knows it is
/// dead) is taken over at once, with a warning that names it; without it, a Lease whose holder
/// stopped renewing is taken over once it was watched unchanged for its duration. A signal
/// during that watch refuses.
pub async fn acquire(
    cluster: &Cluster,
    env: &Environment,
    break_lock: bool,
    interrupt: Option<&Interrupt>,
) -> Result<DeployLock> {
    acquire_with(cluster, env, break_lock, interrupt, Timing::STANDARD).await
}

fn refused(env: &Environment, h: &Holder) -> anyhow::Error {
    crate::output::hinted(
        format!(
            "another deploy of {} is in progress: {} holds the lock since {} (Lease {}/{}, expires {} by its \
             holder's clock unless renewed)",
            env.name,
            h.holder,
            h.acquired,
            env.ensemble.namespace,
            lease_name(env),
            h.expires
        ),
        "wait for it; if its holder is dead, wait until the Lease expires or pass --break-lock",
    )
}

/// [`acquire`] with a Lease of `timing`.
pub async fn acquire_with(
    cluster: &Cluster,
    env: &Environment,
    break_lock: bool,
    interrupt: Option<&Interrupt>,
    timing: Timing,
) -> Result<DeployLock> {
    let api = cluster.typed::<Lease>(&env.ensemble.namespace);
    let name = lease_name(env);
    let me = Me::new();
    let now = MicroTime(Timestamp::now());
    let mut existing = api
        .get_opt(&name)
        .await
        .map_err(|e| cluster.error("reading the deploy lock", e))?;
    if let (Some(l), false) = (&existing, break_lock) {
        existing = match watch(&api, cluster, l.clone(), interrupt).await? {
            Seen::Held(h) => return Err(refused(env, &h)),
            Seen::Expired(l) => {
                tracing::warn!(holder = %Holder::of(&l).holder, "taking over an expired deploy lock");
                Some(*l)
            }
            Seen::Gone => None,
        };
    }
    let taken = match existing {
        None => {
            api.create(&PostParams::default(), &lease(env, &me, now, None, timing))
                .await
        }
        Some(l) => {
            if break_lock {
                let h = Holder::of(&l);
                output::warning(&format!(
                    "--break-lock: taking the deploy lock from {} (held since {}, expires {} by its holder's clock)",
                    h.holder, h.acquired, h.expires
                ));
            }
            // The precondition: only the Lease just read is replaced, never a newer one.
            api.replace(
                &name,
                &PostParams::default(),
                &lease(env, &me, now, l.metadata.resource_version.clone(), timing),
            )
            .await
        }
    };
    let lease = match taken {
        Ok(l) => l,
        // The write may have committed before its answer was lost (and retried): read again.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            match api
                .get_opt(&name)
                .await
                .map_err(|e| cluster.error("reading the deploy lock", e))?
            {
                Some(l) if me.wrote(&l) => l,
                Some(l) => bail!(
                    "another deploy of {} took the lock at the same moment ({} holds it); nothing was changed",
                    env.name,
                    Holder::of(&l).holder
                ),
                None => bail!(
                    "the deploy lock of {} changed hands at the same moment; nothing was changed; try again",
                    env.name
                ),
            }
        }
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
        me.clone(),
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
        me,
        state,
        renewer,
        api: lease_api,
    })
}

/// Renews the Lease every `timing.renew_every` with the last seen resourceVersion as precondition.
/// A 409 or 404 is read again: this run's own write (a renewal that committed before its answer
/// was lost) carries on; anyone else's means the lock was taken or broken. A refusal (401, 403)
/// loses the lock at once; other failures are retried until the Lease would have expired.
async fn renew(
    cluster: Cluster,
    env: Environment,
    me: Me,
    acquired: MicroTime,
    state: Arc<Mutex<State>>,
    timing: Timing,
) {
    let api: Api<Lease> = cluster.typed(&env.ensemble.namespace);
    let name = lease_name(&env);
    let lease_for = Duration::from_secs(timing.lease_seconds.unsigned_abs().into());
    let mut last_renewed = Instant::now();
    let lose = |why: String| {
        state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(why);
    };
    loop {
        tokio::time::sleep(timing.renew_every).await;
        let rv = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resource_version
            .clone();
        let body = lease(&env, &me, acquired.clone(), Some(rv), timing);
        let failure = match api.replace(&name, &PostParams::default(), &body).await {
            Ok(l) => {
                last_renewed = Instant::now();
                state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resource_version = l.metadata.resource_version.unwrap_or_default();
                continue;
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                match api.get_opt(&name).await {
                    Ok(Some(l)) if me.wrote(&l) => {
                        tracing::info!("a renewal of the deploy lock committed before its answer was lost; carrying on");
                        last_renewed = Instant::now();
                        state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .resource_version = l.metadata.resource_version.unwrap_or_default();
                        continue;
                    }
                    Ok(Some(l)) => {
                        return lose(format!(
                            "the deploy lock was taken over: the Lease {}/{name} is now held by {}",
                            env.ensemble.namespace,
                            Holder::of(&l).holder
                        ))
                    }
                    Ok(None) => {
                        return lose(format!(
                            "the deploy lock was taken over: the Lease {}/{name} was deleted",
                            env.ensemble.namespace
                        ))
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
                return lose(format!(
                    "the API server refused to renew the deploy lock (update leases \"{name}\" in {}: {} {}: {}); \
                     the identity needs update on leases (rbac.yaml's deploy Role)",
                    env.ensemble.namespace,
                    s.code,
                    s.reason,
                    s.message
                ));
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %failure, "could not renew the deploy lock; trying again");
        if last_renewed.elapsed() >= lease_for {
            return lose(format!(
                "the deploy lock expired: it could not be renewed for {}s ({failure})",
                timing.lease_seconds
            ));
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

    /// Whether the Lease is still this run's, read now (before a write). A read that fails stops
    /// the write too: nothing is written without knowing the lock is held.
    pub async fn verify(&self) -> Option<String> {
        if let Some(why) = self.lost() {
            return Some(why);
        }
        let why = match self.api.get_opt(&self.name).await {
            Ok(None) => "the deploy lock's Lease was deleted".to_string(),
            Ok(Some(l)) if self.me.wrote(&l) => return None,
            Ok(Some(l)) => format!(
                "the deploy lock was taken over: the Lease {}/{} is now held by {}",
                self.namespace,
                self.name,
                Holder::of(&l).holder
            ),
            // Not kept as lost: the renewals may still hold it; this write does not go ahead.
            Err(e) => {
                return Some(format!(
                    "the deploy lock could not be read before the next write ({e}), so it is not known to be held"
                ))
            }
        };
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(why.clone());
        Some(why)
    }

    /// Stops renewing and deletes the Lease, unless someone else holds it by now (the
    /// resourceVersion precondition: a successor's Lease is never deleted; a 409 is read again,
    /// since a renewal of ours may have committed unseen).
    pub async fn release(self, cluster: &Cluster) {
        self.renewer.abort();
        if self.lost().is_some() {
            return;
        }
        let api = cluster.typed::<Lease>(&self.namespace);
        let mut rv = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resource_version
            .clone();
        for _ in 0..2 {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(rv.clone()),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&self.name, &params).await {
                Ok(_) => return,
                Err(kube::Error::Api(s)) if s.code == 404 => return,
                Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&self.name).await {
                    Ok(Some(l)) if self.me.wrote(&l) => {
                        rv = l.metadata.resource_version.unwrap_or_default();
                    }
                    _ => {
                        tracing::warn!(holder = %self.me.holder, "the deploy lock was taken over meanwhile; left to its new holder");
                        return;
                    }
                },
                Err(e) => {
                    tracing::warn!(holder = %self.me.holder, error = %e, "could not release the deploy lock; it expires by itself within {LEASE_SECONDS}s");
                    return;
                }
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

// Not an `std::error::Error`: a stop is not a failure, and `?` cannot turn one into an `anyhow::Error`
// by accident (`Halt` keeps the two apart).

/// How a guarded step ends when it does not finish: stopped by its guard (a signal, the lock
/// lost: the command ends cleanly, reporting what it did) or failed (an error).
#[derive(Debug)]
pub enum Halt {
    Stopped(Stop),
    Failed(anyhow::Error),
}

impl From<Stop> for Halt {
    fn from(s: Stop) -> Halt {
        Halt::Stopped(s)
    }
}

impl From<anyhow::Error> for Halt {
    fn from(e: anyhow::Error) -> Halt {
        Halt::Failed(e)
    }
}

/// The result of a guarded step.
pub type Guarded<T> = std::result::Result<T, Halt>;

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
mod tests;
