//! Listings of open findings: which findings one shows (a service, a pair,
//! an environment), and the page of it an answer carries.

use crate::parity::{Finding, Position, Tally};

/// Which open findings a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing<'q> {
    /// Only those of this service; host-level findings are always shown.
    pub service: Option<&'q str>,
    /// Only those of `a` against `b` in that orientation, and the
    /// single-environment findings of either (a diff).
    ///
    /// When the ledger evaluates the pair in this orientation (earlier stage
    /// first, as `diff staging production`), they are the ledger's open
    /// findings of the pair, as `status` shows them: what an evaluation at
    /// the last report or tick found, so a host crossing the stale
    /// threshold shows within the tick (1 s). Otherwise (the pair reversed,
    /// whose sides and summaries read the other way, or one the policy
    /// ignores) the pair is evaluated afresh.
    pub pair: Option<(&'q str, &'q str)>,
    /// Only those that involve this environment.
    pub environment: Option<&'q str>,
}

impl<'q> Listing<'q> {
    /// Every pair, optionally for one service.
    pub fn every_pair(service: Option<&'q str>) -> Self {
        Listing {
            service,
            ..Listing::default()
        }
    }

    /// `a` against `b`, optionally for one service.
    pub fn pair(a: &'q str, b: &'q str, service: Option<&'q str>) -> Self {
        Listing {
            service,
            pair: Some((a, b)),
            environment: None,
        }
    }

    /// Whether the listing shows `finding`.
    pub fn shows(&self, finding: &Finding) -> bool {
        concerns(finding, self.service)
            && self.pair.is_none_or(|(a, b)| of_pair(finding, a, b))
            && self
                .environment
                .is_none_or(|env| finding.environments().any(|e| e == env))
    }
}

/// Where a page starts and how much it holds.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// After this finding's place (`None`: from the first).
    pub after: Option<Position>,
    /// At most this many findings (at least one is shown).
    pub limit: usize,
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingsPage {
    /// The findings of the page, judged, in report order.
    pub findings: Vec<Finding>,
    /// How many findings the whole listing holds.
    pub total: usize,
    /// Where the next page starts, when there is one.
    pub next: Option<Position>,
    /// What the whole listing's findings weigh.
    pub tally: Tally,
}

/// Whether `finding` is among those of `service` (`None`: every finding);
/// host-level findings concern every service.
pub(super) fn concerns(finding: &Finding, service: Option<&str>) -> bool {
    service.is_none_or(|s| finding.service == s || finding.kind.is_host_level())
}

/// Whether `finding` is one a diff of `a` against `b` shows: a finding of
/// that pair in that orientation, or a single-environment finding of either.
fn of_pair(finding: &Finding, a: &str, b: &str) -> bool {
    match &finding.b {
        Some(side_b) => finding.a.environment == a && side_b.environment == b,
        None => finding.a.environment == a || finding.a.environment == b,
    }
}
