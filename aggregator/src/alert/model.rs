//! Alerts and how they change: pure code over findings and time.
//!
//! An alert is a finding that is *active* under the policy's `alert_grace`
//! at or above the alerting severity. Its identity is the finding's
//! ([`FindingKey::id`](crate::parity::FindingKey::id)): kind, service,
//! environment pair, env key or setting, and host for host-level kinds —
//! never a digest or a value, so a service whose digest keeps changing
//! updates one alert instead of opening another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use envparity_proto::time::{from_unix_millis, unix_millis};
use serde::{Deserialize, Serialize};

use crate::parity::{Finding, Kind, Severity, State};

/// One alert, as persisted and as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity (the finding's id).
    pub id: String,
    /// The finding kind.
    pub kind: Kind,
    /// Severity when it fired.
    pub severity: Severity,
    /// The service; empty for host-level kinds.
    pub service: String,
    /// The earlier environment in promotion order (or the only one).
    pub env_a: String,
    /// The later environment; empty for single-environment kinds.
    pub env_b: String,
    /// The host, for per-host kinds.
    pub host: String,
    /// The env key or runtime setting, if any.
    pub key: String,
    /// One line.
    pub summary: String,
    /// A few lines: what, where, since when. Never a value.
    pub description: String,
    /// When the finding was first seen (ms since the epoch).
    pub first_seen_ms: i64,
    /// When the alert fired.
    pub fired_at_ms: i64,
    /// When it resolved; `None` while firing.
    pub resolved_at_ms: Option<i64>,
}

impl Alert {
    /// The alert for an active finding, firing at `now`.
    pub fn firing(finding: &Finding, now: SystemTime) -> Self {
        let first_seen = finding.status.first_seen.unwrap_or(now);
        let mut where_ = vec![format!(
            "{}: {}",
            finding.a.environment,
            finding.a.hosts.join(", ")
        )];
        if let Some(b) = &finding.b {
            where_.push(format!("{}: {}", b.environment, b.hosts.join(", ")));
        }
        let description = format!(
            "{}\nkind: {} ({} basis), severity: {}\nhosts: {}\nfirst seen: {}",
            finding.summary,
            finding.kind,
            finding.basis.as_str(),
            finding.severity,
            where_.join("; "),
            humantime::format_rfc3339_seconds(first_seen),
        );
        Alert {
            id: finding.identity().id(),
            kind: finding.kind,
            severity: finding.severity,
            service: finding.service.clone(),
            env_a: finding.a.environment.clone(),
            env_b: finding
                .b
                .as_ref()
                .map(|b| b.environment.clone())
                .unwrap_or_default(),
            host: finding.host.clone(),
            key: finding.key.clone(),
            summary: finding.summary.clone(),
            description,
            first_seen_ms: unix_millis(first_seen),
            fired_at_ms: unix_millis(now),
            resolved_at_ms: None,
        }
    }

    /// Whether it is firing.
    pub fn is_firing(&self) -> bool {
        self.resolved_at_ms.is_none()
    }

    /// The environments it concerns.
    pub fn environments(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.env_a.as_str())
            .chain((!self.env_b.is_empty()).then_some(self.env_b.as_str()))
    }

    /// When it resolved.
    pub fn resolved_at(&self) -> Option<SystemTime> {
        self.resolved_at_ms.map(from_unix_millis)
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It started firing.
    Firing,
    /// It stopped.
    Resolved,
    /// A test notification (`envparity alerts test`).
    Test,
}

impl Action {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Firing => "firing",
            Action::Resolved => "resolved",
            Action::Test => "test",
        }
    }
}

/// One notification to deliver: an alert firing or resolving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub action: Action,
    /// The alert as of the event.
    pub alert: Alert,
    /// When it happened (ms since the epoch).
    pub at_ms: i64,
}

impl Event {
    /// A unique, stable message id: the same event retried keeps its id, so
    /// receivers can deduplicate (Standard Webhooks' `webhook-id`).
    pub fn message_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.alert.id.as_bytes());
        h.update([0]);
        h.update(self.action.as_str().as_bytes());
        h.update(self.at_ms.to_be_bytes());
        format!("msg_{}", &hex::encode(h.finalize())[..32])
    }
}

/// What one reconciliation changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Alerts that start firing.
    pub fired: Vec<Alert>,
    /// Alerts that resolve (with `resolved_at_ms` set).
    pub resolved: Vec<Alert>,
    /// Firing alerts whose text changed (no notification; Alertmanager
    /// picks the new text up at its next resend).
    pub refreshed: Vec<Alert>,
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.fired.is_empty() && self.resolved.is_empty() && self.refreshed.is_empty()
    }

    /// The notifications it implies, resolutions first (so a severity change
    /// reads as "old resolved, new firing").
    pub fn events(&self, now: SystemTime) -> Vec<Event> {
        let at_ms = unix_millis(now);
        let resolved = self.resolved.iter().map(|a| Event {
            action: Action::Resolved,
            alert: a.clone(),
            at_ms,
        });
        let fired = self.fired.iter().map(|a| Event {
            action: Action::Firing,
            alert: a.clone(),
            at_ms,
        });
        resolved.chain(fired).collect()
    }
}

/// Compares what fires now with what should: `findings` are the open
/// findings judged with the alert grace; those active at or above
/// `min_severity` should fire. A severity change resolves the old alert and
/// fires a new one, because receivers key alerts on their labels.
///
/// `only` limits the comparison to the alerts with these ids (`None`:
/// every alert); `findings` must then hold every open finding among them
/// and may leave out the rest. Alerting passes the findings that changed
/// and those whose grace period or waiver ended since it last looked:
/// every other alert is as the previous plan left it.
pub fn plan(
    firing: &BTreeMap<String, Alert>,
    findings: &[Finding],
    only: Option<&BTreeSet<String>>,
    min_severity: Severity,
    now: SystemTime,
) -> Plan {
    let mut plan = Plan::default();
    let mut should: BTreeMap<String, &Finding> = BTreeMap::new();
    for f in findings {
        if f.status.state == State::Active && f.severity >= min_severity {
            should.insert(f.identity().id(), f);
        }
    }
    let now_ms = unix_millis(now);
    let alerts: Box<dyn Iterator<Item = (&String, &Alert)>> = match only {
        None => Box::new(firing.iter()),
        Some(ids) => Box::new(ids.iter().filter_map(|id| firing.get_key_value(id))),
    };
    for (id, alert) in alerts.filter(|(_, a)| a.is_firing()) {
        match should.get(id) {
            Some(f) if f.severity == alert.severity => {
                let fresh = Alert {
                    fired_at_ms: alert.fired_at_ms,
                    ..Alert::firing(f, now)
                };
                if fresh.summary != alert.summary
                    || fresh.description != alert.description
                    || fresh.env_a != alert.env_a
                {
                    plan.refreshed.push(fresh);
                }
            }
            _ => plan.resolved.push(Alert {
                resolved_at_ms: Some(now_ms),
                ..alert.clone()
            }),
        }
    }
    for (id, f) in should {
        let same = firing
            .get(&id)
            .is_some_and(|a| a.is_firing() && a.severity == f.severity);
        if !same {
            plan.fired.push(Alert::firing(f, now));
        }
    }
    plan
}

/// Applies a plan to the book of alerts; resolved alerts are kept for
/// `keep_resolved` (Alertmanager re-sends resolutions for a while) and then
/// forgotten.
pub fn apply(
    book: &mut BTreeMap<String, Alert>,
    plan: &Plan,
    keep_resolved: Duration,
    now: SystemTime,
) {
    for a in plan
        .resolved
        .iter()
        .chain(&plan.fired)
        .chain(&plan.refreshed)
    {
        book.insert(a.id.clone(), a.clone());
    }
    let keep = i64::try_from(keep_resolved.as_millis()).unwrap_or(i64::MAX);
    let horizon = unix_millis(now).saturating_sub(keep);
    book.retain(|_, a| a.resolved_at_ms.is_none_or(|r| r >= horizon));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{Basis, Side, Status};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn finding(service: &str, severity: Severity, state: State) -> Finding {
        Finding {
            kind: Kind::ImageDigest,
            service: service.to_owned(),
            a: Side {
                environment: "staging".into(),
                hosts: vec!["s1".into()],
                stale_hosts: vec![],
                values: vec!["sha256:aaa".into()],
            },
            b: Some(Side {
                environment: "production".into(),
                hosts: vec!["p1".into()],
                stale_hosts: vec![],
                values: vec!["sha256:bbb".into()],
            }),
            key: String::new(),
            host: String::new(),
            severity,
            basis: Basis::RegistryDigest,
            summary: format!("{service}: image differs"),
            status: Status {
                state,
                first_seen: Some(at(0)),
                last_seen: Some(at(0)),
                waiver: None,
            },
        }
    }

    fn book(plan: &Plan, now: SystemTime) -> BTreeMap<String, Alert> {
        let mut b = BTreeMap::new();
        apply(&mut b, plan, Duration::from_secs(300), now);
        b
    }

    #[test]
    fn an_active_finding_fires_once_and_resolves_once() {
        let f = finding("shop", Severity::Critical, State::Active);
        let p1 = plan(
            &BTreeMap::new(),
            std::slice::from_ref(&f),
            None,
            Severity::Warning,
            at(10),
        );
        assert_eq!(p1.fired.len(), 1);
        assert_eq!(p1.events(at(10))[0].action, Action::Firing);
        let b = book(&p1, at(10));
        // Still active: nothing to send again.
        assert!(
            plan(
                &b,
                std::slice::from_ref(&f),
                None,
                Severity::Warning,
                at(20)
            )
            .is_empty()
        );
        // Gone: resolved, once.
        let p3 = plan(&b, &[], None, Severity::Warning, at(30));
        assert_eq!(p3.resolved.len(), 1);
        assert_eq!(p3.resolved[0].resolved_at_ms, Some(unix_millis(at(30))));
        let b = book(&p3, at(30));
        assert!(plan(&b, &[], None, Severity::Warning, at(40)).is_empty());
    }

    #[test]
    fn pending_waived_and_low_severity_findings_do_not_fire() {
        let findings = [
            finding("a", Severity::Critical, State::Pending),
            finding("b", Severity::Critical, State::Waived),
            finding("c", Severity::Info, State::Active),
        ];
        assert!(plan(&BTreeMap::new(), &findings, None, Severity::Warning, at(0)).is_empty());
        // A firing alert whose finding becomes waived resolves.
        let active = finding("b", Severity::Critical, State::Active);
        let b = book(
            &plan(&BTreeMap::new(), &[active], None, Severity::Warning, at(0)),
            at(0),
        );
        let p = plan(&b, &findings, None, Severity::Warning, at(5));
        assert_eq!(p.resolved.len(), 1);
        assert_eq!(p.resolved[0].service, "b");
    }

    #[test]
    fn a_changing_digest_is_the_same_alert() {
        let f = finding("shop", Severity::Critical, State::Active);
        let b = book(
            &plan(
                &BTreeMap::new(),
                std::slice::from_ref(&f),
                None,
                Severity::Warning,
                at(0),
            ),
            at(0),
        );
        let mut g = f.clone();
        g.b.as_mut().unwrap().values = vec!["sha256:ccc".into()];
        assert!(plan(&b, &[g], None, Severity::Warning, at(5)).is_empty());
    }

    #[test]
    fn a_severity_change_resolves_the_old_alert_and_fires_the_new() {
        let f = finding("shop", Severity::Warning, State::Active);
        let b = book(
            &plan(
                &BTreeMap::new(),
                std::slice::from_ref(&f),
                None,
                Severity::Warning,
                at(0),
            ),
            at(0),
        );
        let g = finding("shop", Severity::Critical, State::Active);
        let p = plan(&b, &[g], None, Severity::Warning, at(5));
        assert_eq!((p.resolved.len(), p.fired.len()), (1, 1));
        let events = p.events(at(5));
        assert_eq!(
            events
                .iter()
                .map(|e| (e.action, e.alert.severity))
                .collect::<Vec<_>>(),
            [
                (Action::Resolved, Severity::Warning),
                (Action::Firing, Severity::Critical)
            ]
        );
        assert_ne!(events[0].message_id(), events[1].message_id());
    }

    #[test]
    fn resolved_alerts_are_forgotten_after_the_resend_window() {
        let f = finding("shop", Severity::Critical, State::Active);
        let mut b = book(
            &plan(
                &BTreeMap::new(),
                std::slice::from_ref(&f),
                None,
                Severity::Warning,
                at(0),
            ),
            at(0),
        );
        let p = plan(&b, &[], None, Severity::Warning, at(10));
        apply(&mut b, &p, Duration::from_secs(300), at(10));
        assert_eq!(b.len(), 1);
        apply(&mut b, &Plan::default(), Duration::from_secs(300), at(309));
        assert_eq!(b.len(), 1);
        apply(&mut b, &Plan::default(), Duration::from_secs(300), at(311));
        assert!(b.is_empty());
    }

    #[test]
    fn the_description_carries_no_values() {
        let f = finding("shop", Severity::Critical, State::Active);
        let a = Alert::firing(&f, at(0));
        assert!(!a.description.contains("sha256:aaa") && !a.description.contains("sha256:bbb"));
        assert!(a.description.contains("staging: s1") && a.description.contains("production: p1"));
    }
}
