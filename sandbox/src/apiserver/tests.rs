//! End-to-end tests: a real server on 127.0.0.1, spoken to with plain HTTP/1.1 over
//! `std::net::TcpStream`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{ApiServer, Config, Controllers, Fault, LoadBalancerMode};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn token(server: &ApiServer) -> String {
    let kc: Value = serde_yaml::from_str(&server.kubeconfig("sandbox")).unwrap();
    kc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn raw(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    auth: Option<&str>,
) -> Reply {
    raw_with(
        server,
        method,
        path,
        content_type,
        body,
        auth,
        "application/json",
    )
}

fn raw_with(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    auth: Option<&str>,
    accept: &str,
) -> Reply {
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: {accept}\r\n"
    );
    if let Some(t) = auth {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        text: body.to_string(),
    }
}

struct Client<'a> {
    server: &'a ApiServer,
    token: String,
}

impl<'a> Client<'a> {
    fn new(server: &'a ApiServer) -> Self {
        Client {
            server,
            token: token(server),
        }
    }

    fn get(&self, path: &str) -> Reply {
        raw(self.server, "GET", path, None, "", Some(&self.token))
    }

    fn send(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Reply {
        raw(
            self.server,
            method,
            path,
            Some(content_type),
            &body.to_string(),
            Some(&self.token),
        )
    }

    fn apply(&self, path: &str, body: &Value) -> Reply {
        self.send("PATCH", path, "application/apply-patch+yaml", body)
    }
}

const SVC: &str = "/api/v1/namespaces/default/services";

fn service(name: &str, ports: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "zk"}},
        "spec": {"selector": {"app": "zk"}, "ports": ports},
    })
}

#[test]
fn apply_twice_keeps_the_resource_version() {
    let server = ApiServer::start(Config::default()).unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    let first = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc);
    assert_eq!(first.status, 201, "{}", first.text);
    let second = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc);
    assert_eq!(second.status, 200, "{}", second.text);
    let (a, b) = (first.json(), second.json());
    assert_eq!(
        a["metadata"]["resourceVersion"],
        b["metadata"]["resourceVersion"]
    );
    assert_eq!(a, b);
    assert_eq!(b["metadata"]["managedFields"][0]["manager"], "zkctl");
    assert_eq!(server.get("v1", "services", "default", "zk0").unwrap(), b);

    let stats = server.stats();
    assert_eq!(stats.writes, 1);
    assert_eq!(stats.by_verb.get("apply services"), Some(&2));
    server.reset_stats();
    assert_eq!(server.stats(), super::Stats::default());
}

#[test]
fn requires_the_bearer_token() {
    let server = ApiServer::start(Config::default()).unwrap();
    for auth in [None, Some("wrong")] {
        let r = raw(&server, "GET", "/version", None, "", auth);
        assert_eq!(r.status, 401);
        let s = r.json();
        assert_eq!(
            (s["kind"].as_str(), s["reason"].as_str(), s["code"].as_i64()),
            (Some("Status"), Some("Unauthorized"), Some(401))
        );
    }
    let c = Client::new(&server);
    let v = c.get("/version");
    assert_eq!(v.status, 200);
    assert_eq!(v.json()["gitVersion"], "v1.33.0-sandbox");
    assert_eq!(server.stats().requests, 3);
}

#[test]
fn kubeconfig_names_the_context_cluster_and_user() {
    let server = ApiServer::start(Config::default()).unwrap();
    let kc: Value = serde_yaml::from_str(&server.kubeconfig("sandbox-ctx")).unwrap();
    assert_eq!(kc["current-context"], "sandbox-ctx");
    assert_eq!(kc["clusters"][0]["cluster"]["server"], server.url());
    assert_eq!(kc["contexts"][0]["name"], "sandbox-ctx");
    assert!(kc["contexts"][0]["context"].get("namespace").is_none());
    assert_eq!(kc["contexts"][0]["context"]["user"], kc["users"][0]["name"]);
    assert!(server.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn stop_closes_the_port() {
    let server = ApiServer::start(Config::default()).unwrap();
    let addr = server.url().trim_start_matches("http://").to_string();
    // An idle keep-alive connection must not keep the server alive.
    let _idle = TcpStream::connect(&addr).unwrap();
    server.stop();
    let err = TcpStream::connect(&addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn load_balancer_gets_the_mapped_address_after_the_delay() {
    let delay = Duration::from_millis(150);
    let config = Config {
        load_balancer: LoadBalancerMode::After(delay),
        lb_addresses: BTreeMap::from([("default/zk-lb".to_string(), "198.18.0.42".to_string())]),
        // Only the cloud's writes are counted here (the Service has a selector).
        controllers: Controllers::NONE,
        ..Config::default()
    };
    let server = ApiServer::start(config).unwrap();
    let c = Client::new(&server);
    let mut svc = service("zk-lb", json!([{"name": "client", "port": 2181}]));
    svc["spec"]["type"] = json!("LoadBalancer");
    let start = Instant::now();
    let r = c.apply(&format!("{SVC}/zk-lb?fieldManager=zkctl"), &svc);
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert!(created["spec"]["ports"][0]["nodePort"].as_i64().unwrap() >= 30000);
    assert_eq!(created["status"], json!({"loadBalancer": {}}));
    let ingress = loop {
        let obj = c.get(&format!("{SVC}/zk-lb")).json();
        if let Some(ingress) = obj["status"]["loadBalancer"].get("ingress") {
            break ingress.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no address after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(start.elapsed() >= delay);
    assert_eq!(ingress, json!([{"ip": "198.18.0.42", "ipMode": "VIP"}]));
    let stats = server.stats();
    // The cloud's two writes: its cleanup finalizer, then the address.
    assert_eq!((stats.writes, stats.controller_writes), (1, 2));

    // Another LoadBalancer gets the first pool address; with Never, nothing is assigned.
    let mut other = service("other", json!([{"name": "client", "port": 2181}]));
    other["spec"]["type"] = json!("LoadBalancer");
    assert_eq!(
        c.apply(&format!("{SVC}/other?fieldManager=zkctl"), &other)
            .status,
        201
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("v1", "services", "default", "other").unwrap()["status"]["loadBalancer"]
        .get("ingress")
        .is_none()
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let other = server.get("v1", "services", "default", "other").unwrap();
    assert_eq!(
        other["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.18.0.100"
    );
}

#[test]
fn never_mode_leaves_load_balancers_pending() {
    let config = Config {
        load_balancer: LoadBalancerMode::Never,
        controllers: Controllers::NONE,
        ..Config::default()
    };
    let server = ApiServer::start(config).unwrap();
    let c = Client::new(&server);
    let mut svc = service("zk", json!([{"name": "client", "port": 2181}]));
    svc["spec"]["type"] = json!("LoadBalancer");
    assert_eq!(
        c.apply(&format!("{SVC}/zk?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    std::thread::sleep(Duration::from_millis(150));
    let obj = server.get("v1", "services", "default", "zk").unwrap();
    assert_eq!(obj["status"], json!({"loadBalancer": {}}));
    // The cloud still takes the Service (its finalizer), it only never gets an address.
    assert_eq!(
        obj["metadata"]["finalizers"],
        json!([super::LB_CLEANUP_FINALIZER])
    );
    assert_eq!(server.stats().controller_writes, 1);
}

#[test]
fn conflicts_and_force_over_http() {
    let server = ApiServer::start(Config::default()).unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "quorum", "port": 2888}]));
    assert_eq!(
        c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    let edit = c.send(
        "PATCH",
        &format!("{SVC}/zk0?fieldManager=kubectl-edit"),
        "application/merge-patch+json",
        &json!({"spec": {"ports": [{"name": "peer", "port": 2888}]}}),
    );
    assert_eq!(edit.status, 200, "{}", edit.text);
    let r = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc);
    assert_eq!(r.status, 409);
    let s = r.json();
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(
        s["message"],
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .spec.ports[port=2888,protocol="TCP"].name"#
    );
    assert_eq!(
        s["details"]["causes"][0],
        json!({
            "reason": "FieldManagerConflict",
            "type": "FieldManagerConflict",
            "message": "conflict with \"kubectl-edit\" using v1",
            "field": ".spec.ports[port=2888,protocol=\"TCP\"].name",
        })
    );
    let forced = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl&force=true"), &svc);
    assert_eq!(forced.status, 200, "{}", forced.text);
    assert_eq!(forced.json()["spec"]["ports"][0]["name"], "quorum");
    assert_eq!(server.stats().writes, 3);
}

#[test]
fn dry_run_apply_stores_nothing() {
    let server = ApiServer::start(Config::default()).unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    let r = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl&dryRun=All"), &svc);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["spec"]["type"], "ClusterIP");
    assert_eq!(server.object_count(), 0);
    assert_eq!(c.get(&format!("{SVC}/zk0")).status, 404);
    let stats = server.stats();
    assert_eq!(stats.writes, 0);
    assert_eq!(stats.by_verb.get("apply-dry-run services"), Some(&1));
}

#[test]
fn yaml_apply_bodies_are_accepted() {
    let server = ApiServer::start(Config::default()).unwrap();
    let t = token(&server);
    let yaml = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: zk\nsubsets:\n- addresses:\n  - ip: 10.1.0.1\n  ports:\n  - port: 2181\n";
    let r = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/default/endpoints/zk?fieldManager=zkctl",
        Some("application/apply-patch+yaml"),
        yaml,
        Some(&t),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["subsets"][0]["ports"][0]["protocol"], "TCP");
}

#[test]
fn list_with_label_selectors_over_seeded_objects() {
    // No Endpoints or slices next to the seeded Services (they have a selector).
    let server = ApiServer::start(Config {
        controllers: Controllers::NONE,
        ..Config::default()
    })
    .unwrap();
    for i in 0..50 {
        let mut svc = service(&format!("s{i}"), json!([{"name": "http", "port": 80}]));
        svc["metadata"]["labels"] =
            json!({"app": if i % 2 == 0 { "even" } else { "odd" }, "n": i.to_string()});
        server.insert(svc, "seeder").unwrap();
    }
    assert_eq!(server.object_count(), 50);
    assert!(server
        .insert(service("s0", json!([{"port": 80}])), "seeder")
        .is_err());
    let c = Client::new(&server);
    let list = c.get(&format!("{SVC}?labelSelector=app%3Deven")).json();
    assert_eq!(list["kind"], "ServiceList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(list["metadata"]["resourceVersion"].as_str().is_some());
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 25);
    assert!(items
        .iter()
        .all(|i| i["kind"] == "Service" && i["apiVersion"] == "v1"));
    let list = c
        .get(&format!("{SVC}?labelSelector=n%20in%20(1,2,3),app!=odd"))
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let list = c.get("/api/v1/services?labelSelector=!app").json();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        c.get(&format!("{SVC}?labelSelector=app%20in%20(")).status,
        400
    );
    assert_eq!(server.stats().by_verb.get("list services"), Some(&4));
    assert_eq!(server.stats().writes, 0);
}

#[test]
fn faults_delay_and_fail_requests() {
    let server = ApiServer::start(Config::default()).unwrap();
    let c = Client::new(&server);
    server.inject(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/services/".into()),
        status: 503,
        latency: Duration::ZERO,
        times: 1,
        commits: false,
    });
    server.inject(Fault {
        method: None,
        path_contains: Some("/version".into()),
        status: 429,
        latency: Duration::ZERO,
        times: u32::MAX,
        commits: false,
    });
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    let r = c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "ServiceUnavailable");
    assert_eq!(
        c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    for _ in 0..2 {
        // Overload is answered as kube-apiserver's max-in-flight filter does: plain text.
        let r = c.get("/version");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("Retry-After"), Some("1"));
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.text, "Too many requests, please try again later.\n");
    }
    server.clear_faults();
    assert_eq!(c.get("/version").status, 200);

    server.inject(Fault {
        method: Some("get".into()),
        path_contains: None,
        status: 0,
        latency: Duration::from_millis(100),
        times: 1,
        commits: false,
    });
    let start = Instant::now();
    assert_eq!(c.get(&format!("{SVC}/zk0")).status, 200);
    assert!(start.elapsed() >= Duration::from_millis(100));
    let stats = server.stats();
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.writes, 1);
}

#[test]
fn errors_are_status_objects() {
    let server = ApiServer::start(Config {
        crds: false,
        ..Config::default()
    })
    .unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));

    let r = c.get("/api/v1/namespaces/nope/services/zk0");
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (404, Some(r#"namespaces "nope" not found"#))
    );
    let r = c.get(&format!("{SVC}/zk0"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "NotFound");
    assert_eq!(
        r.json()["details"],
        json!({"name": "zk0", "kind": "services"})
    );
    assert_eq!(
        c.get("/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors")
            .status,
        404
    );
    assert_eq!(
        c.apply(&format!("{SVC}/zk0"), &svc).status,
        400,
        "fieldManager is required"
    );
    assert_eq!(
        c.send(
            "PATCH",
            &format!("{SVC}/zk0"),
            "application/json-patch+json",
            &json!([])
        )
        .status,
        415
    );
    let r = c.get(&format!("{SVC}?watch=true"));
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    assert_eq!(
        c.apply(&format!("{SVC}/other?fieldManager=m"), &svc).status,
        400,
        "name mismatch"
    );

    let mut bad = svc.clone();
    bad["spec"]["ports"] = json!([{"name": "a", "port": 0}]);
    let r = c.send("POST", SVC, "application/json", &bad);
    assert_eq!(r.status, 422);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "spec.ports[0].port");

    assert_eq!(c.send("POST", SVC, "application/json", &svc).status, 201);
    let r = c.send("POST", SVC, "application/json", &svc);
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let mut stale = c.get(&format!("{SVC}/zk0")).json();
    stale["metadata"]["resourceVersion"] = json!("1");
    let r = c.send("PUT", &format!("{SVC}/zk0"), "application/json", &stale);
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (409, Some("Conflict"))
    );
}

#[test]
fn delete_honours_dry_run_and_reports_absence() {
    let server = ApiServer::start(Config {
        controllers: Controllers::NONE,
        ..Config::default()
    })
    .unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    assert_eq!(
        c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    let path = format!("{SVC}/zk0");
    let r = c.send(
        "DELETE",
        &path,
        "application/json",
        &json!({"dryRun": ["All"]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["name"], "zk0");
    assert_eq!(server.object_count(), 1);
    let r = c.send(
        "DELETE",
        &path,
        "application/json",
        &json!({"propagationPolicy": "Background"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(server.object_count(), 0);
    assert_eq!(
        c.send("DELETE", &path, "application/json", &json!({}))
            .status,
        404
    );
    let stats = server.stats();
    assert_eq!(stats.writes, 2);
    assert_eq!(stats.by_verb.get("delete-dry-run services"), Some(&1));
    assert_eq!(stats.by_verb.get("delete services"), Some(&2));
}

#[test]
fn status_subresource_and_discovery() {
    let server = ApiServer::start(Config::default()).unwrap();
    let c = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    assert_eq!(
        c.apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    let r = c.send(
        "PATCH",
        &format!("{SVC}/zk0/status?fieldManager=me"),
        "application/merge-patch+json",
        &json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.9.9"}]}}, "spec": {"type": "NodePort"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let obj = r.json();
    assert_eq!(obj["spec"]["type"], "ClusterIP");
    assert_eq!(
        obj["status"]["loadBalancer"]["ingress"][0]["ip"],
        "198.18.9.9"
    );
    assert_eq!(
        server.stats().by_verb.get("patch services/status"),
        Some(&1)
    );

    let ns = c.get("/api/v1/namespaces").json();
    let names: Vec<&str> = ns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "kube-system"]);
    assert_eq!(
        c.get("/api/v1/namespaces/kube-system").json()["kind"],
        "Namespace"
    );
    assert_eq!(c.get("/api/v1/namespaces/nope").status, 404);
    let groups = c.get("/apis").json();
    assert_eq!(
        groups["groups"].as_array().unwrap().len(),
        4,
        "apps, discovery.k8s.io, monitoring.coreos.com, coordination.k8s.io"
    );
    let core = c.get("/api/v1").json();
    assert!(core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "services/status"));
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = raw_with(
        &server,
        "GET",
        "/apis",
        None,
        "",
        Some(&token(&server)),
        accept,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let doc = r.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    let names: Vec<&str> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "discovery.k8s.io",
            "monitoring.coreos.com",
            "coordination.k8s.io",
            "apps"
        ]
    );
    let r = raw_with(
        &server,
        "GET",
        "/api",
        None,
        "",
        Some(&token(&server)),
        accept,
    );
    let core = &r.json()["items"][0]["versions"][0]["resources"];
    assert!(core
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resource"] == "services" && r["subresources"][0]["subresource"] == "status"));
}

fn token_from(kubeconfig: &str) -> String {
    let kc: Value = serde_yaml::from_str(kubeconfig).unwrap();
    kc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

impl<'a> Client<'a> {
    fn as_user(server: &'a ApiServer, user: &str) -> Self {
        Client {
            server,
            token: token_from(&server.kubeconfig_as("sandbox", user).unwrap()),
        }
    }
}

#[test]
fn a_read_only_identity_is_forbidden_every_write_dry_runs_included() {
    let server = ApiServer::start(Config {
        identities: vec![super::Identity::read_only("drift-job")],
        controllers: Controllers::NONE,
        ..Config::default()
    })
    .unwrap();
    let admin = Client::new(&server);
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    assert_eq!(
        admin
            .apply(&format!("{SVC}/zk0?fieldManager=zkctl"), &svc)
            .status,
        201
    );

    let ro = Client::as_user(&server, "drift-job");
    assert_eq!(ro.get(&format!("{SVC}/zk0")).status, 200);
    assert_eq!(ro.get(SVC).status, 200);
    assert_eq!(ro.get("/api/v1/services").status, 200, "cluster-wide list");
    assert_eq!(
        ro.get("/version").status,
        200,
        "discovery is open to everyone"
    );
    let writes = [
        (
            "PATCH",
            format!("{SVC}/zk0?fieldManager=x"),
            "application/apply-patch+yaml",
        ),
        (
            "PATCH",
            format!("{SVC}/zk0?fieldManager=x&dryRun=All"),
            "application/apply-patch+yaml",
        ),
        (
            "PATCH",
            format!("{SVC}/zk0"),
            "application/merge-patch+json",
        ),
        ("PUT", format!("{SVC}/zk0"), "application/json"),
        ("POST", SVC.to_string(), "application/json"),
        ("POST", format!("{SVC}?dryRun=All"), "application/json"),
        ("DELETE", format!("{SVC}/zk0"), "application/json"),
        (
            "DELETE",
            format!("{SVC}/zk0?dryRun=All"),
            "application/json",
        ),
    ];
    for (method, path, ct) in &writes {
        let r = ro.send(method, path, ct, &svc);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert_eq!(r.json()["reason"], "Forbidden");
    }
    let r = ro.send(
        "DELETE",
        &format!("{SVC}/zk0"),
        "application/json",
        &json!({}),
    );
    assert_eq!(
        r.json()["message"],
        r#"services "zk0" is forbidden: User "drift-job" cannot delete resource "services" in API group "" in the namespace "default""#
    );
    assert!(server.get("v1", "services", "default", "zk0").is_some());
    let stats = server.stats();
    assert_eq!(stats.write_requests("drift-job"), writes.len() as u64 + 1);
    assert_eq!(stats.write_requests("admin"), 1);
    assert_eq!(stats.by_user["drift-job"]["get services"], 1);
}

#[test]
fn rbac_roles_grant_per_namespace_verb_and_name() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
    "metadata": {"name": "deploy", "namespace": "default"},
    "rules": [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"], "resourceNames": ["lock"]},
    ]});
    let identity = super::Identity::from_roles("deployer", &[role]).unwrap();
    let server = ApiServer::start(Config {
        identities: vec![identity],
        controllers: Controllers::NONE,
        ..Config::default()
    })
    .unwrap();
    let c = Client::as_user(&server, "deployer");
    let svc = service("zk0", json!([{"name": "client", "port": 2181}]));
    // An apply that would create needs `create` as well as `patch`.
    let r = c.apply(&format!("{SVC}/zk0?fieldManager=x&dryRun=All"), &svc);
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("cannot create resource"), "{}", r.text);
    assert_eq!(
        Client::new(&server)
            .apply(&format!("{SVC}/zk0?fieldManager=x"), &svc)
            .status,
        201
    );
    assert_eq!(
        c.apply(&format!("{SVC}/zk0?fieldManager=x"), &svc).status,
        200
    );
    assert_eq!(c.get(SVC).status, 403, "no list");
    assert_eq!(
        c.get("/api/v1/namespaces/kube-system/services/zk0").status,
        403,
        "other namespace"
    );
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    assert_eq!(
        c.get(&format!("{leases}/lock")).status,
        404,
        "allowed, absent"
    );
    assert_eq!(
        c.get(&format!("{leases}/other")).status,
        403,
        "not that name"
    );
}

#[test]
fn a_delete_with_finalizers_marks_the_object_until_they_are_removed() {
    let server = ApiServer::start(Config {
        controllers: Controllers::NONE,
        lb_cleanup: Duration::from_millis(300),
        ..Config::default()
    })
    .unwrap();
    let c = Client::new(&server);
    let mut svc = service("lb", json!([{"name": "client", "port": 2181}]));
    svc["spec"]["type"] = json!("LoadBalancer");
    assert_eq!(
        c.apply(&format!("{SVC}/lb?fieldManager=zkctl"), &svc)
            .status,
        201
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get(&format!("{SVC}/lb")).json()["metadata"]
        .get("finalizers")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the cloud never added its finalizer"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let r = c.send(
        "DELETE",
        &format!("{SVC}/lb"),
        "application/json",
        &json!({}),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.json()["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.text
    );
    let r = c.get(&format!("{SVC}/lb"));
    assert_eq!(
        r.status, 200,
        "still there while the load balancer is released"
    );
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    while c.get(&format!("{SVC}/lb")).status == 200 {
        assert!(Instant::now() < deadline, "never released");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
}
