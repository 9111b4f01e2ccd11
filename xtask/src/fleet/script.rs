//! The scripts run on the hosts (`scripts/`), as sent: what `ssh` runs and `hostops` builds
//! arguments for. A file of its own so that `ssh` does not import `hostops`.

pub(crate) const LIB: &str = include_str!("scripts/lib.sh");

/// A script run on a host: `SHELL -c TEXT zk-observers ARGS...`. Each is a file of `scripts/`;
/// the bash ones are sent after `lib.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Reads a host in one command: files, resolved names, probe, running services.
    Inspect,
    /// The health probe.
    Probe,
    /// Resolves names as ZooKeeper on the host will.
    Resolve,
    /// Atomic, checksum-verified write of one file (contents on stdin).
    Write,
    /// Puts back what `Write` replaced.
    Restore,
    /// `docker compose` or `docker-compose`.
    Compose,
    /// Installs the drift key's forced read-only command.
    ReadOnlyAccess,
    /// Removes what is left of a retired observer's deployment.
    Retire,
    /// Sets an observer's data aside for empty directories, and commits or undoes that.
    ResetData,
    /// The last lines of ZooKeeper's log.
    Logs,
    /// Records where a host's deployment came from (the marker file).
    Record,
}

impl Script {
    pub const ALL: [Script; 11] = [
        Script::Inspect,
        Script::Probe,
        Script::Resolve,
        Script::Write,
        Script::Restore,
        Script::Compose,
        Script::ReadOnlyAccess,
        Script::Retire,
        Script::ResetData,
        Script::Logs,
        Script::Record,
    ];

    pub fn shell(self) -> &'static str {
        match self {
            Script::Inspect | Script::Probe | Script::Resolve => "bash",
            Script::Write
            | Script::Restore
            | Script::Compose
            | Script::ReadOnlyAccess
            | Script::Retire
            | Script::ResetData
            | Script::Logs
            | Script::Record => "sh",
        }
    }

    pub(crate) fn body(self) -> &'static str {
        match self {
            Script::Inspect => include_str!("scripts/inspect.sh"),
            Script::Probe => include_str!("scripts/probe.sh"),
            Script::Resolve => include_str!("scripts/resolve.sh"),
            Script::Write => include_str!("scripts/write.sh"),
            Script::Restore => include_str!("scripts/restore.sh"),
            Script::Compose => include_str!("scripts/compose.sh"),
            Script::ReadOnlyAccess => include_str!("scripts/read-only-access.sh"),
            Script::Retire => include_str!("scripts/retire.sh"),
            Script::ResetData => include_str!("scripts/reset-data.sh"),
            Script::Logs => include_str!("scripts/logs.sh"),
            Script::Record => include_str!("scripts/record.sh"),
        }
    }

    /// The program text as sent.
    pub fn text(self) -> String {
        match self.shell() {
            "bash" => format!("{LIB}\n{}", self.body()),
            _ => self.body().to_string(),
        }
    }
}
