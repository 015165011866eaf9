//! How strictly two environments must match: explicit pairs first, then the
//! chain.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Policy;

/// How strictly a pair of environments must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not compared.
    Ignore,
    /// An earlier stage may run ahead: drift is info.
    Relaxed,
    /// Drift is a warning.
    Standard,
    /// What runs in the later stage must be what ran in the earlier one:
    /// content drift is critical, config drift a warning.
    Strict,
}

/// An explicit level for one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRule {
    /// The two environments (order does not matter).
    pub environments: [String; 2],
    /// How strictly they must match.
    pub level: Level,
}

impl Policy {
    /// How strictly `a` and `b` must match, given every environment in the
    /// fleet. Explicit `[[pairs]]` win; otherwise the last two chain stages
    /// present are strict, earlier chain pairs relaxed, anything involving a
    /// name outside the chain standard.
    pub fn level(&self, a: &str, b: &str, fleet: &[String]) -> Level {
        if let Some(rule) = self.pairs.iter().find(|p| {
            let [x, y] = &p.environments;
            (x == a && y == b) || (x == b && y == a)
        }) {
            return rule.level;
        }
        let (Some(sa), Some(sb)) = (self.stage_of(a), self.stage_of(b)) else {
            return Level::Standard;
        };
        if sa == sb {
            return Level::Standard;
        }
        match self.stages_present(fleet).as_slice() {
            [.., x, y] if (sa.min(sb), sa.max(sb)) == (*x, *y) => Level::Strict,
            [_, _, ..] => Level::Relaxed,
            _ => Level::Standard,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ignore => "ignore",
            Level::Relaxed => "relaxed",
            Level::Standard => "standard",
            Level::Strict => "strict",
        })
    }
}
