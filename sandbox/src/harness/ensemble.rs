//! The in-cluster ensemble, for real: three ZooKeeper servers (Debian's `zookeeper` package) in the
//! cluster namespace, listening on the load-balancer addresses of the sandbox environment.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use manifests::Environment;

use super::netns::CLUSTER_NS;
use super::{process, RUN_DIR};

pub struct Ensemble {
    pub servers: Vec<Server>,
}

pub struct Server {
    pub id: u32,
    pub address: String,
    pub dir: PathBuf,
    /// The running server's process (none while it is stopped); tests stop and start servers of
    /// a shared sandbox, hence the lock.
    child: std::sync::Mutex<Option<Child>>,
}

impl Server {
    /// Starts this server's ZooKeeper (its zoo.cfg and data as they are in its directory).
    fn spawn(dir: &Path) -> Result<Child> {
        Server::spawn_in(CLUSTER_NS, dir)
    }

    /// Starts the ZooKeeper of `dir` in network namespace `ns`.
    fn spawn_in(ns: &str, dir: &Path) -> Result<Child> {
        // Netty's codec on the class path: what quorum TLS needs (harmless without it).
        let classpath = format!(
            "{}:/usr/share/java/zookeeper.jar:{}",
            dir.display(),
            super::keystores::TLS_CLASS_PATH
        );
        let cfg_path = dir.join("zoo.cfg").display().to_string();
        process::spawn_in(
            ns,
            "java",
            &[
                "-Xmx160m",
                "-XX:+UseSerialGC",
                "-Dzookeeper.log.dir=/tmp",
                "-cp",
                &classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                &cfg_path,
            ],
            &dir.join("server.log"),
        )
    }

    /// Stops the server (a leader that goes away, as when its pod is deleted).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            process::stop(&mut c);
        }
    }

    /// Starts it again, on its data as it is.
    pub fn start(&self) -> Result<()> {
        let mut child = self.child.lock().unwrap();
        if child.is_none() {
            *child = Some(Server::spawn(&self.dir)?);
        }
        Ok(())
    }

    /// Restarts it with `keys` (zoo.cfg lines) in place of its quorum TLS keys, as a rolling
    /// restart of the chart does after a change of the participants' configuration.
    pub fn restart_with(&self, keys: &str) -> Result<()> {
        let path = self.dir.join("zoo.cfg");
        let cfg = std::fs::read_to_string(&path)?;
        let kept: String = cfg
            .lines()
            .filter(|l| {
                !(l.starts_with("sslQuorum=")
                    || l.starts_with("portUnification=")
                    || l.starts_with("ssl.quorum."))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        self.stop();
        std::fs::write(&path, format!("{kept}{keys}"))?;
        self.start()
    }

    /// Its `Mode:` (`leader`, `follower`), or `down`.
    pub fn mode(&self) -> String {
        four_letter_word(&self.address, 2181, "srvr")
            .ok()
            .and_then(|a| {
                a.lines()
                    .find_map(|l| l.strip_prefix("Mode: ").map(String::from))
            })
            .unwrap_or_else(|| "down".into())
    }
}

/// Sends a four-letter word and returns the answer.
pub fn four_letter_word(address: &str, port: u16, word: &str) -> std::io::Result<String> {
    let addr: SocketAddr = format!("{address}:{port}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

impl Ensemble {
    pub fn start(env: &Environment) -> Result<Ensemble> {
        Ensemble::start_with(env, false)
    }

    /// The ensemble; with `tls`, its quorum speaks TLS only: every participant gets the keys of
    /// the environment's ensemble artifact (`manifests::ensemble_tls`, its last step), reading
    /// the stores [`super::keystores::mount_participant_stores`] put where the artifact says.
    pub fn start_with(env: &Environment, tls: bool) -> Result<Ensemble> {
        let e = &env.ensemble;
        let lines: Vec<String> = e
            .participants()
            .iter()
            .map(|p| {
                format!(
                    "server.{}={}:{}:{}",
                    p.id, e.recorded_addresses[&p.ordinal], e.quorum_port, e.election_port
                )
            })
            .collect();
        let tls_lines = if tls {
            artifact_keys(env, manifests::ensemble_tls::Step::TlsOnly)
        } else {
            String::new()
        };
        let mut servers = Vec::new();
        for p in e.participants() {
            let address = e.recorded_addresses[&p.ordinal].to_string();
            let dir = Path::new(RUN_DIR).join("ensemble").join(&p.pod_name);
            std::fs::create_dir_all(dir.join("data"))
                .with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("data/myid"), format!("{}\n", p.id))?;
            // The participants list only each other: they never hear of the observers.
            let cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\nclientPortAddress={address}\n\
                 4lw.commands.whitelist=srvr,mntr,stat,ruok\nadmin.enableServer=false\nstandaloneEnabled=false\n{tls_lines}{}\n",
                dir.join("data").display(),
                lines.join("\n")
            );
            std::fs::write(dir.join("zoo.cfg"), cfg)?;
            let child = Server::spawn(&dir)?;
            servers.push(Server {
                id: p.id.get(),
                address,
                dir,
                child: std::sync::Mutex::new(Some(child)),
            });
        }
        Ok(Ensemble { servers })
    }

    /// Polls `srvr` until one server leads and the others follow.
    pub fn wait_for_quorum(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let modes: Vec<String> = self.servers.iter().map(Server::mode).collect();
            let leaders = modes.iter().filter(|m| *m == "leader").count();
            let followers = modes.iter().filter(|m| *m == "follower").count();
            if leaders == 1 && leaders + followers == self.servers.len() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let logs: Vec<String> = self
                    .servers
                    .iter()
                    .map(|s| {
                        format!(
                            "server {}:\n{}",
                            s.id,
                            process::tail(&s.dir.join("server.log"), 15)
                        )
                    })
                    .collect();
                bail!("the sandbox ensemble formed no quorum within {timeout:?} (modes: {modes:?})\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A rolling restart with `keys` (see [`Server::restart_with`]): one server at a time, the
    /// followers first and the leader last, each time waiting for the quorum to form again
    /// (upstream's availability rule for the move to TLS). `between` runs after each server.
    pub fn roll(&self, keys: &str, timeout: Duration, mut between: impl FnMut(u32)) -> Result<()> {
        let leader = self.leader().map(|s| s.id);
        let mut order: Vec<&Server> = self.servers.iter().collect();
        order.sort_by_key(|s| Some(s.id) == leader);
        for s in order {
            s.restart_with(keys)?;
            self.wait_for_quorum(timeout)
                .with_context(|| format!("after restarting server {}", s.id))?;
            between(s.id);
        }
        Ok(())
    }

    /// The server that currently leads.
    pub fn leader(&self) -> Option<&Server> {
        self.servers.iter().find(|s| {
            four_letter_word(&s.address, 2181, "srvr").is_ok_and(|a| a.contains("Mode: leader"))
        })
    }

    /// Runs ZooKeeper's CLI against `server` (address:port), e.g. `["create", "/probe", "hello"]`.
    pub fn cli(server: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("java")
            .args([
                "-Xmx64m",
                "-cp",
                "/usr/share/java/zookeeper.jar",
                "org.apache.zookeeper.ZooKeeperMain",
                "-server",
                server,
            ])
            .args(args)
            .output()
            .context("running the ZooKeeper CLI")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }

    pub fn stop(&mut self) {
        for s in &self.servers {
            s.stop();
        }
    }

    /// The ensemble rebuilt from scratch under its observers, as when a cluster's volumes are
    /// lost and the chart installs it again: every server stopped, its data but `myid` removed,
    /// every server started, a quorum formed again. Its epoch starts over, below what the
    /// observers accepted from the old one.
    pub fn rebuild(&self, timeout: Duration) -> Result<()> {
        for s in &self.servers {
            s.stop();
        }
        for s in &self.servers {
            let data = s.dir.join("data");
            for entry in std::fs::read_dir(&data)? {
                let entry = entry?;
                if entry.file_name() != "myid" {
                    let path = entry.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
            }
        }
        for s in &self.servers {
            s.start()?;
        }
        self.wait_for_quorum(timeout)
    }
}

/// The zoo.cfg keys of `step` of the environment's ensemble artifact, its comments left out.
pub fn artifact_keys(env: &Environment, step: manifests::ensemble_tls::Step) -> String {
    manifests::ensemble_tls::zoo_cfg_keys(env, step)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// An impostor: a plain ZooKeeper server, without any credential, that announces itself to the
/// ensemble as observer `id`, as anyone can who reaches the load balancers' quorum ports. It runs
/// in network namespace `ns` (so its connections come from that namespace's address), lists the
/// participants as a deployed zoo.cfg does (`servers`: its `server.N=...:participant` lines), and
/// serves clients on `client_address:client_port`. Stopped and removed when dropped.
pub struct Impostor {
    dir: PathBuf,
    child: Option<Child>,
    /// `address:port` of its client port.
    pub client: String,
}

impl Impostor {
    pub fn start(
        ns: &str,
        id: u32,
        servers: &[String],
        client_address: &str,
        client_port: u16,
    ) -> Result<Impostor> {
        Impostor::start_with(ns, id, servers, client_address, client_port, None)
    }

    /// [`Impostor::start`], speaking quorum TLS with the key store and trust store `tls`.
    pub fn start_with(
        ns: &str,
        id: u32,
        servers: &[String],
        client_address: &str,
        client_port: u16,
        tls: Option<(&super::keystores::Store, &super::keystores::Store)>,
    ) -> Result<Impostor> {
        let dir = Path::new(RUN_DIR).join(format!("impostor-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("data/myid"), format!("{id}\n"))?;
        let cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
             clientPortAddress={client_address}\npeerType=observer\n4lw.commands.whitelist=srvr\n\
             admin.enableServer=false\nstandaloneEnabled=false\n{}{}\nserver.{id}=0.0.0.0:2888:3888:observer\n",
            dir.join("data").display(),
            tls.map(|(key, trust)| super::keystores::zoo_cfg_lines(key, trust))
                .unwrap_or_default(),
            servers.join("\n")
        );
        std::fs::write(dir.join("zoo.cfg"), cfg)?;
        let child = Server::spawn_in(ns, &dir)?;
        Ok(Impostor {
            dir,
            child: Some(child),
            client: format!("{client_address}:{client_port}"),
        })
    }

    /// What it serves at `path` (`get`), or why not.
    pub fn get(&self, path: &str) -> String {
        Ensemble::cli(&self.client, &["get", path]).unwrap_or_else(|e| format!("{e:#}"))
    }

    /// Its `Mode:` (`observer` once it joined), or `down`.
    pub fn mode(&self) -> String {
        let (address, port) = self.client.rsplit_once(':').unwrap();
        four_letter_word(address, port.parse().unwrap(), "srvr")
            .ok()
            .and_then(|a| {
                a.lines()
                    .find_map(|l| l.strip_prefix("Mode: ").map(String::from))
            })
            .unwrap_or_else(|| "down".into())
    }

    /// The end of its log.
    pub fn log(&self) -> String {
        process::tail(&self.dir.join("server.log"), 20)
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::stop(&mut c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
