//! Every setting of the agent, declared once: its flag, variable, file key,
//! default, parser, check and help. `--help`, the config file's keys, the
//! precedence, the errors and `check-config` all come from this table
//! (`envparity_settings`); [`super::Config::check`] only puts the values
//! together and checks what involves several of them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use envparity_settings::parse::{self, LogFormat};
use envparity_settings::{List, Setting, common};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::de::ValueDeserializer;

/// Default aggregator address.
pub const DEFAULT_AGGREGATOR: &str = "https://127.0.0.1:7600";
/// Default engine address when neither `--docker-host` nor `DOCKER_HOST` is set.
pub const DEFAULT_DOCKER_HOST: &str = crate::runtime::detect::DOCKER_SOCKET;
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Default full-resync interval.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);

envparity_settings::declare! {
    /// The agent's settings, in the order `--help` and `check-config` show
    /// them.
    pub TABLE;

    /// `--config`.
    pub CONFIG: Setting<PathBuf> = common::CONFIG
        .help("TOML configuration file, merged under flags and environment. Keys are the long \
               flag names with `_` (`labels` for --label); unknown keys are an error.");
    /// `--aggregator`.
    pub AGGREGATOR: Setting<String> = Setting::new("aggregator", parse::text)
        .flag("aggregator")
        .var("ENVPARITY_AGGREGATOR")
        .value_name("URL")
        .default(|| DEFAULT_AGGREGATOR.to_owned())
        .check(aggregator_url)
        .help("gRPC address of the envparity aggregator: https://HOST:PORT (TLS, with \
               --tls-ca), or http://HOST:PORT with --insecure-plaintext.");
    /// `--environment`.
    pub ENVIRONMENT: Setting<String> = Setting::new("environment", parse::text)
        .flag("environment")
        .var("ENVPARITY_ENVIRONMENT")
        .value_name("NAME")
        .required()
        .check(environment_name)
        .help("Environment this host belongs to, e.g. staging or production (required). \
               1 to 63 of [a-z0-9._-], starting with a letter or digit.");
    /// `--host-id`.
    pub HOST_ID: Setting<String> = Setting::new("host_id", parse::text)
        .flag("host-id")
        .var("ENVPARITY_HOST_ID")
        .value_name("ID")
        .default_text("<host-root>/etc/machine-id, else the hostname")
        .check(host_id)
        .help("Stable identity of this host in reports.");
    /// `--docker-host`.
    pub DOCKER_HOST: Setting<String> = Setting::new("docker_host", parse::text)
        .flag("docker-host")
        .var("ENVPARITY_DOCKER_HOST")
        .fallback_var("DOCKER_HOST")
        .value_name("URL")
        .default(|| DEFAULT_DOCKER_HOST.to_owned())
        .default_text("$DOCKER_HOST, else unix:///var/run/docker.sock")
        .check(docker_host)
        .help("Docker engine address: unix:///path/to/docker.sock, tcp://host:port or \
               http://host:port.");
    /// `--runtime`.
    pub RUNTIME: Setting<String> = Setting::new("runtime", parse::text)
        .flag("runtime")
        .var("ENVPARITY_RUNTIME")
        .value_name("NAME")
        .default(|| "auto".to_owned())
        .check(runtime_name)
        .help("Container runtime to read: auto, docker, podman or containerd (through the \
               CRI). auto reads what answers at --runtime-socket or at a --docker-host set \
               to other than the default; with neither, the first of Docker's, \
               containerd's and Podman's well-known sockets that answers (docs/runtimes.md).");
    /// `--runtime-socket`.
    pub RUNTIME_SOCKET: Setting<PathBuf> = Setting::path("runtime_socket")
        .flag("runtime-socket")
        .var("ENVPARITY_RUNTIME_SOCKET")
        .value_name("PATH")
        .default_text("the runtime's well-known socket")
        .help("Unix socket of the runtime: containerd's CRI socket, or Podman's or Docker's \
               API socket (then it wins over --docker-host).");
    /// `--label`.
    pub LABELS: List<(String, String)> = Setting::list("labels", parse_label)
        .flag("label")
        .var("ENVPARITY_LABELS")
        .value_name("KEY=VALUE")
        .default(Vec::new)
        .check(sort_unique_labels)
        .file_with(labels_file)
        .help("Host label KEY=VALUE, e.g. region=eu-west (repeatable; the variable takes a \
               comma-separated list, the file a table or a list). Keys must be unique.");
    /// `--fingerprint-key-file`.
    pub FINGERPRINT_KEY_FILE: Setting<PathBuf> = Setting::path("fingerprint_key_file")
        .flag("fingerprint-key-file")
        .var("ENVPARITY_FINGERPRINT_KEY_FILE")
        .value_name("PATH")
        .required()
        .help("File holding the fleet key that fingerprints env values (required). Shared by \
               all agents; at least 16 bytes; must not be readable by group or others.");
    /// `--fingerprint-key-id`.
    pub FINGERPRINT_KEY_ID: Setting<String> = Setting::new("fingerprint_key_id", parse::text)
        .flag("fingerprint-key-id")
        .var("ENVPARITY_FINGERPRINT_KEY_ID")
        .value_name("ID")
        .default_text("derived from the key")
        .check(key_id)
        .help("Identifier of the fleet key, sent with every snapshot so fingerprints made \
               with different keys are never compared.");
    /// `--clear-env`.
    pub CLEAR_ENV: List<String> = Setting::list("clear_env", parse::text)
        .flag("clear-env")
        .delimiter(',')
        .var("ENVPARITY_CLEAR_ENV")
        .value_name("PATTERN")
        .default(Vec::new)
        .check(clear_env_patterns)
        .show(show_clear_env)
        .help("Env variable names whose values may be sent in clear: exact names or `*` \
               globs, e.g. LOG_LEVEL or FEATURE_* (repeatable and comma-separated, like the \
               variable). Names that look secret (PASSWORD, PWD, TOKEN, KEY, DSN, CONN, AUTH, \
               …) and values that carry a credential (password=/token=/key=… parameters, URL \
               userinfo) are never sent in clear.");
    /// `--clear-config`.
    pub CLEAR_CONFIG: List<String> = Setting::list("clear_config", parse::text)
        .flag("clear-config")
        .delimiter(',')
        .var("ENVPARITY_CLEAR_CONFIG")
        .value_name("FILE_GLOB=KEY_PATTERN")
        .default(Vec::new)
        .check(clear_config_entries)
        .show(show_clear_env)
        .help("Configuration file keys whose values may be sent in clear: a file glob and a \
               key path pattern, e.g. /etc/app/*.yaml=features.* (repeatable and \
               comma-separated). As for --clear-env, keys that look secret and values that \
               carry a credential never go in clear, nor does anything in a secret mount \
               (/run/secrets/, Kubernetes Secret volumes).");
    /// `--config-file-include`.
    pub CONFIG_FILE_INCLUDE: List<String> = Setting::list("config_file_include", parse::text)
        .flag("config-file-include")
        .delimiter(',')
        .var("ENVPARITY_CONFIG_FILE_INCLUDE")
        .value_name("GLOB")
        .default(|| {
            crate::config_files::bounds::Bounds::DEFAULT_INCLUDE
                .iter()
                .map(|g| (*g).to_owned())
                .collect()
        })
        .check(absolute_globs)
        .show(show_globs)
        .help("Paths in the container of the mounted configuration files to read, as globs \
               (`*` matches any run of characters, `/` included), e.g. /srv/app/*.yaml \
               (repeatable and comma-separated). Only files in bind mounts are read, through \
               the engine's archive API (docs/configuration.md).");
    /// `--config-file-exclude`.
    pub CONFIG_FILE_EXCLUDE: List<String> = Setting::list("config_file_exclude", parse::text)
        .flag("config-file-exclude")
        .delimiter(',')
        .var("ENVPARITY_CONFIG_FILE_EXCLUDE")
        .value_name("GLOB")
        .default(Vec::new)
        .check(absolute_globs)
        .show(show_globs)
        .help("Paths never read as configuration files, as globs; they win over \
               --config-file-include.");
    /// `--config-file-max-files`.
    pub CONFIG_FILE_MAX_FILES: Setting<usize> =
        Setting::new("config_file_max_files", parse::number)
            .flag("config-file-max-files")
            .var("ENVPARITY_CONFIG_FILE_MAX_FILES")
            .value_name("N")
            .number()
            .default(|| 32)
            .check(max_config_files)
            .help("Most configuration files read per container (at most 256); those past it \
                   are named in the container's cut list. 0 turns reading files off.");
    /// `--config-file-max-bytes`.
    pub CONFIG_FILE_MAX_BYTES: Setting<u64> = Setting::new("config_file_max_bytes", parse_bytes)
        .flag("config-file-max-bytes")
        .var("ENVPARITY_CONFIG_FILE_MAX_BYTES")
        .value_name("BYTES")
        .number()
        .default(|| 256 * 1024)
        .show(show_bytes)
        .help("Largest configuration file read, e.g. 256KiB; a larger one is reported as \
               \"not read: too large\".");
    /// `--config-file-max-total-bytes`.
    pub CONFIG_FILE_MAX_TOTAL_BYTES: Setting<u64> =
        Setting::new("config_file_max_total_bytes", parse_bytes)
            .flag("config-file-max-total-bytes")
            .var("ENVPARITY_CONFIG_FILE_MAX_TOTAL_BYTES")
            .value_name("BYTES")
            .number()
            .default(|| 16 * 1024 * 1024)
            .show(show_bytes)
            .help("Most configuration file bytes read in one collection, across all \
                   containers, e.g. 16MiB; files past it are read at a later collection \
                   (unchanged files cost nothing: they are not read again).");
    /// `--host-root`.
    pub HOST_ROOT: Setting<PathBuf> = Setting::path("host_root")
        .flag("host-root")
        .var("ENVPARITY_HOST_ROOT")
        .value_name("PATH")
        .default(|| PathBuf::from("/"))
        .help("Root of the host filesystem, for os-release and machine-id; set it when the \
               agent runs in a container with the host's / mounted.");
    /// `--heartbeat-interval`.
    pub HEARTBEAT_INTERVAL: Setting<Duration> =
        Setting::new("heartbeat_interval", parse::positive_duration)
            .flag("heartbeat-interval")
            .var("ENVPARITY_HEARTBEAT_INTERVAL")
            .value_name("DURATION")
            .default(|| DEFAULT_HEARTBEAT_INTERVAL)
            .help("How often to send a heartbeat when nothing changed, e.g. 15s.");
    /// `--resync-interval`.
    pub RESYNC_INTERVAL: Setting<Duration> =
        Setting::new("resync_interval", parse::positive_duration)
            .flag("resync-interval")
            .var("ENVPARITY_RESYNC_INTERVAL")
            .value_name("DURATION")
            .default(|| DEFAULT_RESYNC_INTERVAL)
            .help("How often to re-read everything even without engine events, e.g. 1m.");
    /// `--metrics-listen`.
    pub METRICS_LISTEN: Setting<SocketAddr> = common::METRICS_LISTEN
        .show(show_metrics)
        .help("Serve Prometheus metrics (OpenMetrics) at http://ADDR/metrics, e.g. \
               127.0.0.1:9601.");
    /// `--state-dir`.
    pub STATE_DIR: Setting<PathBuf> = Setting::path("state_dir")
        .flag("state-dir")
        .var("ENVPARITY_STATE_DIR")
        .value_name("PATH")
        .default_text("none: the journal is kept in memory only (lost on restart)")
        .help("Directory for the journal of snapshots not yet acknowledged, so an aggregator \
               outage or an agent restart loses nothing (e.g. /var/lib/envparity-agent).");
    /// `--journal-max-bytes`.
    pub JOURNAL_MAX_BYTES: Setting<u64> = Setting::new("journal_max_bytes", parse_bytes)
        .flag("journal-max-bytes")
        .var("ENVPARITY_JOURNAL_MAX_BYTES")
        .value_name("BYTES")
        .number()
        .default(|| crate::journal::DEFAULT_MAX_BYTES)
        .show(show_bytes)
        .help("Bound on the journal's size, e.g. 64MiB; when full it keeps the first and the \
               latest snapshot and drops those between (logged and counted).");
    /// `--tls-ca`.
    pub TLS_CA: Setting<PathBuf> = Setting::path("tls_ca")
        .flag("tls-ca")
        .var("ENVPARITY_TLS_CA")
        .value_name("PEM")
        .help("The fleet CA certificate (PEM) the aggregator's certificate must chain to; \
               needed for an https:// --aggregator.");
    /// `--tls-cert`.
    pub TLS_CERT: Setting<PathBuf> = common::TLS_CERT
        .help("This host's agent certificate (PEM; `envparity certs --agent HOST_ID`): the \
               aggregator accepts its reports only for the host id it names.");
    /// `--tls-key`.
    pub TLS_KEY: Setting<PathBuf> = common::TLS_KEY
        .help("The key of --tls-cert (PEM).");
    /// `--insecure-plaintext`.
    pub INSECURE_PLAINTEXT: Setting<bool> = common::INSECURE_PLAINTEXT
        .help("Allow an http:// (plain-text) --aggregator on a loopback address: snapshots \
               then travel unencrypted and the aggregator cannot check this host's identity. \
               For local trials only.");
    /// `--insecure-plaintext-anywhere`.
    pub INSECURE_PLAINTEXT_ANYWHERE: Setting<bool> = common::INSECURE_PLAINTEXT_ANYWHERE
        .help("Allow an http:// --aggregator on any address. Only for networks trusted by \
               other means.");
    /// `--once`.
    pub ONCE: Setting<bool> = Setting::switch("once")
        .flag("once")
        .var("ENVPARITY_ONCE")
        .not_in_file()
        .help("Collect and push one snapshot, then exit: 0 once the aggregator acknowledged \
               it, 2 if it could not be delivered.");
    /// `--full-snapshots`.
    pub FULL_SNAPSHOTS: Setting<bool> = Setting::switch("full_snapshots")
        .flag("full-snapshots")
        .var("ENVPARITY_FULL_SNAPSHOTS")
        .help("Send every changed snapshot whole, never as a delta (what changed since the \
               one acknowledged last). Deltas are on by default; an aggregator that takes none \
               gets whole snapshots anyway.");
    /// `--log-format`.
    pub LOG_FORMAT: Setting<LogFormat> = common::LOG_FORMAT
        .help("Log output format: text or json.");
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

/// `64MiB`, `200KiB` or `12345 bytes`.
fn show_bytes(bytes: &u64) -> String {
    match *bytes {
        b if b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn show_metrics(addr: &SocketAddr) -> String {
    format!("http://{addr}/metrics")
}

#[allow(
    clippy::ptr_arg,
    reason = "a setting shows a &T, and the setting's T is the Vec"
)]
fn show_clear_env(patterns: &Vec<String>) -> String {
    if patterns.is_empty() {
        "none: every value is sent as a fingerprint".to_owned()
    } else {
        patterns.join(", ")
    }
}

fn aggregator_url(url: String) -> Result<String, String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "invalid aggregator URL {url:?}: use https://HOST:PORT (TLS, with --tls-ca) or http://HOST:PORT (plain text)"
        ));
    }
    tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| format!("invalid aggregator URL {url:?}: {e}"))?;
    Ok(url)
}

fn environment_name(name: String) -> Result<String, String> {
    envparity_proto::names::validate_environment(&name).map_err(|e| e.to_string())?;
    Ok(name)
}

fn host_id(id: String) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("host id must not be empty".into());
    }
    Ok(id.to_owned())
}

fn key_id(id: String) -> Result<String, String> {
    if id.trim().is_empty() {
        return Err("key id must not be empty".into());
    }
    Ok(id)
}

fn docker_host(url: String) -> Result<String, String> {
    let ok = match url.split_once("://") {
        Some(("unix", path)) => path.starts_with('/'),
        Some(("tcp" | "http", addr)) => !addr.is_empty(),
        _ => false,
    };
    if ok {
        Ok(url)
    } else {
        Err(format!(
            "invalid docker host {url:?}: use unix:///absolute/path, tcp://host:port or http://host:port"
        ))
    }
}

fn runtime_name(name: String) -> Result<String, String> {
    name.parse::<crate::runtime::detect::RuntimeChoice>()?;
    Ok(name)
}

fn clear_config_entries(entries: Vec<String>) -> Result<Vec<String>, String> {
    crate::config_files::ClearConfigPolicy::parse(&entries).map_err(|e| e.to_string())?;
    Ok(entries)
}

fn absolute_globs(globs: Vec<String>) -> Result<Vec<String>, String> {
    match globs.iter().find(|g| !g.starts_with('/')) {
        Some(g) => Err(format!(
            "config file glob {g:?} is not an absolute path in the container"
        )),
        None => Ok(globs),
    }
}

fn max_config_files(n: usize) -> Result<usize, String> {
    let max = envparity_proto::limits::MAX_CONFIG_FILES;
    if n > max {
        return Err(format!(
            "{n} config files per container is over the limit of {max}"
        ));
    }
    Ok(n)
}

#[allow(
    clippy::ptr_arg,
    reason = "a setting shows a &T, and the setting's T is the Vec"
)]
fn show_globs(globs: &Vec<String>) -> String {
    if globs.is_empty() {
        "none".to_owned()
    } else {
        globs.join(", ")
    }
}

fn clear_env_patterns(patterns: Vec<String>) -> Result<Vec<String>, String> {
    if patterns.iter().any(|p| p.trim().is_empty()) {
        return Err("empty clear-env pattern".into());
    }
    Ok(patterns)
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

/// Labels in the file: a table of `key = "value"`, or a list of
/// `"key=value"` strings.
fn labels_file(
    _: &List<(String, String)>,
    d: ValueDeserializer<'_>,
) -> Result<Vec<(String, String)>, toml::de::Error> {
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

    d.deserialize_any(LabelsVisitor)
}
