//! What the query API and the metrics read of the alerting state: the
//! firing alerts, their count by severity, and the configuration.

use std::collections::BTreeMap;

use super::{Alert, Alerting};
use crate::parity::Severity;

impl Alerting {
    /// The firing alerts, most severe first.
    pub fn firing(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self
            .book()
            .values()
            .filter(|a| a.is_firing())
            .cloned()
            .collect();
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// How many alerts fire, by severity (for `/metrics`: nothing copied).
    pub fn firing_by_severity(&self) -> BTreeMap<Severity, u64> {
        let mut out = BTreeMap::new();
        for a in self.book().values().filter(|a| a.is_firing()) {
            *out.entry(a.severity).or_insert(0) += 1;
        }
        out
    }

    /// The lowest severity that alerts.
    pub fn min_severity(&self) -> Severity {
        self.min_severity
    }

    /// The sinks, as `name (type)`.
    pub fn sinks(&self) -> Vec<String> {
        self.config
            .sinks
            .iter()
            .map(|s| format!("{} ({})", s.name, s.target.type_name()))
            .collect()
    }
}
