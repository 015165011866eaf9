//! The aggregator's Prometheus metrics, served as OpenMetrics text on their
//! own HTTP listener (`metrics_listen`), apart from the gRPC port so that
//! scraping needs no gRPC and the API needs no HTTP router.
//!
//! Labels are bounded: kinds, severities, environment names, states, sink
//! names and fixed reasons — never a host, digest or value, which would
//! make a series per deployment. Fleet-wide gauges (findings, hosts,
//! alerts) are counted at scrape time into a [`Census`] by whoever holds the
//! fleet and the alerts (`serve` wires it), so they cannot drift from what
//! the CLI shows; this module only renders what it is handed, and imports
//! nothing of the aggregator. The format follows the scraper's `Accept`
//! header ([`envparity_proto::exposition`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use envparity_proto::v1::HostState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

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
struct StoreErrorLabels {
    op: &'static str,
    error: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    op: &'static str,
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
    /// A delta the aggregator could not apply: no base held, another base,
    /// or a rebuilt snapshot that does not match (`FAILED_PRECONDITION`;
    /// the agent sends the full snapshot).
    DeltaMismatch,
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
            Rejection::DeltaMismatch => "delta_mismatch",
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
    serving: Gauge,
    lease_epoch: Gauge,
    store_errors: Family<StoreErrorLabels, Counter>,
    lease_errors: Family<LeaseLabels, Counter>,
}

/// The calls on the writer lease whose failures are counted (the `op`
/// label of `envparity_writer_lease_errors_total`).
pub const LEASE_OPS: [&str; 3] = ["claim", "renew", "release"];

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
            serving: Gauge::default(),
            lease_epoch: Gauge::default(),
            store_errors: Family::default(),
            lease_errors: Family::default(),
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
            "Reports received from agents, by type (snapshot, delta, heartbeat)",
            m.received.clone(),
        );
        registry.register(
            "envparity_reports_rejected",
            "Reports rejected, by reason (invalid, store, internal, unauthorized, rate_limited, host_cap, delta_mismatch)",
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
        registry.register(
            "envparity_serving",
            "1 while this replica serves (on PostgreSQL: holds the writer lease), 0 while it loads or stands by",
            m.serving.clone(),
        );
        registry.register(
            "envparity_writer_lease_epoch",
            "The epoch of the writer lease this replica holds on PostgreSQL; 0 on SQLite and while it stands by",
            m.lease_epoch.clone(),
        );
        registry.register(
            "envparity_store_errors",
            "Store calls that failed, by call (op) and error class (database, fenced, corrupt, read_only, schema, task, abandoned, import, data_dir)",
            m.store_errors.clone(),
        );
        registry.register(
            "envparity_writer_lease_errors",
            "Calls on the PostgreSQL writer lease that failed because the database did not answer, by call (claim, renew, release); each is tried again",
            m.lease_errors.clone(),
        );
        *m.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = registry;
        // Every fixed series exists from the start (at 0), so rate() and
        // absent() work before the first report.
        for kind in ["snapshot", "delta", "heartbeat"] {
            let _ = m.received.get_or_create(&ReportLabels { r#type: kind });
        }
        for why in [
            Rejection::Invalid,
            Rejection::Store,
            Rejection::Internal,
            Rejection::Unauthorized,
            Rejection::RateLimited,
            Rejection::HostCap,
            Rejection::DeltaMismatch,
        ] {
            let _ = m.rejected.get_or_create(&ReasonLabels {
                reason: why.as_str(),
            });
        }
        for op in LEASE_OPS {
            let _ = m.lease_errors.get_or_create(&LeaseLabels { op });
        }
        m
    }

    /// Counts a store call `op` that failed with an error of class `error`.
    pub fn store_error(&self, op: &'static str, error: &'static str) {
        self.store_errors
            .get_or_create(&StoreErrorLabels { op, error })
            .inc();
    }

    /// Counts a call `op` (one of [`LEASE_OPS`]) on the writer lease that
    /// failed.
    pub fn lease_error(&self, op: &'static str) {
        self.lease_errors.get_or_create(&LeaseLabels { op }).inc();
    }

    /// This replica serves from now on, holding the writer lease of
    /// `epoch` (0: SQLite, no lease).
    pub fn serving(&self, epoch: i64) {
        self.lease_epoch.set(epoch);
        self.serving.set(1);
    }

    /// Whether this replica serves (`/ready`).
    pub fn is_serving(&self) -> bool {
        self.serving.get() == 1
    }

    /// Counts a report received (`snapshot` or `heartbeat`).
    pub fn received(&self, kind: &'static str) {
        self.received
            .get_or_create(&ReportLabels { r#type: kind })
            .inc();
    }

    /// Makes sure the refused-connection counter of each of `limits` exists
    /// (at 0) before the first refusal, so rate() and absent() work from
    /// the start.
    pub fn register_connection_limits(&self, limits: impl IntoIterator<Item = &'static str>) {
        for limit in limits {
            let _ = self
                .connections_refused
                .get_or_create(&LimitLabels { limit });
        }
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

    /// The OpenMetrics text, with the fleet-wide gauges as `census` counted
    /// them. Series that `census` no longer has are dropped.
    pub fn render(&self, census: &Census) -> String {
        // One scrape at a time: the gauges are cleared and refilled.
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.findings.clear();
        for (env_a, by_b) in &census.findings {
            for (env_b, by_class) in by_b {
                for (&(kind, severity, state), &count) in by_class {
                    self.findings
                        .get_or_create(&FindingLabels {
                            kind,
                            severity,
                            state,
                            env_a: env_a.clone(),
                            env_b: env_b.clone(),
                        })
                        .set(count);
                }
            }
        }
        self.hosts.clear();
        for (environment, by_state) in &census.hosts {
            for (&state, &count) in by_state {
                self.hosts
                    .get_or_create(&HostLabels {
                        environment: environment.clone(),
                        state,
                    })
                    .set(count);
            }
        }
        self.alerts.clear();
        for (&severity, &count) in &census.alerts {
            self.alerts
                .get_or_create(&SeverityLabels { severity })
                .set(count);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// The fleet-wide values one scrape shows: label sets and their counts. It
/// grows with the label sets (kinds, severities, states, environments), not
/// with the fleet: counting a finding or a host allocates only for a label
/// set not seen before in this census.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Census {
    /// Open findings: first environment → second (empty for a finding of
    /// one environment) → (kind, severity, state) → count.
    findings: BTreeMap<String, BTreeMap<String, BTreeMap<FindingClass, i64>>>,
    /// Hosts: environment → state → count.
    hosts: BTreeMap<String, BTreeMap<&'static str, i64>>,
    /// Firing alerts: severity → count.
    alerts: BTreeMap<&'static str, i64>,
}

/// A finding's kind, severity and state, as label values.
type FindingClass = (&'static str, &'static str, &'static str);

impl Census {
    /// Counts an open finding of `kind` and `severity`, judged `state`,
    /// between `env_a` and `env_b` (empty for one environment's finding).
    pub fn finding(
        &mut self,
        kind: &'static str,
        severity: &'static str,
        state: &'static str,
        env_a: &str,
        env_b: &str,
    ) {
        let by_class = slot(slot(&mut self.findings, env_a), env_b);
        *by_class.entry((kind, severity, state)).or_insert(0) += 1;
    }

    /// Counts a host of `environment` shown in `state`.
    pub fn host(&mut self, environment: &str, state: HostState) {
        let state = match state {
            HostState::Stale => "stale",
            HostState::EngineUnreachable => "engine_unreachable",
            HostState::Refused => "refused",
            _ => "fresh",
        };
        *slot(&mut self.hosts, environment).entry(state).or_insert(0) += 1;
    }

    /// Counts `count` firing alerts of `severity`.
    pub fn alerts(&mut self, severity: &'static str, count: u64) {
        *self.alerts.entry(severity).or_insert(0) += i64::try_from(count).unwrap_or(i64::MAX);
    }
}

/// `map[key]`, created empty when absent; the key is copied only then.
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
        .unwrap_or_else(|| unreachable!("{key:?} was just inserted"))
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves, with the
/// fleet-wide gauges as `census` counts them at each scrape, and `GET
/// /ready`: `200 serving` once [`Metrics::serving`] was called, else `503
/// standby` (a replica that loads or waits for the writer lease), for
/// readiness probes.
pub async fn serve<L>(
    listener: L,
    metrics: Arc<Metrics>,
    census: impl Fn() -> Census + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let census = Arc::new(census);
    let ready = Arc::clone(&metrics);
    let app = axum::Router::new().route(
        "/ready",
        axum::routing::get(move || {
            let serving = ready.is_serving();
            async move {
                if serving {
                    (axum::http::StatusCode::OK, "serving\n")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "standby\n")
                }
            }
        }),
    );
    let app = app.route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (metrics, census) = (Arc::clone(&metrics), Arc::clone(&census));
            async move {
                let text = tokio::task::spawn_blocking(move || metrics.render(&census()))
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
    envparity_proto::http1::serve(listener, app, shutdown).await;
    Ok(())
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

    #[tokio::test]
    async fn the_metrics_listener_speaks_http1_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Metrics::new()),
            Census::default,
            std::future::pending(),
        ));
        let (scrape, h2c) = tokio::task::spawn_blocking(move || {
            (
                envparity_tests::http::get(&format!("http://{addr}/metrics")),
                envparity_tests::http::answers_h2c(addr),
            )
        })
        .await
        .unwrap();
        server.abort();
        assert_eq!(scrape.unwrap().status, 200);
        assert!(!h2c.unwrap(), "the metrics listener took HTTP/2 (h2c)");
    }

    #[tokio::test]
    async fn ready_says_standby_until_the_replica_serves() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let server = tokio::spawn(serve(
            listener,
            Arc::clone(&metrics),
            Census::default,
            std::future::pending(),
        ));
        let get = move |path: &'static str| {
            tokio::task::spawn_blocking(move || {
                envparity_tests::http::get(&format!("http://{addr}{path}")).unwrap()
            })
        };
        let before = get("/ready").await.unwrap();
        let text = get("/metrics").await.unwrap().body;
        assert_eq!((before.status, before.body.as_str()), (503, "standby\n"));
        assert!(text.contains("envparity_serving 0\n"), "{text}");
        metrics.serving(7);
        let after = get("/ready").await.unwrap();
        let text = get("/metrics").await.unwrap().body;
        server.abort();
        assert_eq!((after.status, after.body.as_str()), (200, "serving\n"));
        assert!(text.contains("envparity_serving 1\n"), "{text}");
        assert!(text.contains("envparity_writer_lease_epoch 7\n"), "{text}");
    }

    #[test]
    fn counters_and_the_build_info_are_encoded() {
        let m = Metrics::new();
        m.received("snapshot");
        m.rejected(Rejection::Invalid);
        m.rejected(Rejection::Invalid);
        m.sent("hook");
        m.register_sink("quiet");
        m.ingested(Duration::from_millis(3));
        m.store_error("save_reports", "database");
        m.lease_error("renew");
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
            "envparity_store_errors_total{op=\"save_reports\",error=\"database\"} 1",
            "envparity_writer_lease_errors_total{op=\"renew\"} 1",
            "envparity_writer_lease_errors_total{op=\"claim\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    /// A scrape shows the census it is handed, one series per label set,
    /// and drops the series a later census no longer has.
    #[test]
    fn the_census_is_rendered_and_what_leaves_it_goes() {
        let m = Metrics::new();
        let mut c = Census::default();
        for _ in 0..2 {
            c.finding(
                "image_digest",
                "critical",
                "active",
                "staging",
                "production",
            );
        }
        c.finding("stale_host", "warning", "pending", "production", "");
        c.host("production", HostState::Stale);
        c.host("production", HostState::Fresh);
        c.host("production", HostState::Fresh);
        c.alerts("critical", 3);
        let text = m.render(&c);
        for line in [
            r#"envparity_findings{kind="image_digest",severity="critical",state="active",env_a="staging",env_b="production"} 2"#,
            r#"envparity_findings{kind="stale_host",severity="warning",state="pending",env_a="production",env_b=""} 1"#,
            r#"envparity_hosts{environment="production",state="fresh"} 2"#,
            r#"envparity_hosts{environment="production",state="stale"} 1"#,
            r#"envparity_alerts_firing{severity="critical"} 3"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let text = m.render(&Census::default());
        for gone in [
            "envparity_findings{",
            "envparity_hosts{",
            "envparity_alerts_firing{",
        ] {
            assert!(!text.contains(gone), "{gone} still in\n{text}");
        }
    }
}
