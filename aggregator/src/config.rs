//! The aggregator's configuration file (`envparity serve --config FILE`).
//!
//! Every setting of `serve` can come from a flag, its environment variable
//! or this TOML file, in that order of precedence, so one binary fits a
//! systemd unit (file), a container (environment) and a quick manual run
//! (flags). Alert sinks exist only in the file: they carry secrets, which
//! are read from their own files (never from flags, which `ps` shows).
//!
//! Parsing is strict, like the policy's: an unknown key, a bad address or
//! duration, a sink setting that does not belong to its type, or a secret
//! file that others may read is an error naming the file, line and key.
//! `envparity check-config` runs exactly this validation and nothing else.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::parity::Severity;
use crate::parity::policy::{describe, duration};

/// Defaults, one place for `--help` and behaviour.
pub mod defaults {
    use std::time::Duration;

    /// `listen`.
    pub const LISTEN: &str = "127.0.0.1:7600";
    /// `data_dir`.
    pub const DATA_DIR: &str = "./envparity-data";
    /// `stale_after`.
    pub const STALE_AFTER: Duration = Duration::from_secs(90);
    /// `max_plaintext_hosts`.
    pub const MAX_PLAINTEXT_HOSTS: usize = 10_000;
    /// `alerts.min_severity` and a sink's `min_severity`.
    pub const MIN_SEVERITY: crate::parity::Severity = crate::parity::Severity::Warning;
    /// A sink's request `timeout`.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// A sink's `max_attempts` per notification.
    pub const MAX_ATTEMPTS: u32 = 8;
    /// A sink's first retry `backoff` (doubled per attempt, capped at a minute).
    pub const BACKOFF: Duration = Duration::from_secs(1);
    /// Alertmanager `resend_interval`.
    pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);
    /// Alertmanager `resolve_for`: how long a resolved alert keeps being sent.
    pub const RESOLVE_FOR: Duration = Duration::from_secs(300);
    /// PagerDuty's Events API v2 endpoint.
    pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
}

/// A configuration file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the line, key or sink where known.
    pub message: String,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The file as written: every field optional (flags and environment win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "optional_duration")]
    stale_after: Option<Duration>,
    policy: Option<PathBuf>,
    log_format: Option<LogFormat>,
    metrics_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    #[serde(default)]
    insecure_plaintext: bool,
    #[serde(default)]
    insecure_plaintext_anywhere: bool,
    report_rate: Option<f64>,
    report_burst: Option<u32>,
    max_plaintext_hosts: Option<usize>,
    query_tokens_file: Option<PathBuf>,
    #[serde(default)]
    alerts: AlertsRepr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsRepr {
    min_severity: Option<Severity>,
    base_url: Option<String>,
    #[serde(default)]
    sinks: Vec<SinkRepr>,
}

/// Sink types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkType {
    Alertmanager,
    Slack,
    Pagerduty,
    Webhook,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkRepr {
    name: String,
    #[serde(rename = "type")]
    kind: SinkType,
    url: Option<String>,
    url_file: Option<PathBuf>,
    routing_key_file: Option<PathBuf>,
    secret_file: Option<PathBuf>,
    min_severity: Option<Severity>,
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default, deserialize_with = "optional_duration")]
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
    #[serde(default, deserialize_with = "optional_duration")]
    backoff: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    resend_interval: Option<Duration>,
    #[serde(default, deserialize_with = "optional_duration")]
    resolve_for: Option<Duration>,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration::deserialize(d).map(Some)
}

/// The configuration file, validated, secrets read.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `stale_after`.
    pub stale_after: Option<Duration>,
    /// `policy` (relative paths are relative to the config file).
    pub policy: Option<PathBuf>,
    /// `log_format`.
    pub log_format: Option<LogFormat>,
    /// `metrics_listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `tls_cert` (relative to the file).
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`.
    pub tls_key: Option<PathBuf>,
    /// `tls_client_ca`.
    pub tls_client_ca: Option<PathBuf>,
    /// `insecure_plaintext` and `insecure_plaintext_anywhere`.
    pub plaintext: envparity_proto::transport::Plaintext,
    /// `report_rate` (reports per second per host).
    pub report_rate: Option<f64>,
    /// `report_burst`.
    pub report_burst: Option<u32>,
    /// `max_plaintext_hosts`.
    pub max_plaintext_hosts: Option<usize>,
    /// `query_tokens_file`.
    pub query_tokens_file: Option<PathBuf>,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// The lowest severity that alerts at all (sinks may ask for more).
    pub min_severity: Severity,
    /// Base URL of a page about the fleet, for links in notifications.
    pub base_url: Option<String>,
    /// The sinks, each with its own route.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            min_severity: defaults::MIN_SEVERITY,
            base_url: None,
            sinks: Vec::new(),
        }
    }
}

/// One sink.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Its name (unique), used in logs, metrics and `alerts test NAME`.
    pub name: String,
    /// Which alerts it gets.
    pub route: Route,
    /// Where and how it is sent.
    pub target: Target,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per notification before it is given up (and counted failed).
    pub max_attempts: u32,
    /// The first retry delay; doubled per attempt, capped at a minute.
    pub backoff: Duration,
}

/// Which alerts a sink gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Only alerts at or above this severity.
    pub min_severity: Severity,
    /// Only alerts that concern one of these environments (empty: all).
    pub environments: BTreeSet<String>,
}

impl Route {
    /// Whether an alert of `severity` about `environments` goes this way.
    pub fn admits<'a>(
        &self,
        severity: Severity,
        mut environments: impl Iterator<Item = &'a str>,
    ) -> bool {
        severity >= self.min_severity
            && (self.environments.is_empty() || environments.any(|e| self.environments.contains(e)))
    }
}

/// A secret read from a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A sink's destination.
#[derive(Debug, Clone)]
pub enum Target {
    /// Alertmanager API v2 (`POST {url}/api/v2/alerts`).
    Alertmanager {
        /// Alertmanager's base URL.
        url: String,
        /// How often firing alerts are re-sent (with `endsAt` ahead).
        resend_interval: Duration,
        /// How long a resolved alert keeps being sent with its `endsAt`.
        resolve_for: Duration,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret: it is the credential).
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The endpoint (PagerDuty's, unless testing).
        url: String,
        /// The integration's routing key.
        routing_key: Secret,
    },
    /// A generic JSON webhook signed per Standard Webhooks.
    Webhook {
        /// Where to POST.
        url: String,
        /// The signing secret (`whsec_` + base64, or raw bytes).
        secret: Secret,
    },
}

impl Target {
    /// The type name, as in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            Target::Alertmanager { .. } => "alertmanager",
            Target::Slack { .. } => "slack",
            Target::PagerDuty { .. } => "pagerduty",
            Target::Webhook { .. } => "webhook",
        }
    }
}

impl FileConfig {
    /// Reads and validates `path`, reading every secret file it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(format!("cannot read the file: {e}")))?;
        let repr: FileRepr = toml::from_str(&text).map_err(|e| error(describe(&e, &text)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let relative = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let mut names = BTreeSet::new();
        let mut sinks = Vec::new();
        for (i, sink) in repr.alerts.sinks.into_iter().enumerate() {
            let what = format!("alerts.sinks[{i}] ({:?})", sink.name);
            if sink.name.is_empty()
                || !sink
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(error(format!(
                    "alerts.sinks[{i}]: name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                    sink.name
                )));
            }
            if !names.insert(sink.name.clone()) {
                return Err(error(format!("{what}: the name is used by another sink")));
            }
            let sink = resolve_sink(sink, &relative).map_err(|m| error(format!("{what}: {m}")))?;
            sinks.push(sink);
        }
        if let Some(url) = &repr.alerts.base_url {
            check_url(url).map_err(|m| error(format!("alerts.base_url: {m}")))?;
        }
        Ok(FileConfig {
            listen: repr.listen,
            data_dir: repr.data_dir.map(&relative),
            stale_after: repr.stale_after,
            policy: repr.policy.map(&relative),
            log_format: repr.log_format,
            metrics_listen: repr.metrics_listen,
            tls_cert: repr.tls_cert.map(&relative),
            tls_key: repr.tls_key.map(&relative),
            tls_client_ca: repr.tls_client_ca.map(&relative),
            plaintext: envparity_proto::transport::Plaintext::from_flags(
                repr.insecure_plaintext,
                repr.insecure_plaintext_anywhere,
            ),
            report_rate: repr.report_rate,
            report_burst: repr.report_burst,
            max_plaintext_hosts: repr.max_plaintext_hosts,
            query_tokens_file: repr.query_tokens_file.map(&relative),
            alerts: AlertsConfig {
                min_severity: repr.alerts.min_severity.unwrap_or(defaults::MIN_SEVERITY),
                base_url: repr.alerts.base_url,
                sinks,
            },
        })
    }
}

fn resolve_sink(s: SinkRepr, relative: &dyn Fn(PathBuf) -> PathBuf) -> Result<SinkConfig, String> {
    for name in &s.environments {
        envparity_proto::names::validate_environment(name)
            .map_err(|e| format!("environments: {e}"))?;
    }
    // Settings that do not belong to the sink's type are errors, not
    // silently ignored: a misplaced `url_file` would otherwise leave a sink
    // without its credential.
    let allowed: &[&str] = match s.kind {
        SinkType::Alertmanager => &["url", "resend_interval", "resolve_for"],
        SinkType::Slack => &["url_file"],
        SinkType::Pagerduty => &["url", "routing_key_file"],
        SinkType::Webhook => &["url", "secret_file"],
    };
    let given = [
        ("url", s.url.is_some()),
        ("url_file", s.url_file.is_some()),
        ("routing_key_file", s.routing_key_file.is_some()),
        ("secret_file", s.secret_file.is_some()),
        ("resend_interval", s.resend_interval.is_some()),
        ("resolve_for", s.resolve_for.is_some()),
    ];
    if let Some((key, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
        return Err(format!(
            "`{key}` does not apply to a sink of this type (it takes: {})",
            allowed.join(", ")
        ));
    }
    let required = |key: &str, v: Option<String>| {
        v.ok_or_else(|| format!("`{key}` is required for this sink type"))
    };
    let secret = |key: &str, v: Option<PathBuf>| -> Result<Secret, String> {
        let path = relative(v.ok_or_else(|| format!("`{key}` is required for this sink type"))?);
        read_secret(&path).map_err(|m| format!("{key} {}: {m}", path.display()))
    };
    let target = match s.kind {
        SinkType::Alertmanager => {
            let url = required("url", s.url)?;
            check_url(&url).map_err(|m| format!("url: {m}"))?;
            Target::Alertmanager {
                url,
                resend_interval: s.resend_interval.unwrap_or(defaults::RESEND_INTERVAL),
                resolve_for: s.resolve_for.unwrap_or(defaults::RESOLVE_FOR),
            }
        }
        SinkType::Slack => {
            let url = secret("url_file", s.url_file)?;
            check_url(url.expose()).map_err(|m| format!("url_file: the file's {m}"))?;
            Target::Slack { url }
        }
        SinkType::Pagerduty => {
            let url = s.url.unwrap_or_else(|| defaults::PAGERDUTY_URL.to_owned());
            check_url(&url).map_err(|m| format!("url: {m}"))?;
            Target::PagerDuty {
                url,
                routing_key: secret("routing_key_file", s.routing_key_file)?,
            }
        }
        SinkType::Webhook => {
            let url = required("url", s.url)?;
            check_url(&url).map_err(|m| format!("url: {m}"))?;
            let secret = secret("secret_file", s.secret_file)?;
            signing_key(secret.expose()).map_err(|m| format!("secret_file: {m}"))?;
            Target::Webhook { url, secret }
        }
    };
    let timeout = s.timeout.unwrap_or(defaults::TIMEOUT);
    if timeout.is_zero() {
        return Err("timeout must be more than 0s".to_owned());
    }
    let max_attempts = s.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS);
    if max_attempts == 0 {
        return Err("max_attempts must be at least 1".to_owned());
    }
    Ok(SinkConfig {
        name: s.name,
        route: Route {
            min_severity: s.min_severity.unwrap_or(defaults::MIN_SEVERITY),
            environments: s.environments.into_iter().collect(),
        },
        target,
        timeout,
        max_attempts,
        backoff: s.backoff.unwrap_or(defaults::BACKOFF),
    })
}

/// An `http://` or `https://` URL with a host; the message never echoes
/// the URL (it may be a credential, as Slack's are).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("URL is not valid ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("URL must be http:// or https:// with a host".to_owned());
    }
    Ok(())
}

/// Reads a secret file: it must be readable by its owner only (like the
/// agent's fingerprint key), and is trimmed of surrounding white space.
pub fn read_secret(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets group or others read it; run `chmod 600 {}`",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(Secret(text.to_owned()))
}

/// The HMAC key of a Standard Webhooks secret: `whsec_` + base64 is
/// decoded; any other text is used as raw bytes. At least 16 bytes.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the text after `whsec_` is not valid base64 ({e})"))?,
        None => secret.as_bytes().to_vec(),
    };
    if key.len() < 16 {
        return Err(format!(
            "the signing key is {} bytes; use at least 16 (e.g. `whsec_` + base64 of 32 random bytes)",
            key.len()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn load(text: &str) -> (tempfile::TempDir, Result<FileConfig, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "slack-url",
            "https://hooks.slack.test/T/B/X\n",
            0o600,
        );
        write(dir.path(), "pd-key", "R0UTINGKEY", 0o600);
        write(
            dir.path(),
            "wh-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            0o600,
        );
        write(
            dir.path(),
            "open-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            0o644,
        );
        let path = write(dir.path(), "aggregator.toml", text, 0o644);
        let loaded = FileConfig::load(&path);
        (dir, loaded)
    }

    #[test]
    fn a_full_file_loads_with_every_sink_type() {
        let (dir, cfg) = load(
            r#"
listen = "0.0.0.0:7600"
data_dir = "data"
stale_after = "2m"
policy = "/etc/envparity/policy.toml"
log_format = "json"
metrics_listen = "127.0.0.1:9600"
[alerts]
base_url = "https://envparity.example.com"
[[alerts.sinks]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"
resend_interval = "30s"
[[alerts.sinks]]
name = "slack"
type = "slack"
url_file = "slack-url"
min_severity = "critical"
environments = ["production"]
[[alerts.sinks]]
name = "pd"
type = "pagerduty"
routing_key_file = "pd-key"
[[alerts.sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:1/hook"
secret_file = "wh-secret"
max_attempts = 3
backoff = "100ms"
"#,
        );
        let cfg = cfg.unwrap();
        assert_eq!(cfg.listen, Some("0.0.0.0:7600".parse().unwrap()));
        assert_eq!(cfg.data_dir, Some(dir.path().join("data")));
        assert_eq!(cfg.stale_after, Some(Duration::from_secs(120)));
        assert_eq!(cfg.log_format, Some(LogFormat::Json));
        let names: Vec<_> = cfg.alerts.sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["am", "slack", "pd", "hook"]);
        let slack = &cfg.alerts.sinks[1];
        assert_eq!(slack.route.min_severity, Severity::Critical);
        assert!(
            slack
                .route
                .admits(Severity::Critical, ["staging", "production"].into_iter())
        );
        assert!(
            !slack
                .route
                .admits(Severity::Critical, ["dev", "staging"].into_iter())
        );
        assert!(
            !slack
                .route
                .admits(Severity::Warning, ["production"].into_iter())
        );
        match &cfg.alerts.sinks[2].target {
            Target::PagerDuty { url, routing_key } => {
                assert_eq!(url, defaults::PAGERDUTY_URL);
                assert_eq!(routing_key.expose(), "R0UTINGKEY");
            }
            other => panic!("pd is {other:?}"),
        }
        assert_eq!(cfg.alerts.sinks[3].max_attempts, 3);
        assert_eq!(cfg.alerts.sinks[3].backoff, Duration::from_millis(100));
        // Secrets never show in Debug output.
        let debug = format!("{cfg:?}");
        assert!(
            !debug.contains("R0UTINGKEY") && !debug.contains("hooks.slack.test"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_line_key_and_sink() {
        let cases = [
            ("lisen = \"x\"", "line 1"),
            ("stale_after = \"soon\"", "invalid duration"),
            ("listen = \"nowhere\"", "line 1"),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"",
                "`url` is required",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"carrier-pigeon\"\nurl = \"http://x\"",
                "carrier-pigeon",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"slack\"\nurl = \"http://x\"",
                "`url` does not apply",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x\"\nsecret_file = \"open-secret\"",
                "chmod 600",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x\"\nsecret_file = \"missing\"",
                "secret_file",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"ftp://x\"",
                "http:// or https://",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://x\"\n[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://y\"",
                "used by another sink",
            ),
            (
                "[[alerts.sinks]]\nname = \"a\"\ntype = \"alertmanager\"\nurl = \"http://x\"\nmin_severity = \"panic\"",
                "panic",
            ),
        ];
        for (text, expected) in cases {
            let (_dir, result) = load(text);
            let err = result.expect_err(text).to_string();
            assert!(err.contains("aggregator.toml"), "{err}");
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
