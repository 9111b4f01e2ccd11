//! Ports and addresses.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;

use serde::Serialize;

/// A TCP port. Port 0 cannot be expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

/// A port written in code: `port!(2888)`. Checked when compiling: `port!(0)` does not compile.
#[macro_export]
macro_rules! port {
    ($p:expr) => {
        const { $crate::net::Port::__new($p) }
    };
}

impl Port {
    /// For [`port!`] only, which evaluates it at compile time (so 0 is a compile error); values
    /// known at run time go through `Port::try_from`.
    #[doc(hidden)]
    pub const fn __new(port: u16) -> Port {
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

/// Whether `name` is a DNS-1035 label: a DNS-1123 label that starts with a letter, as Service
/// names must be.
pub fn is_dns1035_label(name: &str) -> bool {
    is_dns1123_label(name) && name.as_bytes()[0].is_ascii_lowercase()
}

/// Why `path` is not an absolute, normalised path of plain characters, if it is not: no empty,
/// `.` or `..` components, no trailing `/`, only letters, digits, `/`, `.`, `_` and `-` (so no
/// newline can ever reach a rendered file).
pub fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("`{}` is not an absolute path", path.escape_debug()));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        return Some(format!(
            "`{}` has characters other than letters, digits, `/`, `.`, `_` and `-`",
            path.escape_debug()
        ));
    }
    if path != "/"
        && path[1..]
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some(format!(
            "`{path}` is not normalised (an empty, `.` or `..` component, or a trailing `/`)"
        ));
    }
    None
}

/// Whether `name` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

/// A port from a value known only at run time (a constant is written `port!(2888)`).
impl TryFrom<u16> for Port {
    type Error = String;

    fn try_from(p: u16) -> Result<Port, String> {
        NonZeroU16::new(p)
            .map(Port)
            .ok_or_else(|| "port 0 is not a port".to_string())
    }
}

/// Whether an address can be given to a host: unicast, not unspecified, not broadcast.
pub fn is_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
