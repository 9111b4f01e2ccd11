//! Helpers shared by the integration test areas.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `cargo xtask` binary built for this test run.
pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.env("NO_COLOR", "1").env_remove("RUST_LOG");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("xtask runs");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every regular file under `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Renders every environment with the real binary into a fresh directory.
pub fn render_all() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = run(xtask().args(["render", "--out"]).arg(dir.path()));
    assert!(out.status.success(), "render failed");
    dir
}

/// When a sandbox host's ZooKeeper container was started (changes on every restart).
pub fn started_at(h: &sandbox::harness::ObserverHost) -> String {
    let id = h.container_id("zookeeper").unwrap();
    h.docker(&["inspect", "-f", "{{.State.StartedAt}}", &id])
        .unwrap()
        .trim()
        .to_string()
}

/// Runs `f` with a kube client for `kubeconfig` (YAML): edits made by "someone else".
pub fn with_client<T>(kubeconfig: String, f: impl AsyncFnOnce(kube::Client) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            f(kube::Client::try_from(config).unwrap()).await
        })
}

/// The sandbox environment's kube context.
pub const CONTEXT: &str = "zk-observers-sandbox";
/// The sandbox environment's namespace.
pub const NS: &str = "zookeeper";

/// The one test world: a Kubernetes API test server with a kubeconfig for it, and, for the tests
/// that need them (as root), the sandbox's observer hosts and ZooKeeper ensemble.
pub struct World {
    pub api: sandbox::ApiServer,
    sb: Option<sandbox::Sandbox>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl World {
    /// An API test server only.
    pub fn cluster(config: sandbox::Config) -> World {
        World::cluster_with_context(config, CONTEXT)
    }

    /// An API test server only, its kubeconfig's context named `context`.
    pub fn cluster_with_context(config: sandbox::Config, context: &str) -> World {
        let api = sandbox::ApiServer::start(config).expect("the API test server starts");
        World::with(api, None, context)
    }

    /// The sandbox with the cluster `sandbox::harness::api_config` describes (load balancers after
    /// 300 ms).
    pub fn sandbox() -> World {
        World::sandbox_with(|env| {
            sandbox::harness::api_config(env, std::time::Duration::from_millis(300))
        })
    }

    /// The sandbox with a plaintext quorum (the sandbox runs quorum TLS by default): the
    /// participants without certificates. The sandbox environment as compiled still deploys TLS
    /// to the observers, which cannot join such a quorum: for what a plaintext quorum exposes.
    pub fn plaintext_sandbox() -> World {
        let sb = sandbox::Sandbox::start(sandbox::Options {
            quorum_tls: false,
            ..Default::default()
        })
        .expect("the sandbox starts");
        let api = sandbox::ApiServer::start(sandbox::harness::api_config(
            &sb.env,
            std::time::Duration::from_millis(300),
        ))
        .expect("the API test server starts");
        World::with(api, Some(sb), CONTEXT)
    }

    /// The sandbox with an API test server configured by `config` (from the sandbox environment).
    pub fn sandbox_with(config: impl FnOnce(&manifests::Environment) -> sandbox::Config) -> World {
        let sb = sandbox::Sandbox::start(sandbox::Options::default())
            .expect("the sandbox starts (run as root; see .ci/run for the packages)");
        let api = sandbox::ApiServer::start(config(&sb.env)).expect("the API test server starts");
        World::with(api, Some(sb), CONTEXT)
    }

    fn with(api: sandbox::ApiServer, sb: Option<sandbox::Sandbox>, context: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig(context)).unwrap();
        World {
            api,
            sb,
            dir,
            kubeconfig,
        }
    }

    pub fn sb(&self) -> &sandbox::Sandbox {
        self.sb.as_ref().expect("a world with the sandbox")
    }

    pub fn sb_mut(&mut self) -> &mut sandbox::Sandbox {
        self.sb.as_mut().expect("a world with the sandbox")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `cargo xtask ARGS` with this world's kubeconfig, a home of its own and no stdin.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&self.kubeconfig, args)
    }

    fn cmd_with(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut c = xtask();
        c.env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::null())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// A kubeconfig for the API test server's identity `user`.
    pub fn kubeconfig_as(&self, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{user}"));
        std::fs::write(&path, self.api.kubeconfig_as(CONTEXT, user).unwrap()).unwrap();
        path
    }

    /// `cargo xtask ARGS` as the API test server's identity `user`.
    pub fn run_as(&self, user: &str, args: &[&str]) -> Output {
        run(&mut self.cmd_with(&self.kubeconfig_as(user), args))
    }

    /// The command [`on_sandbox`](Self::on_sandbox) runs, to spawn and signal.
    pub fn sandbox_cmd(&self, args: &[&str]) -> Command {
        let all = self.sandbox_args(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.cmd(&refs)
    }

    fn sandbox_args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            args[0].to_string(),
            "--env".into(),
            "sandbox".into(),
            "--identity".into(),
            self.sb().ssh_identity().display().to_string(),
        ];
        all.extend(args[1..].iter().map(|a| a.to_string()));
        all
    }

    /// `cargo xtask SUBCOMMAND --env sandbox --identity <the sandbox key> REST`.
    pub fn on_sandbox(&self, args: &[&str]) -> Output {
        let all = self.sandbox_args(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// [`on_sandbox`](Self::on_sandbox) as the identity `user`.
    pub fn on_sandbox_as(&self, user: &str, args: &[&str]) -> Output {
        let all = self.sandbox_args(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run_as(user, &refs)
    }

    /// A successful `deploy --yes --output json` of the sandbox.
    pub fn deploy(&self) -> Value {
        let out = self.on_sandbox(&["deploy", "--yes", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "deploy");
        json(&out)
    }

    /// `drift --output json`: exit code and report.
    pub fn drift(&self) -> (i32, Value) {
        let out = self.on_sandbox(&["drift", "--output", "json"]);
        (out.status.code().unwrap(), json(&out))
    }

    /// Write requests to the objects this tool manages (the deploy lock's Lease is bookkeeping).
    pub fn managed_writes(&self) -> u64 {
        self.api
            .stats()
            .by_verb
            .iter()
            .filter(|(k, _)| {
                let (verb, resource) = k.split_once(' ').unwrap();
                !verb.contains("dry-run")
                    && !resource.starts_with("leases")
                    && ["create", "apply", "update", "patch", "delete"].contains(&verb)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Runs `f` with a kube client of the administrator: edits by "someone else".
    pub fn client<T>(&self, f: impl AsyncFnOnce(kube::Client) -> T) -> T {
        with_client(self.api.kubeconfig(CONTEXT), f)
    }

    /// The Service `name` of the sandbox's namespace, read directly.
    pub fn service(&self, name: &str) -> Option<Value> {
        self.api.get("v1", "services", NS, name)
    }

    /// When `host`'s ZooKeeper container was started.
    pub fn started_at(&self, host: &str) -> String {
        started_at(self.sb().host(host))
    }

    /// The contents of `file` in `host`'s deploy directory.
    pub fn deployed(&self, host: &str, file: &str) -> String {
        std::fs::read_to_string(self.sb().host(host).deploy_dir.join(file)).unwrap()
    }

    /// Replaces `from` with `to` in `file` on `host`, as a hand edit there.
    pub fn edit(&self, host: &str, file: &str, from: &str, to: &str) {
        let path = self.sb().host(host).deploy_dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from} not in {}", path.display());
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
}

/// The JSON document on a command's stdout.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON on stdout ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `ready` every 25 ms for at most 10 s.
pub fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// The sandbox environment's first per-pod Service, renamed `name`, as this tool would apply it
/// (for objects the tool wrote once and no longer desires).
pub fn per_pod_service(name: &str) -> Value {
    let env = manifests::environments::sandbox::environment();
    let mut svc =
        serde_json::to_value(&manifests::objects::load_balancer_services(&env)[0]).unwrap();
    svc["metadata"]["name"] = serde_json::json!(name);
    svc
}

/// [`per_pod_service`] `name` as a ClusterIP Service (no load balancer, no source ranges).
pub fn cluster_ip_service(name: &str) -> Value {
    let mut svc = per_pod_service(name);
    svc["spec"]["type"] = serde_json::json!("ClusterIP");
    svc["spec"]
        .as_object_mut()
        .unwrap()
        .remove("loadBalancerSourceRanges");
    svc
}

/// Applies `object` (a Service) as this tool's field manager would have.
pub fn apply_as_the_tool(w: &World, object: &Value) {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    w.client(async |c| {
        let api: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(c, NS);
        api.patch(
            &name,
            &kube::api::PatchParams::apply("zk-observers-xtask"),
            &kube::api::Patch::Apply(object),
        )
        .await
        .unwrap();
    });
}

/// The rendered Roles of `access` for the sandbox environment, as JSON documents.
pub fn roles(access: manifests::rbac::Access) -> Vec<Value> {
    manifests::rbac::roles(&manifests::environments::sandbox::environment())
        .into_iter()
        .filter(|r| r.metadata.name.as_deref() == Some(access.role_name()))
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// The report of host `name` in a command's JSON report.
pub fn host<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

/// What `srvr` says host `name`'s ZooKeeper is (`observer`), or `down`.
pub fn mode(sb: &sandbox::Sandbox, name: &str) -> String {
    let h = sb.host(name);
    sandbox::harness::four_letter_word(&h.address.to_string(), 2181, "srvr")
        .ok()
        .and_then(|a| {
            a.lines()
                .find_map(|l| l.strip_prefix("Mode: ").map(String::from))
        })
        .unwrap_or_else(|| "down".into())
}

/// A fresh host key pair in `dir`: the private key's text and the public key's SHA256
/// fingerprint, as `ssh-keygen -l` prints it (for an impostor host).
pub fn impostor_key(dir: &Path) -> (String, String) {
    let key = dir.join("impostor");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap()
        .stdout;
    let fingerprint = String::from_utf8(listed)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    (std::fs::read_to_string(&key).unwrap(), fingerprint)
}

/// The drift job's checked-in test key, with the permissions ssh requires, in `dir`.
pub fn drift_key(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("drift_ed25519_key");
    std::fs::write(
        &key,
        include_str!("../../../tests/sandbox/ssh/drift_ed25519_key"),
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

/// `ssh ARGS root@ADDRESS [COMMAND]` through the sandbox's bastion (reached with the deploy key),
/// authenticating at ADDRESS with `key` only.
pub fn ssh_as(
    w: &World,
    key: &Path,
    address: &str,
    args: &[&str],
    command: Option<&str>,
) -> Output {
    let options = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR";
    let mut ssh = Command::new("ssh");
    ssh.arg("-i")
        .arg(key)
        .args(options.split(' '))
        .args(["-o", "IdentitiesOnly=yes", "-o"])
        .arg(format!(
            "ProxyCommand=ssh -i {} {options} -W %h:%p root@198.18.1.2",
            w.sb().ssh_identity().display()
        ))
        .args(args)
        .arg(format!("root@{address}"));
    if let Some(c) = command {
        ssh.arg(c);
    }
    ssh.output().unwrap()
}

/// `ssh ARGS root@BASTION [COMMAND]` straight to the sandbox's bastion with `key` only.
pub fn ssh_bastion_as(key: &Path, args: &[&str], command: Option<&str>) -> Output {
    let mut ssh = Command::new("ssh");
    ssh.arg("-i")
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=INFO",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .args(args)
        .arg("root@198.18.1.2");
    if let Some(c) = command {
        ssh.arg(c);
    }
    ssh.stdin(std::process::Stdio::null());
    ssh.output().unwrap()
}

/// Makes the cluster's network drop (or, `add` false, again accept) what `address` sends: the
/// load balancers stop answering that observer host.
pub fn drop_traffic_from(address: &str, add: bool) {
    sandbox::harness::netns::in_ns(
        sandbox::harness::netns::CLUSTER_NS,
        "iptables",
        &[
            "-w",
            if add { "-I" } else { "-D" },
            "INPUT",
            "-s",
            address,
            "-j",
            "DROP",
        ],
    )
    .unwrap()
}

// --- spawned commands and in-process deploys -------------------------------------------------

/// What a spawned command came to.
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Spawns `cmd`, and when a line of its stderr contains `marker` runs `then` (with the child's
/// pid); returns how the command ended.
pub fn when_stderr_says(mut cmd: Command, marker: &str, then: impl FnOnce(u32)) -> Ended {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut then = Some(then);
    let started = Instant::now();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(marker) {
            if let Some(f) = then.take() {
                f(child.id());
            }
        }
    }
    let status = child.wait().unwrap();
    let stdout = reading.join().unwrap();
    eprintln!(
        "--- stdout\n{stdout}--- stderr ({:.1}s)\n{seen}",
        started.elapsed().as_secs_f64()
    );
    assert!(then.is_none(), "the command never said {marker:?}");
    Ended {
        code: status.code(),
        stdout,
        stderr: seen,
    }
}

/// Sends signal `name` (`TERM`, `INT`, ...) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

/// The arguments of a deploy of `env` to the sandbox in `w`, as a test calls it in process: no
/// prompt, the sandbox's identity and kubeconfig, short timeouts. Tests change what they need.
pub fn deploy_args(w: &World, env: &manifests::Environment) -> xtask::cli::DeployArgs {
    xtask::cli::DeployArgs {
        selection: xtask::cli::ClusterSelection {
            env: Some(env.name.clone()),
        },
        yes: true,
        dry_run: false,
        plan_out: None,
        plan: None,
        force_conflicts: false,
        prune: false,
        force_retire: false,
        reset_data: vec![],
        timeout: Duration::from_secs(30),
        rollout: xtask::cli::RolloutArgs {
            health_timeout: Duration::from_secs(60),
            max_unavailable: xtask::cli::MaxUnavailable::Count(1),
        },
        lock: Default::default(),
        ssh: xtask::cli::SshArgs {
            identity: Some(w.sb().ssh_identity().to_path_buf()),
            connect_timeout: Duration::from_secs(10),
            parallel: 4,
        },
        cluster: xtask::cli::ClusterArgs {
            kubeconfig: Some(w.dir().join("kubeconfig")),
            ..Default::default()
        },
    }
}
