//! The container runtimes the agent reads, behind one trait.
//!
//! [`ContainerRuntime`] is everything a collection needs from a runtime:
//! its engine facts, every running container, the containers named by
//! changes read again, and, when the runtime has one, a stream of container
//! events (the agent polls on its resync interval otherwise). Three
//! implementations:
//! - Docker, over the Docker Engine API ([`docker`]);
//! - Podman, over the same API through its Docker-compatible socket, with
//!   its own [`docker::Dialect`] ([`podman`]);
//! - containerd, over the Kubernetes CRI and containerd's event service
//!   ([`containerd`]).
//!
//! [`Runtime`] holds whichever one [`detect`] chose and dispatches to it
//! statically (the trait's methods are `async`, so it is not object-safe).
//! Every runtime maps what it reads to the same contract, with the same
//! identity rules ([`crate::identity`]), the same env split
//! ([`crate::envsplit`]) and the same protection of values.

pub mod changes;
pub mod containerd;
pub mod cri_call;
pub mod cri_container;
pub mod detect;
pub mod docker;
pub mod engine_http;
pub mod events;
pub mod framing;
pub mod podman;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use envparity_proto::v1::{Container, EngineFacts};
use futures_util::{Stream, StreamExt};

use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::FleetKey;

use self::changes::{Changes, ContainerEvent};
use self::containerd::Containerd;
use self::cri_call::CriError;
use self::docker::{Dialect, DockerEngine, EngineError};

/// Which runtime a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuntimeKind {
    /// Docker Engine.
    Docker,
    /// Podman, through its Docker-compatible API.
    Podman,
    /// containerd, through the CRI.
    Containerd,
}

impl RuntimeKind {
    /// The name in engine facts, settings and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Containerd => "containerd",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed runtime request, naming what was asked and where.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// From an engine speaking the Docker Engine API (Docker, Podman).
    #[error(transparent)]
    Docker(#[from] EngineError),
    /// From a CRI runtime (containerd).
    #[error(transparent)]
    Cri(#[from] CriError),
    /// Auto-detection found no runtime answering.
    #[error("no container runtime answers; tried {tried}")]
    NoneFound {
        /// Every address tried, and why each failed.
        tried: String,
    },
}

/// A boxed stream of container events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent, RuntimeError>> + Send>>;

/// What a collection needs from a container runtime.
///
/// `collect` and `refresh` report only containers that are services (see
/// [`crate::identity`]), each cut to its share of a report
/// ([`crate::limit::fit_container`]); an object that vanishes between a
/// listing and its read is skipped, any other error fails the whole call
/// (a partial list would read as "these containers stopped").
pub trait ContainerRuntime: Sync {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// The engine facts (with [`EngineFacts::runtime`] set).
    fn engine_facts(&self) -> impl Future<Output = Result<EngineFacts, RuntimeError>> + Send;

    /// Every running container that is a service, sorted by id.
    fn collect(
        &self,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> impl Future<Output = Result<Vec<Container>, RuntimeError>> + Send;

    /// Brings `containers` (by id, from an earlier reading) up to date with
    /// `changes`, exactly as [`ContainerRuntime::collect`] would judge
    /// them; on an error `containers` is left as it was.
    fn refresh(
        &self,
        containers: &mut BTreeMap<String, Container>,
        changes: &Changes,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// The container events from `since` on, when the runtime has an event
    /// stream; `None` makes the agent rely on its periodic resync.
    fn events(&self, since: SystemTime) -> Option<EventStream>;
}

/// An engine speaking the Docker Engine API, in its dialect.
#[derive(Debug, Clone)]
pub struct DockerApi {
    /// The connection.
    pub engine: DockerEngine,
    /// Docker's or Podman's rules.
    pub dialect: Dialect,
}

impl ContainerRuntime for DockerApi {
    fn kind(&self) -> RuntimeKind {
        self.dialect.kind
    }

    async fn engine_facts(&self) -> Result<EngineFacts, RuntimeError> {
        Ok(docker::collect_engine_facts(&self.engine, &self.dialect).await?)
    }

    async fn collect(
        &self,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<Vec<Container>, RuntimeError> {
        let containers =
            docker::collect_containers(&self.engine, &self.dialect, key, policy).await?;
        // Read over kept-alive connections: it counts only if the engine
        // still takes new ones (a stopping one would have stopped them all).
        self.engine.accepts_connections().await?;
        Ok(containers)
    }

    async fn refresh(
        &self,
        containers: &mut BTreeMap<String, Container>,
        changes: &Changes,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<(), RuntimeError> {
        docker::refresh_containers(
            &self.engine,
            &self.dialect,
            containers,
            changes,
            key,
            policy,
        )
        .await?;
        self.engine.accepts_connections().await?;
        Ok(())
    }

    fn events(&self, since: SystemTime) -> Option<EventStream> {
        let events = self.engine.container_events(since, &self.dialect);
        Some(Box::pin(events.map(|e| e.map_err(RuntimeError::from))))
    }
}

/// The runtime [`detect`] chose.
#[derive(Debug, Clone)]
pub enum Runtime {
    /// Docker or Podman.
    DockerApi(DockerApi),
    /// containerd through the CRI.
    Containerd(Containerd),
}

impl Runtime {
    /// Where the runtime is reached, for logs.
    pub fn address(&self) -> String {
        match self {
            Self::DockerApi(api) => api.engine.address().to_owned(),
            Self::Containerd(c) => c.socket().display().to_string(),
        }
    }
}

impl ContainerRuntime for Runtime {
    fn kind(&self) -> RuntimeKind {
        match self {
            Self::DockerApi(r) => r.kind(),
            Self::Containerd(r) => r.kind(),
        }
    }

    async fn engine_facts(&self) -> Result<EngineFacts, RuntimeError> {
        match self {
            Self::DockerApi(r) => r.engine_facts().await,
            Self::Containerd(r) => r.engine_facts().await,
        }
    }

    async fn collect(
        &self,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<Vec<Container>, RuntimeError> {
        match self {
            Self::DockerApi(r) => r.collect(key, policy).await,
            Self::Containerd(r) => r.collect(key, policy).await,
        }
    }

    async fn refresh(
        &self,
        containers: &mut BTreeMap<String, Container>,
        changes: &Changes,
        key: &FleetKey,
        policy: &ClearEnvPolicy,
    ) -> Result<(), RuntimeError> {
        match self {
            Self::DockerApi(r) => r.refresh(containers, changes, key, policy).await,
            Self::Containerd(r) => r.refresh(containers, changes, key, policy).await,
        }
    }

    fn events(&self, since: SystemTime) -> Option<EventStream> {
        match self {
            Self::DockerApi(r) => r.events(since),
            Self::Containerd(r) => r.events(since),
        }
    }
}

/// A working directory in one spelling: `/` is what every runtime means by
/// "none set" (Docker reports it empty, Podman and the CRI runtimes as
/// `/`), so it is reported empty.
pub fn working_dir(dir: &str) -> String {
    if dir == "/" {
        String::new()
    } else {
        dir.to_owned()
    }
}
