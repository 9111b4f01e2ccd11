//! Secret material (quorum TLS key and trust stores, their passwords), read at deploy time where
//! the environment says: a file on this machine, or base64 in an environment variable (a CI
//! secret). It is pushed to the hosts and shown only by its SHA-256, never printed.

use anyhow::{Context, Result};
use base64::Engine;
use hosts::tls::SecretFile;
use hosts::SecretSource;

/// One secret file's bytes and digest.
pub struct Secret {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes.
        write!(f, "Secret({}, sha256:{})", self.name, self.sha256)
    }
}

/// The secret files read for a run, by observer.
#[derive(Debug, Default)]
pub struct Resolved(std::collections::BTreeMap<String, Vec<Secret>>);

impl Resolved {
    /// The bytes of `observer`'s secret file `name`, if they were read.
    pub fn bytes(&self, observer: &str, name: &str) -> Option<&[u8]> {
        self.0
            .get(observer)?
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.bytes.as_slice())
    }
}

impl Resolved {
    /// Records the digests of what was read in `files` (rendered again, e.g. from the live
    /// addresses) without reading the secrets again.
    pub fn digests_into(&self, files: &mut [(&hosts::Observer, hosts::HostFiles)]) {
        for (o, f) in files.iter_mut() {
            if let Some(secrets) = self.0.get(&o.name) {
                f.secret_sha256 = secrets.iter().map(|s| (s.name, s.sha256.clone())).collect();
            }
        }
    }
}

/// Reads every observer's secret files and records their digests in its host files (so that
/// the host plan compares them); returns the bytes, for the rollout to write.
pub fn fill(files: &mut [(&hosts::Observer, hosts::HostFiles)]) -> Result<Resolved> {
    let mut out = Resolved::default();
    for (o, f) in files.iter_mut() {
        let secrets = resolve(&o.name, &f.secrets)?;
        f.secret_sha256 = secrets.iter().map(|s| (s.name, s.sha256.clone())).collect();
        out.0.insert(o.name.clone(), secrets);
    }
    Ok(out)
}

/// Reads `source`.
pub fn read(source: &SecretSource) -> Result<Vec<u8>> {
    match source {
        SecretSource::File(path) => {
            std::fs::read(path).with_context(|| format!("reading the secret file {path}"))
        }
        SecretSource::EnvBase64(var) => {
            let text = std::env::var(var).with_context(|| {
                format!("the secret's environment variable {var} is not set (or not UTF-8)")
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .with_context(|| format!("the environment variable {var} is not base64"))
        }
    }
}

/// The secret files of one observer, read; an error names the observer, the file and the source.
pub fn resolve(observer: &str, files: &[SecretFile]) -> Result<Vec<Secret>> {
    files
        .iter()
        .map(|f| {
            let bytes = read(&f.source)
                .with_context(|| format!("{observer}: {} from {}", f.name, f.source))?;
            Ok(Secret {
                name: f.name,
                sha256: crate::fleet::hostops::sha256_hex(&bytes),
                bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_and_a_base64_variable_are_read_and_shown_by_digest_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.p12");
        std::fs::write(&path, b"not-really-pkcs12").unwrap();
        // SAFETY: a variable of this test's own name; no other test reads it.
        unsafe { std::env::set_var("ZK_OBSERVERS_TEST_SECRET", "c2VjcmV0") };
        let files = [
            SecretFile {
                name: "a",
                source: SecretSource::File(path.display().to_string()),
            },
            SecretFile {
                name: "b",
                source: SecretSource::EnvBase64("ZK_OBSERVERS_TEST_SECRET".into()),
            },
        ];
        let got = resolve("zk-observer-1", &files).unwrap();
        assert_eq!(got[0].bytes, b"not-really-pkcs12");
        assert_eq!(got[1].bytes, b"secret");
        assert!(!format!("{got:?}").contains("secret\""), "{got:?}");
        let missing = [SecretFile {
            name: "c",
            source: SecretSource::File("/nonexistent/key.p12".into()),
        }];
        let err = format!("{:#}", resolve("zk-observer-1", &missing).unwrap_err());
        assert!(
            err.contains("zk-observer-1: c from file /nonexistent/key.p12"),
            "{err}"
        );
    }
}
