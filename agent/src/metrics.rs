//! The agent's own Prometheus metrics, served (when `--metrics-listen` is
//! set) as OpenMetrics text on a small HTTP listener: how long collections
//! take, how many engine events it saw, what it sent and what failed, and
//! how many snapshots await the aggregator's acknowledgement. Labels are
//! fixed words; nothing about containers or values is exported.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config_files::counts::{NotRead, ReadCounts};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

/// What was sent: `snapshot` or `heartbeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A full snapshot.
    Snapshot,
    /// A snapshot as what changed since the one acknowledged last.
    Delta,
    /// A heartbeat.
    Heartbeat,
}

impl Sent {
    fn labels(self) -> TypeLabels {
        TypeLabels {
            r#type: match self {
                Sent::Snapshot => "snapshot",
                Sent::Delta => "delta",
                Sent::Heartbeat => "heartbeat",
            },
        }
    }
}

/// The agent's metrics; cheap to clone (shared counters).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    collection: Histogram,
    events: Counter,
    sent: Family<TypeLabels, Counter>,
    failed: Family<TypeLabels, Counter>,
    unacknowledged: Gauge,
    journal_bytes: Gauge,
    compactions: Counter,
    dropped: Counter,
    config_mounts: Family<CacheLabels, Counter>,
    config_files: Family<OutcomeLabels, Counter>,
    config_bytes: Counter,
}

const HIT: CacheLabels = CacheLabels { cache: "hit" };
const MISS: CacheLabels = CacheLabels { cache: "miss" };

fn outcome(outcome: &'static str, reason: &'static str) -> OutcomeLabels {
    OutcomeLabels { outcome, reason }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Arc::new(Mutex::new(Registry::default())),
            // 1 ms … ~8 s.
            collection: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            events: Counter::default(),
            sent: Family::default(),
            failed: Family::default(),
            unacknowledged: Gauge::default(),
            journal_bytes: Gauge::default(),
            compactions: Counter::default(),
            dropped: Counter::default(),
            config_mounts: Family::default(),
            config_files: Family::default(),
            config_bytes: Counter::default(),
        };
        // A gauge at 1 (the classic `_info` convention) rather than an
        // OpenMetrics info metric, which Prometheus' text tooling rejects.
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "envparity_agent_build_info",
            "The running agent's version (always 1)",
            build,
        );
        registry.register(
            "envparity_agent_collection_duration_seconds",
            "Time to read the host and the engine into a snapshot",
            m.collection.clone(),
        );
        registry.register(
            "envparity_agent_engine_events",
            "Container events received from the engine",
            m.events.clone(),
        );
        registry.register(
            "envparity_agent_reports_sent",
            "Reports the aggregator acknowledged, by type (snapshot, heartbeat)",
            m.sent.clone(),
        );
        registry.register(
            "envparity_agent_reports_failed",
            "Reports that failed (to be retried), by type (snapshot, heartbeat)",
            m.failed.clone(),
        );
        registry.register(
            "envparity_agent_unacknowledged_snapshots",
            "Snapshots in the journal, held until the aggregator acknowledges them",
            m.unacknowledged.clone(),
        );
        registry.register(
            "envparity_agent_journal_bytes",
            "Encoded size of the journal's snapshots",
            m.journal_bytes.clone(),
        );
        registry.register(
            "envparity_agent_journal_compactions",
            "Times the journal reached its bound and compacted (kept the first and latest snapshot)",
            m.compactions.clone(),
        );
        registry.register(
            "envparity_agent_journal_dropped_snapshots",
            "Snapshots between the first and the latest that compactions dropped",
            m.dropped.clone(),
        );
        registry.register(
            "envparity_agent_config_file_mounts",
            "Mounts looked at for configuration files, by whether the engine's stats were unchanged (cache hit: not read again) or not (miss: read)",
            m.config_mounts.clone(),
        );
        registry.register(
            "envparity_agent_config_files",
            "Configuration files reported, by outcome (unchanged: from the cache; read; not_parsed; not_read) and, for not_read, the reason",
            m.config_files.clone(),
        );
        registry.register(
            "envparity_agent_config_file_bytes_fetched",
            "Bytes of configuration file content fetched from the engine",
            m.config_bytes.clone(),
        );
        let _ = m.config_mounts.get_or_create(&HIT);
        let _ = m.config_mounts.get_or_create(&MISS);
        for (o, r) in [("unchanged", ""), ("read", ""), ("not_parsed", "")] {
            let _ = m.config_files.get_or_create(&outcome(o, r));
        }
        for reason in NotRead::ALL {
            let _ = m
                .config_files
                .get_or_create(&outcome("not_read", reason.as_str()));
        }
        for kind in [Sent::Snapshot, Sent::Delta, Sent::Heartbeat] {
            let _ = m.sent.get_or_create(&kind.labels());
            let _ = m.failed.get_or_create(&kind.labels());
        }
        *m.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = registry;
        m
    }

    /// Records a collection's duration.
    pub fn collected(&self, took: Duration) {
        self.collection.observe(took.as_secs_f64());
    }

    /// Counts an engine event.
    pub fn event(&self) {
        self.events.inc();
    }

    /// Counts an acknowledged report.
    pub fn sent(&self, what: Sent) {
        self.sent.get_or_create(&what.labels()).inc();
    }

    /// Counts a failed report.
    pub fn failed(&self, what: Sent) {
        self.failed.get_or_create(&what.labels()).inc();
    }

    /// Sets how many snapshots (of how many bytes) await acknowledgement.
    pub fn journal(&self, entries: usize, bytes: u64) {
        self.unacknowledged
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.journal_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts a compaction that dropped `dropped` snapshots.
    pub fn compacted(&self, dropped: usize) {
        self.compactions.inc();
        self.dropped.inc_by(dropped as u64);
    }

    /// Counts what a collection's reading of configuration files did.
    pub fn config_files(&self, counts: &ReadCounts) {
        self.config_mounts
            .get_or_create(&HIT)
            .inc_by(counts.mounts_unchanged);
        self.config_mounts
            .get_or_create(&MISS)
            .inc_by(counts.mounts_read);
        let files = &self.config_files;
        files
            .get_or_create(&outcome("unchanged", ""))
            .inc_by(counts.files_unchanged);
        files
            .get_or_create(&outcome("read", ""))
            .inc_by(counts.files_read);
        files
            .get_or_create(&outcome("not_parsed", ""))
            .inc_by(counts.files_not_parsed);
        for (reason, n) in &counts.files_not_read {
            files
                .get_or_create(&outcome("not_read", reason.as_str()))
                .inc_by(*n);
        }
        self.config_bytes.inc_by(counts.bytes_fetched);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Binds `addr` (a taken port fails start-up) and serves `GET /metrics`
/// (HTTP/1 only) in the background for as long as the runtime runs.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let metrics = metrics.clone();
            async move {
                let text = metrics.render();
                let accept = headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let (content_type, body) = envparity_proto::exposition::negotiate(accept, text);
                ([(axum::http::header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    tokio::spawn(envparity_proto::http1::serve(
        listener,
        app,
        std::future::pending(),
    ));
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_metrics_listener_speaks_http1_only() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Metrics::new())
            .await
            .unwrap();
        let (scrape, h2c) = tokio::task::spawn_blocking(move || {
            (
                envparity_tests::http::get(&format!("http://{addr}/metrics")),
                envparity_tests::http::answers_h2c(addr),
            )
        })
        .await
        .unwrap();
        let scrape = scrape.unwrap();
        assert_eq!(scrape.status, 200);
        assert!(scrape.body.contains("envparity_agent"), "{}", scrape.body);
        assert!(
            !h2c.unwrap(),
            "the agent's metrics listener took HTTP/2 (h2c)"
        );
    }
}
