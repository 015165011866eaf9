//! Accepted differences: what a waiver matches, and which waiver applies to
//! a finding at a given time.

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Policy;
use super::spelling::instant;
use crate::parity::finding::{Finding, Kind};

/// An accepted difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The kind it accepts.
    pub kind: Kind,
    /// The service (empty or absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The env key, runtime setting or reference (absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The host, for per-host kinds (absent: any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The environments (absent: any); a finding matches when its
    /// environments are exactly these.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub environments: BTreeSet<String>,
    /// Why it is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying (RFC 3339, or a date meaning its midnight UTC).
    #[serde(with = "instant")]
    pub expires: SystemTime,
}

impl Waiver {
    /// Whether it is about `finding` (expired or not).
    pub fn matches(&self, finding: &Finding) -> bool {
        let id = finding.identity();
        self.kind == finding.kind
            && (self.service.is_empty() || self.service == finding.service)
            && (self.key.is_empty() || self.key == finding.key)
            && (self.host.is_empty() || self.host == finding.host)
            && (self.environments.is_empty() || self.environments.iter().eq(id.environments.iter()))
    }
}

impl Policy {
    /// The waiver that matches `finding`: an unexpired one if any, else the
    /// most recently expired one (so the finding can say it expired).
    pub fn waiver_for(&self, finding: &Finding, now: SystemTime) -> Option<&Waiver> {
        let matching = self.waivers.iter().filter(|w| w.matches(finding));
        let (live, expired): (Vec<&Waiver>, Vec<&Waiver>) = matching.partition(|w| w.expires > now);
        live.into_iter()
            .max_by_key(|w| w.expires)
            .or_else(|| expired.into_iter().max_by_key(|w| w.expires))
    }
}
