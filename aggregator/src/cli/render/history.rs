//! `history` as text: the changes, then the findings' lifetimes.

use super::Out;
use super::table::Table;
use super::text::{dash_or, sanitize_lines, short};
use crate::cli::output::History;

impl Out {
    /// `envparity history`.
    pub fn history(&self, history: &History) -> anyhow::Result<()> {
        if self.structured(history)? {
            return Ok(());
        }
        let mut events = Table::new(&[
            "TIME",
            "ENVIRONMENT",
            "HOST",
            "CONTAINER",
            "CHANGE",
            "FROM",
            "TO",
        ]);
        for e in &history.events {
            let image = |v: &str| {
                if v.is_empty() {
                    "-".to_owned()
                } else if self.wide() {
                    v.to_owned()
                } else {
                    short(v)
                }
            };
            events.row(
                vec![
                    e.received_at.clone().unwrap_or_default(),
                    e.environment.clone(),
                    e.host_id.clone(),
                    e.container.clone(),
                    e.change.clone(),
                    image(&e.old_image),
                    image(&e.new_image),
                ],
                |_, t, _: &Out| t.to_owned(),
            );
        }
        let mut s = sanitize_lines(&format!(
            "{}: {} change(s)\n",
            history.service,
            history.events.len()
        ));
        s.push_str(&events.render(self));
        if history.older_events_left_out {
            s.push_str("(older changes left out: raise --limit to see them)\n");
        }
        let mut findings = Table::new(&[
            "OPENED",
            "RESOLVED",
            "SEVERITY",
            "KIND",
            "ENVIRONMENTS",
            "KEY",
        ]);
        for f in &history.findings {
            findings.row(
                vec![
                    f.first_seen.clone().unwrap_or_default(),
                    f.resolved_at.clone().unwrap_or_else(|| "open".to_owned()),
                    f.severity.to_string(),
                    f.kind.to_string(),
                    f.environments.join(","),
                    dash_or(&f.key).to_owned(),
                ],
                |_, t, _: &Out| t.to_owned(),
            );
        }
        s.push_str(&format!("\n{} finding(s)\n", history.findings.len()));
        s.push_str(&findings.render(self));
        if history.older_findings_left_out {
            s.push_str("(older findings left out: raise --limit to see them)\n");
        }
        self.emit(&s)
    }
}
