//! Per environment, how many hosts report each value of each host fact
//! compared between environments: enough to tell, without reading every
//! host, that a report leaves every environment's set of values as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::compact::HeldHost;
use crate::parity::{HOST_FACT_COUNT, host_fact_values};

/// The counts of one environment, one map per host fact.
type Counts = [HashMap<String, u32>; HOST_FACT_COUNT];

/// Per environment, per host fact, the hosts reporting each non-empty
/// value.
#[derive(Debug, Default, PartialEq, Eq)]
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

    /// Replaces `prev`'s values, filed, with `record`'s (of the same host);
    /// nothing to do when they are the same.
    pub(super) fn refile(&mut self, prev: &HeldHost, record: &HeldHost) {
        let unchanged = prev.snapshot.environment == record.snapshot.environment
            && (Arc::ptr_eq(&prev.snapshot, &record.snapshot)
                || (prev.snapshot.host == record.snapshot.host
                    && prev.snapshot.engine == record.snapshot.engine)
                || values_of(prev) == values_of(record));
        if !unchanged {
            self.file(prev, false);
            self.file(record, true);
        }
    }

    /// Whether replacing each `previous` (held, and filed here) with its
    /// `record`, in the same environment, leaves that environment's set of
    /// values of every host fact as it was: every value whose count the
    /// batch changes is reported after by some host exactly when it was
    /// before. A new host (`previous` is `None`) leaves them when each
    /// value it reports is already reported in its environment.
    pub(super) fn unchanged_by<'h>(
        &self,
        reports: impl IntoIterator<Item = (Option<&'h HeldHost>, &'h HeldHost)>,
    ) -> bool {
        // (environment, fact, value) -> the change of its count.
        let mut moved: HashMap<(&str, usize, String), i64> = HashMap::new();
        for (previous, record) in reports {
            let env = record.snapshot.environment.as_str();
            if previous.is_some_and(|p| p.snapshot.environment != env) {
                return false;
            }
            let before = previous.map(values_of);
            let after = values_of(record);
            for (i, new) in after.into_iter().enumerate() {
                let old = before.as_ref().map_or("", |b| b[i].as_str());
                if old == new {
                    continue;
                }
                if !old.is_empty() {
                    *moved.entry((env, i, old.to_owned())).or_default() -= 1;
                }
                if !new.is_empty() {
                    *moved.entry((env, i, new)).or_default() += 1;
                }
            }
        }
        moved.into_iter().all(|((env, i, value), change)| {
            let count = self
                .by_environment
                .get(env)
                .and_then(|counts| counts[i].get(&value))
                .map_or(0, |n| i64::from(*n));
            (count > 0) == (count + change > 0)
        })
    }
}

fn values_of(host: &HeldHost) -> [String; HOST_FACT_COUNT] {
    host_fact_values(host.snapshot.host.as_ref(), host.snapshot.engine.as_ref())
}
