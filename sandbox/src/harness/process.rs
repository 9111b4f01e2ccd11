//! Long-running child processes in network namespaces.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// Spawns `program args` inside network namespace `ns`, logging to `log`. `nsenter --net` rather
/// than `ip netns exec`, which remounts /sys and so hides the cgroup mounts dockerd needs.
///
/// In a process group of its own: Ctrl-C in a terminal signals the whole foreground group, and a
/// dockerd that shut down on it before the sandbox removed its containers would restart them on
/// its next start. The sandbox stops its daemons itself, in order.
pub fn spawn_in(ns: &str, program: &str, args: &[&str], log: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new("nsenter")
        .process_group(0)
        .arg(format!("--net=/run/netns/{ns}"))
        .args(["--", program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {program} in namespace {ns}"))
}

/// Stops a child: SIGTERM, then SIGKILL after a grace period.
pub fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills every process in network namespace `ns` (leftovers of a killed run).
pub fn kill_namespace(ns: &str) {
    let Ok(out) = Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill").arg("-KILL").args(&pids).status();
    // Wait (bounded) until they are gone, so that the namespace can really be deleted.
    for _ in 0..50 {
        let left = Command::new("ip")
            .args(["netns", "pids", ns])
            .stderr(Stdio::null())
            .output();
        if left
            .map(|o| o.stdout.iter().all(u8::is_ascii_whitespace))
            .unwrap_or(true)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Log text for error messages: the last lines of `path`.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
