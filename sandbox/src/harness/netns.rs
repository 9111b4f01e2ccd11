//! The sandbox network: a bridge in the root namespace and one namespace per host.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use manifests::Environment;

pub const BRIDGE: &str = "zkobs0";
pub const BRIDGE_ADDRESS: &str = "198.18.255.254/16";
pub const CLUSTER_NS: &str = "zkobs-cluster";
/// Where the DNS server listens (in the cluster namespace).
pub const DNS_ADDRESS: &str = "198.18.0.53";

pub fn observer_ns(name: &str) -> String {
    format!("zkobs-{name}")
}

/// A jump host's namespace.
pub fn jump_ns(name: &str) -> String {
    format!("zkobs-{name}")
}

/// Every namespace the sandbox creates.
pub fn namespaces(env: &Environment) -> Vec<String> {
    let mut v = vec![CLUSTER_NS.to_string()];
    v.extend(env.fleet.jump.iter().map(|j| jump_ns(&j.name)));
    v.extend(env.fleet.observers.iter().map(|o| observer_ns(&o.name)));
    v
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .context("running ip netns exec")?;
    if !out.status.success() {
        bail!(
            "{program} {} in {ns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Creates a namespace attached to the bridge with the given addresses (/16).
fn attach(ns: &str, veth: &str, addresses: &[String]) -> Result<()> {
    ip(&["netns", "add", ns])?;
    let peer = format!("{veth}p");
    ip(&["link", "add", veth, "type", "veth", "peer", "name", &peer])?;
    ip(&["link", "set", veth, "master", BRIDGE, "up"])?;
    ip(&["link", "set", &peer, "netns", ns])?;
    in_ns(ns, "ip", &["link", "set", "lo", "up"])?;
    in_ns(ns, "ip", &["link", "set", &peer, "name", "eth0"])?;
    for a in addresses {
        in_ns(
            ns,
            "ip",
            &["addr", "add", &format!("{a}/16"), "dev", "eth0"],
        )?;
    }
    in_ns(ns, "ip", &["link", "set", "eth0", "up"])?;
    // No default route: nothing in the sandbox can reach beyond 198.18.0.0/16.
    Ok(())
}

pub fn create(env: &Environment) -> Result<()> {
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE])?;
    ip(&["link", "set", BRIDGE, "up"])?;
    // Docker in the root namespace may set the FORWARD policy to DROP; the bridge is ours.
    let _ = Command::new("iptables")
        .args(["-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
        .status();
    let mut lbs: Vec<String> = env
        .ensemble
        .recorded_addresses
        .values()
        .map(ToString::to_string)
        .collect();
    lbs.push(DNS_ADDRESS.to_string());
    attach(CLUSTER_NS, "zkv-cluster", &lbs)?;
    // One-way, as across the VPC boundary: the participants cannot open connections to observers.
    for o in &env.fleet.observers {
        in_ns(
            CLUSTER_NS,
            "iptables",
            &[
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "--syn",
                "-d",
                &o.address.to_string(),
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        )?;
    }
    for (i, j) in env.fleet.jump.iter().enumerate() {
        attach(
            &jump_ns(&j.name),
            &format!("zkv-j{i}"),
            std::slice::from_ref(&j.address),
        )?;
    }
    for o in &env.fleet.observers {
        let ns = observer_ns(&o.name);
        attach(&ns, &format!("zkv-o{}", o.myid), &[o.address.to_string()])?;
        // Behind a bastion, the observer's SSH accepts connections from the bastion only.
        if let Some(last) = o.jump_hosts(&env.fleet).last() {
            in_ns(
                &ns,
                "iptables",
                &[
                    "-w",
                    "-A",
                    "INPUT",
                    "-p",
                    "tcp",
                    "--dport",
                    "22",
                    "!",
                    "-s",
                    &last.address,
                    "-j",
                    "DROP",
                ],
            )?;
        }
    }
    Ok(())
}

/// The chain of the simulated cloud's firewall, in the cluster's namespace.
const CLOUD_FIREWALL: &str = "ZKOBS-CLOUD-FW";
/// Traffic inside the cluster (the ensemble's own connections) never crosses its load balancers.
const IN_CLUSTER: &str = "198.18.0.0/24";

/// The simulated cloud's firewall in front of its load balancers (the ensemble's servers stand in
/// for them): each load balancer's ports admit only its Service's `loadBalancerSourceRanges`
/// (any source when the field is empty) and traffic from inside the cluster; everything else is
/// dropped, as a security group without a matching rule drops it (the client times out). Rules
/// for load balancers that have only a hostname are not programmed.
pub fn cloud_firewall() -> crate::Firewall {
    crate::Firewall(std::sync::Arc::new(|rules: &[crate::LbRule]| {
        if let Err(e) = program_firewall(rules) {
            tracing::warn!("the sandbox cloud firewall could not be programmed: {e:#}");
        }
    }))
}

fn program_firewall(rules: &[crate::LbRule]) -> Result<()> {
    let ipt = |args: &[&str]| in_ns(CLUSTER_NS, "iptables", &[&["-w"], args].concat());
    if ipt(&["-L", CLOUD_FIREWALL, "-n"]).is_err() {
        ipt(&["-N", CLOUD_FIREWALL])?;
        ipt(&["-I", "INPUT", "-j", CLOUD_FIREWALL])?;
    }
    ipt(&["-F", CLOUD_FIREWALL])?;
    ipt(&["-A", CLOUD_FIREWALL, "-s", IN_CLUSTER, "-j", "RETURN"])?;
    for r in rules {
        let ports = r
            .ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let to = [
            "-d",
            r.address.as_str(),
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--dports",
            ports.as_str(),
        ];
        if r.source_ranges.is_empty() {
            ipt(&[&["-A", CLOUD_FIREWALL], &to[..], &["-j", "RETURN"]].concat())?;
            continue;
        }
        for range in &r.source_ranges {
            ipt(&[
                &["-A", CLOUD_FIREWALL],
                &to[..],
                &["-s", range.as_str(), "-j", "RETURN"],
            ]
            .concat())?;
        }
        ipt(&[&["-A", CLOUD_FIREWALL], &to[..], &["-j", "DROP"]].concat())?;
    }
    Ok(())
}

/// Makes `name`'s traffic to the load balancers leave from `egress` (source NAT), as across VPC
/// peering or a classic-network link: the load balancers see `egress`, not the host's address.
pub fn nat_egress(name: &str, egress: std::net::IpAddr) -> Result<()> {
    let ns = observer_ns(name);
    in_ns(
        &ns,
        "ip",
        &["addr", "add", &format!("{egress}/16"), "dev", "eth0"],
    )?;
    in_ns(
        &ns,
        "iptables",
        &[
            "-w",
            "-t",
            "nat",
            // Ahead of docker's MASQUERADE of the containers' bridge.
            "-I",
            "POSTROUTING",
            "1",
            "-d",
            IN_CLUSTER,
            "-p",
            "tcp",
            "-j",
            "SNAT",
            "--to-source",
            &egress.to_string(),
        ],
    )
}

/// Takes a host off the network (`down`) or puts it back.
pub fn set_link(myid: u32, up: bool) -> Result<()> {
    ip(&[
        "link",
        "set",
        &format!("zkv-o{myid}"),
        if up { "up" } else { "down" },
    ])
}

/// Sandbox namespaces that exist now (of any sandbox environment).
pub fn leftover_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("zkobs-"))
        .map(String::from)
        .collect()
}

/// The root-namespace ends of the veth pairs: this environment's and any left over.
fn veths(env: &Environment) -> Vec<String> {
    let mut v = vec!["zkv-cluster".to_string()];
    v.extend(
        env.fleet
            .observers
            .iter()
            .map(|o| format!("zkv-o{}", o.myid)),
    );
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    v.extend(
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("zkv-")),
    );
    v.sort();
    v.dedup();
    v
}

pub fn delete(env: &Environment, namespaces: &[String]) {
    for ns in namespaces {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
    // A namespace lives on while a dying process still holds it, and its veth with it.
    for veth in veths(env) {
        let _ = Command::new("ip")
            .args(["link", "del", &veth])
            .stderr(Stdio::null())
            .status();
    }
    let _ = Command::new("ip")
        .args(["link", "del", BRIDGE])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("iptables")
        .args(["-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
        .stderr(Stdio::null())
        .status();
}
