//! The documented JSON/YAML output (docs/json-output.md). Field names follow
//! the proto; enum values are the proto names in snake_case without their
//! prefix (`FINDING_KIND_IMAGE_DIGEST` → `image_digest`).
//!
//! Bump [`SCHEMA_VERSION`] on any incompatible change; adding fields is
//! compatible.

use std::collections::BTreeMap;
use std::time::SystemTime;

use envparity_proto::time::from_timestamp;
use envparity_proto::v1;
use serde::Serialize;

/// Version of the JSON/YAML output schema.
pub const SCHEMA_VERSION: u32 = 1;

/// `FINDING_KIND_IMAGE_DIGEST` → `image_digest`.
fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.and_then(from_timestamp)
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// `hosts` output.
#[derive(Debug, Serialize)]
pub struct Hosts {
    /// Output schema version.
    pub schema_version: u32,
    /// The hosts.
    pub hosts: Vec<Host>,
}

/// One host.
#[derive(Debug, Serialize)]
pub struct Host {
    pub host_id: String,
    pub environment: String,
    /// `fresh`, `stale` or `engine_unreachable`.
    pub state: String,
    pub last_seen: Option<String>,
    /// Seconds since the aggregator last heard from the host.
    pub last_seen_age_seconds: Option<u64>,
    pub container_count: u32,
    pub agent_version: String,
    pub labels: BTreeMap<String, String>,
    pub host: HostFacts,
    pub engine: EngineFacts,
}

/// Host facts.
#[derive(Debug, Default, Serialize)]
pub struct HostFacts {
    pub kernel_version: String,
    pub os_id: String,
    pub os_name: String,
    pub os_version: String,
    pub architecture: String,
    pub hostname: String,
}

/// Engine facts.
#[derive(Debug, Default, Serialize)]
pub struct EngineFacts {
    pub server_version: String,
    pub api_version: String,
    pub storage_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub operating_system: String,
    pub os_type: String,
    pub architecture: String,
}

impl Hosts {
    /// From the wire, with ages relative to `now`.
    pub fn from_proto(resp: &v1::ListHostsResponse, now: SystemTime) -> Self {
        let hosts =
            resp.hosts
                .iter()
                .map(|h| {
                    let seen = h.last_seen.as_ref().and_then(from_timestamp);
                    Host {
                        host_id: h.host_id.clone(),
                        environment: h.environment.clone(),
                        state: enum_name(h.state().as_str_name(), "HOST_STATE_"),
                        last_seen: rfc3339(h.last_seen.as_ref()),
                        last_seen_age_seconds: seen
                            .map(|t| now.duration_since(t).unwrap_or_default().as_secs()),
                        container_count: h.container_count,
                        agent_version: h.agent_version.clone(),
                        labels: h
                            .labels
                            .iter()
                            .map(|l| (l.key.clone(), l.value.clone()))
                            .collect(),
                        host: h
                            .host
                            .as_ref()
                            .map_or_else(HostFacts::default, |f| HostFacts {
                                kernel_version: f.kernel_version.clone(),
                                os_id: f.os_id.clone(),
                                os_name: f.os_name.clone(),
                                os_version: f.os_version.clone(),
                                architecture: f.architecture.clone(),
                                hostname: f.hostname.clone(),
                            }),
                        engine: h.engine.as_ref().map_or_else(EngineFacts::default, |e| {
                            EngineFacts {
                                server_version: e.server_version.clone(),
                                api_version: e.api_version.clone(),
                                storage_driver: e.storage_driver.clone(),
                                cgroup_driver: e.cgroup_driver.clone(),
                                cgroup_version: e.cgroup_version.clone(),
                                operating_system: e.operating_system.clone(),
                                os_type: e.os_type.clone(),
                                architecture: e.architecture.clone(),
                            }
                        }),
                    }
                })
                .collect();
        Hosts {
            schema_version: SCHEMA_VERSION,
            hosts,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// e.g. `image_digest`, `kernel`, `env_missing_key`, `env_extra_key`, `env_value`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Empty for host-level kinds.
    pub service: String,
    /// The env key, for env kinds.
    pub key: String,
    pub a: Side,
    pub b: Side,
    /// What was compared.
    pub basis: String,
    pub summary: String,
}

/// One side of a finding.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub environment: String,
    pub hosts: Vec<String>,
    pub stale_hosts: Vec<String>,
    /// Digests, kernel versions, or env fingerprints (`fp:…`); allowlisted
    /// env values in clear. Never secret values.
    pub values: Vec<String>,
}

impl Finding {
    fn from_proto(f: &v1::Finding) -> Self {
        let side = |s: Option<&v1::FindingSide>| {
            s.map_or_else(
                || Side {
                    environment: String::new(),
                    hosts: Vec::new(),
                    stale_hosts: Vec::new(),
                    values: Vec::new(),
                },
                |s| Side {
                    environment: s.environment.clone(),
                    hosts: s.hosts.clone(),
                    stale_hosts: s.stale_hosts.clone(),
                    values: s.values.clone(),
                },
            )
        };
        Finding {
            kind: enum_name(f.kind().as_str_name(), "FINDING_KIND_"),
            severity: enum_name(f.severity().as_str_name(), "SEVERITY_"),
            service: f.service.clone(),
            key: f.key.clone(),
            a: side(f.a.as_ref()),
            b: side(f.b.as_ref()),
            basis: f.basis.clone(),
            summary: f.summary.clone(),
        }
    }
}

/// `diff` output.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema_version: u32,
    pub env_a: String,
    pub env_b: String,
    pub service: Option<String>,
    /// True when there is no finding.
    pub parity: bool,
    pub findings: Vec<Finding>,
}

impl Diff {
    /// From the wire.
    pub fn from_proto(
        env_a: String,
        env_b: String,
        service: Option<String>,
        resp: &v1::GetFindingsResponse,
    ) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        Diff {
            schema_version: SCHEMA_VERSION,
            env_a,
            env_b,
            service,
            parity: findings.is_empty(),
            findings,
        }
    }
}

/// `status` output.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema_version: u32,
    /// In promotion order.
    pub environments: Vec<String>,
    pub services: Vec<StatusRow>,
    /// True when there is no finding.
    pub parity: bool,
    pub findings: Vec<Finding>,
}

/// One service across environments.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub service: String,
    pub cells: Vec<StatusCell>,
}

/// One service in one environment.
#[derive(Debug, Serialize)]
pub struct StatusCell {
    pub environment: String,
    pub replicas: u32,
    pub digests: Vec<String>,
    pub versions: Vec<String>,
    pub drift: bool,
    pub stale: bool,
}

impl Status {
    /// From the wire.
    pub fn from_proto(resp: &v1::GetStatusResponse) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        Status {
            schema_version: SCHEMA_VERSION,
            environments: resp.environments.clone(),
            services: resp
                .rows
                .iter()
                .map(|r| StatusRow {
                    service: r.service.clone(),
                    cells: r
                        .cells
                        .iter()
                        .map(|c| StatusCell {
                            environment: c.environment.clone(),
                            replicas: c.replicas,
                            digests: c.digests.clone(),
                            versions: c.versions.clone(),
                            drift: c.drift,
                            stale: c.stale,
                        })
                        .collect(),
                })
                .collect(),
            parity: findings.is_empty(),
            findings,
        }
    }
}

/// `service` output.
#[derive(Debug, Serialize)]
pub struct Service {
    pub schema_version: u32,
    pub service: String,
    pub instances: Vec<Instance>,
}

/// One replica.
#[derive(Debug, Serialize)]
pub struct Instance {
    pub environment: String,
    pub host_id: String,
    pub host_state: String,
    pub container_name: String,
    pub container_id: String,
    pub image_reference: String,
    pub image_id: String,
    pub repo_digests: Vec<String>,
    pub started_at: Option<String>,
    /// Explicit env: names with fingerprints (and clear values only for
    /// allowlisted, non-secret names).
    pub explicit_env: Vec<EnvVar>,
}

/// One env entry.
#[derive(Debug, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Service {
    /// From the wire.
    pub fn from_proto(resp: &v1::GetServiceResponse) -> Self {
        let instances = resp
            .instances
            .iter()
            .map(|i| {
                let c = i.container.clone().unwrap_or_default();
                let img = c.image.clone().unwrap_or_default();
                Instance {
                    environment: i.environment.clone(),
                    host_id: i.host_id.clone(),
                    host_state: enum_name(i.host_state().as_str_name(), "HOST_STATE_"),
                    container_name: c.name.clone(),
                    container_id: c.id.clone(),
                    image_reference: img.reference,
                    image_id: img.image_id,
                    repo_digests: img.repo_digests,
                    started_at: rfc3339(c.started_at.as_ref()),
                    explicit_env: c
                        .explicit_env
                        .iter()
                        .map(|e| EnvVar {
                            name: e.name.clone(),
                            fingerprint: e.fingerprint.clone(),
                            value: e.value.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        Service {
            schema_version: SCHEMA_VERSION,
            service: resp.service.clone(),
            instances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_are_snake_case_without_prefix() {
        assert_eq!(
            enum_name(
                v1::FindingKind::EnvMissingKey.as_str_name(),
                "FINDING_KIND_"
            ),
            "env_missing_key"
        );
        assert_eq!(
            enum_name(
                v1::HostState::EngineUnreachable.as_str_name(),
                "HOST_STATE_"
            ),
            "engine_unreachable"
        );
        assert_eq!(
            enum_name(v1::Severity::Critical.as_str_name(), "SEVERITY_"),
            "critical"
        );
    }
}
