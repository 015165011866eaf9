//! Reading the Docker engine: engine facts and running containers.
//!
//! The engine sits behind the narrow [`Engine`] trait so that the collection
//! rules (what is skipped, what is inspected how often, how fields map to the
//! contract) can be tested without a daemon; [`DockerEngine`] is the real
//! implementation over bollard, exercised by the integration tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{
    ContainerInspectResponse, EventMessage, HostConfig, ImageInspect, MountPoint, NetworkSettings,
    PortMap, SystemInfo, SystemVersion,
};
use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{Container, EngineFacts, ImageInfo, Label, Mount, Port, RuntimeConfig};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};

use super::changes::{Change, Changes};
use super::engine_http::{self, EngineHttp, HttpError, Line};
use crate::clear_env::ClearEnvPolicy;
use crate::envsplit::{protect, split_env};
use crate::fingerprint::FleetKey;
use crate::identity::service_identity;
use crate::secrets::{redact, redact_args};

/// How many container (and image) inspects run at once. Enough to hide
/// latency on a host with hundreds of containers, few enough not to load
/// a busy engine.
pub const INSPECT_CONCURRENCY: usize = 4;

/// Per-request timeout towards the engine (response headers; the events
/// stream's body is not limited). A hung engine must not stall reporting.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Label prefix of OCI image annotations that envparity reports.
pub const OCI_LABEL_PREFIX: &str = "org.opencontainers.image.";

/// Container event actions that can change what a snapshot contains.
pub const WATCHED_ACTIONS: &[&str] = &[
    "start", "stop", "die", "rename", "destroy", "pause", "unpause", "update",
];

/// A failed engine request, naming what was asked.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {error}")]
pub struct EngineError {
    /// What was requested, e.g. `inspect container 3f2a…`.
    pub operation: String,
    /// What the engine (or the connection to it) said.
    pub error: HttpError,
}

impl EngineError {
    fn new(operation: impl Into<String>, error: HttpError) -> Self {
        Self {
            operation: operation.into(),
            error,
        }
    }

    fn is_not_found(&self) -> bool {
        self.error.is_not_found()
    }
}

/// The engine operations a collection needs. Inspect methods answer
/// `Ok(None)` for an object that no longer exists (HTTP 404): containers
/// come and go between listing and inspecting, and that is not an error.
pub trait Engine: Sync {
    /// `GET /version`.
    fn version(&self) -> impl Future<Output = Result<SystemVersion, EngineError>> + Send;
    /// `GET /info`.
    fn info(&self) -> impl Future<Output = Result<SystemInfo, EngineError>> + Send;
    /// The ids of the running containers (`GET /containers/json`, never
    /// with sizes: computing them walks every container's filesystem).
    fn running_container_ids(
        &self,
    ) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send;
    /// `GET /containers/{id}/json`.
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerInspectResponse>, EngineError>> + Send;
    /// `GET /images/{id}/json`.
    fn inspect_image(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ImageInspect>, EngineError>> + Send;
}

/// The real engine, over the agent's own bounded HTTP client
/// ([`EngineHttp`]).
#[derive(Debug, Clone)]
pub struct DockerEngine {
    http: EngineHttp,
}

/// A boxed stream of container events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<EventMessage, EngineError>> + Send>>;

impl DockerEngine {
    /// Connects to the engine at `addr` (`unix:///path`, `tcp://host:port` or
    /// `http://host:port`) and negotiates the API version, so that older
    /// engines (which refuse a newer client version) work too.
    pub async fn connect(addr: &str) -> Result<Self, EngineError> {
        let http = EngineHttp::new(addr, ENGINE_TIMEOUT)
            .map_err(|e| EngineError::new("connect", e))?
            .negotiate()
            .await
            .map_err(|e| EngineError::new("negotiate API version", e))?;
        Ok(Self { http })
    }

    /// The stream of container events that can change a snapshot, starting
    /// at `since` (the engine replays buffered events from then on, so
    /// nothing between a collection and the subscription is missed). An
    /// event too long to read ([`engine_http::MAX_EVENT_BYTES`]) comes out
    /// as an event naming no container, which makes the agent read every
    /// container again.
    pub fn container_events(&self, since: SystemTime) -> EventStream {
        let since = since
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let filters = serde_json::json!({
            "type": ["container"],
            "event": WATCHED_ACTIONS,
        });
        let path = format!(
            "/events?since={since}&filters={}",
            percent_encode(&filters.to_string())
        );
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let http = self.http.clone();
        tokio::spawn(async move { http.stream_lines(&path, &tx).await });
        let events = tokio_stream::wrappers::ReceiverStream::new(rx).map(|line| match line {
            Ok(Line::Record(bytes)) => serde_json::from_slice::<EventMessage>(&bytes).map_err(|e| {
                EngineError::new("watch container events", HttpError::Malformed(e.to_string()))
            }),
            Ok(Line::Skipped) => {
                tracing::warn!(
                    max_bytes = engine_http::MAX_EVENT_BYTES,
                    "an engine event over the agent's limit was skipped; reading every container again"
                );
                // Names no container: the agent reads them all.
                Ok(EventMessage::default())
            }
            Err(e) => Err(EngineError::new("watch container events", e)),
        });
        Box::pin(events)
    }
}

/// `s` percent-encoded for a query string (everything but unreserved
/// characters).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Maps a 404 to `None`.
fn found<T>(result: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Engine for DockerEngine {
    async fn version(&self) -> Result<SystemVersion, EngineError> {
        self.http
            .get_json("/version", engine_http::MAX_FACTS_BYTES)
            .await
            .map_err(|e| EngineError::new("version", e))
    }

    async fn info(&self) -> Result<SystemInfo, EngineError> {
        self.http
            .get_json("/info", engine_http::MAX_FACTS_BYTES)
            .await
            .map_err(|e| EngineError::new("info", e))
    }

    async fn running_container_ids(&self) -> Result<Vec<String>, EngineError> {
        // `status=running` also leaves out paused containers: they serve
        // nothing, and pause/unpause events re-collect.
        self.http
            .running_container_ids()
            .await
            .map_err(|e| EngineError::new("list containers", e))
    }

    async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, EngineError> {
        let path = format!("/containers/{}/json", percent_encode(id));
        match self
            .http
            .get_json(&path, engine_http::MAX_ANSWER_BYTES)
            .await
        {
            // Too large to read: not reported, like a container that went,
            // rather than failing the whole collection (and so the host).
            Err(HttpError::TooLarge { cap }) => {
                tracing::warn!(
                    container = %id.escape_debug(),
                    max_bytes = cap,
                    "the engine's description of this container is over the agent's limit: not reported"
                );
                Ok(None)
            }
            other => {
                found(other.map_err(|e| EngineError::new(format!("inspect container {id}"), e)))
            }
        }
    }

    async fn inspect_image(&self, id: &str) -> Result<Option<ImageInspect>, EngineError> {
        let path = format!("/images/{}/json", percent_encode(id));
        found(
            self.http
                .get_json(&path, engine_http::MAX_ANSWER_BYTES)
                .await
                .map_err(|e| EngineError::new(format!("inspect image {id}"), e)),
        )
    }
}

/// Reads the engine facts.
pub async fn collect_engine_facts<E: Engine>(engine: &E) -> Result<EngineFacts, EngineError> {
    let version = engine.version().await?;
    let info = engine.info().await?;
    Ok(engine_facts(&version, &info))
}

/// The engine facts from `/version` and `/info`.
pub fn engine_facts(version: &SystemVersion, info: &SystemInfo) -> EngineFacts {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    EngineFacts {
        server_version: version
            .version
            .clone()
            .or_else(|| info.server_version.clone())
            .unwrap_or_default(),
        api_version: text(&version.api_version),
        storage_driver: text(&info.driver),
        cgroup_driver: info
            .cgroup_driver
            .map(|d| d.to_string())
            .unwrap_or_default(),
        cgroup_version: info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        operating_system: text(&info.operating_system),
        os_type: text(&info.os_type),
        architecture: text(&info.architecture),
        kernel_version: text(&info.kernel_version),
    }
}

/// Reads every running container that is a service, sorted by id.
///
/// Containers are inspected [`INSPECT_CONCURRENCY`] at a time; each distinct
/// image is inspected once. A container or image that disappears meanwhile
/// (404) is skipped, as is a container that stopped before its inspect; any
/// other engine error fails the whole collection, because a partial list
/// would read as "these containers stopped".
pub async fn collect_containers<E: Engine>(
    engine: &E,
    key: &FleetKey,
    policy: &ClearEnvPolicy,
) -> Result<Vec<Container>, EngineError> {
    let listed: Changes = engine
        .running_container_ids()
        .await?
        .into_iter()
        .map(|id| (id, Change::Inspect))
        .collect();
    let mut containers = BTreeMap::new();
    refresh_containers(engine, &mut containers, &listed, key, policy).await?;
    Ok(containers.into_values().collect())
}

/// Brings `containers` (the reported containers by id, from an earlier
/// reading) up to date with `changes`: removed containers are dropped, the
/// others inspected again (with their images) and kept, replaced or dropped
/// by what the engine says now, exactly as [`collect_containers`] would
/// judge them.
///
/// An image's repo digests are not part of its id and can change (a push,
/// a pull by digest): every container on an image inspected here takes its
/// current digests, so one snapshot never shows two answers for one image.
///
/// On an error `containers` is left as it was: nothing is changed before
/// every read succeeded.
pub async fn refresh_containers<E: Engine>(
    engine: &E,
    containers: &mut BTreeMap<String, Container>,
    changes: &Changes,
    key: &FleetKey,
    policy: &ClearEnvPolicy,
) -> Result<(), EngineError> {
    // What the host will run once this is applied (at most): the share of
    // a report each container can have.
    let count = containers.len() + changes.to_inspect().count();
    // Each image is inspected once per refresh, however many containers run
    // it: one snapshot never shows two answers for one image.
    let images: ImageCache = std::sync::Mutex::default();
    let images = &images;
    // Each container is inspected, converted and cut down to its share as
    // it arrives: only the cut-down form is held, never every inspect
    // answer at once (100 containers with 500 KB of labels each would be
    // 50 MB of answers). Futures are built from owned ids by a plain
    // iterator: closures over borrowed ids inside stream combinators make
    // the future !Send.
    let reads = changes
        .to_inspect()
        .map(str::to_owned)
        .map(|id| async move {
            let Some(c) = engine.inspect_container(&id).await?.filter(is_listed) else {
                return Ok::<_, EngineError>((id, None));
            };
            let image = match c.image.as_deref() {
                Some(image_id) => image_of(engine, images, image_id).await?,
                None => None,
            };
            let container = container_from_inspect(&c, image.as_ref(), key, policy).map(|mut x| {
                crate::limit::fit_container(&mut x, count);
                x
            });
            Ok((id, container))
        });
    let read: Vec<(String, Option<Container>)> = stream::iter(reads)
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_collect()
        .await?;

    for id in changes.removed() {
        containers.remove(id);
    }
    for (id, container) in read {
        containers.remove(&id);
        if let Some(container) = container {
            containers.insert(container.id.clone(), container);
        }
    }
    let images = images
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for info in containers.values_mut().filter_map(|c| c.image.as_mut()) {
        if let Some(Some(image)) = images.get(&info.image_id).and_then(|cell| cell.get()) {
            info.repo_digests = sorted(image.repo_digests.clone());
        }
    }
    Ok(())
}

/// The images inspected during one refresh, by id; each inspected once.
type ImageCache =
    std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::OnceCell<Option<ImageInspect>>>>>;

/// Image `id`, inspected on first use in this refresh; `None` when it
/// vanished (its env then counts as explicit).
async fn image_of<E: Engine>(
    engine: &E,
    cache: &ImageCache,
    id: &str,
) -> Result<Option<ImageInspect>, EngineError> {
    let cell = std::sync::Arc::clone(
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default(),
    );
    let image = cell
        .get_or_try_init(|| async {
            let image = engine.inspect_image(id).await?;
            if image.is_none() {
                tracing::warn!(image_id = %id, "image vanished; its env counts as explicit");
            }
            Ok::<_, EngineError>(image)
        })
        .await?;
    Ok(image.clone())
}

/// Whether an inspected container is one [`Engine::running_container_ids`]
/// lists (`status=running`): running, neither paused nor restarting. Reading
/// one container must judge it as listing them all would.
fn is_listed(c: &ContainerInspectResponse) -> bool {
    c.state.as_ref().is_some_and(|s| {
        s.running == Some(true) && s.paused != Some(true) && s.restarting != Some(true)
    })
}

/// Maps one inspected container (and its image, if known) to the contract.
/// `None` when the container is not a service (see
/// [`service_identity`]).
pub fn container_from_inspect(
    c: &ContainerInspectResponse,
    image: Option<&ImageInspect>,
    key: &FleetKey,
    policy: &ClearEnvPolicy,
) -> Option<Container> {
    let no_labels = HashMap::new();
    let name = c.name.as_deref().unwrap_or_default();
    let name = name.strip_prefix('/').unwrap_or(name);
    let config = c.config.as_ref();
    let container_labels = config.and_then(|c| c.labels.as_ref()).unwrap_or(&no_labels);
    let service = service_identity(container_labels, name)?;

    let image_config = image.and_then(|i| i.config.as_ref());
    let env = split_env(
        config.and_then(|c| c.env.as_deref()).unwrap_or_default(),
        image_config
            .and_then(|c| c.env.as_deref())
            .unwrap_or_default(),
    );
    let image_labels = image_config
        .and_then(|c| c.labels.as_ref())
        .unwrap_or(&no_labels);

    Some(Container {
        cut: Vec::new(),
        id: c.id.clone().unwrap_or_default(),
        name: name.to_owned(),
        service: Some(service),
        image: Some(ImageInfo {
            reference: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            image_id: c.image.clone().unwrap_or_default(),
            repo_digests: sorted(image.and_then(|i| i.repo_digests.clone())),
            oci_labels: sorted_labels(image_labels, |k| k.starts_with(OCI_LABEL_PREFIX), key),
            created: image.and_then(|i| i.created.clone()).unwrap_or_default(),
            layers: image
                .and_then(|i| i.root_fs.as_ref())
                .and_then(|r| r.layers.clone())
                .unwrap_or_default(),
            os: image.and_then(|i| i.os.clone()).unwrap_or_default(),
            architecture: image
                .and_then(|i| i.architecture.clone())
                .unwrap_or_default(),
        }),
        explicit_env: protect(&env.explicit, key, policy),
        image_env: protect(&env.image, key, policy),
        runtime: Some(runtime_config(c, key)),
        labels: sorted_labels(container_labels, |_| true, key),
        started_at: c
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .map(to_timestamp),
    })
}

/// The runtime configuration; credentials in the command line and the
/// entrypoint are replaced by stand-ins ([`redact_args`]).
fn runtime_config(c: &ContainerInspectResponse, key: &FleetKey) -> RuntimeConfig {
    let config = c.config.as_ref();
    let host = c.host_config.as_ref();
    let args = |a: Option<&Vec<String>>| redact_args(a.map_or(&[][..], Vec::as_slice), key);
    RuntimeConfig {
        cmd: args(config.and_then(|c| c.cmd.as_ref())),
        entrypoint: args(config.and_then(|c| c.entrypoint.as_ref())),
        user: config.and_then(|c| c.user.clone()).unwrap_or_default(),
        working_dir: config
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default(),
        mounts: mounts(c.mounts.as_deref().unwrap_or_default()),
        ports: ports(host, c.network_settings.as_ref()),
        restart_policy: host
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        privileged: host.and_then(|h| h.privileged).unwrap_or(false),
        cap_add: capabilities(host.and_then(|h| h.cap_add.as_deref())),
        cap_drop: capabilities(host.and_then(|h| h.cap_drop.as_deref())),
        read_only_rootfs: host.and_then(|h| h.readonly_rootfs).unwrap_or(false),
        network_mode: host
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default(),
    }
}

/// Capabilities in one spelling, sorted: upper case with the `CAP_` prefix
/// (`ALL` stays `ALL`). The engine stores what the client sent, and Docker
/// CLIs differ (`net_raw`, `NET_RAW`, `CAP_NET_RAW`); the same capability
/// spelled differently on two hosts is not drift.
fn capabilities(caps: Option<&[String]>) -> Vec<String> {
    let mut caps: Vec<String> = caps
        .unwrap_or_default()
        .iter()
        .map(|cap| {
            let cap = cap.trim().to_ascii_uppercase();
            if cap == "ALL" || cap.starts_with("CAP_") {
                cap
            } else {
                format!("CAP_{cap}")
            }
        })
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

fn mounts(points: &[MountPoint]) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = points
        .iter()
        .map(|m| Mount {
            r#type: m.typ.clone().unwrap_or_default(),
            destination: m.destination.clone().unwrap_or_default(),
            read_only: !m.rw.unwrap_or(true),
        })
        .collect();
    mounts.sort_by(|a, b| (&a.destination, &a.r#type).cmp(&(&b.destination, &b.r#type)));
    mounts
}

/// Published ports. The declared bindings (`HostConfig.PortBindings`) come
/// first because they are what an operator chose and are stable across
/// hosts, unlike the live ones (a random host port, or one entry per IP
/// family). Ports only known live (`NetworkSettings.Ports`: exposed, or
/// published with `-P`) are added with their live bindings, or with host
/// port 0 when unpublished.
fn ports(host: Option<&HostConfig>, network: Option<&NetworkSettings>) -> Vec<Port> {
    let declared = host.and_then(|h| h.port_bindings.as_ref());
    let live = network.and_then(|n| n.ports.as_ref());
    let mut ports = Vec::new();
    let mut add = |map: &PortMap, skip: Option<&PortMap>| {
        for (key, bindings) in map {
            if skip.is_some_and(|s| s.contains_key(key)) {
                continue;
            }
            let Some((container_port, protocol)) = parse_port_key(key) else {
                continue;
            };
            let port = |host_ip: &str, host_port: u32| Port {
                container_port,
                protocol: protocol.to_owned(),
                host_ip: host_ip.to_owned(),
                host_port,
            };
            match bindings.as_deref() {
                Some(bindings) if !bindings.is_empty() => {
                    for b in bindings {
                        let host_port = b
                            .host_port
                            .as_deref()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(0);
                        ports.push(port(b.host_ip.as_deref().unwrap_or_default(), host_port));
                    }
                }
                _ => ports.push(port("", 0)),
            }
        }
    };
    if let Some(declared) = declared {
        add(declared, None);
    }
    if let Some(live) = live {
        add(live, declared);
    }
    ports.sort_by(|a, b| {
        (a.container_port, &a.protocol, &a.host_ip, a.host_port).cmp(&(
            b.container_port,
            &b.protocol,
            &b.host_ip,
            b.host_port,
        ))
    });
    ports.dedup();
    ports
}

/// Parses Docker's `"80/tcp"` port key (protocol defaults to `tcp`).
fn parse_port_key(key: &str) -> Option<(u32, &str)> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, protocol))
}

fn sorted(items: Option<Vec<String>>) -> Vec<String> {
    let mut items = items.unwrap_or_default();
    items.sort();
    items
}

/// The labels `keep` selects, sorted by key, with credentials in their values
/// replaced by stand-ins ([`redact`]).
fn sorted_labels(
    map: &HashMap<String, String>,
    keep: impl Fn(&str) -> bool,
    key: &FleetKey,
) -> Vec<Label> {
    let mut labels: Vec<Label> = map
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| Label {
            key: k.clone(),
            value: redact(v, key, k),
        })
        .collect();
    labels.sort_by(|a, b| a.key.cmp(&b.key));
    labels
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bollard::models::{
        ContainerConfig, ContainerState, ImageConfig, ImageInspectRootFs, PortBinding,
        RestartPolicy, RestartPolicyNameEnum,
    };
    use envparity_proto::v1::ServiceSource;

    use super::*;

    fn key() -> FleetKey {
        FleetKey::from_bytes(*b"0123456789abcdef")
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn image(id: &str, env: &[&str]) -> ImageInspect {
        ImageInspect {
            id: Some(s(id)),
            repo_digests: Some(vec![s("b/app@sha256:2"), s("a/app@sha256:1")]),
            created: Some(s("2024-01-01T00:00:00Z")),
            os: Some(s("linux")),
            architecture: Some(s("amd64")),
            root_fs: Some(ImageInspectRootFs {
                typ: s("layers"),
                layers: Some(vec![s("sha256:bottom"), s("sha256:top")]),
            }),
            config: Some(ImageConfig {
                env: Some(env.iter().map(|e| s(e)).collect()),
                labels: Some(HashMap::from([
                    (s("org.opencontainers.image.version"), s("2.3.0")),
                    (s("org.opencontainers.image.revision"), s("abc")),
                    (s("maintainer"), s("someone")),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container(id: &str, image_id: &str, env: &[&str]) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some(s(id)),
            name: Some(format!("/{id}-name")),
            image: Some(s(image_id)),
            state: Some(ContainerState {
                running: Some(true),
                started_at: Some(s("2024-05-01T10:00:00.5Z")),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some(s("registry/app:2.3.0")),
                env: Some(env.iter().map(|e| s(e)).collect()),
                cmd: Some(vec![s("/bin/sleep"), s("3600")]),
                labels: Some(HashMap::from([(s("z"), s("1")), (s("a"), s("2"))])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some(s("none")),
                cap_add: Some(vec![s("NET_ADMIN"), s("CHOWN")]),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(3),
                }),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some(s("volume")),
                    destination: Some(s("/z")),
                    rw: Some(true),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some(s("bind")),
                    destination: Some(s("/a")),
                    rw: Some(false),
                    source: Some(s("/host/specific")),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn maps_an_inspected_container_to_the_contract() {
        let policy = ClearEnvPolicy::new(["FOO"]);
        let c = container("c1", "sha256:img", &["BAKED=1", "FOO=bar"]);
        let img = image("sha256:img", &["BAKED=1"]);
        let out = container_from_inspect(&c, Some(&img), &key(), &policy).unwrap();

        assert_eq!(out.name, "c1-name", "leading / stripped");
        let service = out.service.unwrap();
        assert_eq!(
            (service.name.as_str(), service.source()),
            ("c1-name", ServiceSource::ContainerName)
        );
        let names = |v: &[envparity_proto::v1::EnvVar]| {
            v.iter().map(|e| e.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&out.explicit_env), ["FOO"]);
        assert_eq!(out.explicit_env[0].value.as_deref(), Some("bar"));
        assert_eq!(names(&out.image_env), ["BAKED"]);
        assert_eq!(out.image_env[0].value, None, "BAKED is not allowlisted");

        let info = out.image.unwrap();
        assert_eq!(info.reference, "registry/app:2.3.0");
        assert_eq!(info.image_id, "sha256:img");
        assert_eq!(info.repo_digests, ["a/app@sha256:1", "b/app@sha256:2"]);
        let oci: Vec<_> = info.oci_labels.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(
            oci,
            [
                "org.opencontainers.image.revision",
                "org.opencontainers.image.version"
            ]
        );
        assert_eq!(
            info.layers,
            ["sha256:bottom", "sha256:top"],
            "bottom first, as given"
        );
        assert_eq!(
            (info.os.as_str(), info.architecture.as_str()),
            ("linux", "amd64")
        );

        let rt = out.runtime.unwrap();
        assert_eq!(rt.cmd, ["/bin/sleep", "3600"]);
        assert_eq!(rt.cap_add, ["CAP_CHOWN", "CAP_NET_ADMIN"]);
        assert_eq!(rt.restart_policy, "on-failure");
        assert_eq!(rt.network_mode, "none");
        let mounts: Vec<_> = rt
            .mounts
            .iter()
            .map(|m| (m.destination.as_str(), m.r#type.as_str(), m.read_only))
            .collect();
        assert_eq!(mounts, [("/a", "bind", true), ("/z", "volume", false)]);

        let labels: Vec<_> = out.labels.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(labels, ["a", "z"]);
        let started = out.started_at.unwrap();
        assert_eq!(
            (started.seconds, started.nanos),
            (1_714_557_600, 500_000_000)
        );
    }

    #[test]
    fn capabilities_are_spelled_one_way_and_sorted() {
        let caps = [s("net_raw"), s("CAP_CHOWN"), s("NET_RAW"), s("all")];
        assert_eq!(
            capabilities(Some(&caps)),
            ["ALL", "CAP_CHOWN", "CAP_NET_RAW"]
        );
        assert!(capabilities(None).is_empty());
    }

    #[test]
    fn declared_port_bindings_win_and_unpublished_live_ports_get_zero() {
        let host = HostConfig {
            port_bindings: Some(HashMap::from([(
                s("80/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(s("")),
                    host_port: Some(s("8080")),
                }]),
            )])),
            ..Default::default()
        };
        let live = NetworkSettings {
            ports: Some(HashMap::from([
                (
                    s("80/tcp"),
                    Some(vec![
                        PortBinding {
                            host_ip: Some(s("0.0.0.0")),
                            host_port: Some(s("8080")),
                        },
                        PortBinding {
                            host_ip: Some(s("::")),
                            host_port: Some(s("8080")),
                        },
                    ]),
                ),
                (s("53/udp"), None),
            ])),
            ..Default::default()
        };
        let got: Vec<_> = ports(Some(&host), Some(&live))
            .into_iter()
            .map(|p| (p.container_port, p.protocol, p.host_ip, p.host_port))
            .collect();
        assert_eq!(got, [(53, s("udp"), s(""), 0), (80, s("tcp"), s(""), 8080)]);
    }

    #[test]
    fn pause_containers_are_not_reported() {
        let mut c = container("c1", "sha256:img", &[]);
        c.config.as_mut().unwrap().labels = Some(HashMap::from([(
            s("io.kubernetes.container.name"),
            s("POD"),
        )]));
        assert_eq!(
            container_from_inspect(&c, None, &key(), &ClearEnvPolicy::default()),
            None
        );
    }

    #[test]
    fn engine_facts_map_version_and_info() {
        use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
        let version = SystemVersion {
            version: Some(s("20.10.24")),
            api_version: Some(s("1.41")),
            ..Default::default()
        };
        let info = SystemInfo {
            driver: Some(s("vfs")),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(SystemInfoCgroupVersionEnum::_2),
            operating_system: Some(s("Debian GNU/Linux 12")),
            os_type: Some(s("linux")),
            architecture: Some(s("x86_64")),
            kernel_version: Some(s("6.1.0")),
            ..Default::default()
        };
        let facts = engine_facts(&version, &info);
        assert_eq!(facts.server_version, "20.10.24");
        assert_eq!(facts.api_version, "1.41");
        assert_eq!(facts.storage_driver, "vfs");
        assert_eq!(facts.cgroup_driver, "cgroupfs");
        assert_eq!(facts.cgroup_version, "2");
        assert_eq!(facts.operating_system, "Debian GNU/Linux 12");
        assert_eq!(facts.os_type, "linux");
        assert_eq!(facts.architecture, "x86_64");
        assert_eq!(facts.kernel_version, "6.1.0");
    }

    /// An in-memory engine that records which images were inspected.
    #[derive(Default)]
    struct FakeEngine {
        listed: Vec<&'static str>,
        containers: HashMap<&'static str, ContainerInspectResponse>,
        images: HashMap<&'static str, ImageInspect>,
        fail_inspect: Option<&'static str>,
        image_inspects: Mutex<Vec<String>>,
    }

    fn server_error() -> HttpError {
        HttpError::Status {
            status: 500,
            message: s("boom"),
        }
    }

    impl Engine for FakeEngine {
        async fn version(&self) -> Result<SystemVersion, EngineError> {
            Ok(SystemVersion::default())
        }
        async fn info(&self) -> Result<SystemInfo, EngineError> {
            Ok(SystemInfo::default())
        }
        async fn running_container_ids(&self) -> Result<Vec<String>, EngineError> {
            Ok(self.listed.iter().map(|id| s(id)).collect())
        }
        async fn inspect_container(
            &self,
            id: &str,
        ) -> Result<Option<ContainerInspectResponse>, EngineError> {
            if self.fail_inspect == Some(id) {
                return Err(EngineError::new(
                    format!("inspect container {id}"),
                    server_error(),
                ));
            }
            Ok(self.containers.get(id).cloned())
        }
        async fn inspect_image(&self, id: &str) -> Result<Option<ImageInspect>, EngineError> {
            self.image_inspects.lock().unwrap().push(s(id));
            Ok(self.images.get(id).cloned())
        }
    }

    fn fake() -> FakeEngine {
        let mut stopped = container("c4", "sha256:a", &[]);
        stopped.state.as_mut().unwrap().running = Some(false);
        FakeEngine {
            // c3 vanishes between list and inspect; c4 stopped meanwhile.
            listed: vec!["c2", "c1", "c3", "c4"],
            containers: HashMap::from([
                ("c1", container("c1", "sha256:a", &["X=1"])),
                ("c2", container("c2", "sha256:a", &["X=1"])),
                ("c4", stopped),
            ]),
            images: HashMap::from([("sha256:a", image("sha256:a", &["X=1"]))]),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn vanished_and_stopped_containers_are_skipped_and_the_rest_sorted() {
        let engine = fake();
        let got = collect_containers(&engine, &key(), &ClearEnvPolicy::default())
            .await
            .unwrap();
        let ids: Vec<_> = got.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c1", "c2"]);
        assert!(
            got[0].explicit_env.is_empty(),
            "X=1 is baked into the image"
        );
    }

    #[tokio::test]
    async fn each_distinct_image_is_inspected_once() {
        let engine = fake();
        collect_containers(&engine, &key(), &ClearEnvPolicy::default())
            .await
            .unwrap();
        assert_eq!(*engine.image_inspects.lock().unwrap(), ["sha256:a"]);
    }

    #[tokio::test]
    async fn a_failed_inspect_fails_the_collection_naming_the_container() {
        let engine = FakeEngine {
            fail_inspect: Some("c2"),
            ..fake()
        };
        let err = collect_containers(&engine, &key(), &ClearEnvPolicy::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inspect container c2"), "{err}");
    }

    fn by_id(containers: Vec<Container>) -> BTreeMap<String, Container> {
        containers.into_iter().map(|c| (c.id.clone(), c)).collect()
    }

    #[tokio::test]
    async fn refreshing_the_named_containers_agrees_with_reading_them_all() {
        let policy = ClearEnvPolicy::default();
        // Before: c1, c2, c3 and c4 run on image a.
        let before = FakeEngine {
            listed: vec!["c1", "c2", "c3", "c4"],
            containers: HashMap::from([
                ("c1", container("c1", "sha256:a", &["X=1"])),
                ("c2", container("c2", "sha256:a", &[])),
                ("c3", container("c3", "sha256:a", &[])),
                ("c4", container("c4", "sha256:a", &[])),
            ]),
            images: HashMap::from([("sha256:a", image("sha256:a", &["X=1"]))]),
            ..Default::default()
        };
        let mut containers = by_id(collect_containers(&before, &key(), &policy).await.unwrap());

        // After: c1 renamed and restarted with another env, c2 paused, c4
        // removed, c5 started on image b, c6 restarting; image a was
        // pushed meanwhile (one more repo digest); c3 untouched.
        let mut renamed = container("c1", "sha256:a", &["X=2"]);
        renamed.name = Some(s("/c1-renamed"));
        let mut paused = container("c2", "sha256:a", &[]);
        paused.state.as_mut().unwrap().paused = Some(true);
        let mut restarting = container("c6", "sha256:b", &[]);
        restarting.state.as_mut().unwrap().restarting = Some(true);
        let mut pushed = image("sha256:a", &["X=1"]);
        pushed
            .repo_digests
            .as_mut()
            .unwrap()
            .push(s("c/app@sha256:3"));
        let after = FakeEngine {
            // What `status=running` lists: neither c2 (paused) nor c6.
            listed: vec!["c1", "c3", "c5"],
            containers: HashMap::from([
                ("c1", renamed),
                ("c2", paused),
                ("c3", container("c3", "sha256:a", &[])),
                ("c5", container("c5", "sha256:b", &["Y=1"])),
                ("c6", restarting),
            ]),
            images: HashMap::from([("sha256:a", pushed), ("sha256:b", image("sha256:b", &[]))]),
            ..Default::default()
        };
        let changes: Changes = [
            ("c1", Change::Inspect),
            ("c2", Change::Inspect),
            ("c4", Change::Remove),
            ("c5", Change::Inspect),
            ("c6", Change::Inspect),
        ]
        .into_iter()
        .collect();
        refresh_containers(&after, &mut containers, &changes, &key(), &policy)
            .await
            .unwrap();

        let everything = by_id(collect_containers(&after, &key(), &policy).await.unwrap());
        assert_eq!(containers, everything);
        assert_eq!(containers.keys().collect::<Vec<_>>(), ["c1", "c3", "c5"]);
        let digests = |id: &str| containers[id].image.as_ref().unwrap().repo_digests.len();
        assert_eq!(digests("c3"), 3, "c3 shares the image inspected for c1");
    }

    #[tokio::test]
    async fn a_removed_container_is_dropped_without_asking_the_engine() {
        let engine = FakeEngine {
            // Asking about c1 would fail the refresh.
            fail_inspect: Some("c1"),
            ..fake()
        };
        let mut containers = by_id(vec![
            container_from_inspect(
                &container("c1", "sha256:a", &[]),
                None,
                &key(),
                &ClearEnvPolicy::default(),
            )
            .unwrap(),
        ]);
        let changes: Changes = [("c1", Change::Remove)].into_iter().collect();
        refresh_containers(
            &engine,
            &mut containers,
            &changes,
            &key(),
            &ClearEnvPolicy::default(),
        )
        .await
        .unwrap();
        assert!(containers.is_empty());
        assert!(engine.image_inspects.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_refresh_changes_nothing() {
        let policy = ClearEnvPolicy::default();
        let engine = fake();
        let mut containers = by_id(collect_containers(&engine, &key(), &policy).await.unwrap());
        let kept = containers.clone();
        let failing = FakeEngine {
            fail_inspect: Some("c2"),
            ..fake()
        };
        let changes: Changes = [("c1", Change::Remove), ("c2", Change::Inspect)]
            .into_iter()
            .collect();
        let err = refresh_containers(&failing, &mut containers, &changes, &key(), &policy)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inspect container c2"), "{err}");
        assert_eq!(containers, kept);
    }
}
