//! `gate` as text: ALLOWED or REFUSED, and why.

use super::Out;
use super::paint::Tone;
use super::text::sanitize_lines;
use crate::cli::output::Gate;

impl Out {
    /// `envparity gate`.
    pub fn gate(&self, gate: &Gate) -> anyhow::Result<()> {
        if self.structured(gate)? {
            return Ok(());
        }
        let mut s = format!(
            " promote {} {} to {} (previous stage: {})\n",
            gate.service, gate.candidate, gate.to, gate.previous_environment,
        );
        if let Some(since) = &gate.running_since {
            s.push_str(&format!(
                "  {} has run it on every replica since {since} (policy minimum: {})\n",
                gate.previous_environment, gate.min_time_in_previous
            ));
        }
        for r in &gate.reasons {
            s.push_str(&format!("  - {r}\n"));
        }
        let verdict = if gate.allowed {
            self.paint("ALLOWED", Tone::Ok)
        } else {
            self.paint("REFUSED", Tone::Critical)
        };
        self.emit(&(verdict + &sanitize_lines(&s)))
    }
}
