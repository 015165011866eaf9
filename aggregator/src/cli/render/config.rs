//! The aggregator's settings as text: `policy show` and `policy check`,
//! and `check-config`.

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

    /// `envparity check-config`.
    pub fn config_check(&self, c: &ConfigCheck) -> anyhow::Result<()> {
        if self.structured(c)? {
            return Ok(());
        }
        let mut text = format!(
            "config OK: {}\nlisten:          {}\ntransport:       {}\nreport rate:     {}\ndata_dir:        {}\nstale_after:     {}\npolicy:          {}\nmetrics_listen:  {}\nlog_format:      {}\nalerts at:       {} and above\n",
            c.source,
            c.listen,
            c.transport,
            c.report_rate,
            c.data_dir,
            c.stale_after,
            c.policy,
            if c.metrics_listen.is_empty() {
                "off"
            } else {
                &c.metrics_listen
            },
            c.log_format,
            c.alert_min_severity,
        );
        if c.sinks.is_empty() {
            text.push_str("sinks:           none\n");
        }
        for s in &c.sinks {
            text.push_str(&format!("sink:            {s}\n"));
        }
        self.emit(&sanitize_lines(&text))
    }
}
