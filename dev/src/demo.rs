//! `cargo xtask demo`: the whole tool on this machine. Brings up the local sandbox (the Kubernetes
//! API test server, a real ZooKeeper ensemble, observer hosts with sshd and Docker — the harness
//! the tests use), deploys the sandbox environment, shows status, makes drift in the cluster and on
//! a host, shows the drift check catching it, and tears everything down (`--keep` waits for Ctrl-C
//! first).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anstream::println;
use anstyle::{AnsiColor, Style};
use anyhow::{bail, Context, Result};
use sandbox::{ApiServer, Options, Sandbox};
use xshell::{cmd, Shell};

use xtask::exit;

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
        let shown: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('/'))
            .collect();
        println!(
            "{STEP}$ cargo xtask {}{STEP:#}",
            shown
                .join(" ")
                .replace("--identity", "--identity <sandbox key>")
        );
        let status = Command::new(&me)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .status()
            .context("running cargo xtask")?;
        Ok(status.code().unwrap_or(-1))
    };
    let xtask = |args: &[&str]| xtask_with(&kubeconfig, args);
    let id = identity.display().to_string();

    step(3, "deploying the sandbox environment");
    let deployed = xtask(&["deploy", "--env", "sandbox", "--yes", "--identity", &id])?;
    step(4, "status of the observers");
    xtask(&["status", "--env", "sandbox", "--identity", &id])?;
    step(5, "a second deploy changes nothing");
    let again = xtask(&["deploy", "--env", "sandbox", "--yes", "--identity", &id])?;

    step(6, "making drift: someone widens zk0's source ranges with kubectl edit, someone edits zoo.cfg on zk-observer-2");
    human_edit(&api, &env)?;
    let cfg = sb.host("zk-observer-2").deploy_dir.join("zoo.cfg");
    edit_file(&cfg, "syncLimit=10", "syncLimit=3")?;
    step(
        7,
        "the drift check, as its read-only identity (get and list only), catches both (exit 2)",
    );
    let drift = xtask_with(
        &drift_kubeconfig,
        &["drift", "--env", "sandbox", "--identity", &id],
    )?;
    let drift_writes = api.stats().write_requests(DRIFT_USER);
    println!("write requests the API server received from the drift identity: {drift_writes}");

    if args.keep {
        step(8, "keeping the sandbox up");
        println!(
            "KUBECONFIG={} cargo xtask status --env sandbox --identity {id}",
            kubeconfig.display()
        );
        println!("press Ctrl-C to tear it down");
        xtask::cluster::block_on(async {
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
        })?;
    }
    step(9, "tearing down");
    drop(sb);
    api.stop();
    let ok = deployed == 0 && again == 0 && drift == i32::from(exit::CHANGES) && drift_writes == 0;
    println!(
        "\n{}",
        if ok {
            "demo complete: deploy succeeded, the second deploy changed nothing, drift was caught"
        } else {
            "demo FAILED: see the step outputs above"
        }
    );
    Ok(if ok { exit::OK } else { exit::ERROR })
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
