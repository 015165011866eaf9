//! The documented JSON/YAML output (docs/json-output.md). Field names follow
//! the proto; enum values are the proto names in snake_case without their
//! prefix (`FINDING_KIND_IMAGE_DIGEST` → `image_digest`).
//!
//! Bump [`SCHEMA_VERSION`] on any incompatible change; adding fields is
//! compatible.
//!
//! One answer a file, typed: kinds, severities and states are the domain's
//! enums ([`Named`], read from the wire by [`wire`]), and every judged
//! answer knows its own [`Outcome`](super::Outcome). `finding.rs` holds what
//! every listing shares: a finding, whether it counts, the tally.

mod alerts;
mod config;
mod diff;
mod explain;
mod finding;
mod findings;
mod gate;
mod history;
mod hosts;
mod named;
mod policy;
mod service;
mod status;
pub mod wire;

pub use alerts::{Alert, Alerts};
pub use config::ConfigCheck;
pub use diff::Diff;
pub use explain::{Explain, ExplainImage, ExplainSide, Replica, SharedLayers};
#[cfg(test)]
pub(crate) use finding::tests as finding_tests;
pub use finding::{Finding, Side, Tally, Waiver};
pub use findings::Findings;
pub use gate::Gate;
pub use history::{FindingRecord, History, HistoryEvent};
pub use hosts::{EngineFacts, Forgotten, Host, HostFacts, Hosts};
pub use named::{Name, Named};
pub use policy::PolicyShow;
pub use service::{ConfigFile, EnvVar, Instance, Service};
pub use status::{Rows, Status, StatusCell, StatusRow, Summary};

use envparity_proto::time::from_timestamp;
use finding::parity_of;

/// Version of the JSON/YAML output schema.
pub const SCHEMA_VERSION: u32 = 1;

/// A timestamp as RFC 3339 text; `None` when absent, malformed, or after
/// the year 9999, which RFC 3339 cannot write (agents' clocks are theirs:
/// `collected_at` and `started_at` can say anything).
fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    use std::fmt::Write;
    let t = ts.and_then(from_timestamp)?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use envparity_proto::v1;

    use super::*;

    #[test]
    fn a_timestamp_after_the_year_9999_is_absent_not_a_panic() {
        // Found by fuzz/render: an agent's `collected_at` in the year 10000
        // reached `history` as an event time, and formatting it panicked.
        let at = |seconds| rfc3339(Some(&prost_types::Timestamp { seconds, nanos: 0 }));
        assert_eq!(at(253_402_300_799).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(at(253_402_300_800), None);
        assert_eq!(at(i64::MAX), None);
        let history = History::from_proto(&v1::GetHistoryResponse {
            events: vec![v1::HistoryEvent {
                observed_at: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(history.events[0].observed_at, None);
    }
}
