//! Per environment, how many hosts report each value of each host fact
//! compared between environments: enough to tell, without reading every
//! host, that a report leaves every environment's set of values as it was.

use std::collections::{BTreeMap, HashMap};

use super::compact::HeldHost;
use crate::parity::{HOST_FACT_COUNT, host_fact_values};

/// The counts of one environment, one map per host fact.
type Counts = [HashMap<String, u32>; HOST_FACT_COUNT];

/// Per environment, per host fact, the hosts reporting each non-empty
/// value.
#[derive(Debug, Default)]
pub(super) struct FactIndex {
    by_environment: BTreeMap<String, Counts>,
}

impl FactIndex {
    /// Adds (`add`) or removes `host`'s values.
    pub(super) fn file(&mut self, host: &HeldHost, add: bool) {
        let env = &host.snapshot.environment;
        let values = values_of(host);
        let counts = self.by_environment.entry(env.clone()).or_default();
        for (count, value) in counts.iter_mut().zip(values) {
            if value.is_empty() {
                continue;
            }
            if add {
                *count.entry(value).or_default() += 1;
            } else if let Some(n) = count.get_mut(&value) {
                *n -= 1;
                if *n == 0 {
                    count.remove(&value);
                }
            }
        }
        if counts.iter().all(HashMap::is_empty) {
            self.by_environment.remove(env);
        }
    }

    /// Whether replacing `previous` (held, and filed here) with `record`,
    /// in the same environment, leaves that environment's set of values of
    /// every host fact as it was. A new host (`previous` is `None`) leaves
    /// them when each value it reports is already reported in its
    /// environment.
    pub(super) fn unchanged_by(&self, previous: Option<&HeldHost>, record: &HeldHost) -> bool {
        let env = &record.snapshot.environment;
        if previous.is_some_and(|p| p.snapshot.environment != *env) {
            return false;
        }
        let Some(counts) = self.by_environment.get(env) else {
            return false;
        };
        let before = previous.map(values_of);
        let after = values_of(record);
        (0..HOST_FACT_COUNT).all(|i| {
            let count = |v: &str| counts[i].get(v).copied().unwrap_or(0);
            let new = after[i].as_str();
            let old = before.as_ref().map_or("", |b| b[i].as_str());
            // The old value stays reported by another host (or was none),
            // and the new one is already reported (or is none).
            old == new || ((old.is_empty() || count(old) > 1) && (new.is_empty() || count(new) > 0))
        })
    }
}

fn values_of(host: &HeldHost) -> [String; HOST_FACT_COUNT] {
    host_fact_values(host.snapshot.host.as_ref(), host.snapshot.engine.as_ref())
}
