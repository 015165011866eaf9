//! Choosing the runtime: `--runtime auto|docker|podman|containerd`.
//!
//! `auto` takes the configured socket when there is one:
//! 1. `--runtime-socket`, when set: a CRI there, else the Docker Engine API
//!    (Docker or Podman, told apart by `/version`);
//! 2. `--docker-host`, when set to something else than the default (Docker
//!    or Podman, told apart the same way).
//!
//! With neither, it tries the well-known sockets in order and takes the
//! first that answers: Docker's (the default `--docker-host`), containerd's
//! ([`containerd::DEFAULT_SOCKET`], when a CRI answers there: Docker's own
//! containerd has none), then Podman's ([`PODMAN_SOCKETS`]).
//!
//! A named runtime is only looked for where it is configured (or at its
//! well-known socket). Once a runtime answered, the agent keeps to it
//! ([`Target::pinned`]): an engine restart reads as an outage of that
//! engine, never as a switch to another runtime on the same host.

use std::path::{Path, PathBuf};

use super::containerd::{self, Containerd};
use super::docker::{DOCKER, DockerEngine, is_podman};
use super::podman::PODMAN;
use super::{DockerApi, Runtime, RuntimeError};
use crate::runtime::docker::Engine;

/// Docker's well-known socket, the default `--docker-host`.
pub const DOCKER_SOCKET: &str = "unix:///var/run/docker.sock";

/// Podman's well-known sockets (rootful).
pub const PODMAN_SOCKETS: &[&str] = &["/run/podman/podman.sock"];

/// Which runtime to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// The first that answers (see the module doc).
    #[default]
    Auto,
    /// Docker at `--docker-host` (or `--runtime-socket`).
    Docker,
    /// Podman's Docker-compatible API at `--runtime-socket`, else its
    /// well-known socket, else `--docker-host`.
    Podman,
    /// containerd's CRI at `--runtime-socket`, else its well-known socket.
    Containerd,
}

impl std::str::FromStr for RuntimeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            "containerd" => Ok(Self::Containerd),
            other => Err(format!(
                "unknown runtime {other:?}: use auto, docker, podman or containerd"
            )),
        }
    }
}

/// Where to look for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which runtime.
    pub choice: RuntimeChoice,
    /// `--docker-host`.
    pub docker_host: String,
    /// `--runtime-socket`.
    pub socket: Option<PathBuf>,
}

impl Target {
    /// Where the runtime is looked for, for logs.
    pub fn describe(&self) -> String {
        match (&self.choice, &self.socket) {
            (_, Some(socket)) => format!("{} ({:?})", socket.display(), self.choice),
            (RuntimeChoice::Containerd, None) => containerd::DEFAULT_SOCKET.to_owned(),
            (choice, None) => format!("{} ({choice:?})", self.docker_host),
        }
    }
}

impl Target {
    /// This target narrowed to the runtime that answered at it, so that a
    /// reconnection finds the same one.
    pub fn pinned(&self, runtime: &Runtime) -> Self {
        let (choice, docker_host, socket) = match runtime {
            Runtime::DockerApi(api) => (
                match api.dialect.kind {
                    super::RuntimeKind::Podman => RuntimeChoice::Podman,
                    _ => RuntimeChoice::Docker,
                },
                api.engine.address().to_owned(),
                None,
            ),
            Runtime::Containerd(c) => (
                RuntimeChoice::Containerd,
                self.docker_host.clone(),
                Some(c.socket().to_owned()),
            ),
        };
        Self {
            choice,
            docker_host,
            socket,
        }
    }
}

fn unix(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The Docker Engine API at `addr`, in Docker's or Podman's dialect as its
/// `/version` says (or as `forced`).
async fn docker_api(
    addr: &str,
    forced: Option<&super::docker::Dialect>,
) -> Result<Runtime, RuntimeError> {
    let engine = DockerEngine::connect(addr).await?;
    let dialect = match forced {
        Some(dialect) => *dialect,
        None if is_podman(&engine.version().await?) => PODMAN,
        None => DOCKER,
    };
    Ok(Runtime::DockerApi(DockerApi { engine, dialect }))
}

async fn cri(socket: &Path) -> Result<Runtime, RuntimeError> {
    Ok(Runtime::Containerd(Containerd::connect(socket).await?))
}

/// Connects to the runtime `target` names.
pub async fn connect(target: &Target) -> Result<Runtime, RuntimeError> {
    let socket = target.socket.as_deref();
    match target.choice {
        RuntimeChoice::Docker => {
            let addr = socket.map_or_else(|| target.docker_host.clone(), unix);
            docker_api(&addr, Some(&DOCKER)).await
        }
        RuntimeChoice::Podman => {
            let addr = match socket {
                Some(socket) => unix(socket),
                None => PODMAN_SOCKETS
                    .iter()
                    .find(|s| Path::new(s).exists())
                    .map_or_else(|| target.docker_host.clone(), |s| unix(Path::new(s))),
            };
            docker_api(&addr, Some(&PODMAN)).await
        }
        RuntimeChoice::Containerd => {
            cri(socket.unwrap_or(Path::new(containerd::DEFAULT_SOCKET))).await
        }
        RuntimeChoice::Auto => auto(target).await,
    }
}

async fn auto(target: &Target) -> Result<Runtime, RuntimeError> {
    if let Some(socket) = &target.socket {
        return match cri(socket).await {
            Ok(runtime) => Ok(runtime),
            Err(cri_error) => match docker_api(&unix(socket), None).await {
                Ok(runtime) => Ok(runtime),
                Err(error) => Err(RuntimeError::NoneFound {
                    tried: format!("{cri_error}; {error}"),
                }),
            },
        };
    }
    if target.docker_host != DOCKER_SOCKET {
        return docker_api(&target.docker_host, None).await;
    }
    let mut tried = Vec::new();
    match docker_api(&target.docker_host, None).await {
        Ok(runtime) => return Ok(runtime),
        Err(error) => tried.push(error.to_string()),
    }
    let containerd = Path::new(containerd::DEFAULT_SOCKET);
    if containerd.exists() {
        match cri(containerd).await {
            Ok(runtime) => return Ok(runtime),
            Err(error) => tried.push(error.to_string()),
        }
    }
    for socket in PODMAN_SOCKETS.iter().map(Path::new).filter(|s| s.exists()) {
        match docker_api(&unix(socket), None).await {
            Ok(runtime) => return Ok(runtime),
            Err(error) => tried.push(error.to_string()),
        }
    }
    Err(RuntimeError::NoneFound {
        tried: tried.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_parse_and_others_are_refused() {
        assert_eq!("auto".parse(), Ok(RuntimeChoice::Auto));
        assert_eq!("containerd".parse(), Ok(RuntimeChoice::Containerd));
        assert_eq!("podman".parse(), Ok(RuntimeChoice::Podman));
        assert_eq!("docker".parse(), Ok(RuntimeChoice::Docker));
        let err = "cri-o".parse::<RuntimeChoice>().unwrap_err();
        assert!(err.contains("\"cri-o\""), "{err}");
    }

    fn target(socket: Option<&str>, docker_host: &str) -> Target {
        Target {
            choice: RuntimeChoice::Auto,
            docker_host: docker_host.to_owned(),
            socket: socket.map(PathBuf::from),
        }
    }

    /// A configured socket is the only place auto looks: a runtime at a
    /// well-known path must not be read instead of the one configured.
    #[tokio::test]
    async fn auto_with_a_configured_socket_tries_it_alone_as_cri_then_docker_api() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("nothing.sock");
        let err = connect(&target(socket.to_str(), DOCKER_SOCKET))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no container runtime answers"), "{err}");
        // Both ways of speaking were tried, on that socket.
        assert_eq!(err.matches("nothing.sock").count(), 2, "{err}");
        assert!(!err.contains("docker.sock"), "{err}");
    }

    #[tokio::test]
    async fn auto_with_a_configured_docker_host_tries_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/engine.sock", dir.path().display());
        let err = connect(&target(None, &host)).await.unwrap_err().to_string();
        assert!(err.contains("engine.sock"), "{err}");
        assert!(!err.contains("containerd.sock"), "{err}");
    }
}
