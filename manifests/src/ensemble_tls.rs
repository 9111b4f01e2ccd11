//! The ensemble's side of quorum TLS, as a reviewed artifact. This tool does not own the helm
//! release; it renders what the ensemble needs for the observers to speak TLS with it: the
//! participants' zoo.cfg keys for each step of the move from plaintext, the Secret their stores
//! come from (a template: the key material never enters the code), and the steps in order.
//!
//! The move is upstream's "Upgrading existing non-TLS cluster with no downtime" (apache/zookeeper
//! `zookeeper-docs/.../zookeeperAdmin.md`, new in 3.5.5): three rolling restarts, the first with
//! `portUnification=true` (each quorum listener takes TLS and plaintext), the second with
//! `sslQuorum=true` (participants connect to each other over TLS), the last with
//! `portUnification=false` (TLS only). Observers move to TLS between the second and the last:
//! until then the participants still take their plaintext connections. Upstream's example also
//! sets `serverCnxnFactory` (Netty), which concerns client TLS, not the quorum: left out.

use std::collections::BTreeMap;

use hosts::tls::{set_store_keys, StorePaths};
use hosts::zoocfg::{Key, ZooCfg};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use crate::Environment;

/// The Secret's keys (the files in the participants' mount directory).
pub const KEY_STORE: &str = "keystore.p12";
pub const KEY_STORE_PASSWORD: &str = "keystore.pass";
pub const TRUST_STORE: &str = "truststore.p12";
pub const TRUST_STORE_PASSWORD: &str = "truststore.pass";

/// A step of the ensemble's move to quorum TLS: each is one rolling restart of the participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Listeners take TLS and plaintext; participants still connect in plaintext.
    PortUnification,
    /// Participants connect over TLS; listeners still take plaintext (observers not yet moved).
    Tls,
    /// TLS only: where the ensemble stays.
    TlsOnly,
}

impl Step {
    pub const ALL: [Step; 3] = [Step::PortUnification, Step::Tls, Step::TlsOnly];

    /// The artifact's file name of the step's zoo.cfg keys.
    pub fn file_name(self) -> &'static str {
        match self {
            Step::PortUnification => "zoo.cfg.1-port-unification",
            Step::Tls => "zoo.cfg.2-tls",
            Step::TlsOnly => "zoo.cfg.3-tls-only",
        }
    }
}

/// Where the participants read the stores (the Secret mounted at `ensemble.quorum_tls.mount_dir`).
pub fn store_paths(env: &Environment) -> StorePaths {
    let at = |name: &str| format!("{}/{name}", env.ensemble.quorum_tls.mount_dir);
    StorePaths {
        key_store: at(KEY_STORE),
        key_store_password: at(KEY_STORE_PASSWORD),
        trust_store: at(TRUST_STORE),
        trust_store_password: at(TRUST_STORE_PASSWORD),
    }
}

/// The zoo.cfg keys every participant gets at `step`, added to its configuration.
pub fn zoo_cfg_keys(env: &Environment, step: Step) -> String {
    let mut cfg = ZooCfg::new(vec![
        format!(
            "Quorum TLS for the participants of {}/{} ({}), step {} of 3: add to every \
             participant's zoo.cfg, one pod at a time.",
            env.ensemble.namespace,
            env.ensemble.statefulset,
            env.name,
            step as u8 + 1
        ),
        format!(
            "Rendered by `cargo xtask render --env {}`; the steps are in README.md next to it.",
            env.name
        ),
    ]);
    cfg.set(Key::SslQuorum, step != Step::PortUnification);
    cfg.set(Key::PortUnification, step != Step::TlsOnly);
    set_store_keys(&mut cfg, &store_paths(env));
    cfg.to_text()
}

/// The Secret the participants' stores come from, as a template: its keys, empty. Filled by
/// `kubectl create secret generic` from files the operator holds (the command is in its
/// annotation and in the README); never filled from this repository.
pub fn secret_template(env: &Environment) -> String {
    let t = &env.ensemble.quorum_tls;
    let fill = format!(
        "kubectl -n {} create secret generic {} --from-file={KEY_STORE}=... \
         --from-file={KEY_STORE_PASSWORD}=... --from-file={TRUST_STORE}=... \
         --from-file={TRUST_STORE_PASSWORD}=... --dry-run=client -o yaml | kubectl apply -f -",
        env.ensemble.namespace, t.secret
    );
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(t.secret.clone()),
            namespace: Some(env.ensemble.namespace.clone()),
            annotations: Some(BTreeMap::from([
                (
                    format!("{}/template", hosts::LABEL_DOMAIN),
                    "empty keys: fill them from your files, never from git".to_string(),
                ),
                (format!("{}/fill-with", hosts::LABEL_DOMAIN), fill),
                (
                    format!("{}/mount-at", hosts::LABEL_DOMAIN),
                    t.mount_dir.clone(),
                ),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            [
                KEY_STORE,
                KEY_STORE_PASSWORD,
                TRUST_STORE,
                TRUST_STORE_PASSWORD,
            ]
            .into_iter()
            .map(|k| (k.to_string(), ByteString(vec![])))
            .collect(),
        ),
        ..Default::default()
    };
    let mut out = format!(
        "# The Secret the participants of {}/{} read their quorum TLS stores from: a template.\n",
        env.ensemble.namespace, env.ensemble.statefulset
    );
    out.push_str(&serde_yaml::to_string(&secret).expect("a Secret serializes"));
    out
}

/// The steps, in order, with this environment's names in them.
pub fn guide(env: &Environment) -> String {
    let e = &env.ensemble;
    let t = &e.quorum_tls;
    let pods: Vec<String> = e
        .participants()
        .iter()
        .map(|p| p.pod_name.clone())
        .collect();
    let participants = pods.join(", ");
    let name = &env.name;
    let mut out = String::new();
    out.push_str(&format!(
        "# Quorum TLS for the ensemble of `{name}`\n\n\
         Rendered by `cargo xtask render --env {name}`. This tool does not own the helm release \
         `{}`: these are the ensemble's changes for its participants ({participants}) to speak \
         quorum TLS with the observers, applied through the chart. Upstream: ZooKeeper \
         Administrator's Guide, \"Upgrading existing non-TLS cluster with no downtime\" (3.5.5+).\n\n",
        e.helm_release
    ));
    out.push_str(&format!(
        "## Before\n\n\
         - One CA for the quorum. One key store for the participants (PKCS12, a certificate the CA \
         signed; hostname verification is off, so one certificate serves every pod), one trust \
         store holding the CA, and the observers' key stores signed by the same CA.\n\
         - The Secret `{}` in `{}`, from `quorum-tls-secret.yaml` (the command is in its \
         annotation), mounted read-only at `{}` in every participant (a chart `extraVolumes` / \
         `extraVolumeMounts` change; it restarts nothing by itself).\n\
         - ZooKeeper 3.8 or later reads the passwords from files (`passwordPath`). Debian's \
         package needs netty's codec on the class path for the TLS listener.\n\n",
        t.secret, e.namespace, t.mount_dir
    ));
    out.push_str(
        "## Availability rule for every step\n\n\
         One participant at a time, followers first, the leader last. After each restart, wait \
         until every participant answers `srvr` as leader or follower and \
         `cargo xtask status` shows every observer observing, before the next pod.\n\n",
    );
    out.push_str(&format!(
        "## Steps\n\n\
         1. Add `{}` to every participant's zoo.cfg, rolling. Their listeners now take TLS \
         and plaintext; they still connect to each other in plaintext. `cargo xtask drift --env \
         {name}` now reports each participant's election port answering TLS (`ensemble_tls`).\n\
         2. Replace those keys with `{}` (`sslQuorum=true`), rolling. Participants connect to each \
         other over TLS; plaintext observers still join.\n\
         3. Move the observers: `fleet.quorum = QuorumSecurity::Tls {{ .. }}` and a key store per \
         observer in the code, then `cargo xtask deploy --env {name}` (host by host behind the \
         health gate; a host whose store is refused is put back).\n\
         4. Replace the keys with `{}` (`portUnification=false`), rolling. The ensemble takes TLS \
         only: a server without a certificate of the CA can no longer join.\n\
         5. `cargo xtask drift --env {name}`: no `ensemble-not-tls` finding, every participant \
         answers TLS, no certificate within the warning window.\n\n\
         Going back: the same steps in reverse order (a participant at `sslQuorum=true` with \
         `portUnification=true` still takes plaintext).\n",
        Step::PortUnification.file_name(),
        Step::Tls.file_name(),
        Step::TlsOnly.file_name(),
    ));
    out
}

/// The artifact's files (relative to `ensemble/` of the rendered tree), in order.
pub fn files(env: &Environment) -> Vec<(String, String)> {
    let mut out = vec![
        ("README.md".to_string(), guide(env)),
        ("quorum-tls-secret.yaml".to_string(), secret_template(env)),
    ];
    for step in Step::ALL {
        out.push((step.file_name().to_string(), zoo_cfg_keys(env, step)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps' keys are upstream's: `portUnification` on, then `sslQuorum` on, then
    /// `portUnification` off; the store keys are the observers' (the same typed setter).
    #[test]
    fn the_steps_turn_port_unification_on_then_tls_on_then_port_unification_off() {
        let env = crate::environments::production::environment();
        let keys = |step| -> Vec<(String, String)> {
            zoo_cfg_keys(&env, step)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect()
        };
        let get = |step, key: &str| {
            keys(step)
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap()
        };
        assert_eq!(get(Step::PortUnification, "sslQuorum"), "false");
        assert_eq!(get(Step::PortUnification, "portUnification"), "true");
        assert_eq!(get(Step::Tls, "sslQuorum"), "true");
        assert_eq!(get(Step::Tls, "portUnification"), "true");
        assert_eq!(get(Step::TlsOnly, "sslQuorum"), "true");
        assert_eq!(get(Step::TlsOnly, "portUnification"), "false");
        assert_eq!(
            get(Step::TlsOnly, "ssl.quorum.keyStore.location"),
            "/quorum-tls/keystore.p12"
        );
        assert_eq!(
            get(Step::TlsOnly, "ssl.quorum.hostnameVerification"),
            "false"
        );
        // No password in the keys: files only.
        assert!(keys(Step::TlsOnly)
            .iter()
            .all(|(k, _)| !k.ends_with(".password")));
    }

    #[test]
    fn the_secret_template_has_the_four_keys_empty() {
        let env = crate::environments::production::environment();
        let text = secret_template(&env);
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["metadata"]["namespace"], "kube-public");
        let data = doc["data"].as_mapping().unwrap();
        assert_eq!(data.len(), 4);
        assert!(data.values().all(|v| v.as_str() == Some("")));
    }
}
