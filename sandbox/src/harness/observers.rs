//! Observer hosts: a network namespace each, with OpenSSH's sshd and a dockerd of its own.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hosts::Observer;

use super::netns::observer_ns;
use super::{process, RUN_DIR, STATE_DIR};

pub struct ObserverHost {
    pub name: String,
    pub address: IpAddr,
    pub myid: u32,
    pub ns: String,
    /// `unix://...` socket of this host's dockerd.
    pub docker_host: String,
    pub deploy_dir: PathBuf,
    dir: PathBuf,
    dockerd: Option<Child>,
    sshd: Option<Child>,
}

/// The checked-in test-only host keys of the sandbox environment, by host name.
pub fn host_key(name: &str) -> &'static str {
    match name {
        "zk-observer-1" => {
            include_str!("../../../tests/sandbox/ssh/zk-observer-1.host_ed25519_key")
        }
        "zk-observer-2" => {
            include_str!("../../../tests/sandbox/ssh/zk-observer-2.host_ed25519_key")
        }
        "sandbox-bastion" => {
            include_str!("../../../tests/sandbox/ssh/sandbox-bastion.host_ed25519_key")
        }
        other => panic!("no sandbox host key for {other}"),
    }
}

const DEPLOY_PUBLIC_KEY: &str = include_str!("../../../tests/sandbox/ssh/deploy_ed25519_key.pub");

fn cgroup_parent(name: &str) -> String {
    format!("zk-observers-{name}")
}

/// Kills what a killed run's containers left behind (their processes live in this host's cgroup).
pub fn kill_containers(name: &str) {
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for c in controllers.flatten() {
        let root = c.path().join(cgroup_parent(name));
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if e.file_name() == "cgroup.procs" {
                    let pids = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let pids: Vec<&str> = pids.split_whitespace().collect();
                    if !pids.is_empty() {
                        let _ = Command::new("kill")
                            .arg("-KILL")
                            .args(&pids)
                            .stderr(Stdio::null())
                            .status();
                    }
                }
            }
        }
    }
}

/// Sets the restart policy of every container in a Docker data root to `no`, before its dockerd
/// starts: the containers of a run that was killed (or whose dockerd was stopped first) would
/// otherwise start again with the next run's dockerd — with the bind sources the sandbox removed
/// since. Started with `no`, they stay stopped until the sandbox removes them through the API
/// (which also frees their layers).
fn never_restart(data_root: &Path) -> Result<()> {
    let Ok(containers) = std::fs::read_dir(data_root.join("containers")) else {
        return Ok(());
    };
    for c in containers.flatten() {
        let path = c.path().join("hostconfig.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut config: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        if config["RestartPolicy"]["Name"] != "no" {
            config["RestartPolicy"] = serde_json::json!({"Name": "no", "MaximumRetryCount": 0});
            std::fs::write(&path, serde_json::to_vec(&config)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Starts sshd in namespace `ns` on `address`, with `private_key` as its host key, the sandbox's
/// deploy key and `authorized` (more `authorized_keys` lines) authorized for root, and `extra`
/// sshd_config lines; waits until it listens.
pub(super) fn sshd(
    name: &str,
    ns: &str,
    address: IpAddr,
    dir: &Path,
    private_key: &str,
    authorized: &str,
    extra: &str,
) -> Result<Child> {
    std::fs::create_dir_all("/run/sshd")?;
    std::fs::create_dir_all(dir)?;
    let key = dir.join("ssh_host_ed25519_key");
    std::fs::write(&key, private_key)?;
    super::set_mode(&key, 0o600)?;
    let authorized_keys = dir.join("authorized_keys");
    std::fs::write(&authorized_keys, format!("{DEPLOY_PUBLIC_KEY}{authorized}"))?;
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {address}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {} .ssh/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n{extra}",
            key.display(),
            dir.join("sshd.pid").display(),
            authorized_keys.display(),
        ),
    )?;
    let home = root_home(dir)?;
    let log = dir.join("sshd.log");
    // sshd in a mount namespace of its own, where /root is this host's home: a separate
    // machine does not share this one's root dotfiles (a heavy ~/.bashrc would run on every
    // SSH command of every test host), and /etc/resolv.conf names the sandbox's DNS server,
    // as this host's dockerd does. `unshare` and `sh` exec, so the child is sshd.
    let child = process::spawn_in(
        ns,
        "unshare",
        &[
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            "mount --bind \"$0\" /root && mount --bind \"$2\" /etc/resolv.conf && exec /usr/sbin/sshd -D -e -f \"$1\"",
            &home.display().to_string(),
            &config.display().to_string(),
            &super::dns::resolv_conf().display().to_string(),
        ],
        &log,
    )?;
    // Listening, as it says (a connection from here may be refused by the host's firewall: only
    // its bastion may reach it).
    wait_for(
        &format!("sshd of {name}"),
        Duration::from_secs(20),
        &log,
        || process::tail(&log, 50).contains(&format!("Server listening on {address} port 22")),
    )?;
    Ok(child)
}

/// root's home directory on this host, as on a fresh Debian install (base-files' dotfiles).
fn root_home(dir: &Path) -> Result<PathBuf> {
    let home = dir.join("root");
    std::fs::create_dir_all(&home)?;
    super::set_mode(&home, 0o700)?;
    for (from, to) in [("dot.bashrc", ".bashrc"), ("dot.profile", ".profile")] {
        let from = Path::new("/usr/share/base-files").join(from);
        if from.exists() {
            std::fs::copy(&from, home.join(to))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(home)
}

fn wait_for(
    what: &str,
    timeout: Duration,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > timeout {
            bail!(
                "{what} did not come up within {timeout:?}; its log ends with:\n{}",
                process::tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

impl ObserverHost {
    pub fn start(o: &Observer, private_host_key: &str) -> Result<ObserverHost> {
        let dir = Path::new(RUN_DIR).join(&o.name);
        std::fs::create_dir_all(&dir)?;
        let state = Path::new(STATE_DIR).join(&o.name);
        std::fs::create_dir_all(state.join("docker"))?;
        let socket = dir.join("docker.sock");
        let mut host = ObserverHost {
            name: o.name.clone(),
            address: o.address,
            myid: o.myid.get(),
            ns: observer_ns(&o.name),
            docker_host: format!("unix://{}", socket.display()),
            deploy_dir: PathBuf::from(&o.deploy_dir.0),
            dir,
            dockerd: None,
            sshd: None,
        };
        host.start_dockerd(&state)?;
        host.start_sshd(private_host_key)?;
        Ok(host)
    }

    fn start_dockerd(&mut self, state: &Path) -> Result<()> {
        let id = self.myid;
        never_restart(&state.join("docker"))?;
        let log = self.dir.join("dockerd.log");
        let child = process::spawn_in(
            &self.ns,
            "dockerd",
            &[
                "--data-root",
                &state.join("docker").display().to_string(),
                "--exec-root",
                &self.dir.join("docker-exec").display().to_string(),
                "--pidfile",
                &self.dir.join("docker.pid").display().to_string(),
                "-H",
                &self.docker_host,
                "--bip",
                &format!("198.19.{id}.129/25"),
                "--default-address-pool",
                &format!("base=198.19.{id}.0/25,size=28"),
                "--cgroup-parent",
                &cgroup_parent(&self.name),
                // The host's resolver: the sandbox's DNS server (the cloud's private zone).
                "--dns",
                super::netns::DNS_ADDRESS,
            ],
            &log,
        )?;
        self.dockerd = Some(child);
        wait_for(
            &format!("dockerd of {}", self.name),
            Duration::from_secs(60),
            &log,
            || {
                self.docker(&["version", "--format", "{{.Server.Version}}"])
                    .is_ok()
            },
        )?;
        // Containers of a killed run: gone with this run.
        let stale = self.docker(&["ps", "-aq"])?;
        let ids: Vec<&str> = stale.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            self.docker(&args)?;
        }
        Ok(())
    }

    /// Starts (or restarts) sshd with the given private host key.
    pub fn start_sshd(&mut self, private_key: &str) -> Result<()> {
        if let Some(mut c) = self.sshd.take() {
            process::stop(&mut c);
        }
        self.sshd = Some(sshd(
            &self.name,
            &self.ns,
            self.address,
            &self.dir,
            private_key,
            "",
            &format!("SetEnv DOCKER_HOST={}\n", self.docker_host),
        )?);
        Ok(())
    }

    /// The login user's home on this host (root's, mounted at /root for its sshd).
    pub fn home(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The pid of the host's sshd (its connections are its children).
    pub fn sshd_pid(&self) -> Option<u32> {
        self.sshd.as_ref().map(std::process::Child::id)
    }

    /// Stops the host's sshd (the host stays up: nothing answers on its SSH port).
    pub fn stop_sshd(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            process::stop(&mut c);
        }
    }

    /// Runs the docker CLI against this host's dockerd.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(&self.docker_host)
            .args(args)
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker {} on {} failed: {}",
                args.join(" "),
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The id of the running container of compose service `service` (`zookeeper`, `exporter`).
    pub fn container_id(&self, service: &str) -> Result<String> {
        let filter = format!("label=com.docker.compose.service={service}");
        let id = self.docker(&["ps", "-q", "--filter", &filter])?;
        match id.trim() {
            "" => bail!("no running {service} container on {}", self.name),
            id => Ok(id.to_string()),
        }
    }

    /// Takes the host's link down (unreachable) or up again.
    pub fn set_link(&self, up: bool) -> Result<()> {
        super::netns::set_link(self.myid, up)
    }

    pub fn stop(&mut self) {
        if self.dockerd.is_some() {
            if let Ok(ids) = self.docker(&["ps", "-aq"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = self.docker(&args);
                }
            }
        }
        for c in [self.sshd.take(), self.dockerd.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            process::stop(&mut c);
        }
        kill_containers(&self.name);
    }
}
