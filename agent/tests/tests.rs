//! Integration tests of the agent: one binary, modules per concern.
//!
//! Everything is real: the aggregator runs in-process (`envparity serve`'s
//! own `serve`, with its SQLite store), and Docker engines are isolated
//! dockerds from the end-to-end harness (`envparity_tests::DockerHost`).
//! `reporting` covers the protocol, mostly with the engine absent; `downgrade`
//! an aggregator replaced by an older release under a running agent (that
//! release, which this checkout cannot build, is stood in for: see there); `docker`
//! covers collection, engine events and engine restarts. The engines need
//! root, `docker.io` and `busybox-static` (`scripts/setup.sh`); without them
//! those tests fail, saying so.

mod support;

mod check_config;
mod config_files;
mod docker;
mod downgrade;
mod reporting;
