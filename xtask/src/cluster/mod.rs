//! The cluster side: the kube client with its retries (`client`, re-exported here), what a deploy
//! would change and its server-side apply (`plan`, `fields`, `execute`), the load balancers'
//! addresses (`lb`), the ensemble as it runs (`ensemble`), and the diffs' text (`yamldiff`). Never
//! imports the host side (`crate::fleet`).

mod client;
pub mod ensemble;
pub mod execute;
pub(crate) mod fields;
pub mod lb;
pub mod plan;
pub(crate) mod retry;
pub(crate) mod yamldiff;

pub use client::*;
