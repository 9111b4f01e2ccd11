//! One file per subcommand, and what only subcommands use: the deploy's plan file and prompt,
//! and the reads of the cluster and the hosts together (`reads`), the one place above both sides.

pub mod apply;
pub mod check;
pub mod deploy;
pub(crate) mod dev;
pub mod diff;
pub mod drift;
pub mod generate;
pub mod planfile;
pub mod prompt;
pub mod push;
pub mod reads;
pub mod render;
pub mod status;

/// Ctrl-C and SIGTERM handling for the commands that change things (deploy, apply, push): a third
/// signal names the deploy lock's Lease duration and ends the SSH connections' masters.
pub(crate) fn install_interrupt() -> anyhow::Result<crate::signals::Interrupt> {
    crate::signals::Interrupt::install(crate::signals::Exiting {
        lease_seconds: crate::lock::LEASE_SECONDS,
        cleanup: crate::fleet::ssh::close_all_masters,
    })
}
