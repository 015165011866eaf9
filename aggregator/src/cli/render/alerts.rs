//! `alerts` as text: the alerts firing, the level and the sinks.

use super::Out;
use super::table::Table;
use super::text::{dash_or, sanitize_lines};
use crate::cli::output::Alerts;

impl Out {
    /// `envparity alerts`.
    pub fn alerts(&self, a: &Alerts) -> anyhow::Result<()> {
        if self.structured(a)? {
            return Ok(());
        }
        let mut headers = vec![
            "SEVERITY",
            "KIND",
            "SERVICE",
            "ENVIRONMENTS",
            "FIRING SINCE",
            "SUMMARY",
        ];
        if self.wide() {
            headers.extend(["HOST", "KEY", "FIRST SEEN", "ID"]);
        }
        let mut table = Table::new(&headers);
        for alert in &a.alerts {
            let envs = if alert.env_b.is_empty() {
                alert.env_a.clone()
            } else {
                format!("{} → {}", alert.env_a, alert.env_b)
            };
            let mut row = vec![
                alert.severity.to_string(),
                alert.kind.to_string(),
                dash_or(&alert.service).to_owned(),
                envs,
                alert.fired_at.clone().unwrap_or_default(),
                alert.summary.clone(),
            ];
            if self.wide() {
                row.extend([
                    dash_or(&alert.host).to_owned(),
                    dash_or(&alert.key).to_owned(),
                    alert.first_seen.clone().unwrap_or_default(),
                    alert.id.clone(),
                ]);
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        let sinks = if a.sinks.is_empty() {
            "none configured".to_owned()
        } else {
            a.sinks.join(", ")
        };
        let mut text = sanitize_lines(&format!(
            "{} alert(s) firing (alerting at {} and above; sinks: {sinks})\n",
            a.alerts.len(),
            a.min_severity
        ));
        if !a.alerts.is_empty() {
            text.push_str(&table.render(self));
        }
        self.emit(&text)
    }
}
