//! Ports and addresses.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;

use serde::Serialize;

/// A TCP port. Port 0 cannot be expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// Panics at compile time when used in a `const` with 0.
    pub const fn new(port: u16) -> Port {
        match NonZeroU16::new(port) {
            Some(p) => Port(p),
            None => panic!("port 0 is not a port"),
        }
    }

    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a ZooKeeper server is reached: an IP address, or a DNS name (AWS load balancers hand out
/// names, not addresses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum ServerAddress {
    Ip(IpAddr),
    Dns(String),
}

impl ServerAddress {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ServerAddress::Ip(ip) => Some(*ip),
            ServerAddress::Dns(_) => None,
        }
    }
}

impl From<IpAddr> for ServerAddress {
    fn from(ip: IpAddr) -> Self {
        ServerAddress::Ip(ip)
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Ip(ip) => ip.fmt(f),
            ServerAddress::Dns(name) => f.write_str(name),
        }
    }
}

/// `const` constructor for IPv4 addresses in environment modules.
pub const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
}

/// Whether `name` is a DNS-1123 label: 1..=63 lowercase alphanumerics or '-', starting and ending
/// with an alphanumeric. Kubernetes names, namespaces and observer names all follow it.
pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

/// Whether an address can be given to a host: unicast, not unspecified, not broadcast.
pub fn is_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
