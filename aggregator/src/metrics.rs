//! The aggregator's Prometheus metrics, served as OpenMetrics text on their
//! own HTTP listener (`metrics_listen`), apart from the gRPC port so that
//! scraping needs no gRPC and the API needs no HTTP router.
//!
//! Labels are bounded: kinds, severities, environment names, states, sink
//! names and fixed reasons — never a host, digest or value, which would
//! make a series per deployment. Fleet-wide gauges (findings, hosts,
//! alerts) are computed from the fleet at scrape time, so they cannot drift
//! from what the CLI shows. The format follows the scraper's `Accept`
//! header ([`envparity_proto::exposition`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use envparity_proto::v1::HostState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::alert::Alerting;
use crate::server::Fleet;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    kind: &'static str,
    severity: &'static str,
    state: &'static str,
    env_a: String,
    env_b: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    environment: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: &'static str,
}

/// Why a report was rejected (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or over a limit (`INVALID_ARGUMENT`).
    Invalid,
    /// The store failed (`UNAVAILABLE`).
    Store,
    /// An internal failure.
    Internal,
    /// The caller may not report for that host (`PERMISSION_DENIED` or
    /// `UNAUTHENTICATED`).
    Unauthorized,
    /// The host reported faster than the rate limit (`RESOURCE_EXHAUSTED`).
    RateLimited,
    /// A new host beyond the plain-text host cap (`RESOURCE_EXHAUSTED`).
    HostCap,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::Invalid => "invalid",
            Rejection::Store => "store",
            Rejection::Internal => "internal",
            Rejection::Unauthorized => "unauthorized",
            Rejection::RateLimited => "rate_limited",
            Rejection::HostCap => "host_cap",
        }
    }
}

/// The aggregator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    received: Family<ReportLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    ingest: Histogram,
    sent: Family<SinkLabels, Counter>,
    failed: Family<SinkLabels, Counter>,
    findings: Family<FindingLabels, Gauge>,
    hosts: Family<HostLabels, Gauge>,
    alerts: Family<SeverityLabels, Gauge>,
    connections_refused: Family<LimitLabels, Counter>,
    budget_exhausted: Counter,
    accept_failed: Counter,
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
            registry: Mutex::new(Registry::default()),
            received: Family::default(),
            rejected: Family::default(),
            // 0.5 ms … ~4 s.
            ingest: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            sent: Family::default(),
            failed: Family::default(),
            findings: Family::default(),
            hosts: Family::default(),
            alerts: Family::default(),
            connections_refused: Family::default(),
            budget_exhausted: Counter::default(),
            accept_failed: Counter::default(),
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
            "envparity_build_info",
            "The running envparity's version (always 1)",
            build,
        );
        registry.register(
            "envparity_reports_received",
            "Reports received from agents, by type (snapshot, heartbeat)",
            m.received.clone(),
        );
        registry.register(
            "envparity_reports_rejected",
            "Reports rejected, by reason (invalid, store, internal, unauthorized)",
            m.rejected.clone(),
        );
        registry.register(
            "envparity_ingest_duration_seconds",
            "Time from receiving a snapshot to acknowledging it (validated, evaluated, durably stored)",
            m.ingest.clone(),
        );
        registry.register(
            "envparity_alert_notifications_sent",
            "Notifications a sink accepted, by sink",
            m.sent.clone(),
        );
        registry.register(
            "envparity_alert_notifications_failed",
            "Notifications a sink refused or that were given up after retries, by sink",
            m.failed.clone(),
        );
        registry.register(
            "envparity_findings",
            "Open findings by kind, severity, state (pending, active, waived) and environment pair",
            m.findings.clone(),
        );
        registry.register(
            "envparity_hosts",
            "Known hosts by environment and state (fresh, stale, engine_unreachable, refused)",
            m.hosts.clone(),
        );
        registry.register(
            "envparity_alerts_firing",
            "Alerts firing, by severity",
            m.alerts.clone(),
        );
        registry.register(
            "envparity_connections_refused",
            "gRPC connections closed on arrival or after the TLS handshake because a connection limit was reached, by limit",
            m.connections_refused.clone(),
        );
        registry.register(
            "envparity_request_budget_exhausted",
            "Requests refused with RESOURCE_EXHAUSTED because the bytes of requests in flight reached their bound",
            m.budget_exhausted.clone(),
        );
        registry.register(
            "envparity_accept_failed",
            "Failed accept(2) calls on the gRPC listener (e.g. out of file descriptors)",
            m.accept_failed.clone(),
        );
        *m.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = registry;
        // Every fixed series exists from the start (at 0), so rate() and
        // absent() work before the first report.
        for refusal in crate::server::conn::Refusal::ALL {
            let _ = m.connections_refused.get_or_create(&LimitLabels {
                limit: refusal.as_str(),
            });
        }
        for kind in ["snapshot", "heartbeat"] {
            let _ = m.received.get_or_create(&ReportLabels { r#type: kind });
        }
        for why in [
            Rejection::Invalid,
            Rejection::Store,
            Rejection::Internal,
            Rejection::Unauthorized,
            Rejection::RateLimited,
            Rejection::HostCap,
        ] {
            let _ = m.rejected.get_or_create(&ReasonLabels {
                reason: why.as_str(),
            });
        }
        m
    }

    /// Counts a report received (`snapshot` or `heartbeat`).
    pub fn received(&self, kind: &'static str) {
        self.received
            .get_or_create(&ReportLabels { r#type: kind })
            .inc();
    }

    /// Counts a connection refused by the limit `limit`.
    pub fn connection_refused(&self, limit: &'static str) {
        self.connections_refused
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Counts a request refused because the in-flight budget was full.
    pub fn request_budget_exhausted(&self) {
        self.budget_exhausted.inc();
    }

    /// Counts a failed `accept`.
    pub fn accept_failed(&self) {
        self.accept_failed.inc();
    }

    /// Counts a rejected report.
    pub fn rejected(&self, why: Rejection) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Records how long a snapshot took to ingest.
    pub fn ingested(&self, took: Duration) {
        self.ingest.observe(took.as_secs_f64());
    }

    /// Counts a notification accepted by `sink`.
    pub fn sent(&self, sink: &str) {
        self.sent
            .get_or_create(&SinkLabels {
                sink: sink.to_owned(),
            })
            .inc();
    }

    /// Counts a notification that `sink` refused or that was given up.
    pub fn failed(&self, sink: &str) {
        self.failed
            .get_or_create(&SinkLabels {
                sink: sink.to_owned(),
            })
            .inc();
    }

    /// Makes sure a sink's counters exist (at 0) before its first
    /// notification, so rate() and absent() work from the start.
    pub fn register_sink(&self, sink: &str) {
        let labels = SinkLabels {
            sink: sink.to_owned(),
        };
        let _ = self.sent.get_or_create(&labels);
        let _ = self.failed.get_or_create(&labels);
    }

    /// The OpenMetrics text, with the fleet-wide gauges computed now.
    pub fn render(&self, fleet: &Fleet, alerting: &Alerting) -> String {
        let now = SystemTime::now();
        let view = fleet.view(now);
        // One scrape at a time: the gauges are cleared and refilled.
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.findings.clear();
        for f in view.findings(None) {
            self.findings
                .get_or_create(&FindingLabels {
                    kind: f.kind.as_str(),
                    severity: f.severity.as_str(),
                    state: f.status.state.as_str(),
                    env_a: f.a.environment.clone(),
                    env_b: f
                        .b
                        .as_ref()
                        .map(|b| b.environment.clone())
                        .unwrap_or_default(),
                })
                .inc();
        }
        self.hosts.clear();
        for (host, state) in &view.hosts {
            let state = match state {
                HostState::Stale => "stale",
                HostState::EngineUnreachable => "engine_unreachable",
                HostState::Refused => "refused",
                _ => "fresh",
            };
            self.hosts
                .get_or_create(&HostLabels {
                    environment: host.snapshot.environment.clone(),
                    state,
                })
                .inc();
        }
        self.alerts.clear();
        for a in alerting.firing() {
            self.alerts
                .get_or_create(&SeverityLabels {
                    severity: a.severity.as_str(),
                })
                .inc();
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    fleet: Arc<Fleet>,
    alerting: Arc<Alerting>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics_for_listener = Arc::clone(&metrics);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (metrics, fleet, alerting) = (
                Arc::clone(&metrics),
                Arc::clone(&fleet),
                Arc::clone(&alerting),
            );
            async move {
                let text = tokio::task::spawn_blocking(move || metrics.render(&fleet, &alerting))
                    .await
                    .unwrap_or_default();
                let accept = headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let (content_type, body) = envparity_proto::exposition::negotiate(accept, text);
                ([(axum::http::header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    let listener =
        crate::server::conn::Http1Listener::new(listener, Arc::clone(&metrics_for_listener));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics HTTP server")
}

/// Binds the metrics listener (so a taken port fails start-up, not later).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_the_build_info_are_encoded() {
        let m = Metrics::new();
        m.received("snapshot");
        m.rejected(Rejection::Invalid);
        m.rejected(Rejection::Invalid);
        m.sent("hook");
        m.register_sink("quiet");
        m.ingested(Duration::from_millis(3));
        let registry = m.registry.lock().unwrap();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "envparity_build_info{version=\"0.1.0\"} 1",
            "envparity_reports_received_total{type=\"snapshot\"} 1",
            "envparity_reports_received_total{type=\"heartbeat\"} 0",
            "envparity_reports_rejected_total{reason=\"invalid\"} 2",
            "envparity_reports_rejected_total{reason=\"store\"} 0",
            "envparity_alert_notifications_sent_total{sink=\"hook\"} 1",
            "envparity_alert_notifications_failed_total{sink=\"quiet\"} 0",
            "envparity_ingest_duration_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
