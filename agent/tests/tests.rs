//! Integration tests of the agent: one binary, modules per concern.
//!
//! `reporting` runs the agent against an in-process fake aggregator.
//! `docker` starts real, isolated Docker engines and needs `dockerd`,
//! `docker` and a static `busybox` (Debian: docker.io, busybox-static); it
//! fails, loudly, when they are missing.

mod support;

mod docker;
mod reporting;
