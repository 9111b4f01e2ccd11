//! The one output path: every command returns a typed [`report::Report`], printed as text or JSON
//! by [`report::emit`]; the printer's helpers (`printer`, re-exported here) and the exit codes.

pub mod exit;
pub(crate) mod printer;
pub mod report;
pub mod unified_diff;

pub use printer::*;
