//! [`CriReadOnlyProxy`]: HAProxy in front of a node's CRI socket, with the
//! shipped allowlist (`deploy/cri-proxy/haproxy.cfg`): only the read calls
//! the agent makes and containerd's event subscription pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::containerd::ContainerdHost;
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::HAPROXY;
use crate::wait::wait_until;

/// The shipped allowlist, with `LISTEN` and `CRI` for socket paths.
const CONFIG: &str = include_str!("../../deploy/cri-proxy/haproxy.cfg");

/// A running allowlist proxy; dropping it stops it.
#[derive(Debug)]
pub struct CriReadOnlyProxy {
    socket: PathBuf,
    _process: Process,
    _dir: ScratchDir,
}

impl CriReadOnlyProxy {
    /// Starts HAProxy with the shipped allowlist on a socket of its own,
    /// forwarding to `node`'s CRI socket.
    pub fn start(fleet: &Fleet, node: &ContainerdHost) -> Result<Self> {
        let binary = HAPROXY.require()?;
        let dir = fleet.new_dir(&format!("cri-proxy-{}", node.name()))?;
        let socket = dir.path().join("cri.sock");
        let config = dir.path().join("haproxy.cfg");
        let text = CONFIG
            .replace("unix@LISTEN", &format!("unix@{}", socket.display()))
            .replace("unix@CRI", &format!("unix@{}", node.socket().display()));
        std::fs::write(&config, text).map_err(Error::io(format!("write {}", config.display())))?;
        let mut command = Command::new(binary);
        command.arg("-db").arg("-f").arg(&config);
        let process = Process::spawn(
            format!("CRI allowlist proxy for {}", node.name()),
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

    /// The allowlisted socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
