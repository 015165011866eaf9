//! [`Aggregator`]: a real `envparity serve` on a loopback port.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Fleet;
use super::replicas::Replicas;
use crate::bins::cargo_bin;
use crate::cli::{CLI_BIN, project_command};
use crate::error::{Error, Result};
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::wait::{free_port, wait_for};

/// How long the aggregator may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a replica on PostgreSQL logs once it holds the writer lease or
/// waits for it as a standby.
const LEASE_LINE: &str = "holds the writer lease";

/// What an aggregator logs once it serves.
const SERVING_LINE: &str = "envparity aggregator listening";

/// `--lease-ttl` of the aggregators on PostgreSQL, unless a test sets it.
const TEST_LEASE_TTL: &str = "2s";

/// How to start an aggregator; see [`Fleet::aggregator`].
#[derive(Debug)]
#[must_use]
pub struct AggregatorBuilder<'f> {
    fleet: &'f Fleet,
    args: Vec<String>,
    tls: bool,
    envs: Vec<(String, String)>,
    store: Option<String>,
    sqlite: bool,
    metrics: bool,
}

impl<'f> AggregatorBuilder<'f> {
    pub(crate) fn new(fleet: &'f Fleet) -> Self {
        Self {
            fleet,
            args: Vec::new(),
            tls: true,
            store: None,
            sqlite: false,
            metrics: false,
            envs: Vec::new(),
        }
    }

    /// Serves from its own `--data-dir` (SQLite) even when the suite runs
    /// on PostgreSQL (`ENVPARITY_E2E_STORE=postgres`): for the tests of
    /// the embedded store itself (its file, its import).
    pub fn sqlite(mut self) -> Self {
        self.sqlite = true;
        self
    }

    /// Serve plain text (`--insecure-plaintext`, loopback) instead of the
    /// default mutual TLS; agents and [`Fleet::cli`] then connect with
    /// `--insecure-plaintext` too. Only for tests that must see the bytes on
    /// the wire or test plain text itself.
    ///
    /// By default the aggregator serves TLS 1.3 with the fleet's
    /// certificates ([`Fleet::pki`]); agents report with their host's
    /// certificate and [`Fleet::cli`] queries with the `cli` certificate.
    pub fn plaintext(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Serves `/metrics` and `/ready` on a port of its own (each replica's
    /// own): see [`Aggregator::metrics_url`].
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// `--stale-after`: how long a silent host stays fresh (`"3s"`).
    pub fn stale_after(self, duration: &str) -> Self {
        self.arg("--stale-after").arg(duration)
    }

    /// An environment variable for the process (e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Serves from the store at `url` (`--store`, e.g. a [`Postgres`]
    /// database) instead of a `--data-dir` of its own.
    ///
    /// [`Postgres`]: crate::Postgres
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store = Some(url.into());
        self
    }

    /// Any other flag of `envparity serve`, passed through as is.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts `envparity serve --listen 127.0.0.1:PORT --data-dir DIR …` and
    /// waits until it accepts connections; agents and `fleet.cli` then use it.
    pub fn start(self) -> Result<Aggregator> {
        let fleet = self.fleet;
        let mut aggregator = self.prepare(1)?.remove(0);
        aggregator.spawn()?;
        fleet.set_server(aggregator.url());
        Ok(aggregator)
    }

    /// Starts `n` replicas of one PostgreSQL database (given with
    /// [`AggregatorBuilder::store`]), each with a metrics listener, behind
    /// a TCP load balancer; agents and `fleet.cli` then use the balancer.
    /// Returns once one serves.
    pub fn start_replicas(self, n: usize) -> Result<Replicas> {
        if self.store.is_none() {
            return Err(Error::unexpected(
                "start replicas",
                "replicas share a PostgreSQL database: call .store(url) first",
            ));
        }
        let fleet = self.fleet;
        let mut replicas = self.metrics().prepare(n)?;
        for replica in &mut replicas {
            replica.standby = true;
            replica.spawn()?;
        }
        let replicas = Replicas::start(fleet, replicas)?;
        fleet.set_server(replicas.url());
        Ok(replicas)
    }

    /// `n` aggregators as this builder says, not started yet; with a store
    /// given, all serve from it.
    fn prepare(self, n: usize) -> Result<Vec<Aggregator>> {
        let binary = cargo_bin(CLI_BIN)?;
        let mut args = self.args;
        if self.tls {
            let pki = self.fleet.pki()?;
            let file = |name: &str| pki.join(name).display().to_string();
            args.extend([
                "--tls-cert".to_owned(),
                file("server.pem"),
                "--tls-key".to_owned(),
                file("server-key.pem"),
                "--tls-client-ca".to_owned(),
                file("ca.pem"),
            ]);
            self.fleet.set_cli_credentials(vec![
                "--tls-ca".to_owned(),
                file("ca.pem"),
                "--tls-cert".to_owned(),
                file("client-cli.pem"),
                "--tls-key".to_owned(),
                file("client-cli-key.pem"),
            ]);
        } else {
            args.push("--insecure-plaintext".to_owned());
            self.fleet
                .set_cli_credentials(vec!["--insecure-plaintext".to_owned()]);
        }
        let mut aggregators = Vec::with_capacity(n);
        for _ in 0..n {
            let dir = self.fleet.new_dir("aggregator")?;
            let data_dir = dir.path().join("data");
            std::fs::create_dir(&data_dir)
                .map_err(Error::io(format!("create {}", data_dir.display())))?;
            let store = match &self.store {
                Some(url) => Some(url.clone()),
                None if self.sqlite => None,
                None => super::store::fresh_database_for(dir.path())?,
            };
            let mut args = args.clone();
            // On PostgreSQL a replica killed with SIGKILL keeps the writer
            // lease until it expires; the one started after it waits that
            // long. Short terms keep crash tests quick.
            if store.is_some() && !args.iter().any(|a| a == "--lease-ttl") {
                args.extend(["--lease-ttl".to_owned(), TEST_LEASE_TTL.to_owned()]);
            }
            let metrics_port = if self.metrics {
                let port = free_port()?;
                args.extend(["--metrics-listen".to_owned(), format!("127.0.0.1:{port}")]);
                Some(port)
            } else {
                None
            };
            aggregators.push(Aggregator {
                port: free_port()?,
                binary: binary.clone(),
                args,
                scheme: if self.tls { "https" } else { "http" },
                envs: self.envs.clone(),
                store,
                data_dir,
                standby: false,
                metrics_port,
                process: None,
                dir,
            });
        }
        Ok(aggregators)
    }
}

/// Waits until `process` logged `line` more than `before` times.
fn logs_again(process: &mut Process, line: &str, before: usize) -> Result<()> {
    let what = format!("{} to log {line:?}", process.name());
    wait_for(START_TIMEOUT, &what, || {
        if process.log().matches(line).count() > before {
            return Ok(Some(()));
        }
        process.ensure_running()?;
        Ok(None)
    })
}

/// A running aggregator; dropping it stops it and deletes its data.
#[derive(Debug)]
pub struct Aggregator {
    port: u16,
    scheme: &'static str,
    envs: Vec<(String, String)>,
    binary: PathBuf,
    args: Vec<String>,
    store: Option<String>,
    data_dir: PathBuf,
    /// A replica may start as a standby, listening on nothing: started
    /// once its log says it holds the writer lease or waits for it.
    standby: bool,
    metrics_port: Option<u16>,
    process: Option<Process>,
    dir: ScratchDir,
}

impl Aggregator {
    fn spawn(&mut self) -> Result<()> {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut serve = project_command(&self.binary);
        serve.arg("serve").arg("--listen").arg(listen.to_string());
        match &self.store {
            Some(url) => serve.arg("--store").arg(url),
            None => serve.arg("--data-dir").arg(&self.data_dir),
        };
        serve
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        let logged = self.log().matches(LEASE_LINE).count();
        let served = self.log().matches(SERVING_LINE).count();
        let mut process = Process::spawn(
            format!("aggregator {listen}"),
            serve,
            self.dir.path().join("aggregator.log"),
        )?;
        // The log holds every run: wait for one more line of this one.
        if self.standby {
            logs_again(&mut process, LEASE_LINE, logged)?;
        } else {
            // The port is bound before the store is loaded (and, on
            // PostgreSQL, before the writer lease is taken).
            process.wait_for_port(listen, START_TIMEOUT)?;
            logs_again(&mut process, SERVING_LINE, served)?;
        }
        self.process = Some(process);
        Ok(())
    }

    /// `http(s)://127.0.0.1:PORT`, what agents and the CLI connect to.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// `http://127.0.0.1:PORT/PATH` of its metrics listener, when the
    /// builder asked for one ([`AggregatorBuilder::metrics`]).
    pub fn metrics_url(&self, path: &str) -> Option<String> {
        self.metrics_port
            .map(|port| format!("http://127.0.0.1:{port}{path}"))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `--data-dir`, which survives [`Aggregator::restart`] (and holds
    /// nothing when it serves from PostgreSQL).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The `--store` URL it serves from, when not its data dir.
    pub fn store_url(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// What its store holds, as bytes, each part named `store: …`: the
    /// files of its data dir, or its PostgreSQL database's tables.
    pub fn stored(&self) -> Result<Vec<(String, Vec<u8>)>> {
        if let Some(url) = &self.store {
            return super::store::database_contents(url);
        }
        let dir = &self.data_dir;
        let entries =
            std::fs::read_dir(dir).map_err(Error::io(format!("read {}", dir.display())))?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(Error::io(format!("read {}", dir.display())))?
                .path();
            let bytes =
                std::fs::read(&path).map_err(Error::io(format!("read {}", path.display())))?;
            out.push((format!("store: {}", path.display()), bytes));
        }
        Ok(out)
    }

    /// Its process (pid, log), while it runs.
    pub fn process(&mut self) -> Option<&mut Process> {
        self.process.as_mut()
    }

    /// Its log (all runs, appended).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aggregator.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL); its data stays.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.stop()?;
        }
        Ok(())
    }

    /// Kills it with SIGKILL (a crash: nothing is flushed or closed); its
    /// data stays for [`Aggregator::restart`].
    pub fn crash(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
        }
        Ok(())
    }

    /// Stops it and starts it again on the same port with the same data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Stops it and starts it again on the same port, serving from the
    /// store at `url` (`--store`) from now on.
    pub fn restart_on_store(&mut self, url: impl Into<String>) -> Result<()> {
        self.stop()?;
        self.store = Some(url.into());
        self.spawn()
    }
}
