//! Container image references and ZooKeeper versions.

use std::fmt;

use serde::Serialize;

/// A container image reference, split into repository, tag and digest.
///
/// Built from the usual text form (`zookeeper:3.8.6`, `registry:5000/zk:3.8.6@sha256:...`).
/// Splitting never fails; whether the reference is pinned is a validation rule
/// ([`ImageRef::pinning_problem`]) so that the error can name the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn new(reference: &str) -> ImageRef {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        ImageRef {
            repository: repository.to_string(),
            tag,
            digest,
        }
    }

    /// Why this reference does not name one fixed image, if it does not: it needs a digest
    /// (`sha256:` and 64 hex digits) or a tag that names a patch release (`3.8.6`, `v1.1.2`,
    /// `3.8.0-debian12`); `latest`, `3.8` or `master` move.
    pub fn pinning_problem(&self) -> Option<String> {
        if self.repository.is_empty() {
            return Some("the image reference has no repository".into());
        }
        let repo_ok = self
            .repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
            && !self.repository.starts_with(['/', '-', '.', ':'])
            && !self.repository.ends_with(['/', '-', '.', ':']);
        if !repo_ok {
            return Some(format!(
                "`{}` is not a repository name (lowercase letters, digits, `.`, `_`, `-`, `/`, and a registry's `:port`)",
                self.repository.escape_debug()
            ));
        }
        if let Some(d) = &self.digest {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Some(format!(
                    "digest `{}` is not of the form sha256:<64 lowercase hex digits>",
                    d.escape_debug()
                ));
            }
            return None;
        }
        match self.tag.as_deref() {
            None => Some(format!(
                "`{self}` has no tag, which means `latest`: every pull may bring another version"
            )),
            Some("") => Some(format!("`{self}` has an empty tag")),
            Some(t) if !is_tag(t) => Some(format!(
                "`{}` is not a valid tag (at most 128 letters, digits, `_`, `.` and `-`)",
                t.escape_debug()
            )),
            Some(t) if !names_a_patch_release(t) => Some(format!(
                "`{self}` uses the tag `{t}`, which does not name a patch release: it moves when a new one is pushed"
            )),
            Some(_) => None,
        }
    }

    /// The ZooKeeper version in the tag (`3.8.6`, `3.8.6-jre-17`), if the tag starts with one.
    pub fn zookeeper_version(&self) -> Option<ZkVersion> {
        let tag = self.tag.as_deref()?;
        let numeric = tag.split(['-', '_']).next()?;
        let mut parts = numeric.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        Some(ZkVersion {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Whether a tag starts with a full `major.minor.patch` version (`v` allowed first), optionally
/// followed by `-` or `_` and a suffix: `3.8.6`, `v1.1.2`, `3.9.5-jre-17`.
fn names_a_patch_release(t: &str) -> bool {
    let t = t.strip_prefix('v').unwrap_or(t);
    let version = t.split(['-', '_', '+']).next().unwrap_or("");
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A ZooKeeper release, as `major.minor[.patch]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ZkVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl ZkVersion {
    pub const fn minor(major: u32, minor: u32) -> ZkVersion {
        ZkVersion {
            major,
            minor,
            patch: None,
        }
    }

    pub fn same_minor(self, other: ZkVersion) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

impl fmt::Display for ZkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references() {
        let r = ImageRef::new("registry.local:5000/zk/zookeeper:3.8.6");
        assert_eq!(r.repository, "registry.local:5000/zk/zookeeper");
        assert_eq!(r.tag.as_deref(), Some("3.8.6"));
        assert_eq!(r.to_string(), "registry.local:5000/zk/zookeeper:3.8.6");
        let r = ImageRef::new("registry.local:5000/zookeeper");
        assert_eq!(r.tag, None);
        assert!(r.pinning_problem().is_some());
        for pinned in [
            "zookeeper:3.8.6",
            "josdotso/zookeeper-exporter:v1.1.2",
            "zookeeper:3.9.5-jre-17",
            "registry.local:5000/zk/zookeeper:3.8.6",
        ] {
            assert_eq!(ImageRef::new(pinned).pinning_problem(), None, "{pinned}");
        }
        let digest = format!("zookeeper@sha256:{}", "ab".repeat(32));
        assert_eq!(ImageRef::new(&digest).pinning_problem(), None);
        for moving in [
            "zookeeper:3.8",
            "zookeeper:latest",
            "josdotso/zookeeper-exporter:master",
            "zookeeper",
        ] {
            assert!(
                ImageRef::new(moving).pinning_problem().is_some(),
                "{moving}"
            );
        }
        let zs = format!("zookeeper@sha256:{}", "z".repeat(64));
        assert!(ImageRef::new(&zs)
            .pinning_problem()
            .unwrap()
            .contains("64 lowercase hex"));
        assert!(ImageRef::new("zookeeper:3.8.6\nfoo")
            .pinning_problem()
            .is_some());
        assert_eq!(
            ImageRef::new("zookeeper:3.9.5-jre-17").zookeeper_version(),
            Some(ZkVersion {
                major: 3,
                minor: 9,
                patch: Some(5)
            })
        );
    }
}
