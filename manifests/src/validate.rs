//! Validation of a whole environment. Pure; run before every command acts. Every finding names the
//! field (as written in the environment module) and the fix.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hosts::net::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_host_address};
use hosts::{Problems, ServerAddress, ServerId};
use ipnet::IpNet;

use crate::environment::{Environment, EnvironmentKind};
use crate::labels::{is_label_key, is_label_value};
use crate::objects::{desired_objects, Object, SLICE_SERVICE_NAME_LABEL};
use crate::provider::{is_cloud_id, LoadBalancerProvider};

/// Every rule, on the environment and on the objects it renders.
pub fn validate(env: &Environment) -> Problems {
    let mut p = Problems::new();
    names(env, &mut p);
    ensemble(env, &mut p);
    ids(env, &mut p);
    provider(env, &mut p);
    keepalive(env, &mut p);
    addresses(env, &mut p);
    monitoring(env, &mut p);
    p.extend(
        hosts::fleet_rules::validate_fleet(&env.fleet, env.ensemble.version).prefixed("fleet"),
    );
    p.extend(check_objects(env, &desired_objects(env)));
    p
}

fn names(env: &Environment, p: &mut Problems) {
    if !is_dns1123_label(&env.name) {
        p.error(
            "name",
            format!("`{}` is not a DNS-1123 label", env.name),
            "use lowercase letters, digits and '-'",
        );
    }
    if env.kube_context.trim().is_empty() {
        p.error(
            "kube_context",
            "no kubeconfig context is pinned",
            "set it to the context name of the cluster (`kubectl config get-contexts`)",
        );
    }
}

fn ensemble(env: &Environment, p: &mut Problems) {
    let e = &env.ensemble;
    for (field, value) in [
        ("ensemble.namespace", &e.namespace),
        ("ensemble.helm_release", &e.helm_release),
        ("ensemble.statefulset", &e.statefulset),
    ] {
        if !is_dns1123_label(value) {
            p.error(
                field,
                format!("`{value}` is not a DNS-1123 label"),
                "use the name exactly as `kubectl get` shows it",
            );
        }
    }
    if !is_dns1123_subdomain(&e.quorum_tls.secret) {
        p.error(
            "ensemble.quorum_tls.secret",
            format!("`{}` is not a DNS-1123 subdomain", e.quorum_tls.secret),
            "name the Secret with lowercase letters, digits, '-' and '.'",
        );
    }
    let mount = &e.quorum_tls.mount_dir;
    if !mount.starts_with('/')
        || mount.len() < 2
        || mount.ends_with('/')
        || mount.contains(['\n', '=', ' '])
    {
        p.error(
            "ensemble.quorum_tls.mount_dir",
            format!("`{mount}` is not an absolute directory path"),
            "give the directory the participants' containers mount the Secret at, e.g. /quorum-tls",
        );
    }
    if e.replicas == 0 {
        p.error(
            "ensemble.replicas",
            "the ensemble has no participants",
            "set it to the StatefulSet's replica count (3 in the runbook)",
        );
    }
    if e.quorum_port == e.election_port {
        p.error(
            "ensemble.election_port",
            format!("port {} is also the quorum port", e.quorum_port),
            "ZooKeeper uses 2888 for quorum and 3888 for election",
        );
    }
    if e.reconfig_enabled {
        p.error(
            "ensemble.reconfig_enabled",
            "the ensemble runs with reconfigEnabled=true: its configuration version is then above 0, and an \
             observer with a static zoo.cfg restarts leader election on every message it gets \
             (FastLeaderElection.java): it never joins",
            "disable dynamic reconfiguration on the ensemble (reconfigEnabled=false), then set this to false",
        );
    }
    // `zk_peer_state`, which the health gate reads, exists from 3.6.0
    // (QuorumZooKeeperServer.java); a 3.5 ensemble's observers never print it.
    if (e.version.major, e.version.minor) < (3, 6) {
        p.error(
            "ensemble.version",
            format!(
                "ZooKeeper {} reports no zk_peer_state (it exists from 3.6.0), so no observer would ever \
                 pass the health gate; the runbook's chart (incubator/zookeeper 2.x) ships 3.5.5",
                e.version
            ),
            "upgrade the ensemble to 3.6 or later (the observers' image must then be of the same minor \
             version), and set the version it runs",
        );
    }
    quorum_security(env, p);
    let longest = format!("{}{}", e.service_name_prefix, e.replicas.saturating_sub(1));
    if !is_dns1035_label(&longest) {
        p.error(
            "ensemble.service_name_prefix",
            format!("`{longest}` would not be a valid Service name (a DNS-1035 label: at most 63 characters, starting with a letter)"),
            "use lowercase letters, digits and '-', starting with a letter, e.g. `zk`",
        );
    }
    // The per-pod Services select `statefulset.kubernetes.io/pod-name: <statefulset>-<n>`: a
    // label value, at most 63 characters.
    let pod = format!("{}-{}", e.statefulset, e.replicas.saturating_sub(1));
    if !is_label_value(&pod) || !is_dns1123_label(&pod) {
        p.error(
            "ensemble.statefulset",
            format!("its pods are named like `{pod}`, which is not a valid label value (at most 63 characters): the per-pod Services could not select them"),
            "use the StatefulSet's name exactly as `kubectl get statefulset` shows it; a real one is short enough",
        );
    }
    // The ports an observer listens on: quorum and election (its own server line), and the
    // client, metrics and AdminServer ports of the fleet.
    let z = &env.fleet.zookeeper;
    let mut used: Vec<(&str, hosts::Port)> = vec![
        ("ensemble.quorum_port", e.quorum_port),
        ("ensemble.election_port", e.election_port),
        ("fleet.zookeeper.client_port", z.client_port),
        ("fleet.metrics.port", env.fleet.metrics.port()),
    ];
    if let hosts::AdminServer::Enabled { port, .. } = z.admin_server {
        used.push(("fleet.zookeeper.admin_server", port));
    }
    for (i, (field, port)) in used.iter().enumerate() {
        if let Some((other, _)) = used[..i].iter().find(|(_, q)| q == port) {
            if *other == "ensemble.quorum_port" && *field == "ensemble.election_port" {
                continue; // reported above
            }
            p.error(
                *field,
                format!("port {port} is also {other}: an observer host listens on both"),
                "give each its own port (ZooKeeper's usual ones: client 2181, quorum 2888, election 3888, exporter 9141, AdminServer 8080)",
            );
        }
    }
    for (ordinal, address) in &e.recorded_addresses {
        let field = format!("ensemble.recorded_addresses[{ordinal}]");
        if *ordinal >= e.replicas {
            p.error(
                &field,
                format!("an address is recorded for pod ordinal {ordinal}, but the ensemble has {} replicas", e.replicas),
                "remove it, or raise ensemble.replicas",
            );
        }
        match address {
            ServerAddress::Ip(ip) if !is_host_address(*ip) => p.error(
                &field,
                format!("{ip} is not a unicast address"),
                "record the Service's EXTERNAL-IP from `kubectl get svc`",
            ),
            ServerAddress::Dns(name) if !is_dns1123_subdomain(name) => p.error(
                &field,
                format!("`{name}` is not a DNS name"),
                "record the Service's load-balancer hostname",
            ),
            _ => {}
        }
    }
}

fn ids(env: &Environment, p: &mut Problems) {
    let max_participant = env.ensemble.max_participant_id();
    if max_participant.get() > ServerId::MAX {
        p.error(
            "ensemble.replicas",
            format!(
                "{} replicas would need ids up to {max_participant}, beyond ZooKeeper's {}",
                env.ensemble.replicas,
                ServerId::MAX
            ),
            "no ZooKeeper ensemble has that many voters; check the replica count",
        );
    }
    let mut taken: BTreeMap<ServerId, String> = env
        .ensemble
        .participants()
        .into_iter()
        .map(|pt| (pt.id, format!("participant {}", pt.pod_name)))
        .collect();
    for (i, o) in env.fleet.observers.iter().enumerate() {
        let field = format!("fleet.observers[{i}].myid");
        if let Some(owner) = taken.get(&o.myid) {
            if owner.starts_with("participant") {
                p.error(
                    &field,
                    format!("myid {} is already the id of {owner}", o.myid),
                    format!("use an id above {max_participant}"),
                );
            }
        }
        taken
            .entry(o.myid)
            .or_insert_with(|| format!("observer {}", o.name));
        if o.myid.get() < ServerId::OBSERVER_MIN && o.myid > max_participant {
            p.error(
                &field,
                format!(
                    "myid {0} is the id the StatefulSet gives its participant {0} when it is scaled out to {0} \
                     replicas (the chart numbers pods ordinal + 1): two servers with one id knock each \
                     other's election connections off",
                    o.myid
                ),
                format!(
                    "use an id from {} to {} (observers keep 100 and up; renumbering resets the observer's \
                     data, which deploy does)",
                    ServerId::OBSERVER_MIN,
                    ServerId::MAX
                ),
            );
        }
        if o.myid <= max_participant {
            p.error(
                &field,
                format!(
                    "myid {} is not greater than every participant id (the highest is {max_participant}). Across the \
                     boundary only the observer can open connections; in leader election the connection opened by \
                     the higher id survives, so a lower-id observer is dialled back and never joins",
                    o.myid
                ),
                format!("use an id above {max_participant}, leaving room for the StatefulSet to grow"),
            );
        }
    }
}

/// The keepalive's first probe must come before the load balancer forgets an idle connection.
fn keepalive(env: &Environment, p: &mut Problems) {
    let k = env.fleet.runtime.keepalive;
    if let Some((timeout, source)) = env.load_balancer.idle_timeout_secs() {
        if k.idle_secs >= timeout {
            p.error(
                "fleet.runtime.keepalive.idle_secs",
                format!(
                    "the first keepalive probe after {} s comes after the load balancer has dropped the \
                     idle connection ({timeout} s: {source})",
                    k.idle_secs
                ),
                format!("use fewer seconds than {timeout}, e.g. 120"),
            );
        }
    }
}

fn provider(env: &Environment, p: &mut Problems) {
    let f = "load_balancer";
    match &env.load_balancer {
        LoadBalancerProvider::Tke {
            cluster_id,
            subnet_id,
            ..
        } => {
            if !is_cloud_id(cluster_id, "cls") {
                p.error(
                    format!("{f}.cluster_id"),
                    format!("`{cluster_id}` is not a TKE cluster id"),
                    "use the id from the TKE console, e.g. cls-a1b2c3d4",
                );
            }
            if !is_cloud_id(subnet_id, "subnet") {
                p.error(
                    format!("{f}.subnet_id"),
                    format!("`{subnet_id}` is not a VPC subnet id"),
                    "use the subnet id of the internal load balancer, e.g. subnet-a1b2c3d4",
                );
            }
        }
        LoadBalancerProvider::Aws { subnets, .. } => {
            for (i, s) in subnets.iter().enumerate() {
                if !is_cloud_id(s, "subnet") {
                    p.error(
                        format!("{f}.subnets[{i}]"),
                        format!("`{s}` is not an AWS subnet id"),
                        "use ids such as subnet-0a1b2c3d4e5f67890",
                    );
                }
            }
        }
        LoadBalancerProvider::Gke { subnet } | LoadBalancerProvider::Aks { subnet, .. } => {
            if let Some(s) = subnet {
                if !is_dns1123_subdomain(s) && !s.contains('/') {
                    p.error(
                        format!("{f}.subnet"),
                        format!("`{s}` is not a subnet name"),
                        "use the subnet's name as the cloud console shows it",
                    );
                }
            }
        }
        LoadBalancerProvider::Sandbox => {}
    }
    if let LoadBalancerProvider::Tke {
        security_groups, ..
    } = &env.load_balancer
    {
        for (i, sg) in security_groups.iter().enumerate() {
            if !is_cloud_id(sg, "sg") {
                p.error(
                    format!("{f}.security_groups[{i}]"),
                    format!("`{sg}` is not a Tencent Cloud security group id"),
                    "use ids such as sg-0a1b2c3d",
                );
            }
        }
        if security_groups.len() > 5 {
            p.error(
                format!("{f}.security_groups"),
                "a CLB takes at most 5 security groups",
                "merge the rules into 5 groups or fewer",
            );
        }
    }
    if let Some(gap) = env.load_balancer.source_restriction().gap {
        p.warning(
            format!("{f}.{}", gap.field),
            format!(
                "the load balancers' loadBalancerSourceRanges are not enforced as configured: {}",
                gap.why
            ),
            gap.fix,
        );
    }
    let sandbox_provider = env.load_balancer == LoadBalancerProvider::Sandbox;
    match env.kind {
        EnvironmentKind::Sandbox if !sandbox_provider => p.error(
            f,
            "a sandbox environment must use the sandbox load-balancer controller",
            "use LoadBalancerProvider::Sandbox",
        ),
        EnvironmentKind::Production if sandbox_provider => p.error(
            f,
            "LoadBalancerProvider::Sandbox only exists on the local Kubernetes API test server",
            "use the cloud provider of the cluster (Tke, Aws, Gke or Aks)",
        ),
        _ => {}
    }
}

fn addresses(env: &Environment, p: &mut Problems) {
    // Every address the environment names, with the field it comes from.
    let mut all: Vec<(String, IpAddr)> = env
        .fleet
        .observers
        .iter()
        .enumerate()
        .flat_map(|(i, o)| {
            let mut named = vec![(format!("fleet.observers[{i}].address"), o.address)];
            named.extend(
                o.egress
                    .iter()
                    .enumerate()
                    .map(|(k, e)| (format!("fleet.observers[{i}].egress[{k}]"), *e)),
            );
            named.extend(
                o.scrape
                    .map(|s| (format!("fleet.observers[{i}].scrape"), s)),
            );
            named
        })
        .collect();
    // Retired observers: deploy still connects to them.
    for (i, r) in env.fleet.retired.iter().enumerate() {
        all.push((
            format!("fleet.retired[{i}].observer.address"),
            r.observer.address,
        ));
    }
    // Jump hosts named by address.
    let mut chains = vec![("fleet.jump".to_string(), &env.fleet.jump)];
    for (i, o) in env.fleet.observers.iter().enumerate() {
        if let Some(j) = &o.jump {
            chains.push((format!("fleet.observers[{i}].jump"), j));
        }
    }
    for (i, r) in env.fleet.retired.iter().enumerate() {
        if let Some(j) = &r.observer.jump {
            chains.push((format!("fleet.retired[{i}].observer.jump"), j));
        }
    }
    for (field, chain) in chains {
        for (k, j) in chain.iter().enumerate() {
            if let Ok(ip) = j.address.parse::<IpAddr>() {
                all.push((format!("{field}[{k}].address"), ip));
            }
        }
    }
    let lbs: Vec<(String, IpAddr)> = env
        .ensemble
        .recorded_addresses
        .iter()
        .filter_map(|(ord, a)| {
            a.ip()
                .map(|ip| (format!("ensemble.recorded_addresses[{ord}]"), ip))
        })
        .collect();
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (field, ip) in all.iter().chain(lbs.iter()) {
        if field.starts_with("fleet") {
            // Duplicates among observers are reported by the fleet rules.
            seen.entry(*ip).or_insert(field);
            continue;
        }
        if let Some(other) = seen.insert(*ip, field) {
            p.error(
                field,
                format!("{ip} is also {other}"),
                "each load balancer and each observer has an address of its own; re-read `kubectl get svc`",
            );
        }
    }
    // No observer in service and no extra range: the Services' loadBalancerSourceRanges would be
    // empty, which a cloud reads as "any source" (`GetLoadBalancerSourceRanges`).
    if env.fleet.observers.is_empty() && env.extra_source_ranges.is_empty() {
        p.error(
            "fleet.observers",
            "no observer is in service and extra_source_ranges is empty: the load balancers' \
             loadBalancerSourceRanges would be empty, which admits every source to the quorum and \
             election ports",
            "keep at least one observer in `observers`; if the observers are gone for good, prune the \
             load-balancer Services instead (`apply --prune` with them removed from the environment)",
        );
    }
    for (i, range) in env.extra_source_ranges.iter().enumerate() {
        let field = format!("extra_source_ranges[{i}]");
        if range.prefix_len() == 0 {
            p.error(
                &field,
                format!("{range} lets every address reach the quorum and election ports"),
                "list only the networks the observers connect from",
            );
        } else if range.network() != range.addr() {
            p.error(
                &field,
                format!("{range} has host bits set"),
                format!("did you mean {}?", range.trunc()),
            );
        }
        all.push((field, range.addr()));
    }
    all.extend(lbs);
    // DNS names too: a sandbox's resolve only under `.test` (RFC 2606: nowhere but a test's own
    // DNS server); a production environment never names one there.
    for (ord, a) in &env.ensemble.recorded_addresses {
        let ServerAddress::Dns(name) = a else {
            continue;
        };
        let field = format!("ensemble.recorded_addresses[{ord}]");
        let test = name == "test" || name.ends_with(".test");
        match env.kind {
            EnvironmentKind::Sandbox if !test => p.error(
                &field,
                format!("{name} is outside the sandbox: tests and demos must only reach names under .test, which the sandbox's own DNS server answers"),
                "use a name under .test (the sandbox's load balancers are <service>.<namespace>.lb.sandbox.test)",
            ),
            EnvironmentKind::Production if test => p.error(
                &field,
                format!("{name} is a sandbox name (.test) in a production environment"),
                "record the load balancer's real DNS name from `kubectl get svc`",
            ),
            _ => {}
        }
    }
    let sandbox = IpNet::new(
        crate::environments::sandbox::inventory::SANDBOX_NETWORK.0,
        crate::environments::sandbox::inventory::SANDBOX_NETWORK.1,
    )
    .expect("sandbox network is a valid prefix");
    for (field, ip) in &all {
        let local = ip.is_loopback() || sandbox.contains(ip);
        match env.kind {
            EnvironmentKind::Sandbox if !local => p.error(
                field,
                format!("{ip} is outside the sandbox: tests and demos must only reach loopback and their own network namespaces"),
                format!("use an address in {sandbox} or 127.0.0.0/8"),
            ),
            EnvironmentKind::Production if local => p.error(
                field,
                format!("{ip} is a loopback or sandbox address in a production environment"),
                "use the real address of the host or load balancer",
            ),
            _ => {}
        }
    }
}

fn monitoring(env: &Environment, p: &mut Problems) {
    let m = &env.monitoring;
    if !is_dns1123_label(&m.namespace) {
        p.error(
            "monitoring.namespace",
            format!("`{}` is not a DNS-1123 label", m.namespace),
            "use lowercase letters, digits and '-'",
        );
    }
    if !is_dns1035_label(&m.service_name) {
        p.error(
            "monitoring.service_name",
            format!("`{}` is not a valid Service name (a DNS-1035 label: at most 63 characters, starting with a letter)", m.service_name),
            "use lowercase letters, digits and '-', starting with a letter",
        );
    }
    let name = &m.port_name;
    let iana = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !iana {
        p.error(
            "monitoring.port_name",
            format!("`{name}` is not an IANA service name, which Service port names must be"),
            "use at most 15 lowercase letters, digits and single '-', with at least one letter, e.g. `zookeeperxp`",
        );
    }
    if m.service_monitor_selector.is_empty() {
        p.error(
            "monitoring.service_monitor_selector",
            "the selector is empty: the Service would not be tied to any ServiceMonitor",
            "copy spec.selector.matchLabels of the ServiceMonitor that should scrape the observers",
        );
    }
    for (k, v) in &m.service_monitor_selector {
        if !is_label_key(k) {
            p.error(
                "monitoring.service_monitor_selector",
                format!("`{k}` is not a valid label key"),
                "copy the key exactly from the ServiceMonitor",
            );
        }
        if !is_label_value(v) {
            p.error(
                "monitoring.service_monitor_selector",
                format!("`{v}` (for `{k}`) is not a valid label value"),
                "copy the value exactly from the ServiceMonitor",
            );
        }
    }
    if let Some(sm) = &m.service_monitor {
        if !is_dns1123_subdomain(&sm.name) {
            p.error(
                "monitoring.service_monitor.name",
                format!("`{}` is not a valid object name", sm.name),
                "use lowercase letters, digits, '-' and '.'",
            );
        }
        let ok = sm.interval.len() > 1
            && sm.interval.ends_with(['s', 'm', 'h'])
            && sm.interval[..sm.interval.len() - 1]
                .parse::<u32>()
                .is_ok_and(|n| n > 0);
        if !ok {
            p.error(
                "monitoring.service_monitor.interval",
                format!("`{}` is not a Prometheus duration", sm.interval),
                "use e.g. `30s` or `1m`",
            );
        }
    }
}

/// Consistency rules on rendered (or live) objects: the monitoring Service, its Endpoints and
/// EndpointSlices agree on port names; the Service carries every label of the ServiceMonitor's
/// selector; the Endpoints and slices are tied to the Service by name.
pub fn check_objects(env: &Environment, objects: &[Object]) -> Problems {
    let mut p = Problems::new();
    let m = &env.monitoring;
    let service = objects.iter().find_map(|o| match o {
        Object::Service(s) if s.metadata.name.as_deref() == Some(&m.service_name) => Some(s),
        _ => None,
    });
    let Some(service) = service else {
        p.error(
            "monitoring.service_name",
            format!("no Service `{}` is rendered", m.service_name),
            "this is a bug in the renderer",
        );
        return p;
    };
    let service_ports: Vec<String> = service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|port| port.name.clone().unwrap_or_default())
        .collect();
    let labels = service.metadata.labels.clone().unwrap_or_default();
    for (k, v) in &m.service_monitor_selector {
        if labels.get(k) != Some(v) {
            p.error(
                "monitoring.service_monitor_selector",
                format!(
                    "the ServiceMonitor selects `{k}={v}`, but the monitoring Service is labelled `{k}={}`: Prometheus would not scrape the observers",
                    labels.get(k).map_or("<absent>", String::as_str)
                ),
                format!("`{k}` is one of this tool's own labels; select the Service with other labels in the ServiceMonitor"),
            );
        }
    }
    for o in objects {
        let (kind, ports): (&str, Vec<String>) = match o {
            Object::Endpoints(e) if e.metadata.name.as_deref() == Some(&m.service_name) => (
                "Endpoints",
                e.subsets
                    .iter()
                    .flatten()
                    .flat_map(|s| s.ports.iter().flatten())
                    .map(|p| p.name.clone().unwrap_or_default())
                    .collect(),
            ),
            Object::Endpoints(e) => {
                p.error(
                    "monitoring.service_name",
                    format!("Endpoints `{}` is not named after its Service `{}`", o.name(), m.service_name),
                    "a selector-less Service finds its Endpoints by name: give them the Service's name",
                );
                let _ = e;
                continue;
            }
            Object::EndpointSlice(s) => {
                let owner = s
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SLICE_SERVICE_NAME_LABEL));
                if owner != Some(&m.service_name) {
                    p.error(
                        "monitoring.service_name",
                        format!(
                            "EndpointSlice `{}` is not labelled {SLICE_SERVICE_NAME_LABEL}={}",
                            o.name(),
                            m.service_name
                        ),
                        "label the slice with its Service's name",
                    );
                }
                (
                    "EndpointSlice",
                    s.ports
                        .iter()
                        .flatten()
                        .map(|p| p.name.clone().unwrap_or_default())
                        .collect(),
                )
            }
            _ => continue,
        };
        for name in ports {
            if !service_ports.contains(&name) {
                p.error(
                    "monitoring.port_name",
                    format!(
                        "{kind} `{}` names its port `{name}` but Service `{}` names it {}: the ServiceMonitor's port would match nothing",
                        o.name(),
                        m.service_name,
                        service_ports.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    ),
                    "use monitoring.port_name for the Service, the Endpoints and the EndpointSlice alike",
                );
            }
        }
    }
    p
}

/// Who may join as an observer: a plaintext quorum is a warning naming the exposure; quorum TLS
/// needs ZooKeeper 3.8 (the stores' passwords are read from files, `passwordPath`) and a key store
/// for every observer in service, its material named where it can be read.
fn quorum_security(env: &Environment, p: &mut Problems) {
    use hosts::{QuorumSecurity, SecretSource};
    let check_source = |p: &mut Problems, field: String, s: &SecretSource| match s {
        SecretSource::File(path) if !path.starts_with('/') || path.contains('\n') => p.error(
            field,
            format!("`{path}` is not an absolute path"),
            "name the file by its absolute path on the machine that deploys",
        ),
        SecretSource::EnvBase64(var)
            if var.is_empty()
                || var.starts_with(|c: char| c.is_ascii_digit())
                || !var
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
        {
            p.error(
                field,
                format!("`{var}` is not an environment variable name"),
                "use upper-case letters, digits and '_', not starting with a digit",
            )
        }
        _ => {}
    };
    match &env.fleet.quorum {
        QuorumSecurity::Plaintext => p.warning(
            "fleet.quorum",
            "the quorum is plaintext: whoever reaches 2888/3888 from an address the load balancers admit \
             (a machine behind the same NAT gateway; anyone, where the cloud does not enforce the ranges) \
             joins as an observer with no credential and copies every znode, in plaintext across the link",
            "run the ensemble with quorum TLS and set fleet.quorum to QuorumSecurity::Tls { trust_store } \
             with every observer's key_store (docs/networking.md)",
        ),
        QuorumSecurity::Tls { trust_store } => {
            let v = env.ensemble.version;
            if (v.major, v.minor) < (3, 8) {
                p.error(
                    "ensemble.version",
                    format!(
                        "quorum TLS here reads the stores' passwords from files \
                         (ssl.quorum.keyStore.passwordPath, new in ZooKeeper 3.8.0); ZooKeeper {v} does not"
                    ),
                    "upgrade the ensemble (and the observers' image) to 3.8 or later",
                );
            }
            check_source(p, "fleet.quorum.trust_store.store".into(), &trust_store.store);
            check_source(
                p,
                "fleet.quorum.trust_store.password".into(),
                &trust_store.password,
            );
            for (i, o) in env.fleet.observers.iter().enumerate() {
                match &o.key_store {
                    None => p.error(
                        format!("fleet.observers[{i}].key_store"),
                        format!(
                            "{} has no key store: it could not join a quorum that speaks TLS",
                            o.name
                        ),
                        "give it a KeyStore holding a certificate of the quorum's CA",
                    ),
                    Some(k) => {
                        check_source(p, format!("fleet.observers[{i}].key_store.store"), &k.store);
                        check_source(
                            p,
                            format!("fleet.observers[{i}].key_store.password"),
                            &k.password,
                        );
                    }
                }
            }
        }
    }
}
