//! Test helpers: a fake aggregator, a real isolated Docker engine, and a
//! config builder.

pub mod aggregator;
pub mod dockerd;

use std::time::Duration;

use envparity_agent::Config;
use envparity_agent::clear_env::ClearEnvPolicy;
use envparity_agent::config::LogFormat;
use envparity_agent::fingerprint::FleetKey;

/// The fleet key every test agent uses.
pub fn fleet_key() -> FleetKey {
    FleetKey::from_bytes(*b"0123456789abcdef")
}

/// A daemon-mode config reporting to `aggregator` from the engine at
/// `docker_host`. Heartbeats are fast and the periodic resync is off (1 h),
/// so anything a test sees was triggered by an event or a heartbeat.
pub fn config(aggregator: &str, docker_host: &str) -> Config {
    Config {
        aggregator: aggregator.to_owned(),
        environment: "staging".to_owned(),
        host_id: "test-host".to_owned(),
        docker_host: docker_host.to_owned(),
        labels: vec![("region".to_owned(), "eu".to_owned())],
        fingerprint_key: fleet_key(),
        fingerprint_key_id: "ktest".to_owned(),
        clear_env: ClearEnvPolicy::new(["LOG_LEVEL", "DB_PASSWORD"]),
        host_root: "/".into(),
        heartbeat_interval: Duration::from_millis(100),
        resync_interval: Duration::from_secs(3600),
        once: false,
        log_format: LogFormat::Text,
    }
}

/// An engine address where nothing answers.
pub const NO_ENGINE: &str = "unix:///nonexistent/envparity-test/docker.sock";
