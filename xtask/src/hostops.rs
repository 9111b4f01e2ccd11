//! What this tool runs on an observer host, and the parsing of what it prints. The scripts are
//! files of their own (`scripts/*.sh`: POSIX sh, or bash after `lib.sh`; coreutils with `timeout`,
//! docker with compose v1 or v2), checked by shellcheck and run locally by this module's tests;
//! file and service names reach them as arguments.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use base64::Engine as _;
use hosts::plan::{Health, Observed, FILES};
use hosts::render::{EXPORTER_SERVICE, ZOOKEEPER_SERVICE};
use hosts::Observer;
use sha2::{Digest, Sha256};

use crate::ssh::Host;

/// The compose project name on every host.
pub const PROJECT: &str = "zk-observers";

/// How long the health probe waits for each answer to begin.
pub const ANSWER_TIMEOUT_SECS: u32 = 4;

const LIB: &str = include_str!("scripts/lib.sh");

/// A script run on a host: `SHELL -c TEXT zk-observers ARGS...`. Each is a file of `scripts/`;
/// the bash ones are sent after `lib.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Reads a host in one command: files, resolved names, probe, running services.
    Inspect,
    /// The health probe.
    Probe,
    /// Resolves names as ZooKeeper on the host will.
    Resolve,
    /// Atomic, checksum-verified write of one file (contents on stdin).
    Write,
    /// Puts back what `Write` replaced.
    Restore,
    /// `docker compose` or `docker-compose`.
    Compose,
    /// Installs the drift key's forced read-only command.
    ReadOnlyAccess,
}

impl Script {
    pub const ALL: [Script; 7] = [
        Script::Inspect,
        Script::Probe,
        Script::Resolve,
        Script::Write,
        Script::Restore,
        Script::Compose,
        Script::ReadOnlyAccess,
    ];

    pub fn shell(self) -> &'static str {
        match self {
            Script::Inspect | Script::Probe | Script::Resolve => "bash",
            Script::Write | Script::Restore | Script::Compose | Script::ReadOnlyAccess => "sh",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Script::Inspect => include_str!("scripts/inspect.sh"),
            Script::Probe => include_str!("scripts/probe.sh"),
            Script::Resolve => include_str!("scripts/resolve.sh"),
            Script::Write => include_str!("scripts/write.sh"),
            Script::Restore => include_str!("scripts/restore.sh"),
            Script::Compose => include_str!("scripts/compose.sh"),
            Script::ReadOnlyAccess => include_str!("scripts/read-only-access.sh"),
        }
    }

    /// The program text as sent.
    pub fn text(self) -> String {
        match self.shell() {
            "bash" => format!("{LIB}\n{}", self.body()),
            _ => self.body().to_string(),
        }
    }
}

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
}

impl Ports {
    pub fn of(env: &manifests::Environment) -> Ports {
        Ports {
            client: env.fleet.zookeeper.client_port.get(),
            metrics: env.fleet.metrics.port().get(),
        }
    }
}

/// The arguments of the inspect script for `o`.
pub fn inspect_args(o: &Observer, ports: Ports) -> Vec<String> {
    let mut args = vec![
        o.deploy_dir.0.clone(),
        PROJECT.to_string(),
        o.address.to_string(),
        ports.client.to_string(),
        ports.metrics.to_string(),
        ANSWER_TIMEOUT_SECS.to_string(),
        ZOOKEEPER_SERVICE.to_string(),
        EXPORTER_SERVICE.to_string(),
    ];
    args.extend(FILES.iter().map(|f| f.to_string()));
    args
}

/// Where deploy installs the drift key's forced command, under an observer's deploy directory.
const READ_ONLY_COMMAND: &str = ".zk-observers/read-only.sh";

/// The drift key's access as deploy wants it on `o`: the forced command (the inspect script with
/// this observer's arguments fixed, whatever the client asks: its output is what an inspect over
/// the deploy key prints, so drift reads the host the same way with either key) and the
/// `authorized_keys` line that forces it. The command's first line names a digest of the rest:
/// the host read reports that line, so an unchanged installation costs nothing.
pub fn drift_access(
    o: &Observer,
    ports: Ports,
    env: &str,
    key: &hosts::PublicKey,
) -> hosts::plan::DriftAccess {
    let quoted: Vec<String> = inspect_args(o, ports)
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let body = format!(
        "# Installed by zk-observers-xtask (deploy): the only command the drift job's SSH key runs on\n\
         # this host (authorized_keys: restrict,command=...). It reads the host and changes nothing.\n\
         set -- {}\n{LIB}\n{}",
        quoted.join(" "),
        Script::Inspect.body()
    );
    let header = format!(
        "# zk-observers read-only command sha256:{}",
        sha256_hex(body.as_bytes())
    );
    hosts::plan::DriftAccess {
        header: Some(header.clone()),
        lines: vec![format!(
            "restrict,command=\"/bin/bash {}/{READ_ONLY_COMMAND}\" {} {}",
            o.deploy_dir.0,
            key.openssh(),
            drift_key_marker(env)
        )],
        command: format!("{header}\n{body}"),
    }
}

/// The `authorized_keys` comment that marks this environment's drift key line.
pub fn drift_key_marker(env: &str) -> String {
    format!("zk-observers-drift@{env}")
}

/// Installs the drift key's forced command and `authorized_keys` line (`want`) on `o`:
/// `installed` (the script itself replaces only what differs).
pub async fn install_drift_access(
    host: &Host,
    o: &Observer,
    env: &str,
    want: &hosts::plan::DriftAccess,
) -> Result<String> {
    let out = host
        .run_ok(
            "installing the drift key's read-only command",
            Script::ReadOnlyAccess,
            &[&o.deploy_dir.0, &want.lines[0], &drift_key_marker(env)],
            Some(want.command.as_bytes()),
        )
        .await?;
    Ok(out.trim().to_string())
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
/// resolve to, the health probe (without a scrape, [`ExporterCheck::Answers`]), and the running
/// services. The docker CLI is asked for those only when the probe does not show both containers
/// answering: a probe costs the host a few milliseconds, the docker CLI tens.
pub async fn inspect(host: &Host, o: &Observer, ports: Ports) -> Result<Observed> {
    let out = host
        .run_ok(
            "reading the host",
            Script::Inspect,
            &strs(&inspect_args(o, ports)),
            None,
        )
        .await?;
    parse_inspect(&out)
}

pub async fn probe(
    host: &Host,
    o: &Observer,
    ports: Ports,
    check: ExporterCheck,
) -> Result<Health> {
    let args = probe_args(&o.address.to_string(), ports, check);
    let out = host
        .run_ok("probing ZooKeeper", Script::Probe, &strs(&args), None)
        .await?;
    Ok(parse_probe(&out))
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
    Ok(parse_resolved(&out))
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
    contents: &str,
    layout: &hosts::observer::ImageLayout,
) -> Vec<String> {
    vec![
        dir.to_string(),
        name.to_string(),
        sha256_hex(contents.as_bytes()),
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
    let args = write_args(&o.deploy_dir.0, name, contents, layout);
    host.run_ok(
        &format!("writing {name}"),
        Script::Write,
        &strs(&args),
        Some(contents.as_bytes()),
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
}

/// The text of the `=== NAME` section of a script's output: up to the next `=== ` line.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = format!("=== {name}\n");
    let Some(i) = out.find(&start) else {
        return "";
    };
    let rest = &out[i + start.len()..];
    if rest.starts_with("=== ") {
        return "";
    }
    rest.find("\n=== ").map_or(rest, |j| &rest[..j])
}

/// `host:port ok|refused|timeout` lines of a `=== reach` section.
fn parse_reach(out: &str) -> BTreeMap<String, hosts::plan::Reach> {
    section(out, "reach")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, r)| Some((t.to_string(), hosts::plan::Reach::parse(r.trim())?)))
        .collect()
}

/// The `=== read-only` section: the installed forced command's first line (or `-`), then the
/// drift key lines of `authorized_keys`.
fn parse_drift_access(out: &str) -> hosts::plan::DriftAccess {
    let mut lines = section(out, "read-only").lines();
    let header = lines.next().filter(|h| *h != "-").map(str::to_string);
    hosts::plan::DriftAccess {
        header,
        lines: lines.map(str::to_string).collect(),
        command: String::new(),
    }
}

/// `name address` / `name -` lines of a `=== resolve` section.
fn parse_resolved(out: &str) -> BTreeMap<String, Option<String>> {
    section(out, "resolve")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, a)| (n.to_string(), (a != "-").then(|| a.to_string())))
        .collect()
}

pub fn parse_inspect(out: &str) -> Result<Observed> {
    let mut files = BTreeMap::new();
    let mut running = std::collections::BTreeSet::new();
    let mut directories = std::collections::BTreeSet::new();
    let mut lines = out.lines();
    let mut in_running = false;
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("=== file ") {
            let b64 = lines.next().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
            files.insert(
                name.to_string(),
                Some(String::from_utf8_lossy(&bytes).into_owned()),
            );
        } else if let Some(name) = line.strip_prefix("=== absent ") {
            files.insert(name.to_string(), None);
        } else if let Some(name) = line.strip_prefix("=== dir ") {
            files.insert(name.to_string(), None);
            directories.insert(name.to_string());
        } else if line == "=== running" {
            in_running = true;
        } else if line.starts_with("=== ") {
            in_running = false;
        } else if in_running && !line.trim().is_empty() {
            running.insert(line.trim().to_string());
        }
    }
    if files.len() != FILES.len() {
        bail!("unexpected answer from the host: {out}");
    }
    Ok(Observed {
        files,
        running,
        resolved: parse_resolved(out),
        health: parse_probe(out),
        directories,
        reach: parse_reach(out),
        drift_access: parse_drift_access(out),
    })
}

pub fn parse_probe(out: &str) -> Health {
    let srvr = section(out, "srvr");
    let mntr = section(out, "mntr");
    let metrics = section(out, "metrics");
    let answer = section(out, "exporter");
    let mode = srvr
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()));
    let peer_state = mntr.lines().find_map(|l| {
        l.strip_prefix("zk_peer_state\t")
            .map(|m| m.trim().to_string())
    });
    let scraped = out.contains("=== metrics\n");
    let exporter = if scraped {
        metrics.starts_with("HTTP/1.")
            && metrics
                .lines()
                .any(|l| l.starts_with("zk_") && !l.starts_with("zk_up 0"))
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
            "exporter: {}",
            first_line(if scraped { metrics } else { answer })
        )
    } else if scraped {
        "observing - broadcast, exporter serving".into()
    } else {
        "observing - broadcast, exporter answering".into()
    };
    Health {
        mode,
        peer_state,
        exporter,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn parses_an_observing_observer() {
        let out = "=== srvr\nZookeeper version: 3.8.0\nMode: observer\nNode count: 5\n\n=== mntr\nzk_version\t3.8.0\n\
                   zk_server_state\tobserver\nzk_peer_state\tobserving - broadcast\n\n=== metrics\nHTTP/1.0 200 OK\r\n\r\nzk_up 1\nzk_znode_count 5\n";
        let h = parse_probe(out);
        assert_eq!(h.mode.as_deref(), Some("observer"));
        assert!(h.healthy(), "{h:?}");
    }

    #[test]
    fn a_syncing_or_dead_observer_is_not_healthy() {
        let h = parse_probe("=== srvr\nThis ZooKeeper instance is not currently serving requests\n\n=== mntr\n\n=== metrics\n");
        assert!(!h.healthy());
        assert!(
            h.detail.contains("not currently serving requests"),
            "{}",
            h.detail
        );
        let h = parse_probe("=== srvr\nMode: observer\n\n=== mntr\nzk_peer_state\tobserving - synchronization - DIFF\n\n=== metrics\nHTTP/1.0 200 OK\r\n\r\nzk_up 1\n");
        assert!(!h.healthy());
        assert!(
            h.detail.contains("observing - synchronization"),
            "{}",
            h.detail
        );
        let h = parse_probe("=== srvr\nMode: observer\n\n=== mntr\nzk_peer_state\tobserving - broadcast\n\n=== metrics\nbash: connect: Connection refused\n");
        assert!(h.observing() && !h.healthy());
    }

    #[test]
    fn without_a_scrape_an_answering_exporter_counts() {
        let probe = "=== srvr\nMode: observer\n\n=== mntr\nzk_peer_state\tobserving - broadcast\n\n=== exporter\n";
        let h = parse_probe(&format!("{probe}HTTP/1.0 404 Not Found\r\n\r\nnot found\n"));
        assert!(h.healthy(), "{h:?}");
        assert_eq!(h.detail, "observing - broadcast, exporter answering");
        let h = parse_probe(&format!("{probe}connection to 198.18.1.4:9141 refused\n"));
        assert!(h.observing() && !h.healthy());
        assert_eq!(h.detail, "exporter: connection to 198.18.1.4:9141 refused");
    }

    #[test]
    fn parses_inspect_output() {
        let out = "=== file zoo.cfg\ndGlja1RpbWU9MjAwMAo=\n=== absent docker-compose.yaml\n=== resolve\nzk0.lb.test 198.18.0.11\nzk1.lb.test -\n=== running\nzookeeper\nexporter\n=== srvr\nMode: observer\n\n=== mntr\nzk_peer_state\tobserving - broadcast\n\n=== metrics\nHTTP/1.0 200 OK\r\n\r\nzk_up 1\n";
        let s = parse_inspect(out).unwrap();
        assert_eq!(s.file("zoo.cfg"), Some("tickTime=2000\n"));
        assert_eq!(s.file("docker-compose.yaml"), None);
        assert!(s.running.contains("zookeeper") && s.running.contains("exporter"));
        assert!(s.health.healthy());
        assert_eq!(s.unresolved(), ["zk1.lb.test"]);
    }

    // --- the scripts themselves, run locally by bash and sh in a temporary directory --------------

    /// Runs `script` here as it runs on a host.
    fn run(script: Script, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        run_with(None, script, args, stdin)
    }

    /// [`run`], with `HOME` set to `home` when given.
    fn run_with(
        home: Option<&Path>,
        script: Script,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> (i32, String, String) {
        let mut cmd = Command::new(script.shell());
        cmd.arg("-c")
            .arg(script.text())
            .arg("zk-observers")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(home) = home {
            cmd.env("HOME", home);
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            // A script may refuse before it reads its input (and the pipe is then closed).
            let _ = child.stdin.take().unwrap().write_all(bytes);
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn me() -> (String, String) {
        let id = |flag: &str| {
            String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string()
        };
        (id("-u"), id("-g"))
    }

    fn write(dir: &Path, name: &str, contents: &str, sum: Option<&str>) -> (i32, String) {
        let (uid, gid) = me();
        let sum = sum.map_or_else(|| sha256_hex(contents.as_bytes()), str::to_string);
        let d = dir.display().to_string();
        let (code, _, err) = run(
            Script::Write,
            &[&d, name, &sum, &uid, &gid],
            Some(contents.as_bytes()),
        );
        (code, err)
    }

    #[test]
    fn write_replaces_atomically_keeps_the_previous_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        assert_eq!(write(&d, "zoo.cfg", "one\n", None).0, 0);
        assert!(d.join("data").is_dir() && d.join("datalog").is_dir());
        assert!(d.join(".zoo.cfg.was-absent").exists());
        assert_eq!(write(&d, "zoo.cfg", "two\n", None).0, 0);
        assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(d.join("zoo.cfg.previous")).unwrap(),
            "one\n"
        );
        let ds = d.display().to_string();
        assert_eq!(run(Script::Restore, &[&ds, "zoo.cfg"], None).0, 0);
        assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "one\n");
        // No temporary file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_first_write_restored_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        assert_eq!(
            write(&d, "docker-compose.yaml", "services: {}\n", None).0,
            0
        );
        let ds = d.display().to_string();
        assert_eq!(
            run(Script::Restore, &[&ds, "docker-compose.yaml"], None).0,
            0
        );
        assert!(!d.join("docker-compose.yaml").exists());
    }

    #[test]
    fn an_empty_directory_in_place_of_the_file_is_replaced_and_restore_leaves_none() {
        // What docker makes of a missing short-syntax bind source.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
        assert_eq!(write(&d, "zoo.cfg", "one\n", None), (0, String::new()));
        assert_eq!(std::fs::read_to_string(d.join("zoo.cfg")).unwrap(), "one\n");
        let ds = d.display().to_string();
        assert_eq!(run(Script::Restore, &[&ds, "zoo.cfg"], None).0, 0);
        assert!(
            !d.join("zoo.cfg").exists(),
            "no directory comes back either"
        );
    }

    #[test]
    fn a_directory_with_contents_or_a_symlink_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
        std::fs::write(d.join("zoo.cfg/keep"), "x").unwrap();
        let (code, err) = write(&d, "zoo.cfg", "one\n", None);
        assert_eq!(code, 4, "{err}");
        assert!(err.contains("is a directory that is not empty"), "{err}");
        assert!(d.join("zoo.cfg/keep").exists());

        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::remove_dir(d.join("data")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.join("data")).unwrap();
        let (code, err) = write(&d, "docker-compose.yaml", "services: {}\n", None);
        assert_eq!(code, 4, "{err}");
        assert!(err.contains("data is a symbolic link"), "{err}");
        assert!(!d.join("docker-compose.yaml").exists());
    }

    #[test]
    fn inspect_says_when_a_directory_stands_where_a_file_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        std::fs::create_dir_all(d.join("zoo.cfg")).unwrap();
        std::fs::write(d.join("docker-compose.yaml"), "services: {}\n").unwrap();
        let ds = d.display().to_string();
        let (code, out, err) = run(
            Script::Inspect,
            &[
                &ds,
                "p",
                "127.0.0.1",
                "1",
                "1",
                "1",
                "zookeeper",
                "exporter",
                "zoo.cfg",
                "docker-compose.yaml",
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let observed = parse_inspect(&out).unwrap();
        assert_eq!(observed.file("zoo.cfg"), None);
        assert_eq!(observed.file("docker-compose.yaml"), Some("services: {}\n"));
        assert!(observed.directories.contains("zoo.cfg"), "{out}");
    }

    #[test]
    fn the_host_read_says_whether_the_drift_access_is_installed_as_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let d = dir.path().join("deploy");
        std::fs::create_dir_all(&d).unwrap();
        let o = Observer {
            deploy_dir: hosts::RemoteDir(d.display().to_string()),
            address: "127.0.0.1".parse().unwrap(),
            ..hosts::inventory::sandbox::observers().remove(0)
        };
        let ports = Ports {
            client: 1,
            metrics: 1,
        };
        let key =
            hosts::PublicKey::parse(&hosts::inventory::sandbox::drift_key().unwrap()).unwrap();
        let want = drift_access(&o, ports, "sandbox", &key);
        let read = || {
            let args = inspect_args(&o, ports);
            let (code, out, err) = run_with(Some(&home), Script::Inspect, &strs(&args), None);
            assert_eq!(code, 0, "{err}");
            parse_inspect(&out).unwrap().drift_access
        };
        assert!(!want.installed_as(&read()), "nothing installed yet");
        let marker = drift_key_marker("sandbox");
        let install = || {
            run_with(
                Some(&home),
                Script::ReadOnlyAccess,
                &[&o.deploy_dir.0, &want.lines[0], &marker],
                Some(want.command.as_bytes()),
            )
        };
        assert_eq!(install().1.trim(), "installed");
        assert!(want.installed_as(&read()), "read back as installed");
        assert_eq!(install().1.trim(), "unchanged");
        // Another deployment's inspect arguments: a new command to install.
        let moved = Observer {
            address: "127.0.0.2".parse().unwrap(),
            ..o.clone()
        };
        assert!(!drift_access(&moved, ports, "sandbox", &key).installed_as(&read()));
    }

    #[test]
    fn a_cut_upload_never_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        assert_eq!(write(&d, "zoo.cfg", "good\n", None).0, 0);
        let expected = sha256_hex(b"the whole new file\n");
        let (code, err) = write(&d, "zoo.cfg", "the who", Some(&expected));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("upload of zoo.cfg incomplete"), "{err}");
        assert_eq!(
            std::fs::read_to_string(d.join("zoo.cfg")).unwrap(),
            "good\n"
        );
    }

    #[test]
    fn the_probe_gives_up_on_a_server_that_accepts_and_never_answers() {
        // A paused ZooKeeper: the kernel accepts, nobody answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port().to_string();
        let started = Instant::now();
        let (code, out, _) = run(
            Script::Probe,
            &["127.0.0.1", &port, &port, "1", "answers"],
            None,
        );
        assert_eq!(code, 0);
        let h = parse_probe(&out);
        assert_eq!(h.detail, "srvr: no answer within 1 s", "{out}");
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(silent);
    }

    #[test]
    fn the_probe_reads_a_whole_answer() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let answers = std::thread::spawn(move || {
            for stream in server.incoming().take(3) {
                let mut s = stream.unwrap();
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).unwrap();
                let asked = String::from_utf8_lossy(&buf[..n]).into_owned();
                let reply = match asked.as_str() {
                    "srvr" => "Zookeeper version: 3.8.0\nMode: observer\n".to_string(),
                    "mntr" => format!(
                        "zk_peer_state\tobserving - broadcast\n{}",
                        "zk_x\t1\n".repeat(4000)
                    ),
                    _ => "HTTP/1.0 404 Not Found\r\n\r\n".to_string(),
                };
                let _ = s.write_all(reply.as_bytes());
            }
        });
        let p = port.to_string();
        let (_, out, _) = run(Script::Probe, &["127.0.0.1", &p, &p, "4", "answers"], None);
        answers.join().unwrap();
        let h = parse_probe(&out);
        assert!(h.healthy(), "{h:?}");
    }

    #[test]
    fn inspect_reads_files_names_and_falls_back_to_docker() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("deploy");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("zoo.cfg"),
            "server.1=zk0.nowhere.invalid:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\n",
        )
        .unwrap();
        let o = Observer {
            deploy_dir: hosts::RemoteDir(d.display().to_string()),
            address: "127.0.0.1".parse().unwrap(),
            ..hosts::inventory::sandbox::observers().remove(0)
        };
        // Nothing listens on these ports: the probe fails, so the script asks docker (absent or
        // not, it must not break the answer).
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let ports = Ports {
            client: port,
            metrics: port,
        };
        let args = inspect_args(&o, ports);
        let (code, out, err) = run(Script::Inspect, &strs(&args), None);
        assert_eq!(code, 0, "{err}");
        let observed = parse_inspect(&out).unwrap();
        assert!(observed
            .file("zoo.cfg")
            .unwrap()
            .contains("zk0.nowhere.invalid"));
        assert_eq!(observed.file("docker-compose.yaml"), None);
        assert_eq!(observed.unresolved(), ["zk0.nowhere.invalid"]);
        assert!(!observed.health.healthy());
        assert!(!observed.running.contains("zookeeper"));
    }

    #[test]
    fn every_script_passes_shellcheck() {
        let found = Command::new("sh")
            .arg("-c")
            .arg("command -v shellcheck")
            .output()
            .unwrap();
        assert!(
            found.status.success(),
            "shellcheck is not installed: apt-get install shellcheck (bash .ci/run does it)"
        );
        for script in Script::ALL {
            let mut child = Command::new("shellcheck")
                .args(["--shell", script.shell(), "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.text().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{script:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // And shellcheck would notice: an unquoted expansion is a finding.
        let mut bad = Command::new("shellcheck")
            .args(["--shell", "sh", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        bad.stdin
            .take()
            .unwrap()
            .write_all(b"d=$1\nrm -rf $d/*\n")
            .unwrap();
        assert!(!bad.wait().unwrap().success());
    }
}
