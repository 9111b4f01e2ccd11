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

impl Metrics {
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
