//! ZooKeeper server ids (`myid`).

use std::fmt;

use serde::Serialize;

/// A ZooKeeper server id as written in `myid` and in `server.N` lines.
///
/// ZooKeeper accepts 1..=255 (1..=254 with TTL nodes). The value is kept wide so that an out-of-range
/// id written in an environment module is reported by validation, naming the field, rather than
/// failing to compile with an unhelpful overflow message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerId(pub u32);

impl ServerId {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 255;
    /// The lowest id an observer may take. The chart numbers participants `ordinal + 1`, so a
    /// StatefulSet scaled to N replicas takes ids 1..=N; ZooKeeper keeps one election connection
    /// per id, and two servers with one id knock each other's off. Ids 1..=99 stay the
    /// participants' (no ensemble has close to 99 voters), 100..=255 the observers'.
    pub const OBSERVER_MIN: u32 = 100;

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn in_range(self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self.0)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
