//! The Kubernetes RBAC this tool needs, as code: in every namespace it touches, a Role for
//! `deploy` (which also covers `diff`, `apply`, `push --addresses live` and `status`) and a
//! read-only Role for `drift`. An administrator applies them (`kubectl apply -f rbac.yaml`) and
//! binds them to the identities of the people and jobs that run the tool; the tool never applies
//! RBAC itself.
//!
//! Least privilege, verb by verb:
//! - `get`: the desired objects (plan, load-balancer addresses, waiting for a deletion);
//! - `list`: this tool's objects by label, to find the ones no longer desired;
//! - `create`, `patch`: server-side apply (a dry run needs them too; an apply that creates needs
//!   `create` besides `patch`), only for the kinds this namespace holds desired objects of;
//! - `delete`: `--prune`, of any kind the tool may have written here;
//! - the deploy lock: `create` a Lease, and `get`, `update`, `delete` only the one named
//!   `zk-observers-deploy-<env>`.
//!
//! Both read the ensemble as it runs: `get` its StatefulSet (by name) and `list` pods.
//!
//! `drift` gets `get` and `list`, and `get` of the lock: it cannot change anything.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::environment::Environment;
use crate::labels;
use crate::objects::{desired_objects, Object};

/// The Role `deploy` (and `diff`, `apply`, `push`, `status`) needs.
pub const DEPLOY_ROLE: &str = "zk-observers-deploy";
/// The read-only Role `drift` needs.
pub const DRIFT_ROLE: &str = "zk-observers-drift";
/// `app.kubernetes.io/component` of the Roles.
pub const COMPONENT_RBAC: &str = "access";

/// The deploy lock's Lease name.
pub fn lease_name(env: &Environment) -> String {
    format!("zk-observers-deploy-{}", env.name)
}

/// (API group, resource) of every kind of object this tool writes, in a fixed order.
const KINDS: [(&str, &str, &str); 4] = [
    ("", "services", "Service"),
    ("", "endpoints", "Endpoints"),
    ("discovery.k8s.io", "endpointslices", "EndpointSlice"),
    ("monitoring.coreos.com", "servicemonitors", "ServiceMonitor"),
];

/// Which Role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Deploy,
    Drift,
}

impl Access {
    pub fn role_name(self) -> &'static str {
        match self {
            Access::Deploy => DEPLOY_ROLE,
            Access::Drift => DRIFT_ROLE,
        }
    }
}

/// The namespaces the tool touches: the ensemble's and the monitoring one.
pub fn namespaces(env: &Environment) -> BTreeSet<String> {
    [
        env.ensemble.namespace.clone(),
        env.monitoring.namespace.clone(),
    ]
    .into()
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: &[String]) -> PolicyRule {
    let mut verbs: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
    verbs.sort();
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        verbs,
        resource_names: (!names.is_empty()).then(|| names.to_vec()),
        ..PolicyRule::default()
    }
}

/// The rules of `access` in `namespace`.
pub fn rules(env: &Environment, access: Access, namespace: &str) -> Vec<PolicyRule> {
    let desired: BTreeMap<&str, usize> = desired_objects(env)
        .iter()
        .filter(|o| o.namespace() == namespace)
        .fold(BTreeMap::new(), |mut m, o: &Object| {
            *m.entry(o.kind()).or_default() += 1;
            m
        });
    let mut out = Vec::new();
    for (group, resource, kind) in KINDS {
        let verbs: Vec<&str> = match access {
            Access::Drift => vec!["get", "list"],
            Access::Deploy if desired.contains_key(kind) => {
                vec!["get", "list", "create", "patch", "delete"]
            }
            Access::Deploy => vec!["get", "list", "delete"],
        };
        out.push(rule(group, resource, &verbs, &[]));
    }
    if namespace == env.ensemble.namespace {
        // The ensemble as it runs, read only: its StatefulSet by name, its pods by its selector
        // (a list cannot be limited to names).
        out.push(rule(
            "apps",
            "statefulsets",
            &["get"],
            std::slice::from_ref(&env.ensemble.statefulset),
        ));
        out.push(rule("", "pods", &["list"], &[]));
        let lease = [lease_name(env)];
        match access {
            Access::Deploy => {
                // A create cannot be limited to a name (the name is not known when it is
                // authorized); everything else is.
                out.push(rule("coordination.k8s.io", "leases", &["create"], &[]));
                out.push(rule(
                    "coordination.k8s.io",
                    "leases",
                    &["get", "update", "delete"],
                    &lease,
                ));
            }
            Access::Drift => out.push(rule("coordination.k8s.io", "leases", &["get"], &lease)),
        }
    }
    out
}

/// Both Roles in every namespace the tool touches: deploy first, then drift, by namespace.
pub fn roles(env: &Environment) -> Vec<Role> {
    let mut out = Vec::new();
    for access in [Access::Deploy, Access::Drift] {
        for ns in namespaces(env) {
            out.push(Role {
                metadata: ObjectMeta {
                    name: Some(access.role_name().to_string()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels::recommended(env, COMPONENT_RBAC)),
                    ..ObjectMeta::default()
                },
                rules: Some(rules(env, access, &ns)),
            });
        }
    }
    out
}

/// The Roles as one multi-document YAML file for `kubectl apply -f`.
pub fn render_rbac(env: &Environment) -> String {
    let mut out = format!(
        "# Rendered by {} for environment {}: the RBAC the tool needs. An administrator applies it\n\
         # (`kubectl apply -f rbac.yaml`) and binds {DEPLOY_ROLE} to whoever deploys and {DRIFT_ROLE}\n\
         # to the scheduled drift check, e.g.\n\
         #   kubectl -n NAMESPACE create rolebinding {DRIFT_ROLE} --role={DRIFT_ROLE} --serviceaccount=NS:NAME\n",
        hosts::MANAGED_BY,
        env.name
    );
    for (i, role) in roles(env).iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(role).expect("Roles serialize"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_may_only_read_and_deploy_may_only_touch_its_kinds() {
        let env = crate::environments::sandbox::environment();
        for role in roles(&env) {
            let drift = role.metadata.name.as_deref() == Some(DRIFT_ROLE);
            for r in role.rules.unwrap() {
                for v in &r.verbs {
                    if drift {
                        assert!(["get", "list"].contains(&v.as_str()), "{v}");
                    }
                    assert_ne!(v, "*");
                }
                assert!(!r.resources.unwrap().iter().any(|x| x == "*"));
            }
        }
    }

    #[test]
    fn roles_serialize_with_their_kind() {
        let text = render_rbac(&crate::environments::production::environment());
        assert!(text.contains("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"));
        assert_eq!(
            text.matches("kind: Role\n").count(),
            2,
            "one namespace: {text}"
        );
    }
}
