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
        /// Security groups bound to the CLB (`sg-...`), with "allow traffic by default" (the
        /// CLB's group is then the one check): what restricts the sources on TKE. Each must allow
        /// inbound TCP 2888 and 3888 from the observers' egress addresses. Empty: nothing on the
        /// CLB restricts them (see [`LoadBalancerProvider::source_restriction`]).
        security_groups: Vec<String>,
    },
    /// Amazon EKS: an internal NLB.
    Aws {
        controller: AwsController,
        subnets: Vec<String>,
    },
    /// Google GKE: an internal passthrough load balancer, optionally in a given subnet.
    Gke { subnet: Option<String> },
    /// Azure AKS: an internal load balancer, optionally in a given subnet.
    Aks {
        subnet: Option<String>,
        /// `azure-deny-all-except-load-balancer-source-ranges`: without it the NSG's default rule
        /// 65000 (AllowVnetInBound) admits the whole VNet next to the source-range rules.
        deny_all_except_source_ranges: bool,
    },
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
    /// How long the load balancer keeps an idle TCP connection by default, and where that is
    /// documented; `None` when it is not published (TKE's CLB) or there is none (the sandbox).
    pub fn idle_timeout_secs(&self) -> Option<(u32, &'static str)> {
        match self {
            LoadBalancerProvider::Aws { .. } => Some((
                350,
                "AWS NLB: \"The default idle timeout value for TCP flows is 350 seconds\" \
                 (docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html)",
            )),
            LoadBalancerProvider::Gke { .. } => Some((
                600,
                "GCP internal passthrough load balancer: connection tracking's idleTimeoutSec, \
                 \"The minimum (default) is 10 minutes\" (Compute API, \
                 BackendServiceConnectionTrackingPolicy)",
            )),
            LoadBalancerProvider::Aks { .. } => Some((
                240,
                "Azure Load Balancer: \"The default setting is 4 minutes\" \
                 (learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout)",
            )),
            LoadBalancerProvider::Tke { .. } | LoadBalancerProvider::Sandbox => None,
        }
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            LoadBalancerProvider::Tke {
                cluster_id,
                subnet_id,
                security_groups,
            } => {
                let mut v = vec![
                    (
                        "service.kubernetes.io/qcloud-loadbalancer-clusterid",
                        cluster_id.clone(),
                    ),
                    (
                        "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid",
                        subnet_id.clone(),
                    ),
                ];
                if !security_groups.is_empty() {
                    v.push((
                        "service.cloud.tencent.com/security-groups",
                        security_groups.join(","),
                    ));
                    v.push(("service.cloud.tencent.com/pass-to-target", "true".into()));
                }
                v
            }
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
            LoadBalancerProvider::Aks {
                subnet,
                deny_all_except_source_ranges,
            } => {
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
                if *deny_all_except_source_ranges {
                    v.push((
                        "service.beta.kubernetes.io/azure-deny-all-except-load-balancer-source-ranges",
                        "true".into(),
                    ));
                }
                v
            }
            LoadBalancerProvider::Sandbox => vec![(SANDBOX_ANNOTATION, "internal".into())],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Who restricts the sources that may reach the load balancers (the observers' egress addresses),
/// as each provider documents it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRestriction {
    /// What turns `loadBalancerSourceRanges` (or its replacement) into a rule.
    pub enforced_by: &'static str,
    /// Why the field alone does not restrict anything here, and what to configure instead; `None`
    /// when the field is enough.
    pub gap: Option<Gap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The environment field that closes it.
    pub field: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

impl LoadBalancerProvider {
    /// Who enforces the source restriction with these settings (sources in docs/networking.md's
    /// "Who enforces the source restriction" table).
    pub fn source_restriction(&self) -> SourceRestriction {
        match self {
            LoadBalancerProvider::Tke {
                security_groups, ..
            } => SourceRestriction {
                enforced_by: "the CLB's security groups (service.cloud.tencent.com/security-groups, with pass-to-target)",
                gap: security_groups.is_empty().then_some(Gap {
                    field: "security_groups",
                    why: "TKE does not document loadBalancerSourceRanges, and its CLB forwards to NodePorts, which kube-proxy's \
                          source-range rules do not cover: no rule restricts who reaches ZooKeeper's quorum and election ports",
                    fix: "bind a security group to the CLB that allows inbound TCP 2888 and 3888 from the observers' egress addresses \
                          only (security_groups: vec![\"sg-...\".into()]); if your region refuses groups on private CLBs, restrict \
                          the NodePorts behind 2888/3888 in the nodes' security group instead",
                }),
            },
            LoadBalancerProvider::Aws {
                controller: AwsController::InTree,
                ..
            } => SourceRestriction {
                enforced_by: "the nodes' security group: the in-tree controller opens the NLB's NodePorts to loadBalancerSourceRanges only",
                gap: None,
            },
            LoadBalancerProvider::Aws {
                controller: AwsController::LoadBalancerController,
                ..
            } => SourceRestriction {
                enforced_by: "the NLB's frontend security group, which the AWS Load Balancer Controller manages from loadBalancerSourceRanges",
                gap: None,
            },
            LoadBalancerProvider::Gke { .. } => SourceRestriction {
                enforced_by: "a VPC firewall rule GKE creates from loadBalancerSourceRanges (broader allow rules, such as default-allow-internal, still admit others)",
                gap: None,
            },
            LoadBalancerProvider::Aks {
                deny_all_except_source_ranges,
                ..
            } => SourceRestriction {
                enforced_by: "NSG rules the Azure cloud provider writes from loadBalancerSourceRanges",
                gap: (!deny_all_except_source_ranges).then_some(Gap {
                    field: "deny_all_except_source_ranges",
                    why: "for an internal load balancer the NSG's default rule 65000 (AllowVnetInBound) admits the whole VNet \
                          next to the source-range rules, so they restrict nothing",
                    fix: "set deny_all_except_source_ranges: true (the azure-deny-all-except-load-balancer-source-ranges \
                          annotation), and copy the rules into any NSG of your own on the nodes' subnet",
                }),
            },
            LoadBalancerProvider::Sandbox => SourceRestriction {
                enforced_by: "the sandbox's simulated cloud firewall (iptables in the cluster's namespace)",
                gap: None,
            },
        }
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
