//! Waiting for the per-pod load balancers' addresses, and comparing them with the recorded ones.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hosts::{HostFiles, Observer, ServerAddress};
use manifests::{AddressSource, Environment};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{AddressChoice, ClusterArgs};
use crate::cluster::{Cluster, Kind, ObjectRef};
use crate::lock::{Guard, Guarded};
use crate::output;

/// Where host files take the participants' load-balancer addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// `ensemble.recorded_addresses` (`push`/`status --addresses recorded`, `render`).
    Recorded,
    /// The live Services; an error while one has none (`--addresses live`, a deploy's rollout).
    Live,
    /// The live Services, or the recorded addresses while a load balancer is pending (plans:
    /// `deploy`'s first look, `diff --hosts`, `drift`).
    LiveOrRecorded,
}

/// The one place that decides: the address source for host files under `policy`, given what the
/// cluster reports (`live`: an error while a load balancer is pending), and a note that says
/// which it is.
pub fn source(
    policy: Addresses,
    live: &Result<BTreeMap<u32, ServerAddress>>,
) -> Result<(AddressSource, &'static str)> {
    const LIVE: &str = "rendered from the live load-balancer addresses";
    match (policy, live) {
        (Addresses::Recorded, _) => Ok((
            AddressSource::Recorded,
            "rendered from the recorded addresses",
        )),
        (_, Ok(a)) => Ok((AddressSource::Live(a.clone()), LIVE)),
        (Addresses::Live, Err(e)) => bail!("{e:#}"),
        (Addresses::LiveOrRecorded, Err(_)) => Ok((
            AddressSource::Recorded,
            "rendered from the recorded addresses until the load balancers have theirs",
        )),
    }
}

/// Host files for every observer under `--addresses` (live ones read from the cluster).
pub async fn host_files<'e>(
    env: &'e Environment,
    choice: AddressChoice,
    cluster: &ClusterArgs,
) -> Result<Vec<(&'e Observer, HostFiles)>> {
    let (policy, live) = match choice {
        AddressChoice::Recorded => (Addresses::Recorded, Err(anyhow::anyhow!("not read"))),
        AddressChoice::Live => {
            let c = Cluster::connect(env, cluster, crate::cluster::API_BUDGET).await?;
            (Addresses::Live, current_addresses(&c, env).await)
        }
    };
    let (source, _) = self::source(policy, &live)?;
    Ok(manifests::render_host_files(env, &source)?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub service: String,
    pub ordinal: u32,
    pub live: String,
    pub recorded: Option<String>,
    pub matches: bool,
}

/// The first ingress address (ip, else hostname) in a Service's status.
pub fn ingress_address(service: &Value) -> Option<ServerAddress> {
    let ingress = service.pointer("/status/loadBalancer/ingress/0")?;
    if let Some(ip) = ingress.get("ip").and_then(Value::as_str) {
        return ip.parse().ok().map(ServerAddress::Ip);
    }
    ingress
        .get("hostname")
        .and_then(Value::as_str)
        .map(|h| ServerAddress::Dns(h.to_string()))
}

/// Polls every per-pod Service until each has a load-balancer address, or `timeout` passes.
/// Prints progress to stderr. Returns the addresses by pod ordinal, or why the guard stopped the
/// wait (`Halt::Stopped`).
pub async fn wait_for_addresses(
    cluster: &Cluster,
    env: &Environment,
    timeout: Duration,
    guard: &Guard<'_>,
) -> Guarded<BTreeMap<u32, ServerAddress>> {
    poll_addresses(cluster, env, timeout, Duration::from_millis(250), guard).await
}

async fn poll_addresses(
    cluster: &Cluster,
    env: &Environment,
    timeout: Duration,
    poll: Duration,
    guard: &Guard<'_>,
) -> Guarded<BTreeMap<u32, ServerAddress>> {
    let started = Instant::now();
    let participants = env.ensemble.participants();
    let mut found: BTreeMap<u32, ServerAddress> = BTreeMap::new();
    let mut last_report: Option<(usize, Instant)> = None;
    loop {
        for p in &participants {
            if found.contains_key(&p.ordinal) {
                continue;
            }
            let r = ObjectRef {
                kind: Kind::Service,
                namespace: env.ensemble.namespace.clone(),
                name: p.service_name.clone(),
            };
            match cluster.get(&r).await? {
                Some(svc) => {
                    if let Some(a) = ingress_address(&svc) {
                        found.insert(p.ordinal, a);
                    }
                }
                None => {
                    return Err(crate::output::hinted(
                        format!("Service {r} does not exist"),
                        format!("apply it first: `cargo xtask apply --env {}`", env.name),
                    )
                    .into())
                }
            }
        }
        let pending: Vec<&str> = participants
            .iter()
            .filter(|p| !found.contains_key(&p.ordinal))
            .map(|p| p.service_name.as_str())
            .collect();
        let elapsed = started.elapsed();
        let due = match last_report {
            None => true,
            Some((n, at)) => n != found.len() || at.elapsed() >= Duration::from_secs(5),
        };
        if due || pending.is_empty() {
            output::progress(&format!(
                "load-balancer addresses: {}/{} ready{} ({:.1}s elapsed)",
                found.len(),
                participants.len(),
                if pending.is_empty() {
                    String::new()
                } else {
                    format!(", waiting for {}", pending.join(", "))
                },
                elapsed.as_secs_f64()
            ));
            last_report = Some((found.len(), Instant::now()));
        }
        if pending.is_empty() {
            return Ok(found);
        }
        guard.interrupted()?;
        if elapsed >= timeout {
            return Err(crate::output::hinted(
                format!(
                    "timed out after {} waiting for the load-balancer address of Service(s) {} in namespace {}: \
                     the cloud controller has not provisioned them (the Services themselves are applied)",
                    output::duration(timeout),
                    pending.join(", "),
                    env.ensemble.namespace,
                ),
                format!(
                    "look at `kubectl -n {} describe service {}` for its events",
                    env.ensemble.namespace, pending[0]
                ),
            )
            .into());
        }
        tokio::time::sleep(
            poll.min(timeout.saturating_sub(elapsed))
                .max(Duration::from_millis(10)),
        )
        .await;
    }
}

/// The per-pod Service of each participant.
fn service_refs(env: &Environment) -> Vec<(u32, ObjectRef)> {
    env.ensemble
        .participants()
        .into_iter()
        .map(|p| {
            (
                p.ordinal,
                ObjectRef {
                    kind: Kind::Service,
                    namespace: env.ensemble.namespace.clone(),
                    name: p.service_name,
                },
            )
        })
        .collect()
}

/// The per-pod Services' current addresses, without waiting; a Service without one is an error.
pub async fn current_addresses(
    cluster: &Cluster,
    env: &Environment,
) -> Result<BTreeMap<u32, ServerAddress>> {
    let mut live = BTreeMap::new();
    for (_, r) in service_refs(env) {
        if let Some(svc) = cluster.get(&r).await? {
            live.insert(r, svc);
        }
    }
    addresses_from(env, |r| live.get(r).cloned())
}

/// The per-pod Services' addresses in live Service objects (`live` looks one up); a Service
/// without an address, absent, or being deleted (its load balancer is going away) is an error
/// naming it.
pub fn addresses_from(
    env: &Environment,
    live: impl Fn(&ObjectRef) -> Option<Value>,
) -> Result<BTreeMap<u32, ServerAddress>> {
    let mut found = BTreeMap::new();
    let mut pending = Vec::new();
    for (ordinal, r) in service_refs(env) {
        let address = live(&r)
            .filter(|svc| crate::cluster::deleting(svc).is_none())
            .as_ref()
            .and_then(ingress_address);
        match address {
            Some(a) => {
                found.insert(ordinal, a);
            }
            None => pending.push(r.name),
        }
    }
    if !pending.is_empty() {
        return Err(crate::output::hinted(
            format!(
                "Service(s) {} in namespace {} have no load-balancer address yet",
                pending.join(", "),
                env.ensemble.namespace,
            ),
            format!(
                "run `cargo xtask apply --env {}`, which waits for them",
                env.name
            ),
        ));
    }
    Ok(found)
}

/// Compares live addresses with those recorded in the environment.
pub fn compare(env: &Environment, live: &BTreeMap<u32, ServerAddress>) -> Vec<Address> {
    env.ensemble
        .participants()
        .iter()
        .filter_map(|p| {
            let l = live.get(&p.ordinal)?;
            let rec = env.ensemble.recorded_addresses.get(&p.ordinal);
            Some(Address {
                service: p.service_name.clone(),
                ordinal: p.ordinal,
                live: l.to_string(),
                recorded: rec.map(ToString::to_string),
                matches: rec == Some(l),
            })
        })
        .collect()
}

/// The error (or, when accepted, warning) for addresses that differ from the recorded ones.
pub fn mismatch_message(env: &Environment, addresses: &[Address]) -> Option<String> {
    let wrong: Vec<&Address> = addresses.iter().filter(|a| !a.matches).collect();
    if wrong.is_empty() {
        return None;
    }
    let lines: Vec<String> = wrong
        .iter()
        .map(|a| {
            format!(
                "{}: recorded {}, live {}",
                a.service,
                a.recorded.as_deref().unwrap_or("nothing"),
                a.live
            )
        })
        .collect();
    let code: Vec<String> = addresses
        .iter()
        .map(|a| format!("({}, {})", a.ordinal, rust_address(&a.live)))
        .collect();
    Some(format!(
        "the load balancers' addresses differ from those recorded for environment {}: {}. Host files rendered from the \
         recorded addresses would point the observers at the wrong servers (they would never sync). Record the live \
         ones in manifests/src/environments/{}.rs: recorded_addresses: BTreeMap::from([{}])",
        env.name,
        lines.join("; "),
        env.name,
        code.join(", ")
    ))
}

fn rust_address(a: &str) -> String {
    match a.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!(
                "ServerAddress::Ip(v4({}, {}, {}, {}))",
                o[0], o[1], o[2], o[3]
            )
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let segments: Vec<String> = v6.segments().iter().map(|x| format!("{x:#x}")).collect();
            format!(
                "ServerAddress::Ip(std::net::IpAddr::V6(std::net::Ipv6Addr::new({})))",
                segments.join(", ")
            )
        }
        Err(_) => format!("ServerAddress::Dns(\"{a}\".into())"),
    }
}
