//! The policy: what must match where, what may differ, and what is accepted.
//!
//! A policy is TOML. Every field has a default, and the defaults alone are a
//! useful policy (see [`Policy::default`]): `dev`/`development` →
//! `staging`/`stage` → `prod`/`production` form the promotion chain, other
//! names are compared with every environment, the last stage must be pinned.
//! Parsing is strict: unknown keys, kinds, severities, levels and runtime
//! settings are errors that name the line and the key, so a typo never
//! silently weakens the policy.
//!
//! Parsing and every rule are pure; reading the file is the caller's job.
//!
//! One file per concern: `load` reads and prints the TOML, `validate`
//! checks what the types cannot; `chain` orders environments,
//! `level` says how strictly two must match, `pinning` when a mutable image
//! reference is reported, `compared` which keys, settings and services are
//! compared at all, `waiver` which differences are accepted, `gate` the
//! promotion gate's settings, `unmanaged` how containers without an
//! identity are reported, and `spelling` how durations, instants, kinds
//! and severities are written in the file.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::finding::{Kind, Severity};

mod chain;
mod compared;
mod gate;
mod level;
mod load;
mod pinning;
mod spelling;
mod unmanaged;
mod validate;
mod waiver;

pub use chain::Stage;
pub use compared::{EnvRules, RuntimeField, RuntimeRules, ServiceRules, config_pattern_matches};
pub use gate::GateRules;
pub use level::{Level, PairRule};
pub use load::PolicyError;
pub use pinning::{LAST_STAGE, Pinning, Report};
pub(crate) use spelling::duration;
pub use unmanaged::Unmanaged;
pub use waiver::Waiver;

/// The effective policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// How long a finding must persist before it counts (CLI, `check`,
    /// `gate`); before that it is *pending*.
    #[serde(with = "duration")]
    pub grace: Duration,
    /// The grace period for alerts.
    #[serde(with = "duration")]
    pub alert_grace: Duration,
    /// The promotion chain, earliest first; each stage is a name or a list of
    /// names for the same stage.
    pub chain: Vec<Stage>,
    /// Which environments must pin images by digest.
    pub pinning: Pinning,
    /// Env keys that may differ or are ignored, for every service.
    pub env: EnvRules,
    /// Configuration file keys that may differ or are ignored, for every
    /// service: `FILE_GLOB:KEY_PATTERN` entries.
    pub config: EnvRules,
    /// Runtime settings that are ignored, for every service.
    pub runtime: RuntimeRules,
    /// How containers without an identity of their own are reported.
    pub unmanaged: Unmanaged,
    /// The promotion gate.
    pub gate: GateRules,
    /// Severity overrides per finding kind.
    pub severity: BTreeMap<Kind, Severity>,
    /// How strictly explicit pairs of environments must match.
    pub pairs: Vec<PairRule>,
    /// Per-service rules.
    pub services: BTreeMap<String, ServiceRules>,
    /// Accepted differences.
    pub waivers: Vec<Waiver>,
}

impl Default for Policy {
    fn default() -> Self {
        let stage = |names: &[&str]| Stage(names.iter().map(|s| (*s).to_owned()).collect());
        Policy {
            grace: Duration::ZERO,
            alert_grace: Duration::from_secs(5 * 60),
            chain: vec![
                stage(&["dev", "development"]),
                stage(&["staging", "stage"]),
                stage(&["prod", "production"]),
            ],
            pinning: Pinning::default(),
            env: EnvRules::default(),
            config: EnvRules::default(),
            runtime: RuntimeRules::default(),
            unmanaged: Unmanaged::default(),
            gate: GateRules::default(),
            severity: BTreeMap::new(),
            pairs: Vec::new(),
            services: BTreeMap::new(),
            waivers: Vec::new(),
        }
    }
}

impl Policy {
    /// The severity of a finding of `kind`: the override if the policy has
    /// one, else `default`.
    pub fn severity_of(&self, kind: Kind, default: Severity) -> Severity {
        self.severity.get(&kind).copied().unwrap_or(default)
    }
}

#[cfg(test)]
mod tests;
