//! The ensemble as it runs in the cluster, read (never written): its StatefulSet and pods,
//! compared with what the environment says of it. The environment's `ensemble.replicas` and
//! `ensemble.version` are typed in by hand; a scale-out, a new image or a participant the code
//! does not know would otherwise go unnoticed until observers are configured wrong.

use std::collections::BTreeMap;

use anyhow::Result;
use hosts::{ImageRef, ZkVersion};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use manifests::Environment;
use serde::Serialize;

use crate::cluster::Cluster;

/// What the cluster runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveEnsemble {
    /// `spec.replicas` of the StatefulSet.
    pub replicas: u32,
    /// The image of the StatefulSet's ZooKeeper container (its first container, or the one named
    /// `zookeeper`).
    pub image: Option<String>,
    /// Its pods' names.
    pub pods: Vec<String>,
    /// The ZooKeeper container's environment as the chart sets it (`ZOO_*`, `ZK_*`): where the
    /// official image and the charts keep the ensemble's zoo.cfg settings. An entry taken from
    /// elsewhere (`valueFrom`) is shown as `<from ...>`, not resolved.
    pub config: BTreeMap<String, String>,
}

impl LiveEnsemble {
    /// The zoo.cfg settings the container's environment gives the participants, as the official
    /// image's entrypoint writes them (31z4/zookeeper-docker `docker-entrypoint.sh`: `tickTime`,
    /// `initLimit`, `syncLimit` from `ZOO_TICK_TIME`, `ZOO_INIT_LIMIT`, `ZOO_SYNC_LIMIT`, then each
    /// whitespace-separated `key=value` of `ZOO_CFG_EXTRA` as a line of its own), and as the
    /// incubator chart's `ZK_TICK_TIME`, `ZK_INIT_LIMIT`, `ZK_SYNC_LIMIT` name them. Later lines
    /// win, as in zoo.cfg.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, names) in [
            ("tickTime", ["ZK_TICK_TIME", "ZOO_TICK_TIME"]),
            ("initLimit", ["ZK_INIT_LIMIT", "ZOO_INIT_LIMIT"]),
            ("syncLimit", ["ZK_SYNC_LIMIT", "ZOO_SYNC_LIMIT"]),
        ] {
            if let Some(v) = names.iter().rev().find_map(|n| self.config.get(*n)) {
                out.insert(key.to_string(), v.clone());
            }
        }
        for entry in self
            .config
            .get("ZOO_CFG_EXTRA")
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if let Some((k, v)) = entry.split_once('=') {
                out.insert(k.to_string(), v.to_string());
            }
        }
        out
    }
}

/// Reads the StatefulSet `ensemble.statefulset` and its pods; `None` when there is no such
/// StatefulSet.
pub async fn read(cluster: &Cluster, env: &Environment) -> Result<Option<LiveEnsemble>> {
    let e = &env.ensemble;
    let sets = cluster.typed::<StatefulSet>(&e.namespace);
    let got = sets.get_opt(&e.statefulset).await.map_err(|err| {
        cluster.error(
            &format!("GET StatefulSet/{}/{}", e.namespace, e.statefulset),
            err,
        )
    })?;
    let Some(set) = got else {
        return Ok(None);
    };
    let spec = set.spec.unwrap_or_default();
    let containers = spec.template.spec.map(|s| s.containers).unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.name == "zookeeper")
        .or(containers.first());
    let image = container.and_then(|c| c.image.clone());
    let config = container
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.name.starts_with("ZOO_") || v.name.starts_with("ZK_"))
        .map(|v| {
            let value = match (v.value, v.value_from) {
                (Some(value), _) => value,
                (None, Some(from)) => format!(
                    "<from {}>",
                    serde_json::to_string(&from).unwrap_or_default()
                ),
                (None, None) => String::new(),
            };
            (v.name, value)
        })
        .collect();
    // Its pods, by its selector (what a scale-out or a stuck rollout leaves running).
    let selector = spec
        .selector
        .match_labels
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut pods = Vec::new();
    if !selector.is_empty() {
        let api = cluster.typed::<Pod>(&e.namespace);
        let list = api
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map_err(|err| cluster.error(&format!("LIST pods {selector}"), err))?;
        pods = list
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        pods.sort();
    }
    Ok(Some(LiveEnsemble {
        replicas: spec.replicas.unwrap_or(1).max(0) as u32,
        image,
        pods,
        config,
    }))
}

/// Where the running ensemble differs from the environment, each naming the field to update.
pub fn differences(env: &Environment, live: Option<&LiveEnsemble>) -> Vec<String> {
    let e = &env.ensemble;
    let Some(live) = live else {
        return vec![format!(
            "no StatefulSet {} in namespace {}: ensemble.statefulset names another, or the ensemble \
             is gone",
            e.statefulset, e.namespace
        )];
    };
    let mut out = Vec::new();
    if live.replicas != e.replicas {
        out.push(format!(
            "the StatefulSet has {} replicas, ensemble.replicas says {}: the observers' zoo.cfg would \
             list the wrong participants; set ensemble.replicas to {} (and deploy, which creates the \
             per-pod load balancers)",
            live.replicas, e.replicas, live.replicas
        ));
    }
    match live.image.as_deref().map(ImageRef::new) {
        Some(image) => match image.zookeeper_version() {
            Some(v) if !v.same_minor(e.version) => out.push(format!(
                "the StatefulSet runs {image} (ZooKeeper {}), ensemble.version says {}: set \
                 ensemble.version to {} and move the observers' image to the same minor version",
                short(v),
                e.version,
                short(v)
            )),
            Some(_) => {}
            None => out.push(format!(
                "the StatefulSet runs {image}, whose tag names no ZooKeeper version: ensemble.version \
                 ({}) cannot be checked; pin the chart's image to a release tag",
                e.version
            )),
        },
        None => out.push("the StatefulSet has no container image".to_string()),
    }
    // The chart's reconfigEnabled: an observer with a static config never joins an ensemble
    // that has it on (FastLeaderElection restarts on every message), so the code must know.
    let reconfig = live
        .settings()
        .get("reconfigEnabled")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if reconfig != e.reconfig_enabled {
        out.push(format!(
            "the StatefulSet's ZooKeeper environment {} reconfigEnabled, ensemble.reconfig_enabled \
             says {}: set ensemble.reconfig_enabled to {reconfig}{}",
            if reconfig { "turns on" } else { "does not turn on" },
            e.reconfig_enabled,
            if reconfig {
                " (validation then refuses the environment: observers with a static config cannot \
                 join such an ensemble; turn reconfigEnabled off in the chart's values)"
            } else {
                ""
            }
        ));
    }
    let known: Vec<String> = e.participants().into_iter().map(|p| p.pod_name).collect();
    let unknown: Vec<&String> = live.pods.iter().filter(|p| !known.contains(p)).collect();
    if !unknown.is_empty() {
        out.push(format!(
            "pod(s) {} run but are not participants the code knows ({}): update ensemble.replicas",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        ));
    }
    out
}

/// `3.8`, for messages about minor versions.
fn short(v: ZkVersion) -> String {
    format!("{}.{}", v.major, v.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(replicas: u32, image: &str, pods: &[&str]) -> LiveEnsemble {
        LiveEnsemble {
            replicas,
            image: Some(image.into()),
            pods: pods.iter().map(|p| p.to_string()).collect(),
            config: BTreeMap::new(),
        }
    }

    /// The settings as the official image's entrypoint writes them, and the seed chart's names.
    #[test]
    fn the_charts_environment_reads_as_zoo_cfg_and_reconfig_is_an_ensemble_change() {
        let env = manifests::environments::sandbox::environment();
        let pods = [
            "sandbox-zookeeper-0",
            "sandbox-zookeeper-1",
            "sandbox-zookeeper-2",
        ];
        let mut l = live(3, "zookeeper:3.8.0", &pods);
        l.config = BTreeMap::from([
            ("ZK_SYNC_LIMIT".to_string(), "10".to_string()),
            ("ZK_TICK_TIME".to_string(), "2000".to_string()),
            ("ZOO_INIT_LIMIT".to_string(), "5".to_string()),
            (
                "ZOO_CFG_EXTRA".to_string(),
                "metricsProvider.httpPort=7070 reconfigEnabled=true".to_string(),
            ),
        ]);
        let settings = l.settings();
        assert_eq!(settings["syncLimit"], "10");
        assert_eq!(settings["tickTime"], "2000");
        assert_eq!(settings["initLimit"], "5");
        assert_eq!(settings["metricsProvider.httpPort"], "7070");
        let found = differences(&env, Some(&l));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("turns on reconfigEnabled")
                && found[0].contains("set ensemble.reconfig_enabled to true"),
            "{found:?}"
        );
        l.config.remove("ZOO_CFG_EXTRA");
        assert!(differences(&env, Some(&l)).is_empty());
    }

    #[test]
    fn the_ensemble_as_coded_has_no_differences_and_each_change_names_its_field() {
        let env = manifests::environments::sandbox::environment();
        let pods = [
            "sandbox-zookeeper-0",
            "sandbox-zookeeper-1",
            "sandbox-zookeeper-2",
        ];
        assert!(differences(&env, Some(&live(3, "zookeeper:3.8.0", &pods))).is_empty());
        let scaled = differences(
            &env,
            Some(&live(
                5,
                "zookeeper:3.8.0",
                &[&pods[..], &["sandbox-zookeeper-3", "sandbox-zookeeper-4"]].concat(),
            )),
        );
        assert_eq!(scaled.len(), 2, "{scaled:?}");
        assert!(
            scaled[0].contains("set ensemble.replicas to 5"),
            "{scaled:?}"
        );
        assert!(
            scaled[1].contains("sandbox-zookeeper-3, sandbox-zookeeper-4"),
            "{scaled:?}"
        );
        let upgraded = differences(&env, Some(&live(3, "zookeeper:3.9.3", &pods)));
        assert!(
            upgraded[0].contains("set ensemble.version to 3.9"),
            "{upgraded:?}"
        );
        let chart = differences(&env, Some(&live(3, "zookeeper:3.5.5", &pods)));
        assert!(chart[0].contains("ZooKeeper 3.5"), "{chart:?}");
        assert!(differences(&env, None)[0].contains("no StatefulSet sandbox-zookeeper"));
    }
}
