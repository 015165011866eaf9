//! `status`' answer: the fleet summed up, the services that drift in every
//! environment, their findings, and the verdict on the whole scope.

use envparity_proto::v1;
use serde::Serialize;

use super::{Finding, SCHEMA_VERSION, Tally, parity_of};
use crate::cli::Outcome;

/// `status` output.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema_version: u32,
    /// In promotion order (only the one asked for with `--env`).
    pub environments: Vec<String>,
    /// The rows of this answer: the services that drift, then (with
    /// `--all`) the others.
    pub services: Vec<StatusRow>,
    /// True when no finding counts (pending and waived ones do not), in
    /// the whole scope, not only the rows shown.
    pub parity: bool,
    /// The findings of the services shown, and the host-level ones.
    pub findings: Vec<Finding>,
    /// Which rows an answer holds: `drifting` (the default) or `all`.
    pub rows: Rows,
    /// Rows of the answer not in this page (see `next_page`).
    pub services_left_out: u32,
    /// Give it to `--page` for the next rows; `null` on the last page.
    pub next_page: Option<String>,
    /// The whole scope, whatever the page shows; `null` from an aggregator
    /// older than paged status.
    pub summary: Option<Summary>,
}

/// Which rows a status answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rows {
    /// The services that drift (the default).
    Drifting,
    /// Every service, those that drift first (`--all`).
    All,
}

/// What a status answer sums up.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub services: u32,
    pub services_drifting: u32,
    pub hosts: u32,
    pub hosts_not_current: u32,
    pub findings: Tally,
}

/// One service across environments.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub service: String,
    pub cells: Vec<StatusCell>,
}

/// One service in one environment.
#[derive(Debug, Serialize)]
pub struct StatusCell {
    pub environment: String,
    pub replicas: u32,
    pub digests: Vec<String>,
    pub versions: Vec<String>,
    pub drift: bool,
    pub stale: bool,
}

impl Status {
    /// From the wire; `all` when every row was asked for.
    pub fn from_proto(resp: &v1::GetStatusResponse, all: bool) -> Self {
        let findings: Vec<Finding> = resp.findings.iter().map(Finding::from_proto).collect();
        let summary = resp.summary.as_ref().map(|s| Summary {
            services: s.services,
            services_drifting: s.services_drifting,
            hosts: s.hosts,
            hosts_not_current: s.hosts_not_current,
            findings: s
                .findings
                .as_ref()
                .map(Tally::from_proto)
                .unwrap_or_default(),
        });
        let shown = u32::try_from(resp.rows.len()).unwrap_or(u32::MAX);
        Status {
            schema_version: SCHEMA_VERSION,
            environments: resp.environments.clone(),
            services: resp
                .rows
                .iter()
                .map(|r| StatusRow {
                    service: r.service.clone(),
                    cells: r
                        .cells
                        .iter()
                        .map(|c| StatusCell {
                            environment: c.environment.clone(),
                            replicas: c.replicas,
                            digests: c.digests.clone(),
                            versions: c.versions.clone(),
                            drift: c.drift,
                            stale: c.stale,
                        })
                        .collect(),
                })
                .collect(),
            // An aggregator older than paged status sends every finding.
            parity: summary
                .as_ref()
                .map_or_else(|| parity_of(&findings), |s| s.findings.counted() == 0),
            findings,
            rows: if all { Rows::All } else { Rows::Drifting },
            services_left_out: resp.rows_total.saturating_sub(shown),
            next_page: (!resp.next_page.is_empty()).then(|| resp.next_page.clone()),
            summary,
        }
    }

    /// The tally the verdict is on: the whole scope's, or, from an
    /// aggregator older than paged status, that of the findings it sent
    /// (all of them).
    pub fn tally(&self) -> Tally {
        self.summary
            .as_ref()
            .map_or_else(|| Tally::of(&self.findings), |s| s.findings)
    }

    /// Drift when a finding counts in the whole scope.
    pub fn outcome(&self) -> Outcome {
        Outcome::judged(self.parity)
    }
}

#[cfg(test)]
mod tests {
    use super::super::finding::tests::wire_finding;
    use super::*;

    #[test]
    fn status_judges_the_whole_scope_not_the_page() {
        // The page shows no finding, the summary counts one.
        let resp = v1::GetStatusResponse {
            summary: Some(v1::StatusSummary {
                findings: Some(v1::FindingTally {
                    warning: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = Status::from_proto(&resp, false);
        assert_eq!(status.outcome(), Outcome::Drift);
        assert_eq!(status.tally().warning, 1);
        assert_eq!(status.rows, Rows::Drifting);
        // A calm summary: parity, whatever the page shows.
        let calm = v1::GetStatusResponse {
            summary: Some(v1::StatusSummary::default()),
            findings: vec![wire_finding(
                1,
                v1::Severity::Critical,
                v1::FindingState::Pending,
            )],
            ..Default::default()
        };
        let status = Status::from_proto(&calm, true);
        assert_eq!(status.outcome(), Outcome::Parity);
        assert_eq!(status.tally(), Tally::default());
        assert_eq!(status.rows, Rows::All);
        assert_eq!(serde_json::to_value(&status).unwrap()["rows"], "all");
    }

    #[test]
    fn status_from_an_aggregator_without_a_summary_judges_its_findings() {
        let resp = |state: v1::FindingState| v1::GetStatusResponse {
            findings: vec![wire_finding(1, v1::Severity::Critical, state)],
            ..Default::default()
        };
        let drifting = Status::from_proto(&resp(v1::FindingState::Active), false);
        assert_eq!(drifting.outcome(), Outcome::Drift);
        assert_eq!(drifting.tally().critical, 1);
        let waived = Status::from_proto(&resp(v1::FindingState::Waived), false);
        assert_eq!(waived.outcome(), Outcome::Parity);
        assert_eq!(waived.tally().waived, 1);
        assert_eq!(serde_json::to_value(&waived).unwrap()["rows"], "drifting");
    }
}
