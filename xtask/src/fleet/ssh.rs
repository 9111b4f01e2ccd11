//! SSH to observer hosts with the `openssh` crate: one multiplexed connection (ControlMaster) per
//! host per run, key-based, strict host key checking against the key pinned in the inventory only,
//! through the inventory's jump hosts (ProxyJump) when it names any.
//!
//! Each connection gets a generated `ssh_config` (`-F`) and `known_hosts` of its own. OpenSSH
//! passes only `-F` (not `-o`, `-i`) on to the jump hops, so everything a hop needs is in that
//! file: a `Host` block per jump host with its address, login, identity, timeout and
//! `HostKeyAlias`, under which its pinned key is the only line of `known_hosts` that names it.

use std::process::Stdio as StdStdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hosts::{HostKey, JumpHost, Observer, PublicKey};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use crate::cli::SshArgs;
use crate::fleet::script::Script;

/// A connection to one observer host.
pub struct Host {
    session: Session,
    pub name: String,
    _dir: tempfile::TempDir,
}

/// What running a remote command gave.
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Remote commands that run longer than this are abandoned.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a connection's master may sit idle before it ends by itself: only a process killed
/// without any cleanup (kill -9) leaves one behind, and then not for longer than this.
const MASTER_IDLE: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(3600) {
    Some(n) => n,
    None => unreachable!(),
};

/// The control sockets of the connections open now, so that an exit that runs no destructor
/// (a third signal) can still end their masters.
static MASTERS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

fn masters() -> std::sync::MutexGuard<'static, Vec<std::path::PathBuf>> {
    MASTERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends the master of every open connection (`ssh -O exit`), for an exit that skips the normal
/// close.
pub fn close_all_masters() {
    for socket in masters().drain(..) {
        let _ = std::process::Command::new("ssh")
            .arg("-S")
            .arg(&socket)
            .args(["-O", "exit", "zk-observers"])
            .stdin(StdStdio::null())
            .stdout(StdStdio::null())
            .stderr(StdStdio::null())
            .status();
    }
}

impl Host {
    /// Connects to `o` through `jumps` (none: straight to it), trusting only the pinned host keys.
    pub async fn connect(o: &Observer, jumps: &[JumpHost], args: &SshArgs) -> Result<Host> {
        let pinned = match &o.host_key {
            HostKey::Pinned(text) => PublicKey::parse(text)
                .map_err(|e| anyhow!("{}: the pinned host key is invalid: {e}", o.name))?,
            HostKey::NotPinned => return Err(crate::output::hinted(
                format!(
                    "{}: its SSH host key is not pinned in the inventory; refusing to connect",
                    o.name
                ),
                "record /etc/ssh/ssh_host_ed25519_key.pub of the host, checked on its console, \
                     as its host_key (manifests/src/environments/<env>/inventory.rs)",
            )),
        };
        let dir = tempfile::Builder::new()
            .prefix("zk-observers-ssh-")
            .tempdir_in(scratch_parent())?;
        let host_pattern = if o.ssh.port.get() == 22 {
            o.address.to_string()
        } else {
            format!("[{}]:{}", o.address, o.ssh.port)
        };
        let known_hosts = dir.path().join("known_hosts");
        let config = dir.path().join("config");
        let (jump_config, jump_known) = jump_blocks(o, jumps, args, &known_hosts)?;
        std::fs::write(
            &known_hosts,
            format!("{host_pattern} {}\n{jump_known}", pinned.openssh()),
        )?;
        // Only the pinned keys count: no global known_hosts, no key updates, no prompts. The jump
        // hosts' blocks come first: for each option ssh takes the first value it finds.
        std::fs::write(
            &config,
            format!(
                "{jump_config}Host *\n  GlobalKnownHostsFile /dev/null\n  UpdateHostKeys no\n  BatchMode yes\n  CheckHostIP no\n  \
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
            .control_directory(dir.path())
            .control_persist(openssh::ControlPersist::IdleFor(MASTER_IDLE));
        if let Some(key) = &args.identity {
            b.keyfile(key);
        }
        if let Some(last) = jumps.last() {
            // The chain's earlier hops are in the last one's block (ProxyJump).
            b.jump_hosts([last.name.clone()]);
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
                    return Err(host_key_mismatch(o, &pinned, jumps, &config).await);
                }
                // A jump hop's own messages do not reach the connection's error: ask each hop.
                if let Some(e) = diagnose_jumps(o, jumps, &config).await {
                    return Err(e);
                }
                bail!(
                    "{}: cannot connect over SSH to {}@{}:{}{}: {}",
                    o.name,
                    o.ssh.user,
                    o.address,
                    o.ssh.port,
                    via(jumps),
                    text.trim()
                );
            }
            Err(_) => bail!(
                "{}: SSH connection to {}{} timed out after {:?}",
                o.name,
                o.address,
                via(jumps),
                args.connect_timeout
            ),
        };
        tracing::debug!(host = %o.name, "connected");
        masters().push(session.control_socket().to_path_buf());
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
                stdout: out.stdout,
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

    /// Like [`Host::run`]; a non-zero exit is an error carrying stderr. A script other than the
    /// host read that gets the drift key's forced command's answer instead (this connection
    /// authenticated with the drift key: whatever is asked, the read-only command runs) is an
    /// error too: nothing was done.
    pub async fn run_ok(
        &self,
        what: &str,
        script: Script,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let out = self.run(script, args, stdin).await?;
        if out.status != 0 {
            bail!(
                "{}: {what} failed (exit {}): {}",
                self.name,
                out.status,
                out.stderr.trim()
            );
        }
        if script != Script::Inspect && out.stdout.starts_with(b"=== invoked ") {
            bail!(
                "{}: {what} did not run: the host ran the drift key's forced read-only command instead, so this \
                 connection authenticated with the drift key, which can change nothing. Use the deploy key \
                 (--identity, or an agent that offers it first)",
                self.name
            );
        }
        Ok(out.stdout)
    }

    pub async fn close(self) {
        let socket = self.session.control_socket().to_path_buf();
        masters().retain(|s| *s != socket);
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

/// ` through bastion-1, bastion-2`, or nothing.
fn via(jumps: &[JumpHost]) -> String {
    if jumps.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = jumps.iter().map(|j| j.name.as_str()).collect();
    format!(" through {}", names.join(", "))
}

/// The `Host` blocks of the jump hosts and their `known_hosts` lines (under their names, as
/// `HostKeyAlias`): each hop reached from the previous one, with this run's identity and timeout.
fn jump_blocks(
    o: &Observer,
    jumps: &[JumpHost],
    args: &SshArgs,
    known_hosts: &std::path::Path,
) -> Result<(String, String)> {
    let mut config = String::new();
    let mut known = String::new();
    for (i, j) in jumps.iter().enumerate() {
        let key =
            match &j.host_key {
                HostKey::Pinned(text) => PublicKey::parse(text).map_err(|e| {
                    anyhow!(
                        "{}: the pinned host key of jump host {} is invalid: {e}",
                        o.name,
                        j.name
                    )
                })?,
                HostKey::NotPinned => return Err(crate::output::hinted(
                    format!(
                        "{}: the SSH host key of jump host {} is not pinned in the inventory; \
                         refusing to connect through it",
                        o.name, j.name
                    ),
                    "record /etc/ssh/ssh_host_ed25519_key.pub of the jump host, checked on its \
                     console, as its host_key (manifests/src/environments/<env>/inventory.rs)",
                )),
            };
        known.push_str(&format!("{} {}\n", j.name, key.openssh()));
        let previous = if i == 0 {
            "none"
        } else {
            jumps[i - 1].name.as_str()
        };
        config.push_str(&format!(
            "Host {}\n  HostName {}\n  Port {}\n  User {}\n  HostKeyAlias {}\n  HostKeyAlgorithms {}\n  ProxyJump {previous}\n  \
             UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  ConnectTimeout {}\n  ControlMaster no\n  ControlPath none\n",
            j.name,
            j.address,
            j.ssh.port,
            j.ssh.user,
            j.name,
            key.algorithm,
            config_path(known_hosts)?,
            args.connect_timeout.as_secs().max(1),
        ));
        if let Some(identity) = &args.identity {
            config.push_str(&format!(
                "  IdentityFile {}\n  IdentitiesOnly yes\n",
                config_path(identity)?
            ));
        }
    }
    Ok((config, known))
}

/// Where a connection's scratch directory (its ssh_config, known_hosts, control socket) goes:
/// `TMPDIR`, unless its path has a character a shell would take apart (OpenSSH puts the `-F`
/// path into the command line it runs for ProxyJump unquoted), then `/tmp`.
fn scratch_parent() -> std::path::PathBuf {
    let tmp = std::env::temp_dir();
    let plain = tmp.to_str().is_some_and(|t| {
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    });
    if plain {
        tmp
    } else {
        std::path::PathBuf::from("/tmp")
    }
}

/// A path as an `ssh_config` value: double-quoted (a space in `--identity` or `TMPDIR` must not
/// split it), `%` doubled (ssh expands `%` tokens in these values); a path with a `"` or a
/// newline cannot be written there and is refused.
fn config_path(path: &std::path::Path) -> Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))?;
    if text.contains('"') || text.contains('\n') || text.contains('\r') {
        bail!(
            "{}: a path with a double quote or a line break cannot be given to ssh; move the file",
            path.display()
        );
    }
    Ok(format!("\"{}\"", text.replace('%', "%%")))
}

/// The public half of the private key at `identity` (its `.pub` file, else `ssh-keygen -y`),
/// when it can be had without a passphrase.
pub fn identity_public_key(identity: &std::path::Path) -> Option<PublicKey> {
    let public = identity.with_extension(match identity.extension() {
        Some(e) => format!("{}.pub", e.to_string_lossy()),
        None => "pub".to_string(),
    });
    if let Ok(text) = std::fs::read_to_string(&public) {
        return PublicKey::parse(&text).ok();
    }
    let out = std::process::Command::new("ssh-keygen")
        .args(["-y", "-P", "", "-f"])
        .arg(identity)
        .stdin(StdStdio::null())
        .stderr(StdStdio::null())
        .output()
        .ok()?;
    PublicKey::parse(String::from_utf8_lossy(&out.stdout).trim()).ok()
}

/// Refuses to change hosts with the drift key as the identity: on every observer that key runs
/// the read-only command only, whatever is asked (and deploy keeps it so).
pub fn refuse_the_drift_key_as_identity(
    env: &manifests::Environment,
    args: &SshArgs,
) -> Result<()> {
    let (Some(identity), Some(drift)) = (&args.identity, drift_key(env)) else {
        return Ok(());
    };
    if identity_public_key(identity).is_some_and(|k| k.blob == drift.blob) {
        bail!(
            "--identity {} is the drift key of {} (fleet.drift_key): on every observer it may run the \
             read-only command only, so it can change nothing. Deploy with the deploy key; the drift key \
             belongs to the scheduled drift job",
            identity.display(),
            env.name
        );
    }
    Ok(())
}

/// The fingerprint of the key `ssh-keyscan` gets from `address`, run here or (with `through`:
/// `-F config` and a jump host's name) on that jump host; `unknown (...)` when it gets none.
async fn presented_fingerprint(
    algorithm: &str,
    address: &str,
    port: u16,
    through: Option<(&std::path::Path, &str)>,
) -> String {
    scan_key(algorithm, address, port, through)
        .await
        .map_or_else(
            || "unknown (ssh-keyscan got no key)".to_string(),
            |k| k.fingerprint(),
        )
}

/// A host key that does not match the pinned one, with both fingerprints. `who` presented it;
/// `what` is re-installed if the key changed for a good reason, and `field` is then updated.
fn key_mismatch(
    o: &Observer,
    who: &str,
    pinned: &PublicKey,
    presented: &str,
    what: &str,
    field: &str,
) -> anyhow::Error {
    crate::output::hinted(
        format!(
            "{}: the host key presented by {who} does not match the pinned one; refusing to connect.\n  \
             pinned:    {}\n  presented: {presented}",
            o.name,
            pinned.fingerprint()
        ),
        format!(
            "if {what} was re-installed, check the new key on its console, then update {field} in the inventory"
        ),
    )
}

async fn scan_key(
    algorithm: &str,
    address: &str,
    port: u16,
    through: Option<(&std::path::Path, &str)>,
) -> Option<PublicKey> {
    let port = port.to_string();
    let Some((config, jump)) = through else {
        let out = tokio::process::Command::new("ssh-keyscan")
            .args(["-T", "5", "-t", algorithm, "-p", &port, address])
            .stderr(StdStdio::null())
            .output()
            .await
            .ok()?;
        return String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.split_once(' ')
                .and_then(|(_, key)| PublicKey::parse(key).ok())
        });
    };
    // Through a jump host: no command runs there (a bastion may allow forwarding only). ssh
    // itself connects through it, records the key the host presents in a scratch known_hosts
    // (accept-new) during the key exchange, and gives up at authentication (none offered).
    let scratch = tempfile::tempdir().ok()?;
    let known = scratch.path().join("known_hosts");
    let _ = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(config)
        .args(["-o", &format!("ProxyJump={jump}")])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "HostKeyAlias=scanned",
            "-o",
            &format!("HostKeyAlgorithms={algorithm}"),
            "-o",
            "PreferredAuthentications=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-p",
            &port,
            address,
            "true",
        ])
        .stdin(StdStdio::null())
        .stdout(StdStdio::null())
        .stderr(StdStdio::null())
        .output()
        .await;
    std::fs::read_to_string(&known).ok()?.lines().find_map(|l| {
        l.split_once(' ')
            .and_then(|(_, key)| PublicKey::parse(key).ok())
    })
}

/// Why a connection through `jumps` failed at one of them, if it did: each hop is asked in turn
/// for the one thing a jump host is for, a forward to the next hop's SSH (`ssh -F config -W
/// NEXT HOP`; no shell: a bastion may allow forwarding only), and the first that fails is named
/// with what ssh said.
async fn diagnose_jumps(
    o: &Observer,
    jumps: &[JumpHost],
    config: &std::path::Path,
) -> Option<anyhow::Error> {
    for (i, j) in jumps.iter().enumerate() {
        let next = match jumps.get(i + 1) {
            Some(n) => format!("{}:{}", bracketed(&n.address), n.ssh.port),
            None => format!("{}:{}", bracketed(&o.address.to_string()), o.ssh.port),
        };
        let out = tokio::process::Command::new("ssh")
            .arg("-F")
            .arg(config)
            .args(["-W", &next, j.name.as_str()])
            .stdin(StdStdio::null())
            .output()
            .await
            .ok()?;
        if out.status.success() {
            continue;
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if said.contains("Host key verification failed") {
            return Some(jump_key_mismatch(o, jumps, i, config).await);
        }
        // Reached and authenticated, but the forward to the next hop failed: that hop is the
        // one not answering (or not allowed from there).
        if said.contains("open failed") || said.contains("stdio forwarding failed") {
            if i + 1 < jumps.len() {
                continue;
            }
            return None;
        }
        return Some(anyhow!(
            "{}: cannot reach jump host {} ({}:{}{}): {said}",
            o.name,
            j.name,
            j.address,
            j.ssh.port,
            via(&jumps[..i])
        ));
    }
    None
}

/// An address as `-W` takes it: an IPv6 address in brackets.
fn bracketed(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

/// A jump host presented another key than the pinned one: both fingerprints.
async fn jump_key_mismatch(
    o: &Observer,
    jumps: &[JumpHost],
    i: usize,
    config: &std::path::Path,
) -> anyhow::Error {
    let j = &jumps[i];
    let pinned = match &j.host_key {
        HostKey::Pinned(text) => PublicKey::parse(text).ok(),
        HostKey::NotPinned => None,
    };
    let Some(pinned) = pinned else {
        return anyhow!(
            "{}: jump host {} has no valid pinned host key",
            o.name,
            j.name
        );
    };
    let through = (i > 0).then(|| (config, jumps[i - 1].name.as_str()));
    let presented =
        presented_fingerprint(&pinned.algorithm, &j.address, j.ssh.port.get(), through).await;
    key_mismatch(
        o,
        &format!("jump host {} ({})", j.name, j.address),
        &pinned,
        &presented,
        "the bastion",
        "its host_key",
    )
}

/// Explains a host key mismatch, with the pinned and the presented fingerprints: of the jump host
/// whose key did not match, or of the observer (scanned from the last jump host when there are).
async fn host_key_mismatch(
    o: &Observer,
    pinned: &PublicKey,
    jumps: &[JumpHost],
    config: &std::path::Path,
) -> anyhow::Error {
    if let Some(e) = diagnose_jumps(o, jumps, config).await {
        return e;
    }
    let through = jumps.last().map(|j| (config, j.name.as_str()));
    let address = o.address.to_string();
    let presented =
        presented_fingerprint(&pinned.algorithm, &address, o.ssh.port.get(), through).await;
    key_mismatch(
        o,
        &format!("{address}{}", via(jumps)),
        pinned,
        &presented,
        "the host",
        "host_key",
    )
}

/// The environment's drift key, if it has one (validation made sure it parses).
pub fn drift_key(env: &manifests::Environment) -> Option<hosts::ssh_login::PublicKey> {
    env.fleet
        .drift_key
        .as_deref()
        .and_then(|k| hosts::ssh_login::PublicKey::parse(k).ok())
}
