//! How the observers' metrics reach Prometheus.

use serde::Serialize;

use crate::image::ImageRef;
use crate::net::Port;
use crate::port;
use crate::zoocfg::{FourLetterWord, FourLetterWords};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metrics {
    /// The runbook's sidecar (`josdotso/zookeeper-exporter`), which reads `mntr` over the client
    /// port, and `srst` too when it resets counters on every scrape.
    Exporter {
        image: ImageRef,
        port: Port,
        reset_on_scrape: bool,
    },
    /// ZooKeeper's own Prometheus provider (3.6 and later), served on `port` at `/metrics`. Metric
    /// names differ from the exporter's. Debian's `zookeeper` 3.8.0 package does not ship its jar.
    Builtin { port: Port },
}

/// Which program serves the metrics, and so which names its answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsKind {
    Exporter,
    Builtin,
}

impl MetricsKind {
    /// Whether a scrape's body shows ZooKeeper's own figures, under the names this kind serves:
    /// the exporter prefixes `mntr`'s keys with `zk_` and says `zk_up 0` when it cannot reach
    /// ZooKeeper; the built-in provider serves bare names (apache/zookeeper
    /// `PrometheusMetricsProvider.java`: each metric built as `Counter.build(name, name)`, no
    /// prefix). `znode_count` is a gauge the server registers only while it serves a synced data
    /// tree (`ZooKeeperServer.registerMetrics`, from the learner's NEWLEADER to shutdown), so its
    /// sample proves more than a listening port.
    pub fn serves_zookeeper(self, body: &str) -> bool {
        match self {
            MetricsKind::Exporter => body
                .lines()
                .any(|l| l.starts_with("zk_") && !l.starts_with("zk_up 0")),
            MetricsKind::Builtin => body.lines().any(|l| {
                !l.starts_with('#')
                    && l.split([' ', '{']).next() == Some(BUILTIN_PROOF)
                    && l.split_whitespace().nth(1).is_some_and(|v| v != "NaN")
            }),
        }
    }

    /// What the probe's detail calls the metrics server.
    pub fn noun(self) -> &'static str {
        match self {
            MetricsKind::Exporter => "exporter",
            MetricsKind::Builtin => "metrics provider",
        }
    }
}

/// The built-in provider's sample that shows a synced, serving server.
pub const BUILTIN_PROOF: &str = "znode_count";

impl Metrics {
    pub fn kind(&self) -> MetricsKind {
        match self {
            Metrics::Exporter { .. } => MetricsKind::Exporter,
            Metrics::Builtin { .. } => MetricsKind::Builtin,
        }
    }

    /// The runbook's exporter, as it was deployed.
    pub fn runbook_exporter() -> Metrics {
        Metrics::Exporter {
            image: ImageRef::new("josdotso/zookeeper-exporter:v1.1.2"),
            port: port!(9141),
            reset_on_scrape: true,
        }
    }

    /// The port Prometheus scrapes on each observer host.
    pub fn port(&self) -> Port {
        match self {
            Metrics::Exporter { port, .. } | Metrics::Builtin { port } => *port,
        }
    }

    /// The four-letter words this way of collecting metrics sends.
    pub fn required_words(&self) -> FourLetterWords {
        match self {
            Metrics::Exporter {
                reset_on_scrape: true,
                ..
            } => FourLetterWords::of([FourLetterWord::Mntr, FourLetterWord::Srst]),
            Metrics::Exporter {
                reset_on_scrape: false,
                ..
            } => FourLetterWords::of([FourLetterWord::Mntr]),
            Metrics::Builtin { .. } => FourLetterWords::default(),
        }
    }
}

/// The four-letter words the health gate and the host read send: `srvr` for `Mode: observer`,
/// `mntr` for `zk_peer_state`, and `conf` for the configuration ZooKeeper loaded (a zoo.cfg
/// written but not loaded, a stale server id). `conf` tells a client what zoo.cfg's server lines
/// already say to anyone who can read them; it costs a string dump, no walk of the data tree.
pub fn health_words() -> FourLetterWords {
    FourLetterWords::of([
        FourLetterWord::Srvr,
        FourLetterWord::Mntr,
        FourLetterWord::Conf,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies in each server's own format: the built-in provider's as simpleclient 0.9.0 writes
    /// it (upstream's PrometheusMetricsProviderTest expects `gg 78.0`, `cc{quantile="0.5",} 10.0`),
    /// the exporter's with `mntr`'s keys behind `zk_`.
    #[test]
    fn each_kind_reads_only_its_own_names() {
        let builtin = "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\
                       learner_handler_qp_size{key=\"2\",quantile=\"0.5\",} 0.0\n";
        let exporter = "# HELP zk_znode_count ...\nzk_up 1\nzk_znode_count 5\n";
        assert!(MetricsKind::Builtin.serves_zookeeper(builtin));
        assert!(!MetricsKind::Exporter.serves_zookeeper(builtin));
        assert!(MetricsKind::Exporter.serves_zookeeper(exporter));
        assert!(!MetricsKind::Builtin.serves_zookeeper(exporter));
        // A provider whose server has no data tree yet: HELP/TYPE lines and JVM figures only.
        let starting = "# HELP znode_count znode_count\n# TYPE znode_count gauge\n\
                        jvm_threads_current 30.0\n";
        assert!(!MetricsKind::Builtin.serves_zookeeper(starting));
        assert!(!MetricsKind::Builtin.serves_zookeeper("znode_count NaN\n"));
        assert!(!MetricsKind::Builtin.serves_zookeeper("znode_count_total 5.0\n"));
        assert!(!MetricsKind::Exporter.serves_zookeeper("zk_up 0\n"));
    }
}
