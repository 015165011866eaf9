//! `status` as text: the summary, the services in every environment (the
//! cells that drift marked), their findings, what the page left out, and
//! the verdict on the whole scope.

use super::Out;
use super::paint::Tone;
use super::table::Table;
use super::text::{sanitize, short};
use crate::cli::output::{Rows, Status};

impl Out {
    /// `envparity status`.
    pub fn status(&self, status: &Status) -> anyhow::Result<()> {
        if self.structured(status)? {
            return Ok(());
        }
        let mut headers: Vec<&str> = vec!["SERVICE"];
        headers.extend(status.environments.iter().map(String::as_str));
        let mut table = Table::new(&headers);
        for row in &status.services {
            let mut cells = vec![row.service.clone()];
            for c in &row.cells {
                cells.push(if c.replicas == 0 {
                    "-".to_owned()
                } else {
                    let digests: Vec<String> = if self.wide() {
                        c.digests.clone()
                    } else {
                        c.digests.iter().map(|d| short(d)).collect()
                    };
                    let mut text = String::new();
                    if c.drift {
                        text.push_str("! ");
                    }
                    if !c.versions.is_empty() {
                        text.push_str(&c.versions.join(","));
                        text.push(' ');
                    }
                    text.push_str(&digests.join(","));
                    if c.replicas > 1 {
                        text.push_str(&format!(" x{}", c.replicas));
                    }
                    if c.stale {
                        text.push_str(" (stale)");
                    }
                    text
                });
            }
            table.row(cells, |_, text, out: &Out| {
                if text.starts_with("! ") {
                    out.paint(text, Tone::Warning)
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = String::new();
        if let Some(sum) = &status.summary {
            s.push_str(&format!(
                "{} service(s), {} drifting; {} host(s), {} not current\n\n",
                sum.services, sum.services_drifting, sum.hosts, sum.hosts_not_current
            ));
        }
        if !status.services.is_empty() {
            s.push_str(&table.render(self));
        }
        if !status.findings.is_empty() {
            s.push('\n');
            s.push_str(&self.findings_table(&status.findings));
        }
        if let Some(sum) = status
            .summary
            .as_ref()
            .filter(|_| status.rows == Rows::Drifting)
        {
            let calm = sum.services.saturating_sub(sum.services_drifting);
            if calm > 0 {
                s.push_str(&format!(
                    "\n{calm} service(s) without drift not shown (--all shows them)\n"
                ));
            }
        }
        if let Some(token) = &status.next_page {
            s.push_str(&format!(
                "\n{} more service(s): --page {}\n",
                status.services_left_out,
                sanitize(token)
            ));
        }
        s.push('\n');
        let services = status
            .summary
            .as_ref()
            .map_or(status.services.len(), |sum| sum.services as usize);
        let scope = format!(
            "{} environment(s), {services} service(s)",
            status.environments.len()
        );
        s.push_str(&self.verdict_of(&status.tally(), &scope));
        self.emit(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;

    /// The table sums up the whole fleet, says what it left out and how
    /// to get it, and judges on the whole fleet's tally, not on the
    /// findings of the page.
    #[test]
    fn a_status_page_says_what_it_leaves_out_and_judges_the_whole() {
        use envparity_proto::v1;
        let resp = v1::GetStatusResponse {
            environments: vec!["staging".into()],
            rows: vec![v1::StatusRow {
                service: "shop".into(),
                cells: vec![v1::StatusCell {
                    environment: "staging".into(),
                    replicas: 1,
                    digests: vec!["sha256:1".into()],
                    drift: true,
                    ..Default::default()
                }],
            }],
            rows_total: 3,
            next_page: "s1.d.73686f70\u{1b}[2J".into(),
            summary: Some(v1::StatusSummary {
                services: 7,
                services_drifting: 3,
                hosts: 4,
                hosts_not_current: 1,
                findings: Some(v1::FindingTally {
                    critical: 2,
                    pending: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = crate::cli::output::Status::from_proto(&resp, false);
        assert!(!status.parity, "the whole fleet drifts: {status:?}");
        assert_eq!(status.services_left_out, 2);
        let out = Out::buffered(Format::Table, false);
        out.status(&status).unwrap();
        let text = out.take();
        for line in [
            "7 service(s), 3 drifting; 4 host(s), 1 not current",
            "4 service(s) without drift not shown (--all shows them)",
            "2 more service(s): --page s1.d.73686f70\\u{1b}[2J",
            "drift 1 environment(s), 7 service(s): 2 finding(s): 2 critical, 0 warning, 0 info; 1 pending (inside the grace period)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }

    #[test]
    fn status_rows_with_more_cells_than_environments_render() {
        // Found by fuzz/render: an answer whose rows hold more cells than it
        // names environments panicked on the missing column width.
        use envparity_proto::v1;
        let resp = v1::GetStatusResponse {
            environments: vec![],
            rows: vec![v1::StatusRow {
                service: "shop".into(),
                cells: ["sha256:1", "sha256:2"]
                    .map(|digest| v1::StatusCell {
                        environment: "staging".into(),
                        replicas: 1,
                        digests: vec![digest.into()],
                        ..Default::default()
                    })
                    .into(),
            }],
            ..Default::default()
        };
        let out = Out::buffered(Format::Table, false);
        out.status(&crate::cli::output::Status::from_proto(&resp, true))
            .unwrap();
        assert!(
            out.take()
                .starts_with("SERVICE\nshop     sha256:1  sha256:2\n")
        );
    }
}
