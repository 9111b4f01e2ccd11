//! Cloud load-balancer settings. Every variant yields an *internal* load balancer: a public load
//! balancer in front of ZooKeeper's quorum and election ports cannot be expressed.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerProvider {
    /// Tencent Kubernetes Engine, as in the runbook: an internal CLB in the given subnet.
    Tke {
        cluster_id: String,
        subnet_id: String,
    },
    /// Amazon EKS: an internal NLB.
    Aws {
        controller: AwsController,
        subnets: Vec<String>,
    },
    /// Google GKE: an internal passthrough load balancer, optionally in a given subnet.
    Gke { subnet: Option<String> },
    /// Azure AKS: an internal load balancer, optionally in a given subnet.
    Aks { subnet: Option<String> },
    /// The local sandbox's simulated load-balancer controller (see the Kubernetes API test server).
    Sandbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsController {
    /// The in-tree cloud provider (`service.beta.kubernetes.io/aws-load-balancer-internal`).
    InTree,
    /// The AWS Load Balancer Controller (`aws-load-balancer-scheme: internal`).
    LoadBalancerController,
}

pub const SANDBOX_ANNOTATION: &str = "zk-observers.dev/sandbox-load-balancer";

impl LoadBalancerProvider {
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            LoadBalancerProvider::Tke {
                cluster_id,
                subnet_id,
            } => vec![
                (
                    "service.kubernetes.io/qcloud-loadbalancer-clusterid",
                    cluster_id.clone(),
                ),
                (
                    "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid",
                    subnet_id.clone(),
                ),
            ],
            LoadBalancerProvider::Aws {
                controller,
                subnets,
            } => {
                let mut v = match controller {
                    AwsController::InTree => vec![
                        (
                            "service.beta.kubernetes.io/aws-load-balancer-internal",
                            "true".into(),
                        ),
                        (
                            "service.beta.kubernetes.io/aws-load-balancer-type",
                            "nlb".into(),
                        ),
                    ],
                    AwsController::LoadBalancerController => vec![
                        (
                            "service.beta.kubernetes.io/aws-load-balancer-type",
                            "external".into(),
                        ),
                        (
                            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
                            "ip".into(),
                        ),
                        (
                            "service.beta.kubernetes.io/aws-load-balancer-scheme",
                            "internal".into(),
                        ),
                    ],
                };
                if !subnets.is_empty() {
                    v.push((
                        "service.beta.kubernetes.io/aws-load-balancer-subnets",
                        subnets.join(","),
                    ));
                }
                v
            }
            LoadBalancerProvider::Gke { subnet } => {
                let mut v = vec![("networking.gke.io/load-balancer-type", "Internal".into())];
                if let Some(s) = subnet {
                    v.push(("networking.gke.io/internal-load-balancer-subnet", s.clone()));
                }
                v
            }
            LoadBalancerProvider::Aks { subnet } => {
                let mut v = vec![(
                    "service.beta.kubernetes.io/azure-load-balancer-internal",
                    "true".into(),
                )];
                if let Some(s) = subnet {
                    v.push((
                        "service.beta.kubernetes.io/azure-load-balancer-internal-subnet",
                        s.clone(),
                    ));
                }
                v
            }
            LoadBalancerProvider::Sandbox => vec![(SANDBOX_ANNOTATION, "internal".into())],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// `prefix-` followed by lowercase letters and digits: TKE cluster and subnet ids, AWS subnet ids.
pub fn is_cloud_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}
