//! `cargo xtask bench`: figures anyone can reproduce, printed as one table. Not a test; not run in
//! CI. Sections: edit-to-render latency, fan-out over N observer hosts (first and no-op deploy,
//! against the SSH floor, counting SSH connections), the same per-host work done by an Ansible
//! playbook, and the API cost of a drift check with 5,000 foreign Services.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hosts::{HostFiles, Observer};
use manifests::{AddressSource, Environment};
use sandbox::{ApiServer, Options, Sandbox};
use xtask::cli::{
    AddressChoice, ClusterArgs, ClusterSelection, DeployArgs, HostTargets, MaxUnavailable,
    OutputFormat, PushArgs, RolloutArgs, SshArgs,
};
use xtask::cluster::{block_on, Cluster};
use xtask::lock::Guard;
use xtask::output::report::HostResult;

use crate::{BenchArgs, BenchChildArgs};

struct Row {
    section: &'static str,
    measure: String,
    ours: String,
    reference: String,
    ratio: String,
    target: String,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// This binary's path. The edit-to-render section rebuilds it, after which /proc/self/exe reads
/// `... (deleted)`: the rebuilt file is at the same path.
fn this_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.display().to_string();
    Ok(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(&text),
    ))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn run(args: &BenchArgs) -> Result<u8> {
    let mut rows = Vec::new();
    let machine = machine();
    println!("machine: {machine}");
    let result = (|| {
        if !args.skip_build {
            edit_to_render(args, &mut rows)?;
        }
        for &n in args.hosts.iter().filter(|&&n| n > 0) {
            fan_out(n, args, &mut rows)?;
        }
        if !args.skip_api {
            api_efficiency(&mut rows)?;
        }
        anyhow::Ok(())
    })();
    // The figures taken so far are printed even when a later section failed.
    println!("\n{}", table(&machine, &rows));
    result.map(|()| xtask::output::exit::OK)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/debian_version")
        .map(|v| format!("Debian {}", v.trim()))
        .unwrap_or_default();
    format!("{cpus} cores ({model}), {mem}, {os}")
}

fn table(machine: &str, rows: &[Row]) -> String {
    let mut out = format!("Machine: {machine}\n\n| section | measure | ours | reference | ratio | target |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.section, r.measure, r.ours, r.reference, r.ratio, r.target
        );
    }
    out
}

// --- 1. edit-to-render ------------------------------------------------------------------------

fn edit_to_render(args: &BenchArgs, rows: &mut Vec<Row>) -> Result<()> {
    let root = workspace();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let xtask = this_binary()?;
    let out = tempfile::tempdir()?;
    let render = |bin: &Path| {
        timed(|| {
            run_ok(
                Command::new(bin)
                    .args(["render", "--env", "production", "--out"])
                    .arg(out.path())
                    .env("NO_COLOR", "1"),
            )
        })
    };
    let warm = median((0..5).map(|_| render(&xtask)).collect::<Result<Vec<_>>>()?);
    rows.push(Row {
        section: "edit-to-render",
        measure: "warm render (binary built)".into(),
        ours: secs(warm),
        reference: "-".into(),
        ratio: "-".into(),
        target: "<= 0.3 s".into(),
    });

    let host_list = root.join("manifests/src/environments/production/inventory.rs");
    let mut incremental = Vec::new();
    for _ in 0..3 {
        std::fs::File::options()
            .append(true)
            .open(&host_list)?
            .set_modified(std::time::SystemTime::now())?;
        incremental.push(timed(|| {
            run_ok(
                Command::new(&cargo)
                    .args(["build", "--quiet", "-p", "xtask"])
                    .current_dir(&root),
            )?;
            render(&root.join("target/debug/xtask")).map(drop)
        })?);
    }
    rows.push(Row {
        section: "edit-to-render",
        measure: "touch manifests/src/environments/production/inventory.rs, rebuild, render".into(),
        ours: secs(median(incremental)),
        reference: "-".into(),
        ratio: "-".into(),
        target: "<= 3 s".into(),
    });
    if !args.skip_cold {
        let target = Path::new("/var/tmp/zk-observers-bench-cold-target");
        let _ = std::fs::remove_dir_all(target);
        let cold = timed(|| {
            run_ok(
                Command::new(&cargo)
                    .args(["build", "--quiet", "-p", "xtask"])
                    .current_dir(&root)
                    .env("CARGO_TARGET_DIR", target),
            )
        })?;
        let _ = std::fs::remove_dir_all(target);
        rows.push(Row {
            section: "edit-to-render",
            measure: "cold build of xtask (fresh target dir)".into(),
            ours: secs(cold),
            reference: "-".into(),
            ratio: "-".into(),
            target: "<= 150 s".into(),
        });
    }
    Ok(())
}

// --- 2. and 3. fan-out and the Ansible peer ----------------------------------------------------

const BENCH_HOST_KEY: &str = "bench_host_ed25519_key";

fn fan_out(n: u8, args: &BenchArgs, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("... fan-out: starting a sandbox with {n} observer host(s)");
    let keys = tempfile::tempdir()?;
    let key = keys.path().join(BENCH_HOST_KEY);
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "bench host key",
                "-f",
            ])
            .arg(&key),
    )?;
    let private = std::fs::read_to_string(&key)?;
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    let env = sandbox::harness::bench::environment(n, public.trim());
    let problems = manifests::validate(&env);
    if problems.has_errors() {
        bail!("the bench environment is invalid:\n{problems}");
    }
    let sb = Sandbox::start_with(env.clone(), &|_| private.clone(), Options::default())?;
    let api = ApiServer::start(sandbox::harness::api_config(
        &env,
        Duration::from_millis(200),
    ))?;
    let kubeconfig = keys.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context))?;
    let cluster_args = ClusterArgs {
        kubeconfig: Some(kubeconfig.clone()),
        ..ClusterArgs::default()
    };
    let identity = sb.ssh_identity().to_path_buf();
    let ssh = SshArgs {
        identity: Some(identity.clone()),
        connect_timeout: Duration::from_secs(10),
        parallel: 32,
    };
    let deploy_args = deploy_args(&env, ssh.clone(), cluster_args, MaxUnavailable::Count(1));
    let deploy = || -> Result<Duration> {
        use xtask::output::report::Report as _;
        let t = Instant::now();
        let report = deploy_in_process(&env, &deploy_args)?;
        let code = report.exit_code();
        if code != 0 {
            bail!(
                "the bench deploy over {n} host(s) failed (exit {code}): {}",
                report.json()
            );
        }
        Ok(t.elapsed())
    };
    let first = deploy()?;
    // The no-op deploys and the floor are measured alike: once the machine is quiet again (20
    // freshly started JVMs compile for a while), after unmeasured warm-up runs of each (the
    // observers' JVMs compile what the probe asks for), alternating so that drift in the
    // background load falls on both.
    wait_for_quiet();
    for _ in 0..WARM_UP_RUNS {
        deploy()?;
        ssh_floor(&sb)?;
    }
    let mut logins = 0;
    let (mut noop, mut noop_cpu, mut own_noop_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut floor, mut floor_cpu) = (Vec::new(), Vec::new());
    for _ in 0..NOOP_RUNS {
        let (cpu, own, before) = (machine_cpu(), own_cpu(), accepted_logins(&sb));
        noop.push(deploy()?);
        noop_cpu.push(machine_cpu() - cpu);
        own_noop_cpu.push(own_cpu() - own);
        logins += accepted_logins(&sb) - before;
        let cpu = machine_cpu();
        floor.push(ssh_floor(&sb)?);
        floor_cpu.push(machine_cpu() - cpu);
    }
    let per_run = logins as f64 / NOOP_RUNS as f64;
    let (noop, floor) = (median(noop), median(floor));
    rows.push(Row {
        section: "fan-out",
        measure: format!("first deploy, N = {n}"),
        ours: secs(first),
        reference: "-".into(),
        ratio: "-".into(),
        target: "-".into(),
    });
    rows.push(Row {
        section: "fan-out",
        measure: format!("no-op deploy, N = {n} (vs {n} parallel `ssh host cat zoo.cfg`)"),
        ours: secs(noop),
        reference: secs(floor),
        ratio: format!("{:.2} x floor", noop.as_secs_f64() / floor.as_secs_f64()),
        target: if n >= 20 {
            "<= 1.2 x floor".into()
        } else {
            "-".into()
        },
    });
    rows.push(Row {
        section: "fan-out",
        measure: format!("CPU time of the whole machine per no-op deploy (vs per floor), N = {n}"),
        ours: secs(median(noop_cpu)),
        reference: secs(median(floor_cpu)),
        ratio: "-".into(),
        target: "-".into(),
    });
    rows.push(Row {
        section: "fan-out",
        measure: format!(
            "of which this process (kube client, SSH multiplexing, API test server), N = {n}"
        ),
        ours: secs(median(own_noop_cpu)),
        reference: "-".into(),
        ratio: "-".into(),
        target: "-".into(),
    });
    rows.push(Row {
        section: "fan-out",
        measure: format!("SSH logins per host per no-op deploy, N = {n}"),
        ours: format!("{:.2}", per_run / f64::from(n)),
        reference: "-".into(),
        ratio: "-".into(),
        target: "1".into(),
    });
    // Peak memory of the tool alone (a process of its own; the API test server and the sandbox
    // stay in this one): a no-op deploy, then a deploy that rolls a config change out.
    let (results, noop_kib) =
        deploy_in_child(n, &key, &kubeconfig, &identity, 0, MaxUnavailable::Count(1))?;
    anyhow::ensure!(
        results.iter().all(|r| r == "unchanged"),
        "the no-op deploy in a child changed something: {results:?}"
    );
    let (results, rollout_kib) = deploy_in_child(
        n,
        &key,
        &kubeconfig,
        &identity,
        1,
        MaxUnavailable::Percent(25),
    )?;
    anyhow::ensure!(
        results.iter().all(|r| r == "updated"),
        "the rollout in a child did not update every host: {results:?}"
    );
    // Back to the environment's own config for what follows.
    deploy_in_child(
        n,
        &key,
        &kubeconfig,
        &identity,
        0,
        MaxUnavailable::Percent(25),
    )?;
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    rows.push(Row {
        section: "fan-out",
        measure: format!("peak memory (max RSS) of the tool: no-op deploy / rollout (--max-unavailable 25%), N = {n}"),
        ours: mib(noop_kib.max(rollout_kib)),
        reference: format!("{} / {}", mib(noop_kib), mib(rollout_kib)),
        ratio: "-".into(),
        target: if n >= 20 {
            "<= 32 MiB".into()
        } else {
            "-".into()
        },
    });

    if !args.skip_ansible {
        let files = manifests::render_host_files(&env, &AddressSource::Recorded)?;
        ansible(n, &env, &sb, &files, &ssh, &keys, &public, rows)?;
    }
    if args.keep {
        println!("... keeping the sandbox with {n} host(s) up");
        println!("    KUBECONFIG={}", kubeconfig.display());
        println!("    identity: {}", identity.display());
        for h in &sb.hosts {
            println!(
                "    {} root@{} {}",
                h.name,
                h.address,
                h.deploy_dir.display()
            );
        }
        println!("    each line read from stdin times one more no-op deploy; end of input (Ctrl-D) tears it down");
        for line in std::io::stdin().lines() {
            line?;
            let (cpu, own) = (machine_cpu(), own_cpu());
            let t = deploy()?;
            println!(
                "no-op deploy: {} (CPU: machine {}, this process {})",
                secs(t),
                secs(machine_cpu() - cpu),
                secs(own_cpu() - own)
            );
        }
    }
    drop(sb);
    api.stop();
    Ok(())
}

/// `deploy --yes` of a bench environment, as the benchmark runs it.
fn deploy_args(
    env: &Environment,
    ssh: SshArgs,
    cluster: ClusterArgs,
    max_unavailable: MaxUnavailable,
) -> DeployArgs {
    DeployArgs {
        selection: ClusterSelection {
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
        timeout: Duration::from_secs(60),
        rollout: RolloutArgs {
            health_timeout: Duration::from_secs(180),
            max_unavailable,
        },
        ssh,
        cluster,
        lock: Default::default(),
    }
}

/// A deploy in this process (as `cargo xtask deploy --yes --output json` does it, without the lock).
fn deploy_in_process(
    env: &Environment,
    args: &DeployArgs,
) -> Result<xtask::commands::deploy::DeployReport> {
    block_on(async {
        let cluster = Cluster::connect(env, &args.cluster, args.timeout).await?;
        xtask::commands::deploy::deploy(&cluster, env, args, OutputFormat::Json, Guard::NONE).await
    })
}

/// `xtask-dev bench-child`: one deploy of a bench environment in this process, then one JSON line
/// with its exit code, its hosts' results and this process's peak resident memory (`VmHWM`).
pub fn child(args: &BenchChildArgs) -> Result<u8> {
    use xtask::output::report::Report as _;
    let public = std::fs::read_to_string(&args.host_key)
        .with_context(|| format!("reading {}", args.host_key.display()))?;
    let mut env = sandbox::harness::bench::environment(args.hosts, public.trim());
    env.fleet.zookeeper.sync_limit += args.sync_limit_plus;
    let ssh = SshArgs {
        identity: Some(args.identity.clone()),
        connect_timeout: Duration::from_secs(10),
        parallel: 32,
    };
    let cluster = ClusterArgs {
        kubeconfig: Some(args.kubeconfig.clone()),
        ..ClusterArgs::default()
    };
    let report = deploy_in_process(&env, &deploy_args(&env, ssh, cluster, args.max_unavailable))?;
    let hosts = report.json()["hosts"].clone();
    let results: Vec<String> = hosts
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["result"].as_str().unwrap_or_default().to_string())
        .collect();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    println!(
        "{}",
        serde_json::json!({"exit": report.exit_code(), "results": results, "vm_hwm_kib": hwm_kib, "report": report.json()})
    );
    Ok(xtask::output::exit::OK)
}

/// Runs one bench deploy in a child process (`bench-child`); returns the results of its hosts and
/// its peak resident memory.
fn deploy_in_child(
    n: u8,
    host_key: &Path,
    kubeconfig: &Path,
    identity: &Path,
    sync_limit_plus: u32,
    max_unavailable: MaxUnavailable,
) -> Result<(Vec<String>, u64)> {
    let out = Command::new(this_binary()?)
        .args(["bench-child", "--hosts", &n.to_string(), "--host-key"])
        .arg(host_key.with_extension("pub"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--identity")
        .arg(identity)
        .args([
            "--sync-limit-plus",
            &sync_limit_plus.to_string(),
            "--max-unavailable",
            &max_unavailable.to_string(),
        ])
        .output()
        .context("running xtask-dev bench-child")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "bench-child (exit {:?}) printed no report: {}{}",
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if line["exit"] != 0 {
        bail!(
            "the bench deploy in a child process failed: {}",
            line["report"]
        );
    }
    let results = line["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect();
    Ok((results, line["vm_hwm_kib"].as_u64().unwrap_or_default()))
}

/// Rollouts of a config change (and restart floors) per budget; the median is reported.
const ROLLOUT_RUNS: usize = 3;

/// Measured no-op deploys (and floors) per fan-out size; the median is reported.
const NOOP_RUNS: usize = 5;
/// Unmeasured runs of each before: in production the observers' JVMs are warm (Prometheus asks
/// ZooKeeper for mntr every scrape); here they were started a minute ago.
const WARM_UP_RUNS: usize = 3;

/// Waits (up to two minutes) until the machine spends under a third of a core in a second.
fn wait_for_quiet() {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let cpu = machine_cpu();
        std::thread::sleep(Duration::from_secs(1));
        let busy = machine_cpu() - cpu;
        if busy < Duration::from_millis(330) {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "... the machine is still busy ({busy:?} of CPU per second); measuring anyway"
            );
            return;
        }
    }
}

/// CPU time spent by the whole machine so far (every process, user and system), from /proc/stat.
fn machine_cpu() -> Duration {
    let ticks: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                // cpu user nice system idle iowait irq softirq steal: everything but idle and iowait
                l.split_whitespace()
                    .skip(1)
                    .take(8)
                    .enumerate()
                    .filter(|(i, _)| *i != 3 && *i != 4)
                    .filter_map(|(_, v)| v.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// CPU time spent by this process so far (all threads), from /proc/self/stat.
fn own_cpu() -> Duration {
    let ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Successful SSH logins recorded by the sandbox hosts' sshd logs so far.
fn accepted_logins(sb: &Sandbox) -> usize {
    sb.hosts
        .iter()
        .map(|h| {
            std::fs::read_to_string(
                Path::new(sandbox::harness::RUN_DIR)
                    .join(&h.name)
                    .join("sshd.log"),
            )
            .map(|l| l.matches("Accepted publickey").count())
            .unwrap_or(0)
        })
        .sum()
}

/// The floor: `ssh host cat zoo.cfg` to every host at once.
fn ssh_floor(sb: &Sandbox) -> Result<Duration> {
    let t = Instant::now();
    let children: Vec<_> = sb
        .hosts
        .iter()
        .map(|h| {
            sb.ssh(h.address)
                .arg(format!("cat {}/zoo.cfg", h.deploy_dir.display()))
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut c in children {
        if !c.wait()?.success() {
            bail!("ssh floor: a cat failed");
        }
    }
    Ok(t.elapsed())
}

/// The restart floor of a config change: only what cannot be skipped, over plain `ssh`, the hosts
/// of a batch at once and the batches one after another: replace zoo.cfg (a temporary file
/// renamed), `docker restart` ZooKeeper's container, poll `mntr` every 0.1 s until it says
/// `observing - broadcast`. No plan, no checksum, no gate on the exporter, no rollback.
fn restart_floor(sb: &Sandbox, files: &[(&Observer, HostFiles)], batch: usize) -> Result<Duration> {
    let t = Instant::now();
    for chunk in files.chunks(batch.max(1)) {
        let children: Vec<_> = chunk
            .iter()
            .map(|(o, f)| {
                let d = &o.deploy_dir.0;
                let script = format!(
                    "set -e; cat > {d}/.zoo.cfg.floor && mv -f {d}/.zoo.cfg.floor {d}/zoo.cfg; \
                     docker restart $(docker ps -q --filter label=com.docker.compose.project={project} \
                     --filter label=com.docker.compose.service=zookeeper \
                     --filter label=com.docker.compose.project.working_dir={d}) >/dev/null; \
                     for i in $(seq 1200); do \
                       a=$(bash -c 'exec 3<>/dev/tcp/{addr}/2181; printf mntr >&3; cat <&3' 2>/dev/null || true); \
                       case \"$a\" in *'observing - broadcast'*) exit 0;; esac; sleep 0.1; \
                     done; exit 1",
                    project = xtask::fleet::hostops::PROJECT,
                    addr = o.address,
                );
                let mut child = sb
                    .ssh(o.address)
                    .arg(format!("bash -c {}", shell_quote(&script)))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()?;
                child
                    .stdin
                    .take()
                    .context("stdin")?
                    .write_all(f.zoo_cfg.as_bytes())?;
                Ok(child)
            })
            .collect::<Result<_>>()?;
        for mut c in children {
            if !c.wait()?.success() {
                bail!("restart floor: a host did not observe again within 2 minutes");
            }
        }
    }
    Ok(t.elapsed())
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

const PLAYBOOK: &str = r#"# The per-host work of `cargo xtask push`, as Ansible does it: the same two files, the data
# directories, and `docker-compose up -d` only when a file changed.
- hosts: observers
  gather_facts: false
  tasks:
    - name: data directories
      ansible.builtin.file:
        path: "{{ deploy_dir }}/{{ item }}"
        state: directory
        owner: "1000"
        group: "1000"
      loop: [data, datalog]
    - name: zoo.cfg
      ansible.builtin.copy:
        content: "{{ zoo_cfg }}"
        dest: "{{ deploy_dir }}/zoo.cfg"
        mode: "0644"
      register: zoo
    - name: docker-compose.yaml
      ansible.builtin.copy:
        content: "{{ compose }}"
        dest: "{{ deploy_dir }}/docker-compose.yaml"
        mode: "0644"
      register: compose_file
    - name: compose up when something changed
      ansible.builtin.command: docker-compose -p zk-observers up -d --remove-orphans --force-recreate
      args:
        chdir: "{{ deploy_dir }}"
      when: zoo.changed or compose_file.changed
"#;

#[allow(clippy::too_many_arguments)]
fn ansible(
    n: u8,
    env: &Environment,
    sb: &Sandbox,
    files: &[(&Observer, HostFiles)],
    ssh: &SshArgs,
    dir: &tempfile::TempDir,
    host_public_key: &str,
    rows: &mut Vec<Row>,
) -> Result<()> {
    if Command::new("ansible-playbook")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("... installing ansible-core from PyPI");
        run_ok(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--root-user-action=ignore",
            "ansible-core",
        ]))?;
    }
    let identity = ssh.identity.clone().context("an identity")?;
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        env.fleet
            .observers
            .iter()
            .map(|o| format!("{} {host_public_key}", o.address))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )?;
    let write_inventory = |files: &[(&Observer, HostFiles)]| -> Result<()> {
        let mut hosts = serde_json::Map::new();
        for (o, f) in files {
            hosts.insert(
                o.name.clone(),
                serde_json::json!({
                    "ansible_host": o.address.to_string(),
                    "deploy_dir": o.deploy_dir.0,
                    "zoo_cfg": f.zoo_cfg,
                    "compose": f.compose,
                }),
            );
        }
        let inventory = serde_json::json!({
            "observers": {
                "hosts": hosts,
                "vars": {
                    "ansible_user": "root",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_ssh_private_key_file": identity,
                    "ansible_ssh_common_args": format!("-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes", known.display()),
                }
            }
        });
        std::fs::write(
            dir.path().join("inventory.yml"),
            serde_yaml::to_string(&inventory)?,
        )?;
        Ok(())
    };
    write_inventory(files)?;
    std::fs::write(dir.path().join("playbook.yml"), PLAYBOOK)?;
    std::fs::write(dir.path().join("ansible.cfg"), format!("[defaults]\nforks = {n}\nhost_key_checking = True\nstdout_callback = default\n[ssh_connection]\npipelining = True\n"))?;
    let playbook = || -> Result<Duration> {
        timed(|| {
            run_ok(
                Command::new("ansible-playbook")
                    .args(["-i", "inventory.yml", "playbook.yml"])
                    .current_dir(dir.path())
                    .env("ANSIBLE_CONFIG", dir.path().join("ansible.cfg")),
            )
        })
    };
    // Fresh hosts for Ansible's first run: remove what our deploy put there.
    for h in &sb.hosts {
        let ids = h.docker(&["ps", "-aq"])?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids);
            h.docker(&a)?;
        }
        let _ = std::fs::remove_dir_all(&h.deploy_dir);
    }
    let first = playbook()?;
    let noop = median((0..3).map(|_| playbook()).collect::<Result<Vec<_>>>()?);
    // Ours, on the same hosts, for the same per-host work (push; Ansible has no health gate).
    let observers: Vec<&Observer> = env.fleet.observers.iter().collect();
    for h in &sb.hosts {
        let _ = std::fs::remove_file(h.deploy_dir.join("zoo.cfg"));
    }
    let push_args = PushArgs {
        selection: ClusterSelection {
            env: Some(env.name.clone()),
        },
        yes: true,
        targets: HostTargets {
            hosts: vec![],
            addresses: AddressChoice::Recorded,
        },
        dry_run: false,
        rollout: RolloutArgs {
            health_timeout: Duration::from_secs(180),
            max_unavailable: MaxUnavailable::Count(1),
        },
        ssh: ssh.clone(),
        cluster: ClusterArgs::default(),
        lock: Default::default(),
    };
    let push_with = |files: &[(&Observer, HostFiles)], max_unavailable: MaxUnavailable| {
        let mut args = push_args.clone();
        args.rollout.max_unavailable = max_unavailable;
        block_on(async {
            let t = Instant::now();
            let report = xtask::commands::push::push(
                env,
                &observers,
                files,
                &args,
                OutputFormat::Json,
                Guard::NONE,
            )
            .await?;
            Ok((t.elapsed(), report.hosts))
        })
    };
    let push = || push_with(files, MaxUnavailable::Count(1));
    let (ours_first, reports) = push()?;
    anyhow::ensure!(
        reports.iter().all(|h| h.ok()),
        "push failed: {:?}",
        reports.iter().map(|h| &h.detail).collect::<Vec<_>>()
    );
    let ours_noop = median(
        (0..3)
            .map(|_| {
                let (t, reports) = push()?;
                anyhow::ensure!(
                    reports.iter().all(|h| h.result == HostResult::Unchanged),
                    "no-op push changed something"
                );
                Ok(t)
            })
            .collect::<Result<Vec<_>>>()?,
    );
    rows.push(Row {
        section: "vs Ansible",
        measure: format!(
            "first push (files + compose up; ours also health-gates, one host at a time), N = {n}"
        ),
        ours: secs(ours_first),
        reference: secs(first),
        ratio: format!(
            "{:.2} x Ansible's time",
            ours_first.as_secs_f64() / first.as_secs_f64()
        ),
        target: "-".into(),
    });
    rows.push(Row {
        section: "vs Ansible",
        measure: format!("no-op push, N = {n}"),
        ours: secs(ours_noop),
        reference: secs(noop),
        ratio: format!(
            "{:.2} x Ansible's time ({:.1} x faster)",
            ours_noop.as_secs_f64() / noop.as_secs_f64(),
            noop.as_secs_f64() / ours_noop.as_secs_f64()
        ),
        target: if n >= 20 {
            ">= 8 x faster".into()
        } else {
            "-".into()
        },
    });

    // A config change (syncLimit) rolled out: Ansible's ungated parallel push, then ours,
    // health-gated, in batches of --max-unavailable. Each run is a change of its own.
    let changed = |plus: u32| -> Result<Vec<(&Observer, HostFiles)>> {
        let mut e = env.clone();
        e.fleet.zookeeper.sync_limit += plus;
        let rendered = manifests::render_host_files(&e, &AddressSource::Recorded)?;
        // (The same observers, borrowed from `env`.)
        Ok(env
            .fleet
            .observers
            .iter()
            .zip(rendered)
            .map(|(o, (_, f))| (o, f))
            .collect())
    };
    write_inventory(&changed(1)?)?;
    let ansible_change = playbook()?;
    // Each budget: ours and the restart floor (same batch size) alternately, ROLLOUT_RUNS of each,
    // every run a change of its own; medians.
    let mut change = 1;
    for budget in [
        MaxUnavailable::Count(1),
        MaxUnavailable::Count(5.min(u32::from(n))),
        MaxUnavailable::Percent(25),
    ] {
        let (mut ours, mut floors, mut spent) = (Vec::new(), Vec::new(), [0u128; 3]);
        for _ in 0..ROLLOUT_RUNS {
            change += 1;
            let (took, reports) = push_with(&changed(change)?, budget)?;
            anyhow::ensure!(
                reports
                    .iter()
                    .all(|h| h.result == HostResult::Updated && h.restarted),
                "the rollout with --max-unavailable {budget} did not update every host: {:?}",
                reports.iter().map(|h| &h.detail).collect::<Vec<_>>()
            );
            ours.push(took);
            spent = reports.iter().filter_map(|h| h.spent).fold(spent, |a, s| {
                [a[0] + s.zookeeper_ms, a[1] + s.docker_ms, a[2] + s.ssh_ms]
            });
            change += 1;
            floors.push(restart_floor(
                sb,
                &changed(change)?,
                budget.batch(usize::from(n)),
            )?);
        }
        // The hosts hold the floor's last zoo.cfg: the next run of ours is a change again.
        let (took, floor) = (median(ours), median(floors));
        rows.push(Row {
            section: "rollout",
            measure: format!(
                "config change over N = {n}, health-gated, --max-unavailable {budget} (vs the restart floor: batches of {}, zoo.cfg + docker restart + poll)",
                budget.batch(usize::from(n))
            ),
            ours: secs(took),
            reference: secs(floor),
            ratio: format!("{:.2} x floor", took.as_secs_f64() / floor.as_secs_f64()),
            target: "<= 1.2 x floor".into(),
        });
        rows.push(Row {
            section: "rollout",
            measure: format!(
                "config change over N = {n}, health-gated, --max-unavailable {budget} (vs Ansible's ungated parallel push)"
            ),
            ours: secs(took),
            reference: secs(ansible_change),
            ratio: format!("{:.2} x Ansible's time", took.as_secs_f64() / ansible_change.as_secs_f64()),
            target: if n >= 20 && budget == MaxUnavailable::Percent(25) {
                "<= 0.33 x Ansible".into()
            } else {
                "-".into()
            },
        });
        let total = spent.iter().sum::<u128>().max(1) as f64;
        let share = |ms: u128| format!("{:.0}%", ms as f64 * 100.0 / total);
        rows.push(Row {
            section: "rollout",
            measure: format!(
                "where the hosts' time went: waiting for ZooKeeper / docker / SSH, --max-unavailable {budget}, N = {n}"
            ),
            ours: format!("{} / {} / {}", share(spent[0]), share(spent[1]), share(spent[2])),
            reference: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
        });
    }
    Ok(())
}

// --- 4. API efficiency --------------------------------------------------------------------------

fn api_efficiency(rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("... API efficiency: drift with 0 and 5,000 foreign Services");
    let sb = Sandbox::start(Options::default())?;
    let env = sb.env.clone();
    let api = ApiServer::start(sandbox::harness::api_config(
        &env,
        Duration::from_millis(200),
    ))?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context))?;
    let me = this_binary()?;
    // Exit code and what the command printed (for the error, when it fails).
    let xtask = |args: &[&str]| -> Result<(i32, String)> {
        let out = Command::new(&me)
            .args(args)
            .arg("--identity")
            .arg(sb.ssh_identity())
            .env("KUBECONFIG", &kubeconfig)
            .env("NO_COLOR", "1")
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    };
    let (code, said) = xtask(&["deploy", "--env", "sandbox", "--yes"])?;
    if code != 0 {
        bail!("the sandbox deploy failed (exit {code}):\n{said}");
    }
    let measure = |rows: &mut Vec<Row>, label: &str| -> Result<(u64, Duration)> {
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..5 {
            api.reset_stats();
            let t = Instant::now();
            let (code, said) = xtask(&["drift", "--env", "sandbox"])?;
            times.push(t.elapsed());
            anyhow::ensure!(code == 0, "drift exited {code} ({label}):\n{said}");
            requests = api.stats().requests;
        }
        let _ = rows;
        Ok((requests, median(times)))
    };
    let (quiet_requests, quiet_time) = measure(rows, "0 foreign")?;
    for i in 0..5000 {
        api.insert(
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("foreign-{i}"), "namespace": env.ensemble.namespace, "labels": {"app": "other"}}, "spec": {"ports": [{"port": 80}]}}),
            "someone-else",
        )?;
    }
    let (busy_requests, busy_time) = measure(rows, "5,000 foreign")?;
    rows.push(Row {
        section: "API efficiency",
        measure: "drift: requests to the API server, 0 vs 5,000 foreign Services".into(),
        ours: busy_requests.to_string(),
        reference: quiet_requests.to_string(),
        ratio: format!("{:.2}", busy_requests as f64 / quiet_requests as f64),
        target: "equal".into(),
    });
    rows.push(Row {
        section: "API efficiency",
        measure: "drift: wall time, 5,000 vs 0 foreign Services (includes the 2 hosts)".into(),
        ours: secs(busy_time),
        reference: secs(quiet_time),
        ratio: format!("{:.2}", busy_time.as_secs_f64() / quiet_time.as_secs_f64()),
        target: "<= 1.2".into(),
    });
    drop(sb);
    api.stop();
    Ok(())
}
