//! `hosts`' answer: the hosts that report, their freshness and facts; and
//! `hosts forget`'s, the host forgotten.

use std::collections::BTreeMap;
use std::time::SystemTime;

use envparity_proto::time::from_timestamp;
use envparity_proto::v1;
use serde::Serialize;

use super::{Named, SCHEMA_VERSION, rfc3339, wire};

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
    /// `fresh`, `stale`, `engine_unreachable` or `refused`.
    pub state: Named<v1::HostState>,
    /// Why the host's latest report was refused (state `refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_reason: Option<String>,
    /// When it was refused (state `refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_at: Option<String>,
    pub last_seen: Option<String>,
    /// Seconds since the aggregator last heard from the host.
    pub last_seen_age_seconds: Option<u64>,
    pub container_count: u32,
    /// Running containers the agent left out of its report.
    pub containers_dropped: u32,
    /// Its unmanaged containers by name (no identity of their own: a
    /// one-off `docker run`), sorted: counted in `container_count`, never
    /// compared across environments.
    pub unmanaged: Vec<String>,
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
    /// `docker`, `podman` or `containerd`; empty from older agents.
    pub runtime: String,
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
                        state: wire::host_state(h.state()),
                        refused_reason: (!h.refused_reason.is_empty())
                            .then(|| h.refused_reason.clone()),
                        refused_at: rfc3339(h.refused_at.as_ref()),
                        last_seen: rfc3339(h.last_seen.as_ref()),
                        last_seen_age_seconds: seen
                            .map(|t| now.duration_since(t).unwrap_or_default().as_secs()),
                        container_count: h.container_count,
                        containers_dropped: h.containers_dropped,
                        unmanaged: h.unmanaged.clone(),
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
                                runtime: e.runtime.clone(),
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

/// `hosts forget` output.
#[derive(Debug, Serialize)]
pub struct Forgotten {
    pub schema_version: u32,
    pub host_id: String,
    pub environment: String,
    /// Containers its last snapshot held.
    pub container_count: u32,
    pub last_seen: Option<String>,
}

impl Forgotten {
    /// From the wire.
    pub fn from_proto(r: &v1::ForgetHostResponse) -> Self {
        Forgotten {
            schema_version: SCHEMA_VERSION,
            host_id: r.host_id.clone(),
            environment: r.environment.clone(),
            container_count: r.container_count,
            last_seen: rfc3339(r.last_seen.as_ref()),
        }
    }
}
