//! `diff`'s answer: the findings between two environments and their verdict.

use envparity_proto::v1;
use serde::Serialize;

use super::{Finding, SCHEMA_VERSION, parity_of};
use crate::cli::Outcome;

/// `diff` output.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema_version: u32,
    pub env_a: String,
    pub env_b: String,
    pub service: Option<String>,
    /// True when no finding counts (pending and waived ones do not).
    pub parity: bool,
    pub findings: Vec<Finding>,
}

impl Diff {
    /// From the wire.
    pub fn from_proto(
        env_a: String,
        env_b: String,
        service: Option<String>,
        resp: &v1::GetFindingsResponse,
    ) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        Diff {
            schema_version: SCHEMA_VERSION,
            env_a,
            env_b,
            service,
            parity: parity_of(&findings),
            findings,
        }
    }

    /// Drift when a finding counts.
    pub fn outcome(&self) -> Outcome {
        Outcome::judged(self.parity)
    }
}

#[cfg(test)]
mod tests {
    use super::super::finding::tests::wire_finding;
    use super::*;

    fn diff(states: &[v1::FindingState]) -> Diff {
        let resp = v1::GetFindingsResponse {
            findings: states
                .iter()
                .map(|&s| wire_finding(1, v1::Severity::Critical, s))
                .collect(),
            ..Default::default()
        };
        Diff::from_proto("staging".into(), "production".into(), None, &resp)
    }

    #[test]
    fn a_diff_drifts_when_a_finding_counts() {
        use v1::FindingState::{Active, Pending, Unspecified, Waived};
        assert_eq!(diff(&[]).outcome(), Outcome::Parity);
        assert_eq!(
            diff(&[Pending, Waived, Unspecified]).outcome(),
            Outcome::Parity
        );
        let drifting = diff(&[Pending, Active]);
        assert!(!drifting.parity);
        assert_eq!(drifting.outcome(), Outcome::Drift);
    }
}
