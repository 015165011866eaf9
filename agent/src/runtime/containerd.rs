//! containerd, read through the Kubernetes CRI (`runtime.v1`) on its unix
//! socket, as the kubelet sees it.
//!
//! A collection makes, in this order:
//! - `ListPodSandbox` once: pod labels live on the sandbox;
//! - `PodSandboxStatus(verbose)` once per sandbox the agent has not read yet
//!   (a sandbox's config never changes; the answers are kept while the
//!   sandbox is listed): the pod's network namespace and port mappings;
//! - `ListContainers(RUNNING)`: the ids (its `image_ref` is the image **id**,
//!   so digests come from the status calls);
//! - `ContainerStatus(verbose)` per container, [`INSPECT_CONCURRENCY`] at a
//!   time: its `info` holds the CRI config the kubelet passed;
//! - `ImageStatus(verbose)` once per distinct image: env, entrypoint, labels,
//!   layers and repo digests.
//!
//! Only these read calls are ever made (the deploy assets put an allowlist
//! in front of the socket). Pod sandboxes ("pause" containers) are not
//! containers in the CRI: they are never listed, so never services. Events
//! come from containerd's own event service ([`super::events`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use envparity_cri::channel::connect_unix;
use envparity_cri::runtime_v1::image_service_client::ImageServiceClient;
use envparity_cri::runtime_v1::runtime_service_client::RuntimeServiceClient;
use envparity_cri::runtime_v1::{
    ContainerFilter, ContainerState, ContainerStateValue, ContainerStatusRequest, ImageSpec,
    ImageStatusRequest, ListContainersRequest, ListPodSandboxRequest, PodSandbox,
    PodSandboxStatusRequest, StatusRequest, VersionRequest,
};
use envparity_proto::v1::{Container, EngineFacts};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use tonic::transport::Channel;

use super::changes::{Change, Changes};
use super::cri_call::{CRI_TIMEOUT, CriError};
use super::cri_container::{
    ContainerInfo, CriImage, SandboxFacts, container_from_status, parse_json,
};
use super::{ContainerRuntime, EventStream, RuntimeError, RuntimeKind};
use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::FleetKey;

/// containerd's socket where it usually is.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// How many `ContainerStatus` calls run at once.
pub const INSPECT_CONCURRENCY: usize = 4;

/// containerd's CRI on one socket.
#[derive(Debug, Clone)]
pub struct Containerd {
    socket: PathBuf,
    channel: Channel,
    /// What each sandbox read so far says ([`SandboxFacts`]), by sandbox id:
    /// its config never changes, so it is read once per sandbox.
    pods: Arc<Mutex<HashMap<String, Arc<SandboxFacts>>>>,
}

impl Containerd {
    /// Connects to the socket at `socket` and checks that a CRI answers
    /// there (`Version`): containerd without its CRI plugin (as Docker
    /// ships it) is not a runtime the agent can read.
    pub async fn connect(socket: &Path) -> Result<Self, CriError> {
        let channel = connect_unix(socket, CRI_TIMEOUT, Some(CRI_TIMEOUT)).await?;
        let runtime = Self {
            socket: socket.to_owned(),
            channel,
            pods: Arc::default(),
        };
        runtime.version().await?;
        Ok(runtime)
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn call_error(&self, operation: impl Into<String>) -> impl FnOnce(tonic::Status) -> CriError {
        let socket = self.socket.clone();
        let operation = operation.into();
        move |status| CriError::Call {
            socket,
            operation,
            status,
        }
    }

    fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    async fn version(&self) -> Result<envparity_cri::runtime_v1::VersionResponse, CriError> {
        Ok(self
            .runtime()
            .version(VersionRequest {
                version: "v1".to_owned(),
            })
            .await
            .map_err(self.call_error("Version"))?
            .into_inner())
    }

    /// The pod sandboxes by id.
    async fn sandboxes(&self) -> Result<HashMap<String, PodSandbox>, CriError> {
        let items = self
            .runtime()
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .map_err(self.call_error("ListPodSandbox"))?
            .into_inner()
            .items;
        Ok(items.into_iter().map(|s| (s.id.clone(), s)).collect())
    }

    /// What sandbox `id` says for its containers, read once. A sandbox whose
    /// status cannot be read (gone, refused by an older allowlist, JSON that
    /// does not parse) gives none: its containers report no network mode
    /// and no ports, and the collection goes on.
    async fn pod(&self, id: &str) -> Arc<SandboxFacts> {
        if let Some(facts) = self.pods.lock().expect("pod facts lock").get(id) {
            return Arc::clone(facts);
        }
        let facts = match self
            .runtime()
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_owned(),
                verbose: true,
            })
            .await
        {
            Ok(answer) => {
                let answer = answer.into_inner();
                SandboxFacts::new(answer.status.as_ref(), &answer.info).unwrap_or_else(|error| {
                    tracing::warn!(sandbox = %id, %error, "pod sandbox status unreadable; its containers report no network mode and no ports");
                    SandboxFacts::default()
                })
            }
            Err(status) => {
                let error = self.call_error(format!("PodSandboxStatus {id}"))(status);
                tracing::warn!(sandbox = %id, %error, "pod sandbox status unreadable; its containers report no network mode and no ports");
                SandboxFacts::default()
            }
        };
        let facts = Arc::new(facts);
        self.pods
            .lock()
            .expect("pod facts lock")
            .insert(id.to_owned(), Arc::clone(&facts));
        facts
    }

    /// The ids of the running containers.
    async fn running_ids(&self) -> Result<Vec<String>, CriError> {
        let request = ListContainersRequest {
            filter: Some(ContainerFilter {
                state: Some(ContainerStateValue {
                    state: ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        };
        let listed = self
            .runtime()
            .list_containers(request)
            .await
            .map_err(self.call_error("ListContainers"))?
            .into_inner()
            .containers;
        Ok(listed.into_iter().map(|c| c.id).collect())
    }

    /// One container's status and parsed verbose info; `None` when it is
    /// gone or no longer running.
    async fn status(
        &self,
        id: &str,
    ) -> Result<Option<(envparity_cri::runtime_v1::ContainerStatus, ContainerInfo)>, CriError> {
        let operation = format!("ContainerStatus {id}");
        let answer = match self
            .runtime()
            .container_status(ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: true,
            })
            .await
        {
            Ok(answer) => answer.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => return Err(self.call_error(operation)(status)),
        };
        let Some(status) = answer
            .status
            .filter(|s| s.state == ContainerState::ContainerRunning as i32)
        else {
            return Ok(None);
        };
        let info = match answer.info.get("info") {
            Some(json) => parse_json(json, &format!("container {id} info")).map_err(|source| {
                CriError::Json {
                    socket: self.socket.clone(),
                    operation,
                    source,
                }
            })?,
            None => ContainerInfo::default(),
        };
        Ok(Some((status, info)))
    }

    /// One image, by id or reference; `None` when it is gone.
    async fn image(&self, image: &str) -> Result<Option<CriImage>, CriError> {
        let operation = format!("ImageStatus {image}");
        let answer = ImageServiceClient::new(self.channel.clone())
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_owned(),
                    annotations: HashMap::new(),
                }),
                verbose: true,
            })
            .await
            .map_err(self.call_error(operation.clone()))?
            .into_inner();
        let Some(found) = answer.image else {
            tracing::warn!(image_id = %image, "image vanished; its env counts as explicit");
            return Ok(None);
        };
        CriImage::new(&found, &answer.info)
            .map(Some)
            .map_err(|source| CriError::Json {
                socket: self.socket.clone(),
                operation,
                source,
            })
    }
}

/// The sandbox of a container: by the id in its info, else (no sandbox id
/// there: not containerd) by its pod uid label.
fn sandbox_of<'a>(
    sandboxes: &'a HashMap<String, PodSandbox>,
    status: &envparity_cri::runtime_v1::ContainerStatus,
    info: &ContainerInfo,
) -> Option<&'a PodSandbox> {
    sandboxes.get(&info.sandbox_id).or_else(|| {
        let uid = status.labels.get("io.kubernetes.pod.uid")?;
        sandboxes
            .values()
            .find(|s| s.metadata.as_ref().is_some_and(|m| &m.uid == uid))
    })
}

/// containerd's verbose `Status` info (key `config`), as far as read.
#[derive(Debug, Default, Deserialize)]
struct CriPluginConfig {
    #[serde(default)]
    containerd: ContainerdConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerdConfig {
    #[serde(default)]
    snapshotter: String,
}

impl ContainerRuntime for Containerd {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Containerd
    }

    async fn engine_facts(&self) -> Result<EngineFacts, RuntimeError> {
        let version = self.version().await?;
        let status = self
            .runtime()
            .status(StatusRequest { verbose: true })
            .await
            .map_err(self.call_error("Status"))?
            .into_inner();
        // The snapshotter is containerd's storage driver; a config that
        // does not parse only loses it.
        let snapshotter = status
            .info
            .get("config")
            .and_then(|json| parse_json::<CriPluginConfig>(json, "runtime config").ok())
            .map(|c| c.containerd.snapshotter)
            .unwrap_or_default();
        Ok(EngineFacts {
            server_version: version.runtime_version,
            api_version: version.runtime_api_version,
            storage_driver: snapshotter,
            os_type: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            runtime: RuntimeKind::Containerd.name().to_owned(),
            ..EngineFacts::default()
        })
    }

    async fn collect(
        &self,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<Vec<Container>, RuntimeError> {
        let listed: Changes = self
            .running_ids()
            .await?
            .into_iter()
            .map(|id| (id, Change::Inspect))
            .collect();
        let mut containers = BTreeMap::new();
        self.refresh(&mut containers, &listed, key, policy).await?;
        Ok(containers.into_values().collect())
    }

    async fn refresh(
        &self,
        containers: &mut BTreeMap<String, Container>,
        changes: &Changes,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<(), RuntimeError> {
        let count = containers.len() + changes.to_inspect().count();
        let sandboxes = if changes.to_inspect().next().is_some() {
            self.sandboxes().await?
        } else {
            HashMap::new()
        };
        let statuses: Vec<_> = stream::iter(
            changes
                .to_inspect()
                .map(str::to_owned)
                .map(|id| async move { Ok::<_, CriError>((id.clone(), self.status(&id).await?)) }),
        )
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_collect()
        .await?;

        // Each sandbox read once, ever; those no longer listed are forgotten.
        let mut pods: HashMap<String, Arc<SandboxFacts>> = HashMap::new();
        for (_, found) in &statuses {
            if let Some((status, info)) = found
                && let Some(sandbox) = sandbox_of(&sandboxes, status, info)
                && !pods.contains_key(&sandbox.id)
            {
                let facts = self.pod(&sandbox.id).await;
                pods.insert(sandbox.id.clone(), facts);
            }
        }
        if !sandboxes.is_empty() {
            self.pods
                .lock()
                .expect("pod facts lock")
                .retain(|id, _| sandboxes.contains_key(id));
        }

        // Each distinct image once.
        let mut images: HashMap<String, Option<CriImage>> = HashMap::new();
        for (_, found) in &statuses {
            if let Some((status, _)) = found
                && !images.contains_key(&status.image_ref)
            {
                let image = self.image(&status.image_ref).await?;
                images.insert(status.image_ref.clone(), image);
            }
        }

        for id in changes.removed() {
            containers.remove(id);
        }
        for (id, found) in statuses {
            containers.remove(&id);
            let Some((status, info)) = found else {
                continue;
            };
            let sandbox = sandbox_of(&sandboxes, &status, &info);
            let image = images.get(&status.image_ref).and_then(Option::as_ref);
            let pod = sandbox.and_then(|s| pods.get(&s.id)).map(Arc::as_ref);
            if let Some(mut c) =
                container_from_status(&status, &info, sandbox, pod, image, key, policy)
            {
                crate::limit::fit_container(&mut c, count);
                containers.insert(c.id.clone(), c);
            }
        }
        // An image read now gives its current digests to every container
        // on it: one snapshot never shows two answers for one image.
        let by_id: HashMap<&str, &CriImage> = images
            .values()
            .flatten()
            .map(|image| (image.id.as_str(), image))
            .collect();
        for info in containers.values_mut().filter_map(|c| c.image.as_mut()) {
            if let Some(image) = by_id.get(info.image_id.as_str()) {
                info.repo_digests.clone_from(&image.repo_digests);
            }
        }
        Ok(())
    }

    fn events(&self, _since: SystemTime) -> Option<EventStream> {
        Some(super::events::subscribe(&self.socket))
    }
}
