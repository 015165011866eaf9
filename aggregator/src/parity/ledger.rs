//! Findings over time: when each was first and last seen, and whether it is
//! pending, active or waived.
//!
//! The [`Ledger`] holds the open findings. Each evaluation is *observed*
//! against it with the part of the fleet it covered (every finding for a full
//! evaluation, the services of one host for an incremental one): findings in
//! that part that are new are *opened*, findings that are gone are
//! *resolved*, and everything outside the part is left alone. The returned
//! [`Delta`] is what the store must record. Pure: `now` is an argument.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::finding::{Finding, FindingKey, State, Status, WaiverNote};
use super::policy::Policy;

/// An open finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The latest evaluation of it.
    pub finding: Finding,
    /// When it was first seen (continuously present since).
    pub first_seen: SystemTime,
    /// When an evaluation last found it.
    pub last_seen: SystemTime,
}

/// A finding that opened or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Its stable identity ([`FindingKey::id`]).
    pub id: String,
    /// The finding as last evaluated.
    pub finding: Finding,
    /// When it was first seen.
    pub first_seen: SystemTime,
    /// When it was last seen.
    pub last_seen: SystemTime,
}

/// What one observation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Findings that appeared.
    pub opened: Vec<Transition>,
    /// Findings that disappeared (resolved at the observation's time).
    pub resolved: Vec<Transition>,
}

impl Delta {
    /// Whether nothing opened or resolved.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.resolved.is_empty()
    }
}

/// When a finding recorded as open by a previous run was first and last
/// seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// First seen.
    pub first_seen: SystemTime,
    /// Last seen.
    pub last_seen: SystemTime,
}

/// The open findings.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    open: BTreeMap<FindingKey, Entry>,
    /// Findings a previous run recorded as open, by id: a finding that is
    /// still there keeps its `first_seen` and is not opened again.
    remembered: BTreeMap<String, Seen>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// A ledger that remembers what a previous run recorded as open.
    pub fn remembering(open: impl IntoIterator<Item = (String, Seen)>) -> Self {
        Ledger {
            open: BTreeMap::new(),
            remembered: open.into_iter().collect(),
        }
    }

    /// Observes an evaluation that covered the findings for which `covers`
    /// is true. Returns what opened and resolved.
    pub fn observe(
        &mut self,
        findings: Vec<Finding>,
        covers: impl Fn(&FindingKey) -> bool,
        now: SystemTime,
    ) -> Delta {
        let fresh: BTreeMap<FindingKey, Finding> =
            findings.into_iter().map(|f| (f.identity(), f)).collect();
        let mut delta = Delta::default();
        let gone: Vec<FindingKey> = self
            .open
            .keys()
            .filter(|k| covers(k) && !fresh.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(e) = self.open.remove(&key) {
                delta.resolved.push(Transition {
                    id: key.id(),
                    finding: e.finding,
                    first_seen: e.first_seen,
                    last_seen: e.last_seen,
                });
            }
        }
        for (key, finding) in fresh {
            if let Some(e) = self.open.get_mut(&key) {
                e.finding = finding;
                e.last_seen = now;
                continue;
            }
            let id = key.id();
            let first_seen = match self.remembered.remove(&id) {
                Some(seen) => seen.first_seen,
                None => {
                    delta.opened.push(Transition {
                        id,
                        finding: finding.clone(),
                        first_seen: now,
                        last_seen: now,
                    });
                    now
                }
            };
            self.open.insert(
                key,
                Entry {
                    finding,
                    first_seen,
                    last_seen: now,
                },
            );
        }
        delta
    }

    /// After the first full observation: what a previous run recorded as
    /// open and is no longer there, as resolved now. Returns their ids and
    /// when they were first and last seen.
    pub fn forget_remembered(&mut self) -> Vec<(String, Seen)> {
        std::mem::take(&mut self.remembered).into_iter().collect()
    }

    /// The open findings, in identity order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.open.values()
    }

    /// The open finding with this identity.
    pub fn get(&self, key: &FindingKey) -> Option<&Entry> {
        self.open.get(key)
    }

    /// How many findings are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no finding is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Fills in a finding's [`Status`]: waived when an unexpired waiver matches,
/// else active once it has persisted for `grace`, pending before.
/// `seen` is when it was first and last seen (`None`: first seen `now`).
pub fn judge(
    mut finding: Finding,
    seen: Option<(SystemTime, SystemTime)>,
    policy: &Policy,
    grace: Duration,
    now: SystemTime,
) -> Finding {
    let (first_seen, last_seen) = seen.unwrap_or((now, now));
    let waiver = policy.waiver_for(&finding, now).map(|w| WaiverNote {
        reason: w.reason.clone(),
        owner: w.owner.clone(),
        expires: w.expires,
        expired: w.expires <= now,
    });
    let state = match &waiver {
        Some(w) if !w.expired => State::Waived,
        _ if now.duration_since(first_seen).unwrap_or_default() >= grace => State::Active,
        _ => State::Pending,
    };
    finding.status = Status {
        state,
        first_seen: Some(first_seen),
        last_seen: Some(last_seen),
        waiver,
    };
    finding
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
