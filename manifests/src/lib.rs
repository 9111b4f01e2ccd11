//! Environments, and the Kubernetes objects that expose the in-cluster ensemble to the observers
//! and let Prometheus scrape them. Built from k8s-openapi types; no IO.

pub mod ensemble_tls;
pub mod environment;
pub mod environments;
pub mod labels;
pub mod objects;
pub mod provider;
pub mod rbac;
pub mod render;
pub mod service_monitor;
pub mod shapes;
pub mod validate;

pub use environment::{
    AddressSource, Ensemble, EnsembleTls, Environment, EnvironmentKind, Monitoring, Participant,
    ServiceMonitorSpec,
};
pub use objects::{desired_objects, Object};
pub use provider::{AwsController, LoadBalancerProvider};
pub use render::{render_host_files, render_manifests, RenderError};
pub use validate::validate;

/// Server-side-apply field manager. One constant name, so that ownership never moves between runs.
pub const FIELD_MANAGER: &str = hosts::MANAGED_BY;
