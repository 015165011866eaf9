//! A whole aggregator without a network: the report and query services over
//! the real SQLite store ([`FuzzStore`]), reset to [`report::baseline`] for
//! each input.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use envparity_aggregator::alert::Alerting;
use envparity_aggregator::config::AlertsConfig;
use envparity_aggregator::fleet::{Fleet, LoadedPolicy};
use envparity_aggregator::metrics::Metrics;
use envparity_aggregator::server::auth::Auth;
use envparity_aggregator::server::rate::{RateLimit, RateLimiter};
use envparity_aggregator::server::{QueryApi, ReportApi};

use crate::report;
use crate::store::FuzzStore;

/// One tokio runtime per fuzzing process (the services are async and the
/// store runs on the blocking pool, as in `serve`).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

/// The services over a fresh fleet.
#[derive(Debug)]
pub struct Aggregator {
    /// What is stored.
    pub store: &'static FuzzStore,
    /// The fleet.
    pub fleet: Arc<Fleet>,
    /// The report service, as agents reach it (plain text: no certificate
    /// checks, which `server/auth.rs` tests cover; the default rate limit,
    /// far above the few calls one input makes).
    pub report: ReportApi,
    /// The query service, as the CLI reaches it.
    pub query: QueryApi,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Its alerting.
    pub alerting: Arc<Alerting>,
}

impl Aggregator {
    /// An aggregator that has the baseline fleet, received just now.
    pub fn with_baseline() -> Self {
        let now = SystemTime::now();
        let store = FuzzStore::get();
        store.reset(&report::baseline(), now);
        let fleet = Arc::new(
            Fleet::load(
                store.store(),
                Duration::from_secs(90),
                LoadedPolicy::defaults(now),
                now,
            )
            .expect("the baseline fleet loads"),
        );
        let metrics = Arc::new(Metrics::new());
        let alerting = Arc::new(
            Alerting::load(AlertsConfig::default(), store.store(), Arc::clone(&metrics))
                .expect("alerting loads"),
        );
        Aggregator {
            report: ReportApi::new(
                Arc::clone(&fleet),
                Arc::clone(&metrics),
                Arc::new(Auth::default()),
                Arc::new(RateLimiter::new(RateLimit::default())),
            ),
            query: QueryApi::new(Arc::clone(&fleet), Arc::clone(&alerting)),
            store,
            fleet,
            metrics,
            alerting,
        }
    }
}
