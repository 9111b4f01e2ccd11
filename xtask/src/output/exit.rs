//! Exit codes shared by every subcommand.

/// Success, or in sync.
pub const OK: u8 = 0;
/// An error: nothing was changed unless the message says so.
pub const ERROR: u8 = 1;
/// Changes or drift found (diff, drift, deploy --dry-run, push --dry-run, status).
pub const CHANGES: u8 = 2;
