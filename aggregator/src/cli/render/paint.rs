//! Colour: what a coloured word means, and its terminal code (only on a
//! terminal without `NO_COLOR`; see [`Out::new`]).

use super::Out;
use crate::parity::Severity;

/// What a coloured word means, which picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    /// Critical findings, drift, a refused gate: bold red.
    Critical,
    /// Warnings, cells that drift, hosts not fresh: yellow.
    Warning,
    /// Info findings: cyan.
    Info,
    /// Parity, an allowed gate: green.
    Ok,
}

impl Tone {
    /// The tone of a finding of `severity` that counts.
    pub(super) fn of(severity: Severity) -> Self {
        match severity {
            Severity::Critical => Tone::Critical,
            Severity::Warning => Tone::Warning,
            Severity::Info => Tone::Info,
        }
    }
}

impl Out {
    /// `text` in `tone`'s colour, when this output is coloured.
    pub(super) fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Critical => "1;31",
            Tone::Warning => "33",
            Tone::Info => "36",
            Tone::Ok => "32",
        };
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    }
}
