//! What one observer host needs, decided without touching it: the files the code renders against
//! what was read from the host (a plain value, [`Observed`]), and the host's state as `status` and
//! `drift` show it. No IO: the caller reads the host and acts on the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::host_files::{
    HostFiles, COMPOSE_FILE, EXPORTER_SERVICE, ZOOKEEPER_SERVICE, ZOO_CFG_FILE,
};
use crate::metrics::Metrics;

/// The files this tool manages on a host, in the order they are written.
pub const FILES: [&str; 2] = [ZOO_CFG_FILE, COMPOSE_FILE];

/// What the health probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `Mode:` from srvr (`observer`), or what was answered instead.
    pub mode: Option<String>,
    /// `zk_peer_state` from mntr (`observing - broadcast` when synced).
    pub peer_state: Option<String>,
    /// Whether the exporter served ZooKeeper metrics (the health gate scrapes), or answered at all
    /// (reads do not scrape).
    pub exporter: bool,
    /// Why the probe did not pass, or what it saw, for reports.
    pub detail: String,
    /// What the running ZooKeeper says of its configuration (the `conf` four-letter word), asked
    /// only while it observes; `None` otherwise. Compared with zoo.cfg ([`not_loaded`]): a file
    /// written but not loaded.
    #[serde(skip)]
    pub conf: Option<String>,
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

/// A host as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Each managed file's contents; `None` when the host has no such file.
    pub files: BTreeMap<String, Option<String>>,
    /// The compose services running.
    pub running: BTreeSet<String>,
    pub health: Health,
    /// The DNS names the deployed zoo.cfg points at, and what each resolved to on the host
    /// (`None`: it does not resolve).
    pub resolved: BTreeMap<String, Option<String>>,
    /// Managed files in whose place the host has a directory (docker creates one for a missing
    /// short-syntax bind source). Their entry in `files` is `None`.
    pub directories: BTreeSet<String>,
    /// When the host does not observe: whether a connection from it to each load balancer's
    /// election port (`host:port` of the deployed zoo.cfg) opens. Empty when it observes.
    pub reach: BTreeMap<String, Reach>,
    /// The drift key's access as installed.
    pub drift_access: DriftAccess,
    /// Managed files in whose place the host has a symbolic link (name -> target): never read,
    /// never written through.
    pub symlinks: BTreeMap<String, String>,
    /// Compose or `.env` files of other names in the deploy directory (compose is always run on
    /// the managed compose file alone, but a hand-placed override is drift).
    pub stray: Vec<String>,
    /// The host ran the drift key's forced read-only command instead of the script asked for:
    /// this connection authenticated with the drift key, which can change nothing.
    pub forced_command: bool,
    /// The deploy directory with its symbolic links resolved (what compose v2 records as a
    /// project's working directory); `None` when it does not exist.
    pub deploy_dir_resolved: Option<String>,
    /// What `data/myid` says (the official image writes it from `ZOO_MY_ID` only when it is
    /// missing); `None` when there is none.
    pub myid: Option<String>,
    /// Lines of ZooKeeper's log that name a state it cannot leave by itself ("My id N not in the
    /// peer list", "Leaders epoch, X is less than accepted epoch, Y"), read only when it does not
    /// observe.
    pub log_signs: Vec<String>,
    /// The deployment's marker file (where it came from: commit, time, operator), as read;
    /// `None` when there is none.
    pub deployed: Option<String>,
    /// Each secret file's SHA-256 as the host computes it (`None`: absent; never the contents).
    pub secrets: BTreeMap<String, Option<String>>,
    /// Which of the deploy directory's data directories (`data`, `datalog`) exist.
    pub data_dirs: Vec<String>,
    /// Every running container this tool made on the host, whatever its deploy directory:
    /// (the observer it runs for, its compose working directory). Read by drift only (it costs a
    /// docker CLI call); empty otherwise.
    pub containers: Vec<(String, String)>,
    /// The certificates of the deployed key and trust stores (`keystore`, `truststore`) as keytool
    /// in the running ZooKeeper container reads them, or why they could not be read. Drift only;
    /// empty without a key store.
    pub certificates: BTreeMap<String, Result<Vec<crate::tls::Certificate>, String>>,
    /// What each participant's election port (`host:port` of the deployed zoo.cfg) answered to a
    /// TLS handshake from the host. Drift only.
    pub election_tls: BTreeMap<String, crate::tls::ElectionAnswer>,
}

/// What retiring an observer's host still needs, from what was read (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retirement {
    /// Its containers run: stop and remove them (`compose down`).
    pub stop_containers: bool,
    /// Its compose file is there as a regular file (`compose down` can read it; otherwise the
    /// containers are removed by their labels alone).
    pub compose_file: bool,
    /// The tool's files still there.
    pub files: Vec<String>,
    /// Its data directories, to wipe (`RetiredData::Wipe`); empty when kept or gone.
    pub wipe: Vec<String>,
    /// Its data directories, kept (`RetiredData::Keep`).
    pub keep: Vec<String>,
    /// The drift key's line or command is still there: revoke it.
    pub revoke_drift_key: bool,
}

impl Retirement {
    /// Whether anything is left to do (false: retired).
    pub fn needed(&self) -> bool {
        self.stop_containers
            || !self.files.is_empty()
            || !self.wipe.is_empty()
            || self.revoke_drift_key
    }

    /// Each step still to take, in order, for plans and reports.
    pub fn steps(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.stop_containers {
            out.push("stop and remove its containers".to_string());
        }
        if self.revoke_drift_key {
            out.push("revoke the drift key".to_string());
        }
        if !self.files.is_empty() {
            out.push(format!("remove {}", self.files.join(", ")));
        }
        if !self.wipe.is_empty() {
            out.push(format!("wipe {}", self.wipe.join(", ")));
        }
        if !self.keep.is_empty() && self.needed() {
            out.push(format!("keep {}", self.keep.join(", ")));
        }
        out
    }
}

/// What retiring the host read as `observed` needs, its data kept or wiped as `data` says.
pub fn retirement(observed: &Observed, data: crate::observer::RetiredData) -> Retirement {
    let files = FILES
        .iter()
        .filter(|f| {
            observed.file(f).is_some()
                || observed.directories.contains(**f)
                || observed.symlinks.contains_key(**f)
        })
        .map(|f| f.to_string())
        .chain(
            observed
                .secrets
                .iter()
                .filter(|(_, d)| d.is_some())
                .map(|(n, _)| n.clone()),
        )
        .collect();
    let (wipe, keep) = match data {
        crate::observer::RetiredData::Wipe => (observed.data_dirs.clone(), vec![]),
        crate::observer::RetiredData::Keep => (vec![], observed.data_dirs.clone()),
    };
    Retirement {
        stop_containers: !observed.running.is_empty(),
        compose_file: observed.file(COMPOSE_FILE).is_some(),
        files,
        wipe,
        keep,
        revoke_drift_key: observed.drift_access.any(),
    }
}

/// The drift key's way into a host: its forced read-only command and its `authorized_keys`
/// lines. Desired: the command and the one line. As read: the command's digest computed on the
/// host, who owns it and every directory above it, and every line for the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftAccess {
    /// `sha256:<hex>` of the installed command as the host computed it (or `symlink`); `None`:
    /// not installed. Desired: the digest of `command`.
    pub digest: Option<String>,
    /// Owner and mode of the command and of every directory above it, as read.
    pub owners: Vec<Owner>,
    /// The user the host read ran as (who may own the command besides root).
    pub login_uid: Option<u32>,
    /// The `authorized_keys` lines for the drift key (carrying the key or its marker), in order.
    pub lines: Vec<String>,
    /// The command itself (desired side only).
    pub command: String,
}

/// Owner and mode of a path, as `stat` reports them (`0 755 /var/lib`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    /// Octal permission digits (`755`, `1777`).
    pub mode: String,
    pub path: String,
}

impl Owner {
    /// Whether only root or `login_uid` can change it: owned by one of them, and neither
    /// group- nor other-writable unless sticky (in a sticky directory such as /tmp nobody can
    /// replace what another owns).
    pub fn safe(&self, login_uid: Option<u32>) -> bool {
        let digits: Vec<u32> = self.mode.chars().filter_map(|c| c.to_digit(8)).collect();
        let writable = |d: Option<&u32>| d.is_some_and(|d| d & 2 != 0);
        let n = digits.len();
        let sticky = n == 4 && digits[0] & 1 != 0;
        let group = n.checked_sub(2).and_then(|i| digits.get(i));
        let other = digits.last();
        (self.uid == 0 || Some(self.uid) == login_uid)
            && (sticky || (!writable(group) && !writable(other)))
    }
}

impl DriftAccess {
    /// Whether `installed` (as read) is this, so that nothing needs writing: the same command by
    /// the host's own digest, changeable by nobody else, and the one line.
    pub fn installed_as(&self, installed: &DriftAccess) -> bool {
        self.problems_in(installed).is_empty()
    }

    /// What is wrong with `installed` (as read), against this (desired), in words.
    pub fn problems_in(&self, installed: &DriftAccess) -> Vec<String> {
        let mut out = Vec::new();
        match installed.digest.as_deref() {
            None => out.push("its read-only command is not installed".to_string()),
            Some("symlink") => out.push(
                "its read-only command is a symbolic link (not followed, not trusted)".to_string(),
            ),
            Some(d) if Some(d) != self.digest.as_deref() => out.push(format!(
                "its read-only command was changed on the host ({d}; the code's is {})",
                self.digest.as_deref().unwrap_or("?")
            )),
            Some(_) => {}
        }
        for o in installed
            .owners
            .iter()
            .filter(|o| !o.safe(installed.login_uid))
        {
            out.push(format!(
                "{} (uid {}, mode {}) can be changed by others than root{}: they could change what the drift key runs",
                o.path,
                o.uid,
                o.mode,
                installed
                    .login_uid
                    .filter(|u| *u != 0)
                    .map(|u| format!(" and uid {u}"))
                    .unwrap_or_default()
            ));
        }
        let wanted = self.lines.first();
        if wanted.is_some_and(|w| !installed.lines.contains(w)) {
            out.push("its restricted authorized_keys line is missing".to_string());
        }
        for l in installed.lines.iter().filter(|l| Some(*l) != wanted) {
            out.push(format!(
                "another authorized_keys line for the drift key: `{l}` (sshd uses the first line that matches a key: the drift key may not be restricted to the read-only command)"
            ));
        }
        out
    }

    /// Whether anything of a drift key's access is on the host (for revoking it when the code
    /// has no drift key).
    pub fn any(&self) -> bool {
        self.digest.is_some() || !self.lines.is_empty()
    }
}

/// Whether a TCP connection from a host opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Ok,
    /// Actively refused (a reset: nothing listens, or a firewall rejects).
    Refused,
    /// No answer (a firewall or security group drops it).
    Timeout,
}

impl Reach {
    /// The word the read script prints (`ok`, `refused`, `timeout`).
    pub fn parse(word: &str) -> Option<Reach> {
        match word {
            "ok" => Some(Reach::Ok),
            "refused" => Some(Reach::Refused),
            "timeout" => Some(Reach::Timeout),
            _ => None,
        }
    }

    /// For reports: `no answer within 3 s`, `refused`.
    pub fn describe(self) -> &'static str {
        match self {
            Reach::Ok => "ok",
            Reach::Refused => "refused",
            Reach::Timeout => "no answer within 3 s",
        }
    }
}

impl Observed {
    /// The load balancers this host cannot open a connection to, with why.
    pub fn unreachable_load_balancers(&self) -> Vec<(&str, Reach)> {
        self.reach
            .iter()
            .filter(|(_, r)| **r != Reach::Ok)
            .map(|(t, r)| (t.as_str(), *r))
            .collect()
    }
}

impl Observed {
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).and_then(|f| f.as_deref())
    }

    /// Whether the containers the host needs run: ZooKeeper, and the exporter when there is one.
    pub fn containers_running(&self, metrics: &Metrics) -> bool {
        self.running.contains(ZOOKEEPER_SERVICE)
            && (!matches!(metrics, Metrics::Exporter { .. })
                || self.running.contains(EXPORTER_SERVICE))
    }

    /// The names of the deployed zoo.cfg that do not resolve on the host.
    pub fn unresolved(&self) -> Vec<&str> {
        self.resolved
            .iter()
            .filter(|(_, a)| a.is_none())
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub name: &'static str,
    pub desired: String,
    /// What the host has now (`None`: no such file).
    pub deployed: Option<String>,
}

/// One secret file to write: its name and digests (what the host has, what it gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChange {
    pub name: &'static str,
    pub deployed_sha256: Option<String>,
    pub desired_sha256: String,
}

/// The secret files of `desired` whose digest on the host differs. When the deploying side did
/// not read them (`desired.secret_sha256` has no digest: drift, which holds no key material),
/// only a file absent from the host is a change (`desired_sha256` empty: not known here).
pub fn secret_changes(desired: &HostFiles, observed: &Observed) -> Vec<SecretChange> {
    desired
        .secrets
        .iter()
        .filter_map(|f| {
            let have = observed.secrets.get(f.name).cloned().flatten();
            let want = match desired.secret_sha256.get(f.name) {
                Some(want) => want.clone(),
                None if have.is_none() => String::new(),
                None => return None,
            };
            (have.as_ref() != Some(&want)).then_some(SecretChange {
                name: f.name,
                deployed_sha256: have,
                desired_sha256: want,
            })
        })
        .collect()
}

/// An update a host needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The files to write, in [`FILES`] order; empty when only the containers are down.
    pub files: Vec<FileChange>,
    /// The secret files to write (their bytes are the deploying side's), shown by digest.
    pub secrets: Vec<SecretChange>,
    /// The host's files before the update (what a rollback goes back to).
    pub deployed_before: BTreeMap<String, Option<String>>,
    /// Files in whose place a directory stands; writing the file replaces an empty one.
    pub directories: Vec<&'static str>,
    /// Files in whose place a symbolic link stands (name, target): nothing is written through
    /// one; the host is refused until someone moves it away.
    pub symlinks: Vec<(&'static str, String)>,
    /// The containers the host needs were not all running.
    pub containers_down: bool,
    /// ZooKeeper's container was running (a new zoo.cfg then needs it restarted; one compose
    /// starts reads the new file anyway).
    pub zookeeper_running: bool,
    /// Where the running ZooKeeper's configuration differs from the deployed zoo.cfg, which is
    /// as desired (`syncLimit: running 5, zoo.cfg 10`): written, but not loaded. Empty when a
    /// file is to be written (its restart loads it) or nothing could be compared.
    pub not_loaded: Vec<String>,
    /// Why the observer's data directories are set aside for empty ones (it resyncs the whole
    /// tree from the leader; an observer holds nothing of its own): its `data/myid` names another
    /// id than the inventory's, or `deploy --reset-data` asked. Put back if the host fails.
    pub reset_data: Option<String>,
}

/// How the containers take an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Only zoo.cfg is new (or not loaded): `docker restart` of ZooKeeper's container. Compose is
    /// not run and no container is recreated; the restarted container mounts the new file.
    ZooKeeper,
    /// The compose file is new, or containers are down: `compose up -d`, which recreates what
    /// changed and starts what is down.
    Compose,
    /// Both: `compose up -d`, then ZooKeeper restarted if compose kept its running container
    /// (its service unchanged, its zoo.cfg new).
    ComposeThenZooKeeper,
}

impl Update {
    pub fn changed(&self) -> Vec<&'static str> {
        self.files
            .iter()
            .map(|f| f.name)
            .chain(self.secrets.iter().map(|s| s.name))
            .collect()
    }

    /// `zoo.cfg, docker-compose.yaml changed`, or else `containers not running` and/or `zoo.cfg
    /// not loaded (...)`, and which files a directory stands in place of.
    pub fn reason(&self) -> String {
        let mut reasons = Vec::new();
        if !self.changed().is_empty() {
            reasons.push(format!("{} changed", self.changed().join(", ")));
        }
        if self.changed().is_empty() && self.containers_down {
            reasons.push("containers not running".to_string());
        }
        if !self.not_loaded.is_empty() {
            reasons.push(format!(
                "{ZOO_CFG_FILE} not loaded ({})",
                self.not_loaded.join(", ")
            ));
        }
        if let Some(why) = &self.reset_data {
            reasons.push(format!("data reset: {why}"));
        }
        let mut reason = reasons.join("; ");
        if !self.directories.is_empty() {
            reason.push_str(&format!(
                "; a directory stands where {} belongs",
                self.directories.join(", ")
            ));
        }
        for (name, target) in &self.symlinks {
            reason.push_str(&format!("; {name} is a symbolic link to {target}"));
        }
        reason
    }

    /// Why nothing may be written on this host, if so: a symbolic link where a managed file
    /// belongs (writing or restoring through it would change what it points at).
    pub fn refusal(&self) -> Option<String> {
        if self.symlinks.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .symlinks
            .iter()
            .map(|(n, t)| format!("{n} -> {t}"))
            .collect();
        Some(format!(
            "nothing written: a symbolic link stands where a managed file belongs ({}); it is never \
             followed: move it away and deploy again",
            list.join(", ")
        ))
    }

    /// How the containers take this update.
    pub fn restart(&self) -> Restart {
        let changed = self.changed();
        // ZooKeeper reads its key and trust stores when it starts.
        let zookeeper = changed.contains(&ZOO_CFG_FILE)
            || !self.secrets.is_empty()
            || !self.not_loaded.is_empty()
            || self.reset_data.is_some();
        restart_for(
            zookeeper && self.zookeeper_running,
            changed.contains(&COMPOSE_FILE) || self.containers_down,
        )
    }

    /// Whether this is the host's first deployment (it had none of the files).
    pub fn first_deployment(&self) -> bool {
        self.deployed_before.values().all(Option::is_none)
    }
}

/// How the containers take a new zoo.cfg (`zoo_cfg`) and a new compose file or stopped
/// containers (`compose`); a rollback asks the same for the files it put back.
pub fn restart_for(zoo_cfg: bool, compose: bool) -> Restart {
    match (zoo_cfg, compose) {
        (true, true) => Restart::ComposeThenZooKeeper,
        (true, false) => Restart::ZooKeeper,
        (false, _) => Restart::Compose,
    }
}

/// Where the configuration a running ZooKeeper reports (`conf`) differs from `zoo_cfg`, for every
/// key `conf` shows that the file sets: the timing limits, the client port and connection limits,
/// the server id (the file's own `:observer` line), the peer type and every `server.N` line.
/// zoo.cfg keys `conf` does not report (the whitelist, autopurge, keepalive, ...) cannot be
/// compared. Empty when `conf` is not a configuration (ZooKeeper not serving, or the word not
/// whitelisted).
pub fn not_loaded(zoo_cfg: &str, conf: &str) -> Vec<String> {
    let pairs = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let (file, running) = (pairs(zoo_cfg), pairs(conf));
    if !running.contains_key("serverId") {
        return vec![];
    }
    let mut out = Vec::new();
    let mut differs = |key: &str, file: Option<String>, running: Option<String>| {
        if file != running {
            out.push(format!(
                "{key}: running {}, {ZOO_CFG_FILE} {}",
                running.as_deref().unwrap_or("none"),
                file.as_deref().unwrap_or("none")
            ));
        }
    };
    for key in [
        "tickTime",
        "initLimit",
        "syncLimit",
        "clientPort",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
    ] {
        if let Some(want) = file.get(key) {
            differs(key, Some(want.clone()), running.get(key).cloned());
        }
    }
    // `conf` prints the peer type as its ordinal (0 participant, 1 observer).
    if let Some(want) = file.get("peerType") {
        let running = running.get("peerType").map(|t| match t.as_str() {
            "0" => "participant".to_string(),
            "1" => "observer".to_string(),
            other => other.to_string(),
        });
        differs("peerType", Some(want.clone()), running);
    }
    // Server lines, each as `host:quorum:election:role` with an address in one spelling (`conf`
    // prints Java's long IPv6 form, zoo.cfg Rust's short one, with brackets) and without a
    // `;client` part. When the ensemble's configuration version is not 0 (dynamic
    // reconfiguration, which validation refuses) the observer runs the leader's membership, not
    // its file's: the lines are not compared.
    let servers = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| k.starts_with("server."))
            .map(|(k, v)| (k.clone(), normal_server(v)))
            .collect()
    };
    let (want, have) = (servers(&file), servers(&running));
    let static_membership = running.get("version").is_none_or(|v| v.trim() == "0");
    if !want.is_empty() && static_membership {
        let own = want
            .iter()
            .find(|(_, v)| v.ends_with(":observer"))
            .map(|(k, _)| k.trim_start_matches("server.").to_string());
        if let Some(id) = own {
            differs("serverId", Some(id), running.get("serverId").cloned());
        }
        for key in want.keys().chain(have.keys()).collect::<BTreeSet<_>>() {
            differs(key, want.get(key).cloned(), have.get(key).cloned());
        }
    }
    out
}

/// A `server.N` value (`host:quorum:election[:role][;client]`) in one spelling: the client part
/// dropped, brackets dropped, an address written as Rust writes it.
fn normal_server(value: &str) -> String {
    let value = value.split(';').next().unwrap_or(value).trim();
    let mut parts: Vec<&str> = value.rsplitn(4, ':').collect();
    parts.reverse();
    // [host, quorum, election, role] when a role is given, else the host keeps one colon too many
    // only for IPv6, which is always bracketed in zoo.cfg and never in `conf`'s role-less form.
    let (host, rest) = match parts.as_slice() {
        [host, q, e, role] if matches!(*role, "participant" | "observer") => {
            (*host, format!("{q}:{e}:{role}"))
        }
        _ => return value.replace(['[', ']'], ""),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host
        .parse::<std::net::IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| host.to_string());
    format!("{host}:{rest}")
}

/// What a host needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPlan {
    /// Files as desired and containers running: nothing to write, nothing to restart.
    InSync,
    Update(Update),
}

/// The id of a zoo.cfg's own observer line (`server.N=...:observer`): the observer's myid.
pub fn own_id(zoo_cfg: &str) -> Option<String> {
    zoo_cfg.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        let id = key.strip_prefix("server.")?;
        value
            .split(';')
            .next()?
            .trim()
            .ends_with(":observer")
            .then(|| id.trim().to_string())
    })
}

/// Why a host's data must be set aside: its `data/myid` names another id than `zoo_cfg`'s own
/// line (ZooKeeper takes the file's id and stops: "My id N not in the peer list").
pub fn stale_myid(zoo_cfg: &str, observed: &Observed) -> Option<String> {
    let on_disk = observed.myid.as_deref()?.trim();
    let wanted = own_id(zoo_cfg)?;
    (on_disk != wanted).then(|| {
        format!(
            "data/myid says {on_disk}, the inventory {wanted} (ZooKeeper would take {on_disk} and stop: \
             \"My id {on_disk} not in the peer list\")"
        )
    })
}

/// The plan of a host whose desired files are `desired` and whose state is `observed`; with
/// `reset_asked` (`deploy --reset-data`), its data is reset whatever else it needs.
pub fn plan_with(
    desired: &HostFiles,
    observed: &Observed,
    metrics: &Metrics,
    reset_asked: bool,
) -> HostPlan {
    let reset = stale_myid(&desired.zoo_cfg, observed).or_else(|| {
        reset_asked
            .then(|| "asked (--reset-data): it resyncs the whole tree from the leader".into())
    });
    match plan(desired, observed, metrics) {
        HostPlan::Update(mut u) => {
            u.reset_data = reset;
            HostPlan::Update(u)
        }
        HostPlan::InSync => match reset {
            None => HostPlan::InSync,
            Some(why) => HostPlan::Update(Update {
                reset_data: Some(why),
                ..update(vec![], desired, observed, metrics)
            }),
        },
    }
}

/// The plan of a host whose desired files are `desired` and whose state is `observed`.
pub fn plan(desired: &HostFiles, observed: &Observed, metrics: &Metrics) -> HostPlan {
    let files: Vec<FileChange> = desired
        .files()
        .into_iter()
        .filter(|(name, want)| observed.file(name) != Some(*want))
        .map(|(name, want)| FileChange {
            name,
            desired: want.to_string(),
            deployed: observed.file(name).map(str::to_string),
        })
        .collect();
    let containers_down = !observed.containers_running(metrics);
    // zoo.cfg is as desired: did the running ZooKeeper load it?
    let zoo_cfg_changed = files.iter().any(|f| f.name == ZOO_CFG_FILE);
    let not_loaded = match (zoo_cfg_changed, &observed.health.conf) {
        (false, Some(conf)) => not_loaded(&desired.zoo_cfg, conf),
        _ => vec![],
    };
    let secrets = secret_changes(desired, observed);
    if files.is_empty() && secrets.is_empty() && !containers_down && not_loaded.is_empty() {
        return HostPlan::InSync;
    }
    HostPlan::Update(Update {
        secrets,
        ..update(files, desired, observed, metrics)
    })
}

/// The update writing `files` on the host read as `observed`.
fn update(
    files: Vec<FileChange>,
    desired: &HostFiles,
    observed: &Observed,
    metrics: &Metrics,
) -> Update {
    let containers_down = !observed.containers_running(metrics);
    let zoo_cfg_changed = files.iter().any(|f| f.name == ZOO_CFG_FILE);
    let not_loaded = match (zoo_cfg_changed, &observed.health.conf) {
        (false, Some(conf)) => not_loaded(&desired.zoo_cfg, conf),
        _ => vec![],
    };
    Update {
        files,
        secrets: vec![],
        deployed_before: FILES
            .iter()
            .map(|n| (n.to_string(), observed.file(n).map(str::to_string)))
            .collect(),
        directories: FILES
            .into_iter()
            .filter(|n| observed.directories.contains(*n))
            .collect(),
        symlinks: FILES
            .into_iter()
            .filter_map(|n| Some((n, observed.symlinks.get(n)?.clone())))
            .collect(),
        containers_down,
        zookeeper_running: observed.running.contains(ZOOKEEPER_SERVICE),
        not_loaded,
        reset_data: None,
    }
}

/// A host's state as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub files_in_sync: bool,
    pub out_of_sync_files: Vec<&'static str>,
    pub containers_running: bool,
    pub mode: Option<String>,
    pub synced: bool,
    pub exporter: bool,
    pub detail: String,
}

impl Status {
    pub fn good(&self) -> bool {
        self.files_in_sync && self.containers_running && self.synced && self.exporter
    }
}

pub fn status(desired: &HostFiles, observed: &Observed, metrics: &Metrics) -> Status {
    let out_of_sync_files: Vec<&'static str> = desired
        .files()
        .into_iter()
        .filter(|(name, want)| observed.file(name) != Some(*want))
        .map(|(name, _)| name)
        .collect();
    Status {
        files_in_sync: out_of_sync_files.is_empty(),
        out_of_sync_files,
        containers_running: observed.containers_running(metrics),
        mode: observed.health.mode.clone(),
        synced: observed.health.observing(),
        exporter: observed.health.exporter,
        detail: {
            let mut d = String::new();
            if !observed.directories.is_empty() {
                let names: Vec<&str> = observed.directories.iter().map(String::as_str).collect();
                d.push_str(&format!(
                    "a directory stands where {} belongs; ",
                    names.join(", ")
                ));
            }
            for (n, t) in &observed.symlinks {
                d.push_str(&format!("{n} is a symbolic link to {t}; "));
            }
            if !observed.stray.is_empty() {
                d.push_str(&format!(
                    "other compose files in the deploy directory: {}; ",
                    observed.stray.join(", ")
                ));
            }
            d.push_str(&observed.health.detail);
            d
        },
    }
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

/// The `server.N` lines of a zoo.cfg that name a host by DNS name, not by address.
pub fn zoo_cfg_names(cfg: &str) -> Vec<(u32, String)> {
    zoo_cfg_servers(cfg)
        .into_iter()
        .filter(|(_, h)| h.parse::<std::net::IpAddr>().is_err())
        .collect()
}

#[cfg(test)]
mod tests;
