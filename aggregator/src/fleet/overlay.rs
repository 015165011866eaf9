//! The fleet as it will be once a batch of reports is applied, read without
//! copying it.

use std::collections::{BTreeMap, BTreeSet};

use super::compact::HeldHost;
use super::index::Inner;

/// The fleet as it is once a batch of reports is applied: `inner` with
/// each of `records` in place of its host's previous record (or added).
/// Reading through it spares copying the fleet state per report: only what
/// the reports touch is looked at, and memory changes only once the store
/// has them.
pub(super) struct Next<'a> {
    inner: &'a Inner,
    /// The reports' new records, by host id.
    records: BTreeMap<&'a str, &'a HeldHost>,
}

impl<'a> Next<'a> {
    /// The fleet as it is.
    pub(super) fn now(inner: &'a Inner) -> Self {
        Next {
            inner,
            records: BTreeMap::new(),
        }
    }

    /// The fleet with `records` applied (a host's last record wins).
    pub(super) fn with(inner: &'a Inner, records: impl IntoIterator<Item = &'a HeldHost>) -> Self {
        Next {
            inner,
            records: records.into_iter().map(|r| (r.host_id(), r)).collect(),
        }
    }

    /// The fleet as it is, before the records.
    pub(super) fn inner(&self) -> &'a Inner {
        self.inner
    }

    /// The new records, by host id.
    pub(super) fn records(&self) -> impl Iterator<Item = &'a HeldHost> + '_ {
        self.records.values().copied()
    }

    /// The ids of the hosts that reported.
    pub(super) fn reporters(&self) -> BTreeSet<String> {
        self.records.keys().map(|id| (*id).to_owned()).collect()
    }

    pub(super) fn get(&self, id: &str) -> Option<&'a HeldHost> {
        match self.records.get(id) {
            Some(r) => Some(r),
            None => self.inner.hosts.get(id),
        }
    }

    /// Every host, by id.
    pub(super) fn every_host(&self) -> Vec<&'a HeldHost> {
        let mut hosts = Vec::with_capacity(self.inner.hosts.len() + self.records.len());
        let mut records = self.records.values().copied().peekable();
        for held in self.inner.hosts.values() {
            while let Some(r) = records.next_if(|r| r.host_id() < held.host_id()) {
                hosts.push(r);
            }
            match records.next_if(|r| r.host_id() == held.host_id()) {
                Some(r) => hosts.push(r),
                None => hosts.push(held),
            }
        }
        hosts.extend(records);
        hosts
    }

    /// The held hosts of `index[name]` that did not report, in order.
    fn held_members<'s>(
        &'s self,
        index: &'a BTreeMap<String, BTreeSet<String>>,
        name: &str,
    ) -> impl Iterator<Item = &'a str> + 's {
        index
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|h| !self.records.contains_key(h))
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
        out.extend(
            self.records
                .values()
                .map(|r| r.snapshot.environment.as_str()),
        );
        out
    }

    /// The first host (by id) of `environment`.
    pub(super) fn first_of(&self, environment: &str) -> Option<&'a str> {
        // The held hosts come sorted: the first of them that did not report
        // is their least, so this reads few of them, not the environment.
        let held = self
            .held_members(&self.inner.by_environment, environment)
            .next();
        let reporting = self
            .records
            .iter()
            .find(|(_, r)| r.snapshot.environment == environment)
            .map(|(id, _)| *id);
        held.into_iter().chain(reporting).min()
    }

    /// The hosts running any of `services`, each with the positions of
    /// its containers that run them (in order), and one host of each
    /// environment (with none, when it runs none of them): the environments
    /// that have hosts decide which pairs exist, at which level, and
    /// whether a service is missing from one. What the engine needs to
    /// evaluate `services`, found through the indexes: its cost follows
    /// their replicas, not the fleet.
    pub(super) fn replicas_of(&self, services: &BTreeSet<String>) -> Vec<(&'a HeldHost, Vec<u32>)> {
        let mut hosts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for service in services {
            for id in self.held_members(&self.inner.by_service, service) {
                if let Some(held) = self.inner.hosts.get(id) {
                    hosts.entry(id).or_default().extend(held.running(service));
                }
            }
        }
        for (id, record) in &self.records {
            for service in services {
                let running = record.running(service);
                if !running.is_empty() {
                    hosts.entry(id).or_default().extend(running);
                }
            }
        }
        for environment in self.environments() {
            if let Some(id) = self.first_of(environment) {
                hosts.entry(id).or_default();
            }
        }
        hosts
            .into_iter()
            .filter_map(|(id, mut running)| {
                running.sort_unstable();
                self.get(id).map(|host| (host, running))
            })
            .collect()
    }
}
