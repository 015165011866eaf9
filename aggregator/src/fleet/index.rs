//! The hosts held in memory and their indexes: by service, by environment,
//! the status grid, and which known hosts' latest report was refused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use super::compact::HeldHost;
use super::facts::FactIndex;
use super::grid::Grid;
use crate::parity::{Ledger, Observation};

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) hosts: BTreeMap<String, HeldHost>,
    pub(super) ledger: Ledger,
    /// Service -> the hosts running it: what a service's findings depend on,
    /// so that a report re-evaluates its services without reading every
    /// container of the fleet.
    pub(super) by_service: BTreeMap<String, BTreeSet<String>>,
    /// Environment -> its hosts: which environments exist (and so which
    /// pairs), without reading every host.
    pub(super) by_environment: BTreeMap<String, BTreeSet<String>>,
    /// The status grid, kept with the indexes so that `status` reads only
    /// the cells it returns.
    pub(super) grid: Grid,
    /// Per environment, the values of the host facts its hosts report: so
    /// that a report which leaves them as they were is not compared over
    /// every host.
    pub(super) facts: FactIndex,
    /// The hosts whose `last_seen` here is newer than the store's:
    /// heartbeats acknowledged from memory, for the next liveness commit.
    pub(super) unstored: HashSet<String>,
    /// When the last liveness commit gathered what it wrote: every
    /// heartbeat acknowledged before then is in the store.
    pub(super) liveness_stored_at: Option<SystemTime>,
    /// Known hosts whose latest report was refused as invalid, until one of
    /// theirs is stored. In memory only: after a restart a host is shown
    /// refused again at its next refused report.
    pub(super) refusals: HashMap<String, Refusal>,
}

/// Why a host's latest report was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub at: SystemTime,
    /// The validation error, naming the offending part.
    pub reason: String,
}

impl Inner {
    /// Adds (`add`) or removes `host` under each service it runs and under
    /// its environment.
    pub(super) fn index(&mut self, host: &HeldHost, add: bool) {
        let id = host.host_id();
        for service in host.distinct_services() {
            file(&mut self.by_service, service, id, add);
        }
        file(
            &mut self.by_environment,
            &host.snapshot.environment,
            id,
            add,
        );
        self.grid.file(host, add);
        self.facts.file(host, add);
    }

    /// Replaces `prev`, filed, with `record` of the same host in the
    /// indexes, touching only what differs: a report that changes one
    /// container of fifty moves one container, not fifty out and in.
    fn refile(&mut self, prev: &HeldHost, record: &HeldHost) {
        if prev.snapshot.environment != record.snapshot.environment {
            self.index(prev, false);
            self.index(record, true);
            return;
        }
        let id = record.host_id();
        // Both sorted: one pass over the two finds what went and came.
        let mut before = prev.distinct_services().peekable();
        let mut after = record.distinct_services().peekable();
        loop {
            let went = match (before.peek(), after.peek()) {
                (None, None) => break,
                (Some(b), Some(a)) if b == a => {
                    before.next();
                    after.next();
                    continue;
                }
                (Some(b), Some(a)) => b < a,
                (went, _) => went.is_some(),
            };
            if went {
                let service = before.next().unwrap_or_default();
                file(&mut self.by_service, service, id, false);
            } else {
                let service = after.next().unwrap_or_default();
                file(&mut self.by_service, service, id, true);
            }
        }
        self.grid.refile(prev, record);
        self.facts.refile(prev, record);
    }

    /// Removes a host the store has forgotten; returns its record.
    pub(super) fn remove(&mut self, host_id: &str) -> Option<HeldHost> {
        let record = self.hosts.remove(host_id)?;
        self.index(&record, false);
        self.refusals.remove(host_id);
        self.unstored.remove(host_id);
        Some(record)
    }

    /// Applies a change whose store write succeeded.
    pub(super) fn apply(&mut self, change: Change) {
        for record in change.records {
            match self.hosts.remove(record.host_id()) {
                Some(prev) => self.refile(&prev, &record),
                None => self.index(&record, true),
            }
            self.refusals.remove(&record.snapshot.host_id);
            self.hosts.insert(record.snapshot.host_id.clone(), record);
        }
        self.ledger.apply(change.observation);
    }
}

#[cfg(test)]
impl Inner {
    /// Panics unless every index equals one built afresh from the hosts
    /// held: what [`Inner::refile`] moved is what filing every host again
    /// would give.
    pub(super) fn assert_indexes_rebuild(&self, context: &str) {
        let mut fresh = Inner::default();
        for host in self.hosts.values() {
            fresh.index(host, true);
        }
        assert_eq!(self.by_service, fresh.by_service, "services, {context}");
        assert_eq!(
            self.by_environment, fresh.by_environment,
            "environments, {context}"
        );
        assert_eq!(self.grid, fresh.grid, "status grid, {context}");
        assert_eq!(self.facts, fresh.facts, "host facts, {context}");
    }
}

/// Adds (`add`) or removes `host` under `name` in `index`.
fn file(index: &mut BTreeMap<String, BTreeSet<String>>, name: &str, host: &str, add: bool) {
    let hosts = index.entry(name.to_owned()).or_default();
    if add {
        hosts.insert(host.to_owned());
    } else {
        hosts.remove(host);
    }
    if hosts.is_empty() {
        index.remove(name);
    }
}

/// What a report (or time passing, or a new policy) changes in memory,
/// computed against the current state and applied ([`Inner::apply`]) once
/// the store has it.
#[derive(Debug, Default)]
pub(super) struct Change {
    /// The reporting hosts' new records, in the order of their reports.
    pub(super) records: Vec<HeldHost>,
    /// What the re-evaluation changes in the ledger.
    pub(super) observation: Observation,
}
