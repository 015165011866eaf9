//! The fleet as it will be once a report is applied, read without copying
//! it.

use std::collections::{BTreeMap, BTreeSet};

use super::compact::HeldHost;
use super::index::Inner;

/// The fleet as it is once a report is applied: `inner` with `record` in
/// place of its host's previous record (or added). Reading through it
/// spares copying the fleet state per report: only what the report
/// touches is looked at, and memory changes only once the store has the
/// report.
pub(super) struct Next<'a> {
    pub(super) inner: &'a Inner,
    pub(super) record: Option<&'a HeldHost>,
}

impl<'a> Next<'a> {
    pub(super) fn id(&self) -> Option<&'a str> {
        self.record.map(|r| r.snapshot.host_id.as_str())
    }

    pub(super) fn get(&self, id: &str) -> Option<&'a HeldHost> {
        match self.record {
            Some(r) if r.snapshot.host_id == id => Some(r),
            _ => self.inner.hosts.get(id),
        }
    }

    /// Every host, by id.
    pub(super) fn every_host(&self) -> Vec<&'a HeldHost> {
        let mut hosts: Vec<&HeldHost> = self
            .inner
            .hosts
            .values()
            .filter(|h| Some(h.snapshot.host_id.as_str()) != self.id())
            .collect();
        if let Some(r) = self.record {
            let at = hosts.partition_point(|h| h.snapshot.host_id < r.snapshot.host_id);
            hosts.insert(at, r);
        }
        hosts
    }

    /// The hosts of `index[name]`, `record`'s host among them when
    /// `with_record`.
    pub(super) fn members(
        &self,
        index: &'a BTreeMap<String, BTreeSet<String>>,
        name: &str,
        with_record: bool,
    ) -> impl Iterator<Item = &'a str> + use<'a> {
        let id = self.id();
        let held = index
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(move |h| Some(*h) != id);
        held.chain(id.filter(|_| with_record))
    }

    /// The environments that have hosts.
    pub(super) fn environments(&self) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = self
            .inner
            .by_environment
            .keys()
            .map(String::as_str)
            .filter(|e| self.first_of(e).is_some())
            .collect();
        out.extend(self.record.map(|r| r.snapshot.environment.as_str()));
        out
    }

    /// The first host (by id) of `environment`.
    pub(super) fn first_of(&self, environment: &str) -> Option<&'a str> {
        let with = self
            .record
            .is_some_and(|r| r.snapshot.environment == environment);
        // The held hosts come sorted: the first of them that is not the
        // record's host is their least, so this reads one or two of them,
        // not the environment.
        let held = self
            .members(&self.inner.by_environment, environment, false)
            .next();
        held.into_iter().chain(self.id().filter(|_| with)).min()
    }

    /// The hosts running any of `services`, and one host of each
    /// environment: the environments that have hosts decide which pairs
    /// exist, at which level, and whether a service is missing from one.
    pub(super) fn hosts_for(&self, services: &BTreeSet<String>) -> Vec<&'a HeldHost> {
        let runs = |s: &str| self.record.is_some_and(|r| r.services().any(|x| x == s));
        let mut ids: BTreeSet<&str> = services
            .iter()
            .flat_map(|s| self.members(&self.inner.by_service, s, runs(s)))
            .collect();
        ids.extend(
            self.environments()
                .into_iter()
                .filter_map(|e| self.first_of(e)),
        );
        ids.iter().filter_map(|id| self.get(id)).collect()
    }
}
