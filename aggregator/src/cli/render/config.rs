//! The aggregator's settings as text: `policy show` and `policy check`,
//! and `check-config`.

use envparity_settings::Report;

use super::Out;
use super::text::sanitize_lines;
use crate::cli::output::{ConfigCheck, PolicyShow};

impl Out {
    /// `envparity policy show`.
    pub fn policy(&self, p: &PolicyShow) -> anyhow::Result<()> {
        if self.structured(p)? {
            return Ok(());
        }
        let loaded = p.loaded_at.clone().unwrap_or_default();
        self.emit(&sanitize_lines(&format!(
            "# effective policy, from {} (loaded {loaded})\n{}",
            p.source, p.toml
        )))
    }

    /// `envparity check-config`: in text, one row per setting with its
    /// value and origin (`report`, from the settings table), then the
    /// transport and the sinks they add up to; structured, the summary.
    pub fn config_check(&self, c: &ConfigCheck, mut report: Report) -> anyhow::Result<()> {
        if self.structured(c)? {
            return Ok(());
        }
        report.push("transport", c.transport.clone());
        report.push("store_found", c.store.clone());
        for sink in &c.sinks {
            report.push("sink", sink.clone());
        }
        self.emit(&sanitize_lines(&report.to_string()))
    }
}
