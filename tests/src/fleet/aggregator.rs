//! [`Aggregator`]: a real `envparity serve` on a loopback port.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Fleet;
use crate::bins::cargo_bin;
use crate::cli::{CLI_BIN, project_command};
use crate::error::{Error, Result};
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::wait::free_port;

/// How long the aggregator may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

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
}

impl<'f> AggregatorBuilder<'f> {
    pub(crate) fn new(fleet: &'f Fleet) -> Self {
        Self {
            fleet,
            args: Vec::new(),
            tls: true,
            store: None,
            sqlite: false,
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
        let dir = self.fleet.new_dir("aggregator")?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir)
            .map_err(Error::io(format!("create {}", data_dir.display())))?;
        let store = match self.store {
            Some(url) => Some(url),
            None if self.sqlite => None,
            None => super::store::fresh_database_for(dir.path())?,
        };
        let mut aggregator = Aggregator {
            port: free_port()?,
            binary,
            args,
            scheme: if self.tls { "https" } else { "http" },
            envs: self.envs,
            store,
            data_dir,
            process: None,
            dir,
        };
        aggregator.spawn()?;
        self.fleet.set_server(aggregator.url());
        Ok(aggregator)
    }
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
        let mut process = Process::spawn(
            format!("aggregator {listen}"),
            serve,
            self.dir.path().join("aggregator.log"),
        )?;
        process.wait_for_port(listen, START_TIMEOUT)?;
        self.process = Some(process);
        Ok(())
    }

    /// `http(s)://127.0.0.1:PORT`, what agents and the CLI connect to.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
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
