//! `history`'s answer: when each environment moved to what, and each
//! finding's lifetime.

use envparity_proto::v1;
use serde::Serialize;

use super::{Named, SCHEMA_VERSION, rfc3339, wire};
use crate::parity::{Kind, Severity};

/// `history` output.
#[derive(Debug, Serialize)]
pub struct History {
    pub schema_version: u32,
    pub service: String,
    /// Container changes, oldest first.
    pub events: Vec<HistoryEvent>,
    /// Findings about the service, open and resolved, oldest first.
    pub findings: Vec<FindingRecord>,
    /// Whether older changes exist than `events` shows (raise `--limit`).
    pub older_events_left_out: bool,
    /// Whether older findings exist than `findings` shows.
    pub older_findings_left_out: bool,
}

/// One container change.
#[derive(Debug, Serialize)]
pub struct HistoryEvent {
    pub observed_at: Option<String>,
    pub received_at: Option<String>,
    pub environment: String,
    pub host_id: String,
    pub container: String,
    /// `added`, `removed` or `image_changed`.
    pub change: String,
    pub old_image: String,
    pub new_image: String,
}

/// A finding's lifetime.
#[derive(Debug, Serialize)]
pub struct FindingRecord {
    pub id: String,
    pub kind: Named<Kind>,
    pub severity: Named<Severity>,
    pub service: String,
    pub environments: Vec<String>,
    pub key: String,
    pub host: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// `null` while open.
    pub resolved_at: Option<String>,
}

impl History {
    /// From the wire.
    pub fn from_proto(r: &v1::GetHistoryResponse) -> Self {
        History {
            schema_version: SCHEMA_VERSION,
            service: r.service.clone(),
            events: r
                .events
                .iter()
                .map(|e| HistoryEvent {
                    observed_at: rfc3339(e.observed_at.as_ref()),
                    received_at: rfc3339(e.received_at.as_ref()),
                    environment: e.environment.clone(),
                    host_id: e.host_id.clone(),
                    container: e.container.clone(),
                    change: e.change.clone(),
                    old_image: e.old_image.clone(),
                    new_image: e.new_image.clone(),
                })
                .collect(),
            findings: r
                .findings
                .iter()
                .map(|f| FindingRecord {
                    id: f.id.clone(),
                    kind: wire::kind(f.kind()),
                    severity: wire::severity(f.severity()),
                    service: f.service.clone(),
                    environments: f.environments.clone(),
                    key: f.key.clone(),
                    host: f.host.clone(),
                    summary: f.summary.clone(),
                    first_seen: rfc3339(f.first_seen.as_ref()),
                    last_seen: rfc3339(f.last_seen.as_ref()),
                    resolved_at: rfc3339(f.resolved_at.as_ref()),
                })
                .collect(),
            older_events_left_out: r.older_events != 0,
            older_findings_left_out: r.older_findings != 0,
        }
    }
}
