//! `gate`'s answer: whether a service may be promoted, and why not.

use envparity_proto::v1;
use serde::Serialize;

use super::{Finding, SCHEMA_VERSION, rfc3339};
use crate::cli::Outcome;

/// `gate` output.
#[derive(Debug, Serialize)]
pub struct Gate {
    pub schema_version: u32,
    pub service: String,
    pub to: String,
    pub previous_environment: String,
    pub candidate: String,
    pub allowed: bool,
    pub running_since: Option<String>,
    pub min_time_in_previous: String,
    pub reasons: Vec<String>,
    pub blocking: Vec<Finding>,
}

impl Gate {
    /// From the wire.
    pub fn from_proto(service: String, to: String, r: &v1::GateResponse) -> Self {
        let min = r
            .min_time_in_previous
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .unwrap_or_default();
        Gate {
            schema_version: SCHEMA_VERSION,
            service,
            to,
            previous_environment: r.previous_environment.clone(),
            candidate: r.candidate.clone(),
            allowed: r.allowed,
            running_since: rfc3339(r.running_since.as_ref()),
            min_time_in_previous: humantime::format_duration(min).to_string(),
            reasons: r.reasons.clone(),
            blocking: r.blocking.iter().map(Finding::from_proto).collect(),
        }
    }

    /// Parity when the promotion is allowed, drift when it is refused:
    /// the aggregator judges, not the findings listed.
    pub fn outcome(&self) -> Outcome {
        Outcome::judged(self.allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_passes_only_when_the_aggregator_allows() {
        let gate = |allowed| {
            Gate::from_proto(
                "shop".into(),
                "production".into(),
                &v1::GateResponse {
                    allowed,
                    ..Default::default()
                },
            )
        };
        assert_eq!(gate(true).outcome(), Outcome::Parity);
        assert_eq!(gate(false).outcome(), Outcome::Drift);
    }
}
