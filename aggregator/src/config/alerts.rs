//! `[alerts]` of the aggregator's config file: where alerts go.
//!
//! Sinks exist only in the file: they carry secrets, which are read from
//! their own files (never from flags, which `ps` shows). The table is read
//! by serde through the settings mechanism ([`super::serve::ALERTS`]), so an
//! unknown key or a bad value names its line; then [`resolve`] checks what
//! serde cannot: a sink setting that does not belong to its type, a bad
//! URL, a secret file that others may read.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use envparity_settings::Show;
use serde::Deserialize;

use super::defaults;
use crate::parity::Severity;
use crate::parity::policy::duration;

/// `[alerts]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsRepr {
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

#[derive(Debug, Clone, Deserialize)]
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

impl Show for AlertsRepr {
    fn show(&self) -> String {
        format!(
            "at {} and above, {} sink(s)",
            self.min_severity.unwrap_or(defaults::MIN_SEVERITY),
            self.sinks.len()
        )
    }
}

/// `[alerts]` checked, every secret file read; relative paths are relative
/// to `base`, the config file's directory. The error names the sink.
pub fn resolve(repr: AlertsRepr, base: &Path) -> Result<AlertsConfig, String> {
    let relative = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    let mut names = BTreeSet::new();
    let mut sinks = Vec::new();
    for (i, sink) in repr.sinks.into_iter().enumerate() {
        let what = format!("sinks[{i}] ({:?})", sink.name);
        if sink.name.is_empty()
            || !sink
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "sinks[{i}]: name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                sink.name
            ));
        }
        if !names.insert(sink.name.clone()) {
            return Err(format!("{what}: the name is used by another sink"));
        }
        sinks.push(resolve_sink(sink, &relative).map_err(|m| format!("{what}: {m}"))?);
    }
    if let Some(url) = &repr.base_url {
        check_url(url).map_err(|m| format!("base_url: {m}"))?;
    }
    Ok(AlertsConfig {
        min_severity: repr.min_severity.unwrap_or(defaults::MIN_SEVERITY),
        base_url: repr.base_url,
        sinks,
    })
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
