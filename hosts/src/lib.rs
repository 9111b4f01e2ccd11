//! Everything that lands on an observer host, as values: the inventory, a typed `zoo.cfg`, a typed
//! `docker-compose.yaml`, and the validation rules that concern only the host side.
//!
//! This crate does no IO. Every renderer takes values and returns text, and the same values always
//! give the same bytes.

pub mod compose;
pub mod fleet_rules;
pub mod host_files;
pub mod host_plan;
pub mod ids;
pub mod image;
pub mod metrics;
pub mod net;
pub mod observer;
pub mod problem;
pub mod ssh_login;
pub mod tls;
pub mod zoocfg;

pub use host_files::{render_host, HostFiles, ParticipantEndpoint, COMPOSE_FILE, ZOO_CFG_FILE};
pub use ids::ServerId;
pub use image::{ImageRef, ZkVersion};
pub use metrics::{Metrics, MetricsKind};
pub use net::{Port, ServerAddress};
pub use observer::{Observer, ObserverFleet, RemoteDir, Retired, RetiredData};
pub use problem::{Problem, Problems, Severity};
pub use ssh_login::{HostKey, JumpHost, PublicKey, SshLogin};
pub use tls::{KeyStore, QuorumSecurity, SecretSource};
pub use zoocfg::{AdminServer, FourLetterWord, FourLetterWords, ZooSettings};

/// The value of `app.kubernetes.io/managed-by` on every object this tool owns, and the label put on
/// every container it starts. Also the server-side-apply field manager.
pub const MANAGED_BY: &str = "zk-observers-xtask";

/// Prefix of this tool's own labels and annotations.
pub const LABEL_DOMAIN: &str = "zk-observers.dev";
