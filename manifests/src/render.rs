//! Text renderers: the multi-document manifest file and each observer's host files.

use std::collections::BTreeMap;
use std::fmt;

use hosts::host_files::EnsemblePorts;
use hosts::{HostFiles, Observer, ParticipantEndpoint, ServerAddress};

use crate::environment::{AddressSource, Environment};
use crate::objects::desired_objects;

/// Every desired object as one multi-document YAML file that `kubectl apply -f` accepts, in the
/// order of [`desired_objects`].
pub fn render_manifests(env: &Environment) -> String {
    let mut out = format!(
        "# Rendered by {} for environment {}. Apply with `cargo xtask apply --env {}`.\n",
        hosts::MANAGED_BY,
        env.name,
        env.name
    );
    for (i, o) in desired_objects(env).iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&o.to_yaml());
    }
    out
}

/// Why host files cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// Some participants have no load-balancer address to point the observers at.
    MissingAddresses {
        environment: String,
        services: Vec<String>,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::MissingAddresses { environment, services } => write!(
                f,
                "no load-balancer address is recorded for Service(s) {} of environment {environment}, so the \
                 observers' zoo.cfg cannot name every participant. Run `cargo xtask apply --env {environment}`, \
                 which waits for the addresses and prints them, then record them in \
                 `ensemble.recorded_addresses` of manifests/src/environments/{environment}.rs",
                services.join(", ")
            ),
        }
    }
}

impl std::error::Error for RenderError {}

/// The participants with the addresses the observers should use.
pub fn participant_endpoints(
    env: &Environment,
    source: &AddressSource,
) -> Result<Vec<ParticipantEndpoint>, RenderError> {
    let addresses: &BTreeMap<u32, ServerAddress> = match source {
        AddressSource::Recorded => &env.ensemble.recorded_addresses,
        AddressSource::Live(a) => a,
    };
    let mut missing = Vec::new();
    let mut endpoints = Vec::new();
    for p in env.ensemble.participants() {
        match addresses.get(&p.ordinal) {
            Some(a) => endpoints.push(ParticipantEndpoint {
                id: p.id,
                address: a.clone(),
            }),
            None => missing.push(p.service_name),
        }
    }
    if missing.is_empty() {
        Ok(endpoints)
    } else {
        Err(RenderError::MissingAddresses {
            environment: env.name.clone(),
            services: missing,
        })
    }
}

/// zoo.cfg and docker-compose.yaml for every observer, in inventory order.
pub fn render_host_files<'e>(
    env: &'e Environment,
    source: &AddressSource,
) -> Result<Vec<(&'e Observer, HostFiles)>, RenderError> {
    let participants = participant_endpoints(env, source)?;
    let ports = EnsemblePorts {
        quorum: env.ensemble.quorum_port,
        election: env.ensemble.election_port,
    };
    Ok(env
        .fleet
        .observers
        .iter()
        .map(|o| {
            (
                o,
                hosts::render_host(&env.name, &env.fleet, o, &participants, ports),
            )
        })
        .collect())
}
