//! `check-config`'s answer: the effective settings of `serve`.

use serde::Serialize;

use super::SCHEMA_VERSION;
use super::named::by_name;
use crate::parity::Severity;

/// `check-config` output: the effective settings, never a secret.
#[derive(Debug, Serialize)]
pub struct ConfigCheck {
    pub schema_version: u32,
    /// The file checked.
    pub source: String,
    pub listen: String,
    /// `tls 1.3, client certificates from CA …` or `plain text (…)`.
    pub transport: String,
    /// `5/s per host, bursts of 50`.
    pub report_rate: String,
    pub data_dir: String,
    /// The store found: SQLite's file, or the PostgreSQL database and its
    /// schema version.
    pub store: String,
    pub stale_after: String,
    /// The policy file, or `built-in defaults`.
    pub policy: String,
    /// Empty when metrics are off.
    pub metrics_listen: String,
    pub log_format: String,
    #[serde(serialize_with = "by_name")]
    pub alert_min_severity: Severity,
    /// One line per sink: name, type, route (secrets are never shown).
    pub sinks: Vec<String>,
}

impl ConfigCheck {
    /// From a resolved configuration.
    pub fn new(
        source: String,
        c: &crate::server::ServeConfig,
        log_format: crate::config::LogFormat,
        store: String,
    ) -> Self {
        ConfigCheck {
            schema_version: SCHEMA_VERSION,
            source,
            listen: c.listen.to_string(),
            transport: match (&c.tls, c.plaintext) {
                (Some(tls), _) => format!(
                    "tls 1.3 (certificate {}, client certificates from CA {})",
                    tls.cert.display(),
                    tls.client_ca.display()
                ),
                (None, envparity_proto::transport::Plaintext::Anywhere) => format!(
                    "plain text, any address (insecure), at most {} hosts",
                    c.max_plaintext_hosts
                ),
                (None, _) => format!(
                    "plain text, loopback only (insecure), at most {} hosts",
                    c.max_plaintext_hosts
                ),
            },
            report_rate: format!(
                "{}/s per host, bursts of {}",
                c.report_rate.rate, c.report_rate.burst
            ),
            data_dir: c.data_dir.display().to_string(),
            store,
            stale_after: humantime::format_duration(c.stale_after).to_string(),
            policy: c.policy.as_ref().map_or_else(
                || "built-in defaults".to_owned(),
                |p| p.display().to_string(),
            ),
            metrics_listen: c.metrics_listen.map(|a| a.to_string()).unwrap_or_default(),
            log_format: match log_format {
                crate::config::LogFormat::Text => "text",
                crate::config::LogFormat::Json => "json",
            }
            .to_owned(),
            alert_min_severity: c.alerts.min_severity,
            sinks: c
                .alerts
                .sinks
                .iter()
                .map(|s| {
                    let envs: Vec<&str> = s.route.environments.iter().map(String::as_str).collect();
                    format!(
                        "{} ({}): min_severity {}, environments {}",
                        s.name,
                        s.target.type_name(),
                        s.route.min_severity,
                        if envs.is_empty() {
                            "all".to_owned()
                        } else {
                            envs.join(",")
                        }
                    )
                })
                .collect(),
        }
    }
}
