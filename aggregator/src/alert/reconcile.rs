//! Reconciliation: comparing the ledger with the book of alerts, recording
//! what fired, changed or resolved together with its notifications, and the
//! task that does it every second and whenever the ledger changes.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use super::{Alerting, model};
use crate::config::Target;
use crate::fleet::{Changed, Fleet};
use crate::parity::{FindingKey, judged_until};
use crate::store::{AlertRow, OutboxRow, StoreError};

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

impl Alerting {
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
        fleet.generation().bump();
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
}

/// The reconciler task: reconciles what changed every [`RECONCILE_EVERY`]
/// and whenever the ledger changes, until the fleet or the alerting state
/// is dropped.
pub(super) async fn reconciler(alerting: Weak<Alerting>, fleet: Weak<Fleet>) {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::Sweep;
    use crate::alert::Alerting;
    use crate::config::AlertsConfig;
    use crate::fleet::tests::random_report;
    use crate::fleet::{Fleet, LoadedPolicy};
    use crate::metrics::Metrics;
    use crate::parity::{Kind, Policy, Severity, policy::Waiver};
    use crate::store::{SqliteStore, Store};

    fn alerting(dir: &std::path::Path) -> Alerting {
        let config = AlertsConfig {
            min_severity: Severity::Info,
            ..AlertsConfig::default()
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        Alerting::load(config, store, Arc::new(Metrics::new())).unwrap()
    }

    /// A change of the alerts moves the fleet's change generation (the
    /// alerts page shows it); a reconciliation that changes nothing does
    /// not.
    #[tokio::test]
    async fn an_alert_that_fires_moves_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let fleet = Arc::new(
            Fleet::load(
                store,
                Duration::from_secs(3600),
                LoadedPolicy::defaults(t0),
                t0,
            )
            .unwrap(),
        );
        let alerting = alerting(dir.path());
        for (host, env, image) in [("s", "staging", 1), ("p", "production", 2)] {
            let s = crate::fleet::tests::report(
                host,
                env,
                1,
                vec![crate::fleet::tests::container("shop", image, 0)],
            );
            fleet.push(s, t0).await.unwrap();
        }
        alerting
            .reconcile(&fleet, Sweep::Changed, t0)
            .await
            .unwrap();
        let before = fleet.generation().current();
        let later = t0 + Duration::from_secs(3600);
        alerting
            .reconcile(&fleet, Sweep::Changed, later)
            .await
            .unwrap();
        assert!(
            alerting.book().values().any(|a| a.is_firing()),
            "the drift must fire once its grace ends"
        );
        assert!(fleet.generation().current() > before, "an alert fired");
        let fired = fleet.generation().current();
        alerting
            .reconcile(&fleet, Sweep::Changed, later)
            .await
            .unwrap();
        assert_eq!(fleet.generation().current(), fired, "nothing changed");
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
        let fleet = Arc::new(Fleet::load(store, Duration::from_secs(40), policy(20), t0).unwrap());
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
                15..=17 => {
                    fleet.tick(now).await.unwrap();
                }
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
