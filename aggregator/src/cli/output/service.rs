//! `service`'s answer: one service's replicas in every environment.

use envparity_proto::v1;
use serde::Serialize;

use super::{Named, SCHEMA_VERSION, rfc3339, wire};

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
    pub host_state: Named<v1::HostState>,
    pub container_name: String,
    pub container_id: String,
    /// True when the container has no identity of its own (a one-off
    /// `docker run`): it is compared with no other environment.
    pub unmanaged: bool,
    pub image_reference: String,
    pub image_id: String,
    pub repo_digests: Vec<String>,
    pub started_at: Option<String>,
    /// Explicit env: names with fingerprints (and clear values only for
    /// allowlisted, non-secret names).
    pub explicit_env: Vec<EnvVar>,
    /// Mounted configuration files, key by key; absent when the replica's
    /// agent did not read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_files: Option<Vec<ConfigFile>>,
}

/// One configuration file of a replica.
#[derive(Debug, Serialize)]
pub struct ConfigFile {
    pub path: String,
    pub format: String,
    /// `read`, `not_read` or `not_parsed`.
    pub state: String,
    /// Why it was not read or not parsed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// In a secret mount: never in clear.
    pub secret: bool,
    /// The whole content's fingerprint.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// Its key paths, with fingerprints (and clear values only where
    /// allowlisted).
    pub keys: Vec<EnvVar>,
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
                    host_state: wire::host_state(i.host_state()),
                    container_name: c.name.clone(),
                    container_id: c.id.clone(),
                    unmanaged: c.unmanaged,
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
                    config_files: i.config_files.as_ref().map(config_files),
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

/// A replica's configuration files from the wire (`service` and `explain`).
pub(super) fn config_files(read: &v1::ContainerConfigFiles) -> Vec<ConfigFile> {
    read.files
        .iter()
        .map(|f| ConfigFile {
            path: f.path.clone(),
            format: f.format.clone(),
            state: match f.state() {
                v1::ConfigFileState::Read => "read",
                v1::ConfigFileState::NotRead => "not_read",
                v1::ConfigFileState::NotParsed => "not_parsed",
                v1::ConfigFileState::Unspecified => "unknown",
            }
            .to_owned(),
            reason: f.reason.clone(),
            secret: f.secret,
            fingerprint: f.fingerprint.clone(),
            keys: f
                .keys
                .iter()
                .map(|k| EnvVar {
                    name: k.path.clone(),
                    fingerprint: k.fingerprint.clone(),
                    value: k.value.clone(),
                })
                .collect(),
        })
        .collect()
}
