//! The host side: SSH connections (`ssh`), the scripts run on the hosts and what they report
//! (`script`, `hostops`, `scripts/`), the fleet as read (`read`, re-exported here), the rollout
//! behind the health gate (`rollout`) and the key material it pushes (`secrets`). Never imports
//! the cluster side (`crate::cluster`).

pub mod hostops;
mod read;
pub mod rollout;
pub mod script;
pub mod secrets;
pub mod ssh;

pub use read::*;
