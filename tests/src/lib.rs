//! End-to-end harness for envparity: real Docker engines as hosts, a real
//! registry, and envparity's real binaries, under one temp dir per test.
//!
//! Tests read as sentences:
//!
//! ```no_run
//! use envparity_tests::{Fleet, ImageSpec, Run};
//!
//! # fn main() -> envparity_tests::Result<()> {
//! let fleet = Fleet::builder().host("staging").host("production").registry().start()?;
//! let (staging, prod) = (fleet.host("staging"), fleet.host("production"));
//! prod.import_image("myapp:1", ImageSpec::new().file("/app/version", "1").env("BAKED", "1"))?;
//! let digest = fleet.registry().push_from(prod, "myapp:1")?;
//! fleet.registry().pull_to(staging, "myapp:1")?;
//! let image = fleet.registry().reference("myapp:1");
//! prod.run(Run::new(&image).name("shop").env("FOO", "bar").label("envparity.service", "shop"))?;
//!
//! let _aggregator = fleet.start_aggregator()?;
//! let _agents = (fleet.start_agent(staging)?, fleet.start_agent(prod)?);
//! fleet.wait_for_hosts(&["staging", "production"], std::time::Duration::from_secs(30))?;
//! fleet.cli(&["diff", "staging", "production"])?.assert_code(1);
//! # let _ = digest; Ok(()) }
//! ```
//!
//! Every component is a guard: dropping it (also when a test panics) kills
//! what it started *by pid*, unmounts what dockerd mounted, and removes its
//! dir. A failing test prints the tail of each process's log.
//!
//! The harness needs root and the Debian packages `docker.io`,
//! `docker-registry` and `busybox-static` (`scripts/setup.sh` installs them);
//! without them every test fails and says so. The envparity binaries must be
//! built first (`cargo build --workspace`; `scripts/test.sh` does it).
#![forbid(unsafe_code)]

pub mod answer;
mod bins;
pub mod browser;
mod cli;
mod command;
mod containerd;
mod cri_proxy;
mod docker_host;
mod error;
pub mod fake_engine;
mod fleet;
pub mod grpc;
pub mod h2client;
pub mod http;
mod image;
mod key;
mod monitoring;
mod nssdb;
pub mod pids;
mod podman;
mod postgres;
mod probe;
mod process;
mod registry;
mod run;
mod scratch;
mod socket_proxy;
pub mod synthetic;
mod tap;
pub mod tools;
mod wait;
pub mod web;

pub use bins::{BIN_DIR_ENV, bin_dir, cargo_bin};
pub use cli::{CLI_BIN, CliOutput, EXIT_MISMATCH, EXIT_PARITY, project_command};
pub use command::{COMMAND_TIMEOUT, Output, checked, output};
pub use containerd::{ContainerdHost, Pod, PodContainer, RunningPod};
pub use cri_proxy::CriReadOnlyProxy;
pub use docker_host::DockerHost;
pub use error::{Error, Result};
pub use fleet::agent::{AGENT_BIN, Agent, AgentBuilder, DEFAULT_HEARTBEAT, full_snapshots};
pub use fleet::aggregator::{Aggregator, AggregatorBuilder};
pub use fleet::exposed::{daemon_outputs, journaled_snapshots};
pub use fleet::replicas::Replicas;
pub use fleet::{Fleet, FleetBuilder};
pub use image::ImageSpec;
pub use key::{FINGERPRINT_KEY_LEN, write_fingerprint_key};
pub use monitoring::{Alertmanager, Prometheus};
pub use podman::PodmanHost;
pub use postgres::{PASSWORD_ROLE, Postgres, ServerTls, Session};
pub use process::{DEFAULT_STOP_TIMEOUT, Process};
pub use registry::Registry;
pub use run::Run;
pub use scratch::{KEEP_ENV, PREFIX, ScratchDir, mounts_under};
pub use socket_proxy::ReadOnlyProxy;
pub use tap::Tap;
pub use wait::{free_port, wait_for, wait_until};
