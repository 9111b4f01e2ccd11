//! A typed docker-compose file (Compose Specification subset understood by docker-compose 1.29
//! and `docker compose` v2). Rendered with serde, never from text templates.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use crate::net::Port;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComposeFile {
    pub services: BTreeMap<String, Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub image: String,
    pub restart: Restart,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<BindMount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kernel parameters of the container's own network namespace (`net.*`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    pub logging: Logging,
}

/// How docker keeps a container's output: the json-file driver, rotated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    driver: LogDriver,
    pub options: LogOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum LogDriver {
    JsonFile,
}

/// The json-file driver's rotation: at most `max-file` files of `max-size` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogOptions {
    #[serde(rename = "max-size")]
    pub max_size: String,
    #[serde(rename = "max-file")]
    pub max_file: String,
}

impl Logging {
    /// json-file, rotated at `max_size_mib` MiB, `max_files` files kept.
    pub fn rotated(max_size_mib: u32, max_files: u32) -> Logging {
        Logging {
            driver: LogDriver::JsonFile,
            options: LogOptions {
                max_size: format!("{max_size_mib}m"),
                max_file: max_files.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Restart {
    #[serde(rename = "no")]
    No,
    #[serde(rename = "unless-stopped")]
    UnlessStopped,
    #[serde(rename = "always")]
    Always,
}

/// A published port, `[HOST_IP:]PUBLISHED:TARGET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub published: Port,
    pub target: Port,
}

impl PortMapping {
    /// Published on one host address only, so that a multi-homed host does not expose the port on
    /// its other networks.
    pub fn on(host_ip: IpAddr, published: Port, target: Port) -> PortMapping {
        PortMapping {
            host_ip: Some(host_ip),
            published,
            target,
        }
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(f, "{}:{}", self.published, self.target)
    }
}

impl Serialize for PortMapping {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A bind mount in the long syntax (`type: bind`). Sources are relative to the compose file's
/// directory.
///
/// The long syntax is deliberate: docker creates a missing source of a short-syntax bind
/// (`./zoo.cfg:/conf/zoo.cfg`) as an empty *directory*, so a host whose `zoo.cfg` was deleted
/// comes back from a reboot with a directory in its place. A long-syntax bind is passed to the
/// engine as a mount, and the engine refuses a missing source ("bind source path does not exist")
/// instead of inventing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindMount {
    #[serde(rename = "type")]
    kind: BindType,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum BindType {
    Bind,
}

impl BindMount {
    pub fn read_only(source: impl Into<String>, target: impl Into<String>) -> BindMount {
        BindMount {
            kind: BindType::Bind,
            source: source.into(),
            target: target.into(),
            read_only: true,
        }
    }

    pub fn read_write(source: impl Into<String>, target: impl Into<String>) -> BindMount {
        BindMount {
            kind: BindType::Bind,
            source: source.into(),
            target: target.into(),
            read_only: false,
        }
    }
}

impl fmt::Display for BindMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}
