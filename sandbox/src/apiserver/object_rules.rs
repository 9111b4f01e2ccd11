//! Validation of stored objects (a subset of the real API server's rules). Runs after defaulting.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::errors::FieldError;
use super::resources::{NameRule, Resource};

const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
     and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for \
     validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
     start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or \
     'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
     characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex \
     used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
     start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for \
     validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', \
     '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or \
     '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn label_chars(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && (if first_alpha {
            b[0].is_ascii_lowercase()
        } else {
            b[0] != b'-'
        })
        && b[b.len() - 1] != b'-'
}

pub(crate) fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !label_chars(s, false) {
        return Err(DNS1123_LABEL_ERR.into());
    }
    Ok(())
}

pub(crate) fn check_dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !label_chars(s, true) {
        return Err(DNS1035_LABEL_ERR.into());
    }
    Ok(())
}

pub(crate) fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if !s.split('.').all(|l| label_chars(l, false)) {
        return Err(DNS1123_SUBDOMAIN_ERR.into());
    }
    Ok(())
}

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63 characters.
pub(crate) fn check_qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        check_dns1123_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !name_part_ok(name) {
        return Err(QUALIFIED_NAME_ERR.into());
    }
    Ok(())
}

pub(crate) fn check_label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !s.is_empty() && !name_part_ok(s) {
        return Err(LABEL_VALUE_ERR.into());
    }
    Ok(())
}

/// IANA service name (a named targetPort): at most 15 characters, lowercase alphanumerics and
/// '-', at least one letter, no leading, trailing or double '-'.
fn check_iana_svc_name(s: &str) -> Result<(), String> {
    if s.len() > 15 {
        return Err("must be no more than 15 characters".into());
    }
    if !label_chars(s, false) || s.contains("--") || !s.bytes().any(|c| c.is_ascii_lowercase()) {
        return Err(
            "must contain only lowercase alphanumeric characters or '-', at least one letter, \
                    and no leading, trailing or consecutive '-'"
                .into(),
        );
    }
    Ok(())
}

fn check_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) else {
        return false;
    };
    bits <= if ip.is_ipv4() { 32 } else { 128 }
}

fn check_port(errs: &mut Vec<FieldError>, field: String, v: Option<&Value>, required: bool) {
    match v {
        None if required => errs.push(FieldError::required(field, "")),
        None => {}
        Some(v) if !v.as_i64().is_some_and(|p| (1..=65535).contains(&p)) => {
            errs.push(FieldError::invalid(
                field,
                v.clone(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        Some(_) => {}
    }
}

fn check_protocol(errs: &mut Vec<FieldError>, field: String, v: Option<&Value>) {
    if let Some(v) = v {
        if !matches!(v.as_str(), Some("TCP" | "UDP" | "SCTP")) {
            errs.push(FieldError::not_supported(
                field,
                v.clone(),
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
}

fn check_enum(
    errs: &mut Vec<FieldError>,
    field: &str,
    v: Option<&Value>,
    allowed: &[&'static str],
) {
    if let Some(v) = v {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            errs.push(FieldError::not_supported(field, v.clone(), allowed));
        }
    }
}

fn check_labels(errs: &mut Vec<FieldError>, field: &str, labels: Option<&Value>) {
    let Some(labels) = labels else { return };
    let Some(map) = labels.as_object() else {
        errs.push(FieldError::invalid(
            field,
            labels.clone(),
            "must be a map of strings",
        ));
        return;
    };
    for (k, v) in map {
        if let Err(e) = check_qualified_name(k) {
            errs.push(FieldError::invalid(field, json!(k), e));
        }
        match v.as_str() {
            Some(s) => {
                if let Err(e) = check_label_value(s) {
                    errs.push(FieldError::invalid(field, v.clone(), e));
                }
            }
            None => errs.push(FieldError::invalid(
                format!("{field}.{k}"),
                v.clone(),
                "must be a string",
            )),
        }
    }
}

fn check_metadata(res: &Resource, obj: &Value, errs: &mut Vec<FieldError>) {
    let meta = obj.get("metadata");
    match meta.and_then(|m| m.get("name")).and_then(Value::as_str) {
        None | Some("") => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            let r = match res.name_rule {
                NameRule::Dns1035Label => check_dns1035_label(name),
                NameRule::Dns1123Subdomain => check_dns1123_subdomain(name),
            };
            if let Err(e) = r {
                errs.push(FieldError::invalid("metadata.name", json!(name), e));
            }
        }
    }
    check_labels(errs, "metadata.labels", meta.and_then(|m| m.get("labels")));
    if let Some(ann) = meta.and_then(|m| m.get("annotations")) {
        match ann.as_object() {
            Some(map) => {
                for (k, v) in map {
                    if let Err(e) = check_qualified_name(&k.to_lowercase()) {
                        errs.push(FieldError::invalid("metadata.annotations", json!(k), e));
                    }
                    if !v.is_string() {
                        errs.push(FieldError::invalid(
                            format!("metadata.annotations.{k}"),
                            v.clone(),
                            "must be a string",
                        ));
                    }
                }
            }
            None => errs.push(FieldError::invalid(
                "metadata.annotations",
                ann.clone(),
                "must be a map of strings",
            )),
        }
    }
}

fn check_service(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    check_enum(
        errs,
        "spec.type",
        spec.get("type"),
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    );
    check_enum(
        errs,
        "spec.sessionAffinity",
        spec.get("sessionAffinity"),
        &["ClientIP", "None"],
    );
    check_enum(
        errs,
        "spec.externalTrafficPolicy",
        spec.get("externalTrafficPolicy"),
        &["Cluster", "Local"],
    );
    check_enum(
        errs,
        "spec.internalTrafficPolicy",
        spec.get("internalTrafficPolicy"),
        &["Cluster", "Local"],
    );
    check_labels(errs, "spec.selector", spec.get("selector"));
    if let Some(ip) = spec.get("clusterIP") {
        let ok = ip
            .as_str()
            .is_some_and(|s| s.is_empty() || s == "None" || s.parse::<IpAddr>().is_ok());
        if !ok {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                ip.clone(),
                "must be empty, 'None', or a valid IP address",
            ));
        }
    }
    if ty == "ExternalName" {
        match spec.get("externalName").and_then(Value::as_str) {
            None | Some("") => errs.push(FieldError::required("spec.externalName", "")),
            Some(n) => {
                if let Err(e) = check_dns1123_subdomain(n.trim_end_matches('.')) {
                    errs.push(FieldError::invalid("spec.externalName", json!(n), e));
                }
            }
        }
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(p) = spec.get("ports").filter(|p| !p.is_array()) {
        errs.push(FieldError::invalid(
            "spec.ports",
            p.clone(),
            "must be a list",
        ));
    } else if ports.is_empty() && ty != "ExternalName" && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names: Vec<String> = Vec::new();
    let mut keys: Vec<(i64, String)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let field = |f: &str| format!("spec.ports[{i}].{f}");
        match port
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            None if ports.len() > 1 => errs.push(FieldError::required(field("name"), "")),
            None => {}
            Some(name) => {
                if let Err(e) = check_dns1123_label(name) {
                    errs.push(FieldError::invalid(field("name"), json!(name), e));
                }
                if names.iter().any(|n| n == name) {
                    errs.push(FieldError::duplicate(field("name"), json!(name)));
                }
                names.push(name.to_string());
            }
        }
        check_port(errs, field("port"), port.get("port"), true);
        check_protocol(errs, field("protocol"), port.get("protocol"));
        if let (Some(p), proto) = (
            port.get("port").and_then(Value::as_i64),
            port.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP"),
        ) {
            if keys.iter().any(|(kp, kproto)| *kp == p && kproto == proto) {
                errs.push(FieldError::duplicate(
                    format!("spec.ports[{i}]"),
                    json!({"port": p, "protocol": proto}),
                ));
            }
            keys.push((p, proto.to_string()));
        }
        match port.get("targetPort") {
            Some(Value::String(s)) => {
                if let Err(e) = check_iana_svc_name(s) {
                    errs.push(FieldError::invalid(field("targetPort"), json!(s), e));
                }
            }
            Some(v @ Value::Number(_)) => check_port(errs, field("targetPort"), Some(v), false),
            Some(v) => errs.push(FieldError::invalid(
                field("targetPort"),
                v.clone(),
                "must be a port number or name",
            )),
            None => {}
        }
        if let Some(np) = port.get("nodePort") {
            if !np.as_i64().is_some_and(|n| (30000..=32767).contains(&n)) {
                errs.push(FieldError::invalid(
                    field("nodePort"),
                    np.clone(),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
        }
    }
    if let Some(ranges) = spec.get("loadBalancerSourceRanges") {
        match ranges.as_array() {
            Some(list) => {
                for (i, r) in list.iter().enumerate() {
                    if !r.as_str().is_some_and(|s| check_cidr(s.trim())) {
                        errs.push(FieldError::invalid(
                            format!("spec.loadBalancerSourceRanges[{i}]"),
                            r.clone(),
                            "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                        ));
                    }
                }
            }
            None => errs.push(FieldError::invalid(
                "spec.loadBalancerSourceRanges",
                ranges.clone(),
                "must be a list",
            )),
        }
    }
}

fn check_endpoint_ports(
    errs: &mut Vec<FieldError>,
    prefix: &str,
    ports: Option<&Value>,
    name_required: bool,
) {
    let list = ports.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for (i, port) in list.iter().enumerate() {
        let field = |f: &str| format!("{prefix}[{i}].{f}");
        match port
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            None if name_required && list.len() > 1 => {
                errs.push(FieldError::required(field("name"), ""))
            }
            None => {}
            Some(name) => {
                if let Err(e) = check_dns1123_label(name) {
                    errs.push(FieldError::invalid(field("name"), json!(name), e));
                }
                if names.iter().any(|n| n == name) {
                    errs.push(FieldError::duplicate(field("name"), json!(name)));
                }
                names.push(name.to_string());
            }
        }
        check_port(errs, field("port"), port.get("port"), name_required);
        check_protocol(errs, field("protocol"), port.get("protocol"));
    }
}

fn check_endpoints(obj: &Value, errs: &mut Vec<FieldError>) {
    let subsets = obj
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, subset) in subsets.iter().enumerate() {
        for list in ["addresses", "notReadyAddresses"] {
            let addrs = subset
                .get(list)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (j, a) in addrs.iter().enumerate() {
                let ip = a.get("ip");
                if ip
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.parse::<IpAddr>().is_err())
                {
                    errs.push(FieldError::invalid(
                        format!("subsets[{i}].{list}[{j}].ip"),
                        ip.cloned().unwrap_or(Value::Null),
                        "must be a valid IP address",
                    ));
                }
            }
        }
        check_endpoint_ports(
            errs,
            &format!("subsets[{i}].ports"),
            subset.get("ports"),
            true,
        );
    }
}

fn check_endpoint_slice(obj: &Value, errs: &mut Vec<FieldError>) {
    let ty = obj.get("addressType");
    match ty {
        None => errs.push(FieldError::required("addressType", "")),
        Some(_) => check_enum(errs, "addressType", ty, &["FQDN", "IPv4", "IPv6"]),
    }
    let ty = ty.and_then(Value::as_str).unwrap_or("");
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, ep) in endpoints.iter().enumerate() {
        let addrs = ep
            .get("addresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if addrs.is_empty() || addrs.len() > 100 {
            errs.push(FieldError::required(
                format!("endpoints[{i}].addresses"),
                "must contain at least 1 address and at most 100",
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let s = a.as_str().unwrap_or("");
            let ok = match ty {
                "IPv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
                "FQDN" => check_dns1123_subdomain(s).is_ok(),
                _ => true,
            };
            if !ok {
                errs.push(FieldError::invalid(
                    format!("endpoints[{i}].addresses[{j}]"),
                    a.clone(),
                    format!("must be a valid {ty} address"),
                ));
            }
        }
    }
    check_endpoint_ports(errs, "ports", obj.get("ports"), false);
}

/// All validation errors of a (defaulted) object.
pub(crate) fn validate(res: &Resource, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check_metadata(res, obj, &mut errs);
    match res.kind {
        "Service" => check_service(obj, &mut errs),
        "Endpoints" => check_endpoints(obj, &mut errs),
        "EndpointSlice" => check_endpoint_slice(obj, &mut errs),
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::{ENDPOINT_SLICES, SERVICES};

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn names_and_labels() {
        assert!(check_dns1035_label("zk-0").is_ok());
        assert!(check_dns1035_label("0zk").is_err());
        assert!(check_dns1123_subdomain("zk.example-1").is_ok());
        assert!(check_dns1123_subdomain("Zk").is_err());
        assert!(check_qualified_name("app.kubernetes.io/name").is_ok());
        assert!(check_qualified_name("bad key").is_err());
        assert!(check_qualified_name("/x").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("a_b.c-D").is_ok());
        assert!(check_label_value("-a").is_err());
        assert!(check_label_value(&"a".repeat(64)).is_err());
    }

    #[test]
    fn service_rules() {
        let svc = json!({
            "metadata": {"name": "zk", "labels": {"ok": "yes", "bad key": "x"}},
            "spec": {
                "type": "Weird",
                "ports": [{"name": "a", "port": 0}, {"name": "a", "port": 2181}, {"port": 2181}],
                "loadBalancerSourceRanges": ["10.0.0.0/8", "nonsense"],
            },
        });
        let errs = validate(&SERVICES, &svc);
        assert_eq!(
            fields(&errs),
            [
                "metadata.labels",
                "spec.type",
                "spec.ports[0].port",
                "spec.ports[1].name",
                "spec.ports[2].name",
                "spec.ports[2]",
                "spec.loadBalancerSourceRanges[1]",
            ]
        );
        assert_eq!(
            errs[2].to_string(),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
    }

    #[test]
    fn endpoint_slice_rules() {
        let slice = json!({"metadata": {"name": "zk-abc"}, "addressType": "IPv5", "endpoints": [{"addresses": []}]});
        assert_eq!(
            fields(&validate(&ENDPOINT_SLICES, &slice)),
            ["addressType", "endpoints[0].addresses"]
        );
        let good = json!({"metadata": {"name": "zk-abc"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.1"]}], "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}]});
        assert!(validate(&ENDPOINT_SLICES, &good).is_empty());
    }
}
