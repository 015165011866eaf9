//! Findings over time: when each was first and last seen, and whether it is
//! pending, active or waived.
//!
//! The [`Ledger`] holds the open findings. Each evaluation is *observed*
//! against it with the part of the fleet it covered (every finding for a full
//! evaluation, the services of one host for an incremental one): findings in
//! that part that are new are *opened*, findings that are gone are
//! *resolved*, and everything outside the part is left alone. The returned
//! [`Delta`] is what the store must record. Pure: `now` is an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::finding::{Finding, FindingKey, Kind, State, Status, WaiverNote};
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

/// What one evaluation changes in a [`Ledger`] ([`Ledger::assess`]).
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// What opened and resolved: what the store must record.
    pub delta: Delta,
    /// The findings found, each with its new entry.
    found: Vec<(FindingKey, Entry)>,
    /// The open findings that are gone.
    gone: Vec<FindingKey>,
    /// Findings remembered from a previous run that are found again.
    recalled: Vec<String>,
}

impl Observation {
    /// The findings whose entry it opens, updates or removes.
    pub fn keys(&self) -> impl Iterator<Item = &FindingKey> {
        self.found.iter().map(|(k, _)| k).chain(&self.gone)
    }
}

/// Which findings an evaluation covered: those it did not find among them
/// are resolved; the others are left alone.
#[derive(Debug, Clone, Copy)]
pub enum Cover<'s> {
    /// Every finding (a full evaluation).
    Everything,
    /// The findings of these services, and the host-level ones `host_level`
    /// says ([`Kind::is_host_level`]).
    Only {
        /// The services.
        services: &'s BTreeSet<String>,
        /// Which host-level findings.
        host_level: HostLevel<'s>,
    },
}

/// Which host-level findings an evaluation covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLevel<'s> {
    /// None.
    No,
    /// All of them.
    All,
    /// The host facts compared between environments, and the staleness of
    /// these hosts only ([`super::Scope::stale_of`]).
    StaleOf(&'s BTreeSet<String>),
    /// The staleness of these hosts only: a report that cannot change what
    /// the host facts compare.
    OnlyStaleOf(&'s BTreeSet<String>),
}

impl HostLevel<'_> {
    /// Whether the host-level finding `key` is covered.
    fn covers(self, key: &FindingKey) -> bool {
        match self {
            HostLevel::No => false,
            HostLevel::All => true,
            HostLevel::StaleOf(hosts) => key.kind != Kind::StaleHost || hosts.contains(&key.host),
            HostLevel::OnlyStaleOf(hosts) => {
                key.kind == Kind::StaleHost && hosts.contains(&key.host)
            }
        }
    }
}

impl Cover<'_> {
    /// Whether `key` is covered.
    pub fn covers(&self, key: &FindingKey) -> bool {
        match self {
            Cover::Everything => true,
            Cover::Only {
                services,
                host_level,
            } => {
                (key.kind.is_host_level() && host_level.covers(key))
                    || services.contains(&key.service)
            }
        }
    }

    /// The covered entries of `open`, in key order. Keys sort by kind, then
    /// service: the entries of one kind, or of one kind and service, are a
    /// range, so this reads only what it returns (and a lookup per kind and
    /// service), not every key.
    fn open_in<'l, V>(&self, open: &'l BTreeMap<FindingKey, V>) -> Vec<(&'l FindingKey, &'l V)> {
        let Cover::Only {
            services,
            host_level,
        } = *self
        else {
            return open.iter().collect();
        };
        let mut out = Vec::new();
        for kind in Kind::ALL {
            if kind.is_host_level() && host_level != HostLevel::No {
                // Every finding of the kind: a range; the stale hosts named
                // among them (one per stale host: a short scan, no copy).
                out.extend(
                    open.range(FindingKey::first_of(kind, "")..)
                        .take_while(|(k, _)| k.kind == kind)
                        .filter(|(k, _)| self.covers(k)),
                );
                continue;
            }
            for service in services {
                out.extend(
                    open.range(FindingKey::first_of(kind, service)..)
                        .take_while(|(k, _)| k.kind == kind && k.service == *service),
                );
            }
        }
        out.sort_unstable_by_key(|(k, _)| *k);
        out
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

    /// Observes an evaluation that covered the findings `covers` selects.
    /// Returns what opened and resolved.
    pub fn observe(&mut self, findings: Vec<Finding>, covers: Cover<'_>, now: SystemTime) -> Delta {
        let observation = self.assess(findings, covers, now);
        self.apply(observation)
    }

    /// What observing an evaluation would change, without changing the
    /// ledger: the aggregator records it in the store first and applies it
    /// ([`Ledger::apply`]) only once that succeeded, so the ledger it
    /// shares with queries is never copied. The cost is that of the
    /// findings `covers` selects, not of the whole ledger: they are read
    /// as ranges of the ledger's keys, not found by a scan of every key.
    pub fn assess(
        &self,
        findings: Vec<Finding>,
        covers: Cover<'_>,
        now: SystemTime,
    ) -> Observation {
        let fresh: BTreeMap<FindingKey, Finding> =
            findings.into_iter().map(|f| (f.identity(), f)).collect();
        let mut observation = Observation::default();
        for (key, e) in covers
            .open_in(&self.open)
            .into_iter()
            .filter(|(k, _)| !fresh.contains_key(*k))
        {
            observation.delta.resolved.push(Transition {
                id: key.id(),
                finding: e.finding.clone(),
                first_seen: e.first_seen,
                last_seen: e.last_seen,
            });
            observation.gone.push(key.clone());
        }
        for (key, finding) in fresh {
            let first_seen = match self.open.get(&key) {
                Some(e) => e.first_seen,
                None => {
                    let id = key.id();
                    match self.remembered.get(&id) {
                        Some(seen) => {
                            observation.recalled.push(id);
                            seen.first_seen
                        }
                        None => {
                            observation.delta.opened.push(Transition {
                                id,
                                finding: finding.clone(),
                                first_seen: now,
                                last_seen: now,
                            });
                            now
                        }
                    }
                }
            };
            observation.found.push((
                key,
                Entry {
                    finding,
                    first_seen,
                    last_seen: now,
                },
            ));
        }
        observation
    }

    /// Applies what [`Ledger::assess`] found (to the ledger it assessed);
    /// returns what opened and resolved.
    pub fn apply(&mut self, observation: Observation) -> Delta {
        for key in &observation.gone {
            self.open.remove(key);
        }
        for id in &observation.recalled {
            self.remembered.remove(id);
        }
        self.open.extend(observation.found);
        observation.delta
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

    /// The open findings of `kind` whose service sorts at or after `from`,
    /// in identity order (by service, then environments, key and host): a
    /// range, so a reader that stops early reads only what it used.
    pub fn of_kind<'l>(&'l self, kind: Kind, from: &str) -> impl Iterator<Item = &'l Entry> + 'l {
        self.open
            .range(FindingKey::first_of(kind, from)..)
            .take_while(move |(k, _)| k.kind == kind)
            .map(|(_, e)| e)
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
    let waived = waiver.as_ref().is_some_and(|w| !w.expired);
    let state = state(waived, first_seen, grace, now);
    finding.status = Status {
        state,
        first_seen: Some(first_seen),
        last_seen: Some(last_seen),
        waiver,
    };
    finding
}

/// The state [`judge`] gives `finding`, first seen at `first_seen`, without
/// copying it or building its status (for counting, as `/metrics` does).
pub fn judged_state(
    finding: &Finding,
    first_seen: SystemTime,
    policy: &Policy,
    grace: Duration,
    now: SystemTime,
) -> State {
    let waived = policy
        .waiver_for(finding, now)
        .is_some_and(|w| w.expires > now);
    state(waived, first_seen, grace, now)
}

/// Waived while a waiver holds, else active once the grace period is over.
fn state(waived: bool, first_seen: SystemTime, grace: Duration, now: SystemTime) -> State {
    if waived {
        State::Waived
    } else if now.duration_since(first_seen).unwrap_or_default() >= grace {
        State::Active
    } else {
        State::Pending
    }
}

/// Until when [`judge`]'s verdict on `finding` (as it judged it at `now`
/// with `grace`) holds if nothing but time changes: the end of the grace
/// period of a pending finding, the expiry of a waiver. `None`: it holds
/// until the finding or the policy changes. Alerting re-judges a finding
/// then, instead of re-judging every open finding all the time.
pub fn judged_until(finding: &Finding, grace: Duration, now: SystemTime) -> Option<SystemTime> {
    let status = &finding.status;
    let grace_ends = status
        .first_seen
        .and_then(|first| first.checked_add(grace))
        .filter(|end| *end > now);
    let waiver_ends = status
        .waiver
        .as_ref()
        .map(|w| w.expires)
        .filter(|end| *end > now);
    grace_ends.into_iter().chain(waiver_ends).min()
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
