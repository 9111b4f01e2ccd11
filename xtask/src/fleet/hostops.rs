//! What this tool runs on an observer host, and the parsing of what it prints. The scripts are
//! files of their own (`scripts/*.sh`: POSIX sh, or bash after `lib.sh`; coreutils with `timeout`,
//! docker with compose v1 or v2), checked by shellcheck and run locally by this module's tests;
//! file and service names reach them as arguments.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};
use base64::Engine as _;
use hosts::host_files::{EXPORTER_SERVICE, ZOOKEEPER_SERVICE};
use hosts::host_plan::{Health, Observed, FILES};
use hosts::{MetricsKind, Observer, PublicKey};
use sha2::{Digest, Sha256};

use crate::fleet::ssh::Host;

/// The compose project name on every host.
pub const PROJECT: &str = "zk-observers";

/// How long the health probe waits for each answer to begin.
pub const ANSWER_TIMEOUT_SECS: u32 = 4;

pub use crate::fleet::script::Script;
use crate::fleet::script::LIB;

/// How the health probe checks the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterCheck {
    /// Ask for the metrics: proves the exporter reaches ZooKeeper. The runbook's exporter runs with
    /// `-reset-on-scrape=true`, so every scrape also resets ZooKeeper's statistics (`srst`) under
    /// Prometheus; only the health gate scrapes, right after it restarted the containers.
    Scrape,
    /// Any HTTP answer on the metrics port proves the exporter is up, without a scrape: what reads
    /// (deploy's plan, drift, status) use, so that they leave ZooKeeper's statistics alone.
    /// ZooKeeper itself is asked directly.
    Answers,
}

impl ExporterCheck {
    fn arg(self) -> &'static str {
        match self {
            ExporterCheck::Scrape => "scrape",
            ExporterCheck::Answers => "answers",
        }
    }
}

/// The ports a probe asks on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub client: u16,
    pub metrics: u16,
    /// Who serves the metrics: what a scrape must show, and whether an exporter container runs.
    pub kind: MetricsKind,
}

impl Ports {
    pub fn of(env: &manifests::Environment) -> Ports {
        Ports {
            client: env.fleet.zookeeper.client_port.get(),
            metrics: env.fleet.metrics.port().get(),
            kind: env.fleet.metrics.kind(),
        }
    }
}

/// How much a host read asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// What deploy, push and status need: the docker CLI only when the probe fails.
    Quick,
    /// Also every container this tool made on the host (one docker CLI call): drift.
    Full,
}

/// The arguments of the inspect script for `o` of environment `env` (whose drift key's lines
/// the read reports).
pub fn inspect_args(
    o: &Observer,
    ports: Ports,
    env: &str,
    drift_key: Option<&PublicKey>,
    mode: ReadMode,
) -> Vec<String> {
    let mut args = vec![
        o.deploy_dir.0.clone(),
        PROJECT.to_string(),
        o.address.to_string(),
        ports.client.to_string(),
        ports.metrics.to_string(),
        ANSWER_TIMEOUT_SECS.to_string(),
        ZOOKEEPER_SERVICE.to_string(),
        match ports.kind {
            MetricsKind::Exporter => EXPORTER_SERVICE,
            MetricsKind::Builtin => "-",
        }
        .to_string(),
        drift_key.map_or_else(|| "-".to_string(), PublicKey::openssh),
        drift_key_marker(env),
        match mode {
            ReadMode::Quick => "quick",
            ReadMode::Full => "full",
        }
        .to_string(),
        o.name.clone(),
    ];
    args.extend(FILES.iter().map(|f| f.to_string()));
    args
}

pub use crate::fleet::ssh::drift_key;

/// Where deploy installs the drift key's forced command, under an observer's deploy directory.
const READ_ONLY_COMMAND: &str = ".zk-observers/read-only.sh";

/// The drift key's access as deploy wants it on `o`: the forced command (the inspect script with
/// this observer's arguments fixed, whatever the client asks: its output is what an inspect over
/// the deploy key prints, so drift reads the host the same way with either key) and the one
/// `authorized_keys` line that forces it. The host read reports the command's digest as the host
/// computes it, so a command changed on the host is found.
pub fn drift_access(
    o: &Observer,
    ports: Ports,
    env: &str,
    key: &PublicKey,
) -> hosts::host_plan::DriftAccess {
    let quoted: Vec<String> = inspect_args(o, ports, env, Some(key), ReadMode::Full)
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let command = format!(
        "# Installed by zk-observers-xtask (deploy): the only command the drift job's SSH key runs on\n\
         # this host (authorized_keys: restrict,command=...). It reads the host and changes nothing.\n\
         set -- {}\n{LIB}\n{}",
        quoted.join(" "),
        Script::Inspect.body()
    );
    hosts::host_plan::DriftAccess {
        digest: Some(format!("sha256:{}", sha256_hex(command.as_bytes()))),
        owners: vec![],
        login_uid: None,
        lines: vec![format!(
            "restrict,command=\"/bin/bash {}/{READ_ONLY_COMMAND}\" {} {}",
            o.deploy_dir.0,
            key.openssh(),
            drift_key_marker(env)
        )],
        command,
    }
}

/// The `authorized_keys` comment that marks this environment's drift key line.
pub fn drift_key_marker(env: &str) -> String {
    format!("zk-observers-drift@{env}")
}

/// Makes `want` the drift key's only way into `o` (the forced command and the one line; every
/// other line for the key removed), or with `want` `None` revokes it. Returns `installed`,
/// `revoked` or `unchanged`, with the other lines it removed.
pub async fn set_drift_access(
    host: &Host,
    o: &Observer,
    env: &str,
    key: Option<&PublicKey>,
    want: Option<&hosts::host_plan::DriftAccess>,
) -> Result<String> {
    let line = want
        .and_then(|w| w.lines.first())
        .map_or("-", String::as_str);
    let key = key.map_or_else(|| "-".to_string(), PublicKey::openssh);
    let out = host
        .run_ok(
            if want.is_some() {
                "installing the drift key's read-only command"
            } else {
                "revoking the drift key"
            },
            Script::ReadOnlyAccess,
            &[&o.deploy_dir.0, line, &drift_key_marker(env), &key],
            Some(want.map_or(&b""[..], |w| w.command.as_bytes())),
        )
        .await?;
    let text = String::from_utf8_lossy(&out);
    let removed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("removed "))
        .collect();
    let result = text.lines().last().unwrap_or_default().trim().to_string();
    Ok(if removed.is_empty() {
        result
    } else if want.is_none() {
        format!("{result}: removed {}", removed.join(" | "))
    } else {
        format!(
            "{result}; removed {} other line(s) for the drift key: {}",
            removed.len(),
            removed.join(" | ")
        )
    })
}

/// The arguments of the probe script.
pub fn probe_args(address: &str, ports: Ports, check: ExporterCheck) -> Vec<String> {
    vec![
        address.to_string(),
        ports.client.to_string(),
        ports.metrics.to_string(),
        ANSWER_TIMEOUT_SECS.to_string(),
        check.arg().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Reads the host in one remote command: the managed files, what the deployed zoo.cfg's names
/// resolve to, the drift key's access, the health probe (without a scrape,
/// [`ExporterCheck::Answers`]), and the running services. The docker CLI is asked for those only
/// when the probe does not show both containers answering: a probe costs the host a few
/// milliseconds, the docker CLI tens.
pub async fn inspect(
    host: &Host,
    o: &Observer,
    env: &manifests::Environment,
    mode: ReadMode,
) -> Result<Observed> {
    let key = drift_key(env);
    let args = inspect_args(o, Ports::of(env), &env.name, key.as_ref(), mode);
    let out = host
        .run_ok("reading the host", Script::Inspect, &strs(&args), None)
        .await?;
    parse_inspect(&out, Ports::of(env).kind)
        .map_err(|e| anyhow::anyhow!("{}: reading the host: {e:#}", o.name))
}

pub async fn probe(
    host: &Host,
    o: &Observer,
    ports: Ports,
    check: ExporterCheck,
) -> Result<Health> {
    probe_waiting(host, o, ports, check, Duration::ZERO).await
}

/// [`probe`], after waiting on the host (polling ZooKeeper every 0.1 s there) for up to `wait`
/// until it observes: what the health gate asks, one SSH command per wait.
pub async fn probe_waiting(
    host: &Host,
    o: &Observer,
    ports: Ports,
    check: ExporterCheck,
    wait: Duration,
) -> Result<Health> {
    let mut args = probe_args(&o.address.to_string(), ports, check);
    args.push(wait.as_millis().to_string());
    let out = host
        .run_ok("probing ZooKeeper", Script::Probe, &strs(&args), None)
        .await?;
    Ok(parse_probe(&Frames::parse(&out)?, ports.kind))
}

/// Resolves `names` on the host, as ZooKeeper there will.
pub async fn resolve(host: &Host, names: &[String]) -> Result<BTreeMap<String, Option<String>>> {
    let out = host
        .run_ok(
            "resolving load-balancer names",
            Script::Resolve,
            &strs(names),
            None,
        )
        .await?;
    Ok(parse_resolved(&Frames::parse(&out)?))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The arguments of the write script for `name`.
pub fn write_args(
    dir: &str,
    name: &str,
    contents: &[u8],
    layout: &hosts::observer::ImageLayout,
) -> Vec<String> {
    vec![
        dir.to_string(),
        name.to_string(),
        sha256_hex(contents),
        layout.uid.to_string(),
        layout.gid.to_string(),
    ]
}

pub async fn write_file(
    host: &Host,
    o: &Observer,
    layout: &hosts::observer::ImageLayout,
    name: &str,
    contents: &str,
) -> Result<()> {
    tracing::debug!(host = %o.name, file = name, "uploading");
    let args = write_args(&o.deploy_dir.0, name, contents.as_bytes(), layout);
    host.run_ok(
        &format!("writing {name}"),
        Script::Write,
        &strs(&args),
        Some(contents.as_bytes()),
    )
    .await
    .map(drop)
}

/// Records in `o`'s deploy directory that this run deployed it ([`crate::provenance::MARKER_FILE`]).
pub async fn record_deployed(
    host: &Host,
    o: &Observer,
    deployed: &crate::provenance::Deployed,
) -> Result<()> {
    let contents = deployed.to_file();
    host.run_ok(
        "recording where the deployment came from",
        Script::Record,
        &[&o.deploy_dir.0, &sha256_hex(contents.as_bytes())],
        Some(contents.as_bytes()),
    )
    .await
    .map(drop)
}

/// Writes the secret file `name` (mode 0600, owned by the image's user) atomically, as
/// [`write_file`] does; its bytes never appear in an argument or a message.
pub async fn write_secret(
    host: &Host,
    o: &Observer,
    layout: &hosts::observer::ImageLayout,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    tracing::debug!(host = %o.name, file = name, "uploading a secret");
    let mut args = write_args(&o.deploy_dir.0, name, bytes, layout);
    args.push("secret".into());
    host.run_ok(
        &format!("writing {name}"),
        Script::Write,
        &strs(&args),
        Some(bytes),
    )
    .await
    .map(drop)
}

pub async fn restore_file(host: &Host, o: &Observer, name: &str) -> Result<()> {
    host.run_ok(
        &format!("restoring the previous {name}"),
        Script::Restore,
        &[&o.deploy_dir.0, name],
        None,
    )
    .await
    .map(drop)
}

/// Retires the observer `o` of `env` on its host, as `plan` says is still needed: its containers
/// stopped and removed (`compose down` while its compose file is there), the drift key revoked,
/// the tool's files removed, its data kept or wiped. Each step is idempotent: a retirement
/// cut short is finished by the next.
pub async fn retire(
    host: &Host,
    o: &Observer,
    env: &manifests::Environment,
    data: hosts::RetiredData,
    plan: &hosts::host_plan::Retirement,
) -> Result<()> {
    // Through compose while its file is there (a regular file: never read through a link);
    // retire.sh then removes whatever of the observer's containers is left, by their labels.
    if plan.stop_containers && plan.compose_file {
        compose(host, o, &["down", "--remove-orphans"]).await?;
    }
    // The drift key's command lives in the deploy directory: revoked first, so that the
    // directory can go with the rest. Every line for the key or its marker goes.
    if plan.revoke_drift_key {
        set_drift_access(host, o, &env.name, drift_key(env).as_ref(), None).await?;
    }
    let data = match data {
        hosts::RetiredData::Keep => "keep",
        hosts::RetiredData::Wipe => "wipe",
    };
    host.run_ok(
        "removing the retired observer's files",
        Script::Retire,
        &[&o.deploy_dir.0, PROJECT, &o.name, data],
        None,
    )
    .await?;
    Ok(())
}

/// A step of setting an observer's data aside (`reset-data.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStep {
    /// Data and log directories renamed aside, empty ones made.
    Set,
    /// What was set aside removed (the host passed the gate).
    Commit,
    /// What was set aside put back (the host failed).
    Undo,
}

pub async fn reset_data(
    host: &Host,
    o: &Observer,
    layout: &hosts::observer::ImageLayout,
    step: ResetStep,
) -> Result<()> {
    let (what, arg) = match step {
        ResetStep::Set => ("setting the observer's data aside", "set"),
        ResetStep::Commit => ("removing the observer's data set aside", "commit"),
        ResetStep::Undo => ("putting the observer's data back", "undo"),
    };
    host.run_ok(
        what,
        Script::ResetData,
        &[
            &o.deploy_dir.0,
            &layout.uid.to_string(),
            &layout.gid.to_string(),
            arg,
        ],
        None,
    )
    .await
    .map(drop)
}

/// The last `lines` lines of ZooKeeper's log on the host (its container's), for a failure report.
pub async fn zookeeper_log(host: &Host, o: &Observer, lines: u32) -> Result<String> {
    let out = host
        .run_ok(
            "reading ZooKeeper's log",
            Script::Logs,
            &[PROJECT, ZOOKEEPER_SERVICE, &o.name, &lines.to_string()],
            None,
        )
        .await?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// After a first deployment was undone: removes the directories it created, as far as empty.
pub async fn remove_empty_deployment(host: &Host, o: &Observer) -> Result<()> {
    host.run_ok(
        "removing the undone deployment's directories",
        Script::Restore,
        &[&o.deploy_dir.0, "--empty-deployment"],
        None,
    )
    .await
    .map(drop)
}

/// Brings the containers to the files on the host as `how` says: ZooKeeper's container restarted
/// by the docker CLI (a new zoo.cfg alone), `compose up -d` (a new compose file, containers down),
/// or both (ZooKeeper restarted only if compose kept its running container).
pub async fn restart(host: &Host, o: &Observer, how: hosts::host_plan::Restart) -> Result<()> {
    use hosts::host_plan::Restart;
    let up = ["up", "-d", "--remove-orphans"];
    let kept = ["--restart-kept", ZOOKEEPER_SERVICE, o.name.as_str()];
    let args: Vec<&str> = match how {
        Restart::ZooKeeper => kept.to_vec(),
        Restart::Compose => up.to_vec(),
        Restart::ComposeThenZooKeeper => kept.into_iter().chain(up).collect(),
    };
    compose(host, o, &args).await.map(drop)
}

/// What [`restart`] does, in words, for progress lines.
pub fn restart_words(how: hosts::host_plan::Restart) -> &'static str {
    use hosts::host_plan::Restart;
    match how {
        Restart::ZooKeeper => "docker restart zookeeper",
        Restart::Compose => "docker compose up -d",
        Restart::ComposeThenZooKeeper => {
            "docker compose up -d, then docker restart zookeeper if compose kept it"
        }
    }
}

pub async fn compose(host: &Host, o: &Observer, args: &[&str]) -> Result<String> {
    let mut all = vec![o.deploy_dir.0.as_str(), PROJECT];
    all.extend_from_slice(args);
    host.run_ok(
        &format!("docker compose {}", args.join(" ")),
        Script::Compose,
        &all,
        None,
    )
    .await
    .map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// What a script reported: its length-framed sections (`=== NAME LENGTH`, LENGTH bytes, a
/// newline; `frame` in `scripts/lib.sh`). Nothing inside a section can pass for a section of its
/// own: an exporter's answer that contains `=== file zoo.cfg` is just part of that answer.
pub struct Frames {
    frames: Vec<(String, Vec<u8>)>,
}

impl Frames {
    pub fn parse(out: &[u8]) -> Result<Frames> {
        let mut frames = Vec::new();
        let mut rest = out;
        while !rest.is_empty() {
            let Some(header_end) = rest.iter().position(|b| *b == b'\n') else {
                bail!("a section header without its end");
            };
            let header = std::str::from_utf8(&rest[..header_end])
                .map_err(|_| anyhow::anyhow!("a section header that is not text"))?;
            let Some((name, len)) = header.strip_prefix("=== ").and_then(|h| h.rsplit_once(' '))
            else {
                bail!(
                    "not a section header: {:?}",
                    header.chars().take(80).collect::<String>()
                );
            };
            let len: usize = len.parse().map_err(|_| {
                anyhow::anyhow!("a section length that is not a number: {header:?}")
            })?;
            let body_start = header_end + 1;
            let body_end = body_start + len;
            if rest.len() <= body_end || rest[body_end] != b'\n' {
                bail!("section {name:?} is cut short");
            }
            if frames.iter().any(|(n, _)| n == name) {
                bail!("section {name:?} appears twice");
            }
            frames.push((name.to_string(), rest[body_start..body_end].to_vec()));
            rest = &rest[body_end + 1..];
        }
        Ok(Frames { frames })
    }

    /// The body of section `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.frames
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The body of section `name` as text (lossy), empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// `host:port ok|refused|timeout` lines of the `reach` section.
fn parse_reach(f: &Frames) -> BTreeMap<String, hosts::host_plan::Reach> {
    f.text("reach")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, r)| Some((t.to_string(), hosts::host_plan::Reach::parse(r.trim())?)))
        .collect()
}

/// The drift key's access as read: the command's digest, owners and modes up to `/`, the lines.
fn parse_drift_access(f: &Frames) -> hosts::host_plan::DriftAccess {
    let digest = f.text("read-only-digest");
    let owners_text = f.text("read-only-owners");
    let mut owners_lines = owners_text.lines();
    let login_uid = owners_lines
        .next()
        .and_then(|l| l.strip_prefix("uid "))
        .and_then(|u| u.trim().parse().ok());
    let owners = owners_lines
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            Some(hosts::host_plan::Owner {
                uid: parts.next()?.parse().ok()?,
                mode: parts.next()?.to_string(),
                path: parts.next()?.to_string(),
            })
        })
        .collect();
    hosts::host_plan::DriftAccess {
        digest: (!digest.is_empty() && digest != "-").then_some(digest),
        owners,
        login_uid,
        lines: f
            .text("drift-key-lines")
            .lines()
            .map(str::to_string)
            .collect(),
        command: String::new(),
    }
}

/// `name address` / `name -` lines of the `resolve` section.
fn parse_resolved(f: &Frames) -> BTreeMap<String, Option<String>> {
    f.text("resolve")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, a)| (n.to_string(), (a != "-").then(|| a.to_string())))
        .collect()
}

/// The quorum TLS secret files, as `scripts/inspect.sh` lists them.
pub const SECRET_FILES: [&str; 4] = [
    hosts::tls::KEY_STORE_FILE,
    hosts::tls::KEY_STORE_PASSWORD_FILE,
    hosts::tls::TRUST_STORE_FILE,
    hosts::tls::TRUST_STORE_PASSWORD_FILE,
];

/// How our own scripts are invoked (`bash -c TEXT zk-observers ARGS`): `$0`.
const INVOKED_AS: &str = "zk-observers";

pub fn parse_inspect(out: &[u8], kind: MetricsKind) -> Result<Observed> {
    let f = Frames::parse(out)?;
    let mut files = BTreeMap::new();
    let mut directories = std::collections::BTreeSet::new();
    let mut symlinks = BTreeMap::new();
    for name in FILES {
        if let Some(b64) = f.get(&format!("file {name}")) {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64)?;
            files.insert(
                name.to_string(),
                Some(String::from_utf8_lossy(&bytes).into_owned()),
            );
        } else if f.has(&format!("absent {name}")) {
            files.insert(name.to_string(), None);
        } else if f.has(&format!("dir {name}")) {
            files.insert(name.to_string(), None);
            directories.insert(name.to_string());
        } else if let Some(target) = f.get(&format!("symlink {name}")) {
            files.insert(name.to_string(), None);
            symlinks.insert(
                name.to_string(),
                String::from_utf8_lossy(target).into_owned(),
            );
        } else {
            bail!("the host read says nothing of {name}");
        }
    }
    let invoked = f.text("invoked");
    if invoked.is_empty() {
        bail!("unexpected answer from the host (no `invoked` section)");
    }
    Ok(Observed {
        files,
        running: f
            .text("running")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        resolved: parse_resolved(&f),
        health: parse_probe(&f, kind),
        directories,
        reach: parse_reach(&f),
        drift_access: parse_drift_access(&f),
        symlinks,
        stray: f.text("stray").lines().map(str::to_string).collect(),
        forced_command: invoked != INVOKED_AS,
        myid: Some(f.text("myid"))
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty()),
        log_signs: f
            .text("log-signs")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        deploy_dir_resolved: Some(f.text("deploy-dir-resolved"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().to_string()),
        data_dirs: f.text("data").lines().map(str::to_string).collect(),
        secrets: SECRET_FILES
            .iter()
            .map(|name| {
                let state = f.text(&format!("secret {name}"));
                let digest = match state.trim() {
                    "absent" | "" => None,
                    s => Some(s.strip_prefix("sha256:").unwrap_or(s).to_string()),
                };
                (name.to_string(), digest)
            })
            .collect(),
        deployed: Some(f.text("deployed")).filter(|d| !d.trim().is_empty()),
        containers: f
            .text("containers")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(o, d)| (o.to_string(), d.to_string()))
            .collect(),
        certificates: ["keystore", "truststore"]
            .into_iter()
            .filter_map(|store| {
                let text = f.get(&format!("certificates {store}"))?;
                Some((
                    store.to_string(),
                    hosts::tls::parse_keytool_list(&String::from_utf8_lossy(text)),
                ))
            })
            .collect(),
        election_tls: f
            .text("election-tls")
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(t, a)| (t.to_string(), hosts::tls::ElectionAnswer::parse(a)))
            .collect(),
    })
}

pub fn parse_probe(f: &Frames, kind: MetricsKind) -> Health {
    let (srvr, mntr) = (f.text("srvr"), f.text("mntr"));
    let (metrics, answer) = (f.text("metrics"), f.text("exporter"));
    let (srvr, mntr, metrics, answer) = (
        srvr.as_str(),
        mntr.as_str(),
        metrics.as_str(),
        answer.as_str(),
    );
    let mode = srvr
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()));
    let peer_state = mntr.lines().find_map(|l| {
        l.strip_prefix("zk_peer_state\t")
            .map(|m| m.trim().to_string())
    });
    let scraped = f.has("metrics");
    let exporter = if scraped {
        metrics.starts_with("HTTP/1.") && kind.serves_zookeeper(metrics)
    } else {
        answer.starts_with("HTTP/1.")
    };
    let first_line = |s: &str| -> String {
        s.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no answer")
            .chars()
            .take(120)
            .collect()
    };
    let detail = if mode.is_none() {
        format!("srvr: {}", first_line(srvr))
    } else if peer_state.as_deref() != Some("observing - broadcast") {
        match &peer_state {
            Some(state) => format!(
                "mode {}, peer state {state}",
                mode.as_deref().unwrap_or("?")
            ),
            None => format!("mntr: {}", first_line(mntr)),
        }
    } else if !exporter {
        format!(
            "{}: {}",
            kind.noun(),
            first_line(if scraped { metrics } else { answer })
        )
    } else if scraped {
        format!("observing - broadcast, {} serving", kind.noun())
    } else {
        format!("observing - broadcast, {} answering", kind.noun())
    };
    Health {
        mode,
        peer_state,
        exporter,
        detail,
        conf: f
            .get("conf")
            .map(|c| String::from_utf8_lossy(c).into_owned()),
    }
}

#[cfg(test)]
mod tests;
