//! Which environments must pin images by digest, and how serious an unpinned
//! image is.

use serde::{Deserialize, Serialize};

use super::Policy;
use crate::parity::finding::Severity;

/// Pinning requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pinning {
    /// Environments where a mutable reference is a warning. `"@last_stage"`
    /// stands for the last stage of the chain present in the fleet.
    pub required: Vec<String>,
    /// What an unpinned image is elsewhere.
    pub elsewhere: Report,
}

/// Whether, and how seriously, to report something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Not reported.
    Off,
    /// Reported as info.
    Info,
    /// Reported as a warning.
    Warning,
    /// Reported as critical.
    Critical,
}

impl Report {
    /// The severity it reports at; `None`: not reported.
    pub(super) fn severity(self) -> Option<Severity> {
        match self {
            Report::Off => None,
            Report::Info => Some(Severity::Info),
            Report::Warning => Some(Severity::Warning),
            Report::Critical => Some(Severity::Critical),
        }
    }
}

/// The stand-in for the last stage of the chain present in the fleet.
pub const LAST_STAGE: &str = "@last_stage";

impl Default for Pinning {
    fn default() -> Self {
        Pinning {
            required: vec![LAST_STAGE.to_owned()],
            elsewhere: Report::Info,
        }
    }
}

impl Policy {
    /// How serious an unpinned image in `env` is; `None`: not reported.
    pub fn unpinned_severity(&self, env: &str, fleet: &[String]) -> Option<Severity> {
        let last = self
            .stages_present(fleet)
            .last()
            .copied()
            .filter(|_| self.pinning.required.iter().any(|r| r == LAST_STAGE));
        let required = self.pinning.required.iter().any(|r| r == env)
            || last.is_some_and(|s| self.stage_of(env) == Some(s));
        if required {
            Some(Severity::Warning)
        } else {
            self.pinning.elsewhere.severity()
        }
    }
}
