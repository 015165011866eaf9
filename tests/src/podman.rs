//! [`PodmanHost`]: one scratch Podman serving its Docker-compatible API,
//! standing in for one machine that runs Podman.
//!
//! `podman system service --time 0` on a socket in a temp dir, with its own
//! `containers.conf`, `storage.conf` and `registries.conf` (vfs storage, file
//! locks and events, cgroupfs, runc, no network), selected through
//! `CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF` and
//! `CONTAINERS_REGISTRIES_CONF`. The ulimits are set to at most the
//! machine's hard limits: Podman asks for more by default, which a sandbox
//! without CAP_SYS_RESOURCE refuses (docs/reliability.md). The tests drive
//! it with Docker's own client, as users of the compatible API do, and it
//! pulls from the fleet's registry (marked insecure). Dropping it removes
//! its containers and ends the service, conmon and containers by pid.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::command;
use crate::error::{Error, Result};
use crate::pids;
use crate::probe;
use crate::process::Process;
use crate::run::Run;
use crate::scratch::ScratchDir;
use crate::tools::{DOCKER, Tool};
use crate::wait::wait_for;

/// Debian's Podman (4.3).
pub const PODMAN: Tool = Tool {
    name: "podman",
    path: "/usr/bin/podman",
    package: "podman",
};

/// How long the service may take to answer `/_ping`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running scratch Podman service.
#[derive(Debug)]
pub struct PodmanHost {
    name: String,
    socket: PathBuf,
    service: Option<Process>,
    dir: ScratchDir,
}

/// A soft/hard limit pair no higher than this process's hard limit of
/// `resource`, and no higher than `cap`.
fn limit(resource: rustix::process::Resource, cap: u64) -> u64 {
    rustix::process::getrlimit(resource)
        .maximum
        .map_or(cap, |hard| hard.min(cap))
}

impl PodmanHost {
    /// Starts a Podman host `parent/name` that may pull from the registry
    /// at `registry` (`127.0.0.1:PORT`).
    pub fn start_in(parent: &Path, name: &str, registry: &str) -> Result<Self> {
        PODMAN.require()?;
        DOCKER.require()?;
        let dir = ScratchDir::child(parent, name)?;
        let root = dir.path().to_path_buf();
        for sub in ["tmp", "volumes", "static", "root", "run", "client"] {
            let path = root.join(sub);
            std::fs::create_dir(&path).map_err(Error::io(format!("create {}", path.display())))?;
        }
        // Podman lowers its own process limit to 32768 at start.
        let nofile = limit(rustix::process::Resource::Nofile, 1_048_576);
        let nproc = limit(rustix::process::Resource::Nproc, 32_768);
        let r = root.display();
        let files = [
            (
                "containers.conf",
                format!(
                    "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\nnetns = \"none\"\n\n\
                     [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                     events_logfile_path = \"{r}/events.log\"\nlock_type = \"file\"\ntmp_dir = \"{r}/tmp\"\n\
                     volume_path = \"{r}/volumes\"\nstatic_dir = \"{r}/static\"\n"
                ),
            ),
            (
                "storage.conf",
                format!(
                    "[storage]\ndriver = \"vfs\"\ngraphroot = \"{r}/root\"\nrunroot = \"{r}/run\"\n"
                ),
            ),
            (
                "registries.conf",
                format!(
                    "unqualified-search-registries = []\n\n[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"
                ),
            ),
        ];
        for (file, text) in files {
            let path = root.join(file);
            std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))?;
        }
        let mut host = Self {
            name: name.to_owned(),
            socket: root.join("podman.sock"),
            service: None,
            dir,
        };
        host.spawn()?;
        Ok(host)
    }

    fn spawn(&mut self) -> Result<()> {
        let root = self.dir.path().to_path_buf();
        let mut podman = self.command();
        podman
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", self.socket.display()));
        let process = Process::spawn(
            format!("podman {}", self.name),
            podman,
            root.join("podman.log"),
        )?
        .with_stop_timeout(Duration::from_secs(10));
        self.service = Some(process);
        let what = format!("podman {} to answer GET /_ping", self.name);
        let socket = self.socket.clone();
        let service = self.service.as_mut().expect("just set");
        wait_for(START_TIMEOUT, what, || {
            service.ensure_running()?;
            Ok(probe::unix_get_status(&socket, "/_ping")
                .ok()
                .filter(|&code| code == 200)
                .map(drop))
        })
    }

    /// Stops the API service (SIGTERM) as a restart of it would; the
    /// containers go on running under conmon. Until
    /// [`PodmanHost::start_engine`] nothing answers on its socket.
    pub fn stop_engine(&mut self) -> Result<()> {
        if let Some(mut service) = self.service.take() {
            service.stop()?;
        }
        Ok(())
    }

    /// Starts the API service again after [`PodmanHost::stop_engine`].
    pub fn start_engine(&mut self) -> Result<()> {
        if self.service.is_some() {
            return Err(Error::unexpected(
                format!("start podman {}", self.name),
                "it is already running; call stop_engine first",
            ));
        }
        self.spawn()
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The API's address as `DOCKER_HOST` spells it.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs Docker's client against this host and returns its stdout.
    pub fn docker<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut docker = Command::new(DOCKER.path);
        docker
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .args(args);
        command::checked(docker)
    }

    /// Runs Podman's own client on this host's storage and configuration
    /// (beside the API service, as a user on the machine would) and returns
    /// its stdout: for what the compatible API has no call for, such as
    /// `manifest`.
    pub fn podman<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut podman = self.command();
        podman.args(args);
        command::checked(podman)
    }

    /// Podman's client with this host's storage and configuration.
    fn command(&self) -> Command {
        let root = self.dir.path();
        let mut podman = Command::new(PODMAN.path);
        podman
            .env("TMPDIR", root.join("tmp"))
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", root.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", root.join("registries.conf"));
        podman
    }

    /// Pulls `image` (e.g. a reference into the fleet's registry).
    pub fn pull(&self, image: &str) -> Result<()> {
        self.docker(["pull", image]).map(drop)
    }

    /// Starts a container (detached, no network); returns its id.
    pub fn run(&self, run: Run) -> Result<String> {
        self.docker(run.to_args())
    }

    /// Force-removes a container.
    pub fn rm(&self, container: &str) -> Result<()> {
        self.docker(["rm", "--force", container]).map(drop)
    }

    /// Its log.
    pub fn log(&self) -> String {
        self.service.as_ref().map(Process::log).unwrap_or_default()
    }
}

impl Drop for PodmanHost {
    fn drop(&mut self) {
        if self.service.is_some()
            && let Ok(ids) = self.docker(["ps", "--all", "--quiet"])
        {
            for id in ids.lines().filter(|l| !l.is_empty()) {
                let _ = self.rm(id);
            }
        }
        if let Some(mut service) = self.service.take() {
            let _ = service.stop();
        }
        let survivors = pids::terminate(
            &pids::processes_under(self.dir.path()),
            Duration::from_secs(5),
        );
        if !survivors.is_empty() {
            eprintln!(
                "envparity-tests: podman {} left processes that survived SIGKILL: {survivors:?}",
                self.name
            );
        }
    }
}
