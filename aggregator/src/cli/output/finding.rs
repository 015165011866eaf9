//! One finding as the answers carry it, and how findings are judged: which
//! count ([`Finding::counts`]) and how many weigh what ([`Tally`]).

use envparity_proto::v1;
use serde::Serialize;

use super::{Named, rfc3339, wire};
use crate::parity::{Kind, Severity, State};

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identity: kind, service, environments, key, host.
    pub id: String,
    /// The kind's stable name (docs/findings.md lists them).
    pub kind: Named<Kind>,
    /// `info`, `warning` or `critical`.
    pub severity: Named<Severity>,
    /// `pending` (inside the grace period), `active` (counts) or `waived`.
    pub state: Named<State>,
    /// Empty for host-level kinds.
    pub service: String,
    /// The env key, runtime setting, reference or replica aspect.
    pub key: String,
    /// The host, for per-host kinds (`stale_host`).
    pub host: String,
    pub a: Side,
    /// `null` for single-environment kinds.
    pub b: Option<Side>,
    /// What was compared.
    pub basis: String,
    pub summary: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The waiver that matched, applied or expired.
    pub waiver: Option<Waiver>,
}

/// A matched waiver.
#[derive(Debug, Clone, Serialize)]
pub struct Waiver {
    pub reason: String,
    pub owner: String,
    pub expires: Option<String>,
    /// True when it expired and the finding counts again.
    pub expired: bool,
}

/// One side of a finding.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub environment: String,
    pub hosts: Vec<String>,
    pub stale_hosts: Vec<String>,
    /// Digests, host facts, settings, or env fingerprints (`fp:…`);
    /// allowlisted env values in clear. Never secret values.
    pub values: Vec<String>,
}

impl Side {
    fn from_proto(s: &v1::FindingSide) -> Self {
        Side {
            environment: s.environment.clone(),
            hosts: s.hosts.clone(),
            stale_hosts: s.stale_hosts.clone(),
            values: s.values.clone(),
        }
    }
}

impl Finding {
    /// From the wire.
    pub fn from_proto(f: &v1::Finding) -> Self {
        Finding {
            id: f.id.clone(),
            kind: wire::kind(f.kind()),
            severity: wire::severity(f.severity()),
            state: wire::state(f.state()),
            service: f.service.clone(),
            key: f.key.clone(),
            host: f.host.clone(),
            a: f.a.as_ref().map_or_else(
                || Side::from_proto(&v1::FindingSide::default()),
                Side::from_proto,
            ),
            b: f.b.as_ref().map(Side::from_proto),
            basis: f.basis.clone(),
            summary: f.summary.clone(),
            first_seen: rfc3339(f.first_seen.as_ref()),
            last_seen: rfc3339(f.last_seen.as_ref()),
            waiver: f.waiver.as_ref().map(|w| Waiver {
                reason: w.reason.clone(),
                owner: w.owner.clone(),
                expires: rfc3339(w.expires.as_ref()),
                expired: w.expired,
            }),
        }
    }

    /// Whether it counts: active, not pending or waived. A state this CLI
    /// does not know does not count (docs/json-output.md: parity is "no
    /// finding is `active`").
    pub fn counts(&self) -> bool {
        self.state.known() == Some(State::Active)
    }
}

/// Whether no finding counts.
pub(super) fn parity_of(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::counts)
}

/// How many findings there are, by what they weigh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Active critical findings.
    pub critical: u32,
    /// Active warnings.
    pub warning: u32,
    /// Active info findings.
    pub info: u32,
    /// In their grace period: they do not count yet.
    pub pending: u32,
    /// Under a waiver that holds: they do not count.
    pub waived: u32,
}

impl Tally {
    /// The tally of `findings`. A finding that counts with a severity this
    /// CLI does not know is tallied as info, the least; one whose state it
    /// does not know counts nowhere, as [`Finding::counts`] says.
    pub fn of(findings: &[Finding]) -> Self {
        let mut t = Tally::default();
        for f in findings {
            let slot = match f.state.known() {
                Some(State::Pending) => &mut t.pending,
                Some(State::Waived) => &mut t.waived,
                Some(State::Active) => match f.severity.known() {
                    Some(Severity::Critical) => &mut t.critical,
                    Some(Severity::Warning) => &mut t.warning,
                    Some(Severity::Info) | None => &mut t.info,
                },
                None => continue,
            };
            *slot += 1;
        }
        t
    }

    /// From the wire.
    pub fn from_proto(t: &v1::FindingTally) -> Self {
        Tally {
            critical: t.critical,
            warning: t.warning,
            info: t.info,
            pending: t.pending,
            waived: t.waived,
        }
    }

    /// Findings that count.
    pub fn counted(&self) -> u32 {
        self.critical + self.warning + self.info
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A finding on the wire as an aggregator sends it; `kind` is a raw
    /// number so that a newer aggregator's kinds can be sent too.
    pub fn wire_finding(kind: i32, severity: v1::Severity, state: v1::FindingState) -> v1::Finding {
        v1::Finding {
            id: format!("finding-{kind}"),
            kind,
            severity: severity as i32,
            state: state as i32,
            service: "shop".into(),
            ..Default::default()
        }
    }

    /// A finding as the CLI reads it.
    pub fn finding(kind: Kind, severity: Severity, state: v1::FindingState) -> Finding {
        let wire_kind = v1::FindingKind::from_str_name(&format!(
            "FINDING_KIND_{}",
            kind.as_str().to_ascii_uppercase()
        ))
        .expect("every kind is on the wire");
        let wire_severity = v1::Severity::from_str_name(&format!(
            "SEVERITY_{}",
            severity.as_str().to_ascii_uppercase()
        ))
        .expect("every severity is on the wire");
        Finding::from_proto(&wire_finding(wire_kind as i32, wire_severity, state))
    }

    #[test]
    fn a_kind_from_a_newer_aggregator_is_kept_and_named_not_an_error() {
        // Kind 999 is one this CLI was built without.
        let f = Finding::from_proto(&wire_finding(
            999,
            v1::Severity::Critical,
            v1::FindingState::Active,
        ));
        assert_eq!(f.kind, Named::Other("unspecified".to_owned()));
        assert_eq!(f.kind.known(), None);
        assert_eq!(f.severity, Named::Known(Severity::Critical));
        // It still counts: its state and severity are known.
        assert!(f.counts());
        assert_eq!(Tally::of(std::slice::from_ref(&f)).critical, 1);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["kind"], "unspecified");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["state"], "active");
    }

    #[test]
    fn a_finding_serializes_with_the_wire_names_as_before() {
        let f = finding(
            Kind::SameTagDifferentDigest,
            Severity::Warning,
            v1::FindingState::Waived,
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["kind"], "same_tag_different_digest");
        assert_eq!(json["severity"], "warning");
        assert_eq!(json["state"], "waived");
    }

    #[test]
    fn the_tally_weighs_by_state_then_severity() {
        use v1::FindingState::{Active, Pending, Waived};
        let mut findings = vec![
            finding(Kind::ImageDigest, Severity::Critical, Active),
            finding(Kind::EnvValue, Severity::Warning, Active),
            finding(Kind::Kernel, Severity::Info, Active),
            finding(Kind::ImageDigest, Severity::Critical, Pending),
            finding(Kind::ImageDigest, Severity::Critical, Waived),
        ];
        // An unknown severity that counts weighs as info.
        findings.push(Finding::from_proto(&wire_finding(
            1,
            v1::Severity::Unspecified,
            Active,
        )));
        assert_eq!(
            Tally::of(&findings),
            Tally {
                critical: 1,
                warning: 1,
                info: 2,
                pending: 1,
                waived: 1,
            }
        );
        assert!(!parity_of(&findings));
    }

    /// Found while typing the answers: a state this CLI does not know did
    /// not count for the exit code and `parity` but was tallied as counted,
    /// so the verdict line said drift while the command exited 0.
    #[test]
    fn an_unknown_state_neither_counts_nor_is_tallied_as_counting() {
        let f = Finding::from_proto(&wire_finding(
            1,
            v1::Severity::Critical,
            v1::FindingState::Unspecified,
        ));
        assert_eq!(f.state.as_str(), "unspecified");
        assert!(!f.counts());
        assert!(parity_of(std::slice::from_ref(&f)));
        assert_eq!(Tally::of(&[f]).counted(), 0);
    }
}
