//! The agent's configuration: command-line flags, environment variables and
//! an optional TOML file, in that order of precedence.
//!
//! Every setting can come from any of the three sources, so the same agent
//! binary fits a systemd unit (file), a container (environment) and a quick
//! manual run (flags). Each is declared once, in [`settings`]; the
//! mechanism shared with the aggregator (`envparity_settings`) derives the
//! flags, the file's keys, the precedence, errors naming where a bad value
//! came from, and the `check-config` summary. Environment variables are
//! read through [`EnvSource`], so tests inject them instead of mutating the
//! process environment (which is unsound with threads running).

pub mod settings;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use clap::{FromArgMatches, Subcommand};
use envparity_proto::transport::{ClientTls, Plaintext};
use envparity_settings::{Flags, Report, Sources};
use std::net::SocketAddr;
use std::path::PathBuf;

pub use envparity_settings::parse::LogFormat;
pub use envparity_settings::{EnvSource, Error as SettingError, Origin, ProcessEnv};
pub use settings::{
    DEFAULT_AGGREGATOR, DEFAULT_DOCKER_HOST, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_RESYNC_INTERVAL,
};

use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::{FleetKey, KeyError};
use crate::machine::{hostname, read_machine_id};
use settings as s;

/// What the agent does with its configuration. Without a command it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Action {
    /// Validate the configuration and print it (never the key), then exit
    ///
    /// Resolves flags, environment and the --config file exactly as a run
    /// would and loads the fleet key file, then prints every effective
    /// setting and where it came from, and exits 0; or prints `error: ...`
    /// naming the file or setting and exits 2. Contacts neither the engine
    /// nor the aggregator. Takes the same flags as a run, e.g.
    /// `envparity-agent --config /etc/envparity/agent.toml check-config`
    /// (systemd's ExecStartPre).
    CheckConfig,
}

/// The parsed command line: the command, and the settings its flags set.
#[derive(Debug, Clone, Default)]
pub struct Cli {
    /// Without a command, the agent runs (until SIGTERM, or once with --once).
    pub action: Option<Action>,
    /// The settings the flags set.
    pub flags: Flags,
}

const ABOUT: &str = "envparity-agent: reports what runs on this host to the envparity \
                     aggregator, so production can be proven to run the same thing as staging.";

const LONG_ABOUT: &str = "envparity-agent: reports what runs on this host to the envparity \
    aggregator, so production can be proven to run the same thing as staging.\n\n\
    Every flag can also be set through its environment variable or in the --config file \
    (keys are the long flag names with `_`; `labels` for --label; not `once`); flags win \
    over the environment, which wins over the file. Logs go to stderr; the log level comes \
    from RUST_LOG (default: info). `envparity-agent check-config` validates a configuration \
    without running.";

/// The clap command, with every flag's help naming its environment variable
/// and default. Flags are global, so they go before or after a command:
/// `envparity-agent --config F check-config` and `envparity-agent check-config
/// --config F` are the same.
pub fn command() -> clap::Command {
    let cmd = Action::augment_subcommands(clap::Command::new("envparity-agent"))
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT);
    s::TABLE.augment(cmd, true)
}

/// Parses command-line arguments (the first is the program name). Errors are
/// clap's, including `--help` and `--version`; callers usually `exit()` them.
pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let action = match matches.subcommand() {
        Some((_, sub)) => {
            let action = Action::from_arg_matches(&matches)?;
            // Flags after the command land in its matches.
            return Ok(Cli {
                action: Some(action),
                flags: Flags::from(sub),
            });
        }
        None => None,
    };
    Ok(Cli {
        action,
        flags: Flags::from(matches),
    })
}

/// Why the configuration is unusable. Every message names the setting or
/// file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting, or the config file, is wrong: names the flag, the variable
    /// or the file, line and key.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The fleet key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No `--host-id`, no machine id and no host name.
    #[error(
        "cannot determine the host id: {} is missing or empty and the host name is unknown; set --host-id",
        path.display()
    )]
    NoHostId {
        /// The machine-id file looked at.
        path: PathBuf,
    },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC address of the aggregator.
    pub aggregator: String,
    /// Validated environment name.
    pub environment: String,
    /// Host identity.
    pub host_id: String,
    /// Engine address.
    pub docker_host: String,
    /// Which runtime to read (`--runtime`).
    pub runtime: crate::runtime::detect::RuntimeChoice,
    /// The runtime's socket (`--runtime-socket`).
    pub runtime_socket: Option<PathBuf>,
    /// Host labels, sorted by key, keys unique.
    pub labels: Vec<(String, String)>,
    /// The fleet key (redacted in `Debug`).
    pub fingerprint_key: FleetKey,
    /// The fleet key's id.
    pub fingerprint_key_id: String,
    /// Which env values may go in clear.
    pub clear_env: ClearEnvPolicy,
    /// Which config file values may go in clear.
    pub clear_config: crate::config_files::ClearConfigPolicy,
    /// Which mounted configuration files are read, and how much.
    pub config_files: crate::config_files::bounds::Bounds,
    /// Root of the host filesystem.
    pub host_root: PathBuf,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Full re-collection period.
    pub resync_interval: Duration,
    /// Push one snapshot and exit.
    pub once: bool,
    /// Never send deltas.
    pub full_snapshots: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Where to serve metrics; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS files for an https:// aggregator.
    pub tls: ClientTls,
    /// Where the journal lives; `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// The journal's bound.
    pub journal_max_bytes: u64,
}

/// A configuration that `check-config` accepted: the resolved settings and
/// the summary it prints (every effective setting and where it came from,
/// never the fleet key).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The resolved configuration.
    pub config: Config,
    /// What `check-config` prints.
    pub report: Report,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.report.fmt(f)
    }
}

impl Config {
    /// Resolves the configuration from parsed flags, the environment and
    /// the config file they name, then loads the fleet key. Flags win over
    /// the environment, which wins over the file; list settings (labels,
    /// clear-env) are taken whole from the first source that sets them.
    pub fn resolve(cli: Cli, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Self::check(cli, env).map(|checked| checked.config)
    }

    /// [`Config::resolve`], also returning the summary `check-config`
    /// prints. The two cannot disagree, because `resolve` is this.
    pub fn check(cli: Cli, env: &dyn EnvSource) -> Result<Checked, ConfigError> {
        let sources = Sources::new(&s::TABLE, &cli.flags, env).open(&s::CONFIG)?;
        let aggregator = sources.value(&s::AGGREGATOR)?;
        let environment = sources.value(&s::ENVIRONMENT)?.value;
        let host_root = sources.value(&s::HOST_ROOT)?.value;
        let host_id = match sources.get(&s::HOST_ID)? {
            Some(id) => id.value,
            None => {
                let (id, how) = derive_host_id(&host_root, hostname())?;
                sources.derived(&s::HOST_ID, id, how).value
            }
        };
        let docker_host = sources.value(&s::DOCKER_HOST)?.value;
        let runtime = sources
            .value(&s::RUNTIME)?
            .value
            .parse()
            .unwrap_or_default();
        let runtime_socket = sources.get(&s::RUNTIME_SOCKET)?.map(|p| p.value);
        let labels = sources.value(&s::LABELS)?.value;
        let fingerprint_key_file = sources.value(&s::FINGERPRINT_KEY_FILE)?.value;
        let fingerprint_key = FleetKey::load(&fingerprint_key_file)?;
        let fingerprint_key_id = match sources.get(&s::FINGERPRINT_KEY_ID)? {
            Some(id) => id.value,
            None => {
                let id = fingerprint_key.derived_id();
                sources
                    .derived(&s::FINGERPRINT_KEY_ID, id, "derived from the key")
                    .value
            }
        };
        let clear_env = ClearEnvPolicy::new(sources.value(&s::CLEAR_ENV)?.value);
        let clear_config =
            crate::config_files::ClearConfigPolicy::parse(&sources.value(&s::CLEAR_CONFIG)?.value)
                .unwrap_or_default();
        let config_files = crate::config_files::bounds::Bounds {
            include: sources.value(&s::CONFIG_FILE_INCLUDE)?.value,
            exclude: sources.value(&s::CONFIG_FILE_EXCLUDE)?.value,
            max_files: sources.value(&s::CONFIG_FILE_MAX_FILES)?.value,
            max_file_bytes: sources.value(&s::CONFIG_FILE_MAX_BYTES)?.value,
            max_total_bytes: sources.value(&s::CONFIG_FILE_MAX_TOTAL_BYTES)?.value,
        };
        let heartbeat_interval = sources.value(&s::HEARTBEAT_INTERVAL)?.value;
        let resync_interval = sources.value(&s::RESYNC_INTERVAL)?.value;
        let metrics_listen = sources.get(&s::METRICS_LISTEN)?.map(|a| a.value);
        let state_dir = sources.get(&s::STATE_DIR)?.map(|d| d.value);
        let journal_max_bytes = sources.value(&s::JOURNAL_MAX_BYTES)?.value;
        let path = |setting| Ok::<_, SettingError>(sources.get(setting)?.map(|p| p.value));
        let tls = ClientTls {
            ca: path(&s::TLS_CA)?,
            cert: path(&s::TLS_CERT)?,
            key: path(&s::TLS_KEY)?,
            plaintext: Plaintext::from_flags(
                sources.value(&s::INSECURE_PLAINTEXT)?.value,
                sources.value(&s::INSECURE_PLAINTEXT_ANYWHERE)?.value,
            ),
        };
        let once = sources.value(&s::ONCE)?.value;
        let full_snapshots = sources.value(&s::FULL_SNAPSHOTS)?.value;
        let log_format = sources.value(&s::LOG_FORMAT)?.value;

        // The scheme, the TLS files and the plain-text allowance must agree
        // now, not at the first report.
        let endpoint =
            tonic::transport::Endpoint::from_shared(aggregator.value.clone()).map_err(|e| {
                aggregator.invalid(format!(
                    "invalid aggregator URL {:?}: {e}",
                    aggregator.value
                ))
            })?;
        tls.apply(endpoint, &aggregator.value)
            .map_err(|e| aggregator.invalid(e.to_string()))?;

        let mut report = sources.report();
        report.push("transport", transport(&tls));
        let config = Self {
            aggregator: aggregator.value,
            environment,
            host_id,
            docker_host,
            runtime,
            runtime_socket,
            labels,
            fingerprint_key,
            fingerprint_key_id,
            clear_env,
            clear_config,
            config_files,
            host_root,
            heartbeat_interval,
            resync_interval,
            once,
            full_snapshots,
            log_format,
            metrics_listen,
            tls,
            state_dir,
            journal_max_bytes,
        };
        Ok(Checked { config, report })
    }
}

impl Config {
    /// Where to look for the container runtime.
    pub fn runtime_target(&self) -> crate::runtime::detect::Target {
        crate::runtime::detect::Target {
            choice: self.runtime,
            docker_host: self.docker_host.clone(),
            socket: self.runtime_socket.clone(),
        }
    }
}

/// How the agent reaches the aggregator, in a phrase.
fn transport(tls: &ClientTls) -> String {
    match (&tls.ca, &tls.cert) {
        (Some(ca), Some(cert)) => {
            format!("TLS, CA {}, certificate {}", ca.display(), cert.display())
        }
        (Some(ca), None) => format!("TLS, CA {} (no client certificate)", ca.display()),
        _ => match tls.plaintext {
            Plaintext::Anywhere => "off: plain text, any address (insecure)".to_owned(),
            _ => "off: plain text, loopback only (insecure)".to_owned(),
        },
    }
}

/// The default host id: the machine id under `root`, else `hostname`.
pub fn default_host_id(root: &Path, hostname: Option<String>) -> Result<String, ConfigError> {
    derive_host_id(root, hostname).map(|(id, _)| id)
}

/// [`default_host_id`], and where it came from.
fn derive_host_id(root: &Path, hostname: Option<String>) -> Result<(String, String), ConfigError> {
    let machine_id = root.join("etc/machine-id");
    match (read_machine_id(root), hostname) {
        (Some(id), _) => Ok((id, format!("from {}", machine_id.display()))),
        (None, Some(name)) => Ok((name, "the host name".to_owned())),
        (None, None) => Err(ConfigError::NoHostId { path: machine_id }),
    }
}
