//! The order findings are listed in, a finding's place in it (what a page
//! of a listing resumes after), and the tally of a listing (what its
//! outcome rests on, however little of it a page shows).

use std::cmp::Ordering;

use super::finding::{Finding, Kind, Severity, State};
use super::policy::Policy;

/// Report order: kind, service, environments in promotion order, key,
/// host. Total over the findings of one listing (two findings of one
/// listing differ in one of these).
pub fn order(x: &Finding, y: &Finding, policy: &Policy) -> Ordering {
    Place::of(x).cmp_in(&Place::of(y), policy)
}

/// Sorts `findings` in report order ([`order`]).
pub fn sort(findings: &mut [Finding], policy: &Policy) {
    findings.sort_by(|x, y| order(x, y, policy));
}

/// Where a finding stands in report order, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place<'a> {
    kind: Kind,
    service: &'a str,
    env_a: &'a str,
    env_b: Option<&'a str>,
    key: &'a str,
    host: &'a str,
}

impl<'a> Place<'a> {
    fn of(f: &'a Finding) -> Self {
        Place {
            kind: f.kind,
            service: &f.service,
            env_a: &f.a.environment,
            env_b: f.b.as_ref().map(|b| b.environment.as_str()),
            key: &f.key,
            host: &f.host,
        }
    }

    fn cmp_in(&self, other: &Place<'_>, policy: &Policy) -> Ordering {
        self.kind
            .rank()
            .cmp(&other.kind.rank())
            .then_with(|| self.service.cmp(other.service))
            .then_with(|| policy.compare(self.env_a, other.env_a))
            .then_with(|| match (self.env_b, other.env_b) {
                (Some(p), Some(q)) => policy.compare(p, q),
                (p, q) => p.is_some().cmp(&q.is_some()),
            })
            .then_with(|| self.key.cmp(other.key))
            .then_with(|| self.host.cmp(other.host))
    }
}

/// A finding's place in report order, kept to resume a listing after it
/// (the findings that sort after it, whatever opened or resolved since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Its kind.
    pub kind: Kind,
    /// Its service (empty for a host-level finding).
    pub service: String,
    /// Its first environment.
    pub env_a: String,
    /// Its second environment, for a finding between two.
    pub env_b: Option<String>,
    /// Its key (env var, setting), or empty.
    pub key: String,
    /// Its host, or empty.
    pub host: String,
}

impl Position {
    /// The place of `f`.
    pub fn of(f: &Finding) -> Self {
        Position {
            kind: f.kind,
            service: f.service.clone(),
            env_a: f.a.environment.clone(),
            env_b: f.b.as_ref().map(|b| b.environment.clone()),
            key: f.key.clone(),
            host: f.host.clone(),
        }
    }

    /// Whether `f` sorts after this place.
    pub fn precedes(&self, f: &Finding, policy: &Policy) -> bool {
        let here = Place {
            kind: self.kind,
            service: &self.service,
            env_a: &self.env_a,
            env_b: self.env_b.as_deref(),
            key: &self.key,
            host: &self.host,
        };
        here.cmp_in(&Place::of(f), policy) == Ordering::Less
    }
}

/// How many findings a listing holds, by what they weigh: whatever part
/// of it a page shows, its outcome is decided on this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Active critical findings.
    pub critical: u32,
    /// Active warnings.
    pub warning: u32,
    /// Active info findings.
    pub info: u32,
    /// Findings still in their grace period.
    pub pending: u32,
    /// Findings under a waiver that holds.
    pub waived: u32,
}

impl Tally {
    /// Counts a finding of `severity` judged `state`.
    pub fn add(&mut self, severity: Severity, state: State) {
        let slot = match (state, severity) {
            (State::Pending, _) => &mut self.pending,
            (State::Waived, _) => &mut self.waived,
            (State::Active, Severity::Critical) => &mut self.critical,
            (State::Active, Severity::Warning) => &mut self.warning,
            (State::Active, Severity::Info) => &mut self.info,
        };
        *slot = slot.saturating_add(1);
    }

    /// Every finding counted.
    pub fn total(&self) -> u32 {
        [
            self.critical,
            self.warning,
            self.info,
            self.pending,
            self.waived,
        ]
        .iter()
        .fold(0u32, |sum, n| sum.saturating_add(*n))
    }

    /// Whether a finding counts (active; pending and waived ones do not).
    pub fn drifts(&self) -> bool {
        self.critical + self.warning + self.info > 0
    }

    /// Whether a finding at or above `severity` counts.
    pub fn fails(&self, severity: Severity) -> bool {
        match severity {
            Severity::Critical => self.critical > 0,
            Severity::Warning => self.critical + self.warning > 0,
            Severity::Info => self.drifts(),
        }
    }
}
