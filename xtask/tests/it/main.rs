//! The xtask package's integration tests: one binary, one module per area, every file compiled.
//! Tests that need root (the sandbox's network namespaces, sshd, dockerd, ZooKeeper) say so in
//! their module's first lines. Select an area with nextest's filters, e.g.
//! `cargo nextest run -p xtask -E 'test(/^deploy::/)'`. docs/testing.md lists what each area proves.

/// Helpers the areas share: the binary, the sandbox world, report access.
mod common;

/// What an attacker holding the drift key, a file or a port on an observer host gets (root).
mod attacks;
/// The command line and the product binary itself.
mod cli;
/// `diff` and `apply` against the Kubernetes API test server.
mod cluster;
/// `deploy`, `drift` and `demo` end to end on the real peers (root).
mod deploy;
/// Every quoted command in README.md and docs/ is run and compared.
mod docs;
/// The rendered files through the tools that consume them.
mod external_validators;
/// The fault table's rows on the real peers (root).
mod faults;
/// The observer side (`push`, `status`) on the real peers (root).
mod fleet;
/// Snapshots of every rendered file.
mod render;
/// One test per validation rule.
mod validation;
/// The GitHub workflows.
mod workflows;
