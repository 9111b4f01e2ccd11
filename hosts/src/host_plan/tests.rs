use super::*;
use crate::port;

fn desired() -> HostFiles {
    HostFiles {
        zoo_cfg: "tickTime=2000\n".into(),
        compose: "services: {}\n".into(),
        secrets: vec![],
        secret_sha256: BTreeMap::new(),
    }
}

/// Secret files are compared by digest, and only once the deploying side read them: a
/// changed store is written and restarts ZooKeeper; without digests (drift) nothing is
/// planned for them.
#[test]
fn secrets_are_planned_by_digest_and_restart_zookeeper() {
    use crate::tls::{SecretFile, KEY_STORE_FILE};
    let mut want = desired();
    want.secrets = vec![SecretFile {
        name: KEY_STORE_FILE,
        source: crate::SecretSource::File("/secrets/key.p12".into()),
    }];
    let mut o = observed(
        Some(&want.zoo_cfg),
        Some(&want.compose),
        &["zookeeper", "exporter"],
    );
    o.health.mode = Some("observer".into());
    o.health.peer_state = Some("observing - broadcast".into());
    o.health.exporter = true;
    let HostPlan::Update(missing) = plan(&want, &o, &exporter()) else {
        panic!("not read, but absent from the host: a change")
    };
    assert_eq!(missing.secrets[0].desired_sha256, "");
    o.secrets.insert(KEY_STORE_FILE.into(), Some("old".into()));
    assert_eq!(
        plan(&want, &o, &exporter()),
        HostPlan::InSync,
        "not read: not compared"
    );
    want.secret_sha256.insert(KEY_STORE_FILE, "new".into());
    let HostPlan::Update(u) = plan(&want, &o, &exporter()) else {
        panic!("a changed store is an update")
    };
    assert_eq!(u.secrets[0].deployed_sha256.as_deref(), Some("old"));
    assert_eq!(u.changed(), vec![KEY_STORE_FILE]);
    assert_eq!(u.restart(), Restart::ZooKeeper);
    o.secrets.insert(KEY_STORE_FILE.into(), Some("new".into()));
    assert_eq!(plan(&want, &o, &exporter()), HostPlan::InSync);
}

fn exporter() -> Metrics {
    Metrics::Exporter {
        image: crate::ImageRef::new("zk-observers/zookeeper-exporter:1.0.0-standin"),
        port: port!(9141),
        reset_on_scrape: true,
    }
}

fn observed(zoo: Option<&str>, compose: Option<&str>, running: &[&str]) -> Observed {
    Observed {
        files: BTreeMap::from([
            (ZOO_CFG_FILE.to_string(), zoo.map(str::to_string)),
            (COMPOSE_FILE.to_string(), compose.map(str::to_string)),
        ]),
        running: running.iter().map(|s| s.to_string()).collect(),
        ..Observed::default()
    }
}

#[test]
fn a_host_as_desired_and_running_is_in_sync() {
    let o = observed(
        Some("tickTime=2000\n"),
        Some("services: {}\n"),
        &["zookeeper", "exporter"],
    );
    assert_eq!(plan(&desired(), &o, &exporter()), HostPlan::InSync);
    assert!(status(&desired(), &o, &exporter()).files_in_sync);
}

#[test]
fn a_directory_in_place_of_zoo_cfg_is_replaced_and_said() {
    let mut o = observed(None, Some("services: {}\n"), &[]);
    o.directories.insert(ZOO_CFG_FILE.to_string());
    let HostPlan::Update(u) = plan(&desired(), &o, &exporter()) else {
        panic!("a directory in place of zoo.cfg needs an update")
    };
    assert_eq!(u.changed(), [ZOO_CFG_FILE]);
    assert_eq!(u.directories, [ZOO_CFG_FILE]);
    assert!(!u.first_deployment(), "the compose file was deployed");
    assert_eq!(
        u.reason(),
        "zoo.cfg changed; a directory stands where zoo.cfg belongs"
    );
    let st = status(&desired(), &o, &exporter());
    assert_eq!(st.out_of_sync_files, [ZOO_CFG_FILE]);
    assert!(st
        .detail
        .starts_with("a directory stands where zoo.cfg belongs"));
}

#[test]
fn a_fresh_host_gets_both_files_as_a_first_deployment() {
    let HostPlan::Update(u) = plan(&desired(), &observed(None, None, &[]), &exporter()) else {
        panic!("a fresh host needs an update")
    };
    assert_eq!(u.changed(), [ZOO_CFG_FILE, COMPOSE_FILE]);
    assert!(u.first_deployment());
    assert_eq!(u.restart(), Restart::Compose, "nothing running to restart");
    assert_eq!(u.reason(), "zoo.cfg, docker-compose.yaml changed");
}

#[test]
fn a_new_zoo_cfg_alone_restarts_zookeeper_without_compose() {
    let o = observed(
        Some("tickTime=3000\n"),
        Some("services: {}\n"),
        &["zookeeper", "exporter"],
    );
    let HostPlan::Update(u) = plan(&desired(), &o, &exporter()) else {
        panic!()
    };
    assert_eq!(u.restart(), Restart::ZooKeeper);
    assert!(!u.first_deployment());
    assert_eq!(u.files[0].deployed.as_deref(), Some("tickTime=3000\n"));
    // A new compose file alone goes through compose; both, compose then ZooKeeper.
    let o = observed(
        Some("tickTime=2000\n"),
        Some("services: {old: {}}\n"),
        &["zookeeper", "exporter"],
    );
    let HostPlan::Update(u) = plan(&desired(), &o, &exporter()) else {
        panic!()
    };
    assert_eq!(u.restart(), Restart::Compose);
    // Both files new on a running host: compose, then ZooKeeper if compose kept it.
    let o = observed(
        Some("tickTime=3000\n"),
        Some("services: {old: {}}\n"),
        &["zookeeper", "exporter"],
    );
    let HostPlan::Update(u) = plan(&desired(), &o, &exporter()) else {
        panic!()
    };
    assert_eq!(u.restart(), Restart::ComposeThenZooKeeper);
    assert_eq!(restart_for(true, true), Restart::ComposeThenZooKeeper);
    assert_eq!(restart_for(false, false), Restart::Compose);
}

/// `conf` as ZooKeeper 3.8 prints it (`ZooKeeperServer.dumpConf` and
/// `QuorumZooKeeperServer.dumpConf`, apache/zookeeper release-3.8.6): the membership block
/// ends without a newline.
const CONF: &str = "clientPort=2181\nsecureClientPort=-1\ndataDir=/data/version-2\ndataDirSize=1\n\
    dataLogDir=/datalog/version-2\ndataLogSize=1\ntickTime=2000\nmaxClientCnxns=60\n\
    minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=4\n\
    initLimit=5\nsyncLimit=10\nelectionAlg=3\nelectionPort=3888\nquorumPort=2888\npeerType=1\n\
    membership: \nserver.1=198.18.0.11:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\nversion=0";

const ZOO_CFG: &str =
    "# Rendered by zk-observers-xtask\ntickTime=2000\ninitLimit=5\nsyncLimit=10\n\
    clientPort=2181\ndataDir=/data\nmaxClientCnxns=60\nminSessionTimeout=4000\n\
    maxSessionTimeout=40000\npeerType=observer\n4lw.commands.whitelist=conf,mntr,srst,srvr\n\
    server.1=198.18.0.11:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\n";

#[test]
fn a_zoo_cfg_written_but_not_loaded_is_found_by_what_zookeeper_reports() {
    assert_eq!(not_loaded(ZOO_CFG, CONF), Vec::<String>::new());
    let edited = ZOO_CFG
        .replace("syncLimit=10", "syncLimit=5")
        .replace("198.18.0.11", "198.18.0.21");
    assert_eq!(
        not_loaded(&edited, CONF),
        [
            "syncLimit: running 10, zoo.cfg 5",
            "server.1: running 198.18.0.11:2888:3888:participant, zoo.cfg 198.18.0.21:2888:3888:participant"
        ]
    );
    let renumbered = ZOO_CFG.replace("server.4=", "server.104=");
    let found = not_loaded(&renumbered, CONF);
    assert!(
        found.contains(&"serverId: running 4, zoo.cfg 104".to_string()),
        "{found:?}"
    );
    // One address, two spellings: Java's long IPv6 form in `conf`, Rust's short one (in
    // brackets) in zoo.cfg; a `;client` part is not the server's address.
    let v6_file = ZOO_CFG.replace("198.18.0.11", "[fd00::11]");
    let v6_conf = CONF
        .replace("198.18.0.11", "fd00:0:0:0:0:0:0:11")
        .replace(":observer\nversion", ":observer;0.0.0.0:2181\nversion");
    assert_eq!(not_loaded(&v6_file, &v6_conf), Vec::<String>::new());
    // Membership from the leader (configuration version above 0): lines not compared.
    let reconfigured = CONF.replace("version=0", "version=100000000");
    assert!(not_loaded(&edited, &reconfigured)
        .iter()
        .all(|d| !d.starts_with("server.")));
    // Not serving, or `conf` not whitelisted: nothing to compare, nothing claimed.
    for answer in [
        "This ZooKeeper instance is not currently serving requests\n",
        "conf is not executed because it is not in the whitelist.\n",
    ] {
        assert!(not_loaded(&edited, answer).is_empty());
    }
    // In the plan: files as desired, containers running, the config not loaded.
    let desired = HostFiles {
        zoo_cfg: edited.clone(),
        ..desired()
    };
    let mut o = observed(
        Some(&edited),
        Some("services: {}\n"),
        &["zookeeper", "exporter"],
    );
    o.health.conf = Some(CONF.to_string());
    let HostPlan::Update(u) = plan(&desired, &o, &exporter()) else {
        panic!("not loaded")
    };
    assert!(u.files.is_empty());
    assert_eq!(u.restart(), Restart::ZooKeeper);
    assert!(
        u.reason()
            .starts_with("zoo.cfg not loaded (syncLimit: running 10, zoo.cfg 5"),
        "{}",
        u.reason()
    );
    o.health.conf = Some(
        CONF.replace("syncLimit=10", "syncLimit=5")
            .replace("198.18.0.11", "198.18.0.21"),
    );
    assert_eq!(plan(&desired, &o, &exporter()), HostPlan::InSync);
}

#[test]
fn stopped_containers_need_an_update_without_files() {
    let o = observed(
        Some("tickTime=2000\n"),
        Some("services: {}\n"),
        &["zookeeper"],
    );
    let HostPlan::Update(u) = plan(&desired(), &o, &exporter()) else {
        panic!("the exporter is down")
    };
    assert!(u.files.is_empty());
    assert_eq!(u.reason(), "containers not running");
    assert_eq!(
        plan(&desired(), &o, &Metrics::Builtin { port: port!(7000) }),
        HostPlan::InSync,
        "no exporter to run"
    );
}

#[test]
fn zoo_cfg_servers_and_names() {
    let cfg = "tickTime=2000\nserver.1=10.1.0.12:2888:3888:participant\nserver.2=[fd00::1]:2888:3888:participant\n\
               server.3=zk2.lb.example.test:2888:3888:participant\nserver.4=0.0.0.0:2888:3888:observer\n";
    assert_eq!(zoo_cfg_servers(cfg)[1], (2, "fd00::1".to_string()));
    assert_eq!(zoo_cfg_names(cfg), [(3, "zk2.lb.example.test".to_string())]);
}

#[test]
fn a_retirement_is_what_is_left_and_nothing_once_done() {
    use crate::observer::RetiredData::{Keep, Wipe};
    let mut o = observed(Some("tickTime=2000\n"), None, &["zookeeper", "exporter"]);
    o.data_dirs = vec!["data".into(), "datalog".into()];
    o.drift_access.lines = vec!["restrict,command=... ssh-ed25519 AAAA".into()];
    let wipe = retirement(&o, Wipe);
    assert!(wipe.needed());
    assert_eq!(
        wipe.steps(),
        [
            "stop and remove its containers",
            "revoke the drift key",
            "remove zoo.cfg",
            "wipe data, datalog"
        ]
    );
    let keep = retirement(&o, Keep);
    assert_eq!(keep.steps()[3], "keep data, datalog");
    // A leftover symbolic link where a file was is the tool's to remove too.
    o.symlinks
        .insert(COMPOSE_FILE.to_string(), "/etc/passwd".into());
    assert_eq!(retirement(&o, Keep).files, [ZOO_CFG_FILE, COMPOSE_FILE]);
    // Retired with its data kept: only the kept data is left, which is not a step.
    let done = Observed {
        data_dirs: vec!["data".into()],
        ..Observed::default()
    };
    assert!(!retirement(&done, Keep).needed());
    assert!(retirement(&done, Keep).steps().is_empty());
    // Kept data that should have been wiped is still work.
    assert_eq!(retirement(&done, Wipe).steps(), ["wipe data"]);
    // Only the drift key left (a retirement stopped before its last step).
    let mut key = Observed::default();
    key.drift_access.digest = Some("sha256:00".into());
    assert_eq!(retirement(&key, Keep).steps(), ["revoke the drift key"]);
}
