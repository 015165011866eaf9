//! How containers without an identity of their own are reported.

use serde::{Deserialize, Serialize};

use super::{Policy, Report};
use crate::parity::finding::Severity;

/// The `[unmanaged]` table: what an `unmanaged_container` finding is.
///
/// Info by default: a one-off `docker run` or a debug shell is worth
/// knowing, not a drift. A team that forbids ad-hoc containers in
/// production raises it (`report = "warning"`, or `critical`); one that
/// runs them everywhere turns it off (`report = "off"`). Either way such a
/// container is never compared across environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Unmanaged {
    /// How an unmanaged container is reported.
    pub report: Report,
}

impl Default for Unmanaged {
    fn default() -> Self {
        Unmanaged {
            report: Report::Info,
        }
    }
}

impl Policy {
    /// How serious an unmanaged container is; `None`: not reported.
    pub fn unmanaged_severity(&self) -> Option<Severity> {
        self.unmanaged.report.severity()
    }
}
