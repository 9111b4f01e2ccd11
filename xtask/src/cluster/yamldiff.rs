//! Pure helpers: strip server noise from objects and show unified YAML diffs.

use serde_json::Value;

/// Metadata fields the server owns; they change without anyone changing the object.
const NOISY_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// The object without server bookkeeping (`status`, resourceVersion, managedFields, ...).
pub fn normalize(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in NOISY_METADATA {
                meta.remove(k);
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
                // Where a deploy came from is a record, not a change.
                for k in crate::provenance::ANNOTATIONS {
                    ann.remove(k);
                }
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    v
}

pub fn to_yaml(v: &Value) -> String {
    serde_yaml::to_string(v).expect("JSON values serialize to YAML")
}

pub use crate::output::unified_diff::unified;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_strips_server_noise_only() {
        let live = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk0", "uid": "u", "resourceVersion": "7", "generation": 2,
                         "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [], "labels": {"a": "b"}},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.11"}]}}
        });
        assert_eq!(
            normalize(&live),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk0", "labels": {"a": "b"}}, "spec": {"type": "LoadBalancer"}})
        );
    }
}
