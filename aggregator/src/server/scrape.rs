//! The metrics listener of `serve` (`/metrics` and `/ready`, `metrics.rs`):
//! up from the start, before the store is loaded and while a replica stands
//! by for the writer lease, so that a prober tells a live standby (`/ready`
//! 503, `envparity_serving 0`) from a dead replica. The fleet's gauges are
//! counted once this replica serves; until then there are none.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use anyhow::Context;

use super::{census, conn};
use crate::alert::Alerting;
use crate::fleet::Fleet;
use crate::metrics::{self, Metrics};

/// What `/metrics` counts the fleet's gauges from, once it serves.
type Served = OnceLock<(Arc<Fleet>, Arc<Alerting>)>;

/// The running metrics listener, if `metrics_listen` asked for one.
pub(super) struct Scrape {
    served: Arc<Served>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Scrape {
    /// Binds `addr` (a taken port fails start-up) and serves `metrics`
    /// there; nothing when `addr` is `None`.
    pub(super) async fn start(
        addr: Option<SocketAddr>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let served = Arc::new(Served::new());
        let Some(addr) = addr else {
            return Ok(Scrape {
                served,
                stop: None,
                task: None,
            });
        };
        let listener = metrics::bind(addr).await?;
        let bound = listener.local_addr().context("metrics listener address")?;
        tracing::info!(metrics = %bound, "serving Prometheus metrics at /metrics");
        let listener = conn::Http1Listener::new(listener, Arc::clone(metrics));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counted = Arc::clone(&served);
        let task = tokio::spawn(metrics::serve(
            listener,
            Arc::clone(metrics),
            move || {
                counted
                    .get()
                    .map(|(fleet, alerting)| census(fleet, alerting, SystemTime::now()))
                    .unwrap_or_default()
            },
            async {
                stopped.await.ok();
            },
        ));
        Ok(Scrape {
            served,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// From now on `/metrics` counts `fleet` and `alerting`.
    pub(super) fn serving(&self, fleet: &Arc<Fleet>, alerting: &Arc<Alerting>) {
        let _ = self.served.set((Arc::clone(fleet), Arc::clone(alerting)));
    }

    /// Stops the listener and waits for it.
    pub(super) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "metrics server failed"),
                Err(e) => tracing::error!(error = %e, "metrics server task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}
