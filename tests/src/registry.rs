//! [`Registry`]: a real distribution registry on a loopback port, so hosts
//! can share byte-identical images, and tests can check repo digests.
//!
//! dockerd treats registries on 127.0.0.0/8 as insecure (plain HTTP) by
//! default, so no TLS or daemon flag is needed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::docker_host::DockerHost;
use crate::error::{Error, Result};
use crate::probe;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::{self, DOCKER_REGISTRY};
use crate::wait::{free_port, wait_for};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to retry on a fresh port when another process took ours first.
const PORT_ATTEMPTS: usize = 3;

/// A running registry; dropping it stops the process and deletes its storage.
#[derive(Debug)]
pub struct Registry {
    port: u16,
    process: Process,
    dir: ScratchDir,
}

impl Registry {
    /// Starts a registry in a fresh temp dir of its own.
    pub fn start() -> Result<Self> {
        tools::require_root()?;
        DOCKER_REGISTRY.require()?;
        Self::launch(ScratchDir::new()?)
    }

    /// Starts a registry in `parent/registry` (which must not exist yet).
    pub fn start_in(parent: &Path) -> Result<Self> {
        tools::require_root()?;
        DOCKER_REGISTRY.require()?;
        Self::launch(ScratchDir::child(parent, "registry")?)
    }

    fn launch(dir: ScratchDir) -> Result<Self> {
        let mut last_error = None;
        for _attempt in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            let storage = dir.path().join("storage");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
                    storage.display()
                ),
            )
            .map_err(Error::io(format!("write {}", config.display())))?;
            let mut command = Command::new(DOCKER_REGISTRY.path);
            command.arg("serve").arg(&config);
            // REGISTRY_* variables override the config file; keep the machine's out.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    command.env_remove(key);
                }
            }
            let mut process = Process::spawn(
                format!("docker-registry 127.0.0.1:{port}"),
                command,
                dir.path().join("registry.log"),
            )?;
            match wait_ready(&mut process, port) {
                Ok(()) => return Ok(Self { port, process, dir }),
                // Most likely the port was taken between free_port() and bind: try another.
                Err(error @ Error::Exited { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| Error::unexpected("start docker-registry", "no attempt made")))
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the registry part of its image references.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The dir holding its config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The reference of `image` in this registry: `myapp:1` becomes
    /// `127.0.0.1:PORT/myapp:1`; a reference already in it is returned as is.
    pub fn reference(&self, image: &str) -> String {
        let prefix = format!("{}/", self.address());
        if image.starts_with(&prefix) {
            image.to_owned()
        } else {
            format!("{prefix}{image}")
        }
    }

    /// The repository of `image` in this registry, without tag or digest:
    /// `myapp:1` becomes `127.0.0.1:PORT/myapp`.
    pub fn repository(&self, image: &str) -> String {
        repository_of(&self.reference(image))
    }

    /// Tags `image` on `host` for this registry, pushes it and returns the
    /// repo digest (`127.0.0.1:PORT/myapp@sha256:…`).
    pub fn push_from(&self, host: &DockerHost, image: &str) -> Result<String> {
        let reference = self.reference(image);
        if reference != image {
            host.tag(image, &reference)?;
        }
        host.docker(["push", reference.as_str()])?;
        self.digest_of(host, image)
    }

    /// Pulls `image` from this registry onto `host` and returns its repo digest.
    /// The image is then known on `host` as [`Registry::reference`]`(image)`.
    pub fn pull_to(&self, host: &DockerHost, image: &str) -> Result<String> {
        host.docker(["pull", self.reference(image).as_str()])?;
        self.digest_of(host, image)
    }

    /// The repo digest `host` records for `image` from this registry.
    pub fn digest_of(&self, host: &DockerHost, image: &str) -> Result<String> {
        let repository = self.repository(image);
        let digests = host.repo_digests(&self.reference(image))?;
        digests
            .iter()
            .find(|digest| {
                digest
                    .split_once('@')
                    .is_some_and(|(repo, _)| repo == repository)
            })
            .cloned()
            .ok_or_else(|| {
                Error::unexpected(
                    format!("repo digest of {image} on host {}", host.name()),
                    format!("none for {repository}; RepoDigests: {digests:?}"),
                )
            })
    }
}

fn wait_ready(process: &mut Process, port: u16) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let what = format!(
        "docker-registry (pid {}) to answer GET /v2/ on {addr}",
        process.pid()
    );
    wait_for(START_TIMEOUT, what, || {
        process.ensure_running()?;
        Ok(probe::tcp_get_status(addr, "/v2/")
            .ok()
            .filter(|&code| code == 200)
            .map(drop))
    })
}

/// `host:port/name:tag@digest` without tag and digest; the port's colon stays.
fn repository_of(reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let name_start = without_digest.rfind('/').map_or(0, |slash| slash + 1);
    match without_digest[name_start..].rfind(':') {
        Some(colon) => without_digest[..name_start + colon].to_owned(),
        None => without_digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_the_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/myapp:1"),
            "127.0.0.1:5000/myapp"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/team/myapp"),
            "127.0.0.1:5000/team/myapp"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/myapp@sha256:ab"),
            "127.0.0.1:5000/myapp"
        );
        assert_eq!(repository_of("myapp:1"), "myapp");
    }
}
