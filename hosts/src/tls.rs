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

/// Where a server reads its quorum stores and their passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    pub key_store: String,
    pub key_store_password: String,
    pub trust_store: String,
    pub trust_store_password: String,
}

/// The `ssl.quorum.*` keys of a server reading `paths` (PKCS12 stores, passwords from files:
/// ZooKeeper 3.8+), hostname verification off: peers are load-balancer addresses, so trust
/// rests on the private CA. The observers' zoo.cfg and the ensemble's artifact both use it.
pub fn set_store_keys(cfg: &mut crate::zoocfg::ZooCfg, paths: &StorePaths) {
    use crate::zoocfg::Key;
    cfg.set(Key::SslQuorumKeyStoreLocation, &paths.key_store);
    cfg.set(
        Key::SslQuorumKeyStorePasswordPath,
        &paths.key_store_password,
    );
    cfg.set(Key::SslQuorumKeyStoreType, "PKCS12");
    cfg.set(Key::SslQuorumTrustStoreLocation, &paths.trust_store);
    cfg.set(
        Key::SslQuorumTrustStorePasswordPath,
        &paths.trust_store_password,
    );
    cfg.set(Key::SslQuorumTrustStoreType, "PKCS12");
    cfg.set(Key::SslQuorumHostnameVerification, false);
}

/// A certificate as a host reports it: public data only (who it names, who signed it, until when
/// it is valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    /// RFC 3339 in the JSON report.
    #[serde(serialize_with = "as_rfc3339")]
    pub not_after: jiff::Timestamp,
}

fn as_rfc3339<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// Parses `text` (one date, whitespace runs collapsed) with strftime `format`, in UTC.
fn utc(text: &str, format: &str) -> Result<jiff::Timestamp, String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    jiff::fmt::strtime::parse(format, &text)
        .and_then(|t| t.to_datetime())
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| format!("`{text}` is not a date of the form `{format}`: {e}"))
}

/// The certificates `keytool -list -v` prints (run with `-J-Duser.timezone=UTC
/// -J-Duser.language=en`, so that `Valid from: ... until: Fri Mar 05 19:26:17 UTC 2027` is
/// `java.util.Date`'s fixed English form in UTC): its `Owner:`, `Issuer:` and `Valid from:` lines,
/// one certificate per `Owner:`. A `keytool error` line is the error.
pub fn parse_keytool_list(text: &str) -> Result<Vec<Certificate>, String> {
    if let Some(e) = text.lines().find(|l| l.starts_with("keytool error")) {
        return Err(e.trim().to_string());
    }
    let mut out: Vec<Certificate> = Vec::new();
    let (mut subject, mut issuer) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix("Owner: ") {
            subject = Some(s.to_string());
        } else if let Some(s) = line.strip_prefix("Issuer: ") {
            issuer = Some(s.to_string());
        } else if let Some(s) = line.strip_prefix("Valid from: ") {
            let until = s
                .split_once(" until: ")
                .ok_or_else(|| format!("no `until:` in `{line}`"))?
                .1;
            out.push(Certificate {
                subject: subject
                    .take()
                    .ok_or("a validity before its `Owner:` line")?,
                issuer: issuer
                    .take()
                    .ok_or("a validity before its `Issuer:` line")?,
                not_after: utc(until, "%a %b %d %H:%M:%S UTC %Y")?,
            });
        }
    }
    if out.is_empty() {
        return Err("no certificate in the store".into());
    }
    Ok(out)
}

/// The certificate `openssl x509 -noout -enddate -subject -issuer` describes (`notAfter=Dec  4
/// 19:26:17 2027 GMT`, `subject=CN = zk-0`, `issuer=CN = ca`), its lines joined by tabs or
/// newlines.
pub fn parse_openssl_x509(text: &str) -> Result<Certificate, String> {
    let field = |name: &str| {
        text.split(['\t', '\n'])
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| format!("no `{name}` in `{}`", text.trim()))
    };
    Ok(Certificate {
        subject: field("subject=")?.to_string(),
        issuer: field("issuer=")?.to_string(),
        not_after: utc(field("notAfter=")?, "%b %d %H:%M:%S %Y GMT")?,
    })
}

/// How a certificate stands at a moment, with a warning window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    /// Within the warning window: so many whole days left.
    ExpiresSoon {
        days: i64,
    },
    /// Expired so many whole days ago.
    Expired {
        days: i64,
    },
}

impl Certificate {
    /// Its validity at `now`, warning within `window` of its end.
    pub fn validity(&self, now: jiff::Timestamp, window: std::time::Duration) -> Validity {
        let left = self.not_after.as_second() - now.as_second();
        let days = left.abs() / 86_400;
        if left <= 0 {
            Validity::Expired { days }
        } else if (left as u64) <= window.as_secs() {
            Validity::ExpiresSoon { days }
        } else {
            Validity::Valid
        }
    }

    /// `CN=zk-observer-1 (issued by CN=ca) expires on 2027-03-05T19:26:17Z (in 89 days)`, or
    /// `None` when it is valid beyond the window.
    pub fn expiry_problem(
        &self,
        now: jiff::Timestamp,
        window: std::time::Duration,
    ) -> Option<String> {
        let when = match self.validity(now, window) {
            Validity::Valid => return None,
            Validity::ExpiresSoon { days } => {
                format!("expires on {} (in {days} day(s))", self.not_after)
            }
            Validity::Expired { days } => {
                format!("expired on {} ({days} day(s) ago)", self.not_after)
            }
        };
        Some(format!(
            "{} (issued by {}) {when}",
            self.subject, self.issuer
        ))
    }
}

/// What a participant's election port answered to a TLS handshake from an observer host (the
/// handshake offers no certificate: a TLS quorum refuses it after showing its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum ElectionAnswer {
    /// A TLS handshake, and the certificate the participant showed.
    Tls { certificate: Certificate },
    /// The connection opened, but no TLS handshake came back: the port speaks plaintext only.
    Plaintext,
    /// No connection (see the reachability findings).
    Unreachable,
    /// Not probed (e.g. no `openssl` on the host), with why.
    Unknown { why: String },
}

impl ElectionAnswer {
    /// One line of the `election-tls` section: `tls<TAB>openssl x509 lines`, `plaintext`,
    /// `unreachable`, or `unknown<TAB>why`.
    pub fn parse(line: &str) -> ElectionAnswer {
        let (word, rest) = line.split_once('\t').unwrap_or((line, ""));
        match word.trim() {
            "tls" => match parse_openssl_x509(rest) {
                Ok(certificate) => ElectionAnswer::Tls { certificate },
                Err(e) => ElectionAnswer::Unknown {
                    why: format!("a TLS handshake, but {e}"),
                },
            },
            "plaintext" => ElectionAnswer::Plaintext,
            "unreachable" => ElectionAnswer::Unreachable,
            _ => ElectionAnswer::Unknown {
                why: rest.trim().to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `keytool -list -v` of JDK 17 (Debian's openjdk-17), as the sandbox's observers print it.
    const KEYTOOL: &str = "Keystore type: PKCS12\nKeystore provider: SUN\n\nYour keystore contains 1 entry\n\n\
        Alias name: zk-observer-1\nCreation date: Dec 5, 2026\nEntry type: PrivateKeyEntry\n\
        Certificate chain length: 2\nCertificate[1]:\nOwner: CN=zk-observer-1\nIssuer: CN=sandbox-ca\n\
        Serial number: 4c1d\nValid from: Sat Dec 05 19:26:17 UTC 2026 until: Tue Dec 15 19:26:17 UTC 2026\n\
        Certificate[2]:\nOwner: CN=sandbox-ca\nIssuer: CN=sandbox-ca\nSerial number: 1\n\
        Valid from: Sat Dec 05 19:00:00 UTC 2026 until: Mon Dec 05 19:00:00 UTC 2033\n";

    #[test]
    fn keytool_and_openssl_dates_are_read_in_utc() {
        let certs = parse_keytool_list(KEYTOOL).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].subject, "CN=zk-observer-1");
        assert_eq!(certs[0].issuer, "CN=sandbox-ca");
        assert_eq!(certs[0].not_after.to_string(), "2026-12-15T19:26:17Z");
        assert_eq!(certs[1].not_after.to_string(), "2033-12-05T19:00:00Z");
        let c = parse_openssl_x509(
            "notAfter=Dec  4 19:26:17 2027 GMT\tsubject=CN = zk-0\tissuer=CN = ca\t",
        )
        .unwrap();
        assert_eq!(c.not_after.to_string(), "2027-12-04T19:26:17Z");
        assert_eq!(
            (c.subject.as_str(), c.issuer.as_str()),
            ("CN = zk-0", "CN = ca")
        );
        assert!(parse_keytool_list(
            "keytool error: java.io.IOException: keystore password was incorrect"
        )
        .unwrap_err()
        .contains("password was incorrect"));
        assert!(parse_keytool_list("Your keystore contains 0 entries").is_err());
        assert!(parse_openssl_x509("notAfter=someday\tsubject=a\tissuer=b").is_err());
    }

    #[test]
    fn a_certificate_is_valid_expiring_or_expired_by_whole_days() {
        let c = parse_keytool_list(KEYTOOL).unwrap().remove(0);
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let window = std::time::Duration::from_secs(30 * 86_400);
        assert_eq!(
            c.validity(at("2026-11-01T00:00:00Z"), window),
            Validity::Valid
        );
        assert_eq!(
            c.validity(at("2026-12-05T19:26:17Z"), window),
            Validity::ExpiresSoon { days: 10 }
        );
        assert_eq!(
            c.validity(at("2026-12-20T19:26:18Z"), window),
            Validity::Expired { days: 5 }
        );
        assert_eq!(
            c.expiry_problem(at("2026-12-20T19:26:18Z"), window).unwrap(),
            "CN=zk-observer-1 (issued by CN=sandbox-ca) expired on 2026-12-15T19:26:17Z (5 day(s) ago)"
        );
        assert_eq!(c.expiry_problem(at("2026-11-01T00:00:00Z"), window), None);
    }

    #[test]
    fn election_answers_parse() {
        assert_eq!(
            ElectionAnswer::parse("plaintext"),
            ElectionAnswer::Plaintext
        );
        assert_eq!(
            ElectionAnswer::parse("unreachable"),
            ElectionAnswer::Unreachable
        );
        assert_eq!(
            ElectionAnswer::parse("unknown\tno openssl on the host"),
            ElectionAnswer::Unknown {
                why: "no openssl on the host".into()
            }
        );
        let ElectionAnswer::Tls { certificate: c } = ElectionAnswer::parse(
            "tls\tnotAfter=Jan 10 00:00:00 2027 GMT\tsubject=CN = zk\tissuer=CN = ca",
        ) else {
            panic!()
        };
        assert_eq!(c.not_after.to_string(), "2027-01-10T00:00:00Z");
    }
}
