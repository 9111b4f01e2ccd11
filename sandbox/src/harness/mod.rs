//! The local sandbox: the sandbox environment's network, a real ZooKeeper ensemble behind its
//! load-balancer addresses, and its observer hosts, on this machine. Used by the tests and by
//! `cargo xtask demo`; one implementation.
//!
//! Topology (all in 198.18.0.0/15, a range reserved for benchmarking and never routed):
//!
//! ```text
//! root namespace ── bridge zkobs0 198.18.255.254/16 (tests and xtask run here)
//!   ├─ netns zkobs-cluster   198.18.0.11-13  three ZooKeeper participants (Debian's zookeeper),
//!   │                                         standing in for the per-pod load balancers; they do
//!   │                                         not list the observers and cannot open connections
//!   │                                         to them (iptables rejects their SYNs): one-way;
//!   │                                         the cloud's firewall (iptables) admits to 2888/3888
//!   │                                         only the Services' loadBalancerSourceRanges
//!   │                        198.18.0.53      dnsmasq: the cloud's DNS for load-balancer names
//!   ├─ netns zkobs-sandbox-bastion 198.18.1.2 sshd only: the jump host, the one source the
//!   │                                         observers' sshd accepts
//!   ├─ netns zkobs-<observer> 198.18.1.<myid> OpenSSH sshd on :22 and a dockerd of its own (own
//!   │                                         socket, data root and bridge 198.19.<myid>.0/24), so
//!   │                                         the host's containers really sit on its address
//!   └─ ...
//! ```
//!
//! Only one sandbox runs on a machine at a time: [`Sandbox::start`] takes a lock that it holds
//! until the sandbox is dropped.

pub mod bastion;
pub mod bench;
pub mod dns;
mod ensemble;
pub mod image_build;
pub mod keystores;
pub mod netns;
mod observers;
mod process;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use manifests::Environment;

pub use ensemble::{artifact_keys, four_letter_word, Ensemble, Impostor};
pub use observers::ObserverHost;

/// Where the sandbox keeps state that survives runs: each host's Docker data root (with its
/// images) and deploy directory.
pub const STATE_DIR: &str = "/var/lib/zk-observers-sandbox";
/// Sockets, pid files, configs and logs of one run.
pub const RUN_DIR: &str = "/run/zk-observers-sandbox";
/// Built images, so that the ~1.5 min debootstrap happens once per machine.
pub const CACHE_DIR: &str = "/var/cache/zk-observers";

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Start the three ZooKeeper participants.
    pub ensemble: bool,
    /// Their quorum speaks TLS only (a CA made at start in `<run dir>/tls`, [`Sandbox::tls`]).
    pub quorum_tls: bool,
    /// Start the observer hosts (sshd + dockerd, images loaded).
    pub hosts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ensemble: true,
            quorum_tls: true,
            hosts: true,
        }
    }
}

/// A running sandbox. Dropping it stops everything and removes the namespaces; Docker data roots
/// (and so the loaded images) are kept for the next run.
pub struct Sandbox {
    pub env: Environment,
    pub dns: Option<dns::Dns>,
    pub ensemble: Option<Ensemble>,
    pub hosts: Vec<ObserverHost>,
    /// The jump hosts of the environment's fleet (the only way to the observers' SSH).
    pub bastions: Vec<bastion::Bastion>,
    /// The private key the hosts authorize, with the permissions ssh requires.
    pub identity: PathBuf,
    /// With [`Options::quorum_tls`]: the CA the participants' certificates come from, and its
    /// trust store.
    pub tls: Option<(keystores::Ca, keystores::Store)>,
    _lock: File,
}

impl Sandbox {
    /// The sandbox of the `sandbox` environment, with its checked-in test host keys.
    pub fn start(options: Options) -> Result<Sandbox> {
        Self::start_with(
            manifests::environments::sandbox::environment(),
            &|name| observers::host_key(name).to_string(),
            options,
        )
    }

    /// A sandbox for any environment whose addresses lie in the sandbox range (the benchmarks
    /// generate ones with many observers); `host_key` gives each observer's private host key.
    pub fn start_with(
        env: Environment,
        host_key: &dyn Fn(&str) -> String,
        options: Options,
    ) -> Result<Sandbox> {
        if !is_root() {
            bail!("the sandbox creates network namespaces and starts dockerd and sshd: run it as root");
        }
        preflight()?;
        std::fs::create_dir_all(RUN_DIR).with_context(|| format!("creating {RUN_DIR}"))?;
        let lock = File::create(Path::new(RUN_DIR).join("lock"))
            .context("creating the sandbox lock file")?;
        lock.lock().context("waiting for the sandbox lock")?;
        cleanup(&env);
        let identity = Path::new(RUN_DIR).join("deploy_ed25519_key");
        std::fs::write(
            &identity,
            include_str!("../../../tests/sandbox/ssh/deploy_ed25519_key"),
        )?;
        set_mode(&identity, 0o600)?;

        // From here on, dropping `sandbox` (also on an early error) tears down what was made.
        let mut sandbox = Sandbox {
            env,
            dns: None,
            ensemble: None,
            hosts: vec![],
            bastions: vec![],
            identity,
            tls: None,
            _lock: lock,
        };
        netns::create(&sandbox.env)?;
        sandbox.dns = Some(dns::Dns::start(&sandbox.env)?);
        for j in &sandbox.env.fleet.jump {
            let b = bastion::Bastion::start(j, &sandbox.env)?;
            sandbox.bastions.push(b);
        }
        if options.ensemble {
            // The quorum TLS material, made whether or not the quorum starts with TLS (a test
            // moves a plaintext ensemble to TLS), where the sandbox environment reads it
            // (manifests::environments::sandbox::inventory::TLS_DIR), the participants' Secret "mounted" where
            // the environment's ensemble artifact says.
            let dir = Path::new(manifests::environments::sandbox::inventory::TLS_DIR);
            let e = &sandbox.env.ensemble;
            let servers: Vec<(String, String)> = sandbox
                .env
                .fleet
                .observers
                .iter()
                .map(|o| (o.name.clone(), o.address.to_string()))
                .chain(std::iter::once((
                    keystores::PARTICIPANTS.to_string(),
                    e.recorded_addresses[&0].to_string(),
                )))
                .collect();
            let (ca, trust) =
                keystores::material(&Path::new(CACHE_DIR).join("tls"), dir, &servers)?;
            keystores::mount_participant_stores(&sandbox.env, &ca, &trust)?;
            sandbox.tls = Some((ca, trust));
            sandbox.ensemble = Some(Ensemble::start_with(&sandbox.env, options.quorum_tls)?);
        }
        if options.hosts {
            for observer in &sandbox.env.fleet.observers {
                sandbox
                    .hosts
                    .push(ObserverHost::start(observer, &host_key(&observer.name))?);
            }
            image_build::ensure(&sandbox.hosts)?;
        }
        if let Some(e) = &sandbox.ensemble {
            e.wait_for_quorum(Duration::from_secs(60))?;
        }
        Ok(sandbox)
    }

    pub fn host(&self, name: &str) -> &ObserverHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no sandbox host {name}"))
    }

    /// The identity the deploy key of the hosts is authorised for.
    pub fn ssh_identity(&self) -> &Path {
        &self.identity
    }

    /// The drift job's private key (test-only, checked in): `deploy` restricts it on the
    /// observers to the read-only command, the bastion lets it forward to their SSH only.
    pub fn drift_identity(&self) -> Result<PathBuf> {
        let path = Path::new(RUN_DIR).join("drift_ed25519_key");
        std::fs::write(
            &path,
            include_str!("../../../tests/sandbox/ssh/drift_ed25519_key"),
        )?;
        set_mode(&path, 0o600)?;
        Ok(path)
    }

    /// A plain `ssh root@address` with that identity, batch mode and no host key checks (for tests
    /// and the benchmark's floor, not the tool: it pins host keys); the command comes after.
    pub fn ssh(&self, address: impl std::fmt::Display) -> std::process::Command {
        let options = [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ];
        let mut ssh = std::process::Command::new("ssh");
        ssh.arg("-i").arg(&self.identity).args(options);
        // Through the bastion, when the hosts are behind one (their sshd accepts no one else).
        if let Some(b) = self.bastions.last() {
            ssh.arg("-o").arg(format!(
                "ProxyCommand=ssh -i {} {} -W %h:%p root@{}",
                self.identity.display(),
                options.join(" "),
                b.address
            ));
        }
        ssh.arg(format!("root@{address}"));
        ssh
    }
}

/// The API test server's configuration for `env`, a cluster as real as the test server makes it:
/// its namespaces exist; the ensemble's pods exist (at the sandbox's ZooKeeper servers'
/// addresses) for the Endpoints and EndpointSlice controllers, which run, as does the mirroring
/// controller; the simulated cloud gives each per-pod Service the load-balancer address the
/// environment records (where the sandbox's ZooKeeper servers listen), `delay` after the Service
/// appears.
pub fn api_config(env: &Environment, delay: Duration) -> crate::Config {
    let mut namespaces = vec![
        env.ensemble.namespace.clone(),
        env.monitoring.namespace.clone(),
    ];
    namespaces.dedup();
    let participants = env.ensemble.participants();
    crate::Config {
        namespaces,
        load_balancer: crate::LoadBalancerMode::After(delay),
        lb_addresses: participants
            .iter()
            .filter_map(|p| {
                let address = env.ensemble.recorded_addresses.get(&p.ordinal)?;
                Some((
                    format!("{}/{}", env.ensemble.namespace, p.service_name),
                    address.to_string(),
                ))
            })
            .collect(),
        pods: participants
            .iter()
            .filter_map(|p| {
                let ip = env.ensemble.recorded_addresses.get(&p.ordinal)?.ip()?;
                Some(crate::apiserver::Pod {
                    namespace: env.ensemble.namespace.clone(),
                    name: p.pod_name.clone(),
                    labels: std::collections::BTreeMap::from([
                        (
                            manifests::objects::POD_NAME_LABEL.to_string(),
                            p.pod_name.clone(),
                        ),
                        (
                            "app.kubernetes.io/instance".to_string(),
                            env.ensemble.helm_release.clone(),
                        ),
                        (
                            "app.kubernetes.io/name".to_string(),
                            "zookeeper".to_string(),
                        ),
                    ]),
                    ip,
                    node: format!("sandbox-node-{}", p.ordinal),
                })
            })
            .collect(),
        firewall: Some(netns::cloud_firewall()),
        seed: ensemble_objects(env),
        ..crate::Config::default()
    }
}

/// The image the sandbox's ensemble runs (Debian's zookeeper package, 3.8.0), as the chart's
/// StatefulSet would name it.
pub const ENSEMBLE_IMAGE: &str = "zookeeper:3.8.0";

/// The ensemble's StatefulSet and pods as the chart made them, for the API test server: the
/// sandbox's real ZooKeeper servers, described as a cluster would describe them.
/// The ensemble's ZooKeeper container as the chart would set it: `image`, and the official
/// image's environment for the settings the sandbox ensemble really runs with (tickTime 2000,
/// initLimit 10, syncLimit 5: `ensemble.rs`), plus `extra` entries.
pub fn ensemble_container(image: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut env = vec![
        serde_json::json!({"name": "ZOO_TICK_TIME", "value": "2000"}),
        serde_json::json!({"name": "ZOO_INIT_LIMIT", "value": "10"}),
        serde_json::json!({"name": "ZOO_SYNC_LIMIT", "value": "5"}),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "value": v})),
    );
    serde_json::json!({"name": "zookeeper", "image": image, "env": env})
}

pub fn ensemble_objects(env: &Environment) -> Vec<serde_json::Value> {
    use serde_json::json;
    let e = &env.ensemble;
    let selector = json!({
        "app.kubernetes.io/instance": e.helm_release,
        "app.kubernetes.io/name": "zookeeper",
    });
    let container = json!([ensemble_container(ENSEMBLE_IMAGE, &[])]);
    let mut out = vec![json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": e.statefulset, "namespace": e.namespace, "labels": selector},
        "spec": {
            "replicas": e.replicas,
            "serviceName": format!("{}-headless", e.statefulset),
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector}, "spec": {"containers": container}},
        },
    })];
    for p in e.participants() {
        let mut labels = selector.clone();
        labels[manifests::objects::POD_NAME_LABEL] = json!(p.pod_name);
        let ip = e
            .recorded_addresses
            .get(&p.ordinal)
            .and_then(|a| a.ip())
            .map(|ip| ip.to_string());
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.pod_name, "namespace": e.namespace, "labels": labels},
            "spec": {"containers": container, "nodeName": format!("sandbox-node-{}", p.ordinal)},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }));
    }
    out
}

/// Like [`api_config`], with a cloud that gives load balancers DNS names only (as AWS does): each
/// per-pod Service gets [`lb_hostname`], which the sandbox's DNS server resolves to the address
/// the environment records.
pub fn api_config_hostnames(env: &Environment, delay: Duration) -> crate::Config {
    let mut config = api_config(env, delay);
    config.ingress = crate::Ingress::Hostname;
    for p in env.ensemble.participants() {
        let key = format!("{}/{}", env.ensemble.namespace, p.service_name);
        if let Some(address) = config.lb_addresses.get_mut(&key) {
            *address = lb_hostname(env, &p.service_name);
        }
    }
    config
}

/// The DNS name of a per-pod Service's load balancer in the sandbox's hostname mode (under
/// `.test`, reserved by RFC 2606: it resolves nowhere but in the sandbox).
pub fn lb_hostname(env: &Environment, service: &str) -> String {
    format!("{service}.{}.lb.sandbox.test", env.ensemble.namespace)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.stop();
        }
        for b in &mut self.bastions {
            b.stop();
        }
        if let Some(e) = &mut self.ensemble {
            e.stop();
        }
        if let Some(d) = &mut self.dns {
            d.stop();
        }
        cleanup(&self.env);
    }
}

/// Tears down whatever of a sandbox of `env` runs, without the [`Sandbox`] value: for a signal
/// handler that ends the process (the demo's Ctrl-C), and what every start does first.
pub fn teardown(env: &Environment) {
    cleanup(env);
}

/// Removes everything a previous (possibly killed) run left, of this environment or any other
/// sandbox: processes in the namespaces, the namespaces, the bridge, deploy directories.
fn cleanup(env: &Environment) {
    let mut namespaces = netns::namespaces(env);
    namespaces.extend(netns::leftover_namespaces());
    namespaces.sort();
    namespaces.dedup();
    for ns in &namespaces {
        process::kill_namespace(ns);
    }
    let mut names: Vec<String> = env.fleet.observers.iter().map(|o| o.name.clone()).collect();
    if let Ok(dirs) = std::fs::read_dir(STATE_DIR) {
        names.extend(
            dirs.flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned()),
        );
    }
    for name in names {
        observers::kill_containers(&name);
        let _ = std::fs::remove_dir_all(Path::new(STATE_DIR).join(&name).join("deploy"));
        let _ = std::fs::remove_dir_all(Path::new(RUN_DIR).join(&name));
    }
    for o in &env.fleet.observers {
        let _ = std::fs::remove_dir_all(&o.deploy_dir.0);
    }
    let _ = std::fs::remove_dir_all(Path::new(RUN_DIR).join("ensemble"));
    let _ = std::fs::remove_dir_all(Path::new(RUN_DIR).join("dns"));
    netns::delete(env, &namespaces);
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The programs the sandbox needs, with the Debian package that provides each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("docker-compose", "docker-compose"),
    ("/usr/sbin/sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("java", "openjdk-17-jre-headless"),
    ("javac", "openjdk-17-jdk-headless"),
    ("/usr/share/java/zookeeper.jar", "zookeeper"),
    ("debootstrap", "debootstrap"),
    ("/usr/sbin/dnsmasq", "dnsmasq-base"),
];

/// Debian packages the sandbox needs that are not installed.
pub fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = TOOLS
        .iter()
        .filter(|(tool, _)| {
            if tool.starts_with('/') {
                !Path::new(tool).exists()
            } else {
                !std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("command -v {tool}"))
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            }
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    missing
}

fn preflight() -> Result<()> {
    let missing = missing_packages();
    if !missing.is_empty() {
        bail!(
            "the sandbox needs Debian packages that are not installed: apt-get install {}",
            missing.join(" ")
        );
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
