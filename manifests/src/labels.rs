//! Kubernetes recommended labels, plus this tool's environment label.

use std::collections::BTreeMap;

use crate::environment::Environment;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The environment label; with [`MANAGED_BY`] it selects what `apply --prune` may delete.
pub const ENVIRONMENT: &str = "zk-observers.dev/environment";

/// `app.kubernetes.io/component` of the per-pod load-balancer Services.
pub const COMPONENT_LOAD_BALANCER: &str = "quorum-load-balancer";
/// `app.kubernetes.io/component` of the monitoring objects.
pub const COMPONENT_METRICS: &str = "observer-metrics";

pub fn recommended(env: &Environment, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_string(), "zookeeper".to_string()),
        (INSTANCE.to_string(), env.ensemble.helm_release.clone()),
        (COMPONENT.to_string(), component.to_string()),
        (PART_OF.to_string(), "zookeeper".to_string()),
        (MANAGED_BY.to_string(), hosts::MANAGED_BY.to_string()),
        (ENVIRONMENT.to_string(), env.name.clone()),
    ])
}

/// The label selector that finds every object this tool owns in `env`.
pub fn ownership_selector(env: &Environment) -> String {
    format!(
        "{MANAGED_BY}={},{ENVIRONMENT}={}",
        hosts::MANAGED_BY,
        env.name
    )
}

/// Whether `key` is a valid label key: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending with an alphanumeric.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(hosts::net::is_dns1123_subdomain) && is_label_value(name) && !name.is_empty()
}

/// Whether `value` is a valid label value: empty, or at most 63 characters of alphanumerics,
/// `-`, `_`, `.`, starting and ending with an alphanumeric.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric())
}
