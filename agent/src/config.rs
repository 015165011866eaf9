//! The agent's configuration: command-line flags, environment variables and
//! an optional TOML file, in that order of precedence.
//!
//! Every setting can come from any of the three sources, so the same agent
//! binary fits a systemd unit (file), a container (environment) and a quick
//! manual run (flags). Environment variables are read through [`EnvSource`]
//! rather than by clap directly, so tests inject them instead of mutating the
//! process environment (which is unsound with threads running).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use envparity_proto::names::validate_environment;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::{FleetKey, KeyError};
use crate::machine::{hostname, read_machine_id};

/// Names of the environment variables, one per setting.
pub mod vars {
    /// `--config`.
    pub const CONFIG: &str = "ENVPARITY_CONFIG";
    /// `--aggregator`.
    pub const AGGREGATOR: &str = "ENVPARITY_AGGREGATOR";
    /// `--environment`.
    pub const ENVIRONMENT: &str = "ENVPARITY_ENVIRONMENT";
    /// `--host-id`.
    pub const HOST_ID: &str = "ENVPARITY_HOST_ID";
    /// `--docker-host`.
    pub const DOCKER_HOST: &str = "ENVPARITY_DOCKER_HOST";
    /// `--label`, comma-separated.
    pub const LABELS: &str = "ENVPARITY_LABELS";
    /// `--fingerprint-key-file`.
    pub const FINGERPRINT_KEY_FILE: &str = "ENVPARITY_FINGERPRINT_KEY_FILE";
    /// `--fingerprint-key-id`.
    pub const FINGERPRINT_KEY_ID: &str = "ENVPARITY_FINGERPRINT_KEY_ID";
    /// `--clear-env`, comma-separated.
    pub const CLEAR_ENV: &str = "ENVPARITY_CLEAR_ENV";
    /// `--host-root`.
    pub const HOST_ROOT: &str = "ENVPARITY_HOST_ROOT";
    /// `--heartbeat-interval`.
    pub const HEARTBEAT_INTERVAL: &str = "ENVPARITY_HEARTBEAT_INTERVAL";
    /// `--resync-interval`.
    pub const RESYNC_INTERVAL: &str = "ENVPARITY_RESYNC_INTERVAL";
    /// `--once`.
    pub const ONCE: &str = "ENVPARITY_ONCE";
    /// `--log-format`.
    pub const LOG_FORMAT: &str = "ENVPARITY_LOG_FORMAT";
    /// `--metrics-listen`.
    pub const METRICS_LISTEN: &str = "ENVPARITY_METRICS_LISTEN";
    /// `--tls-ca`.
    pub const TLS_CA: &str = "ENVPARITY_TLS_CA";
    /// `--tls-cert`.
    pub const TLS_CERT: &str = "ENVPARITY_TLS_CERT";
    /// `--tls-key`.
    pub const TLS_KEY: &str = "ENVPARITY_TLS_KEY";
    /// `--state-dir`.
    pub const STATE_DIR: &str = "ENVPARITY_STATE_DIR";
    /// `--journal-max-bytes`.
    pub const JOURNAL_MAX_BYTES: &str = "ENVPARITY_JOURNAL_MAX_BYTES";
    /// `--insecure-plaintext`.
    pub const INSECURE_PLAINTEXT: &str = "ENVPARITY_INSECURE_PLAINTEXT";
    /// `--insecure-plaintext-anywhere`.
    pub const INSECURE_PLAINTEXT_ANYWHERE: &str = "ENVPARITY_INSECURE_PLAINTEXT_ANYWHERE";
    /// `--full-snapshots`.
    pub const FULL_SNAPSHOTS: &str = "ENVPARITY_FULL_SNAPSHOTS";
    /// Docker's own variable, the fallback for `--docker-host`.
    pub const DOCKER_HOST_FALLBACK: &str = "DOCKER_HOST";
}

/// Default aggregator address.
pub const DEFAULT_AGGREGATOR: &str = "https://127.0.0.1:7600";
/// Default engine address when neither `--docker-host` nor `DOCKER_HOST` is set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Default full-resync interval.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);

/// For each flag (by clap id): its environment variable and the default shown
/// in `--help`. One table, so help text and behaviour cannot disagree.
const SETTINGS: &[(&str, &str, Option<&str>)] = &[
    ("config", vars::CONFIG, None),
    ("aggregator", vars::AGGREGATOR, Some(DEFAULT_AGGREGATOR)),
    ("environment", vars::ENVIRONMENT, None),
    (
        "host_id",
        vars::HOST_ID,
        Some("<host-root>/etc/machine-id, else the hostname"),
    ),
    (
        "docker_host",
        vars::DOCKER_HOST,
        Some("$DOCKER_HOST, else unix:///var/run/docker.sock"),
    ),
    ("labels", vars::LABELS, None),
    ("fingerprint_key_file", vars::FINGERPRINT_KEY_FILE, None),
    (
        "fingerprint_key_id",
        vars::FINGERPRINT_KEY_ID,
        Some("derived from the key"),
    ),
    ("clear_env", vars::CLEAR_ENV, None),
    ("host_root", vars::HOST_ROOT, Some("/")),
    ("heartbeat_interval", vars::HEARTBEAT_INTERVAL, Some("15s")),
    ("resync_interval", vars::RESYNC_INTERVAL, Some("60s")),
    ("once", vars::ONCE, None),
    ("full_snapshots", vars::FULL_SNAPSHOTS, None),
    ("log_format", vars::LOG_FORMAT, Some("text")),
    ("metrics_listen", vars::METRICS_LISTEN, Some("off")),
    (
        "state_dir",
        vars::STATE_DIR,
        Some("none: the journal is kept in memory only"),
    ),
    ("journal_max_bytes", vars::JOURNAL_MAX_BYTES, Some("64MiB")),
    ("tls_ca", vars::TLS_CA, None),
    ("tls_cert", vars::TLS_CERT, None),
    ("tls_key", vars::TLS_KEY, None),
    ("insecure_plaintext", vars::INSECURE_PLAINTEXT, None),
    (
        "insecure_plaintext_anywhere",
        vars::INSECURE_PLAINTEXT_ANYWHERE,
        None,
    ),
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What the agent does with its configuration. Without a command it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Action {
    /// Validate the configuration and print it (never the key), then exit
    ///
    /// Resolves flags, environment and the --config file exactly as a run
    /// would and loads the fleet key file, then prints the effective settings
    /// and exits 0, or prints `error: ...` naming the file or setting and
    /// exits 2. Contacts neither the engine nor the aggregator. Takes the same
    /// flags as a run, e.g. `envparity-agent --config
    /// /etc/envparity/agent.toml check-config` (systemd's ExecStartPre).
    CheckConfig,
}

/// envparity-agent: reports what runs on this host to the envparity
/// aggregator, so production can be proven to run the same thing as staging.
///
/// Every flag can also be set through its environment variable or in the
/// `--config` file (keys are the long flag names with `_`, except `once`);
/// flags win over the environment, which wins over the file. Logs go to
/// stderr; the log level comes from RUST_LOG (default: info).
/// `envparity-agent check-config` validates a configuration without running.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "envparity-agent", version)]
pub struct Cli {
    /// Without a command, the agent runs (until SIGTERM, or once with --once).
    #[command(subcommand)]
    pub action: Option<Action>,

    /// TOML configuration file, merged under flags and environment. Keys
    /// are the long flag names with `_`; unknown keys are an error.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// gRPC address of the envparity aggregator (http:// only for now).
    #[arg(long, value_name = "URL")]
    pub aggregator: Option<String>,

    /// Environment this host belongs to, e.g. staging or production
    /// (required). 1 to 63 of [a-z0-9._-], starting with a letter or digit.
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,

    /// Stable identity of this host in reports.
    #[arg(long, value_name = "ID")]
    pub host_id: Option<String>,

    /// Docker engine address: unix:///path/to/docker.sock, tcp://host:port
    /// or http://host:port.
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,

    /// Host label KEY=VALUE, e.g. region=eu-west (repeatable; the variable
    /// takes a comma-separated list). Keys must be unique.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// File holding the fleet key that fingerprints env values (required).
    /// Shared by all agents; at least 16 bytes; must not be readable by group
    /// or others.
    #[arg(long, value_name = "PATH")]
    pub fingerprint_key_file: Option<PathBuf>,

    /// Identifier of the fleet key, sent with every snapshot so fingerprints
    /// made with different keys are never compared.
    #[arg(long, value_name = "ID")]
    pub fingerprint_key_id: Option<String>,

    /// Env variable names whose values may be sent in clear: exact names or
    /// `*` globs, e.g. LOG_LEVEL or FEATURE_* (repeatable and
    /// comma-separated, like the variable). Names that look secret (PASSWORD,
    /// PWD, TOKEN, KEY, DSN, CONN, AUTH, …) and values that carry a
    /// credential (password=/token=/key=… parameters, URL userinfo) are never
    /// sent in clear.
    #[arg(long = "clear-env", value_name = "PATTERN", value_delimiter = ',')]
    pub clear_env: Vec<String>,

    /// Root of the host filesystem, for os-release and machine-id; set it
    /// when the agent runs in a container with the host's / mounted.
    #[arg(long, value_name = "PATH")]
    pub host_root: Option<PathBuf>,

    /// How often to send a heartbeat when nothing changed, e.g. 15s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// How often to re-read everything even without engine events, e.g. 1m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub resync_interval: Option<Duration>,

    /// Serve Prometheus metrics (OpenMetrics) at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9601.
    #[arg(long, value_name = "ADDR", value_parser = parse_socket_addr)]
    pub metrics_listen: Option<SocketAddr>,

    /// Directory for the journal of snapshots not yet acknowledged, so an
    /// aggregator outage or an agent restart loses nothing (e.g.
    /// /var/lib/envparity-agent).
    #[arg(long, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,

    /// Bound on the journal's size, e.g. 64MiB; when full it keeps the
    /// first and the latest snapshot and drops those between (logged and
    /// counted).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub journal_max_bytes: Option<u64>,

    /// The fleet CA certificate (PEM) the aggregator's certificate must
    /// chain to; needed for an https:// --aggregator.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,

    /// This host's agent certificate (PEM; `envparity certs --agent HOST_ID`):
    /// the aggregator accepts its reports only for the host id it names.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Allow an http:// (plain-text) --aggregator on a loopback address:
    /// snapshots then travel unencrypted and the aggregator cannot check
    /// this host's identity. For local trials only.
    #[arg(long)]
    pub insecure_plaintext: bool,

    /// Allow an http:// --aggregator on any address. Only for networks
    /// trusted by other means.
    #[arg(long)]
    pub insecure_plaintext_anywhere: bool,

    /// Collect and push one snapshot, then exit: 0 once the aggregator
    /// acknowledged it, 2 if it could not be delivered.
    #[arg(long)]
    pub once: bool,

    /// Send every changed snapshot whole, never as a delta (what changed
    /// since the one acknowledged last). Deltas are on by default; an
    /// aggregator that takes none gets whole snapshots anyway.
    #[arg(long)]
    pub full_snapshots: bool,

    /// Log output format.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The clap command, with every flag's help naming its environment variable
/// and default. Flags are global, so they go before or after a command:
/// `envparity-agent --config F check-config` and `envparity-agent check-config
/// --config F` are the same.
pub fn command() -> clap::Command {
    Cli::command().mut_args(|arg| {
        let Some((_, var, default)) = SETTINGS.iter().find(|(id, _, _)| arg.get_id() == *id) else {
            return arg;
        };
        let arg = arg.global(true);
        let mut suffix = format!(" [env: {var}]");
        if let Some(default) = default {
            suffix.push_str(&format!(" [default: {default}]"));
        }
        let help = arg.get_help().map(|h| format!("{h}{suffix}"));
        let long_help = arg.get_long_help().map(|h| format!("{h}{suffix}"));
        let arg = match help {
            Some(help) => arg.help(help),
            None => arg,
        };
        match long_help {
            Some(long_help) => arg.long_help(long_help),
            None => arg,
        }
    })
}

/// Parses command-line arguments (the first is the program name). Errors are
/// clap's, including `--help` and `--version`; callers usually `exit()` them.
pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Where environment variables come from.
pub trait EnvSource {
    /// The value of `name`, if set. Implementations treat an empty value as
    /// unset, as container orchestrators often render unset as empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // Lossy rather than ignored: a non-UTF-8 value then fails parsing
        // with an error naming the variable instead of silently vanishing.
        std::env::var_os(name)
            .map(|v| v.to_string_lossy().into_owned())
            .filter(|v| !v.is_empty())
    }
}

impl<K: std::borrow::Borrow<str> + Ord, V: AsRef<str>> EnvSource for BTreeMap<K, V> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.as_ref().to_owned())
            .filter(|v| !v.is_empty())
    }
}

impl<K: std::borrow::Borrow<str> + std::hash::Hash + Eq, V: AsRef<str>> EnvSource
    for HashMap<K, V>
{
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.as_ref().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--environment`.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file.
    File {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// The built-in default.
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "{flag}"),
            Self::Env(var) => write!(f, "{var}"),
            Self::File { path, key } => write!(f, "config file {}: {key}", path.display()),
            Self::Default(what) => write!(f, "default {what}"),
        }
    }
}

/// Why the configuration is unusable. Every message names the setting or
/// file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config file {}: {error}", path.display())]
    FileRead {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or bad values.
    #[error("config file {}, line {line}: {message}", path.display())]
    FileParse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value is invalid.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// A required setting is missing everywhere.
    #[error("{flag} is required (or set {var}, or `{key}` in the config file)")]
    Missing {
        /// The flag.
        flag: &'static str,
        /// Its variable.
        var: &'static str,
        /// Its config file key.
        key: &'static str,
    },
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
    /// Host labels, sorted by key, keys unique.
    pub labels: Vec<(String, String)>,
    /// The fleet key (redacted in `Debug`).
    pub fingerprint_key: FleetKey,
    /// The fleet key's id.
    pub fingerprint_key_id: String,
    /// Which env values may go in clear.
    pub clear_env: ClearEnvPolicy,
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
    pub tls: envparity_proto::transport::ClientTls,
    /// Where the journal lives; `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// The journal's bound.
    pub journal_max_bytes: u64,
}

/// The config file. Every key is optional; unknown keys are refused so that a
/// typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    aggregator: Option<String>,
    environment: Option<String>,
    host_id: Option<String>,
    docker_host: Option<String>,
    #[serde(default, deserialize_with = "de_labels")]
    labels: Option<Vec<(String, String)>>,
    fingerprint_key_file: Option<PathBuf>,
    fingerprint_key_id: Option<String>,
    clear_env: Option<Vec<String>>,
    host_root: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_duration")]
    heartbeat_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    resync_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_log_format")]
    log_format: Option<LogFormat>,
    metrics_listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_bytes")]
    journal_max_bytes: Option<u64>,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    insecure_plaintext: bool,
    #[serde(default)]
    insecure_plaintext_anywhere: bool,
    #[serde(default)]
    full_snapshots: bool,
}

/// Parses `KEY=VALUE`; the key must be non-empty.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("invalid label {text:?}: expected KEY=VALUE")),
    }
}

/// Parses a humantime duration (`15s`, `1m 30s`) that is not zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("invalid duration {text:?}: {e}")),
    }
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| {
        format!("invalid address {text:?}: {e} (expected IP:PORT, e.g. 127.0.0.1:9601)")
    })
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("invalid boolean {text:?}: use true or false")),
    }
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    LogFormat::from_str(text, true)
        .map_err(|_| format!("invalid log format {text:?}: use text or json"))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map(Some).map_err(de::Error::custom)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        Number(u64),
        Text(String),
    }
    match Bytes::deserialize(d)? {
        Bytes::Number(n) => parse_bytes(&n.to_string()),
        Bytes::Text(t) => parse_bytes(&t),
    }
    .map(Some)
    .map_err(de::Error::custom)
}

/// `64MiB`, `200KiB` or `12345 bytes`.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Parses a size: a number of bytes, optionally with a KiB, MiB or GiB
/// suffix (`64MiB`); at least 4 KiB.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?} (use bytes, KiB, MiB or GiB)"
            ));
        }
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("invalid size {text:?}"))?;
    if bytes < 4 * 1024 {
        return Err(format!("size {text:?} is below the minimum of 4KiB"));
    }
    Ok(bytes)
}

fn de_log_format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LogFormat>, D::Error> {
    let text = String::deserialize(d)?;
    parse_log_format(&text).map(Some).map_err(de::Error::custom)
}

fn de_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<(String, String)>>, D::Error> {
    struct LabelsVisitor;

    impl<'de> Visitor<'de> for LabelsVisitor {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a table of key = "value", or a list of "key=value" strings"#)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut labels = Vec::new();
            while let Some(entry) = map.next_entry::<String, String>()? {
                labels.push(entry);
            }
            Ok(labels)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut labels = Vec::new();
            while let Some(text) = seq.next_element::<String>()? {
                labels.push(parse_label(&text).map_err(de::Error::custom)?);
            }
            Ok(labels)
        }
    }

    d.deserialize_any(LabelsVisitor).map(Some)
}

/// Splits a comma-separated variable into trimmed, non-empty items.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads and parses the config file.
fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::FileRead {
        path: path.to_owned(),
        error,
    })?;
    let mut file: FileConfig = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ConfigError::FileParse {
            path: path.to_owned(),
            line: text[..offset.min(text.len())].matches('\n').count() + 1,
            message: e.message().trim().to_owned(),
        }
    })?;
    // Relative paths in a file mean "next to this file", not "wherever the
    // agent happened to be started".
    let dir = path.parent().unwrap_or(Path::new(""));
    for p in [
        &mut file.fingerprint_key_file,
        &mut file.host_root,
        &mut file.tls_ca,
        &mut file.tls_cert,
        &mut file.tls_key,
        &mut file.state_dir,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    Ok(file)
}

/// Picks the first of flag, environment and file, remembering where the value
/// came from. Environment values are parsed with `parse`; a parse error names
/// the variable.
fn layer<T>(
    flag: (Option<T>, &'static str),
    env: (&dyn EnvSource, &'static str),
    parse: impl Fn(&str) -> Result<T, String>,
    file: (Option<T>, &Option<PathBuf>, &'static str),
) -> Result<Option<(T, Origin)>, ConfigError> {
    if let Some(v) = flag.0 {
        return Ok(Some((v, Origin::Flag(flag.1))));
    }
    if let Some(text) = env.0.var(env.1) {
        let v = parse(&text).map_err(|message| ConfigError::Invalid {
            origin: Origin::Env(env.1),
            message,
        })?;
        return Ok(Some((v, Origin::Env(env.1))));
    }
    Ok(file.0.map(|v| {
        let origin = Origin::File {
            path: file.1.clone().unwrap_or_default(),
            key: file.2,
        };
        (v, origin)
    }))
}

fn non_empty(v: Vec<(String, String)>) -> Option<Vec<(String, String)>> {
    (!v.is_empty()).then_some(v)
}

/// A configuration that `check-config` accepted: the resolved settings and
/// the files they came from. Its `Display` is the summary `check-config`
/// prints: every effective setting, never the fleet key.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The resolved configuration.
    pub config: Config,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The file the fleet key was read from.
    pub fingerprint_key_file: PathBuf,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let list = |items: Vec<String>, none: &str| {
            if items.is_empty() {
                none.to_owned()
            } else {
                items.join(", ")
            }
        };
        let labels = list(
            c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            "(none)",
        );
        let clear_env = list(
            c.clear_env.patterns().to_vec(),
            "(none: every value is sent as a fingerprint)",
        );
        match &self.config_file {
            Some(path) => writeln!(f, "configuration is valid (config file {})", path.display())?,
            None => writeln!(f, "configuration is valid (no config file)")?,
        }
        let rows = [
            ("environment", c.environment.clone()),
            ("host id", c.host_id.clone()),
            ("aggregator", c.aggregator.clone()),
            ("docker host", c.docker_host.clone()),
            ("host root", c.host_root.display().to_string()),
            ("labels", labels),
            (
                "fingerprint key",
                format!(
                    "{} (key id {})",
                    self.fingerprint_key_file.display(),
                    c.fingerprint_key_id
                ),
            ),
            ("clear env", clear_env),
            (
                "heartbeat interval",
                humantime::format_duration(c.heartbeat_interval).to_string(),
            ),
            (
                "resync interval",
                humantime::format_duration(c.resync_interval).to_string(),
            ),
            (
                "tls",
                match (&c.tls.ca, &c.tls.cert) {
                    (Some(ca), Some(cert)) => {
                        format!("CA {}, certificate {}", ca.display(), cert.display())
                    }
                    (Some(ca), None) => format!("CA {} (no client certificate)", ca.display()),
                    _ => match c.tls.plaintext {
                        envparity_proto::transport::Plaintext::Anywhere => {
                            "off: plain text, any address (insecure)".to_owned()
                        }
                        _ => "off: plain text, loopback only (insecure)".to_owned(),
                    },
                },
            ),
            (
                "journal",
                format!(
                    "{}, at most {}",
                    c.state_dir.as_ref().map_or_else(
                        || "in memory only (lost on restart; set state_dir)".to_owned(),
                        |d| d.display().to_string()
                    ),
                    human_bytes(c.journal_max_bytes)
                ),
            ),
            (
                "metrics",
                c.metrics_listen
                    .map_or_else(|| "off".to_owned(), |a| format!("http://{a}/metrics")),
            ),
            (
                "log format",
                match c.log_format {
                    LogFormat::Text => "text".to_owned(),
                    LogFormat::Json => "json".to_owned(),
                },
            ),
            (
                "snapshots",
                if c.full_snapshots {
                    "whole, always (full_snapshots)"
                } else {
                    "deltas when smaller, else whole"
                }
                .to_owned(),
            ),
            ("mode", if c.once { "once" } else { "daemon" }.to_owned()),
        ];
        for (name, value) in rows {
            writeln!(f, "  {name:<19} {value}")?;
        }
        Ok(())
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

    /// [`Config::resolve`], also returning the files read: what
    /// `check-config` runs and prints. The two cannot disagree, because
    /// `resolve` is this.
    pub fn check(cli: Cli, env: &dyn EnvSource) -> Result<Checked, ConfigError> {
        let path_from_env = |s: &str| Ok::<_, String>(PathBuf::from(s));
        let string_from_env = |s: &str| Ok::<_, String>(s.to_owned());

        let config_path = cli
            .config
            .clone()
            .or_else(|| env.var(vars::CONFIG).map(PathBuf::from));
        let file = match &config_path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let path = &config_path;

        let aggregator = layer(
            (cli.aggregator, "--aggregator"),
            (env, vars::AGGREGATOR),
            string_from_env,
            (file.aggregator, path, "aggregator"),
        )?
        .unwrap_or_else(|| (DEFAULT_AGGREGATOR.to_owned(), Origin::Default("aggregator")));
        validate_aggregator(&aggregator.0).map_err(|message| ConfigError::Invalid {
            origin: aggregator.1.clone(),
            message,
        })?;

        let (environment, origin) = layer(
            (cli.environment, "--environment"),
            (env, vars::ENVIRONMENT),
            string_from_env,
            (file.environment, path, "environment"),
        )?
        .ok_or(ConfigError::Missing {
            flag: "--environment",
            var: vars::ENVIRONMENT,
            key: "environment",
        })?;
        validate_environment(&environment).map_err(|e| ConfigError::Invalid {
            origin,
            message: e.to_string(),
        })?;

        let host_root = layer(
            (cli.host_root, "--host-root"),
            (env, vars::HOST_ROOT),
            path_from_env,
            (file.host_root, path, "host_root"),
        )?
        .map_or_else(|| PathBuf::from("/"), |(p, _)| p);

        let host_id = match layer(
            (cli.host_id, "--host-id"),
            (env, vars::HOST_ID),
            string_from_env,
            (file.host_id, path, "host_id"),
        )? {
            Some((id, origin)) => {
                let id = id.trim().to_owned();
                if id.is_empty() {
                    return Err(ConfigError::Invalid {
                        origin,
                        message: "host id must not be empty".into(),
                    });
                }
                id
            }
            None => default_host_id(&host_root, hostname())?,
        };

        let docker_host = match layer(
            (cli.docker_host, "--docker-host"),
            (env, vars::DOCKER_HOST),
            string_from_env,
            (file.docker_host, path, "docker_host"),
        )? {
            Some(v) => v,
            None => match env.var(vars::DOCKER_HOST_FALLBACK) {
                Some(v) => (v, Origin::Env(vars::DOCKER_HOST_FALLBACK)),
                None => (
                    DEFAULT_DOCKER_HOST.to_owned(),
                    Origin::Default("docker host"),
                ),
            },
        };
        validate_docker_host(&docker_host.0).map_err(|message| ConfigError::Invalid {
            origin: docker_host.1.clone(),
            message,
        })?;

        let labels = match layer(
            (non_empty(cli.labels), "--label"),
            (env, vars::LABELS),
            |s| split_list(s).map(parse_label).collect(),
            (file.labels, path, "labels"),
        )? {
            Some((labels, origin)) => sort_unique_labels(labels)
                .map_err(|message| ConfigError::Invalid { origin, message })?,
            None => Vec::new(),
        };

        let clear_env = layer(
            (
                (!cli.clear_env.is_empty()).then_some(cli.clear_env),
                "--clear-env",
            ),
            (env, vars::CLEAR_ENV),
            |s| Ok(split_list(s).map(str::to_owned).collect()),
            (file.clear_env, path, "clear_env"),
        )?;
        let clear_env = match clear_env {
            Some((patterns, origin)) => {
                if patterns.iter().any(|p| p.trim().is_empty()) {
                    return Err(ConfigError::Invalid {
                        origin,
                        message: "empty clear-env pattern".into(),
                    });
                }
                ClearEnvPolicy::new(patterns)
            }
            None => ClearEnvPolicy::default(),
        };

        let heartbeat_interval = layer(
            (cli.heartbeat_interval, "--heartbeat-interval"),
            (env, vars::HEARTBEAT_INTERVAL),
            parse_duration,
            (file.heartbeat_interval, path, "heartbeat_interval"),
        )?
        .map_or(DEFAULT_HEARTBEAT_INTERVAL, |(d, _)| d);
        let resync_interval = layer(
            (cli.resync_interval, "--resync-interval"),
            (env, vars::RESYNC_INTERVAL),
            parse_duration,
            (file.resync_interval, path, "resync_interval"),
        )?
        .map_or(DEFAULT_RESYNC_INTERVAL, |(d, _)| d);

        let switch = |flag: bool, var: &'static str, from_file: bool| {
            let from_env = env
                .var(var)
                .map(|v| parse_bool(&v))
                .transpose()
                .map_err(|message| ConfigError::Invalid {
                    origin: Origin::Env(var),
                    message,
                })?;
            Ok::<_, ConfigError>(flag || from_env == Some(true) || from_file)
        };
        let once = switch(cli.once, vars::ONCE, false)?;
        let full_snapshots = switch(
            cli.full_snapshots,
            vars::FULL_SNAPSHOTS,
            file.full_snapshots,
        )?;
        let plaintext = envparity_proto::transport::Plaintext::from_flags(
            switch(
                cli.insecure_plaintext,
                vars::INSECURE_PLAINTEXT,
                file.insecure_plaintext,
            )?,
            switch(
                cli.insecure_plaintext_anywhere,
                vars::INSECURE_PLAINTEXT_ANYWHERE,
                file.insecure_plaintext_anywhere,
            )?,
        );

        let log_format = layer(
            (cli.log_format, "--log-format"),
            (env, vars::LOG_FORMAT),
            parse_log_format,
            (file.log_format, path, "log_format"),
        )?
        .map_or(LogFormat::default(), |(f, _)| f);

        let metrics_listen = layer(
            (cli.metrics_listen, "--metrics-listen"),
            (env, vars::METRICS_LISTEN),
            parse_socket_addr,
            (file.metrics_listen, path, "metrics_listen"),
        )?
        .map(|(a, _)| a);

        let state_dir = layer(
            (cli.state_dir, "--state-dir"),
            (env, vars::STATE_DIR),
            path_from_env,
            (file.state_dir, path, "state_dir"),
        )?
        .map(|(p, _)| p);
        let journal_max_bytes = layer(
            (cli.journal_max_bytes, "--journal-max-bytes"),
            (env, vars::JOURNAL_MAX_BYTES),
            parse_bytes,
            (file.journal_max_bytes, path, "journal_max_bytes"),
        )?
        .map_or(crate::journal::DEFAULT_MAX_BYTES, |(b, _)| b);

        let tls_file = |flag: Option<PathBuf>,
                        name: &'static str,
                        var: &'static str,
                        from_file: Option<PathBuf>,
                        key: &'static str| {
            layer(
                (flag, name),
                (env, var),
                path_from_env,
                (from_file, path, key),
            )
            .map(|v| v.map(|(p, _)| p))
        };
        let tls = envparity_proto::transport::ClientTls {
            ca: tls_file(cli.tls_ca, "--tls-ca", vars::TLS_CA, file.tls_ca, "tls_ca")?,
            cert: tls_file(
                cli.tls_cert,
                "--tls-cert",
                vars::TLS_CERT,
                file.tls_cert,
                "tls_cert",
            )?,
            key: tls_file(
                cli.tls_key,
                "--tls-key",
                vars::TLS_KEY,
                file.tls_key,
                "tls_key",
            )?,
            plaintext,
        };

        let (key_file, _) = layer(
            (cli.fingerprint_key_file, "--fingerprint-key-file"),
            (env, vars::FINGERPRINT_KEY_FILE),
            path_from_env,
            (file.fingerprint_key_file, path, "fingerprint_key_file"),
        )?
        .ok_or(ConfigError::Missing {
            flag: "--fingerprint-key-file",
            var: vars::FINGERPRINT_KEY_FILE,
            key: "fingerprint_key_file",
        })?;
        let fingerprint_key = FleetKey::load(&key_file)?;
        let fingerprint_key_id = match layer(
            (cli.fingerprint_key_id, "--fingerprint-key-id"),
            (env, vars::FINGERPRINT_KEY_ID),
            string_from_env,
            (file.fingerprint_key_id, path, "fingerprint_key_id"),
        )? {
            Some((id, origin)) if id.trim().is_empty() => {
                return Err(ConfigError::Invalid {
                    origin,
                    message: "key id must not be empty".into(),
                });
            }
            Some((id, _)) => id,
            None => fingerprint_key.derived_id(),
        };

        // The scheme, the TLS files and the plain-text allowance must agree
        // now, not at the first report.
        let endpoint =
            tonic::transport::Endpoint::from_shared(aggregator.0.clone()).map_err(|e| {
                ConfigError::Invalid {
                    origin: aggregator.1.clone(),
                    message: format!("invalid aggregator URL {:?}: {e}", aggregator.0),
                }
            })?;
        tls.apply(endpoint, &aggregator.0)
            .map_err(|e| ConfigError::Invalid {
                origin: aggregator.1.clone(),
                message: e.to_string(),
            })?;
        let config = Self {
            aggregator: aggregator.0,
            environment,
            host_id,
            docker_host: docker_host.0,
            labels,
            fingerprint_key,
            fingerprint_key_id,
            clear_env,
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
        Ok(Checked {
            config,
            config_file: config_path,
            fingerprint_key_file: key_file,
        })
    }
}

/// The default host id: the machine id under `root`, else `hostname`.
pub fn default_host_id(root: &Path, hostname: Option<String>) -> Result<String, ConfigError> {
    read_machine_id(root)
        .or(hostname)
        .ok_or_else(|| ConfigError::NoHostId {
            path: root.join("etc/machine-id"),
        })
}

/// Sorts labels by key and refuses duplicate keys (which value would win is
/// not obvious, so none does).
fn sort_unique_labels(mut labels: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
    labels.sort();
    if let Some(pair) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label key {:?}", pair[0].0));
    }
    Ok(labels)
}

fn validate_aggregator(url: &str) -> Result<(), String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "invalid aggregator URL {url:?}: use https://HOST:PORT (TLS, with --tls-ca) or http://HOST:PORT (plain text)"
        ));
    }
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .map(drop)
        .map_err(|e| format!("invalid aggregator URL {url:?}: {e}"))
}

fn validate_docker_host(url: &str) -> Result<(), String> {
    let ok = match url.split_once("://") {
        Some(("unix", path)) => path.starts_with('/'),
        Some(("tcp" | "http", addr)) => !addr.is_empty(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid docker host {url:?}: use unix:///absolute/path, tcp://host:port or http://host:port"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use envparity_proto::transport::Plaintext;

    /// A temp dir holding a valid 0600 key file.
    /// A self-signed CA certificate (openssl, P-256), only parsed here: the
    /// default https:// aggregator needs one.
    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBkDCCATWgAwIBAgIUa8KsaSW7mUUAhDqOnRPCVw6xCK8wCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRZW52cGFyaXR5IHRlc3QgQ0EwIBcNMjYxMTIzMTY1MjI4WhgP\nMjEyNjEwMzAxNjUyMjhaMBwxGjAYBgNVBAMMEWVudnBhcml0eSB0ZXN0IENBMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyHDKZwsUpr8MkgxVT6Yd4lrjE7g1BPKt\nWP6z8T/S1BtB32OXKip2vNcXHhnjI0eNOYL0mbog2RBA9hzCXA/s1qNTMFEwHQYD\nVR0OBBYEFG53c8cB6ECgUGvXrp9Ss/6qeaRQMB8GA1UdIwQYMBaAFG53c8cB6ECg\nUGvXrp9Ss/6qeaRQMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\nAICkuzCZf53psD7Jn6d9f5CvtfS/b3rWinGXg6eNkqNfAiEAlb3w/iV2FP38HppC\nj3+qIJMKVknwFG/YUG10yPmEDs8=\n-----END CERTIFICATE-----\n";

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("fleet.key");
            std::fs::write(&key, "0123456789abcdef0123\n").unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::create_dir_all(dir.path().join("root/etc")).unwrap();
            std::fs::write(dir.path().join("root/etc/machine-id"), "machine-123\n").unwrap();
            std::fs::write(dir.path().join("ca.pem"), TEST_CA_PEM).unwrap();
            Self { dir }
        }

        fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).display().to_string()
        }

        fn write(&self, rel: &str, text: &str) -> String {
            std::fs::write(self.dir.path().join(rel), text).unwrap();
            self.path(rel)
        }

        /// Args with the required settings, plus `extra`.
        fn args(&self, extra: &[&str]) -> Vec<String> {
            let mut args = vec![
                "envparity-agent".to_owned(),
                "--fingerprint-key-file".to_owned(),
                self.path("fleet.key"),
                "--host-root".to_owned(),
                self.path("root"),
                "--tls-ca".to_owned(),
                self.path("ca.pem"),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args
        }

        fn resolve(&self, extra: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
            let env: BTreeMap<&str, &str> = env.iter().copied().collect();
            Config::resolve(parse_args(self.args(extra)).unwrap(), &env)
        }
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let fx = Fixture::new();
        let file = fx.write(
            "agent.toml",
            "environment = \"from-file\"\naggregator = \"https://file:1\"\nheartbeat_interval = \"7s\"\n",
        );
        let env = [
            (vars::CONFIG, file.as_str()),
            (vars::ENVIRONMENT, "from-env"),
            (vars::AGGREGATOR, "https://env:2"),
        ];

        let c = fx.resolve(&["--environment", "from-flag"], &env).unwrap();
        assert_eq!(c.environment, "from-flag", "flag beats env and file");
        assert_eq!(c.aggregator, "https://env:2", "env beats file");
        assert_eq!(
            c.heartbeat_interval,
            Duration::from_secs(7),
            "file beats default"
        );
        assert_eq!(
            c.resync_interval, DEFAULT_RESYNC_INTERVAL,
            "default when unset"
        );

        let c = fx.resolve(&[], &env).unwrap();
        assert_eq!(c.environment, "from-env");
    }

    #[test]
    fn plain_text_needs_the_flag_and_a_loopback_address_unless_forced() {
        let fx = Fixture::new();
        // The fixture's --tls-ca would contradict http://; a plain-text agent
        // has no CA, so resolve without it.
        let resolve = |extra: &[&str]| {
            let mut args = fx.args(&["--environment", "dev"]);
            let ca = args.iter().position(|a| a == "--tls-ca").unwrap();
            args.drain(ca..ca + 2);
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            Config::resolve(parse_args(args).unwrap(), &BTreeMap::<&str, &str>::new())
        };
        let err = resolve(&["--aggregator", "http://127.0.0.1:7600"]).unwrap_err();
        assert!(err.to_string().contains("--insecure-plaintext"), "{err}");
        let c = resolve(&[
            "--aggregator",
            "http://127.0.0.1:7600",
            "--insecure-plaintext",
        ])
        .expect("loopback plain text when asked");
        assert_eq!(c.tls.plaintext, Plaintext::Loopback);
        let err = resolve(&[
            "--aggregator",
            "http://10.0.0.9:7600",
            "--insecure-plaintext",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("non-loopback"), "{err}");
        let c = resolve(&[
            "--aggregator",
            "http://10.0.0.9:7600",
            "--insecure-plaintext-anywhere",
        ])
        .expect("forced");
        assert_eq!(c.tls.plaintext, Plaintext::Anywhere);
        let err = resolve(&["--aggregator", "https://10.0.0.9:7600"]).unwrap_err();
        assert!(err.to_string().contains("--tls-ca"), "{err}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let fx = Fixture::new();
        let c = fx.resolve(&["--environment", "dev"], &[]).unwrap();
        assert_eq!(c.aggregator, DEFAULT_AGGREGATOR);
        assert_eq!(c.docker_host, DEFAULT_DOCKER_HOST);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(c.host_id, "machine-123", "from <host-root>/etc/machine-id");
        assert!(c.fingerprint_key_id.starts_with('k') && c.fingerprint_key_id.len() == 13);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(!c.once);
    }

    #[test]
    fn docker_host_falls_back_to_docker_host_variable() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &["--environment", "dev"],
                &[("DOCKER_HOST", "unix:///x.sock")],
            )
            .unwrap();
        assert_eq!(c.docker_host, "unix:///x.sock");
        let c = fx
            .resolve(
                &["--environment", "dev"],
                &[
                    ("DOCKER_HOST", "unix:///x.sock"),
                    (vars::DOCKER_HOST, "unix:///y.sock"),
                ],
            )
            .unwrap();
        assert_eq!(c.docker_host, "unix:///y.sock");
    }

    #[test]
    fn missing_environment_names_flag_variable_and_key() {
        let fx = Fixture::new();
        let msg = fx.resolve(&[], &[]).unwrap_err().to_string();
        assert!(
            msg.contains("--environment") && msg.contains(vars::ENVIRONMENT),
            "{msg}"
        );
    }

    #[test]
    fn invalid_environment_names_its_source() {
        let fx = Fixture::new();
        let msg = fx
            .resolve(&[], &[(vars::ENVIRONMENT, "Prod")])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with(vars::ENVIRONMENT), "{msg}");
        assert!(msg.contains("invalid environment name"), "{msg}");
    }

    #[test]
    fn labels_are_sorted_and_duplicates_refused() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &[
                    "--environment",
                    "dev",
                    "--label",
                    "zone=b",
                    "--label",
                    "region=eu",
                ],
                &[],
            )
            .unwrap();
        assert_eq!(
            c.labels,
            [("region".into(), "eu".into()), ("zone".into(), "b".into())]
        );
        let msg = fx
            .resolve(&["--environment", "dev"], &[(vars::LABELS, "a=1, b=2,a=3")])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(vars::LABELS) && msg.contains("duplicate label key \"a\""),
            "{msg}"
        );
    }

    #[test]
    fn file_labels_accept_a_table_or_a_list() {
        let fx = Fixture::new();
        let table = fx.write(
            "t.toml",
            "environment = \"dev\"\n[labels]\nregion = \"eu\"\n",
        );
        let c = fx.resolve(&["--config", &table], &[]).unwrap();
        assert_eq!(c.labels, [("region".into(), "eu".into())]);
        let list = fx.write(
            "l.toml",
            "environment = \"dev\"\nlabels = [\"b=2\", \"a=1\"]\n",
        );
        let c = fx.resolve(&["--config", &list], &[]).unwrap();
        assert_eq!(
            c.labels,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
    }

    #[test]
    fn clear_env_comes_whole_from_one_source() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &["--environment", "dev", "--clear-env", "LOG_LEVEL"],
                &[(vars::CLEAR_ENV, "FEATURE_*,OTHER")],
            )
            .unwrap();
        assert_eq!(c.clear_env.patterns(), ["LOG_LEVEL"]);
        let c = fx
            .resolve(
                &["--environment", "dev"],
                &[(vars::CLEAR_ENV, "FEATURE_*, OTHER")],
            )
            .unwrap();
        assert_eq!(c.clear_env.patterns(), ["FEATURE_*", "OTHER"]);
    }

    #[test]
    fn clear_env_flag_takes_a_comma_separated_list_like_the_variable() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &[
                    "--environment",
                    "dev",
                    "--clear-env",
                    "LOG_LEVEL,FEATURE_*",
                    "--clear-env",
                    "X",
                ],
                &[],
            )
            .unwrap();
        assert_eq!(c.clear_env.patterns(), ["LOG_LEVEL", "FEATURE_*", "X"]);
    }

    #[test]
    fn unknown_file_key_names_path_key_and_line() {
        let fx = Fixture::new();
        let file = fx.write("bad.toml", "environment = \"dev\"\n\nheartbeat = \"5s\"\n");
        let err = fx.resolve(&["--config", &file], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ConfigError::FileParse { line: 3, .. }),
            "{msg}"
        );
        assert!(msg.contains(&file) && msg.contains("heartbeat"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let fx = Fixture::new();
        let file = fx.write("corrupt.toml", "environment = \"dev\nx");
        let msg = fx
            .resolve(&["--config", &file], &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(&format!("config file {file}, line ")),
            "{msg}"
        );
    }

    #[test]
    fn bad_file_duration_names_the_line() {
        let fx = Fixture::new();
        let file = fx.write(
            "d.toml",
            "environment = \"dev\"\nresync_interval = \"soon\"\n",
        );
        let err = fx.resolve(&["--config", &file], &[]).unwrap_err();
        assert!(
            matches!(err, ConfigError::FileParse { line: 2, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("invalid duration \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn missing_config_file_names_the_path() {
        let fx = Fixture::new();
        let path = fx.path("nope.toml");
        let msg = fx
            .resolve(&["--config", &path, "--environment", "dev"], &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&path), "{msg}");
    }

    #[test]
    fn relative_key_path_in_file_is_relative_to_the_file() {
        let fx = Fixture::new();
        let file = fx.write(
            "rel.toml",
            "environment = \"dev\"\nfingerprint_key_file = \"fleet.key\"\ntls_ca = \"ca.pem\"\n",
        );
        let args = vec![
            "envparity-agent".to_owned(),
            "--config".to_owned(),
            file,
            "--host-root".to_owned(),
            fx.path("root"),
        ];
        let c = Config::resolve(parse_args(args).unwrap(), &BTreeMap::<&str, &str>::new()).unwrap();
        assert_eq!(c.environment, "dev");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let fx = Fixture::new();
        for (var, value) in [
            (vars::HEARTBEAT_INTERVAL, "fast"),
            (vars::RESYNC_INTERVAL, "0s"),
            (vars::ONCE, "maybe"),
            (vars::LOG_FORMAT, "xml"),
            (vars::LABELS, "novalue"),
            (vars::AGGREGATOR, "grpc://agg:443"),
            (vars::DOCKER_HOST, "ssh://host"),
        ] {
            let msg = fx
                .resolve(&["--environment", "dev"], &[(var, value)])
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with(var), "{var}: {msg}");
        }
    }

    #[test]
    fn log_format_comes_from_the_file_under_env() {
        let fx = Fixture::new();
        let file = fx.write("log.toml", "environment = \"dev\"\nlog_format = \"json\"\n");
        let c = fx.resolve(&["--config", &file], &[]).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let c = fx
            .resolve(&["--config", &file], &[(vars::LOG_FORMAT, "text")])
            .unwrap();
        assert_eq!(c.log_format, LogFormat::Text);
        let bad = fx.write(
            "bad-log.toml",
            "environment = \"dev\"\nlog_format = \"xml\"\n",
        );
        let msg = fx
            .resolve(&["--config", &bad], &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2") && msg.contains("invalid log format"),
            "{msg}"
        );
    }

    #[test]
    fn env_can_switch_on_once_and_json_logs() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &["--environment", "dev"],
                &[(vars::ONCE, "true"), (vars::LOG_FORMAT, "json")],
            )
            .unwrap();
        assert!(c.once);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn key_file_readable_by_others_refuses_to_start() {
        let fx = Fixture::new();
        let key = fx.path("fleet.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let msg = fx
            .resolve(&["--environment", "dev"], &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&key) && msg.contains("0644"), "{msg}");
    }

    #[test]
    fn missing_key_file_setting_is_an_error() {
        let msg = Config::resolve(
            parse_args(["envparity-agent", "--environment", "dev"]).unwrap(),
            &BTreeMap::<&str, &str>::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("--fingerprint-key-file"), "{msg}");
    }

    #[test]
    fn explicit_key_id_wins_over_the_derived_one() {
        let fx = Fixture::new();
        let c = fx
            .resolve(
                &["--environment", "dev", "--fingerprint-key-id", "fleet-2024"],
                &[],
            )
            .unwrap();
        assert_eq!(c.fingerprint_key_id, "fleet-2024");
    }

    #[test]
    fn host_id_defaults_to_machine_id_then_hostname() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            default_host_id(root.path(), Some("box".into())).unwrap(),
            "box"
        );
        let err = default_host_id(root.path(), None).unwrap_err().to_string();
        assert!(err.contains("etc/machine-id"), "{err}");
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/machine-id"), " m-1 \n").unwrap();
        assert_eq!(
            default_host_id(root.path(), Some("box".into())).unwrap(),
            "m-1"
        );
    }

    #[test]
    fn every_flag_has_help_naming_its_variable() {
        let help = command().render_long_help().to_string();
        for (id, var, _) in SETTINGS {
            assert!(help.contains(var), "{id}: {var} missing from --help");
        }
        for arg in command().get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(arg.get_help().is_some(), "{id} has no help");
            assert!(
                SETTINGS.iter().any(|(s, _, _)| *s == id),
                "{id} has no variable"
            );
        }
    }
}
