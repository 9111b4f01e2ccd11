//! The reads of the cluster and the hosts together, for deploy, drift, diff and status: the one
//! place above both sides (`crate::cluster` and `crate::fleet` never import each other).

use std::collections::BTreeMap;

use anyhow::Result;
use hosts::{Observer, ServerAddress};
use manifests::Environment;

use crate::cli::SshArgs;
use crate::cluster::plan::{plan, Plan, Planner};
use crate::cluster::{lb, Cluster};
use crate::fleet::hostops::ReadMode;
use crate::fleet::Fleet;

/// What deploy and drift read before deciding anything: the plan of every desired object, the
/// load balancers' live addresses (an error while they are pending), and every observer host,
/// connected, read and probed. The cluster and the hosts are read at the same time: the SSH
/// handshakes do not wait for the API server.
pub struct Reads<'e> {
    pub plan: Plan,
    pub live: Result<BTreeMap<u32, ServerAddress>>,
    /// The ensemble as it runs (its StatefulSet and pods).
    pub ensemble: Option<crate::cluster::ensemble::LiveEnsemble>,
    pub fleet: Fleet<'e>,
    /// The retired observers' hosts (`fleet.retired`), read the same way.
    pub retired: Fleet<'e>,
}

impl Reads<'_> {
    pub async fn close(self) {
        self.fleet.close().await;
        self.retired.close().await;
    }
}

pub async fn read_cluster_and_hosts<'e>(
    cluster: &Cluster,
    env: &'e Environment,
    ssh: &SshArgs,
    planner: Planner,
    mode: ReadMode,
) -> Result<Reads<'e>> {
    let objects = manifests::desired_objects(env);
    let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
    let retired: Vec<&Observer> = env.fleet.retired.iter().map(|r| &r.observer).collect();
    let cluster_reads = async {
        let plan = plan(cluster, env, &objects, planner).await?;
        tracing::info!("cluster planned");
        // The per-pod Services were just read: their addresses need no other request.
        let live = lb::addresses_from(env, |r| plan.live(r).cloned());
        let ensemble = crate::cluster::ensemble::read(cluster, env).await?;
        anyhow::Ok((plan, live, ensemble))
    };
    let hosts = async {
        tokio::join!(
            Fleet::read(env, &observers, ssh, mode),
            Fleet::read(env, &retired, ssh, mode)
        )
    };
    let (cluster_reads, (fleet, retired)) = tokio::join!(cluster_reads, hosts);
    match cluster_reads {
        Ok((plan, live, ensemble)) => Ok(Reads {
            plan,
            live,
            ensemble,
            fleet,
            retired,
        }),
        Err(e) => {
            fleet.close().await;
            retired.close().await;
            Err(e)
        }
    }
}
