//! The sandbox's images, built locally (nothing can be pulled): ZooKeeper from Debian packages with
//! the official image's layout, user and entrypoint, and the exporter stand-in on top of it. Built
//! once per machine (debootstrap takes about a minute and a half) and cached by a content key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use hosts::Metrics;
use sha2::{Digest, Sha256};

use super::observers::ObserverHost;
use super::CACHE_DIR;

/// Bump when the recipe below changes.
const RECIPE: &str =
    "zookeeper-image-v2: debootstrap bookworm minbase + openjdk-17-jre-headless zookeeper; netty codec on the class path";
const KEY_LABEL: &str = "zk-observers.sandbox/key";

/// The official image's entrypoint, reduced to what it does for a server: own the data
/// directories, write myid from ZOO_MY_ID when missing, drop to the zookeeper user (uid 1000).
const ENTRYPOINT: &str = r#"#!/bin/bash
set -e
if [[ "$1" = 'zkServer.sh' && "$(id -u)" = '0' ]]; then
    mkdir -p "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    chown -R zookeeper:zookeeper "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    exec setpriv --reuid=zookeeper --regid=zookeeper --init-groups "$0" "$@"
fi
if [[ ! -f "$ZOO_DATA_DIR/myid" ]]; then
    echo "${ZOO_MY_ID:-1}" > "$ZOO_DATA_DIR/myid"
fi
exec "$@"
"#;

/// `zkServer.sh start-foreground`, as the official image runs it: the heap from `ZK_SERVER_HEAP`
/// (MiB, 1000 when unset), as ZooKeeper's `zkEnv.sh` sets it, then `JVMFLAGS`.
/// The class path also holds the stand-in for ZooKeeper's Prometheus provider
/// ([`PROVIDER_SOURCE`]), which the official image ships and Debian does not, and an SLF4J
/// binding that logs to the console at INFO, as the official image's logback configuration does
/// (without one SLF4J falls back to its no-operation logger and `docker logs` shows nothing of
/// ZooKeeper's: no "is less than accepted epoch", no "not in the peer list"), and netty's codec,
/// which quorum TLS needs and Debian's manifest class path leaves out (the election listener
/// dies on its first connection without it: the facts file's "Quorum TLS" section).
const ZKSERVER: &str = r#"#!/bin/sh
exec java -Xmx"${ZK_SERVER_HEAP:-1000}"m $JVMFLAGS -Dzookeeper.log.dir="$ZOO_LOG_DIR" \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd HH:mm:ss,SSS" \
    -cp "$ZOO_CONF_DIR:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/local/lib/zk-prometheus-provider" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZOO_CONF_DIR/zoo.cfg"
"#;

/// A stand-in for ZooKeeper's `PrometheusMetricsProvider` (what it reproduces and its sources are
/// at the top of the file), compiled against the image's own `zookeeper.jar` when the image is
/// built, so `Metrics::Builtin` runs end to end in the sandbox.
pub const PROVIDER_SOURCE: &str = include_str!("../../java/PrometheusMetricsProvider.java");

/// Compiles [`PROVIDER_SOURCE`] against `zookeeper_jar` into the class directory `out`
/// (javac from the JDK, `openjdk-17-jdk-headless`).
pub fn compile_provider(zookeeper_jar: &Path, out: &Path) -> Result<()> {
    let src = std::env::temp_dir().join(format!("zk-observers-provider-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src)?;
    let file = src.join("PrometheusMetricsProvider.java");
    std::fs::write(&file, PROVIDER_SOURCE)?;
    std::fs::create_dir_all(out)?;
    let result = Command::new("javac")
        .args(["--release", "17", "-nowarn", "-cp"])
        .arg(zookeeper_jar)
        .arg("-d")
        .arg(out)
        .arg(&file)
        .output()
        .context("running javac (install openjdk-17-jdk-headless)");
    let _ = std::fs::remove_dir_all(&src);
    let result = result?;
    if !result.status.success() {
        bail!(
            "javac failed on the provider stand-in: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(())
}

fn sh(cmd: &str) -> Result<()> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .context("running sh")?;
    if !out.status.success() {
        bail!(
            "`{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The exporter stand-in binary, built next to the running executable.
pub fn exporter_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("zk-exporter-standin");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "zk-exporter-standin is not built next to {}: run `cargo build -p sandbox --bins`",
        exe.display()
    )
}

/// Makes sure every host's dockerd has the sandbox images, building them if needed.
pub fn ensure(hosts: &[ObserverHost]) -> Result<()> {
    let env = manifests::environments::sandbox::environment();
    let zk_image = env.fleet.image.to_string();
    let Metrics::Exporter {
        image: exporter_image,
        ..
    } = &env.fleet.metrics
    else {
        bail!("the sandbox environment must use the exporter sidecar");
    };
    let exporter_image = exporter_image.to_string();
    let exporter = exporter_binary()?;
    let zk_key = key(&[
        RECIPE.as_bytes(),
        ENTRYPOINT.as_bytes(),
        ZKSERVER.as_bytes(),
        PROVIDER_SOURCE.as_bytes(),
    ]);
    // The cached archive holds the images under their names: a renamed image is a new archive.
    let exporter_key = key(&[
        zk_key.as_bytes(),
        &std::fs::read(&exporter)?,
        zk_image.as_bytes(),
        exporter_image.as_bytes(),
    ]);
    let has = |h: &ObserverHost, image: &str, k: &str| {
        h.docker(&[
            "image",
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{KEY_LABEL}\"}}}}"),
            image,
        ])
        .is_ok_and(|l| l.trim() == k)
    };
    let missing: Vec<&ObserverHost> = hosts
        .iter()
        .filter(|h| !has(h, &zk_image, &zk_key) || !has(h, &exporter_image, &exporter_key))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(CACHE_DIR)?;
    let archive = Path::new(CACHE_DIR).join(format!("sandbox-images-{exporter_key}.tar"));
    if !archive.is_file() {
        let builder = missing[0];
        if !has(builder, &zk_image, &zk_key) {
            build_zookeeper(builder, &zk_image, &zk_key)?;
        }
        build_exporter(
            builder,
            &zk_image,
            &exporter_image,
            &exporter_key,
            &exporter,
        )?;
        let partial = archive.with_extension("tar.partial");
        builder.docker(&[
            "save",
            "-o",
            &partial.display().to_string(),
            &zk_image,
            &exporter_image,
        ])?;
        std::fs::rename(&partial, &archive)?;
    }
    for h in missing {
        if !has(h, &zk_image, &zk_key) || !has(h, &exporter_image, &exporter_key) {
            eprintln!("sandbox: loading images into {}", h.name);
            h.docker(&["load", "-q", "-i", &archive.display().to_string()])?;
        }
    }
    Ok(())
}

fn build_zookeeper(builder: &ObserverHost, image: &str, zk_key: &str) -> Result<()> {
    let rootfs = Path::new(CACHE_DIR).join(format!("rootfs-{zk_key}"));
    if !rootfs.join(".complete").exists() {
        eprintln!("sandbox: building the ZooKeeper image from Debian packages (debootstrap, about 1.5 minutes, once per machine)");
        let _ = std::fs::remove_dir_all(&rootfs);
        let r = rootfs.display();
        sh(&format!(
            "debootstrap --variant=minbase --include=openjdk-17-jre-headless,zookeeper bookworm {r} http://deb.debian.org/debian > {r}.log 2>&1 || {{ tail -20 {r}.log; exit 1; }}"
        ))?;
        // The official image runs as uid/gid 1000.
        sh(&format!(
            "sed -i 's/^zookeeper:x:[0-9]*:[0-9]*:/zookeeper:x:1000:1000:/' {r}/etc/passwd && \
             sed -i 's/^zookeeper:x:[0-9]*:/zookeeper:x:1000:/' {r}/etc/group && \
             rm -rf {r}/var/cache/apt/archives/*.deb {r}/var/lib/apt/lists/* {r}/usr/share/doc {r}/usr/share/man && \
             mkdir -p {r}/conf {r}/data {r}/datalog {r}/logs"
        ))?;
        std::fs::write(rootfs.join("docker-entrypoint.sh"), ENTRYPOINT)?;
        std::fs::write(rootfs.join("usr/local/bin/zkServer.sh"), ZKSERVER)?;
        compile_provider(
            &rootfs.join("usr/share/java/zookeeper.jar"),
            &rootfs.join("usr/local/lib/zk-prometheus-provider"),
        )?;
        sh(&format!("chmod 0755 {r}/docker-entrypoint.sh {r}/usr/local/bin/zkServer.sh && touch {r}/.complete"))?;
    }
    let changes = [
        "ENV ZOO_CONF_DIR=/conf ZOO_DATA_DIR=/data ZOO_DATA_LOG_DIR=/datalog ZOO_LOG_DIR=/logs"
            .to_string(),
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "ENTRYPOINT [\"/docker-entrypoint.sh\"]".to_string(),
        "CMD [\"zkServer.sh\", \"start-foreground\"]".to_string(),
        "EXPOSE 2181 2888 3888".to_string(),
        format!("LABEL {KEY_LABEL}={zk_key}"),
    ];
    let mut import = Command::new("docker");
    import.arg("-H").arg(&builder.docker_host).arg("import");
    for c in &changes {
        import.arg("--change").arg(c);
    }
    import.arg("-").arg(image).stdout(Stdio::null());
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--exclude=./.complete", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let out = import
        .stdin(tar.stdout.context("tar's stdout")?)
        .output()
        .context("running docker import")?;
    if !out.status.success() {
        bail!(
            "docker import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn build_exporter(
    builder: &ObserverHost,
    base: &str,
    image: &str,
    exporter_key: &str,
    binary: &Path,
) -> Result<()> {
    let ctx = tempdir()?;
    std::fs::copy(binary, ctx.join("zookeeper-exporter"))?;
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY zookeeper-exporter /usr/local/bin/zookeeper-exporter\nLABEL {KEY_LABEL}={exporter_key}\n\
             USER nobody\nENTRYPOINT [\"/usr/local/bin/zookeeper-exporter\"]\nCMD []\n"
        ),
    )?;
    let out = Command::new("docker")
        .arg("-H")
        .arg(&builder.docker_host)
        .args(["build", "-q", "-t", image])
        .arg(&ctx)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .context("running docker build")?;
    let _ = std::fs::remove_dir_all(&ctx);
    if !out.status.success() {
        bail!(
            "docker build of the exporter image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("zk-observers-exporter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
