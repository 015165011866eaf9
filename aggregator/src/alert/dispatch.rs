//! The sink tasks: one per sink, each sending Alertmanager the state or
//! draining its own outbox of events, counting what was sent and what
//! failed.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use super::sender::alertmanager_endpoint;
use super::{Alerting, Event, deliver, sink};
use crate::config::{SinkConfig, Target};
use crate::store::StoreError;

/// How often an outbox sink looks for work without being woken.
const OUTBOX_POLL: Duration = Duration::from_secs(5);

/// Notifications read from the outbox per batch.
const OUTBOX_BATCH: usize = 200;

impl Alerting {
    /// Sends one outbox batch of an event sink; returns how many it handled.
    async fn drain_outbox(&self, sink: &SinkConfig) -> Result<usize, StoreError> {
        let store = Arc::clone(&self.store);
        let name = sink.name.clone();
        let rows = tokio::task::spawn_blocking(move || store.outbox(&name, OUTBOX_BATCH))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut events: Vec<(i64, Event)> = Vec::new();
        let mut unreadable = Vec::new();
        for row in &rows {
            match serde_json::from_str::<Event>(&row.event) {
                Ok(e) => events.push((row.seq, e)),
                Err(e) => {
                    tracing::error!(sink = %sink.name, seq = row.seq, error = %e, "queued notification is unreadable; dropped");
                    self.metrics.failed(&sink.name);
                    unreadable.push(row.seq);
                }
            }
        }
        self.done(unreadable).await?;
        match &sink.target {
            Target::Slack { url } => {
                // One message per service (in order of first appearance).
                let mut groups: Vec<(String, Vec<(i64, Event)>)> = Vec::new();
                for (seq, e) in events {
                    match groups.iter_mut().find(|(s, _)| *s == e.alert.service) {
                        Some((_, g)) => g.push((seq, e)),
                        None => groups.push((e.alert.service.clone(), vec![(seq, e)])),
                    }
                }
                for (service, group) in groups {
                    let evs: Vec<Event> = group.iter().map(|(_, e)| e.clone()).collect();
                    let mut outcome = Ok(());
                    for message in
                        sink::slack_messages(&service, &evs, self.config.base_url.as_deref())
                    {
                        let body = serde_json::to_vec(&message).unwrap_or_default();
                        outcome = deliver::post(
                            &self.sender.client,
                            sink,
                            url.expose(),
                            &body,
                            HeaderMap::new,
                        )
                        .await;
                        if outcome.is_err() {
                            break;
                        }
                    }
                    self.count(sink, &outcome, evs.len());
                    self.done(group.iter().map(|(s, _)| *s).collect()).await?;
                }
            }
            _ => {
                for (seq, e) in events {
                    let outcome = self.sender.deliver_event(sink, &e).await;
                    self.count(sink, &outcome, 1);
                    self.done(vec![seq]).await?;
                }
            }
        }
        Ok(rows.len())
    }

    fn count(&self, sink: &SinkConfig, outcome: &Result<(), deliver::Undelivered>, n: usize) {
        for _ in 0..n {
            match outcome {
                Ok(()) => self.metrics.sent(&sink.name),
                Err(_) => self.metrics.failed(&sink.name),
            }
        }
        if let Err(e) = outcome {
            tracing::error!(sink = %sink.name, notifications = n, error = %e, "notification not delivered");
        }
    }

    async fn done(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.outbox_done(&seqs))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Sends Alertmanager the current state: firing alerts with `endsAt`
    /// three resend intervals ahead (they expire by themselves if envparity
    /// stops), resolved ones with their resolution time.
    async fn sync_alertmanager(&self, sink: &SinkConfig, url: &str, resend: Duration) {
        let now = SystemTime::now();
        let alerts: Vec<serde_json::Value> = self
            .book()
            .values()
            .filter(|a| sink.route.admits(a.severity, a.environments()))
            .map(|a| {
                let ends = a.resolved_at().unwrap_or(now + resend * 3);
                sink::alertmanager_alert(a, ends, self.config.base_url.as_deref())
            })
            .collect();
        if alerts.is_empty() {
            return;
        }
        let body = serde_json::to_vec(&alerts).unwrap_or_default();
        let outcome = deliver::post(
            &self.sender.client,
            sink,
            &alertmanager_endpoint(url),
            &body,
            HeaderMap::new,
        )
        .await;
        self.count(sink, &outcome, 1);
    }
}

/// The task of the sink at `index` in the configuration: it runs until the
/// alerting state is dropped.
pub(super) async fn sink_task(alerting: Weak<Alerting>, index: usize) {
    loop {
        let Some(a) = alerting.upgrade() else { return };
        let sink = a.config.sinks[index].clone();
        let wait = match &sink.target {
            Target::Alertmanager {
                url,
                resend_interval,
                ..
            } => {
                a.sync_alertmanager(&sink, url, *resend_interval).await;
                *resend_interval
            }
            _ => match a.drain_outbox(&sink).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => OUTBOX_POLL,
                Err(e) => {
                    tracing::error!(sink = %sink.name, error = %e, "cannot read the notification outbox");
                    OUTBOX_POLL
                }
            },
        };
        // Hold only the wake-up, not the alerting state, while waiting.
        let woken = async { a.wake[index].notified().await };
        let _ = tokio::time::timeout(wait, woken).await;
    }
}
