//! `alerts`' answer: the alerts firing and where they go.

use envparity_proto::v1;
use serde::Serialize;

use super::{Named, SCHEMA_VERSION, rfc3339, wire};
use crate::parity::{Kind, Severity};

/// `alerts` output.
#[derive(Debug, Serialize)]
pub struct Alerts {
    pub schema_version: u32,
    /// The lowest severity that alerts.
    pub min_severity: Named<Severity>,
    /// The configured sinks, as `name (type)`.
    pub sinks: Vec<String>,
    /// The firing alerts, most severe first.
    pub alerts: Vec<Alert>,
}

/// A firing alert.
#[derive(Debug, Serialize)]
pub struct Alert {
    /// Stable identity (the finding's id).
    pub id: String,
    pub kind: Named<Kind>,
    pub severity: Named<Severity>,
    pub service: String,
    pub env_a: String,
    /// Empty for single-environment kinds.
    pub env_b: String,
    pub host: String,
    pub key: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub fired_at: Option<String>,
}

impl Alerts {
    /// From the wire.
    pub fn from_proto(r: &v1::ListAlertsResponse) -> Self {
        Alerts {
            schema_version: SCHEMA_VERSION,
            min_severity: wire::severity(r.min_severity()),
            sinks: r.sinks.clone(),
            alerts: r
                .alerts
                .iter()
                .map(|a| Alert {
                    id: a.id.clone(),
                    kind: wire::kind(a.kind()),
                    severity: wire::severity(a.severity()),
                    service: a.service.clone(),
                    env_a: a.env_a.clone(),
                    env_b: a.env_b.clone(),
                    host: a.host.clone(),
                    key: a.key.clone(),
                    summary: a.summary.clone(),
                    first_seen: rfc3339(a.first_seen.as_ref()),
                    fired_at: rfc3339(a.fired_at.as_ref()),
                })
                .collect(),
        }
    }
}
