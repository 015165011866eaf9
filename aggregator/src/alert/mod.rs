//! Alerting: findings that became active become alerts, which fire once,
//! resolve once, and reach every configured sink.
//!
//! One reconciler compares the ledger (judged with the policy's
//! `alert_grace`) with the book of alerts, every second and whenever the
//! ledger changes ([`model::plan`]): only the findings a report (or time,
//! or a new policy) opened, changed or resolved since it last looked, and
//! those whose grace period or waiver has ended since — every other
//! verdict is the one the book holds, so the cost of a report does not
//! grow with the number of open findings. Every change is written to the store
//! *with* the notifications it implies (an outbox, one row per sink and
//! event) in one transaction, before anything is sent: an aggregator that
//! dies mid-delivery delivers after its restart instead of forgetting, and
//! one that restarts does not fire again what was already firing.
//!
//! Each sink has its own task, so a slow or dead sink never blocks ingest
//! or another sink. Alertmanager is sent the *state* (every firing alert
//! with `endsAt` ahead, every recent resolution) at each change and every
//! `resend_interval`, as it expects; Slack, PagerDuty and webhooks are sent
//! the *events* from the outbox, in order.
//!
//! This file holds the alerting state, [`Alerting`]. Reconciliation is in
//! `reconcile.rs`, what the query API and the metrics read in `query.rs`,
//! the sink tasks in `dispatch.rs`, and sending one notification in
//! `sender.rs`; [`model`] is the pure code of alerts, [`sink`] the request
//! bodies and [`deliver`] the retries.

pub mod deliver;
mod dispatch;
pub mod model;
mod query;
mod reconcile;
mod sender;
pub mod sink;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use crate::config::AlertsConfig;
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::parity::{FindingKey, Severity};
use crate::store::{Store, StoreError};
pub use model::{Action, Alert, Event};
pub use reconcile::Sweep;
pub use sender::Sender;

use dispatch::sink_task;
use reconcile::reconciler;

/// The alerting state shared by the reconciler, the sinks, the query API
/// and the metrics.
#[derive(Debug)]
pub struct Alerting {
    config: AlertsConfig,
    min_severity: Severity,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Firing alerts and recently resolved ones, by id.
    book: Mutex<BTreeMap<String, Alert>>,
    /// When the verdict on an open finding may change with time alone (its
    /// grace period or waiver ends): it is judged again then.
    due: Mutex<BTreeSet<(SystemTime, FindingKey)>>,
    /// One wake-up per sink, in `config.sinks` order.
    wake: Vec<tokio::sync::Notify>,
    sender: Sender,
}

impl Alerting {
    /// Loads the book of alerts from `store`.
    pub fn load(
        config: AlertsConfig,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let mut book = BTreeMap::new();
        for row in store.load_alerts()? {
            match serde_json::from_str::<Alert>(&row.body) {
                Ok(a) => {
                    book.insert(a.id.clone(), a);
                }
                Err(e) => {
                    tracing::error!(alert = %row.id.escape_debug(), error = %e, "stored alert is unreadable; it is dropped")
                }
            }
        }
        for s in &config.sinks {
            metrics.register_sink(&s.name);
        }
        let wake = config
            .sinks
            .iter()
            .map(|_| tokio::sync::Notify::new())
            .collect();
        let sender = Sender::new(&config);
        Ok(Alerting {
            min_severity: config.min_severity,
            config,
            store,
            metrics,
            book: Mutex::new(book),
            due: Mutex::default(),
            wake,
            sender,
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Alert>> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn due(&self) -> std::sync::MutexGuard<'_, BTreeSet<(SystemTime, FindingKey)>> {
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the reconciler and one task per sink; they end when the fleet
    /// is dropped (the reconciler) or when `self` is (the sinks).
    pub fn spawn(self: &Arc<Self>, fleet: Weak<Fleet>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(reconciler(Arc::downgrade(self), fleet))];
        for i in 0..self.config.sinks.len() {
            tasks.push(tokio::spawn(sink_task(Arc::downgrade(self), i)));
        }
        tasks
    }
}
