//! The status grid, kept up to date at ingest: for each (service,
//! environment), how many replicas run and which contents and versions they
//! run.
//!
//! `status` used to build every cell from every container of the fleet on
//! each call; the grid is instead changed by each host's old record going out
//! and its new one coming in ([`Grid::file`]), so a query reads only the cells
//! it returns. What depends on time (a host turning stale) and on findings
//! (drift) is not kept here: the query adds it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envparity_proto::v1::{Container, StatusCell};

use super::compact::HeldHost;

use crate::history::content_identity;

/// One cell, counted so that a container can be taken out again: a digest
/// or version stays listed while any replica still runs it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    replicas: u32,
    digests: Counts,
    versions: Counts,
}

/// Names with how many replicas run each, sorted by name. A cell holds one
/// or two of each (its replicas run one image, or two mid-rollout), so a
/// sorted vector: a map's first node alone would take several hundred
/// bytes per cell, tens of MiB over the cells of a large fleet
/// (docs/benchmarks.md).
type Counts = Vec<(Box<str>, u32)>;

/// Service → environment → its cell.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Grid {
    services: BTreeMap<String, BTreeMap<String, Tally>>,
}

/// The OCI version label of a container's image.
fn version(c: &Container) -> Option<&str> {
    c.image.as_ref().and_then(|i| {
        i.oci_labels
            .iter()
            .find(|l| l.key == "org.opencontainers.image.version")
            .map(|l| l.value.as_str())
    })
}

/// Adds one to `name`'s count (`add`) or takes one away, dropping it at 0.
fn count(counts: &mut Counts, name: &str, add: bool) {
    match (counts.binary_search_by(|(n, _)| (**n).cmp(name)), add) {
        (Ok(i), true) => counts[i].1 += 1,
        (Err(i), true) => counts.insert(i, (name.into(), 1)),
        (Ok(i), false) => {
            counts[i].1 -= 1;
            if counts[i].1 == 0 {
                counts.remove(i);
            }
        }
        (Err(_), false) => {}
    }
}

impl Grid {
    /// Adds (`add`) or takes out every container of `host` that runs a
    /// service, in the host's environment; an unmanaged container is no
    /// service and has no cell. A host's record is taken out exactly as it
    /// was added, so the grid always equals one built from the current
    /// records.
    pub(super) fn file(&mut self, host: &HeldHost, add: bool) {
        let environment = &host.snapshot.environment;
        for c in &host.containers {
            self.file_one(environment, &c.content, add);
        }
    }

    /// Replaces `prev`, filed, with `record` of the same host in the same
    /// environment, moving only the containers whose content differs: an
    /// unchanged container keeps its interned content, the same
    /// allocation, and what it adds to a cell does not depend on its id or
    /// name.
    pub(super) fn refile(&mut self, prev: &HeldHost, record: &HeldHost) {
        debug_assert_eq!(prev.snapshot.environment, record.snapshot.environment);
        let environment = &record.snapshot.environment;
        // Content -> how many of `prev`'s containers hold it and no
        // container of `record` matched yet.
        let mut gone: HashMap<*const Container, u32> =
            HashMap::with_capacity(prev.containers.len());
        for c in &prev.containers {
            *gone.entry(Arc::as_ptr(&c.content)).or_default() += 1;
        }
        for c in &record.containers {
            match gone.get_mut(&Arc::as_ptr(&c.content)) {
                Some(n) if *n > 0 => *n -= 1,
                _ => self.file_one(environment, &c.content, true),
            }
        }
        for c in &prev.containers {
            if let Some(n) = gone.get_mut(&Arc::as_ptr(&c.content))
                && *n > 0
            {
                *n -= 1;
                self.file_one(environment, &c.content, false);
            }
        }
    }

    /// Adds (`add`) or takes out one container in `environment`.
    fn file_one(&mut self, environment: &str, c: &Container, add: bool) {
        let Some(service) = c.service.as_ref().map(|s| s.name.as_str()) else {
            return;
        };
        if c.unmanaged {
            return;
        }
        let cells = match self.services.get_mut(service) {
            Some(cells) => cells,
            None => self.services.entry(service.to_owned()).or_default(),
        };
        let tally = match cells.get_mut(environment) {
            Some(tally) => tally,
            None => cells.entry(environment.to_owned()).or_default(),
        };
        if add {
            tally.replicas += 1;
        } else {
            tally.replicas -= 1;
        }
        count(&mut tally.digests, &content_identity(c), add);
        if let Some(v) = version(c) {
            count(&mut tally.versions, v, add);
        }
        if tally.replicas == 0 {
            cells.remove(environment);
            if cells.is_empty() {
                self.services.remove(service);
            }
        }
    }

    /// The services with a cell (a managed replica somewhere), sorted.
    pub(super) fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Whether `service` has a cell anywhere.
    pub(super) fn has_row(&self, service: &str) -> bool {
        self.services.contains_key(service)
    }

    /// Whether `service` has a replica in `environment`.
    pub(super) fn has(&self, service: &str, environment: &str) -> bool {
        self.services
            .get(service)
            .is_some_and(|cells| cells.contains_key(environment))
    }

    /// The cell of `service` in `environment`, with `drift` and `stale`
    /// false; `None` when the service has no replica there.
    pub(super) fn cell(&self, service: &str, environment: &str) -> Option<StatusCell> {
        let tally = self.services.get(service)?.get(environment)?;
        Some(StatusCell {
            environment: environment.to_owned(),
            replicas: tally.replicas,
            digests: tally.digests.iter().map(|(d, _)| d.to_string()).collect(),
            versions: tally.versions.iter().map(|(v, _)| v.to_string()).collect(),
            drift: false,
            stale: false,
        })
    }
}
