//! Reading an engine that speaks the Docker Engine API: engine facts and
//! running containers. Docker itself, and Podman through its
//! Docker-compatible socket: what differs between them is a [`Dialect`]
//! (Podman's is in [`super::podman`]).
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

use super::RuntimeKind;
use super::changes::{Change, Changes, ContainerEvent};
use super::engine_http::{self, EngineHttp, HttpError, Line};
use crate::clear_env::ClearEnvPolicy;
use crate::envsplit::{Injection, protect, split_env};
use crate::fingerprint::FleetKey;
use crate::identity::{is_unmanaged, service_identity};
use crate::secrets::{redact, redact_args};

/// How many container (and image) inspects run at once: as many as the
/// engine client keeps connections for.
pub const INSPECT_CONCURRENCY: usize = super::engine_http::CONCURRENT_CALLS;

/// Per-request timeout towards the engine (response headers; the events
/// stream's body is not limited). A hung engine must not stall reporting.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Label prefix of OCI image annotations that envparity reports.
pub const OCI_LABEL_PREFIX: &str = "org.opencontainers.image.";

/// Container event actions that can change what a snapshot contains.
pub const WATCHED_ACTIONS: &[&str] = &[
    "start", "stop", "die", "rename", "destroy", "pause", "unpause", "update",
];

/// How one engine speaking the Docker Engine API differs from another: the
/// few rules that are not the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// Which runtime this is, for the engine facts.
    pub kind: RuntimeKind,
    /// The container event actions to watch.
    pub actions: &'static [&'static str],
    /// The action that says a container is gone for good.
    pub removed: &'static str,
    /// The env the engine injects by itself (never compared).
    pub injection: Injection,
    /// Whether the image id is taken from the image's inspect rather than
    /// the container's (Podman's container inspect does not spell it as
    /// Docker does).
    pub image_id_from_image: bool,
}

/// Docker's dialect: the API as Docker defines it; nothing injected (a
/// Kubernetes container under cri-dockerd still gets its service links
/// recognised, see [`Injection::for_labels`]).
pub const DOCKER: Dialect = Dialect {
    kind: RuntimeKind::Docker,
    actions: WATCHED_ACTIONS,
    removed: "destroy",
    injection: Injection::NONE,
    image_id_from_image: false,
};

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
    addr: String,
    http: EngineHttp,
}

/// A boxed stream of container events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent, EngineError>> + Send>>;

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
        Ok(Self {
            addr: addr.to_owned(),
            http,
        })
    }

    /// The address it was connected at.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Fails unless the engine still takes new connections (see
    /// [`EngineHttp::accepts_connections`]): what a collection read before
    /// counts only then.
    pub async fn accepts_connections(&self) -> Result<(), EngineError> {
        self.http
            .accepts_connections()
            .await
            .map_err(|e| EngineError::new("ping on a new connection", e))
    }

    /// The bounded HTTP client, for the archive API (which the reading of
    /// mounted configuration files calls).
    pub fn http(&self) -> &EngineHttp {
        &self.http
    }

    /// The stream of container events that can change a snapshot, starting
    /// at `since` (the engine replays buffered events from then on, so
    /// nothing between a collection and the subscription is missed). An
    /// event too long to read ([`engine_http::MAX_EVENT_BYTES`]) comes out
    /// as an event naming no container, which makes the agent read every
    /// container again.
    pub fn container_events(&self, since: SystemTime, dialect: &Dialect) -> EventStream {
        let since = since
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let filters = serde_json::json!({
            "type": ["container"],
            "event": dialect.actions,
        });
        let path = format!(
            "/events?since={since}&filters={}",
            percent_encode(&filters.to_string())
        );
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let http = self.http.clone();
        tokio::spawn(async move { http.stream_lines(&path, &tx).await });
        let removed = dialect.removed;
        let events = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |line| match line {
            Ok(Line::Record(bytes)) => serde_json::from_slice::<EventMessage>(&bytes)
                .map(|event| container_event(&event, removed))
                .map_err(|e| {
                    EngineError::new("watch container events", HttpError::Malformed(e.to_string()))
                }),
            Ok(Line::Skipped) => {
                tracing::warn!(
                    max_bytes = engine_http::MAX_EVENT_BYTES,
                    "an engine event over the agent's limit was skipped; reading every container again"
                );
                // Names no container: the agent reads them all.
                Ok(ContainerEvent::default())
            }
            Err(e) => Err(EngineError::new("watch container events", e)),
        });
        Box::pin(events)
    }
}

/// An engine event in the runtime-neutral form; `removed` is the dialect's
/// action for a container gone for good.
fn container_event(event: &EventMessage, removed: &str) -> ContainerEvent {
    let action = event.action.clone().unwrap_or_default();
    ContainerEvent {
        id: event.actor.as_ref().and_then(|a| a.id.clone()),
        removed: action == removed,
        action,
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
pub async fn collect_engine_facts<E: Engine>(
    engine: &E,
    dialect: &Dialect,
) -> Result<EngineFacts, EngineError> {
    let version = engine.version().await?;
    let info = engine.info().await?;
    Ok(EngineFacts {
        runtime: dialect.kind.name().to_owned(),
        ..engine_facts(&version, &info)
    })
}

/// Whether `/version` is Podman's: its components name a `Podman Engine`.
pub fn is_podman(version: &SystemVersion) -> bool {
    version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"))
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
        runtime: String::new(),
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
    dialect: &Dialect,
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
    refresh_containers(engine, dialect, &mut containers, &listed, key, policy).await?;
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
    dialect: &Dialect,
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
            let container =
                container_from_inspect(&c, image.as_ref(), dialect, key, policy).map(|mut x| {
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
    dialect: &Dialect,
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
        dialect
            .injection
            .or(Injection::for_labels(container_labels)),
    );
    let image_id = match image.and_then(|i| i.id.clone()) {
        Some(id) if dialect.image_id_from_image => id,
        _ => c.image.clone().unwrap_or_default(),
    };
    let image_labels = image_config
        .and_then(|c| c.labels.as_ref())
        .unwrap_or(&no_labels);

    Some(Container {
        cut: Vec::new(),
        id: c.id.clone().unwrap_or_default(),
        name: name.to_owned(),
        unmanaged: is_unmanaged(&service),
        service: Some(service),
        image: Some(ImageInfo {
            reference: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            image_id,
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
        injected_env: protect(&env.injected, key, policy),
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
        working_dir: super::working_dir(
            config
                .and_then(|c| c.working_dir.as_deref())
                .unwrap_or_default(),
        ),
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
pub(super) fn capabilities(caps: Option<&[String]>) -> Vec<String> {
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

pub(super) fn sorted(items: Option<Vec<String>>) -> Vec<String> {
    let mut items = items.unwrap_or_default();
    items.sort();
    items
}

/// The labels `keep` selects, sorted by key, with credentials in their values
/// replaced by stand-ins ([`redact`]).
pub(super) fn sorted_labels(
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
#[path = "docker_tests.rs"]
mod tests;
