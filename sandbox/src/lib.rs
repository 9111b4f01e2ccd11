//! The local sandbox that the tests and `cargo xtask demo` run against: a Kubernetes API test
//! server ([`apiserver`]) and, in [`harness`], the sandbox environment's network namespaces, a real
//! ZooKeeper ensemble and observer hosts with sshd and Docker.

pub mod apiserver;
pub mod harness;

pub use apiserver::{
    ApiServer, Config, Controllers, Fault, Firewall, Grant, Identity, Ingress, LbRule,
    LoadBalancerMode, Pod, Stats,
};
pub use harness::{Options, Sandbox};
