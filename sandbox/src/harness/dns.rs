//! The sandbox's DNS server: dnsmasq (Debian's `dnsmasq-base`) in the cluster namespace, standing
//! in for the cloud's private DNS zone. It answers the load balancers' names of the hostname mode
//! ([`super::lb_hostname`]) with the addresses where the sandbox's ZooKeeper servers listen, and
//! NXDOMAIN for every other name under `sandbox.test`. The observer hosts resolve through it: it is
//! their dockerd's `--dns` (so ZooKeeper in the containers uses it) and the nameserver of the
//! `/etc/resolv.conf` their sshd sees (so a check run over SSH resolves as ZooKeeper will).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use manifests::Environment;

use super::netns::{CLUSTER_NS, DNS_ADDRESS};
use super::{process, RUN_DIR};

/// The zone it is authoritative for.
pub const ZONE: &str = "sandbox.test";

pub struct Dns {
    child: Option<Child>,
    dir: PathBuf,
}

/// The resolv.conf the observer hosts use.
pub fn resolv_conf() -> PathBuf {
    Path::new(RUN_DIR).join("dns").join("resolv.conf")
}

impl Dns {
    pub fn start(env: &Environment) -> Result<Dns> {
        let dir = Path::new(RUN_DIR).join("dns");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let hosts: String = env
            .ensemble
            .participants()
            .iter()
            .filter_map(|p| {
                let address = env.ensemble.recorded_addresses.get(&p.ordinal)?;
                Some(format!(
                    "{address} {}\n",
                    super::lb_hostname(env, &p.service_name)
                ))
            })
            .collect();
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, hosts)?;
        std::fs::write(
            resolv_conf(),
            format!("nameserver {DNS_ADDRESS}\noptions timeout:1 attempts:2\n"),
        )?;
        let log = dir.join("dnsmasq.log");
        let child = process::spawn_in(
            CLUSTER_NS,
            "dnsmasq",
            &[
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--pid-file=",
                "--log-facility=-",
                &format!("--listen-address={DNS_ADDRESS}"),
                "--bind-interfaces",
                &format!("--addn-hosts={}", hosts_file.display()),
                &format!("--local=/{ZONE}/"),
            ],
            &log,
        )?;
        let mut dns = Dns {
            child: Some(child),
            dir,
        };
        dns.wait_ready()?;
        Ok(dns)
    }

    /// Until it answers a query.
    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "dnsmasq exited ({status}); its log ends with:\n{}",
                        process::tail(&self.dir.join("dnsmasq.log"), 20)
                    );
                }
            }
            if answers() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "dnsmasq did not come up within 10 s; its log ends with:\n{}",
                    process::tail(&self.dir.join("dnsmasq.log"), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::stop(&mut c);
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the server answers a DNS query (for the zone's SOA) from the root namespace.
fn answers() -> bool {
    let Ok(sock) = std::net::UdpSocket::bind("198.18.255.254:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    // A minimal query: id 0x1234, RD, one question "sandbox.test" SOA IN.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ZONE.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    if sock.send_to(&q, (DNS_ADDRESS, 53)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[0] == 0x12 && buf[1] == 0x34)
}
