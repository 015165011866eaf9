//! One container as a CRI runtime describes it, mapped to the contract.
//!
//! Pure: the answers of `ContainerStatus(verbose)`, `ImageStatus(verbose)`,
//! the container's pod sandbox and its `PodSandboxStatus(verbose)`
//! ([`SandboxFacts`]) in, a [`Container`] out. The verbose
//! `info` maps carry JSON, whose shape is the runtime's own:
//! - containerd puts the CRI config the kubelet passed under `config`
//!   (`envs` is exactly the pod spec's env, resolved, plus the service
//!   links) and the OCI spec under `runtimeSpec`;
//! - CRI-O has no `config`: the env then comes from `runtimeSpec.process.env`,
//!   which is merged (the image's env first, then the pod's, then
//!   `HOSTNAME`); the image's entries fall out of it as image-baked and
//!   `HOSTNAME` as injected, so the split still holds.
//!
//! The JSON carries env values in clear (secrets resolved from `valueFrom`
//! among them). They are fingerprinted like every value, and no error or
//! log line here ever quotes the JSON: parse errors say only where.

use std::collections::HashMap;

use envparity_cri::runtime_v1::{
    ContainerStatus, Image, NamespaceMode, PodSandbox, PodSandboxStatus,
};
use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{Container, ImageInfo, Mount, Port, RuntimeConfig};
use serde::Deserialize;

use super::docker::{OCI_LABEL_PREFIX, capabilities, sorted, sorted_labels};
use crate::clear_env::ClearEnvPolicy;
use crate::envsplit::{Injection, protect, split_env};
use crate::fingerprint::FleetKey;
use crate::identity::{K8S_CONTAINER_LABEL, is_unmanaged, service_identity};
use crate::secrets::redact_args;

/// What a CRI runtime injects: `HOSTNAME` and `container`, and the
/// kubelet's service links.
pub const CRI_INJECTION: Injection = Injection {
    engine: true,
    podman_defaults: false,
    service_links: true,
};

/// The verbose `info` of `ContainerStatus` (key `info`), as far as read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    /// The pod sandbox's id.
    #[serde(rename = "sandboxID", default)]
    pub sandbox_id: String,
    /// The CRI config the kubelet passed (containerd).
    #[serde(default)]
    pub config: Option<CriConfig>,
    /// The OCI runtime spec.
    #[serde(default)]
    pub runtime_spec: Option<RuntimeSpec>,
}

/// The CRI `ContainerConfig`, as containerd serialises it.
#[derive(Debug, Default, Deserialize)]
pub struct CriConfig {
    /// The image as asked for.
    #[serde(default)]
    pub image: Option<CriImageSpec>,
    /// The pod spec's `command` (the entrypoint).
    #[serde(default)]
    pub command: Vec<String>,
    /// The pod spec's `args` (the command).
    #[serde(default)]
    pub args: Vec<String>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: String,
    /// The env, in order.
    #[serde(default)]
    pub envs: Vec<KeyValue>,
    /// Linux settings.
    #[serde(default)]
    pub linux: Option<CriLinux>,
}

/// `ImageSpec`.
#[derive(Debug, Default, Deserialize)]
pub struct CriImageSpec {
    /// The reference.
    #[serde(default)]
    pub image: String,
}

/// One env entry.
#[derive(Debug, Default, Deserialize)]
pub struct KeyValue {
    /// Name.
    #[serde(default)]
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// `LinuxContainerConfig`.
#[derive(Debug, Default, Deserialize)]
pub struct CriLinux {
    /// The security context.
    #[serde(default)]
    pub security_context: Option<SecurityContext>,
}

/// `LinuxContainerSecurityContext`, as far as read.
#[derive(Debug, Default, Deserialize)]
pub struct SecurityContext {
    /// Capabilities.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Privileged.
    #[serde(default)]
    pub privileged: bool,
    /// Read-only root filesystem.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// The user name to run as.
    #[serde(default)]
    pub run_as_username: String,
    /// The user id to run as.
    #[serde(default)]
    pub run_as_user: Option<IntValue>,
}

/// `Capability`.
#[derive(Debug, Default, Deserialize)]
pub struct Capabilities {
    /// Added.
    #[serde(default)]
    pub add_capabilities: Vec<String>,
    /// Dropped.
    #[serde(default)]
    pub drop_capabilities: Vec<String>,
}

/// `Int64Value`.
#[derive(Debug, Default, Deserialize)]
pub struct IntValue {
    /// The value.
    #[serde(default)]
    pub value: i64,
}

/// The OCI runtime spec, as far as read.
#[derive(Debug, Default, Deserialize)]
pub struct RuntimeSpec {
    /// The process.
    #[serde(default)]
    pub process: Option<Process>,
}

/// The OCI process.
#[derive(Debug, Default, Deserialize)]
pub struct Process {
    /// The merged env.
    #[serde(default)]
    pub env: Vec<String>,
    /// The whole command line.
    #[serde(default)]
    pub args: Vec<String>,
}

/// What a pod's sandbox says for all its containers: the network they share
/// and the ports the pod maps. The CRI keeps both per pod, not per container
/// (the kubelet passes every container's ports in the sandbox's config), so
/// each container of a pod reports the pod's. A sandbox's config never
/// changes: it is read once (`PodSandboxStatus(verbose)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxFacts {
    /// `host` on the node's network namespace, `pod` on the pod's own; empty
    /// when the status does not say.
    pub network_mode: String,
    /// The pod's port mappings, sorted, as Docker's published ports are.
    pub ports: Vec<Port>,
}

/// The verbose `info` of `PodSandboxStatus` (key `info`), as far as read.
#[derive(Debug, Default, Deserialize)]
pub struct SandboxInfo {
    /// The sandbox config the kubelet passed (containerd).
    #[serde(default)]
    pub config: Option<SandboxConfig>,
}

/// The CRI `PodSandboxConfig`, as containerd serialises it.
#[derive(Debug, Default, Deserialize)]
pub struct SandboxConfig {
    /// The pod's port mappings.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// `PortMapping` (zero fields are left out of the JSON).
#[derive(Debug, Default, Deserialize)]
pub struct PortMapping {
    /// `0` TCP, `1` UDP, `2` SCTP.
    #[serde(default)]
    pub protocol: i32,
    /// Port in the container.
    #[serde(default)]
    pub container_port: i32,
    /// Port on the node (0: not mapped to the node).
    #[serde(default)]
    pub host_port: i32,
    /// Node address.
    #[serde(default)]
    pub host_ip: String,
}

impl SandboxFacts {
    /// From a `PodSandboxStatus(verbose)` answer: the status (its
    /// namespaces) and the verbose `info` (its config's port mappings).
    /// Without `info` (a runtime that gives none), no ports.
    pub fn new(
        status: Option<&PodSandboxStatus>,
        info: &HashMap<String, String>,
    ) -> Result<Self, JsonError> {
        let network = status
            .and_then(|s| s.linux.as_ref())
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref())
            .map(|o| o.network());
        let network_mode = match network {
            Some(NamespaceMode::Node) => "host",
            Some(NamespaceMode::Pod) => "pod",
            Some(NamespaceMode::Container | NamespaceMode::Target) | None => "",
        };
        let config = match info.get("info") {
            Some(json) => {
                let what = format!("pod sandbox {} info", status.map_or("", |s| s.id.as_str()));
                parse_json::<SandboxInfo>(json, &what)?.config
            }
            None => None,
        };
        let mut ports: Vec<Port> = config
            .map(|c| c.port_mappings)
            .unwrap_or_default()
            .into_iter()
            .map(|m| Port {
                container_port: u32::try_from(m.container_port).unwrap_or(0),
                protocol: match m.protocol {
                    1 => "udp",
                    2 => "sctp",
                    _ => "tcp",
                }
                .to_owned(),
                host_ip: m.host_ip,
                host_port: u32::try_from(m.host_port).unwrap_or(0),
            })
            .collect();
        ports.sort_by(|a, b| {
            (a.container_port, &a.protocol, &a.host_ip, a.host_port).cmp(&(
                b.container_port,
                &b.protocol,
                &b.host_ip,
                b.host_port,
            ))
        });
        ports.dedup();
        Ok(Self {
            network_mode: network_mode.to_owned(),
            ports,
        })
    }
}

/// The verbose `info` of `ImageStatus` (key `info`), as far as read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfoJson {
    /// The OCI image config.
    #[serde(default)]
    pub image_spec: Option<OciImage>,
}

/// An OCI image config document.
#[derive(Debug, Default, Deserialize)]
pub struct OciImage {
    /// Creation time, RFC 3339.
    #[serde(default)]
    pub created: Option<String>,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// The run configuration.
    #[serde(default)]
    pub config: OciConfig,
    /// The layers.
    #[serde(default)]
    pub rootfs: OciRootfs,
}

/// The run configuration of an image.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OciConfig {
    /// The env baked in.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// The entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The command.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The user.
    #[serde(default)]
    pub user: Option<String>,
    /// The labels.
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
}

/// The layers of an image.
#[derive(Debug, Default, Deserialize)]
pub struct OciRootfs {
    /// Layer digests, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One image as `ImageStatus(verbose)` described it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CriImage {
    /// Its id.
    pub id: String,
    /// Its registry digests.
    pub repo_digests: Vec<String>,
    /// Its config.
    pub spec: std::sync::Arc<OciImageView>,
}

/// The parts of an image config a container needs, owned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OciImageView {
    /// Creation time.
    pub created: String,
    /// Architecture.
    pub architecture: String,
    /// OS.
    pub os: String,
    /// Env.
    pub env: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// Cmd.
    pub cmd: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// User.
    pub user: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Layers.
    pub layers: Vec<String>,
}

/// JSON that did not parse; says where, never what.
#[derive(Debug, thiserror::Error)]
#[error("{what} is not the JSON expected (line {line}, column {column})")]
pub struct JsonError {
    /// What was parsed.
    pub what: String,
    /// Line of the error.
    pub line: usize,
    /// Column of the error.
    pub column: usize,
}

/// Parses the JSON `text` of `what`, with an error that never quotes it.
pub fn parse_json<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, JsonError> {
    serde_json::from_str(text).map_err(|e| JsonError {
        what: what.to_owned(),
        line: e.line(),
        column: e.column(),
    })
}

impl CriImage {
    /// From an `ImageStatus` answer: the image, and its verbose `info`.
    pub fn new(image: &Image, info: &HashMap<String, String>) -> Result<Self, JsonError> {
        let spec = match info.get("info") {
            Some(json) => parse_json::<ImageInfoJson>(json, &format!("image {} info", image.id))?
                .image_spec
                .unwrap_or_default(),
            None => OciImage::default(),
        };
        let c = spec.config;
        Ok(Self {
            id: image.id.clone(),
            repo_digests: sorted(Some(image.repo_digests.clone())),
            spec: std::sync::Arc::new(OciImageView {
                created: spec.created.unwrap_or_default(),
                architecture: spec.architecture,
                os: spec.os,
                env: c.env.unwrap_or_default(),
                entrypoint: c.entrypoint.unwrap_or_default(),
                cmd: c.cmd.unwrap_or_default(),
                working_dir: c.working_dir.unwrap_or_default(),
                user: c.user.unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                layers: spec.rootfs.diff_ids,
            }),
        })
    }
}

/// Maps one CRI container to the contract; `None` when it is not a service.
///
/// The pod's labels live on the sandbox: they are merged *under* the
/// container's own, then the identity rules run as on every runtime
/// ([`service_identity`]). The name is `<namespace>/<pod>/<container>`.
/// Entrypoint, command, working directory and user are the effective ones
/// (the image's unless the pod spec overrides them), as Docker reports them,
/// so the same image run the same way reads the same on both.
pub fn container_from_status(
    status: &ContainerStatus,
    info: &ContainerInfo,
    sandbox: Option<&PodSandbox>,
    pod: Option<&SandboxFacts>,
    image: Option<&CriImage>,
    key: &FleetKey,
    policy: &ClearEnvPolicy,
) -> Option<Container> {
    let mut labels: HashMap<String, String> = sandbox.map(|s| s.labels.clone()).unwrap_or_default();
    labels.extend(status.labels.clone());
    let container_name = status
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .or_else(|| labels.get(K8S_CONTAINER_LABEL).cloned())
        .unwrap_or_default();
    let name = match sandbox.and_then(|s| s.metadata.as_ref()) {
        Some(pod) => format!("{}/{}/{container_name}", pod.namespace, pod.name),
        None => container_name,
    };
    let service = service_identity(&labels, &name)?;

    let empty = OciImageView::default();
    let spec = image.map_or(&empty, |i| &*i.spec);
    let config = info.config.as_ref();
    let env: Vec<String> = match config {
        Some(config) => config
            .envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect(),
        None => info
            .runtime_spec
            .as_ref()
            .and_then(|s| s.process.as_ref())
            .map(|p| p.env.clone())
            .unwrap_or_default(),
    };
    let env = split_env(&env, &spec.env, CRI_INJECTION);

    let reference = config
        .and_then(|c| c.image.as_ref())
        .map(|i| i.image.clone())
        .filter(|r| !r.is_empty())
        .or_else(|| status.image.as_ref().map(|i| i.image.clone()))
        .unwrap_or_default();
    let image_id = match image {
        Some(image) => image.id.clone(),
        None => status.image_ref.clone(),
    };

    Some(Container {
        cut: Vec::new(),
        id: status.id.clone(),
        name,
        unmanaged: is_unmanaged(&service),
        service: Some(service),
        image: Some(ImageInfo {
            reference,
            image_id,
            repo_digests: image.map(|i| i.repo_digests.clone()).unwrap_or_default(),
            oci_labels: sorted_labels(&spec.labels, |k| k.starts_with(OCI_LABEL_PREFIX), key),
            created: spec.created.clone(),
            layers: spec.layers.clone(),
            os: spec.os.clone(),
            architecture: spec.architecture.clone(),
        }),
        explicit_env: protect(&env.explicit, key, policy),
        image_env: protect(&env.image, key, policy),
        injected_env: protect(&env.injected, key, policy),
        runtime: Some(runtime_config(status, info, pod, spec, key)),
        labels: sorted_labels(&status.labels, |_| true, key),
        started_at: (status.started_at > 0).then(|| {
            to_timestamp(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_nanos(status.started_at.unsigned_abs()),
            )
        }),
    })
}

/// The effective run configuration. Network mode and ports are the pod's
/// ([`SandboxFacts`]; empty without them). The restart policy is the
/// kubelet's, which restarts containers itself: the CRI has none, and it is
/// left empty rather than guessed.
fn runtime_config(
    status: &ContainerStatus,
    info: &ContainerInfo,
    pod: Option<&SandboxFacts>,
    image: &OciImageView,
    key: &FleetKey,
) -> RuntimeConfig {
    let config = info.config.as_ref();
    let security = config
        .and_then(|c| c.linux.as_ref())
        .and_then(|l| l.security_context.as_ref());
    let (entrypoint, cmd) = match config {
        // Kubernetes' rule: `command` replaces the entrypoint and drops the
        // image's cmd; `args` replaces the cmd.
        Some(c) if !c.command.is_empty() => (c.command.clone(), c.args.clone()),
        Some(c) if !c.args.is_empty() => (image.entrypoint.clone(), c.args.clone()),
        Some(_) => (image.entrypoint.clone(), image.cmd.clone()),
        None => (
            Vec::new(),
            info.runtime_spec
                .as_ref()
                .and_then(|s| s.process.as_ref())
                .map(|p| p.args.clone())
                .unwrap_or_default(),
        ),
    };
    let working_dir = config
        .map(|c| c.working_dir.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| image.working_dir.clone());
    let user = security
        .and_then(|s| {
            (!s.run_as_username.is_empty())
                .then(|| s.run_as_username.clone())
                .or_else(|| s.run_as_user.as_ref().map(|u| u.value.to_string()))
        })
        .unwrap_or_else(|| image.user.clone());
    let caps = security.and_then(|s| s.capabilities.as_ref());
    let mut mounts: Vec<Mount> = status
        .mounts
        .iter()
        .map(|m| Mount {
            r#type: "bind".to_owned(),
            destination: m.container_path.clone(),
            read_only: m.readonly,
        })
        .collect();
    mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
    RuntimeConfig {
        cmd: redact_args(&cmd, key),
        entrypoint: redact_args(&entrypoint, key),
        user,
        working_dir: super::working_dir(&working_dir),
        mounts,
        ports: pod.map(|p| p.ports.clone()).unwrap_or_default(),
        restart_policy: String::new(),
        privileged: security.is_some_and(|s| s.privileged),
        cap_add: capabilities(caps.map(|c| c.add_capabilities.as_slice())),
        cap_drop: capabilities(caps.map(|c| c.drop_capabilities.as_slice())),
        read_only_rootfs: security.is_some_and(|s| s.readonly_rootfs),
        network_mode: pod.map(|p| p.network_mode.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "cri_container_tests.rs"]
mod tests;
