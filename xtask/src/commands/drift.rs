//! `cargo xtask drift`: read-only comparison of the live cluster and hosts with the code. Exit 0
//! clean, 2 drift, 1 error. Needs no write right: the cluster is planned from reads
//! ([`Planner::Read`]). Skips (exit 0, says so) while a deploy holds the lock, so that a
//! half-finished deploy is never reported as drift.

use anyhow::Result;
use hosts::host_files::ZOO_CFG_FILE;
use hosts::host_plan::{zoo_cfg_servers, HostPlan};
use hosts::ServerAddress;
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::cli::DriftArgs;
use crate::cluster::lb::{self, Addresses};
use crate::cluster::plan::{self, Action, Planner};
use crate::cluster::{block_on, Cluster, API_BUDGET};
use crate::output::report::{update_diff, Report};
use crate::{environments, fleet::hostops, lock, output, output::exit};

/// The version of the JSON report's shape (`docs/drift-report.md`). Raised when a field is removed
/// or changes meaning; adding a field or a finding kind does not raise it.
pub const FORMAT_VERSION: u32 = 1;

/// Every kind of finding drift reports: the report's contract, each documented in
/// `docs/drift-report.md` (a test holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    EnsembleChanged,
    ClusterMissing,
    ClusterDeleting,
    ClusterChanged,
    ClusterExtra,
    ClusterConflict,
    LoadBalancerPending,
    AddressMismatch,
    HostUnreachable,
    HostFiles,
    HostExtraFiles,
    HostContainers,
    ConfigNotLoaded,
    StaleMyid,
    EpochBehind,
    HostDns,
    DriftAccess,
    RetiredRunning,
    UnlistedObserver,
    LoadBalancerUnreachable,
    ObserverNotObserving,
    ExporterDown,
    QuorumCertificate,
    EnsembleNotTls,
}

impl FindingKind {
    pub const ALL: [FindingKind; 24] = [
        FindingKind::EnsembleChanged,
        FindingKind::ClusterMissing,
        FindingKind::ClusterDeleting,
        FindingKind::ClusterChanged,
        FindingKind::ClusterExtra,
        FindingKind::ClusterConflict,
        FindingKind::LoadBalancerPending,
        FindingKind::AddressMismatch,
        FindingKind::HostUnreachable,
        FindingKind::HostFiles,
        FindingKind::HostExtraFiles,
        FindingKind::HostContainers,
        FindingKind::ConfigNotLoaded,
        FindingKind::StaleMyid,
        FindingKind::EpochBehind,
        FindingKind::HostDns,
        FindingKind::DriftAccess,
        FindingKind::RetiredRunning,
        FindingKind::UnlistedObserver,
        FindingKind::LoadBalancerUnreachable,
        FindingKind::ObserverNotObserving,
        FindingKind::ExporterDown,
        FindingKind::QuorumCertificate,
        FindingKind::EnsembleNotTls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::EnsembleChanged => "ensemble-changed",
            FindingKind::ClusterMissing => "cluster-missing",
            FindingKind::ClusterDeleting => "cluster-deleting",
            FindingKind::ClusterChanged => "cluster-changed",
            FindingKind::ClusterExtra => "cluster-extra",
            FindingKind::ClusterConflict => "cluster-conflict",
            FindingKind::LoadBalancerPending => "load-balancer-pending",
            FindingKind::AddressMismatch => "address-mismatch",
            FindingKind::HostUnreachable => "host-unreachable",
            FindingKind::HostFiles => "host-files",
            FindingKind::HostExtraFiles => "host-extra-files",
            FindingKind::HostContainers => "host-containers",
            FindingKind::ConfigNotLoaded => "config-not-loaded",
            FindingKind::StaleMyid => "stale-myid",
            FindingKind::EpochBehind => "epoch-behind",
            FindingKind::HostDns => "host-dns",
            FindingKind::DriftAccess => "drift-access",
            FindingKind::RetiredRunning => "retired-running",
            FindingKind::UnlistedObserver => "unlisted-observer",
            FindingKind::LoadBalancerUnreachable => "load-balancer-unreachable",
            FindingKind::ObserverNotObserving => "observer-not-observing",
            FindingKind::ExporterDown => "exporter-down",
            FindingKind::QuorumCertificate => "quorum-certificate",
            FindingKind::EnsembleNotTls => "ensemble-not-tls",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub object: String,
    pub detail: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// The commit that last deployed the object or host (its annotation or marker file), when
    /// one is recorded: where the live state came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_from: Option<String>,
}

fn finding(kind: FindingKind, object: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        object: object.into(),
        detail: detail.into(),
        diff: String::new(),
        deployed_from: None,
    }
}

/// How the check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftStatus {
    /// Everything as the code says (exit 0).
    Clean,
    /// At least one finding (exit 2).
    Drift,
    /// Not checked: a deploy held the lock for the whole wait (exit 1).
    Skipped,
    /// Not checked, or not wholly: an error (exit 1), in `error`.
    Error,
}

/// The drift report: the same document on stdout with `--output json` whatever the outcome, an
/// error included.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub format_version: u32,
    pub environment: String,
    /// Whether the environment's observers speak quorum TLS (`fleet.quorum`).
    pub quorum_tls: bool,
    pub status: DriftStatus,
    /// `true` or `false` once checked; `null` when skipped or failed.
    pub clean: Option<bool>,
    /// Why the check did not run (a deploy held the lock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What failed, with its causes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    /// Which commit deployed each object of this tool and each observer host read.
    pub deployed: Vec<crate::provenance::Record>,
    /// What each participant's election port answered to a TLS handshake from an observer host:
    /// whether the ensemble speaks quorum TLS, and its certificate.
    pub ensemble_tls: Vec<ElectionProbe>,
}

/// One participant's election port as a TLS handshake from an observer host found it.
#[derive(Debug, Clone, Serialize)]
pub struct ElectionProbe {
    /// `server.N`.
    pub participant: String,
    /// `host:port`, as the observers' zoo.cfg names it.
    pub address: String,
    /// The observer host the handshake came from.
    pub from: String,
    #[serde(flatten)]
    pub answer: hosts::tls::ElectionAnswer,
}

impl DriftReport {
    fn checked(environment: &str, findings: Vec<Finding>) -> DriftReport {
        DriftReport {
            format_version: FORMAT_VERSION,
            environment: environment.to_string(),
            quorum_tls: false,
            status: if findings.is_empty() {
                DriftStatus::Clean
            } else {
                DriftStatus::Drift
            },
            clean: Some(findings.is_empty()),
            skipped: None,
            error: None,
            findings,
            deployed: vec![],
            ensemble_tls: vec![],
        }
    }

    fn skipped(environment: &str, why: String) -> DriftReport {
        DriftReport {
            status: DriftStatus::Skipped,
            clean: None,
            skipped: Some(why),
            ..DriftReport::checked(environment, vec![])
        }
    }

    /// The report of a check that failed: `environment` as selected (empty when none could be).
    pub fn failed(environment: &str, e: &anyhow::Error) -> DriftReport {
        DriftReport {
            status: DriftStatus::Error,
            clean: None,
            error: Some(format!("{e:#}")),
            ..DriftReport::checked(environment, vec![])
        }
    }
}

impl Report for DriftReport {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a drift report serializes")
    }

    fn print(&self) {
        if let Some(msg) = &self.error {
            output::error_message(msg);
            return;
        }
        if let Some(msg) = &self.skipped {
            output::warning(&format!("skipped: {msg}"));
            return;
        }
        for f in &self.findings {
            let from = match &f.deployed_from {
                Some(c) => format!(
                    " (last deployed from {})",
                    crate::provenance::short(Some(c))
                ),
                None => String::new(),
            };
            output::change(
                '!',
                f.kind.as_str(),
                &format!("{}: {}{from}", f.object, f.detail),
            );
            output::diff(&f.diff);
        }
        let tls: Vec<&str> = self
            .ensemble_tls
            .iter()
            .filter(|p| matches!(p.answer, hosts::tls::ElectionAnswer::Tls { .. }))
            .map(|p| p.participant.as_str())
            .collect();
        if !tls.is_empty() && !self.quorum_tls {
            output::line(&format!(
                "note: the ensemble's election ports answer TLS ({}): the observers can move to quorum TLS \
                 (docs/networking.md, \"Moving a running ensemble to TLS\")",
                tls.join(", ")
            ));
        }
        output::line(&if self.findings.is_empty() {
            format!("no drift in {}", self.environment)
        } else {
            format!(
                "drift in {}: {} finding(s)",
                self.environment,
                self.findings.len()
            )
        });
    }

    fn exit_code(&self) -> u8 {
        match self.status {
            DriftStatus::Clean => exit::OK,
            DriftStatus::Drift => exit::CHANGES,
            DriftStatus::Skipped | DriftStatus::Error => exit::ERROR,
        }
    }
}

/// `cargo xtask drift`: always a report, an error included (exit 1), so that a scheduled job
/// has a document to keep whatever happened.
pub fn run(args: &DriftArgs) -> DriftReport {
    let env = match environments::cluster_env(&args.selection, &args.cluster) {
        Ok(env) => env,
        Err(e) => {
            let name = args.selection.env.clone().unwrap_or_default();
            return DriftReport::failed(&name, &e);
        }
    };
    let checked = block_on(async {
        let cluster = Cluster::connect(&env, &args.cluster, API_BUDGET).await?;
        drift_waiting(
            &cluster,
            &env,
            &args.ssh,
            args.lock_wait,
            args.certificate_warning,
        )
        .await
    });
    checked.unwrap_or_else(|e| DriftReport::failed(&env.name, &e))
}

/// The drift check of `env` (the tests drive it in-process), without waiting for a deploy's lock.
pub async fn drift(
    cluster: &Cluster,
    env: &manifests::Environment,
    ssh: &crate::cli::SshArgs,
) -> Result<DriftReport> {
    drift_waiting(cluster, env, ssh, Duration::ZERO, CERTIFICATE_WARNING).await
}

/// The drift check of `env`. While a deploy holds the lock, a half-finished deploy would be
/// reported as drift: the check waits for the lock (polling every few seconds, up to
/// `lock_wait`), then checks; still held, it is skipped, exit 1.
pub async fn drift_waiting(
    cluster: &Cluster,
    env: &manifests::Environment,
    ssh: &crate::cli::SshArgs,
    lock_wait: Duration,
    certificate_warning: Duration,
) -> Result<DriftReport> {
    let started = Instant::now();
    loop {
        let Some(h) = lock::current(cluster, env).await? else {
            break;
        };
        let waited = started.elapsed();
        if waited >= lock_wait {
            return Ok(DriftReport::skipped(
                &env.name,
                format!(
                    "a deploy by {} holds the lock (since {}, expires {}){}: not checking for drift;                      a deploy in progress would look like drift. Run the check again once it is done                      (--lock-wait sets how long to wait)",
                    h.holder,
                    h.acquired,
                    h.expires,
                    if lock_wait.is_zero() {
                        String::new()
                    } else {
                        format!(", for all of the {:.0} s this check waited", waited.as_secs_f64())
                    }
                ),
            ));
        }
        output::progress(&format!(
            "a deploy by {} holds the lock: waiting for it ({:.0} s of at most {:.0} s)",
            h.holder,
            waited.as_secs_f64(),
            lock_wait.as_secs_f64()
        ));
        tokio::time::sleep(LOCK_POLL.min(lock_wait - waited)).await;
    }
    let reads = crate::commands::reads::read_cluster_and_hosts(
        cluster,
        env,
        ssh,
        Planner::Read,
        hostops::ReadMode::Full,
    )
    .await?;
    let mut findings = cluster_findings(&reads.plan);
    for d in crate::cluster::ensemble::differences(env, reads.ensemble.as_ref()) {
        findings.push(finding(
            FindingKind::EnsembleChanged,
            format!(
                "StatefulSet/{}/{}",
                env.ensemble.namespace, env.ensemble.statefulset
            ),
            d,
        ));
    }

    // The load balancers' addresses, and the hosts rendered from them.
    if let Err(e) = &reads.live {
        findings.push(finding(
            FindingKind::LoadBalancerPending,
            format!("Service/{}", env.ensemble.namespace),
            format!("{e:#}"),
        ));
    }
    let (source, _) = lb::source(Addresses::LiveOrRecorded, &reads.live)?;
    let files = manifests::render_host_files(env, &source)?;
    let fleet = &reads.fleet;
    for (o, why) in &fleet.unreachable {
        findings.push(finding(
            FindingKind::HostUnreachable,
            format!("host/{}", o.name),
            why,
        ));
    }
    for p in fleet.plan(env, &files) {
        let (o, observed) = (p.reached.observer, &p.reached.observed);
        let object = format!("host/{}", o.name);
        match &p.plan {
            HostPlan::Update(u) if !u.files.is_empty() => {
                let mut detail = format!("{} differ from the code", u.changed().join(", "));
                if !u.directories.is_empty() {
                    detail.push_str(&format!(
                        "; a directory stands where {} belongs",
                        u.directories.join(", ")
                    ));
                }
                for (name, target) in &u.symlinks {
                    detail.push_str(&format!(
                            "; {name} is a symbolic link to {target} (never followed; move it away and deploy)"
                        ));
                }
                let mut f = finding(FindingKind::HostFiles, &object, detail);
                f.diff = update_diff(o, u);
                findings.push(f);
            }
            HostPlan::Update(u) => {
                if u.containers_down {
                    findings.push(finding(
                        FindingKind::HostContainers,
                        &object,
                        "containers not running",
                    ));
                }
                if !u.not_loaded.is_empty() {
                    findings.push(finding(
                        FindingKind::ConfigNotLoaded,
                        &object,
                        format!(
                            "{ZOO_CFG_FILE} is as the code says, but the running ZooKeeper has not loaded it ({}): deploy restarts it",
                            u.not_loaded.join(", ")
                        ),
                    ));
                }
            }
            HostPlan::InSync => {}
        }
        // States ZooKeeper cannot leave by itself: a data/myid naming another id, an ensemble
        // rebuilt under it (its accepted epoch ahead of the new leader's).
        let desired_cfg = files
            .iter()
            .find(|(f, _)| f.name == o.name)
            .map(|(_, f)| f.zoo_cfg.as_str())
            .unwrap_or_default();
        let stale = hosts::host_plan::stale_myid(desired_cfg, observed);
        let said_stale = observed
            .log_signs
            .iter()
            .find(|l| l.contains("not in the peer list"));
        if stale.is_some() || said_stale.is_some() {
            let mut detail = stale.unwrap_or_else(|| "its data names another id".to_string());
            if let Some(line) = said_stale {
                detail.push_str(&format!("; its log: {line}"));
            }
            detail.push_str("; deploy sets its data aside so that it takes its id and resyncs");
            findings.push(finding(FindingKind::StaleMyid, &object, detail));
        }
        if let Some(line) = observed
            .log_signs
            .iter()
            .find(|l| l.contains("is less than accepted epoch"))
        {
            findings.push(finding(
                FindingKind::EpochBehind,
                &object,
                format!(
                    "it has data from an earlier ensemble (its log: {line}); it will not observe again by \
                     itself: `cargo xtask deploy --env {} --reset-data {}` sets its data aside so that it \
                     resyncs",
                    env.name, o.name
                ),
            ));
        }
        if !observed.stray.is_empty() {
            findings.push(finding(
                    FindingKind::HostExtraFiles,
                    &object,
                    format!(
                        "{} in {}: compose files or an .env this tool did not write (it runs compose on its \
                         docker-compose.yaml alone, but an operator running docker compose there would get them); \
                         remove them",
                        observed.stray.join(", "),
                        o.deploy_dir.0
                    ),
                ));
        }
        let want = hostops::drift_key(env)
            .map(|k| hostops::drift_access(o, hostops::Ports::of(env), &env.name, &k));
        let access = match &want {
            Some(w) => w.problems_in(&observed.drift_access),
            None if observed.drift_access.any() => vec![format!(
                "the drift key's access is still on the host although fleet.drift_key is unset \
                     ({} authorized_keys line(s){}); deploy revokes it",
                observed.drift_access.lines.len(),
                if observed.drift_access.digest.is_some() {
                    ", its read-only command"
                } else {
                    ""
                }
            )],
            None => vec![],
        };
        for problem in access {
            findings.push(finding(
                FindingKind::DriftAccess,
                &object,
                format!("the drift key: {problem}"),
            ));
        }
        if let (Ok(live), Some(cfg)) = (&reads.live, observed.file(ZOO_CFG_FILE)) {
            findings.extend(address_mismatches(env, &object, cfg, live));
        }
        for name in observed.unresolved() {
            findings.push(finding(
                    FindingKind::HostDns,
                    &object,
                    format!(
                        "its zoo.cfg names the load balancer {name}, which does not resolve on this host: \
                         ZooKeeper there cannot reach that participant. Fix the host's DNS (its resolv.conf, \
                         or the private DNS zone the cloud publishes load balancer names in)"
                    ),
                ));
        }
        let blocked = observed.unreachable_load_balancers();
        if !blocked.is_empty() {
            findings.push(finding(
                FindingKind::LoadBalancerUnreachable,
                &object,
                unreachable_load_balancers(env, o, &blocked),
            ));
        }
        let h = &observed.health;
        if !h.observing() {
            findings.push(finding(
                FindingKind::ObserverNotObserving,
                &object,
                &h.detail,
            ));
        } else if !h.exporter {
            findings.push(finding(FindingKind::ExporterDown, &object, &h.detail));
        }
    }
    let (tls_findings, ensemble_tls) = quorum_tls_findings(env, &reads, certificate_warning);
    findings.extend(tls_findings);
    findings.extend(retired_findings(env, &reads.retired));
    findings.extend(unlisted_observers(env, &reads));
    // Where the live state came from: the commit of each object and host, on each finding too.
    let mut deployed: Vec<crate::provenance::Record> = reads
        .plan
        .changes
        .iter()
        .filter_map(|c| {
            Some(crate::provenance::object_record(
                &c.object,
                c.live.as_ref()?,
            ))
        })
        .collect();
    deployed.extend(
        reads.fleet.reached.iter().map(|r| {
            crate::provenance::host_record(&r.observer.name, r.observed.deployed.as_deref())
        }),
    );
    for f in &mut findings {
        f.deployed_from = deployed
            .iter()
            .find(|d| d.object == f.object)
            .and_then(|d| d.commit.clone());
    }
    reads.close().await;
    Ok(DriftReport {
        deployed,
        ensemble_tls,
        quorum_tls: matches!(env.fleet.quorum, hosts::QuorumSecurity::Tls { .. }),
        ..DriftReport::checked(&env.name, findings)
    })
}

/// How long before a quorum certificate's end drift reports it (`--certificate-warning`).
pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// Quorum TLS as deployed: each observer's certificates (expired, expiring within `window`, or
/// unreadable while its ZooKeeper runs), and each participant's election port as a handshake
/// from the observer hosts found it: with a TLS environment, one that answers no TLS is a
/// finding, and so is a participant certificate near its end. Participants are reported once,
/// from the first host that reached them.
fn quorum_tls_findings(
    env: &manifests::Environment,
    reads: &crate::commands::reads::Reads<'_>,
    window: Duration,
) -> (Vec<Finding>, Vec<ElectionProbe>) {
    use hosts::tls::ElectionAnswer;
    let now = jiff::Timestamp::now();
    let tls = matches!(env.fleet.quorum, hosts::QuorumSecurity::Tls { .. });
    let mut findings = Vec::new();
    let mut probes: Vec<(u32, ElectionProbe)> = Vec::new();
    for r in &reads.fleet.reached {
        let object = format!("host/{}", r.observer.name);
        let observed = &r.observed;
        for (store, certs) in &observed.certificates {
            let what = if store == "keystore" {
                "key store"
            } else {
                "trust store"
            };
            match certs {
                Ok(certs) => {
                    for c in certs {
                        if let Some(p) = c.expiry_problem(now, window) {
                            findings.push(finding(
                                FindingKind::QuorumCertificate,
                                &object,
                                format!(
                                    "its quorum {what}'s certificate {p}: issue a new one and deploy \
                                     (it goes out host by host behind the health gate)"
                                ),
                            ));
                        }
                    }
                }
                // A stopped container says so in its own finding.
                Err(e) if observed.running.is_empty() => {
                    tracing::debug!("{object}: {what} not read: {e}")
                }
                Err(e) => findings.push(finding(
                    FindingKind::QuorumCertificate,
                    &object,
                    format!("its quorum {what} could not be read in its container: {e}"),
                )),
            }
        }
        let Some(cfg) = observed.file(ZOO_CFG_FILE) else {
            continue;
        };
        for (id, host) in zoo_cfg_servers(cfg) {
            if !env.ensemble.participants().iter().any(|p| p.id.get() == id) {
                continue;
            }
            let address = if host.contains(':') {
                format!("[{host}]:{}", env.ensemble.election_port)
            } else {
                format!("{host}:{}", env.ensemble.election_port)
            };
            let participant = format!("server.{id}");
            let Some(answer) = observed.election_tls.get(&address) else {
                continue;
            };
            // A definite answer (TLS or plaintext) from any host wins over "unreachable".
            let definite = |a: &ElectionAnswer| {
                matches!(a, ElectionAnswer::Tls { .. } | ElectionAnswer::Plaintext)
            };
            if let Some(i) = probes.iter().position(|(n, _)| *n == id) {
                if !definite(answer) || definite(&probes[i].1.answer) {
                    continue;
                }
                probes.remove(i);
            }
            probes.push((
                id,
                ElectionProbe {
                    participant,
                    address,
                    from: object.clone(),
                    answer: answer.clone(),
                },
            ));
        }
    }
    probes.sort_by_key(|(id, _)| *id);
    let probes: Vec<ElectionProbe> = probes.into_iter().map(|(_, p)| p).collect();
    if tls {
        for p in &probes {
            match &p.answer {
                ElectionAnswer::Plaintext => findings.push(finding(
                    FindingKind::EnsembleNotTls,
                    format!("StatefulSet/{}/{}", env.ensemble.namespace, env.ensemble.statefulset),
                    format!(
                        "{} at {} answers no TLS handshake (from {}): the ensemble does not speak quorum TLS \
                         there, and observers with sslQuorum=true cannot join through it. Move the ensemble \
                         to TLS (docs/networking.md, \"Moving a running ensemble to TLS\")",
                        p.participant, p.address, p.from
                    ),
                )),
                ElectionAnswer::Tls { certificate: c } => {
                    if let Some(problem) = c.expiry_problem(now, window) {
                        findings.push(finding(
                            FindingKind::QuorumCertificate,
                            format!("StatefulSet/{}/{}", env.ensemble.namespace, env.ensemble.statefulset),
                            format!(
                                "{} at {} shows the certificate {problem}: renew the ensemble's key store \
                                 (the Secret the ensemble artifact names)",
                                p.participant, p.address
                            ),
                        ));
                    }
                }
                ElectionAnswer::Unreachable | ElectionAnswer::Unknown { .. } => {}
            }
        }
    }
    (findings, probes)
}

/// How often a waiting drift check asks whether the deploy lock is free.
const LOCK_POLL: Duration = Duration::from_secs(5);

/// A retired observer still running (or with anything of the tool's left: files, the drift key),
/// and a retired host that could not be read.
fn retired_findings(
    env: &manifests::Environment,
    retired: &crate::fleet::Fleet<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (o, why) in &retired.unreachable {
        // A retirement revokes the drift key after the containers are stopped: a retired host
        // that refuses this key was retired that far (drift runs with the drift key in CI).
        if why.contains("Permission denied (publickey") {
            continue;
        }
        out.push(finding(
            FindingKind::HostUnreachable,
            format!("host/{}", o.name),
            format!("retired, but not read: {why}"),
        ));
    }
    for r in &env.fleet.retired {
        let Some(reached) = retired.get(&r.observer.name) else {
            continue;
        };
        let plan = hosts::host_plan::retirement(&reached.observed, r.data);
        if plan.needed() {
            out.push(finding(
                FindingKind::RetiredRunning,
                format!("host/{}", r.observer.name),
                format!(
                    "retired in the inventory, but {}: deploy retires it ({})",
                    if plan.stop_containers {
                        "it still runs"
                    } else {
                        "not all of it is gone"
                    },
                    plan.steps().join("; ")
                ),
            ));
        }
    }
    out
}

/// Containers this tool made, on a host it manages, for an observer the inventory does not list
/// there (another name, or another deploy directory): an observer it would never touch again.
fn unlisted_observers(
    env: &manifests::Environment,
    reads: &crate::commands::reads::Reads<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let hosts = reads.fleet.reached.iter().chain(&reads.retired.reached);
    for r in hosts {
        let o = r.observer;
        let mut seen = std::collections::BTreeSet::new();
        for (name, dir) in &r.observed.containers {
            // The deploy directory as given, or with its links resolved (compose v2 records that);
            // compose before 1.25 records none.
            let here = dir.is_empty()
                || dir == &o.deploy_dir.0
                || r.observed.deploy_dir_resolved.as_deref() == Some(dir.as_str());
            let listed = name == &o.name && here;
            if listed || !seen.insert((name.clone(), dir.clone())) {
                continue;
            }
            out.push(finding(
                FindingKind::UnlistedObserver,
                format!("host/{}", o.name),
                format!(
                    "an observer {name} runs here from {dir}, which the inventory of {} does not list on this \
                     host: nothing will update or retire it. Once sure it is not in use, remove its containers \
                     on the host: docker rm -f $(docker ps -aq --filter label={}/observer={name} \
                     --filter label=com.docker.compose.project.working_dir={dir})",
                    env.name,
                    hosts::LABEL_DOMAIN
                ),
            ));
        }
    }
    out
}

/// Why an observer cannot reach the load balancers, and what to do: a firewall or security group
/// that drops its connections usually means they arrive from an address the load balancers'
/// `loadBalancerSourceRanges` do not list (its traffic is NAT'd).
fn unreachable_load_balancers(
    env: &manifests::Environment,
    o: &hosts::Observer,
    blocked: &[(&str, hosts::host_plan::Reach)],
) -> String {
    let list: Vec<String> = blocked
        .iter()
        .map(|(t, r)| format!("{t} ({})", r.describe()))
        .collect();
    let index = env
        .fleet
        .observers
        .iter()
        .position(|x| x.name == o.name)
        .unwrap_or_default();
    format!(
        "cannot open a connection to the load balancer(s) {}, so it cannot join the ensemble. Their \
         loadBalancerSourceRanges admit {}: if this observer's traffic leaves through NAT, the load balancers \
         see another source address; record it as fleet.observers[{index}].egress and deploy. Otherwise check \
         the firewall or security groups between this host and the load balancers (TCP 2888, 3888)",
        list.join(", "),
        manifests::objects::source_ranges(env).join(", ")
    )
}

/// This tool's objects missing, being deleted, changed, extra, and fields another manager took.
fn cluster_findings(plan: &plan::Plan) -> Vec<Finding> {
    let mut findings = Vec::new();
    for c in &plan.changes {
        let (kind, detail) = match (c.action, &c.deleting) {
            (Action::Unchanged, _) => continue,
            (Action::Create, Some(why)) => (
                FindingKind::ClusterDeleting,
                format!("{why}; the next deploy creates it again once it is gone"),
            ),
            (Action::Create, None) => (
                FindingKind::ClusterMissing,
                "desired but absent from the cluster".to_string(),
            ),
            (Action::Update, _) => (
                FindingKind::ClusterChanged,
                "live object differs from the code".to_string(),
            ),
            (Action::Prune, why) => (
                FindingKind::ClusterExtra,
                format!(
                    "written by this tool but no longer desired{}",
                    why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
                ),
            ),
        };
        let mut f = finding(kind, &c.object, detail);
        f.diff = c.diff.clone();
        findings.push(f);
        for k in &c.conflicts {
            findings.push(finding(
                FindingKind::ClusterConflict,
                &c.object,
                format!("{} is owned by \"{}\"", k.field, k.manager),
            ));
        }
    }
    findings
}

/// The `server.N` lines of a deployed zoo.cfg that point elsewhere than the live load balancers.
fn address_mismatches(
    env: &manifests::Environment,
    object: &str,
    cfg: &str,
    live: &std::collections::BTreeMap<u32, ServerAddress>,
) -> Vec<Finding> {
    let servers = zoo_cfg_servers(cfg);
    env.ensemble
        .participants()
        .iter()
        .filter_map(|p| {
            let used = servers.iter().find(|(id, _)| *id == p.id.get())?.1.clone();
            let want = live.get(&p.ordinal).map(ServerAddress::to_string);
            (Some(&used) != want.as_ref()).then(|| {
                finding(
                    FindingKind::AddressMismatch,
                    object,
                    format!(
                        "its zoo.cfg points server.{} at {used}, but Service {} has {}",
                        p.id,
                        p.service_name,
                        want.unwrap_or_else(|| "no address".into())
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report's contract: each kind's JSON name is the one printed and the one documented
    /// (a row of the kinds table in docs/drift-report.md), and the page lists no kind the code
    /// does not have.
    #[test]
    fn every_finding_kind_is_documented() {
        let doc = include_str!("../../../docs/drift-report.md");
        let table = &doc[doc.find("## Finding kinds").unwrap()..];
        let documented: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        for k in FindingKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "kinds are distinct");
        assert_eq!(
            documented, names,
            "docs/drift-report.md lists every kind, in order"
        );
    }

    /// The example document of docs/drift-report.md has the shape a real report has: every
    /// field it shows is one the report writes, finding and `deployed` entries included.
    #[test]
    fn the_documented_example_has_the_reports_shape() {
        let doc = include_str!("../../../docs/drift-report.md");
        let start = doc.find("```json\n").unwrap() + "```json\n".len();
        let example: serde_json::Value =
            serde_json::from_str(&doc[start..start + doc[start..].find("```").unwrap()]).unwrap();
        let mut f = finding(FindingKind::HostFiles, "host/a", "zoo.cfg differ");
        f.diff = "--- a\n+++ b\n".into();
        f.deployed_from = Some("abc".into());
        let real = serde_json::to_value(DriftReport {
            deployed: vec![crate::provenance::host_record(
                "a",
                Some(&crate::provenance::Deployed::now("production").to_file()),
            )],
            ensemble_tls: vec![ElectionProbe {
                participant: "server.1".into(),
                address: "10.8.0.21:3888".into(),
                from: "host/a".into(),
                answer: hosts::tls::ElectionAnswer::parse(
                    "tls\tnotAfter=Nov 30 09:12:00 2027 GMT\tsubject=CN = z\tissuer=CN = ca",
                ),
            }],
            ..DriftReport::checked("production", vec![f])
        })
        .unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&example), keys(&real));
        assert_eq!(keys(&example["findings"][0]), keys(&real["findings"][0]));
        assert_eq!(keys(&example["deployed"][0]), keys(&real["deployed"][0]));
        let (e, r) = (&example["ensemble_tls"][0], &real["ensemble_tls"][0]);
        assert_eq!(keys(e), keys(r));
        assert_eq!(keys(&e["certificate"]), keys(&r["certificate"]));
        assert_eq!(r["certificate"]["not_after"], "2027-11-30T09:12:00Z");
        assert_eq!(example["format_version"], FORMAT_VERSION);
    }

    #[test]
    fn statuses_map_to_exit_codes_and_an_error_still_is_a_report() {
        let clean = DriftReport::checked("production", vec![]);
        assert_eq!((clean.status, clean.exit_code()), (DriftStatus::Clean, 0));
        let drift = DriftReport::checked(
            "production",
            vec![finding(FindingKind::HostFiles, "host/a", "zoo.cfg differ")],
        );
        assert_eq!((drift.status, drift.exit_code()), (DriftStatus::Drift, 2));
        let skipped = DriftReport::skipped("production", "held".into());
        assert_eq!(skipped.exit_code(), 1);
        let failed = DriftReport::failed(
            "production",
            &anyhow::anyhow!("403").context("reading Services"),
        );
        assert_eq!(failed.exit_code(), 1);
        let json = failed.json();
        assert_eq!(json["format_version"], FORMAT_VERSION);
        assert_eq!(json["status"], "error");
        assert_eq!(json["clean"], serde_json::Value::Null);
        assert_eq!(json["error"], "reading Services: 403");
        assert_eq!(json["findings"], serde_json::json!([]));
        assert_eq!(drift.json()["findings"][0]["kind"], "host-files");
    }
}
