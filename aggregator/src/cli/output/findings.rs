//! `findings`' and `check`'s answer: every finding of the fleet, filtered,
//! and whether it passes.

use serde::Serialize;

use super::named::by_optional_name;
use super::{Finding, SCHEMA_VERSION, parity_of};
use crate::cli::Outcome;
use crate::parity::{Kind, Severity};

/// `findings` and `check` output.
#[derive(Debug, Serialize)]
pub struct Findings {
    pub schema_version: u32,
    /// The filters applied (`null`: none).
    #[serde(serialize_with = "by_optional_name")]
    pub min_severity: Option<Severity>,
    #[serde(serialize_with = "by_optional_name")]
    pub kind: Option<Kind>,
    pub service: Option<String>,
    /// For `check`: the severity at or above which a finding fails it.
    #[serde(serialize_with = "by_optional_name")]
    pub fail_on: Option<Severity>,
    /// True when no finding here counts (for `check`: none at or above
    /// `fail_on`).
    pub passed: bool,
    pub findings: Vec<Finding>,
}

impl Findings {
    /// `findings`: those of `all` (the fleet's, or `service`'s) at or above
    /// `min_severity` and of `kind`.
    pub fn listing(
        all: Vec<Finding>,
        min_severity: Option<Severity>,
        kind: Option<Kind>,
        service: Option<String>,
    ) -> Self {
        let findings = filter(all, min_severity, kind);
        Findings {
            schema_version: SCHEMA_VERSION,
            min_severity,
            kind,
            service,
            fail_on: None,
            passed: parity_of(&findings),
            findings,
        }
    }

    /// `check`: those of `all` at or above `fail_on`.
    pub fn check(all: Vec<Finding>, fail_on: Severity) -> Self {
        Findings {
            fail_on: Some(fail_on),
            ..Findings::listing(all, Some(fail_on), None, None)
        }
    }

    /// Drift when a finding listed counts.
    pub fn outcome(&self) -> Outcome {
        Outcome::judged(self.passed)
    }
}

/// Keeps findings at or above `severity` and of `kind`. A severity this CLI
/// does not know is at or above none, and a kind it does not know is none
/// of those `--kind` takes: such findings are kept only without the filter.
fn filter(findings: Vec<Finding>, severity: Option<Severity>, kind: Option<Kind>) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| {
            severity.is_none_or(|min| f.severity.known().is_some_and(|s| s >= min))
                && kind.is_none_or(|k| f.kind.known() == Some(k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use envparity_proto::v1;
    use v1::FindingState::{Active, Pending};

    use super::super::finding::tests::{finding, wire_finding};
    use super::*;

    fn fleet() -> Vec<Finding> {
        vec![
            finding(Kind::ImageDigest, Severity::Critical, Active),
            finding(Kind::EnvValue, Severity::Warning, Pending),
            finding(Kind::Kernel, Severity::Info, Active),
            // From a newer aggregator: a kind and a severity this CLI does
            // not know.
            Finding::from_proto(&wire_finding(999, v1::Severity::Unspecified, Active)),
        ]
    }

    fn kinds(f: &Findings) -> Vec<&str> {
        f.findings.iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn filters_take_typed_values_and_keep_unknown_ones_only_unfiltered() {
        let all = Findings::listing(fleet(), None, None, None);
        assert_eq!(
            kinds(&all),
            ["image_digest", "env_value", "kernel", "unspecified"]
        );
        assert_eq!(all.outcome(), Outcome::Drift);
        let warnings = Findings::listing(fleet(), Some(Severity::Warning), None, None);
        assert_eq!(kinds(&warnings), ["image_digest", "env_value"]);
        let kernel = Findings::listing(fleet(), None, Some(Kind::Kernel), None);
        assert_eq!(kinds(&kernel), ["kernel"]);
        assert_eq!(kernel.outcome(), Outcome::Drift);
        let pending = Findings::listing(fleet(), None, Some(Kind::EnvValue), None);
        assert!(pending.passed);
        assert_eq!(pending.outcome(), Outcome::Parity);
    }

    #[test]
    fn a_check_fails_only_on_findings_that_count_at_or_above_its_level() {
        let critical = Findings::check(fleet(), Severity::Critical);
        assert_eq!(critical.fail_on, Some(Severity::Critical));
        assert_eq!(critical.min_severity, Some(Severity::Critical));
        assert_eq!(critical.outcome(), Outcome::Drift);
        let calm = Findings::check(
            vec![
                finding(Kind::ImageDigest, Severity::Critical, Pending),
                finding(Kind::Kernel, Severity::Info, Active),
            ],
            Severity::Warning,
        );
        assert_eq!(kinds(&calm), ["image_digest"]);
        assert!(calm.passed);
        assert_eq!(calm.outcome(), Outcome::Parity);
    }

    #[test]
    fn filters_serialize_by_name_or_null() {
        let check = serde_json::to_value(Findings::check(vec![], Severity::Warning)).unwrap();
        assert_eq!(check["min_severity"], "warning");
        assert_eq!(check["fail_on"], "warning");
        assert_eq!(check["kind"], serde_json::Value::Null);
        let listing = serde_json::to_value(Findings::listing(
            vec![],
            None,
            Some(Kind::EnvMissingKey),
            Some("shop".into()),
        ))
        .unwrap();
        assert_eq!(listing["min_severity"], serde_json::Value::Null);
        assert_eq!(listing["kind"], "env_missing_key");
        assert_eq!(listing["fail_on"], serde_json::Value::Null);
        assert_eq!(listing["service"], "shop");
    }
}
