//! [`ReadOnlyProxy`]: HAProxy in front of a host's Docker socket, passing
//! only `GET` and `HEAD` — the read-only socket proxy the docs recommend for
//! the agent (the same mechanism as docker-socket-proxy).

use std::process::Command;
use std::time::Duration;

use crate::docker_host::DockerHost;
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::HAPROXY;
use crate::wait::wait_until;

/// A running read-only proxy; dropping it stops it.
#[derive(Debug)]
pub struct ReadOnlyProxy {
    socket: std::path::PathBuf,
    _process: Process,
    _dir: ScratchDir,
}

impl ReadOnlyProxy {
    /// Starts HAProxy with a unix socket that forwards `GET` and `HEAD` to
    /// `host`'s engine and answers everything else `403`.
    pub fn start(fleet: &Fleet, host: &DockerHost) -> Result<Self> {
        let binary = HAPROXY.require()?;
        let dir = fleet.new_dir(&format!("socket-proxy-{}", host.name()))?;
        let socket = dir.path().join("docker.sock");
        let config = dir.path().join("haproxy.cfg");
        // Long client/server/tunnel timeouts: the agent's event stream is a
        // long-lived GET that is quiet between events.
        let text = format!(
            "global\n  maxconn 256\n\
             defaults\n  mode http\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n  timeout tunnel 1h\n\
             frontend docker\n  bind unix@{socket} mode 600\n  http-request deny deny_status 403 unless METH_GET || METH_HEAD\n  default_backend engine\n\
             backend engine\n  server engine unix@{engine}\n",
            socket = socket.display(),
            engine = host.socket().display(),
        );
        std::fs::write(&config, text).map_err(Error::io(format!("write {}", config.display())))?;
        let mut command = Command::new(binary);
        command.arg("-db").arg("-f").arg(&config);
        let process = Process::spawn(
            format!("read-only socket proxy for {}", host.name()),
            command,
            dir.path().join("haproxy.log"),
        )?;
        wait_until(
            Duration::from_secs(10),
            format!("haproxy to create {}", socket.display()),
            || socket.exists(),
        )?;
        Ok(Self {
            socket,
            _process: process,
            _dir: dir,
        })
    }

    /// `unix:///…/docker.sock`, for `--docker-host` or `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}
