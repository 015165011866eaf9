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

pub mod deliver;
pub mod model;
pub mod sink;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};

use crate::config::{AlertsConfig, SinkConfig, Target};
use crate::fleet::{Changed, Fleet};
use crate::metrics::Metrics;
use crate::parity::{FindingKey, Severity, judged_until};
use crate::store::{AlertRow, OutboxRow, Store, StoreError};
pub use model::{Action, Alert, Event};

/// Which open findings a reconciliation judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Those that changed since the last reconciliation (every one the
    /// first time), and those whose grace period or waiver has ended since:
    /// no other verdict can differ from what the book holds. The cost is
    /// that of the changes, not of the fleet.
    Changed,
    /// Every one (what `Changed` must always agree with).
    Everything,
}

/// How often the reconciler looks at the ledger without being woken.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// How often an outbox sink looks for work without being woken.
const OUTBOX_POLL: Duration = Duration::from_secs(5);

/// Notifications read from the outbox per batch.
const OUTBOX_BATCH: usize = 200;

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

    /// The findings whose verdict may have changed by `now` with time alone.
    fn take_due(&self, now: SystemTime) -> Vec<FindingKey> {
        let mut due = self.due();
        let mut out = Vec::new();
        while let Some(first) = due.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, key)) = due.pop_first() {
                out.push(key);
            }
        }
        out
    }

    /// The firing alerts, most severe first.
    pub fn firing(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self
            .book()
            .values()
            .filter(|a| a.is_firing())
            .cloned()
            .collect();
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// How many alerts fire, by severity (for `/metrics`: nothing copied).
    pub fn firing_by_severity(&self) -> BTreeMap<Severity, u64> {
        let mut out = BTreeMap::new();
        for a in self.book().values().filter(|a| a.is_firing()) {
            *out.entry(a.severity).or_insert(0) += 1;
        }
        out
    }

    /// The lowest severity that alerts.
    pub fn min_severity(&self) -> Severity {
        self.min_severity
    }

    /// The sinks, as `name (type)`.
    pub fn sinks(&self) -> Vec<String> {
        self.config
            .sinks
            .iter()
            .map(|s| format!("{} ({})", s.name, s.target.type_name()))
            .collect()
    }

    /// How long resolved alerts are kept: the longest Alertmanager
    /// `resolve_for`.
    fn keep_resolved(&self) -> Duration {
        self.config
            .sinks
            .iter()
            .filter_map(|s| match s.target {
                Target::Alertmanager { resolve_for, .. } => Some(resolve_for),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    /// Compares the ledger with the book once (with [`Sweep::Changed`],
    /// only where it may differ); records and queues what changed.
    pub async fn reconcile(
        &self,
        fleet: &Fleet,
        sweep: Sweep,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let result = self.reconcile_once(fleet, sweep, now).await;
        if result.is_err() {
            // What was taken as changed was not recorded: look at
            // everything next time.
            fleet.all_changed();
        }
        result
    }

    async fn reconcile_once(
        &self,
        fleet: &Fleet,
        sweep: Sweep,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let grace = fleet.policy().policy.alert_grace;
        let changed = match sweep {
            Sweep::Everything => Changed::everything(),
            Sweep::Changed => fleet.take_changed(),
        };
        let (findings, only) = if changed.everything {
            (fleet.judged(None, |_| grace, now), None)
        } else {
            let mut keys = changed.keys;
            keys.extend(self.take_due(now));
            let ids: BTreeSet<String> = keys.iter().map(FindingKey::id).collect();
            (fleet.judged(Some(&keys), |_| grace, now), Some(ids))
        };
        {
            let mut due = self.due();
            for f in &findings {
                if let Some(until) = judged_until(f, grace, now) {
                    due.insert((until, f.identity()));
                }
            }
        }
        let plan = model::plan(
            &self.book(),
            &findings,
            only.as_ref(),
            self.min_severity,
            now,
        );
        let keep = self.keep_resolved();
        let forget_before = envparity_proto::time::unix_millis(now)
            .saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        if plan.is_empty() {
            // Only time passes: resolved alerts age out of the book.
            model::apply(&mut self.book(), &plan, keep, now);
            return Ok(());
        }
        let events = plan.events(now);
        let mut outbox = Vec::new();
        for event in &events {
            let json = serde_json::to_string(event).unwrap_or_default();
            for sink in &self.config.sinks {
                let queued = !matches!(sink.target, Target::Alertmanager { .. })
                    && sink
                        .route
                        .admits(event.alert.severity, event.alert.environments());
                if queued {
                    outbox.push(OutboxRow {
                        seq: 0,
                        sink: sink.name.clone(),
                        event: json.clone(),
                    });
                }
            }
        }
        let rows: Vec<AlertRow> = plan
            .resolved
            .iter()
            .chain(&plan.fired)
            .chain(&plan.refreshed)
            .map(|a| AlertRow {
                id: a.id.clone(),
                body: serde_json::to_string(a).unwrap_or_default(),
                resolved_ms: a.resolved_at_ms,
            })
            .collect();
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.save_alerts(&rows, &outbox, forget_before))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        model::apply(&mut self.book(), &plan, keep, now);
        for e in &events {
            tracing::info!(
                alert = %e.alert.id.escape_debug(),
                action = e.action.as_str(),
                severity = %e.alert.severity,
                service = %e.alert.service.escape_debug(),
                summary = %e.alert.summary.escape_debug(),
                "alert {}", e.action.as_str()
            );
        }
        for w in &self.wake {
            w.notify_one();
        }
        Ok(())
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

/// Sends notifications: an HTTP client and the links to put in them.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    base_url: Option<String>,
}

impl Sender {
    /// A sender for `config`'s sinks.
    pub fn new(config: &AlertsConfig) -> Self {
        Sender {
            client: deliver::client(),
            base_url: config.base_url.clone(),
        }
    }

    /// Sends a test notification to the sink named `name` now, with the
    /// sink's retry rules; for `envparity alerts test`.
    pub async fn test(&self, config: &AlertsConfig, name: &str) -> Result<(), String> {
        let sink = config
            .sinks
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no sink named {name:?} (configured: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
        let now = SystemTime::now();
        let at_ms = envparity_proto::time::unix_millis(now);
        let alert = Alert {
            id: format!("test|{name}|{at_ms}"),
            kind: crate::parity::Kind::ImageDigest,
            severity: Severity::Info,
            service: "envparity-test".to_owned(),
            env_a: "test".to_owned(),
            env_b: String::new(),
            host: String::new(),
            key: String::new(),
            summary: format!("envparity test notification to sink {name}"),
            description: "Sent by `envparity alerts test`; no action needed.".to_owned(),
            first_seen_ms: at_ms,
            fired_at_ms: at_ms,
            resolved_at_ms: None,
        };
        let test = Event {
            action: Action::Test,
            alert: alert.clone(),
            at_ms,
        };
        let result = match &sink.target {
            Target::Alertmanager { url, .. } => {
                // An info alert that ends by itself in a minute.
                let body = serde_json::to_vec(&[sink::alertmanager_alert(
                    &alert,
                    now + Duration::from_secs(60),
                    self.base_url.as_deref(),
                )])
                .unwrap_or_default();
                deliver::post(
                    &self.client,
                    sink,
                    &alertmanager_endpoint(url),
                    &body,
                    HeaderMap::new,
                )
                .await
            }
            Target::PagerDuty { .. } => {
                // Trigger, then resolve, so nobody is left paged.
                let resolve = Event {
                    action: Action::Resolved,
                    ..test.clone()
                };
                match self.deliver_event(sink, &test).await {
                    Ok(()) => self.deliver_event(sink, &resolve).await,
                    e => e,
                }
            }
            _ => self.deliver_event(sink, &test).await,
        };
        result.map_err(|e| e.to_string())
    }

    /// Delivers one event to an event sink (Slack, PagerDuty, webhook).
    pub async fn deliver_event(
        &self,
        sink: &SinkConfig,
        event: &Event,
    ) -> Result<(), deliver::Undelivered> {
        let base_url = self.base_url.as_deref();
        match &sink.target {
            Target::Alertmanager { .. } => Ok(()),
            Target::Slack { url } => {
                for message in sink::slack_messages(
                    &event.alert.service,
                    std::slice::from_ref(event),
                    base_url,
                ) {
                    let body = serde_json::to_vec(&message).unwrap_or_default();
                    deliver::post(&self.client, sink, url.expose(), &body, HeaderMap::new).await?;
                }
                Ok(())
            }
            Target::PagerDuty { url, routing_key } => {
                let body = serde_json::to_vec(&sink::pagerduty_event(
                    routing_key.expose(),
                    event,
                    base_url,
                ))
                .unwrap_or_default();
                deliver::post(&self.client, sink, url, &body, HeaderMap::new).await
            }
            Target::Webhook { url, secret } => {
                let key = crate::config::signing_key(secret.expose()).map_err(|e| {
                    deliver::Undelivered::Refused {
                        status: 0,
                        answer: e,
                    }
                })?;
                let body = serde_json::to_vec(&sink::webhook_body(event)).unwrap_or_default();
                let id = event.message_id();
                let headers = || {
                    let ts = envparity_proto::time::unix_millis(SystemTime::now()) / 1000;
                    let sig = sink::webhook_signature(&key, &id, ts, &body);
                    let mut h = HeaderMap::new();
                    for (name, value) in [
                        ("webhook-id", id.clone()),
                        ("webhook-timestamp", ts.to_string()),
                        ("webhook-signature", sig),
                    ] {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            h.insert(name, v);
                        }
                    }
                    h
                };
                deliver::post(&self.client, sink, url, &body, headers).await
            }
        }
    }
}

fn alertmanager_endpoint(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

async fn reconciler(alerting: Weak<Alerting>, fleet: Weak<Fleet>) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(f) = fleet.upgrade() else { return };
        tokio::select! {
            _ = tick.tick() => {}
            () = f.changed() => {}
        }
        let Some(a) = alerting.upgrade() else { return };
        if let Err(e) = a.reconcile(&f, Sweep::Changed, SystemTime::now()).await {
            tracing::error!(error = %e, "alerting: cannot record alert changes; will retry");
        }
    }
}

async fn sink_task(alerting: Weak<Alerting>, index: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::LoadedPolicy;
    use crate::fleet::tests::random_report;
    use crate::parity::{Kind, Policy, policy::Waiver};
    use crate::store::SqliteStore;

    fn alerting(dir: &std::path::Path) -> Alerting {
        let config = AlertsConfig {
            min_severity: Severity::Info,
            ..AlertsConfig::default()
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        Alerting::load(config, store, Arc::new(Metrics::new())).unwrap()
    }

    /// Random reports, time passing (grace periods ending, hosts going
    /// stale, waivers expiring) and policy changes: after every step, the
    /// reconciler that judges only what changed or fell due holds the same
    /// alerts — fired, refreshed and resolved at the same instants — as one
    /// that judges every open finding.
    #[tokio::test]
    async fn reconciling_what_changed_matches_reconciling_everything() {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let waiver = |service: &str, expires: u64| Waiver {
            kind: Kind::ImageDigest,
            service: service.to_owned(),
            key: String::new(),
            host: String::new(),
            environments: Default::default(),
            reason: "test".to_owned(),
            owner: "test".to_owned(),
            expires: t0 + Duration::from_secs(expires),
        };
        let policy = |alert_grace: u64| LoadedPolicy {
            policy: Policy {
                alert_grace: Duration::from_secs(alert_grace),
                waivers: vec![waiver("s1", 300), waiver("s2", 900), waiver("s2", 600)],
                ..Policy::default()
            },
            source: "test".to_owned(),
            loaded_at: t0,
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dirs[0].path()).unwrap());
        let fleet = Fleet::load(store, Duration::from_secs(40), policy(20), t0).unwrap();
        let (changed, everything) = (alerting(dirs[1].path()), alerting(dirs[2].path()));

        let mut rng = fastrand::Rng::with_seed(11);
        let mut sequence = BTreeMap::new();
        let mut now = t0;
        let (mut fired, mut resolved) = (0, 0);
        for step in 0..400 {
            now += Duration::from_millis(rng.u64(0..12_000));
            match rng.u8(0..20) {
                0..=14 => {
                    fleet
                        .push(random_report(&mut rng, &mut sequence), now)
                        .await
                        .unwrap();
                }
                15..=17 => fleet.tick(now).await.unwrap(),
                18 => fleet
                    .set_policy(policy(rng.u64(0..3) * 15), now)
                    .await
                    .unwrap(),
                _ => {}
            }
            changed
                .reconcile(&fleet, Sweep::Changed, now)
                .await
                .unwrap();
            everything
                .reconcile(&fleet, Sweep::Everything, now)
                .await
                .unwrap();
            let (a, b) = (changed.book().clone(), everything.book().clone());
            assert_eq!(a, b, "after step {step}");
            fired = fired.max(a.values().filter(|a| a.is_firing()).count());
            resolved = resolved.max(a.len() - a.values().filter(|a| a.is_firing()).count());
        }
        assert!(
            fired > 3 && resolved > 0,
            "the sequence exercised little: {fired} firing, {resolved} resolved"
        );
    }
}
