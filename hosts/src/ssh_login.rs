//! SSH login details and pinned host keys.

use std::fmt;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::net::Port;

/// How this tool logs in to an observer host: key-based, as `user` on `port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshLogin {
    pub user: String,
    pub port: Port,
}

/// A bastion that SSH goes through to reach observers (OpenSSH's ProxyJump), with a host key of
/// its own, pinned like the observers'. A chain is listed in the order the connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHost {
    /// Names it in reports and in the generated SSH configuration: a DNS-1123 label.
    pub name: String,
    /// Its IP address or DNS name, as this tool's machine reaches it.
    pub address: String,
    pub ssh: SshLogin,
    pub host_key: HostKey,
}

/// The SSH host key an observer must present. Connections are made with strict host key checking
/// against this key only; `~/.ssh/known_hosts` is not consulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKey {
    /// The host's public key in OpenSSH form, e.g. `ssh-ed25519 AAAAC3Nza...`.
    Pinned(String),
    /// Not recorded yet. Rendering and checking work; anything that connects to the host refuses.
    NotPinned,
}

/// A parsed OpenSSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: String,
    pub blob: Vec<u8>,
}

const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

impl PublicKey {
    /// Parses `ALGORITHM BASE64 [COMMENT]` and checks that the blob names the same algorithm.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let mut parts = text.split_whitespace();
        let algorithm = parts.next().ok_or("the key is empty")?;
        if !ALGORITHMS.contains(&algorithm) {
            return Err(format!(
                "`{algorithm}` is not an SSH host key algorithm (expected one of {})",
                ALGORITHMS.join(", ")
            ));
        }
        let b64 = parts
            .next()
            .ok_or("the key has an algorithm but no base64 data")?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the key's data is not base64: {e}"))?;
        // The blob starts with the algorithm name as an SSH string (u32 length + bytes).
        let inner = blob
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|len| blob.get(4..4 + len))
            .ok_or("the key's data is truncated")?;
        let inner_alg = std::str::from_utf8(inner).map_err(|_| "the key's data is corrupt")?;
        let expected = if algorithm.starts_with("rsa-sha2") {
            "ssh-rsa"
        } else {
            algorithm
        };
        if inner_alg != expected {
            return Err(format!(
                "the key says `{algorithm}` but its data holds a `{inner_alg}` key"
            ));
        }
        Ok(PublicKey {
            algorithm: algorithm.to_string(),
            blob,
        })
    }

    /// The fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64 of the blob's SHA-256.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.blob);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }

    /// The `known_hosts` form without a host pattern: `ALGORITHM BASE64`.
    pub fn openssh(&self) -> String {
        format!(
            "{} {}",
            self.algorithm,
            base64::engine::general_purpose::STANDARD.encode(&self.blob)
        )
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `ssh-keygen -t ed25519`; fingerprint from `ssh-keygen -lf`.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAKTX3Lt6t969SYld4p1M2mIS7LteFSRo0pAyQvqUtSR test";

    #[test]
    fn parses_and_fingerprints() {
        let k = PublicKey::parse(KEY).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(
            k.fingerprint(),
            "SHA256:QVLqSG4O6TNMxd4wG2pLQbnZDQUy96zC6GjsVEnwpzM"
        );
        assert_eq!(k.openssh(), KEY.trim_end_matches(" test"));
    }

    #[test]
    fn rejects_mismatched_algorithm() {
        let err = PublicKey::parse(&KEY.replace("ssh-ed25519", "ssh-rsa")).unwrap_err();
        assert!(err.contains("holds a `ssh-ed25519` key"), "{err}");
    }
}
