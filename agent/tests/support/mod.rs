//! Test helpers: the real aggregator in-process ([`serve`]), the agent
//! in-process ([`agent`]), and the config they share. Docker engines come
//! from the end-to-end harness, `envparity_tests::DockerHost`.

pub mod agent;
pub mod serve;

use std::time::Duration;

use envparity_agent::Config;
use envparity_agent::clear_env::ClearEnvPolicy;
use envparity_agent::config::LogFormat;
use envparity_agent::fingerprint::FleetKey;

/// The host id every test agent reports as.
pub const HOST_ID: &str = "test-host";

/// The environment every test agent reports.
pub const ENVIRONMENT: &str = "staging";

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
        environment: ENVIRONMENT.to_owned(),
        host_id: HOST_ID.to_owned(),
        docker_host: docker_host.to_owned(),
        runtime: envparity_agent::runtime::detect::RuntimeChoice::Auto,
        runtime_socket: None,
        labels: vec![("region".to_owned(), "eu".to_owned())],
        fingerprint_key: fleet_key(),
        fingerprint_key_id: "ktest".to_owned(),
        clear_env: ClearEnvPolicy::new(["LOG_LEVEL", "DB_PASSWORD"]),
        clear_config: envparity_agent::config_files::ClearConfigPolicy::parse(&[
            "/etc/app/*=log.level",
            "/run/secrets/*=*",
        ])
        .expect("clear-config entries"),
        config_files: envparity_agent::config_files::bounds::Bounds {
            include: envparity_agent::config_files::bounds::Bounds::DEFAULT_INCLUDE
                .iter()
                .map(|g| (*g).to_owned())
                .collect(),
            exclude: vec!["/etc/app/skip/*".to_owned()],
            max_files: 32,
            max_file_bytes: 256 * 1024,
            max_total_bytes: 16 * 1024 * 1024,
        },
        host_root: "/".into(),
        heartbeat_interval: Duration::from_millis(100),
        resync_interval: Duration::from_secs(3600),
        once: false,
        full_snapshots: false,
        log_format: LogFormat::Text,
        metrics_listen: None,
        state_dir: None,
        journal_max_bytes: envparity_agent::journal::DEFAULT_MAX_BYTES,
        // The in-process aggregator serves plain text on loopback.
        tls: envparity_proto::transport::ClientTls {
            plaintext: envparity_proto::transport::Plaintext::Loopback,
            ..Default::default()
        },
    }
}

/// An engine address where nothing answers.
pub const NO_ENGINE: &str = "unix:///nonexistent/envparity-test/docker.sock";

/// A multi-threaded runtime for one in-process component. Each component
/// gets its own, so the test thread can block (on `docker`, on polling)
/// while the agent and the aggregator keep running, and stopping one cannot
/// stall the other.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}
