//! Pure helpers: strip server noise from objects and show unified YAML diffs.

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use similar::TextDiff;

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

/// A unified diff (3 lines of context) between two texts; empty when equal.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

/// Colours a unified diff for a terminal: removals red, additions green, hunks cyan.
pub fn colorize(diff: &str) -> String {
    let red = AnsiColor::Red.on_default();
    let green = AnsiColor::Green.on_default();
    let cyan = AnsiColor::Cyan.on_default();
    let bold = Style::new().bold();
    diff.lines()
        .map(|l| {
            let style = if l.starts_with("+++") || l.starts_with("---") {
                bold
            } else if l.starts_with('+') {
                green
            } else if l.starts_with('-') {
                red
            } else if l.starts_with("@@") {
                cyan
            } else {
                Style::new()
            };
            format!("{style}{l}{style:#}\n")
        })
        .collect()
}

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

    #[test]
    fn unified_is_empty_when_equal_and_shows_changes() {
        assert_eq!(unified("a\n", "a\n", "x", "y"), "");
        let d = unified("a: 1\nb: 2\n", "a: 1\nb: 3\n", "live", "desired");
        assert!(d.contains("--- live\n+++ desired\n"), "{d}");
        assert!(d.contains("-b: 2\n+b: 3\n"), "{d}");
    }
}
