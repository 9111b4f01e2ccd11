//! Quorum security: who may join the ensemble as an observer.
//!
//! A leader accepts any learner that announces itself as an observer and sends it the whole data
//! tree (apache/zookeeper `LearnerHandler.java`); ACLs guard client requests only. With a
//! plaintext quorum the load balancers' source ranges are the only guard. Quorum TLS
//! (ZooKeeper 3.5.5+, `sslQuorum=true`) makes every quorum and election connection mutually
//! authenticated: a server without a certificate of the quorum's CA cannot join.
//!
//! Through per-pod load balancers a peer is a load-balancer address, not a pod name, so hostname
//! verification is off (`ssl.quorum.hostnameVerification=false`) and trust rests on the private
//! CA: only servers holding a certificate it signed join. This model has no switch for it.
//!
//! Key material never enters the code or the rendered files: the environment names where it is
//! read at deploy time ([`SecretSource`]), and the observer's zoo.cfg points at the files the
//! tool pushes next to it (mode 0600, the image's user), their passwords read from files too
//! (`ssl.quorum.keyStore.passwordPath`, ZooKeeper 3.8+).

use serde::Serialize;

/// Where secret material is read at deploy time, on the machine that deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SecretSource {
    /// A file (an absolute path).
    File(String),
    /// An environment variable of the deploying process, holding the bytes base64-encoded
    /// (a CI secret).
    EnvBase64(String),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {p}"),
            SecretSource::EnvBase64(v) => write!(f, "environment variable {v} (base64)"),
        }
    }
}

/// A PKCS12 store and its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStore {
    pub store: SecretSource,
    pub password: SecretSource,
}

/// How the observers' quorum connections are secured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum QuorumSecurity {
    /// Plaintext: whoever reaches 2888/3888 from an address the load balancers admit joins as an
    /// observer and copies the data tree (`check` warns).
    Plaintext,
    /// Quorum TLS: every observer holds a key store ([`crate::Observer::key_store`]) with a
    /// certificate of the quorum's CA; `trust_store` holds that CA.
    Tls { trust_store: KeyStore },
}

/// The files quorum TLS adds to an observer's deploy directory, pushed with mode 0600.
pub const KEY_STORE_FILE: &str = "quorum-keystore.p12";
pub const KEY_STORE_PASSWORD_FILE: &str = "quorum-keystore.pass";
pub const TRUST_STORE_FILE: &str = "quorum-truststore.p12";
pub const TRUST_STORE_PASSWORD_FILE: &str = "quorum-truststore.pass";

/// Where the container sees them.
pub const CONTAINER_DIR: &str = "/tls";

/// A secret file of a host: its name in the deploy directory and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub name: &'static str,
    pub source: SecretSource,
}

/// The secret files of an observer under `security` (none when plaintext, or when the observer
/// has no key store: validation refuses that with TLS).
pub fn secret_files(security: &QuorumSecurity, key_store: Option<&KeyStore>) -> Vec<SecretFile> {
    match (security, key_store) {
        (QuorumSecurity::Tls { trust_store }, Some(key)) => vec![
            SecretFile {
                name: KEY_STORE_FILE,
                source: key.store.clone(),
            },
            SecretFile {
                name: KEY_STORE_PASSWORD_FILE,
                source: key.password.clone(),
            },
            SecretFile {
                name: TRUST_STORE_FILE,
                source: trust_store.store.clone(),
            },
            SecretFile {
                name: TRUST_STORE_PASSWORD_FILE,
                source: trust_store.password.clone(),
            },
        ],
        _ => vec![],
    }
}

/// `/tls/<name>`.
pub fn in_container(name: &str) -> String {
    format!("{CONTAINER_DIR}/{name}")
}

/// Whether `name` is one of the secret files.
pub fn is_secret(name: &str) -> bool {
    [
        KEY_STORE_FILE,
        KEY_STORE_PASSWORD_FILE,
        TRUST_STORE_FILE,
        TRUST_STORE_PASSWORD_FILE,
    ]
    .contains(&name)
}
