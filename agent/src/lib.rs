//! envparity-agent: watches a host's container engine and reports what runs
//! there to the envparity aggregator.
//!
//! The flow, from the top: [`config`] resolves flags, environment and file;
//! [`run`] drives the loop; [`collect`] reads the host and the container
//! runtime ([`runtime`]: Docker, Podman or containerd) into a `HostSnapshot`, using [`identity`] to name services, [`envsplit`] to
//! separate explicit env from the image's, [`fingerprint`], [`clear_env`] and
//! [`secrets`] to protect values; [`report`] sends snapshots and heartbeats; [`metrics`]
//! counts what it does.
#![forbid(unsafe_code)]

pub mod clear_env;
pub mod collect;
pub mod config;
pub mod config_files;
pub mod envsplit;
pub mod fingerprint;
pub mod identity;
pub mod journal;
pub mod limit;
pub mod logging;
pub mod machine;
pub mod metrics;
pub mod push_encoding;
pub mod report;
pub mod run;
pub mod runtime;
pub mod secrets;

pub use config::Config;
pub use run::{RunError, run, shutdown_signal};
