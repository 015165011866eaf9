//! What a fleet's daemons expose to anyone who can read them, for the
//! planted-secret tests to search.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agent::Agent;
use super::aggregator::Aggregator;
use crate::error::{Error, Result};
use crate::http;
use crate::wait::wait_until;

/// Both daemons' `/metrics` (the aggregator's at `metrics_port`, the first
/// agent's at `agent_metrics_port`), the aggregator's and every agent's
/// debug log, and every file of the aggregator's data directory, each as
/// (what it is, its bytes).
pub fn daemon_outputs(
    aggregator: &Aggregator,
    agents: &[Agent],
    metrics_port: u16,
    agent_metrics_port: u16,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut seen = Vec::new();
    for (what, port) in [
        ("aggregator /metrics", metrics_port),
        ("agent /metrics", agent_metrics_port),
    ] {
        let body = http::get(&format!("http://127.0.0.1:{port}/metrics"))?.body;
        seen.push((what.to_owned(), body.into_bytes()));
    }
    seen.push(("aggregator debug log".into(), aggregator.log().into_bytes()));
    for (i, agent) in agents.iter().enumerate() {
        seen.push((format!("agent {i} debug log"), agent.log().into_bytes()));
    }
    seen.extend(aggregator.stored()?);
    Ok(seen)
}

/// What an agent's journal (the directory `journal`) holds of unsent
/// snapshots, once it holds one (waiting up to `timeout`): every
/// `*.snapshot` entry's bytes, one after the other.
pub fn journaled_snapshots(journal: &Path, timeout: Duration) -> Result<Vec<u8>> {
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(journal)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "snapshot"))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(timeout, "a journaled snapshot", || !entries().is_empty())?;
    let mut bytes = Vec::new();
    for path in entries() {
        bytes.extend(std::fs::read(&path).map_err(Error::io(format!("read {}", path.display())))?);
    }
    Ok(bytes)
}
