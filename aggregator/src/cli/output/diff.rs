//! `diff`'s answer: the findings between two environments and their verdict.

use envparity_proto::v1;
use serde::Serialize;

use super::{Finding, SCHEMA_VERSION, Tally, parity_of};
use crate::cli::Outcome;

/// `diff` output.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema_version: u32,
    pub env_a: String,
    pub env_b: String,
    pub service: Option<String>,
    /// True when no finding counts (pending and waived ones do not), among
    /// all the findings of the pair, not only those of this page.
    pub parity: bool,
    /// The findings of this page.
    pub findings: Vec<Finding>,
    /// How many findings the pair holds, on every page.
    pub findings_total: u32,
    /// Findings of the pair not in this page (see `next_page`).
    pub findings_left_out: u32,
    /// Give it to `--page` for the next findings; `null` on the last page.
    pub next_page: Option<String>,
    /// What all the findings of the pair weigh, whatever the page shows.
    pub tally: Tally,
}

impl Diff {
    /// From the wire. An aggregator older than paging sends every finding
    /// and no tally: the findings are then the whole answer.
    pub fn from_proto(
        env_a: String,
        env_b: String,
        service: Option<String>,
        resp: &v1::GetFindingsResponse,
    ) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        let shown = u32::try_from(findings.len()).unwrap_or(u32::MAX);
        let (tally, total) = match &resp.tally {
            Some(t) => (Tally::from_proto(t), resp.total.max(shown)),
            None => (Tally::of(&findings), shown),
        };
        Diff {
            schema_version: SCHEMA_VERSION,
            env_a,
            env_b,
            service,
            parity: match &resp.tally {
                Some(_) => tally.counted() == 0,
                None => parity_of(&findings),
            },
            findings,
            findings_total: total,
            findings_left_out: total.saturating_sub(shown),
            next_page: (!resp.next_page.is_empty()).then(|| resp.next_page.clone()),
            tally,
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
