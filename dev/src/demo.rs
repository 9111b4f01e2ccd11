//! `cargo xtask demo`: the whole tool on this machine. Brings up the local sandbox (the Kubernetes
//! API test server, a real ZooKeeper ensemble, observer hosts with sshd and Docker — the harness
//! the tests use), deploys the sandbox environment, shows status, makes drift in the cluster and on
//! a host, shows the drift check catching it, and tears everything down (`--keep` waits for Ctrl-C
//! first).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anstream::println;
use anstyle::{AnsiColor, Style};
use anyhow::{bail, Context, Result};
use sandbox::{ApiServer, Options, Sandbox};
use xshell::{cmd, Shell};

use xtask::output::exit;

use crate::DemoArgs;

const STEP: Style = AnsiColor::Cyan.on_default().bold();
/// The API test server user the demo's drift check runs as.
const DRIFT_USER: &str = "drift-job";

fn step(n: u32, what: &str) {
    println!("\n{STEP}==> {n}. {what}{STEP:#}");
}

pub fn run(args: &DemoArgs) -> Result<u8> {
    let sh = Shell::new()?;
    let uid = cmd!(sh, "id -u").read().context("running id")?;
    if uid.trim() != "0" {
        bail!("the demo creates network namespaces and starts dockerd, sshd and ZooKeeper: run it as root");
    }
    step(0, "checking what the sandbox needs");
    let missing = sandbox::harness::missing_packages();
    if missing.is_empty() {
        println!("all packages present");
    } else {
        println!("installing Debian packages: {}", missing.join(" "));
        cmd!(sh, "apt-get update -qq")
            .run()
            .context("apt-get update")?;
        cmd!(
            sh,
            "apt-get install -y -qq --no-install-recommends {missing...}"
        )
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("installing the sandbox's packages")?;
    }
    // The exporter stand-in is baked into the sandbox's exporter image.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    cmd!(
        sh,
        "{cargo} build --quiet --manifest-path {manifest} -p sandbox --bin zk-exporter-standin"
    )
    .run()
    .context("building the exporter stand-in")?;

    let env = manifests::environments::sandbox::environment();
    let signals = watch_signals(env.clone())?;
    step(
        1,
        "starting the Kubernetes API test server (the one simulated peer)",
    );
    // A cluster as real as the test server makes it (controllers on), with the scheduled drift
    // check's identity bound to the rendered read-only Role.
    let mut config = sandbox::harness::api_config(&env, Duration::from_secs(1));
    let drift_roles: Vec<serde_json::Value> = manifests::rbac::roles(&env)
        .into_iter()
        .filter(|r| r.metadata.name.as_deref() == Some(manifests::rbac::DRIFT_ROLE))
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    config.identities = vec![sandbox::Identity::from_roles(DRIFT_USER, &drift_roles)?];
    let api = ApiServer::start(config)?;
    let dir = tempfile::Builder::new()
        .prefix("zk-observers-demo-")
        .tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context))?;
    let drift_kubeconfig = dir.path().join("kubeconfig-drift");
    std::fs::write(
        &drift_kubeconfig,
        api.kubeconfig_as(&env.kube_context, DRIFT_USER)?,
    )?;
    println!(
        "API server at {}, kubeconfig {} (the drift check's, bound to Role {}: {})",
        api.url(),
        kubeconfig.display(),
        manifests::rbac::DRIFT_ROLE,
        drift_kubeconfig.display()
    );

    step(2, "starting the sandbox: network namespaces, 3 ZooKeeper servers, 2 observer hosts with sshd and dockerd");
    let sb = Sandbox::start(Options::default())?;
    let identity = sb.ssh_identity().to_path_buf();
    let me = std::env::current_exe()?;
    let xtask_with = |kubeconfig: &Path, args: &[&str]| -> Result<i32> {
        signals.stop_if_interrupted();
        let shown: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('/'))
            .collect();
        println!(
            "{STEP}$ cargo xtask {}{STEP:#}",
            shown.join(" ").replace("--identity", "--identity <key>")
        );
        // In a process group of its own: on Ctrl-C the watcher hands the signal on to it once, and
        // it finishes its host in flight and releases its lock before the sandbox goes down.
        let mut child = Command::new(&me)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .process_group(0)
            .spawn()
            .context("running cargo xtask")?;
        signals.running(Some(child.id()));
        let status = child.wait().context("running cargo xtask");
        signals.running(None);
        Ok(status?.code().unwrap_or(-1))
    };
    let xtask = |args: &[&str]| xtask_with(&kubeconfig, args);
    let id = identity.display().to_string();

    step(3, "deploying the sandbox environment");
    let deployed = xtask(&["deploy", "--env", "sandbox", "--yes", "--identity", &id])?;
    step(4, "status of the observers");
    xtask(&["status", "--env", "sandbox", "--identity", &id])?;
    step(5, "a second deploy changes nothing");
    let again = xtask(&["deploy", "--env", "sandbox", "--yes", "--identity", &id])?;
    step(
        6,
        "an impostor: a ZooKeeper with no certificate, on zk-observer-1's own address (one the load \
         balancers admit), asks to join as observer 99; the quorum speaks TLS and refuses it",
    );
    signals.stop_if_interrupted();
    let refused = impostor_refused(&sb)?;

    step(7, "making drift: someone widens zk0's source ranges with kubectl edit, someone edits zoo.cfg on zk-observer-2");
    human_edit(&api, &env)?;
    let cfg = sb.host("zk-observer-2").deploy_dir.join("zoo.cfg");
    edit_file(&cfg, "syncLimit=10", "syncLimit=3")?;
    step(
        8,
        "the drift check, with read-only credentials on both sides (the drift Role: get and list; the drift SSH key: \
         the forced read-only command deploy installed), catches both (exit 2)",
    );
    let drift_key = sb.drift_identity()?.display().to_string();
    let drift = xtask_with(
        &drift_kubeconfig,
        &["drift", "--env", "sandbox", "--identity", &drift_key],
    )?;
    let drift_writes = api.stats().write_requests(DRIFT_USER);
    println!("write requests the API server received from the drift identity: {drift_writes}");

    if args.keep {
        step(9, "keeping the sandbox up");
        println!(
            "KUBECONFIG={} cargo xtask status --env sandbox --identity {id}",
            kubeconfig.display()
        );
        println!("press Ctrl-C to tear it down");
        signals.wait();
    }
    step(10, "tearing down");
    drop(sb);
    api.stop();
    let ok = deployed == 0
        && again == 0
        && refused
        && drift == i32::from(exit::CHANGES)
        && drift_writes == 0;
    println!(
        "\n{}",
        if ok {
            "demo complete: deploy succeeded, the second deploy changed nothing, an impostor was refused, drift was caught"
        } else {
            "demo FAILED: see the step outputs above"
        }
    );
    Ok(if ok { exit::OK } else { exit::ERROR })
}

/// Writes a znode on the leader, starts a plaintext ZooKeeper observer (id 99) in zk-observer-1's
/// namespace, and watches it for 15 s: refused when it never joins and never serves the znode.
fn impostor_refused(sb: &Sandbox) -> Result<bool> {
    use sandbox::harness::{netns, Ensemble, Impostor};
    let leader = sb
        .ensemble
        .as_ref()
        .and_then(|e| e.leader())
        .context("no leader")?;
    Ensemble::cli(
        &format!("{}:2181", leader.address),
        &["create", "/demo-secret", "every-znode"],
    )?;
    let e = &sb.env.ensemble;
    let servers: Vec<String> = e
        .participants()
        .iter()
        .map(|p| {
            format!(
                "server.{}={}:{}:{}:participant",
                p.id, e.recorded_addresses[&p.ordinal], e.quorum_port, e.election_port
            )
        })
        .collect();
    let o = &sb.env.fleet.observers[0];
    let address = o.address.to_string();
    let impostor = Impostor::start(&netns::observer_ns(&o.name), 99, &servers, &address, 2182)?;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(15) {
        if impostor.mode() == "observer" || impostor.get("/demo-secret").contains("every-znode") {
            println!(
                "the impostor JOINED and copied the data tree:\n{}",
                impostor.log()
            );
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    println!(
        "refused: in 15 s the impostor never joined and never received the znode written on the leader; \
         its log ends with:\n{}",
        impostor
            .log()
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(true)
}

/// SIGINT (Ctrl-C) and SIGTERM during the demo. While `--keep` waits they end the wait, and the
/// demo tears down as usual; at any other step the sandbox is torn down from the watching thread
/// and the demo exits 130. Either way nothing of the sandbox keeps running or starts again with
/// the next run (its daemons sit in process groups of their own, so the terminal's Ctrl-C reaches
/// only this process and the commands it runs).
struct Signals {
    keeping: Arc<AtomicBool>,
    received: mpsc::Receiver<&'static str>,
    /// The product command running now, if one is.
    child: Arc<Mutex<Option<u32>>>,
    /// Set once a signal is being handled (outside `--keep`'s wait).
    interrupted: Arc<AtomicBool>,
}

impl Signals {
    /// After a signal, no further command starts: this thread waits while the watcher tears the
    /// sandbox down and ends the process.
    fn stop_if_interrupted(&self) {
        while self.interrupted.load(Ordering::SeqCst) {
            std::thread::park();
        }
    }

    fn running(&self, pid: Option<u32>) {
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = pid;
    }

    /// Blocks until SIGINT or SIGTERM.
    fn wait(&self) {
        self.keeping.store(true, Ordering::SeqCst);
        let _ = self.received.recv();
    }
}

fn watch_signals(env: manifests::Environment) -> Result<Signals> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    let (mut int, mut term) = runtime.block_on(async {
        Ok::<_, anyhow::Error>((
            signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        ))
    })?;
    let keeping = Arc::new(AtomicBool::new(false));
    let child: Arc<Mutex<Option<u32>>> = Arc::new(Mutex::new(None));
    let (tx, received) = mpsc::channel();
    let interrupted = Arc::new(AtomicBool::new(false));
    let (k, c, i) = (keeping.clone(), child.clone(), interrupted.clone());
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if k.load(Ordering::SeqCst) {
                let _ = tx.send(name);
                return;
            }
            i.store(true, Ordering::SeqCst);
            let running = *c.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pid) = running {
                println!("\n{name}: the running command finishes its host in flight and releases its lock first");
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
                // (A second signal does not wait.)
                while c.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = int.recv() => break,
                        _ = term.recv() => break,
                    }
                }
            }
            println!("\n{name}: tearing the sandbox down");
            sandbox::harness::teardown(&env);
            println!("demo interrupted; the sandbox is down");
            std::process::exit(i32::from(xtask::signals::INTERRUPTED));
        })
    });
    Ok(Signals {
        keeping,
        received,
        child,
        interrupted,
    })
}

/// `kubectl edit`-like change by another field manager, through the real kube client.
fn human_edit(api: &ApiServer, env: &manifests::Environment) -> Result<()> {
    let yaml = api.kubeconfig(&env.kube_context);
    let ns = env.ensemble.namespace.clone();
    xtask::cluster::block_on(async move {
        let kc = kube::config::Kubeconfig::from_yaml(&yaml)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(config)?;
        let services: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(client, &ns);
        let patch = serde_json::json!({"spec": {"loadBalancerSourceRanges": ["0.0.0.0/0"]}});
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        };
        services
            .patch("zk0", &params, &kube::api::Patch::Merge(&patch))
            .await?;
        println!("kubectl-edit: Service {ns}/zk0 loadBalancerSourceRanges = [0.0.0.0/0]");
        Ok(())
    })
}

fn edit_file(path: &Path, from: &str, to: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::write(path, text.replace(from, to))?;
    println!("edited {}: {from} -> {to}", path.display());
    Ok(())
}
