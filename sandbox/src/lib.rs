//! The local sandbox: a Kubernetes API test server (and, later, observer hosts and a ZooKeeper
//! ensemble) that the tests and `cargo xtask demo` run against.

pub mod apiserver;

pub use apiserver::{ApiServer, Config, Fault, LoadBalancerMode, Stats};
