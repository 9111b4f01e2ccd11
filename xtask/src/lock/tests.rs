//! The tests of `lock` (a file of their own: they outgrew the module).

use super::*;
use crate::cli::ClusterArgs;

const NS: &str = "zookeeper";

/// An API test server with the sandbox's namespace, and the sandbox environment.
fn cluster() -> (
    sandbox::ApiServer,
    tempfile::TempDir,
    ClusterArgs,
    Environment,
) {
    let env = manifests::environments::sandbox::environment();
    let api = sandbox::ApiServer::start(sandbox::Config {
        namespaces: vec![NS.into()],
        ..sandbox::Config::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(&env.kube_context)).unwrap();
    let args = ClusterArgs {
        kubeconfig: Some(kubeconfig),
        context: None,
        allow_other_context: false,
    };
    (api, dir, args, env)
}

const QUICK: Timing = Timing {
    lease_seconds: 2,
    renew_every: Duration::from_millis(200),
};

/// Polls `ready` every 50 ms for at most 10 s.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_lease_outlives_its_duration_while_renewed_and_is_released() {
    let (api, _dir, args, env) = cluster();
    let name = lease_name(&env);
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        let acquired = Timestamp::now();
        // Renewed in the background: after twice its duration it is still held.
        until("the Lease renewed past twice its duration", || {
            let l = api
                .get("coordination.k8s.io/v1", "leases", NS, &name)
                .unwrap();
            let renewed: Timestamp = l["spec"]["renewTime"].as_str().unwrap().parse().unwrap();
            renewed > acquired + SignedDuration::from_secs(4)
        })
        .await;
        assert!(current(&cluster, &env).await?.is_some(), "not expired");
        assert_eq!(lock.verify().await, None, "still ours");
        // A second holder is refused while it is renewed.
        let second = acquire_with(&cluster, &env, false, None, QUICK).await;
        let err = format!("{:#}", second.err().expect("refused"));
        assert!(
            err.contains("another deploy of sandbox is in progress"),
            "{err}"
        );
        // The refusal names who holds it and from which commit.
        assert!(
            err.contains(&format!("commit {}", crate::provenance::commit())),
            "{err}"
        );
        lock.release(&cluster).await;
        assert!(api
            .get("coordination.k8s.io/v1", "leases", NS, &name)
            .is_none());
        anyhow::Ok(())
    })
    .unwrap();
}

#[test]
fn a_taken_over_lease_is_noticed_and_never_deleted_by_the_old_holder() {
    let (api, _dir, args, env) = cluster();
    let name = lease_name(&env);
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        // Someone breaks the lock (`--break-lock` elsewhere).
        let leases = cluster.typed::<Lease>(NS);
        let mut l = leases.get(&name).await?;
        l.spec.as_mut().unwrap().holder_identity = Some("bob@elsewhere pid 7".into());
        leases.replace(&name, &PostParams::default(), &l).await?;
        // The next renewal meets the resourceVersion precondition and gives up the lock.
        until("the takeover noticed by the renewals", || {
            lock.lost().is_some()
        })
        .await;
        let why = lock.lost().unwrap();
        assert!(why.contains("now held by bob@elsewhere pid 7"), "{why}");
        let guard = Guard {
            lock: Some(&lock),
            interrupt: None,
        };
        assert!(matches!(guard.check().await, Err(Stop::LockLost(_))));
        lock.release(&cluster).await;
        let left = api
            .get("coordination.k8s.io/v1", "leases", NS, &name)
            .unwrap();
        assert_eq!(left["spec"]["holderIdentity"], "bob@elsewhere pid 7");
        anyhow::Ok(())
    })
    .unwrap();
}

fn lease_of(api: &sandbox::ApiServer, env: &Environment) -> serde_json::Value {
    api.get("coordination.k8s.io/v1", "leases", NS, &lease_name(env))
        .expect("the Lease")
}

fn fault(method: &str, path: &str, status: u16, times: u32, commits: bool) -> sandbox::Fault {
    sandbox::Fault {
        method: Some(method.into()),
        path_contains: Some(path.into()),
        status,
        latency: Duration::ZERO,
        times,
        commits,
    }
}

/// A create that commits but whose answer is lost (504, then the retry meets 409
/// AlreadyExists) is this run's own write: the lock is taken, not refused as someone else's.
#[test]
fn a_create_that_commits_and_answers_504_is_this_runs_lock() {
    let (api, _dir, args, env) = cluster();
    api.inject(fault("POST", "/leases", 504, 1, true));
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        assert_eq!(
            api.stats().by_verb["create leases"],
            2,
            "the create was retried"
        );
        assert_eq!(lock.verify().await, None);
        assert_eq!(
            lease_of(&api, &env)["metadata"]["annotations"][TOKEN_ANNOTATION],
            lock.me.token.as_str()
        );
        lock.release(&cluster).await;
        anyhow::Ok(())
    })
    .unwrap();
}

/// A renewal that commits but answers 504 (the retried PUT then meets 409 on a stale
/// resourceVersion) keeps the lock: the Lease read again is this run's.
#[test]
fn a_renewal_that_commits_and_answers_504_keeps_the_lock() {
    let (api, _dir, args, env) = cluster();
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        api.inject(fault("PUT", "/leases/", 504, 1, true));
        let renewals = || {
            api.stats()
                .by_verb
                .get("update leases")
                .copied()
                .unwrap_or(0)
        };
        // The faulted renewal, its retry, and two more after it.
        until("renewals after the lost answer", || renewals() >= 4).await;
        assert_eq!(lock.lost(), None, "still ours");
        assert_eq!(lock.verify().await, None);
        lock.release(&cluster).await;
        assert!(api
            .get("coordination.k8s.io/v1", "leases", NS, &lease_name(&env))
            .is_none());
        anyhow::Ok(())
    })
    .unwrap();
}

/// Bob's Lease, renewed (or not) by Bob with his clock 10 minutes behind ours: its renewTime
/// always looks expired to us.
fn bobs_lease(api: &sandbox::ApiServer, env: &Environment) {
    let old = (Timestamp::now() - SignedDuration::from_secs(600)).to_string();
    api.insert(
        serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": lease_name(env), "namespace": NS},
            "spec": {"holderIdentity": "bob@elsewhere pid 7", "leaseDurationSeconds": 2,
                     "acquireTime": old, "renewTime": old}}),
        "zk-observers-xtask",
    )
    .unwrap();
}

/// Another machine's clock is never compared with ours: a holder that keeps renewing keeps the
/// lock (deploy refused, drift skipped) although its renewTime looks 10 minutes old; a holder
/// that stopped is taken over only after we watched its Lease unchanged for its duration.
#[test]
fn another_holders_lease_is_judged_by_what_we_see_not_by_its_clock() {
    let (api, _dir, args, env) = cluster();
    bobs_lease(&api, &env);
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        // Bob renews every 300 ms, with his old clock.
        let leases = cluster.typed::<Lease>(NS);
        let name = lease_name(&env);
        let bob = async {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut l = leases.get(&name).await.unwrap();
                let spec = l.spec.as_mut().unwrap();
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                leases
                    .replace(&name, &PostParams::default(), &l)
                    .await
                    .unwrap();
            }
        };
        let judged = async {
            let refused = acquire_with(&cluster, &env, false, None, QUICK).await;
            let drift_sees = current(&cluster, &env).await.unwrap();
            (refused, drift_sees)
        };
        let (refused, drift_sees) = tokio::select! {
            r = judged => r,
            _ = bob => unreachable!(),
        };
        let err = format!("{:#}", refused.err().expect("refused while Bob renews"));
        assert!(err.contains("bob@elsewhere pid 7 holds the lock"), "{err}");
        assert_eq!(drift_sees.expect("held").holder, "bob@elsewhere pid 7");
        // Bob stops: watched unchanged for its 2 s, it is taken over.
        let watched = Instant::now();
        assert!(
            current(&cluster, &env).await?.is_none(),
            "expired once watched"
        );
        assert!(watched.elapsed() >= Duration::from_secs(2));
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        assert_eq!(lock.verify().await, None);
        lock.release(&cluster).await;
        anyhow::Ok(())
    })
    .unwrap();
}

/// A renewal the API server refuses (403) loses the lock at once, naming the verb, instead of
/// being retried as if transient until the Lease expires.
#[test]
fn a_refused_renewal_loses_the_lock_at_once_naming_the_verb() {
    let (api, _dir, args, env) = cluster();
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        api.inject(fault("PUT", "/leases/", 403, u32::MAX, false));
        let started = Instant::now();
        until("the refusal noticed", || lock.lost().is_some()).await;
        let why = lock.lost().unwrap();
        assert!(
            why.contains("refused to renew the deploy lock (update leases"),
            "{why}"
        );
        assert!(why.contains("403"), "{why}");
        assert!(
            started.elapsed() < Duration::from_secs(QUICK.lease_seconds.unsigned_abs().into()),
            "at the first refusal, not when the Lease would expire"
        );
        anyhow::Ok(())
    })
    .unwrap();
}

/// A Lease that cannot be read before a write stops the write: nothing is written without
/// knowing the lock is held.
#[test]
fn a_lease_that_cannot_be_read_before_a_write_stops_it() {
    let (api, _dir, args, env) = cluster();
    crate::cluster::block_on(async {
        let cluster = Cluster::connect(&env, &args, Duration::from_secs(5)).await?;
        let lock = acquire_with(&cluster, &env, false, None, QUICK).await?;
        let guard = Guard {
            lock: Some(&lock),
            interrupt: None,
        };
        assert_eq!(guard.check().await, Ok(()));
        api.inject(fault("GET", "/leases/", 503, u32::MAX, false));
        match guard.check().await {
            Err(Stop::LockLost(why)) => assert!(why.contains("could not be read"), "{why}"),
            other => panic!("the write went ahead: {other:?}"),
        }
        api.clear_faults();
        lock.release(&cluster).await;
        anyhow::Ok(())
    })
    .unwrap();
}
