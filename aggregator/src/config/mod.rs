//! The aggregator's configuration (`envparity serve`, `check-config`,
//! `alerts test`).
//!
//! Every setting of `serve` can come from a flag, its environment variable
//! or the TOML file `--config` names, in that order of precedence, so one
//! binary fits a systemd unit (file), a container (environment) and a quick
//! manual run (flags). Each is declared once, in [`serve`], on the
//! mechanism the agent uses too (`envparity_settings`): the flags, the
//! file's keys, the precedence, errors naming the flag, the variable or the
//! file, line and key, and `check-config`'s summary all come from there.
//! Alert sinks exist only in the file ([`alerts`]).
//!
//! Parsing is strict, like the policy's: an unknown key, a bad address or
//! duration, a sink setting that does not belong to its type, or a secret
//! file that others may read is an error naming the file, line and key.
//! `envparity check-config` runs exactly this validation and nothing else.

pub mod alerts;
pub mod serve;
pub mod store;

pub use alerts::{AlertsConfig, Route, Secret, SinkConfig, Target, read_secret, signing_key};
pub use envparity_settings::Error as ConfigError;
pub use envparity_settings::parse::LogFormat;
pub use serve::{FileConfig, ServeArgs};
pub use store::StoreUrl;

/// Defaults, one place for `--help` and behaviour.
pub mod defaults {
    use std::net::SocketAddr;
    use std::time::Duration;

    /// `listen`.
    pub const LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        7600,
    ));
    /// `data_dir`.
    pub const DATA_DIR: &str = "./envparity-data";
    /// `stale_after`.
    pub const STALE_AFTER: Duration = Duration::from_secs(90);
    /// `lease_ttl`: a standby takes over within about this long after the
    /// writing replica died.
    pub const LEASE_TTL: Duration = Duration::from_secs(10);
    /// `max_plaintext_hosts`.
    pub const MAX_PLAINTEXT_HOSTS: usize = 10_000;
    /// `report_rate`: 5 reports/s per host, far above what a real agent
    /// sends, far below what a flood costs (also `server::rate::RateLimit`'s
    /// default).
    pub const REPORT_RATE: f64 = 5.0;
    /// `report_burst`.
    pub const REPORT_BURST: u32 = 50;
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
