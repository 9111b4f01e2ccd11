//! Where a deploy came from: the commit this binary was built from (by `build.rs`), whether the
//! tree had uncommitted changes, who ran it and when. Recorded on every object a deploy or an
//! apply writes ([`COMMIT_ANNOTATION`], [`DEPLOYED_AT_ANNOTATION`]; left out of every diff, so a
//! new commit alone changes nothing), in each updated host's [`MARKER_FILE`] (a file of its own:
//! zoo.cfg's bytes do not change with the commit, so no restart), in the deploy lock's holder and
//! in plan files; `status` and `drift` read them back.

use serde::{Deserialize, Serialize};

/// The full commit hash, or `unknown` when built outside a git checkout.
pub const COMMIT: &str = env!("ZK_OBSERVERS_COMMIT");

/// Whether tracked files differed from [`COMMIT`] when the binary was built.
pub const DIRTY: bool = const_str_eq(env!("ZK_OBSERVERS_DIRTY"), "true");

/// `--version`: the package version and the commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ZK_OBSERVERS_COMMIT"),
    ", dirty: ",
    env!("ZK_OBSERVERS_DIRTY"),
    ")"
);

/// The annotation naming the commit that last changed an object (`<hash>`, `<hash>-dirty`).
pub const COMMIT_ANNOTATION: &str = "zk-observers.dev/deployed-commit";
/// The annotation saying when that was (RFC 3339, UTC).
pub const DEPLOYED_AT_ANNOTATION: &str = "zk-observers.dev/deployed-at";
/// Every provenance annotation: never part of a diff or of drift.
pub const ANNOTATIONS: [&str; 2] = [COMMIT_ANNOTATION, DEPLOYED_AT_ANNOTATION];

/// The marker in a host's deploy directory, written when a deploy or push updated the host and
/// it passed its health gate.
pub const MARKER_FILE: &str = ".zk-observers/deployed.json";

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `<hash>` or `<hash>-dirty`: what the annotation and the reports show.
pub fn commit() -> String {
    if DIRTY {
        format!("{COMMIT}-dirty")
    } else {
        COMMIT.to_string()
    }
}

/// `user@host`: who runs this process.
pub fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// Now, RFC 3339 in UTC, to the second.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .expect("rounding a timestamp to seconds")
        .to_string()
}

/// What a host's marker file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// `<hash>` or `<hash>-dirty`.
    pub commit: String,
    pub deployed_at: String,
    pub by: String,
    pub environment: String,
}

impl Deployed {
    /// This run's record for `environment`.
    pub fn now(environment: &str) -> Deployed {
        Deployed {
            commit: commit(),
            deployed_at: now(),
            by: operator(),
            environment: environment.to_string(),
        }
    }

    /// The marker file's contents (one JSON line).
    pub fn to_file(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a record serializes");
        s.push('\n');
        s
    }

    /// A marker file as read; `None` when there is none or it does not parse.
    pub fn parse(text: &str) -> Option<Deployed> {
        serde_json::from_str(text.trim()).ok()
    }
}

/// The provenance annotations of a live object: (commit, deployed at).
pub fn of_object(live: &serde_json::Value) -> (Option<String>, Option<String>) {
    let ann = &live["metadata"]["annotations"];
    let get = |k: &str| ann[k].as_str().map(str::to_string);
    (get(COMMIT_ANNOTATION), get(DEPLOYED_AT_ANNOTATION))
}

/// Which commit deployed one object or host, as read back (`status`, `drift`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `Kind/namespace/name`, or `host/<observer>`.
    pub object: String,
    /// `None`: nothing recorded (written before provenance was recorded, or by hand).
    pub commit: Option<String>,
    pub deployed_at: Option<String>,
    /// Who ran the deploy (hosts only: objects carry the commit and time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The record of a live object of this tool.
pub fn object_record(object: &str, live: &serde_json::Value) -> Record {
    let (commit, deployed_at) = of_object(live);
    Record {
        object: object.to_string(),
        commit,
        deployed_at,
        by: None,
    }
}

/// The record of a host from its marker file as read (`None`: no file).
pub fn host_record(observer: &str, marker: Option<&str>) -> Record {
    let d = marker.and_then(Deployed::parse);
    Record {
        object: format!("host/{observer}"),
        commit: d.as_ref().map(|d| d.commit.clone()),
        deployed_at: d.as_ref().map(|d| d.deployed_at.clone()),
        by: d.map(|d| d.by),
    }
}

/// A commit as people read it: 12 hex digits (and `-dirty`), or `-`.
pub fn short(commit: Option<&str>) -> String {
    match commit {
        None => "-".into(),
        Some(c) => match c.strip_suffix("-dirty") {
            Some(hash) => format!("{}-dirty", &hash[..hash.len().min(12)]),
            None => c[..c.len().min(12)].to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_is_a_hash_of_the_checkout_or_unknown() {
        assert!(
            COMMIT == "unknown"
                || (COMMIT.len() == 40 && COMMIT.bytes().all(|b| b.is_ascii_hexdigit())),
            "{COMMIT}"
        );
        assert!(VERSION.contains(COMMIT));
        assert_eq!(commit().ends_with("-dirty"), DIRTY);
    }

    #[test]
    fn short_commits() {
        let h = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short(Some(h)), "0123456789ab");
        assert_eq!(short(Some(&format!("{h}-dirty"))), "0123456789ab-dirty");
        assert_eq!(short(Some("unknown")), "unknown");
        assert_eq!(short(None), "-");
    }

    #[test]
    fn a_marker_round_trips_and_garbage_is_none() {
        let d = Deployed::now("sandbox");
        assert_eq!(Deployed::parse(&d.to_file()), Some(d));
        assert_eq!(Deployed::parse("not json"), None);
        assert_eq!(Deployed::parse(""), None);
    }
}
