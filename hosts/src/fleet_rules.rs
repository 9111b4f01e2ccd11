//! Validation rules that concern only the observer side. Cross-cutting rules (ids against
//! participant ids, addresses against source ranges, ...) live in `manifests::validate`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ids::ServerId;
use crate::image::{ImageRef, ZkVersion};
use crate::metrics::{health_words, Metrics};
use crate::net::{is_dns1123_label, is_host_address};
use crate::observer::ObserverFleet;
use crate::problem::Problems;
use crate::ssh_login::{HostKey, PublicKey};
use crate::zoocfg::{AdminServer, FourLetterWords};

/// Checks the fleet. Field paths are relative to the fleet (`observers[0].myid`); the caller
/// prefixes them.
pub fn validate_fleet(fleet: &ObserverFleet, ensemble_version: ZkVersion) -> Problems {
    let mut p = Problems::new();
    observers(fleet, &mut p);
    retired(fleet, &mut p);
    // Every host the generated SSH configuration names: observers in service and retired ones.
    let every: Vec<_> = fleet
        .observers
        .iter()
        .chain(fleet.retired.iter().map(|r| &r.observer))
        .cloned()
        .collect();
    jump_hosts("jump", &fleet.jump, &every, &mut p);
    for (i, o) in fleet.observers.iter().enumerate() {
        if let Some(jump) = &o.jump {
            jump_hosts(&format!("observers[{i}].jump"), jump, &every, &mut p);
        }
    }
    for (i, r) in fleet.retired.iter().enumerate() {
        if let Some(jump) = &r.observer.jump {
            jump_hosts(&format!("retired[{i}].observer.jump"), jump, &every, &mut p);
        }
    }
    if let Some(key) = &fleet.drift_key {
        if let Err(e) = PublicKey::parse(key) {
            p.error(
                "drift_key",
                e,
                "paste the public half of the drift job's key pair (the .pub file's first two fields)",
            );
        }
    }
    layout(fleet, &mut p);
    zookeeper(fleet, &mut p);
    images(fleet, ensemble_version, &mut p);
    runtime(fleet, &mut p);
    p
}

/// The container's heap, keepalive timers and log rotation.
fn runtime(fleet: &ObserverFleet, p: &mut Problems) {
    let r = &fleet.runtime;
    if r.heap_mib < 128 {
        p.error(
            "runtime.heap_mib",
            format!("{} MiB cannot hold ZooKeeper with a data tree", r.heap_mib),
            "give the observer what the participants have (ZooKeeper's default is 1000)",
        );
    }
    let k = r.keepalive;
    // Linux accepts tcp_keepalive_time and _intvl up to 32767 s (MAX_TCP_KEEPIDLE,
    // MAX_TCP_KEEPINTVL) and at most 127 probes (MAX_TCP_KEEPCNT).
    for (field, value, max) in [
        ("runtime.keepalive.idle_secs", k.idle_secs, 32767),
        ("runtime.keepalive.interval_secs", k.interval_secs, 32767),
        ("runtime.keepalive.probes", k.probes, 127),
    ] {
        if value == 0 || value > max {
            p.error(
                field,
                format!("{value} is outside the kernel's range 1..={max}"),
                "the recommended timers are a first probe after 120 s, then every 30 s, 4 probes",
            );
        }
    }
    if r.log_max_size_mib == 0 || r.log_max_files == 0 {
        p.error(
            "runtime.log_max_size_mib",
            "docker's logs would not be kept (or not rotated)",
            "keep a few files of a few MiB each, e.g. 5 x 10 MiB",
        );
    }
}

fn observers(fleet: &ObserverFleet, p: &mut Problems) {
    match fleet.observers.len() {
        0 if !fleet.retired.is_empty() => p.warning(
            "observers",
            "every observer is retired: clients outside the cluster lose their last server; deploy refuses to retire the last one without --force-retire",
            "keep at least one observer in `observers`, or pass --force-retire to deploy if that is the intent",
        ),
        0 => p.error(
            "observers",
            "no observers are listed",
            "list at least two observer hosts, so that clients keep a server when one host is down",
        ),
        1 => p.warning(
            "observers",
            "only one observer is listed: it is a single point of failure for every client outside the cluster",
            "add a second observer host",
        ),
        _ => {}
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut scrapes: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut ids: BTreeMap<ServerId, usize> = BTreeMap::new();
    for (i, o) in fleet.observers.iter().enumerate() {
        let f = |field: &str| format!("observers[{i}].{field}");
        if !is_dns1123_label(&o.name) {
            p.error(
                f("name"),
                format!("`{}` is not a DNS-1123 label", o.name),
                "use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            );
        }
        if let Some(j) = names.insert(&o.name, i) {
            p.error(
                f("name"),
                format!("`{}` is also the name of observers[{j}]", o.name),
                "give each observer its own name",
            );
        }
        if !is_host_address(o.address) {
            p.error(
                f("address"),
                format!("{} is not a unicast host address", o.address),
                "use the observer host's own address, as the load balancers and Prometheus see it",
            );
        }
        if let Some(j) = addresses.insert(o.address, i) {
            p.error(
                f("address"),
                format!("{} is also the address of observers[{j}]", o.address),
                "each observer needs a host of its own; two observers on one host fail together",
            );
        }
        for (k, e) in o.egress.iter().enumerate() {
            if !is_host_address(*e) {
                p.error(
                    f(&format!("egress[{k}]")),
                    format!("{e} is not a unicast host address"),
                    "use the source address the load balancers see this observer's connections come from (its NAT gateway's address), or leave egress empty when it is not NAT'd",
                );
            }
            if o.egress[..k].contains(e) {
                p.error(
                    f(&format!("egress[{k}]")),
                    format!("{e} is listed twice"),
                    "list each egress address once",
                );
            }
        }
        if let Some(j) = scrapes.insert(o.scrape_address(), i) {
            p.error(
                f("scrape"),
                format!(
                    "{} is also where Prometheus scrapes observers[{j}]",
                    o.scrape_address()
                ),
                "give each observer's exporter an address Prometheus reaches it at alone",
            );
        }
        if let Some(s) = o.scrape {
            if !is_host_address(s) {
                p.error(
                    f("scrape"),
                    format!("{s} is not a unicast host address"),
                    "use the address Prometheus reaches this observer's exporter at, or None for its own address",
                );
            }
        }
        if !o.myid.in_range() {
            p.error(
                f("myid"),
                format!(
                    "{} is outside ZooKeeper's id range {}..={}",
                    o.myid,
                    ServerId::MIN,
                    ServerId::MAX
                ),
                "pick an id from 1 to 255 that is greater than every participant id",
            );
        }
        if let Some(j) = ids.insert(o.myid, i) {
            p.error(
                f("myid"),
                format!("{} is also the myid of observers[{j}]", o.myid),
                "give each observer its own myid",
            );
        }
        let user = &o.ssh.user;
        if !valid_login(user) {
            p.error(
                f("ssh.user"),
                format!("`{user}` is not a valid login name"),
                "use the account this tool logs in as, e.g. `deploy`",
            );
        }
        match &o.host_key {
            HostKey::Pinned(text) => {
                if let Err(e) = PublicKey::parse(text) {
                    p.error(
                        f("host_key"),
                        e,
                        "paste the host's public key line, e.g. from `ssh-keyscan -t ed25519 HOST` checked against the host's console",
                    );
                }
            }
            HostKey::NotPinned => p.warning(
                f("host_key"),
                "the host key is not pinned: push, status and drift will refuse to connect to this host",
                "record HostKey::Pinned(\"ssh-ed25519 AAAA...\") from /etc/ssh/ssh_host_ed25519_key.pub on the host",
            ),
        }
        if let Some(e) = o.deploy_dir.problem() {
            p.error(
                f("deploy_dir"),
                e,
                "use a directory of its own such as /opt/zk-observer or /var/lib/zk-observer",
            );
        }
    }
}

/// Retired observers: reachable (a pinned key, a valid login and deploy directory), and none an
/// active observer's name or host: an observer is in service or retired, never both.
fn retired(fleet: &ObserverFleet, p: &mut Problems) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in fleet.retired.iter().enumerate() {
        let o = &r.observer;
        let f = |field: &str| format!("retired[{i}].observer.{field}");
        if let Some(a) = fleet.observers.iter().find(|a| a.name == o.name) {
            p.error(
                f("name"),
                format!("`{}` is also an observer in service ({})", o.name, a.address),
                "an observer is in `observers` or in `retired`, not both: remove one of the two entries",
            );
        }
        if let Some(a) = fleet.observers.iter().find(|a| a.address == o.address) {
            p.error(
                f("address"),
                format!(
                    "{} is also the host of observer {}, which is in service",
                    o.address, a.name
                ),
                "retiring it would stop that observer: a host serves one observer",
            );
        }
        if let Some(j) = names.insert(&o.name, i) {
            p.error(
                f("name"),
                format!("`{}` is also the name of retired[{j}]", o.name),
                "list each retired observer once",
            );
        }
        // The same machine under another address: retiring it would stop the observer that
        // moved there (one compose project per host) and could wipe its data.
        if let HostKey::Pinned(key) = &o.host_key {
            if let Some(a) = fleet
                .observers
                .iter()
                .find(|a| matches!(&a.host_key, HostKey::Pinned(k) if k.trim() == key.trim()))
            {
                p.error(
                    f("host_key"),
                    format!(
                        "the same host key as observer {} in service: the same machine, which \
                         retiring would stop",
                        a.name
                    ),
                    "an observer that moved to another address on its machine is not retired: change \
                     its address in `observers` and remove the retired entry",
                );
            }
        }
        if !is_dns1123_label(&o.name) {
            p.error(
                f("name"),
                format!("`{}` is not a DNS-1123 label", o.name),
                "use the name the observer was deployed under (lowercase letters, digits and '-')",
            );
        }
        if !valid_login(&o.ssh.user) {
            p.error(
                f("ssh.user"),
                format!("`{}` is not a valid login name", o.ssh.user),
                "use the account this tool logs in as, e.g. `deploy`",
            );
        }
        match &o.host_key {
            HostKey::Pinned(text) => {
                if let Err(e) = PublicKey::parse(text) {
                    p.error(f("host_key"), e, "paste the host's public key line, checked on its console");
                }
            }
            HostKey::NotPinned => p.warning(
                f("host_key"),
                "the host key is not pinned: deploy cannot retire this observer (it refuses to connect)",
                "record HostKey::Pinned(\"ssh-ed25519 AAAA...\") from /etc/ssh/ssh_host_ed25519_key.pub on the host",
            ),
        }
        if let Some(e) = o.deploy_dir.problem() {
            p.error(
                f("deploy_dir"),
                e,
                "use the directory the observer was deployed to",
            );
        }
    }
}

/// A login name ssh accepts as `-l` / `User` (and nothing an option could be read from).
fn valid_login(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A jump-host chain: names unique DNS-1123 labels (they name `Host` blocks of the generated
/// SSH configuration and the keys pinned for them), none an observer's name or address, addresses
/// an IP or a DNS name, logins valid, host keys pinned.
fn jump_hosts(
    field: &str,
    chain: &[crate::ssh_login::JumpHost],
    observers: &[crate::observer::Observer],
    p: &mut Problems,
) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, j) in chain.iter().enumerate() {
        let f = |x: &str| format!("{field}[{i}].{x}");
        if let Some(o) = observers.iter().find(|o| o.name == j.name) {
            p.error(
                f("name"),
                format!("`{}` is also the name of observer {}", j.name, o.name),
                "give the jump host a name of its own: the generated SSH configuration pins each host's key under its name",
            );
        }
        if let Some(o) = observers
            .iter()
            .find(|o| j.address.parse::<IpAddr>().ok() == Some(o.address))
        {
            p.error(
                f("address"),
                format!("{} is also the address of observer {}", j.address, o.name),
                "a jump host is a bastion in front of the observers, not one of them: use the bastion's own address",
            );
        }
        if !is_dns1123_label(&j.name) {
            p.error(
                f("name"),
                format!("`{}` is not a DNS-1123 label", j.name),
                "name the bastion with lowercase letters, digits and '-', e.g. `bastion-1`",
            );
        }
        if let Some(k) = names.insert(&j.name, i) {
            p.error(
                f("name"),
                format!("`{}` is also the name of {field}[{k}]", j.name),
                "give each jump host of a chain its own name",
            );
        }
        let is_ip = j.address.parse::<IpAddr>().is_ok_and(is_host_address);
        if !is_ip && !crate::net::is_dns1123_subdomain(&j.address) {
            p.error(
                f("address"),
                format!("`{}` is neither a host address nor a DNS name", j.address),
                "use the bastion's address or DNS name as this machine reaches it",
            );
        }
        if !valid_login(&j.ssh.user) {
            p.error(
                f("ssh.user"),
                format!("`{}` is not a valid login name", j.ssh.user),
                "use the account the bastion lets this tool through as, e.g. `jump`",
            );
        }
        match &j.host_key {
            HostKey::Pinned(text) => {
                if let Err(e) = PublicKey::parse(text) {
                    p.error(
                        f("host_key"),
                        e,
                        "paste the bastion's public host key line, checked on its console",
                    );
                }
            }
            HostKey::NotPinned => p.warning(
                f("host_key"),
                "the jump host's key is not pinned: push, status and drift will refuse to connect through it",
                "record HostKey::Pinned(\"ssh-ed25519 AAAA...\") from the bastion's /etc/ssh/ssh_host_ed25519_key.pub",
            ),
        }
    }
}

fn layout(fleet: &ObserverFleet, p: &mut Problems) {
    let l = &fleet.layout;
    for (field, path) in [
        ("layout.config_file", l.config_file),
        ("layout.data_dir", l.data_dir),
        ("layout.data_log_dir", l.data_log_dir),
    ] {
        // These are written into zoo.cfg and the compose file: a newline would add a line.
        if let Some(e) = crate::net::path_problem(path) {
            p.error(
                field,
                e,
                "use the image's own directory as its documentation gives it, e.g. /data",
            );
        } else if path == "/" {
            p.error(
                field,
                "`/` is the container's root",
                "use a directory, e.g. /data",
            );
        }
    }
}

fn zookeeper(fleet: &ObserverFleet, p: &mut Problems) {
    let z = &fleet.zookeeper;
    let f = |field: &str| format!("zookeeper.{field}");
    if z.tick_time_ms == 0 {
        p.error(
            f("tick_time_ms"),
            "tickTime is 0",
            "use ZooKeeper's usual 2000 ms",
        );
    }
    if z.init_limit == 0 {
        p.error(
            f("init_limit"),
            "initLimit is 0: the observer could never finish its initial sync",
            "set it so that init_limit x tick_time covers a snapshot transfer across the link (the runbook: 5 x 2000 ms)",
        );
    }
    if z.sync_limit == 0 {
        p.error(
            f("sync_limit"),
            "syncLimit is 0: the leader would drop the observer at once",
            "set it to at least 2 (the runbook: 10)",
        );
    }
    if z.min_session_timeout_ms > z.max_session_timeout_ms {
        p.error(
            f("min_session_timeout_ms"),
            format!(
                "minSessionTimeout {} ms is greater than maxSessionTimeout {} ms: ZooKeeper refuses to start",
                z.min_session_timeout_ms, z.max_session_timeout_ms
            ),
            "make min_session_timeout_ms at most max_session_timeout_ms (defaults: 2 and 20 tick times)",
        );
    }
    if z.autopurge_purge_interval_hours == 0 {
        p.error(
            f("autopurge_purge_interval_hours"),
            "autopurge.purgeInterval is 0, which turns purging off: snapshots and logs fill the observer's disk",
            "purge every few hours, e.g. 24",
        );
    }
    if z.autopurge_snap_retain_count < 3 {
        p.error(
            f("autopurge_snap_retain_count"),
            format!(
                "{} is below ZooKeeper's minimum of 3 (it would silently use 3)",
                z.autopurge_snap_retain_count
            ),
            "set it to 3 or more",
        );
    }
    let needed = FourLetterWords::of(
        health_words()
            .iter()
            .chain(fleet.metrics.required_words().iter()),
    );
    for w in z.four_letter_words.iter() {
        if w.is_expensive() {
            p.error(
                f("four_letter_words"),
                format!("`{w}` walks every watch and is a known denial of service on an unauthenticated client port"),
                format!("remove `{w}`"),
            );
        } else if !needed.contains(w) {
            p.warning(
                f("four_letter_words"),
                format!(
                    "`{w}` is enabled although neither the health gate nor the metrics need it"
                ),
                format!("remove `{w}` unless someone relies on it"),
            );
        }
    }
    if let AdminServer::Enabled { address, .. } = z.admin_server {
        if !address.is_loopback() {
            p.error(
                f("admin_server"),
                format!("the AdminServer would listen on {address}; it has no authentication"),
                "use AdminServer::Disabled, or bind it to 127.0.0.1",
            );
        }
    }
    // Port collisions (with the quorum and election ports too) are checked by the environment.
}

fn images(fleet: &ObserverFleet, ensemble_version: ZkVersion, p: &mut Problems) {
    pinned(&fleet.image, "image", p);
    match fleet.image.zookeeper_version() {
        Some(v) if !v.same_minor(ensemble_version) => p.error(
            "image",
            format!(
                "`{}` is ZooKeeper {v}, the ensemble runs {ensemble_version}: observers should run the ensemble's minor version",
                fleet.image
            ),
            format!(
                "pin a {}.{}.x tag (3.8.6 and 3.9.5 carry 2026 CVE fixes)",
                ensemble_version.major, ensemble_version.minor
            ),
        ),
        Some(_) => {}
        None if fleet.image.digest.is_none() => p.error(
            "image",
            format!("cannot read a ZooKeeper version from the tag of `{}`", fleet.image),
            "tag the image with its ZooKeeper version, e.g. zookeeper:3.8.6",
        ),
        None => {}
    }
    if let Metrics::Exporter { image, .. } = &fleet.metrics {
        pinned(image, "metrics.image", p);
    }
}

fn pinned(image: &ImageRef, field: &str, p: &mut Problems) {
    if let Some(e) = image.pinning_problem() {
        p.error(
            field,
            e,
            "pin a version tag such as `zookeeper:3.8.6`, or a digest `@sha256:...`",
        );
    }
}
