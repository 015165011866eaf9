//! Findings as text: the findings table, the verdict line, and the answers
//! made of them, `diff`, `findings` and `check`.

use super::Out;
use super::paint::Tone;
use super::table::Table;
use super::text::{dash_or, sanitize, sanitize_lines, short};
use crate::cli::output::{Diff, Finding, Findings, Side, Tally};

impl Out {
    pub(super) fn findings_table(&self, findings: &[Finding]) -> String {
        let mut headers = vec!["SEVERITY", "KIND", "SERVICE", "KEY", "A", "B"];
        if self.wide() {
            headers.extend(["BASIS", "HOSTS A", "HOSTS B", "FIRST SEEN"]);
        }
        let mut table = Table::new(&headers);
        for f in findings {
            let side = |s: &Side| {
                let values = if s.values.is_empty() {
                    "(absent)".to_owned()
                } else if self.wide() {
                    s.values.join(", ")
                } else {
                    s.values
                        .iter()
                        .map(|v| short(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let stale = if s.stale_hosts.is_empty() {
                    ""
                } else {
                    " (stale)"
                };
                format!("{}: {values}{stale}", s.environment)
            };
            let severity = if f.counts() {
                f.severity.to_string()
            } else {
                format!("{} ({})", f.severity, f.state)
            };
            let key = if f.host.is_empty() {
                dash_or(&f.key).to_owned()
            } else {
                format!("host {}", f.host)
            };
            let mut row = vec![
                severity,
                f.kind.to_string(),
                dash_or(&f.service).to_owned(),
                key,
                side(&f.a),
                f.b.as_ref().map_or_else(|| "-".to_owned(), side),
            ];
            if self.wide() {
                row.extend([
                    f.basis.clone(),
                    f.a.hosts.join(","),
                    f.b.as_ref().map(|b| b.hosts.join(",")).unwrap_or_default(),
                    f.first_seen.clone().unwrap_or_default(),
                ]);
            }
            // Only what counts is coloured, and only by a severity known.
            let tone = f.severity.known().filter(|_| f.counts()).map(Tone::of);
            table.row(row, move |col, text, out: &Out| match tone {
                Some(tone) if col == 0 => out.paint(text, tone),
                _ => text.to_owned(),
            });
        }
        let mut s = table.render(self);
        for f in findings {
            if let Some(w) = &f.waiver {
                let expires = w.expires.clone().unwrap_or_default();
                let note = if w.expired {
                    format!("waiver EXPIRED {expires} (owner {}): {}", w.owner, w.reason)
                } else {
                    format!("waived until {expires} by {}: {}", w.owner, w.reason)
                };
                s.push_str(&sanitize_lines(&format!(
                    "  {} {}: {note}\n",
                    f.kind,
                    dash_or(&f.service)
                )));
            }
        }
        s
    }

    fn verdict(&self, findings: &[Finding], scope: &str) -> String {
        self.verdict_of(&Tally::of(findings), scope)
    }

    /// The verdict line over `tally`: parity or drift, and what it counts.
    pub(super) fn verdict_of(&self, tally: &Tally, scope: &str) -> String {
        // The scope names environments and services from the command line.
        let scope = sanitize(scope);
        let mut extra = String::new();
        if tally.pending > 0 {
            extra.push_str(&format!(
                "; {} pending (inside the grace period)",
                tally.pending
            ));
        }
        if tally.waived > 0 {
            extra.push_str(&format!("; {} waived", tally.waived));
        }
        if tally.counted() == 0 {
            return format!(
                "{} {scope}: no findings{extra}\n",
                self.paint("parity", Tone::Ok)
            );
        }
        format!(
            "{} {scope}: {} finding(s): {} critical, {} warning, {} info{extra}\n",
            self.paint("drift", Tone::Critical),
            tally.counted(),
            tally.critical,
            tally.warning,
            tally.info,
        )
    }

    /// `envparity diff`.
    pub fn diff(&self, diff: &Diff) -> anyhow::Result<()> {
        if self.structured(diff)? {
            return Ok(());
        }
        let mut s = String::new();
        if !diff.findings.is_empty() {
            s.push_str(&self.findings_table(&diff.findings));
            s.push('\n');
        }
        if let Some(token) = &diff.next_page {
            s.push_str(&format!(
                "{} more finding(s): --page {} (--all shows every one)\n\n",
                diff.findings_left_out,
                sanitize(token)
            ));
        }
        let scope = match &diff.service {
            Some(svc) => format!("{} vs {} (service {svc})", diff.env_a, diff.env_b),
            None => format!("{} vs {}", diff.env_a, diff.env_b),
        };
        s.push_str(&self.verdict_of(&diff.tally, &scope));
        self.emit(&s)
    }

    /// `envparity findings` and `envparity check`.
    pub fn findings(&self, findings: &Findings) -> anyhow::Result<()> {
        if self.structured(findings)? {
            return Ok(());
        }
        let mut s = String::new();
        if !findings.findings.is_empty() {
            s.push_str(&self.findings_table(&findings.findings));
            s.push('\n');
        }
        let scope = match &findings.fail_on {
            Some(level) => format!("check (fail on {level} and above)"),
            None => "fleet".to_owned(),
        };
        s.push_str(&self.verdict(&findings.findings, &scope));
        self.emit(&s)
    }
}

#[cfg(test)]
mod tests {
    use envparity_proto::v1;

    use super::*;
    use crate::cli::Format;
    use crate::cli::output::finding_tests::wire_finding;

    /// A page of a diff says how many findings it leaves out and how to get
    /// them, and judges on the pair's whole tally: here the page shows a
    /// pending finding only, while a critical one stands on a later page.
    #[test]
    fn a_diff_page_says_what_it_leaves_out_and_judges_the_whole() {
        let resp = v1::GetFindingsResponse {
            findings: vec![wire_finding(
                1,
                v1::Severity::Critical,
                v1::FindingState::Pending,
            )],
            total: 3,
            next_page: "f1.x\u{1b}[2J".into(),
            tally: Some(v1::FindingTally {
                critical: 2,
                pending: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let diff = Diff::from_proto("staging".into(), "production".into(), None, &resp);
        assert!(!diff.parity, "the pair drifts: {diff:?}");
        assert_eq!(diff.outcome(), crate::cli::Outcome::Drift);
        assert_eq!((diff.findings_total, diff.findings_left_out), (3, 2));
        let out = Out::buffered(Format::Table, false);
        out.diff(&diff).unwrap();
        let text = out.take();
        for line in [
            "2 more finding(s): --page f1.x\\u{1b}[2J (--all shows every one)",
            "drift staging vs production: 2 finding(s): 2 critical, 0 warning, 0 info; 1 pending (inside the grace period)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        // The last page: nothing left out, no token.
        let last = Diff::from_proto(
            "staging".into(),
            "production".into(),
            None,
            &v1::GetFindingsResponse {
                next_page: String::new(),
                total: 1,
                ..resp
            },
        );
        assert_eq!((last.findings_left_out, last.next_page), (0, None));
    }
}
