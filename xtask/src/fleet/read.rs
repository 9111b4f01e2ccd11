//! The observer hosts of one run: each connected once (one SSH connection per host per run) and
//! read once ([`hosts::host_plan::Observed`]); the same connections then serve the update and the probes.
//! What a host needs is decided by the pure [`hosts::host_plan`], not here.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use hosts::host_plan::{self, Health, HostPlan, Observed};
use hosts::{HostFiles, Observer};
use manifests::Environment;

use crate::cli::SshArgs;
use crate::fleet::hostops::{self, ExporterCheck, Ports, ReadMode};
use crate::fleet::ssh::Host;
use crate::output::report::HostReport;

/// A host that was reached and read.
pub struct Reached<'e> {
    pub observer: &'e Observer,
    pub host: Host,
    pub observed: Observed,
}

/// The hosts of a run.
pub struct Fleet<'e> {
    /// The observers asked for, in inventory order.
    order: Vec<&'e Observer>,
    pub reached: Vec<Reached<'e>>,
    /// Hosts that could not be reached or read, with why.
    pub unreachable: Vec<(&'e Observer, String)>,
}

/// A reached host with what it needs.
pub struct Planned<'f, 'e> {
    pub reached: &'f Reached<'e>,
    pub plan: HostPlan,
}

impl<'e> Fleet<'e> {
    /// Connects to every observer (in parallel, at most `--parallel` at once) and reads each.
    pub async fn read(
        env: &Environment,
        observers: &[&'e Observer],
        ssh: &SshArgs,
        mode: ReadMode,
    ) -> Fleet<'e> {
        let results: Vec<_> = stream::iter(observers.iter().map(|o| async move {
            let read = async {
                let host = Host::connect(o, o.jump_hosts(&env.fleet), ssh).await?;
                match hostops::inspect(&host, o, env, mode).await {
                    Ok(observed) => anyhow::Ok((host, observed)),
                    Err(e) => {
                        host.close().await;
                        Err(e)
                    }
                }
            }
            .await;
            (*o, read)
        }))
        .buffered(usize::from(ssh.parallel))
        .collect()
        .await;
        let mut fleet = Fleet {
            order: observers.to_vec(),
            reached: vec![],
            unreachable: vec![],
        };
        for (observer, read) in results {
            match read {
                Ok((host, observed)) => fleet.reached.push(Reached {
                    observer,
                    host,
                    observed,
                }),
                Err(e) => fleet.unreachable.push((observer, format!("{e:#}"))),
            }
        }
        fleet
    }

    /// What each reached host needs to get `files` (in inventory order).
    pub fn plan<'f>(
        &'f self,
        env: &Environment,
        files: &[(&Observer, HostFiles)],
    ) -> Vec<Planned<'f, 'e>> {
        self.plan_resetting(env, files, &[])
    }

    /// [`Fleet::plan`], with the data of the observers named in `reset` set aside too
    /// (`deploy --reset-data`).
    pub fn plan_resetting<'f>(
        &'f self,
        env: &Environment,
        files: &[(&Observer, HostFiles)],
        reset: &[String],
    ) -> Vec<Planned<'f, 'e>> {
        self.reached
            .iter()
            .filter_map(|r| {
                let (_, f) = files.iter().find(|(o, _)| o.name == r.observer.name)?;
                let asked = reset.contains(&r.observer.name);
                Some(Planned {
                    reached: r,
                    plan: host_plan::plan_with(f, &r.observed, &env.fleet.metrics, asked),
                })
            })
            .collect()
    }

    /// The report of every host as planned (unreachable ones included), in inventory order.
    pub fn plan_reports(&self, planned: &[Planned<'_, '_>]) -> Vec<HostReport> {
        let mut out: Vec<HostReport> = planned
            .iter()
            .map(|p| HostReport::planned(p.reached.observer, &p.plan))
            .collect();
        out.extend(
            self.unreachable
                .iter()
                .map(|(o, why)| HostReport::unreachable(o, why)),
        );
        out.sort_by_key(|r| self.order.iter().position(|o| o.name == r.host));
        out
    }

    /// An error when a host was reached with the drift key (it ran its forced read-only command
    /// for our read): nothing can be written over such a connection, and a command that writes
    /// must say so before it changes anything.
    pub fn refuse_the_drift_key(&self) -> anyhow::Result<()> {
        let hosts: Vec<&str> = self
            .reached
            .iter()
            .filter(|r| r.observed.forced_command)
            .map(|r| r.observer.name.as_str())
            .collect();
        if hosts.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "the SSH connection to {} authenticated with the drift key (the host ran its forced read-only \
             command instead of this tool's read), which can change nothing; nothing was changed. Use the \
             deploy key: --identity <deploy key>, or an agent that does not offer the drift key first",
            hosts.join(", ")
        )
    }

    pub fn get(&self, name: &str) -> Option<&Reached<'e>> {
        self.reached.iter().find(|r| r.observer.name == name)
    }

    /// Probes the named reached hosts now, all at once (no scrape).
    pub async fn probe(&self, env: &Environment, names: &[&str]) -> BTreeMap<String, Health> {
        let ports = Ports::of(env);
        let probes = self
            .reached
            .iter()
            .filter(|r| names.contains(&r.observer.name.as_str()))
            .map(|r| async move {
                let h = hostops::probe(&r.host, r.observer, ports, ExporterCheck::Answers).await;
                (r.observer.name.clone(), h.ok())
            });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .filter_map(|(n, h)| Some((n, h?)))
            .collect()
    }

    pub async fn close(self) {
        for r in self.reached {
            r.host.close().await;
        }
    }
}
