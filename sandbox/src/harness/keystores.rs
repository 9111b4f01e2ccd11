//! Quorum TLS material for the sandbox, made at run time with the JDK's `keytool`, as measured on
//! Debian's ZooKeeper 3.8.0 (`../shared/reference/zookeeper-observer-facts.md`, "Quorum TLS"): a
//! private CA; per server a PKCS12 key store holding an EC P-256 key, its certificate signed by the
//! CA with an IP subject alternative name, and the CA's certificate; one PKCS12 trust store holding
//! the CA. Passwords sit in files next to the stores (ZooKeeper 3.8 reads
//! `ssl.quorum.keyStore.passwordPath`). Nothing of it is checked in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// keytool refuses store passwords shorter than 6 characters.
const PASSWORD: &str = "sandbox-quorum-tls";

fn keytool(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("keytool")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running keytool (install openjdk-17-jdk-headless)")?;
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "keytool {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Makes an EC P-256 key pair `alias` named `CN=name` in the PKCS12 store `store`, with `extra`
/// keytool arguments (a CA's extension and validity).
fn generate(alias: &str, name: &str, store: &str, extra: &[&str]) -> Result<()> {
    let dname = format!("CN={name}");
    let mut args = vec![
        "-genkeypair",
        "-alias",
        alias,
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-dname",
        &dname,
        "-keystore",
        store,
        "-storetype",
        "PKCS12",
        "-storepass",
        PASSWORD,
    ];
    args.extend(extra);
    keytool(&args, None).map(drop)
}

/// Imports the certificate in `file` into the PKCS12 store `store` as `alias` (creating the store).
fn import(alias: &str, file: &str, store: &str) -> Result<()> {
    keytool(
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            alias,
            "-file",
            file,
            "-keystore",
            store,
            "-storetype",
            "PKCS12",
            "-storepass",
            PASSWORD,
        ],
        None,
    )
    .map(drop)
}

/// A private certificate authority in `dir`.
pub struct Ca {
    dir: PathBuf,
    name: String,
}

/// A PKCS12 store and the file holding its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub path: PathBuf,
    pub password_file: PathBuf,
}

impl Ca {
    /// A new CA named `name` in `dir` (created), its key store `<name>.p12` and certificate
    /// `<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Result<Ca> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = Ca {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        };
        let store = ca.file("p12");
        let _ = std::fs::remove_file(&store);
        generate("ca", name, &store, &["-ext", "bc:c", "-validity", "3650"])?;
        let pem = keytool(
            &[
                "-exportcert",
                "-rfc",
                "-alias",
                "ca",
                "-keystore",
                &store,
                "-storepass",
                PASSWORD,
            ],
            None,
        )?;
        std::fs::write(ca.file("pem"), pem)?;
        Ok(ca)
    }

    fn file(&self, ext: &str) -> String {
        self.dir
            .join(format!("{}.{ext}", self.name))
            .display()
            .to_string()
    }

    fn password_file(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(format!("{name}.pass"));
        std::fs::write(&path, PASSWORD)?;
        Ok(path)
    }

    /// A trust store `<name>.p12` holding this CA's certificate.
    pub fn trust_store(&self, name: &str) -> Result<Store> {
        let path = self.dir.join(format!("{name}.p12"));
        let _ = std::fs::remove_file(&path);
        import("ca", &self.file("pem"), &path.display().to_string())?;
        Ok(Store {
            password_file: self.password_file(name)?,
            path,
        })
    }

    /// A key store `<name>.p12` for the server at `ip`: its key, its certificate signed by this
    /// CA (subject alternative name `ip`), valid from `start` (keytool's `-startdate`, e.g. `-2d`)
    /// for `days`, and the CA's certificate.
    pub fn issue(&self, name: &str, ip: &str, start: Option<&str>, days: u32) -> Result<Store> {
        let path = self.dir.join(format!("{name}.p12"));
        let store = path.display().to_string();
        let _ = std::fs::remove_file(&path);
        generate("server", name, &store, &[])?;
        let request = keytool(
            &[
                "-certreq",
                "-alias",
                "server",
                "-keystore",
                &store,
                "-storepass",
                PASSWORD,
            ],
            None,
        )?;
        let validity = days.to_string();
        let ca_store = self.file("p12");
        let mut gencert = vec![
            "-gencert",
            "-rfc",
            "-alias",
            "ca",
            "-keystore",
            &ca_store,
            "-storepass",
            PASSWORD,
            "-validity",
            &validity,
        ];
        let san = format!("SAN=ip:{ip}");
        gencert.extend(["-ext", &san]);
        if let Some(start) = start {
            gencert.extend(["-startdate", start]);
        }
        let signed = keytool(&gencert, Some(&request))?;
        let signed_file = self.dir.join(format!("{name}.pem"));
        std::fs::write(&signed_file, &signed)?;
        import("ca", &self.file("pem"), &store)?;
        import("server", &signed_file.display().to_string(), &store)?;
        Ok(Store {
            password_file: self.password_file(name)?,
            path,
        })
    }
}

impl Ca {
    /// The CA [`Ca::new`] made in `dir` before.
    pub fn open(dir: &Path, name: &str) -> Ca {
        Ca {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// The key store `<name>.p12` of this CA's directory when it is there, else issued for `ip`
    /// (valid a year: beyond drift's 30-day expiry warning).
    pub fn issued(&self, name: &str, ip: &str) -> Result<Store> {
        let path = self.dir.join(format!("{name}.p12"));
        let password_file = self.dir.join(format!("{name}.pass"));
        if path.is_file() && password_file.is_file() {
            return Ok(Store {
                path,
                password_file,
            });
        }
        self.issue(name, ip, None, 365)
    }
}

/// The sandbox's CA, trust store and a key store per server of `servers` (name, IP address): made
/// once in `cache` (every keytool run starts a JVM; a sandbox start would otherwise spend some
/// 20 s on them), made again when older than a week (the certificates last a year, the CA ten),
/// and copied
/// fresh into `dir`, where tests may replace a store without touching the cache.
pub fn material(cache: &Path, dir: &Path, servers: &[(String, String)]) -> Result<(Ca, Store)> {
    const NAME: &str = "sandbox-quorum-ca";
    // The marker names the recipe: material of an older one (30-day certificates) is made again.
    let done = cache.join("made-v2");
    let fresh = std::fs::metadata(&done)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(7 * 24 * 3600));
    if !fresh {
        let _ = std::fs::remove_dir_all(cache);
        let ca = Ca::new(cache, NAME)?;
        ca.trust_store("truststore")?;
        std::fs::write(&done, "")?;
    }
    let cached = Ca::open(cache, NAME);
    for (name, ip) in servers {
        cached.issued(name, ip)?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(cache)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))
            .with_context(|| format!("copying {}", entry.path().display()))?;
    }
    Ok((
        Ca::open(dir, NAME),
        Store {
            path: dir.join("truststore.p12"),
            password_file: dir.join("truststore.pass"),
        },
    ))
}

/// The name of the key store the participants share (the ensemble artifact's Secret).
pub const PARTICIPANTS: &str = "sandbox-zookeeper-participants";

/// The participants' Secret, as the chart would mount it: the shared key store and the trust
/// store under the environment's `ensemble.quorum_tls.mount_dir`, by the artifact's key names.
pub fn mount_participant_stores(
    env: &manifests::Environment,
    ca: &Ca,
    trust: &Store,
) -> Result<()> {
    use manifests::ensemble_tls::*;
    let dir = Path::new(&env.ensemble.quorum_tls.mount_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = ca.issued(
        PARTICIPANTS,
        &env.ensemble.recorded_addresses[&0].to_string(),
    )?;
    for (from, to) in [
        (&key.path, KEY_STORE),
        (&key.password_file, KEY_STORE_PASSWORD),
        (&trust.path, TRUST_STORE),
        (&trust.password_file, TRUST_STORE_PASSWORD),
    ] {
        std::fs::copy(from, dir.join(to))
            .with_context(|| format!("copying {} into {}", from.display(), dir.display()))?;
    }
    Ok(())
}

/// The zoo.cfg lines of quorum TLS for a server holding `key` and trusting `trust` (hostname
/// verification off: through load balancers a peer is a load-balancer address, so trust rests on
/// the private CA).
pub fn zoo_cfg_lines(key: &Store, trust: &Store) -> String {
    format!(
        "sslQuorum=true\n\
         ssl.quorum.keyStore.location={}\n\
         ssl.quorum.keyStore.passwordPath={}\n\
         ssl.quorum.keyStore.type=PKCS12\n\
         ssl.quorum.trustStore.location={}\n\
         ssl.quorum.trustStore.passwordPath={}\n\
         ssl.quorum.trustStore.type=PKCS12\n\
         ssl.quorum.hostnameVerification=false\n",
        key.path.display(),
        key.password_file.display(),
        trust.path.display(),
        trust.password_file.display()
    )
}

/// The class path a server needs for quorum TLS besides `zookeeper.jar`: the listener's TLS
/// detection (`UnifiedServerSocket.detectMode`) needs netty's codec classes, which Debian's
/// manifest class path leaves out (without them the election listener dies on its first
/// connection, silently).
pub const TLS_CLASS_PATH: &str =
    "/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar";

#[cfg(test)]
mod tests {
    use super::*;

    /// The stores keytool makes hold what ZooKeeper reads: the key store a key entry and the CA,
    /// the trust store the CA only; the server's certificate carries its IP address.
    #[test]
    fn keytool_makes_a_ca_a_trust_store_and_signed_key_stores() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(dir.path(), "sandbox-ca").unwrap();
        let trust = ca.trust_store("truststore").unwrap();
        let key = ca.issue("zk-observer-1", "198.18.1.4", None, 30).unwrap();
        let list = |s: &Store| {
            String::from_utf8(
                keytool(
                    &[
                        "-list",
                        "-v",
                        "-keystore",
                        &s.path.display().to_string(),
                        "-storepass",
                        &std::fs::read_to_string(&s.password_file).unwrap(),
                    ],
                    None,
                )
                .unwrap(),
            )
            .unwrap()
        };
        let k = list(&key);
        assert!(k.contains("Entry type: PrivateKeyEntry"), "{k}");
        assert!(k.contains("IPAddress: 198.18.1.4"), "{k}");
        assert!(k.contains("Issuer: CN=sandbox-ca"), "{k}");
        let t = list(&trust);
        assert!(t.contains("Entry type: trustedCertEntry"), "{t}");
        assert!(!t.contains("PrivateKeyEntry"), "{t}");
        assert!(zoo_cfg_lines(&key, &trust).contains("sslQuorum=true\n"));
    }

    /// What drift reads of a deployed store (`scripts/inspect.sh`: keytool in UTC and English)
    /// parses: the product's parser against the real keytool's output, dates included.
    #[test]
    fn the_products_parser_reads_real_keytool_output() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(dir.path(), "sandbox-ca").unwrap();
        let key = ca
            .issue("zk-observer-1", "198.18.1.4", Some("-20d"), 30)
            .unwrap();
        let out = keytool(
            &[
                "-J-Duser.timezone=UTC",
                "-J-Duser.language=en",
                "-list",
                "-v",
                "-storetype",
                "PKCS12",
                "-keystore",
                &key.path.display().to_string(),
                "-storepass:file",
                &key.password_file.display().to_string(),
            ],
            None,
        )
        .unwrap();
        let certs = hosts::tls::parse_keytool_list(&String::from_utf8(out).unwrap()).unwrap();
        let own = certs
            .iter()
            .find(|c| c.subject == "CN=zk-observer-1")
            .expect("the server's certificate");
        assert_eq!(own.issuer, "CN=sandbox-ca");
        // Issued 20 days ago for 30: 10 days left (to the second: keytool ran just now).
        let left = own.not_after.as_second() - jiff::Timestamp::now().as_second();
        assert!(
            (9 * 86_400..=10 * 86_400 + 60).contains(&left),
            "{left} s left"
        );
        assert!(certs.iter().any(|c| c.subject == "CN=sandbox-ca"));
    }
}
