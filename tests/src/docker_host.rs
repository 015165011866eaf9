//! [`DockerHost`]: one isolated Docker engine, standing in for one machine of
//! an environment.
//!
//! Each host is a real dockerd with its own data root, exec root, socket and
//! containerd, all under one temp dir, using the vfs storage driver and no
//! networking (`--bridge=none`, no iptables). It starts in well under a second
//! and several run side by side. Its dockerd can be stopped and started again
//! in place, as an engine restart on a real machine would.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::command;
use crate::error::{Error, Result};
use crate::image::ImageSpec;
use crate::pids;
use crate::probe;
use crate::process::Process;
use crate::run::Run;
use crate::scratch::ScratchDir;
use crate::tools::{self, DOCKER, DOCKERD};
use crate::wait::wait_for;

/// How long dockerd may take to answer `/_ping` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest path a unix socket can have on Linux (`sun_path` minus the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How long dockerd and its containerd get to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running dockerd; dropping it removes its containers, stops the daemon and
/// its containerd by pid, unmounts and deletes its dir.
#[derive(Debug)]
pub struct DockerHost {
    name: String,
    socket: PathBuf,
    dockerd: Option<Process>,
    images_built: AtomicUsize,
    dir: Option<ScratchDir>,
}

impl DockerHost {
    /// Starts a host in a fresh temp dir of its own.
    pub fn start(name: &str) -> Result<Self> {
        tools::require_docker()?;
        Self::launch(name, ScratchDir::new()?, "{}")
    }

    /// Starts a host in `parent/name` (which must not exist yet).
    pub fn start_in(parent: &Path, name: &str) -> Result<Self> {
        Self::start_in_with(parent, name, "{}")
    }

    /// Like [`DockerHost::start_in`], with `daemon_json` as dockerd's config
    /// file (e.g. `{"exec-opts": ["native.cgroupdriver=systemd"]}` for a host
    /// whose engine differs from the others).
    pub fn start_in_with(parent: &Path, name: &str, daemon_json: &str) -> Result<Self> {
        tools::require_docker()?;
        Self::launch(name, ScratchDir::child(parent, name)?, daemon_json)
    }

    fn launch(name: &str, dir: ScratchDir, daemon_json: &str) -> Result<Self> {
        let root = dir.path();
        let socket = root.join("docker.sock");
        // The longest socket path dockerd's containerd creates under the exec root.
        let longest = root.join("exec/containerd/containerd-debug.sock");
        let len = longest.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(Error::unexpected(
                format!("start host {name}"),
                format!(
                    "socket path {} is {len} bytes, over the {MAX_SOCKET_PATH}-byte limit for unix sockets: use a shorter TMPDIR or host name",
                    longest.display()
                ),
            ));
        }
        // A config file of our own (empty unless asked), so a machine's
        // /etc/docker/daemon.json cannot change (or, by repeating a flag,
        // break) the test daemons.
        let config = root.join("daemon.json");
        std::fs::write(&config, format!("{daemon_json}\n"))
            .map_err(Error::io(format!("write {}", config.display())))?;
        let client_config = root.join("client");
        std::fs::create_dir(&client_config)
            .map_err(Error::io(format!("create {}", client_config.display())))?;

        // The daemons' own temp files (containerd dumps its stacks there when
        // dockerd dies) stay inside the host's dir, and go with it.
        let tmp = root.join("tmp");
        std::fs::create_dir(&tmp).map_err(Error::io(format!("create {}", tmp.display())))?;

        let mut host = Self {
            name: name.to_owned(),
            socket,
            dockerd: None,
            images_built: AtomicUsize::new(0),
            dir: Some(dir),
        };
        host.spawn_dockerd()?;
        Ok(host)
    }

    /// Spawns dockerd on this host's dir (its config file, roots, socket and
    /// log) and waits until it answers.
    fn spawn_dockerd(&mut self) -> Result<()> {
        let root = self.dir().to_path_buf();
        let mut dockerd = Command::new(DOCKERD.path);
        dockerd
            .env("TMPDIR", root.join("tmp"))
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--bridge=none",
                "--ip-masq=false",
            ]);
        let process = Process::spawn(
            format!("dockerd {}", self.name),
            dockerd,
            root.join("dockerd.log"),
        )?
        .with_stop_timeout(STOP_TIMEOUT);
        self.dockerd = Some(process);
        self.wait_ready()
    }

    /// Stops the engine as a restart of the Docker service would: SIGTERM to
    /// dockerd, which stops its containers (they stay, stopped) and its
    /// containerd. The data root, socket path and log are kept, so
    /// [`DockerHost::start_engine`] brings the same engine back. Until then
    /// nothing answers on [`DockerHost::socket`]: this is how a test shows an
    /// agent its engine going away, then returning.
    pub fn stop_engine(&mut self) -> Result<()> {
        let Some(mut dockerd) = self.dockerd.take() else {
            return Ok(());
        };
        dockerd.stop()?;
        // dockerd ends its containerd and shims itself; this catches any that outlived it.
        let survivors = pids::terminate(&self.pids(), STOP_TIMEOUT);
        if survivors.is_empty() {
            Ok(())
        } else {
            Err(Error::Cleanup {
                path: self.dir().to_path_buf(),
                detail: format!(
                    "processes of host {} that survived SIGKILL: {survivors:?}",
                    self.name
                ),
            })
        }
    }

    /// Starts the engine again after [`DockerHost::stop_engine`], on the same
    /// data root and socket, and waits until it answers. Images and
    /// containers are still there; containers come back running only if
    /// their restart policy says so, as after a real service restart.
    pub fn start_engine(&mut self) -> Result<()> {
        if self.dockerd.is_some() {
            return Err(Error::unexpected(
                format!("start the engine of host {}", self.name),
                "its dockerd is already running; call stop_engine first",
            ));
        }
        self.spawn_dockerd()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let what = format!(
            "dockerd {} to answer GET /_ping on {}",
            self.name,
            self.socket.display()
        );
        let socket = self.socket.clone();
        let Some(dockerd) = self.dockerd.as_mut() else {
            return Err(Error::unexpected(what, "dockerd is not running"));
        };
        wait_for(START_TIMEOUT, what, || {
            dockerd.ensure_running()?;
            Ok(probe::unix_get_status(&socket, "/_ping")
                .ok()
                .filter(|&code| code == 200)
                .map(drop))
        })
    }

    /// The host's name ("production").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dir holding the host's data root, exec root, socket and logs.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), ScratchDir::path)
    }

    /// The engine's unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The engine's address as `DOCKER_HOST` spells it: `unix:///…/docker.sock`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// dockerd's pid.
    pub fn pid(&self) -> u32 {
        self.dockerd.as_ref().map_or(0, Process::pid)
    }

    /// dockerd's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("dockerd.log")
    }

    /// Every live process belonging to this host: dockerd, its containerd,
    /// shims and container processes — not the clients of its socket (an
    /// agent watching it is not stopped with the engine).
    pub fn pids(&self) -> Vec<u32> {
        pids::processes_under_except(self.dir(), Some(&self.socket))
    }

    /// A `docker` command aimed at this host (and only at it: no contexts,
    /// no TLS settings and no client config from the machine).
    pub fn docker_command(&self) -> Command {
        let mut docker = Command::new(DOCKER.path);
        docker
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.dir().join("client"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        docker
    }

    /// Runs `docker ARGS…` against this host and returns its stdout (without
    /// the trailing newline). A failure names the command and carries stderr.
    pub fn docker<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut docker = self.docker_command();
        docker.args(args);
        command::checked(docker)
    }

    /// Builds a busybox image from `spec` and tags it `tag`; returns the image id.
    pub fn import_image(&self, tag: &str, spec: ImageSpec) -> Result<String> {
        let build = self.dir().join("images").join(
            self.images_built
                .fetch_add(1, Ordering::Relaxed)
                .to_string(),
        );
        std::fs::create_dir_all(&build)
            .map_err(Error::io(format!("create {}", build.display())))?;
        let tar = spec.build_tar(&build)?;
        let mut args: Vec<OsString> = vec!["import".into()];
        for change in spec.changes() {
            args.extend(["--change".into(), change.into()]);
        }
        args.extend([tar.into_os_string(), tag.into()]);
        let id = self.docker(args)?;
        std::fs::remove_dir_all(&build)
            .map_err(Error::io(format!("remove {}", build.display())))?;
        Ok(id)
    }

    /// Starts a container (detached, `--network=none`); returns its id.
    pub fn run(&self, run: Run) -> Result<String> {
        self.docker(run.to_args())
    }

    /// Force-removes a container (running or not).
    pub fn rm(&self, container: &str) -> Result<()> {
        self.docker(["rm", "--force", container]).map(drop)
    }

    /// Runs `argv` inside a running container and returns its stdout.
    pub fn exec(&self, container: &str, argv: &[&str]) -> Result<String> {
        let mut args = vec!["exec", container];
        args.extend_from_slice(argv);
        self.docker(args)
    }

    /// `docker inspect OBJECT` (a container or an image), as JSON.
    pub fn inspect(&self, object: &str) -> Result<serde_json::Value> {
        let out = self.docker(["inspect", object])?;
        let mut parsed: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
            Error::unexpected(
                format!("docker inspect {object} on host {}", self.name),
                e.to_string(),
            )
        })?;
        match parsed.get_mut(0) {
            Some(first) => Ok(first.take()),
            None => Err(Error::unexpected(
                format!("docker inspect {object} on host {}", self.name),
                format!("empty answer: {out}"),
            )),
        }
    }

    /// The id (`sha256:…`) of a local image.
    pub fn image_id(&self, image: &str) -> Result<String> {
        self.docker(["image", "inspect", "--format", "{{.Id}}", image])
    }

    /// The repo digests (`registry/repo@sha256:…`) of a local image; empty
    /// until it has been pushed or pulled.
    pub fn repo_digests(&self, image: &str) -> Result<Vec<String>> {
        let out = self.docker([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ])?;
        serde_json::from_str::<Option<Vec<String>>>(&out)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                Error::unexpected(
                    format!("RepoDigests of {image} on host {}", self.name),
                    e.to_string(),
                )
            })
    }

    /// Adds the tag `target` to `source`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        self.docker(["tag", source, target]).map(drop)
    }

    /// The ids of all containers, running or not.
    pub fn containers(&self) -> Result<Vec<String>> {
        let out = self.docker(["ps", "--all", "--quiet", "--no-trunc"])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Stops the host now and reports anything that would not clean up
    /// (dropping does the same and prints such problems instead).
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_daemon();
        match self.dir.take() {
            Some(dir) => dir.teardown(),
            None => Ok(()),
        }
    }

    /// Prints the tail of dockerd's log (done on drop when the test panics).
    pub fn print_log_tail(&mut self, reason: &str) {
        if let Some(dockerd) = self.dockerd.as_mut() {
            dockerd.print_log_tail(reason);
        }
    }

    /// Removes all containers, then stops dockerd and its containerd together.
    ///
    /// Signalling containerd too saves time when dockerd is slow to pass the
    /// signal on. dockerd then still sleeps ~1 s in its containerd supervisor
    /// before exiting, which is why a [`crate::Fleet`] stops its hosts in
    /// parallel. The dir's teardown then kills anything left, unmounts and
    /// deletes.
    fn stop_daemon(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail("test failed");
        }
        let Some(mut dockerd) = self.dockerd.take() else {
            return;
        };
        if dockerd.is_running()
            && let Ok(ids) = self.containers()
            && !ids.is_empty()
        {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(ids.iter().map(String::as_str));
            if let Err(error) = self.docker(args) {
                eprintln!("envparity-tests: host {}: {error}", self.name);
            }
        }
        dockerd.terminate();
        let helpers: Vec<u32> = self
            .pids()
            .into_iter()
            .filter(|&pid| pid != dockerd.pid())
            .collect();
        let survivors = pids::terminate(&helpers, STOP_TIMEOUT);
        if !survivors.is_empty() {
            eprintln!(
                "envparity-tests: host {}: pids {survivors:?} survived SIGKILL",
                self.name
            );
        }
        // Waits out the rest of dockerd's grace period, then SIGKILL.
        if let Err(error) = dockerd.stop() {
            eprintln!("envparity-tests: host {}: {error}", self.name);
        }
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        self.stop_daemon();
        // `dir` drops next: kills stragglers by pid, unmounts, removes.
    }
}
