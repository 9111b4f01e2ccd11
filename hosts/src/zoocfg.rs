//! A typed `zoo.cfg`.
//!
//! Every key is a variant of [`Key`], so a misspelt key (the runbook's `autopurge.purgeInteval`,
//! which ZooKeeper silently turns into an unused system property) cannot be written. The four-letter
//! word whitelist is a set of known commands and cannot be `*`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::ids::ServerId;
use crate::net::{Port, ServerAddress};

/// A ZooKeeper four-letter-word command (ZooKeeper 3.5 to 3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FourLetterWord {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Hash,
    Isro,
    Mntr,
    Ruok,
    Srst,
    Srvr,
    Stat,
    Stmk,
    Wchc,
    Wchp,
    Wchs,
}

impl FourLetterWord {
    pub const ALL: [FourLetterWord; 18] = [
        Self::Conf,
        Self::Cons,
        Self::Crst,
        Self::Dirs,
        Self::Dump,
        Self::Envi,
        Self::Gtmk,
        Self::Hash,
        Self::Isro,
        Self::Mntr,
        Self::Ruok,
        Self::Srst,
        Self::Srvr,
        Self::Stat,
        Self::Stmk,
        Self::Wchc,
        Self::Wchp,
        Self::Wchs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conf => "conf",
            Self::Cons => "cons",
            Self::Crst => "crst",
            Self::Dirs => "dirs",
            Self::Dump => "dump",
            Self::Envi => "envi",
            Self::Gtmk => "gtmk",
            Self::Hash => "hash",
            Self::Isro => "isro",
            Self::Mntr => "mntr",
            Self::Ruok => "ruok",
            Self::Srst => "srst",
            Self::Srvr => "srvr",
            Self::Stat => "stat",
            Self::Stmk => "stmk",
            Self::Wchc => "wchc",
            Self::Wchp => "wchp",
            Self::Wchs => "wchs",
        }
    }

    /// Commands that walk every watch and can pin a CPU: a known denial of service when reachable
    /// without authentication on the client port.
    pub fn is_expensive(self) -> bool {
        matches!(self, Self::Wchc | Self::Wchp)
    }
}

impl fmt::Display for FourLetterWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of `4lw.commands.whitelist`: a set of known commands. `*` cannot be represented.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FourLetterWords(BTreeSet<FourLetterWord>);

impl FourLetterWords {
    pub fn of(words: impl IntoIterator<Item = FourLetterWord>) -> Self {
        FourLetterWords(words.into_iter().collect())
    }

    pub fn contains(&self, w: FourLetterWord) -> bool {
        self.0.contains(&w)
    }

    pub fn iter(&self) -> impl Iterator<Item = FourLetterWord> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FourLetterWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<_> = self.0.iter().map(|w| w.as_str()).collect();
        f.write_str(&words.join(","))
    }
}

/// ZooKeeper's embedded Jetty AdminServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminServer {
    Disabled,
    /// Only loopback addresses validate: the AdminServer has no authentication.
    Enabled {
        address: IpAddr,
        port: Port,
    },
}

/// The tunable part of an observer's `zoo.cfg`, as the user writes it in an environment module.
/// Paths, ids, roles and server lines are derived, not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZooSettings {
    pub tick_time_ms: u32,
    /// In ticks. On the observer it bounds the initial sync, which crosses the VPC link.
    pub init_limit: u32,
    /// In ticks.
    pub sync_limit: u32,
    pub client_port: Port,
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub autopurge_snap_retain_count: u32,
    /// In hours. 0 turns purging off, and the observer's disk fills: refused by validation.
    pub autopurge_purge_interval_hours: u32,
    /// Extra commands beyond those the health gate and the metrics exporter need, which are always
    /// added. Each extra command is a warning.
    pub four_letter_words: FourLetterWords,
    pub admin_server: AdminServer,
    /// Turns TCP keepalive on for the election connections (QuorumCnxManager.java; nothing
    /// else). The probes come on the kernel's timers, 7200 s by default, far beyond a load
    /// balancer's or NAT gateway's idle timeout: the container's keepalive `sysctls`
    /// ([`crate::observer::Keepalive`]) make them come in time.
    pub tcp_keep_alive: bool,
}

/// Every zoo.cfg key this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    TickTime,
    InitLimit,
    SyncLimit,
    ClientPort,
    DataDir,
    DataLogDir,
    MaxClientCnxns,
    MinSessionTimeout,
    MaxSessionTimeout,
    AutopurgeSnapRetainCount,
    AutopurgePurgeInterval,
    PeerType,
    FourLetterWordWhitelist,
    AdminEnableServer,
    AdminServerAddress,
    AdminServerPort,
    TcpKeepAlive,
    ReconfigEnabled,
    StandaloneEnabled,
    MetricsProviderClassName,
    MetricsProviderHttpHost,
    MetricsProviderHttpPort,
    SslQuorum,
    SslQuorumKeyStoreLocation,
    SslQuorumKeyStorePasswordPath,
    SslQuorumKeyStoreType,
    SslQuorumTrustStoreLocation,
    SslQuorumTrustStorePasswordPath,
    SslQuorumTrustStoreType,
    SslQuorumHostnameVerification,
    /// The ensemble side only (its move to TLS): the quorum listeners take TLS and plaintext.
    PortUnification,
    Server(ServerId),
}

impl Key {
    pub fn name(self) -> String {
        let s = match self {
            Key::TickTime => "tickTime",
            Key::InitLimit => "initLimit",
            Key::SyncLimit => "syncLimit",
            Key::ClientPort => "clientPort",
            Key::DataDir => "dataDir",
            Key::DataLogDir => "dataLogDir",
            Key::MaxClientCnxns => "maxClientCnxns",
            Key::MinSessionTimeout => "minSessionTimeout",
            Key::MaxSessionTimeout => "maxSessionTimeout",
            Key::AutopurgeSnapRetainCount => "autopurge.snapRetainCount",
            Key::AutopurgePurgeInterval => "autopurge.purgeInterval",
            Key::PeerType => "peerType",
            Key::FourLetterWordWhitelist => "4lw.commands.whitelist",
            Key::AdminEnableServer => "admin.enableServer",
            Key::AdminServerAddress => "admin.serverAddress",
            Key::AdminServerPort => "admin.serverPort",
            Key::TcpKeepAlive => "tcpKeepAlive",
            Key::ReconfigEnabled => "reconfigEnabled",
            Key::StandaloneEnabled => "standaloneEnabled",
            Key::MetricsProviderClassName => "metricsProvider.className",
            Key::MetricsProviderHttpHost => "metricsProvider.httpHost",
            Key::MetricsProviderHttpPort => "metricsProvider.httpPort",
            Key::SslQuorum => "sslQuorum",
            Key::SslQuorumKeyStoreLocation => "ssl.quorum.keyStore.location",
            Key::SslQuorumKeyStorePasswordPath => "ssl.quorum.keyStore.passwordPath",
            Key::SslQuorumKeyStoreType => "ssl.quorum.keyStore.type",
            Key::SslQuorumTrustStoreLocation => "ssl.quorum.trustStore.location",
            Key::SslQuorumTrustStorePasswordPath => "ssl.quorum.trustStore.passwordPath",
            Key::SslQuorumTrustStoreType => "ssl.quorum.trustStore.type",
            Key::SslQuorumHostnameVerification => "ssl.quorum.hostnameVerification",
            Key::PortUnification => "portUnification",
            Key::Server(id) => return format!("server.{id}"),
        };
        s.to_string()
    }
}

/// The role in a `server.N` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// A `server.N=address:quorumPort:electionPort:role` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub id: ServerId,
    pub address: ServerAddress,
    pub quorum_port: Port,
    pub election_port: Port,
    pub role: Role,
}

impl fmt::Display for ServerLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Participant => "participant",
            Role::Observer => "observer",
        };
        // IPv6 addresses are bracketed in server lines.
        match &self.address {
            ServerAddress::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]")?,
            other => write!(f, "{other}")?,
        }
        write!(f, ":{}:{}:{role}", self.quorum_port, self.election_port)
    }
}

/// A complete zoo.cfg: ordered `(key, value)` entries. Build it with
/// [`crate::host_files::render_host`]; render it with [`ZooCfg::to_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooCfg {
    header: Vec<String>,
    entries: Vec<(Key, String)>,
}

impl ZooCfg {
    pub fn new(header: Vec<String>) -> ZooCfg {
        ZooCfg {
            header,
            entries: Vec::new(),
        }
    }

    pub fn set(&mut self, key: Key, value: impl fmt::Display) {
        debug_assert!(self.get(key).is_none(), "{} written twice", key.name());
        self.entries.push((key, value.to_string()));
    }

    pub fn get(&self, key: Key) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Deterministic text: header comments, then one `key=value` line per entry, in insertion order.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str("# ");
            out.push_str(h);
            out.push('\n');
        }
        for (k, v) in &self.entries {
            out.push_str(&k.name());
            out.push('=');
            out.push_str(v);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_renders_sorted_words_and_never_star() {
        let w = FourLetterWords::of([FourLetterWord::Srst, FourLetterWord::Mntr]);
        assert_eq!(w.to_string(), "mntr,srst");
        // `*` is not a word: even every word enabled is listed one by one.
        let all = FourLetterWords::of(FourLetterWord::ALL);
        assert!(!all.to_string().contains('*'));
        assert_eq!(
            all.to_string().split(',').count(),
            FourLetterWord::ALL.len()
        );
    }

    #[test]
    fn key_names_are_spelt_as_zookeeper_reads_them() {
        assert_eq!(
            Key::AutopurgePurgeInterval.name(),
            "autopurge.purgeInterval"
        );
        assert_eq!(Key::Server(ServerId(4)).name(), "server.4");
    }
}
