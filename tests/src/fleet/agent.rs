//! [`Agent`]: a real `envparity-agent` watching one [`DockerHost`].

use super::Fleet;
use crate::bins::cargo_bin;
use crate::cli::project_command;
use crate::docker_host::DockerHost;
use crate::error::Result;
use crate::process::Process;
use crate::scratch::ScratchDir;

/// The agent binary's name.
pub const AGENT_BIN: &str = "envparity-agent";

/// The heartbeat interval agents get unless a test sets one: short, so tests
/// about liveness do not wait long.
pub const DEFAULT_HEARTBEAT: &str = "1s";

/// How to start an agent; see [`Fleet::agent`].
#[derive(Debug)]
#[must_use]
pub struct AgentBuilder<'f> {
    fleet: &'f Fleet,
    /// The host's name (its certificate is `agent-<name>`).
    host_name: String,
    /// The host's engine address (`--docker-host`).
    host_engine: String,
    environment: String,
    host_id: String,
    heartbeat: String,
    args: Vec<String>,
    without_certificate: bool,
    envs: Vec<(String, String)>,
    aggregator: Option<String>,
    fingerprint_key: Option<std::path::PathBuf>,
    docker_host: Option<String>,
    state_dir: Option<std::path::PathBuf>,
}

impl<'f> AgentBuilder<'f> {
    pub(crate) fn new(fleet: &'f Fleet, host: &'f DockerHost) -> Self {
        Self::named(fleet, host.name(), host.docker_host(), Vec::new())
    }

    /// An agent for the host `name` whose engine is at `engine`, with
    /// `args` (e.g. `--runtime containerd`).
    pub(crate) fn named(fleet: &'f Fleet, name: &str, engine: String, args: Vec<String>) -> Self {
        Self {
            fleet,
            host_name: name.to_owned(),
            host_engine: engine,
            environment: name.to_owned(),
            host_id: name.to_owned(),
            heartbeat: DEFAULT_HEARTBEAT.to_owned(),
            args,
            without_certificate: false,
            envs: Vec::new(),
            aggregator: None,
            fingerprint_key: None,
            docker_host: None,
            state_dir: None,
        }
    }

    /// `--environment` (default: the host's name).
    pub fn environment(mut self, environment: &str) -> Self {
        environment.clone_into(&mut self.environment);
        self
    }

    /// `--host-id` (default: the host's name).
    pub fn host_id(mut self, host_id: &str) -> Self {
        host_id.clone_into(&mut self.host_id);
        self
    }

    /// `--heartbeat-interval` (default [`DEFAULT_HEARTBEAT`]).
    pub fn heartbeat_interval(mut self, interval: &str) -> Self {
        interval.clone_into(&mut self.heartbeat);
        self
    }

    /// `--clear-env PATTERN`: report these variables in clear, not fingerprinted.
    pub fn clear_env(self, pattern: &str) -> Self {
        self.arg("--clear-env").arg(pattern)
    }

    /// `--label key=value` on the host's reports.
    pub fn label(self, key: &str, value: &str) -> Self {
        self.arg("--label").arg(format!("{key}={value}"))
    }

    /// Against a TLS aggregator: trust the fleet CA but present no client
    /// certificate.
    pub fn without_certificate(mut self) -> Self {
        self.without_certificate = true;
        self
    }

    /// Report to `url` instead of the fleet's aggregator (e.g. through a
    /// [`crate::Tap`]).
    pub fn aggregator(mut self, url: &str) -> Self {
        self.aggregator = Some(url.to_owned());
        self
    }

    /// `--state-dir` (default: `state-<host id>` in the fleet's dir, so it
    /// survives restarts of the agent, as `/var/lib/envparity-agent` does).
    pub fn state_dir(mut self, dir: &std::path::Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self
    }

    /// Watch the engine at `url` instead of the host's own socket (e.g.
    /// through a [`crate::ReadOnlyProxy`]).
    pub fn docker_host(mut self, url: &str) -> Self {
        self.docker_host = Some(url.to_owned());
        self
    }

    /// Fingerprint with the key in `path` instead of the fleet's shared key
    /// (e.g. a host already rotated to a new key).
    pub fn fingerprint_key(mut self, path: &std::path::Path) -> Self {
        self.fingerprint_key = Some(path.to_owned());
        self
    }

    /// An environment variable for the process (e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Any other agent flag, passed through as is.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the agent against the fleet's last-started aggregator, with the
    /// fleet's shared fingerprint key. It runs until the guard is dropped.
    pub fn start(self) -> Result<Agent> {
        let server = match &self.aggregator {
            Some(url) => url.clone(),
            None => self.fleet.server()?,
        };
        let binary = cargo_bin(AGENT_BIN)?;
        let mut tls = Vec::new();
        if server.starts_with("http://") {
            tls.push("--insecure-plaintext".to_owned());
        } else {
            // The fleet CA, and this host's certificate (named after the
            // host, whatever --host-id claims).
            let pki = self.fleet.pki()?;
            tls.push("--tls-ca".to_owned());
            tls.push(pki.join("ca.pem").display().to_string());
            if !self.without_certificate {
                let cert = |suffix: &str| {
                    pki.join(format!("agent-{}{suffix}", self.host_name))
                        .display()
                        .to_string()
                };
                tls.extend([
                    "--tls-cert".to_owned(),
                    cert(".pem"),
                    "--tls-key".to_owned(),
                    cert("-key.pem"),
                ]);
            }
        }
        let dir = self.fleet.new_dir(&format!("agent-{}", self.host_id))?;
        let mut agent = project_command(&binary);
        agent
            .arg("--aggregator")
            .arg(&server)
            .arg("--environment")
            .arg(&self.environment)
            .arg("--host-id")
            .arg(&self.host_id)
            .arg("--docker-host")
            .arg(
                self.docker_host
                    .clone()
                    .unwrap_or_else(|| self.host_engine.clone()),
            )
            .arg("--fingerprint-key-file")
            .arg(
                self.fingerprint_key
                    .as_deref()
                    .unwrap_or_else(|| self.fleet.fingerprint_key()),
            )
            .arg("--heartbeat-interval")
            .arg(&self.heartbeat)
            .arg("--state-dir")
            .arg(
                self.state_dir
                    .clone()
                    .unwrap_or_else(|| self.fleet.dir().join(format!("state-{}", self.host_id))),
            )
            .args(&tls)
            .args(full_snapshots().then_some("--full-snapshots"))
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        let process = Process::spawn(
            format!("agent {}", self.host_id),
            agent,
            dir.path().join("agent.log"),
        )?;
        Ok(Agent {
            environment: self.environment,
            host_id: self.host_id,
            process,
            _dir: dir,
        })
    }
}

/// A running agent; dropping it stops it.
#[derive(Debug)]
pub struct Agent {
    environment: String,
    host_id: String,
    process: Process,
    _dir: ScratchDir,
}

impl Agent {
    /// The environment it reports.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The host id it reports as.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Its process (pid, log, stop).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Stops it (SIGTERM, then SIGKILL), as a host going dark would.
    pub fn stop(&mut self) -> Result<()> {
        self.process.stop().map(drop)
    }
}

/// Whether agents run as agents from before deltas did, sending whole
/// snapshots only (`ENVPARITY_E2E_FULL_SNAPSHOTS` set: `scripts/test.sh`
/// runs part of the suite so, to check that the aggregator still serves
/// them).
pub fn full_snapshots() -> bool {
    std::env::var_os("ENVPARITY_E2E_FULL_SNAPSHOTS").is_some()
}
