//! The system tools the harness drives, at the paths Debian installs them to.
//!
//! Paths are absolute on purpose: some machines carry a newer `docker` client
//! in `/usr/local/bin`, and the tests must use the client that matches the
//! daemon they start. `scripts/setup.sh` installs all of them.

use std::path::Path;

use crate::error::{Error, Result};

/// A tool the harness runs: where it lives and which Debian package brings it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// A short name for messages.
    pub name: &'static str,
    /// The absolute path the harness executes.
    pub path: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// The Docker engine. It spawns its own containerd, runc and shims.
pub const DOCKERD: Tool = Tool {
    name: "dockerd",
    path: "/usr/sbin/dockerd",
    package: "docker.io",
};

/// The Docker client matching [`DOCKERD`].
pub const DOCKER: Tool = Tool {
    name: "docker",
    path: "/usr/bin/docker",
    package: "docker.io",
};

/// The distribution registry (registry:2), run as a plain process.
pub const DOCKER_REGISTRY: Tool = Tool {
    name: "docker-registry",
    path: "/usr/bin/docker-registry",
    package: "docker-registry",
};

/// A static busybox, the only binary inside the test images.
pub const BUSYBOX: Tool = Tool {
    name: "busybox",
    path: "/bin/busybox",
    package: "busybox-static",
};

/// GNU tar, to pack image root file systems reproducibly.
pub const TAR: Tool = Tool {
    name: "tar",
    path: "/bin/tar",
    package: "tar",
};

/// Prometheus' Alertmanager, run standalone on loopback.
pub const ALERTMANAGER: Tool = Tool {
    name: "alertmanager",
    path: "/usr/bin/prometheus-alertmanager",
    package: "prometheus-alertmanager",
};

/// Prometheus, which scrapes envparity's `/metrics`.
pub const PROMETHEUS: Tool = Tool {
    name: "prometheus",
    path: "/usr/bin/prometheus",
    package: "prometheus",
};

/// Prometheus' checker for metrics text and rule files.
pub const PROMTOOL: Tool = Tool {
    name: "promtool",
    path: "/usr/bin/promtool",
    package: "prometheus",
};

/// HAProxy, as a read-only Docker socket proxy (what docker-socket-proxy
/// is built on).
pub const HAPROXY: Tool = Tool {
    name: "haproxy",
    path: "/usr/sbin/haproxy",
    package: "haproxy",
};

/// PostgreSQL 15's cluster maker (the store's second backend, docs/store.md).
pub const INITDB: Tool = Tool {
    name: "initdb",
    path: "/usr/lib/postgresql/15/bin/initdb",
    package: "postgresql-15",
};

/// The PostgreSQL 15 server.
pub const POSTGRES: Tool = Tool {
    name: "postgres",
    path: "/usr/lib/postgresql/15/bin/postgres",
    package: "postgresql-15",
};

/// PostgreSQL's client, to wait for the server and set it up.
pub const PSQL: Tool = Tool {
    name: "psql",
    path: "/usr/lib/postgresql/15/bin/psql",
    package: "postgresql-client-15",
};

impl Tool {
    /// Fails with a message pointing at `scripts/setup.sh` when the tool is missing.
    pub fn require(&self) -> Result<&'static str> {
        if Path::new(self.path).is_file() {
            Ok(self.path)
        } else {
            Err(Error::MissingTool {
                tool: self.name,
                path: self.path.into(),
                package: self.package,
            })
        }
    }
}

/// Fails unless the tests run as root, which starting dockerd needs.
pub fn require_root() -> Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    if euid == 0 {
        Ok(())
    } else {
        Err(Error::NotRoot { euid })
    }
}

/// Everything a [`crate::DockerHost`] needs.
pub(crate) fn require_docker() -> Result<()> {
    require_root()?;
    for tool in [DOCKERD, DOCKER, BUSYBOX, TAR] {
        tool.require()?;
    }
    Ok(())
}
