//! [`Fleet`]: the hosts of several environments, a registry, and (once the
//! binaries exist) the aggregator and agents watching them, all under one
//! temp dir.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

pub(crate) mod agent;
pub(crate) mod aggregator;
pub(crate) mod exposed;
pub(crate) mod replicas;
pub(crate) mod store;

use crate::answer::Hosts;
use crate::cli::CliOutput;
use crate::docker_host::DockerHost;
use crate::error::{Error, Result};
use crate::key::write_fingerprint_key;
use crate::registry::Registry;
use crate::scratch::ScratchDir;
use crate::tools::{self, DOCKER_REGISTRY};
use crate::wait::wait_for;
use agent::{Agent, AgentBuilder};
use aggregator::{Aggregator, AggregatorBuilder};

/// What to start; see [`Fleet::builder`].
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct FleetBuilder {
    /// (name, dockerd config file content)
    hosts: Vec<(String, String)>,
    registry: bool,
    /// Host ids that get an agent certificate but no engine (for tests that
    /// report over gRPC themselves).
    identities: Vec<String>,
}

impl FleetBuilder {
    /// Adds a host (a dockerd) named `name`.
    pub fn host(mut self, name: &str) -> Self {
        self.hosts.push((name.to_owned(), "{}".to_owned()));
        self
    }

    /// Adds a host whose dockerd reads `daemon_json` as its config file.
    pub fn host_with_config(mut self, name: &str, daemon_json: &str) -> Self {
        self.hosts.push((name.to_owned(), daemon_json.to_owned()));
        self
    }

    /// Adds an agent identity `host_id` without an engine: [`Fleet::pki`]
    /// makes its certificate, for `grpc::ReportClient`.
    pub fn identity(mut self, host_id: &str) -> Self {
        self.identities.push(host_id.to_owned());
        self
    }

    /// Adds a registry the hosts can push to and pull from.
    pub fn registry(mut self) -> Self {
        self.registry = true;
        self
    }

    /// Starts everything, hosts and registry in parallel. If anything fails to
    /// start, whatever did start is torn down again.
    pub fn start(self) -> Result<Fleet> {
        tools::require_docker()?;
        if self.registry {
            DOCKER_REGISTRY.require()?;
        }
        for (i, (name, _)) in self.hosts.iter().enumerate() {
            if self.hosts[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::unexpected(
                    "Fleet::builder()",
                    format!("host {name:?} added twice"),
                ));
            }
        }
        let dir = ScratchDir::new()?;
        let hosts_dir = dir.path().join("hosts");
        std::fs::create_dir(&hosts_dir)
            .map_err(Error::io(format!("create {}", hosts_dir.display())))?;
        let (hosts, registry) = thread::scope(|scope| {
            let hosts: Vec<_> = self
                .hosts
                .iter()
                .map(|(name, config)| {
                    scope.spawn(|| DockerHost::start_in_with(&hosts_dir, name, config))
                })
                .collect();
            let registry = self
                .registry
                .then(|| scope.spawn(|| Registry::start_in(dir.path())));
            let hosts: Vec<Result<DockerHost>> = hosts.into_iter().map(join).collect();
            (hosts, registry.map(join))
        });
        // Collecting stops at the first error; the hosts already collected and
        // the results not yet looked at are dropped, which stops them.
        let hosts = hosts.into_iter().collect::<Result<Vec<_>>>()?;
        let registry = registry.transpose()?;
        let fingerprint_key = dir.path().join("fingerprint.key");
        write_fingerprint_key(&fingerprint_key)?;
        Ok(Fleet {
            hosts,
            registry,
            fingerprint_key,
            server: Mutex::new(None),
            started: AtomicUsize::new(0),
            pki: std::sync::OnceLock::new(),
            cli_credentials: Mutex::new(Vec::new()),
            identities: self.identities,
            dir,
        })
    }
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::unexpected(
            "start the fleet",
            "a start-up thread panicked",
        ))
    })
}

/// Running hosts (and maybe a registry), torn down on drop: hosts first (in
/// parallel), then the registry, then the fleet's dir with anything still
/// inside.
#[derive(Debug)]
pub struct Fleet {
    hosts: Vec<DockerHost>,
    registry: Option<Registry>,
    fingerprint_key: PathBuf,
    /// The URL of the aggregator started last, for agents and the CLI.
    server: Mutex<Option<String>>,
    /// Counts aggregators and agents started, to give each its own dir.
    started: AtomicUsize,
    /// The fleet's CA and certificates, made on first use.
    pki: std::sync::OnceLock<PathBuf>,
    /// Credentials `Fleet::cli` passes (TLS files of the `cli` client).
    cli_credentials: Mutex<Vec<String>>,
    /// Agent identities without an engine.
    identities: Vec<String>,
    dir: ScratchDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let mut hosts = std::mem::take(&mut self.hosts);
        if thread::panicking() {
            // Here: the stopping threads below are not panicking, and would not print.
            for host in &mut hosts {
                host.print_log_tail("test failed");
            }
        }
        // Each dockerd takes ~1 s to exit; stopping them side by side keeps a
        // fleet's teardown at about that.
        thread::scope(|scope| {
            for host in hosts {
                scope.spawn(move || drop(host));
            }
        });
    }
}

impl Fleet {
    /// Describes a fleet to start.
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    /// The host named `name`.
    ///
    /// # Panics
    /// If the fleet has no such host: that is a bug in the test.
    #[track_caller]
    pub fn host(&self, name: &str) -> &DockerHost {
        self.hosts
            .iter()
            .find(|host| host.name() == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.hosts.iter().map(DockerHost::name).collect();
                panic!("the fleet has no host {name:?} (hosts: {names:?})")
            })
    }

    /// The host named `name`, to stop and start its engine.
    ///
    /// # Panics
    /// If the fleet has no such host.
    #[track_caller]
    pub fn host_mut(&mut self, name: &str) -> &mut DockerHost {
        self.hosts
            .iter_mut()
            .find(|host| host.name() == name)
            .unwrap_or_else(|| panic!("the fleet has no host {name:?}"))
    }

    /// All hosts, in the order they were added.
    pub fn hosts(&self) -> &[DockerHost] {
        &self.hosts
    }

    /// The registry.
    ///
    /// # Panics
    /// If the fleet was built without `.registry()`.
    #[track_caller]
    pub fn registry(&self) -> &Registry {
        self.registry
            .as_ref()
            .expect("the fleet has no registry: add .registry() to Fleet::builder()")
    }

    /// The fleet's dir (hosts, registry, aggregator data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The fingerprint key file every agent of this fleet shares (32 random
    /// bytes, mode 0600).
    pub fn fingerprint_key(&self) -> &Path {
        &self.fingerprint_key
    }

    /// Describes an aggregator (`envparity serve`) to start.
    pub fn aggregator(&self) -> AggregatorBuilder<'_> {
        AggregatorBuilder::new(self)
    }

    /// Starts an aggregator with default settings; agents and [`Fleet::cli`]
    /// then talk to it. Keep the returned guard alive as long as it is needed.
    pub fn start_aggregator(&self) -> Result<Aggregator> {
        self.aggregator().start()
    }

    /// Describes an agent to start on `host`.
    pub fn agent<'f>(&'f self, host: &'f DockerHost) -> AgentBuilder<'f> {
        AgentBuilder::new(self, host)
    }

    /// Starts an agent on `host` with default settings: environment and host
    /// id are the host's name, reporting to the last aggregator started.
    pub fn start_agent(&self, host: &DockerHost) -> Result<Agent> {
        self.agent(host).start()
    }

    /// Starts a containerd node `name` in the fleet's dir, pulling from the
    /// fleet's registry, its pause image built on the fleet's first Docker
    /// host. Give the fleet `.identity(name)` for its agent's certificate.
    pub fn start_containerd(&self, name: &str) -> Result<crate::ContainerdHost> {
        let builder = self.hosts.first().ok_or_else(|| {
            Error::unexpected(
                format!("start containerd {name}"),
                "the fleet has no Docker host to build the pause image on",
            )
        })?;
        crate::ContainerdHost::start_in(self.dir(), name, &self.registry().address(), builder)
    }

    /// Describes an agent reading `node`'s CRI: `--runtime-socket` only,
    /// so `--runtime auto` must tell it is a CRI.
    pub fn containerd_agent<'f>(&'f self, node: &crate::ContainerdHost) -> AgentBuilder<'f> {
        self.cri_agent(node, node.socket())
    }

    /// Describes an agent reading `node`'s CRI through `socket` (e.g. a
    /// [`crate::CriReadOnlyProxy`]).
    pub fn cri_agent<'f>(
        &'f self,
        node: &crate::ContainerdHost,
        socket: &Path,
    ) -> AgentBuilder<'f> {
        let socket = socket.display().to_string();
        // No Docker engine there: --docker-host must not be what is read.
        let nowhere = format!("unix://{socket}.no-docker");
        AgentBuilder::named(
            self,
            node.name(),
            nowhere,
            vec!["--runtime-socket".to_owned(), socket],
        )
    }

    /// Starts a Podman host `name` in the fleet's dir, pulling from the
    /// fleet's registry. Give the fleet `.identity(name)` for its agent's
    /// certificate.
    pub fn start_podman(&self, name: &str) -> Result<crate::PodmanHost> {
        crate::PodmanHost::start_in(self.dir(), name, &self.registry().address())
    }

    /// Describes an agent watching `host`'s Docker-compatible socket with
    /// `--runtime auto`, which must tell it is Podman.
    pub fn podman_agent<'f>(&'f self, host: &crate::PodmanHost) -> AgentBuilder<'f> {
        AgentBuilder::named(self, host.name(), host.docker_host(), Vec::new())
    }

    /// Runs `envparity --server URL -o json ARGS…` against the aggregator
    /// (with the `cli` query certificate when it serves TLS).
    pub fn cli(&self, args: &[&str]) -> Result<CliOutput> {
        self.cli_as("json", args)
    }

    /// [`Fleet::cli`] with `-o FORMAT` (`json`, `yaml`, `table`, `wide`).
    pub fn cli_as(&self, format: &str, args: &[&str]) -> Result<CliOutput> {
        self.cli_at(&self.server()?, format, args)
    }

    /// [`Fleet::cli_as`] against the aggregator at `server` rather than
    /// the fleet's (one replica of several, say).
    pub fn cli_at(&self, server: &str, format: &str, args: &[&str]) -> Result<CliOutput> {
        let mut all: Vec<&str> = Vec::new();
        let credentials = self
            .cli_credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        all.extend(credentials.iter().map(String::as_str));
        all.extend(args);
        CliOutput::run_as(server, format, &all)
    }

    /// `envparity --server URL` with the fleet's query credentials and no
    /// output format, for tests that need the raw output of a format.
    pub fn cli_command(&self) -> Result<std::process::Command> {
        let mut command =
            crate::cli::project_command(&crate::bins::cargo_bin(crate::cli::CLI_BIN)?);
        command.arg("--server").arg(self.server()?).args(
            self.cli_credentials
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .iter(),
        );
        Ok(command)
    }

    /// The fleet's PKI dir, made by `envparity certs` on first use: `ca.pem`,
    /// `server.pem` (for 127.0.0.1), `agent-<host>.pem` for every host and
    /// `client-cli.pem` (each with its `-key.pem`).
    pub fn pki(&self) -> Result<&Path> {
        if let Some(dir) = self.pki.get() {
            return Ok(dir);
        }
        let dir = self.dir.path().join("pki");
        let mut certs = crate::cli::project_command(&crate::bins::cargo_bin(crate::cli::CLI_BIN)?);
        certs.arg("certs").arg("--dir").arg(&dir).args([
            "--server-name",
            "127.0.0.1",
            "--client",
            "cli",
        ]);
        for host in &self.hosts {
            certs.arg("--agent").arg(host.name());
        }
        for id in &self.identities {
            certs.arg("--agent").arg(id);
        }
        crate::command::checked(certs)?;
        Ok(self.pki.get_or_init(|| dir))
    }

    pub(crate) fn set_cli_credentials(&self, args: Vec<String>) {
        *self
            .cli_credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = args;
    }

    /// Runs the CLI until `done` accepts its output, for at most `timeout`;
    /// `what` describes the awaited state for the timeout error.
    pub fn cli_until(
        &self,
        timeout: Duration,
        what: &str,
        args: &[&str],
        mut done: impl FnMut(&CliOutput) -> bool,
    ) -> Result<CliOutput> {
        let mut last = None;
        let waited = wait_for(timeout, what, || {
            let out = self.cli(args)?;
            if done(&out) {
                return Ok(Some(out));
            }
            last = Some(out);
            Ok(None)
        });
        waited.map_err(|error| match (error, last) {
            (Error::Timeout { what, after, .. }, Some(out)) => Error::Timeout {
                what,
                after,
                last: format!("; last answer: {out}"),
            },
            (error, _) => error,
        })
    }

    /// Waits until `envparity hosts -o json` lists every one of `host_ids`
    /// as `fresh` (see docs/json-output.md).
    pub fn wait_for_hosts(&self, host_ids: &[&str], timeout: Duration) -> Result<CliOutput> {
        self.cli_until(
            timeout,
            &format!("the aggregator to list hosts {host_ids:?} as fresh"),
            &["hosts"],
            |out| {
                let hosts = out
                    .try_answer::<Hosts>()
                    .map(|a| a.hosts)
                    .unwrap_or_default();
                out.code == 0
                    && host_ids.iter().all(|id| {
                        hosts
                            .iter()
                            .any(|host| host.host_id == *id && host.state == "fresh")
                    })
            },
        )
    }

    /// The URL of the aggregator started last.
    pub fn server(&self) -> Result<String> {
        self.server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::unexpected(
                    "talk to the aggregator",
                    "none started: call fleet.start_aggregator() first",
                )
            })
    }

    pub(crate) fn set_server(&self, url: String) {
        *self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(url);
    }

    /// A new dir for an aggregator or agent: `<fleet>/<kind>-<n>`.
    pub fn new_dir(&self, kind: &str) -> Result<ScratchDir> {
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        ScratchDir::child(self.dir.path(), &format!("{kind}-{n}"))
    }
}
