//! SSH to observer hosts with the `openssh` crate: one multiplexed connection (ControlMaster) per
//! host per run, key-based, strict host key checking against the key pinned in the inventory only.

use std::process::Stdio as StdStdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hosts::{HostKey, Observer, PublicKey};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use crate::cli::SshArgs;
use crate::hostops::Script;

/// A connection to one observer host.
pub struct Host {
    session: Session,
    pub name: String,
    _dir: tempfile::TempDir,
}

/// What running a remote command gave.
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Remote commands that run longer than this are abandoned.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

impl Host {
    /// Connects to `o`, trusting only its pinned host key.
    pub async fn connect(o: &Observer, args: &SshArgs) -> Result<Host> {
        let pinned = match &o.host_key {
            HostKey::Pinned(text) => PublicKey::parse(text).map_err(|e| anyhow!("{}: the pinned host key is invalid: {e}", o.name))?,
            HostKey::NotPinned => bail!(
                "{}: its SSH host key is not pinned in the inventory; refusing to connect. Record \
                 /etc/ssh/ssh_host_ed25519_key.pub of the host, checked on its console, as host_key",
                o.name
            ),
        };
        let dir = tempfile::Builder::new()
            .prefix("zk-observers-ssh-")
            .tempdir()?;
        let host_pattern = if o.ssh.port.get() == 22 {
            o.address.to_string()
        } else {
            format!("[{}]:{}", o.address, o.ssh.port)
        };
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("{host_pattern} {}\n", pinned.openssh()),
        )?;
        // Only the pinned key counts: no global known_hosts, no key updates, no prompts.
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  GlobalKnownHostsFile /dev/null\n  UpdateHostKeys no\n  BatchMode yes\n  CheckHostIP no\n  \
                 HostKeyAlgorithms {}\n  ServerAliveInterval 10\n  ServerAliveCountMax 3\n",
                pinned.algorithm
            ),
        )?;
        let mut b = SessionBuilder::default();
        b.user(o.ssh.user.clone())
            .port(o.ssh.port.get())
            .known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(&known_hosts)
            .config_file(&config)
            .connect_timeout(args.connect_timeout)
            .control_directory(dir.path());
        if let Some(key) = &args.identity {
            b.keyfile(key);
        }
        // native mux: commands go over the ControlMaster socket from this process, without an ssh
        // client process per command.
        let connect = b.connect_mux(o.address.to_string());
        let session = match tokio::time::timeout(
            args.connect_timeout + Duration::from_secs(5),
            connect,
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let text = format!("{e:#}: {}", source_text(&e));
                if text.contains("Host key verification failed")
                    || text.contains("HOST IDENTIFICATION HAS CHANGED")
                {
                    return Err(host_key_mismatch(o, &pinned).await);
                }
                bail!(
                    "{}: cannot connect over SSH to {}@{}:{}: {}",
                    o.name,
                    o.ssh.user,
                    o.address,
                    o.ssh.port,
                    text.trim()
                );
            }
            Err(_) => bail!(
                "{}: SSH connection to {} timed out after {:?}",
                o.name,
                o.address,
                args.connect_timeout
            ),
        };
        tracing::debug!(host = %o.name, "connected");
        Ok(Host {
            session,
            name: o.name.clone(),
            _dir: dir,
        })
    }

    /// Runs `script` on the host with `args`, feeding `stdin`.
    pub async fn run(&self, script: Script, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let run = async {
            let mut cmd = self.session.command(script.shell());
            cmd.arg("-c").arg(script.text()).arg("zk-observers");
            for a in args {
                cmd.arg(*a);
            }
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().await?;
            if let Some(bytes) = stdin {
                let mut pipe = child.stdin().take().context("the remote command's stdin")?;
                pipe.write_all(bytes).await?;
                pipe.shutdown().await?;
                drop(pipe);
            }
            let out = child.wait_with_output().await?;
            anyhow::Ok(Output {
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        };
        tokio::time::timeout(COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| {
                anyhow!(
                    "{}: a remote command did not finish within {COMMAND_TIMEOUT:?}",
                    self.name
                )
            })?
            .with_context(|| format!("{}: running a remote command", self.name))
    }

    /// Like [`Host::run`]; a non-zero exit is an error carrying stderr.
    pub async fn run_ok(
        &self,
        what: &str,
        script: Script,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<String> {
        let out = self.run(script, args, stdin).await?;
        if out.status != 0 {
            bail!(
                "{}: {what} failed (exit {}): {}",
                self.name,
                out.status,
                out.stderr.trim()
            );
        }
        Ok(out.stdout)
    }

    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

fn source_text(e: &openssh::Error) -> String {
    let mut s = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(&x.to_string());
        s.push(' ');
        src = x.source();
    }
    s
}

/// Explains a host key mismatch, with the pinned and the presented fingerprints.
async fn host_key_mismatch(o: &Observer, pinned: &PublicKey) -> anyhow::Error {
    let scan = tokio::process::Command::new("ssh-keyscan")
        .args([
            "-T",
            "5",
            "-t",
            &pinned.algorithm,
            "-p",
            &o.ssh.port.to_string(),
            &o.address.to_string(),
        ])
        .stderr(StdStdio::null())
        .output()
        .await;
    let presented = scan
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
                l.split_once(' ')
                    .and_then(|(_, key)| PublicKey::parse(key).ok())
            })
        })
        .map_or_else(
            || "unknown (ssh-keyscan got no key)".to_string(),
            |k| k.fingerprint(),
        );
    anyhow!(
        "{}: the host key presented by {} does not match the pinned one; refusing to connect.\n  pinned:    {}\n  presented: {presented}\n\
         If the host was re-installed, check the new key on its console, then update host_key in the inventory",
        o.name,
        o.address,
        pinned.fingerprint()
    )
}
