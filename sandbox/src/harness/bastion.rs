//! The sandbox's bastion: a namespace with only sshd in it, the one host the observers' sshd
//! accepts connections from, as observers in a VPC reached through a jump host. The tool gets
//! there with ProxyJump, the bastion's host key pinned in the sandbox inventory.

use std::net::IpAddr;
use std::path::Path;
use std::process::Child;

use ::hosts::JumpHost;
use anyhow::{Context, Result};
use manifests::Environment;

use super::{netns, observers, process, RUN_DIR};

pub struct Bastion {
    pub name: String,
    pub address: IpAddr,
    ns: String,
    /// `authorized_keys` lines besides the deploy key's.
    authorized: String,
    sshd: Option<Child>,
}

impl Bastion {
    /// Starts the bastion of `env`'s fleet named by `j` (its namespace exists: [`netns::create`]).
    /// Forwarding to a destination is what it is for, nothing else: its sshd allows local
    /// forwarding only (no `-R` listeners, `AllowTcpForwarding local`); root logs in with the
    /// sandbox's deploy key, as on the observers, and the drift job's key may forward to the
    /// observers' SSH only (no shell, no command: `command="/bin/false"`), as docs/networking.md advises.
    pub fn start(j: &JumpHost, env: &Environment) -> Result<Bastion> {
        let address: IpAddr = j
            .address
            .parse()
            .with_context(|| format!("the sandbox bastion {} needs an IP address", j.name))?;
        let mut b = Bastion {
            name: j.name.clone(),
            address,
            ns: netns::jump_ns(&j.name),
            authorized: drift_job_line(env),
            sshd: None,
        };
        b.start_sshd(observers::host_key(&j.name))?;
        Ok(b)
    }

    /// Starts (or restarts) the bastion's sshd with the given private host key.
    pub fn start_sshd(&mut self, private_key: &str) -> Result<()> {
        self.stop();
        self.sshd = Some(observers::sshd(
            &self.name,
            &self.ns,
            self.address,
            &Path::new(RUN_DIR).join(&self.name),
            private_key,
            &self.authorized,
            "AllowTcpForwarding local\n",
        )?);
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            process::stop(&mut c);
        }
    }
}

/// The drift job's key on the bastion, as docs/networking.md advises: forwarding to the observers' SSH
/// and nothing else (a shell or command is /bin/false; with the bastion's
/// `AllowTcpForwarding local`, no remote listener either).
fn drift_job_line(env: &Environment) -> String {
    let Some(key) = &env.fleet.drift_key else {
        return String::new();
    };
    let open: Vec<String> = env
        .fleet
        .observers
        .iter()
        .map(|o| format!("permitopen=\"{}:{}\"", o.address, o.ssh.port))
        .collect();
    format!(
        "restrict,port-forwarding,command=\"/bin/false\",{} {key} drift job\n",
        open.join(",")
    )
}

impl Drop for Bastion {
    fn drop(&mut self) {
        self.stop();
    }
}
