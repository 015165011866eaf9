//! [`CriReadOnlyProxy`]: HAProxy in front of a node's CRI socket, with the
//! shipped allowlist (`deploy/cri-proxy/haproxy.cfg`): only the read calls
//! the agent makes and containerd's event subscription pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::containerd::ContainerdHost;
use crate::error::Result;
use crate::fleet::Fleet;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::HAPROXY;
use crate::wait::wait_until;

/// The shipped allowlist, run as is: HAProxy reads the socket paths from
/// `ENVPARITY_CRI_LISTEN` and `ENVPARITY_CRI_SOCKET`.
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/cri-proxy/haproxy.cfg"
);

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
        let mut command = Command::new(binary);
        command
            .env("ENVPARITY_CRI_LISTEN", &socket)
            .env("ENVPARITY_CRI_SOCKET", node.socket())
            .arg("-db")
            .arg("-f")
            .arg(CONFIG);
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
