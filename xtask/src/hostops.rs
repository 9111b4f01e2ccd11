//! What this tool does on an observer host, as shell scripts run over SSH (POSIX sh, coreutils
//! including `timeout`, bash for /dev/tcp, docker with compose v1 or v2), and the parsing of what
//! they print.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use base64::Engine as _;
use hosts::render::{COMPOSE_FILE, ZOOKEEPER_SERVICE, ZOO_CFG_FILE};
use hosts::Observer;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ssh::Host;

/// The compose project name on every host.
pub const PROJECT: &str = "zk-observers";

/// The files this tool manages, in the order they are written.
pub const FILES: [&str; 2] = [ZOO_CFG_FILE, COMPOSE_FILE];

/// Prints each managed file (base64). Expects `d` to be set.
const FILES_BODY: &str = r#"
for f in zoo.cfg docker-compose.yaml; do
  if [ -f "$d/$f" ]; then printf '=== file %s\n' "$f"; base64 -w0 < "$d/$f"; printf '\n'
  else printf '=== absent %s\n' "$f"; fi
done
"#;

/// Sets the positional parameters to the DNS names the deployed zoo.cfg's `server.N` lines point
/// at (load balancers that have names, not addresses: AWS), for [`RESOLVE`]. Parsing is bash's
/// own, so a zoo.cfg of addresses costs no process. Expects `d` to be set.
const DEPLOYED_NAMES: &str = r#"
names=()
if [ -f "$d/zoo.cfg" ]; then
  while IFS= read -r l; do
    [[ $l =~ ^server\.[0-9]+=([A-Za-z0-9.-]*[A-Za-z][A-Za-z0-9.-]*): ]] && names+=("${BASH_REMATCH[1]}")
  done < "$d/zoo.cfg"
fi
set -- "${names[@]}"
"#;

/// Resolves each positional parameter as ZooKeeper on the host will (getaddrinfo, the host's
/// resolver) and prints `name address`, or `name -` when it does not resolve.
const RESOLVE: &str = r#"
printf '=== resolve\n'
for n in "$@"; do
  a=$(timeout 5 getent ahosts "$n" 2>/dev/null) && a=${a%%[[:space:]]*} || a=
  printf '%s %s\n' "$n" "${a:--}"
done
"#;

/// Prints the running compose services. When ZooKeeper observes and the exporter answers on the
/// host's published ports, both containers are evidently running and the docker CLI (the
/// costly part when many runs probe a host) is not asked. Expects `probe` (what [`PROBE_BODY`]
/// printed, or empty) and `project` to be set.
const RUNNING_BODY: &str = r#"
printf '=== running\n'
if [[ $probe == *$'\nMode: observer\n'* && $probe == *$'\nzk_peer_state\tobserving - broadcast\n'*
      && $probe == *$'\n=== exporter\nHTTP/1.'* ]]; then
  printf 'zookeeper\nexporter\n'
else
  docker ps --filter "label=com.docker.compose.project=$project" --filter status=running --format '{{.Label "com.docker.compose.service"}}' 2>&1 || true
fi
"#;

/// Writes stdin to `$d/$name` atomically: a temporary file in the same directory, checked against
/// the expected SHA-256 (a killed upload leaves a short file that must not be moved into place),
/// then renamed over the old file, whose content is kept as `$name.previous` for rollback. Also
/// creates the deploy, data and log directories with the container user's ownership.
pub const WRITE: &str = r#"
set -eu
d=$1; name=$2; sum=$3; uid=$4; gid=$5
mkdir -p "$d" "$d/data" "$d/datalog"
chown "$uid:$gid" "$d/data" "$d/datalog"
rm -f "$d/.$name".tmp.*
tmp=$(mktemp "$d/.$name.tmp.XXXXXX")
cat > "$tmp"
if [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != "$sum" ]; then rm -f "$tmp"; echo "upload of $name incomplete" >&2; exit 3; fi
chmod 0644 "$tmp"
if [ -f "$d/$name" ]; then cp -p "$d/$name" "$d/.$name.previous.tmp" && mv -f "$d/.$name.previous.tmp" "$d/$name.previous"; else rm -f "$d/$name.previous"; touch "$d/.$name.was-absent"; fi
mv -f "$tmp" "$d/$name"
"#;

/// Puts back what `WRITE` replaced: the previous version, or no file if there was none.
const RESTORE: &str = r#"
set -eu
d=$1; name=$2
if [ -f "$d/$name.previous" ]; then cp -p "$d/$name.previous" "$d/.$name.restore.tmp" && mv -f "$d/.$name.restore.tmp" "$d/$name"
elif [ -f "$d/.$name.was-absent" ]; then rm -f "$d/$name"; fi
rm -f "$d/.$name.was-absent"
"#;

/// `docker compose` (v2) or `docker-compose` (v1) in the deploy directory.
const COMPOSE: &str = r#"
set -eu
d=$1; project=$2; shift 2
cd "$d"
if docker compose version >/dev/null 2>&1; then exec docker compose -p "$project" "$@"; fi
if command -v docker-compose >/dev/null 2>&1; then exec docker-compose -p "$project" "$@"; fi
echo "neither \`docker compose\` (v2) nor \`docker-compose\` (v1) is installed on this host" >&2
exit 127
"#;

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

/// How long the health probe waits for each answer to begin.
pub const ANSWER_TIMEOUT_SECS: u32 = 4;

/// srvr and mntr from ZooKeeper and a request to the exporter (see [`ExporterCheck`]), over bash's
/// /dev/tcp, kept as sections in `probe` and printed. Expects `addr`, `client_port`,
/// `metrics_port`, `exporter_check` and `answer_timeout` to be set.
///
/// SIGPIPE is ignored: a port that accepts and closes at once (docker's proxy while the container
/// starts) must fail that request, not kill the script. A ZooKeeper or exporter that accepts and
/// never answers (a paused container) cannot hang the read: each answer must begin within `answer_timeout`, or it reads as "no answer within ...".
/// The rest of an answer is taken by one `read -N` (no timeout), which reads in blocks: a `read`
/// loop takes a socket a byte at a time, and `read -t` adds two system calls per byte, which made
/// the 16 KiB answers of mntr and the exporter the costliest part of reading a host; a `timeout`
/// process per request cost more than the requests (docs/benchmarks.md).
const PROBE_BODY: &str = r#"
trap '' PIPE
ask() {
  r=
  exec 3<>"/dev/tcp/$addr/$1" 2>/dev/null || { r="connection to $addr:$1 refused"; return; }
  printf '%s' "$2" 2>/dev/null >&3
  local first= rest=
  if IFS= read -r -t "$answer_timeout" -N 1 first 2>/dev/null <&3; then
    IFS= read -r -N 4194304 rest 2>/dev/null <&3
    r=$first$rest
  elif [ $? -gt 128 ]; then
    r="no answer within $answer_timeout s"
  fi
  exec 3<&-
}
ask "$client_port" srvr; probe=$'=== srvr\n'$r$'\n'
ask "$client_port" mntr; probe+=$'=== mntr\n'$r$'\n'
if [ "$exporter_check" = scrape ]; then
  ask "$metrics_port" $'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n'; probe+=$'=== metrics\n'$r$'\n'
else
  ask "$metrics_port" $'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'; probe+=$'=== exporter\n'$r$'\n'
fi
printf '%s\n' "$probe"
"#;

/// What is on a host now.
#[derive(Debug, Clone)]
pub struct HostState {
    pub files: BTreeMap<String, Option<String>>,
    pub running: Vec<String>,
    /// The DNS names the deployed zoo.cfg uses, and what each resolves to on the host (`None`:
    /// it does not resolve).
    pub resolved: BTreeMap<String, Option<String>>,
    /// What the health probe saw when the state was read.
    pub health: Health,
}

impl HostState {
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).and_then(|f| f.as_deref())
    }

    pub fn zookeeper_running(&self) -> bool {
        self.running.iter().any(|s| s == ZOOKEEPER_SERVICE)
    }
}

/// Reads the host in one remote command: the managed files, the health probe (without a scrape,
/// [`ExporterCheck::Answers`]), and the running services. The docker CLI is asked for those only
/// when the probe does not show both containers answering: a probe costs the host a few
/// milliseconds, the docker CLI tens.
pub async fn inspect(
    host: &Host,
    o: &Observer,
    client_port: u16,
    metrics_port: u16,
) -> Result<HostState> {
    let script = format!("d=$1; project=$2; addr=$3; client_port=$4; metrics_port=$5; answer_timeout={ANSWER_TIMEOUT_SECS}; exporter_check={}\n{FILES_BODY}{DEPLOYED_NAMES}{RESOLVE}{PROBE_BODY}{RUNNING_BODY}", ExporterCheck::Answers.arg());
    let out = host
        .bash_ok(
            "reading the host",
            &script,
            &[
                &o.deploy_dir.0,
                PROJECT,
                &o.address.to_string(),
                &client_port.to_string(),
                &metrics_port.to_string(),
            ],
        )
        .await?;
    parse_inspect(&out)
}

/// `name address` / `name -` lines of a `=== resolve` section.
fn parse_resolved(out: &str) -> BTreeMap<String, Option<String>> {
    let Some(start) = out.find("=== resolve\n") else {
        return BTreeMap::new();
    };
    out[start + "=== resolve\n".len()..]
        .lines()
        .take_while(|l| !l.starts_with("=== "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, a)| (n.to_string(), (a != "-").then(|| a.to_string())))
        .collect()
}

/// The `server.N` lines of a zoo.cfg: (N, host), host without IPv6 brackets.
pub fn zoo_cfg_servers(cfg: &str) -> Vec<(u32, String)> {
    cfg.lines()
        .filter_map(|l| {
            let (id, rest) = l.strip_prefix("server.")?.split_once('=')?;
            let id = id.parse().ok()?;
            let host = rest.rsplitn(4, ':').last().unwrap_or(rest);
            Some((
                id,
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            ))
        })
        .collect()
}

/// The `server.N` lines of a zoo.cfg that name a host by DNS name, not address.
pub fn zoo_cfg_names(cfg: &str) -> Vec<(u32, String)> {
    zoo_cfg_servers(cfg)
        .into_iter()
        .filter(|(_, h)| h.parse::<std::net::IpAddr>().is_err())
        .collect()
}

/// Resolves `names` on the host, as ZooKeeper there will.
pub async fn resolve(host: &Host, names: &[String]) -> Result<BTreeMap<String, Option<String>>> {
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = host
        .bash_ok("resolving load-balancer names", RESOLVE, &args)
        .await?;
    Ok(parse_resolved(&out))
}

fn parse_inspect(out: &str) -> Result<HostState> {
    let mut files = BTreeMap::new();
    let mut running = Vec::new();
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
        } else if line == "=== running" {
            in_running = true;
        } else if line.starts_with("=== ") {
            in_running = false;
        } else if in_running && !line.trim().is_empty() {
            running.push(line.trim().to_string());
        }
    }
    if files.len() != FILES.len() {
        bail!("unexpected answer from the host: {out}");
    }
    Ok(HostState {
        files,
        running,
        resolved: parse_resolved(out),
        health: parse_probe(out),
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn write_file(
    host: &Host,
    o: &Observer,
    layout: &hosts::observer::ImageLayout,
    name: &str,
    contents: &str,
) -> Result<()> {
    tracing::debug!(host = %o.name, file = name, "uploading");
    let sum = sha256_hex(contents.as_bytes());
    host.sh_ok(
        &format!("writing {name}"),
        WRITE,
        &[
            &o.deploy_dir.0,
            name,
            &sum,
            &layout.uid.to_string(),
            &layout.gid.to_string(),
        ],
        Some(contents.as_bytes()),
    )
    .await
    .map(drop)
}

pub async fn restore_file(host: &Host, o: &Observer, name: &str) -> Result<()> {
    host.sh_ok(
        &format!("restoring the previous {name}"),
        RESTORE,
        &[&o.deploy_dir.0, name],
        None,
    )
    .await
    .map(drop)
}

pub async fn compose(host: &Host, o: &Observer, args: &[&str]) -> Result<String> {
    let mut all = vec![o.deploy_dir.0.as_str(), PROJECT];
    all.extend_from_slice(args);
    host.sh_ok(
        &format!("docker compose {}", args.join(" ")),
        COMPOSE,
        &all,
        None,
    )
    .await
}

/// What the health probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `Mode:` from srvr (`observer`), or what was answered instead.
    pub mode: Option<String>,
    /// `zk_peer_state` from mntr (`observing - broadcast` when synced).
    pub peer_state: Option<String>,
    /// Whether the exporter served ZooKeeper metrics ([`ExporterCheck::Scrape`]), or answered
    /// ([`ExporterCheck::Answers`]).
    pub exporter: bool,
    /// Why the probe did not pass, for reports.
    pub detail: String,
}

impl Health {
    pub fn observing(&self) -> bool {
        self.mode.as_deref() == Some("observer")
            && self.peer_state.as_deref() == Some("observing - broadcast")
    }

    pub fn healthy(&self) -> bool {
        self.observing() && self.exporter
    }
}

pub async fn probe(
    host: &Host,
    o: &Observer,
    client_port: u16,
    metrics_port: u16,
    check: ExporterCheck,
) -> Result<Health> {
    let script = format!("addr=$1; client_port=$2; metrics_port=$3; answer_timeout={ANSWER_TIMEOUT_SECS}; exporter_check={}\n{PROBE_BODY}", check.arg());
    let out = host
        .bash_ok(
            "probing ZooKeeper",
            &script,
            &[
                &o.address.to_string(),
                &client_port.to_string(),
                &metrics_port.to_string(),
            ],
        )
        .await?;
    Ok(parse_probe(&out))
}

pub fn parse_probe(out: &str) -> Health {
    let section = |name: &str| -> &str {
        let start = format!("=== {name}\n");
        let Some(i) = out.find(&start) else { return "" };
        let rest = &out[i + start.len()..];
        rest.find("\n=== ").map_or(rest, |j| &rest[..j])
    };
    let srvr = section("srvr");
    let mntr = section("mntr");
    let metrics = section("metrics");
    let answer = section("exporter");
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
    fn finds_the_names_a_zoo_cfg_uses() {
        let cfg = "tickTime=2000\nserver.1=10.1.0.12:2888:3888:participant\nserver.2=[fd00::1]:2888:3888:participant\n\
                   server.3=zk2.lb.example.test:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\n";
        assert_eq!(zoo_cfg_servers(cfg)[1], (2, "fd00::1".to_string()));
        assert_eq!(zoo_cfg_names(cfg), [(3, "zk2.lb.example.test".to_string())]);
    }

    #[test]
    fn parses_inspect_output() {
        let out = "=== file zoo.cfg\ndGlja1RpbWU9MjAwMAo=\n=== absent docker-compose.yaml\n=== resolve\nzk0.lb.test 198.18.0.11\nzk1.lb.test -\n=== running\nzookeeper\nexporter\n=== srvr\nMode: observer\n\n=== mntr\nzk_peer_state\tobserving - broadcast\n\n=== metrics\nHTTP/1.0 200 OK\r\n\r\nzk_up 1\n";
        let s = parse_inspect(out).unwrap();
        assert_eq!(s.file("zoo.cfg"), Some("tickTime=2000\n"));
        assert_eq!(s.file("docker-compose.yaml"), None);
        assert!(s.zookeeper_running());
        assert_eq!(s.running, ["zookeeper", "exporter"]);
        assert!(s.health.healthy());
        assert_eq!(
            s.resolved,
            BTreeMap::from([
                ("zk0.lb.test".to_string(), Some("198.18.0.11".to_string())),
                ("zk1.lb.test".to_string(), None)
            ])
        );
    }
}
