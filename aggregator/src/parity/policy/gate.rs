//! The promotion gate's settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spelling::duration;
use crate::parity::finding::Severity;

/// The promotion gate's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateRules {
    /// How long the candidate digest must have run in the previous stage.
    #[serde(with = "duration")]
    pub min_time_in_previous: Duration,
    /// Findings at or above this severity block a promotion.
    pub block_on: Severity,
}

impl Default for GateRules {
    fn default() -> Self {
        GateRules {
            min_time_in_previous: Duration::ZERO,
            block_on: Severity::Critical,
        }
    }
}
