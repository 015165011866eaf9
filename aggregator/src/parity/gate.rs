//! The promotion gate: may this digest go to that environment?
//!
//! A promotion is allowed only when the candidate is exactly what every
//! replica of the previous stage runs (and has run for the policy's minimum
//! time), every one of those replicas is current, and no blocking finding
//! stands. Findings that the promotion itself resolves — the digest drift
//! between the two stages, the rebuilt tag, the unpinned or mid-rollout image
//! in the target, the service not yet running there — do not block it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::finding::{Finding, Kind};
use super::policy::Policy;

/// One replica of the service in the previous stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReplica {
    /// The host.
    pub host: String,
    /// Its registry digest, empty when unknown: how it is named.
    pub digest: String,
    /// Every registry digest of its image, sorted
    /// ([`super::digest::registry_digests`]): it runs a candidate that is
    /// any of them (Podman lists a multi-arch image's platform digest beside
    /// the index a Docker host lists alone).
    pub digests: Vec<String>,
    /// Its local image id.
    pub image_id: String,
    /// False when the host is stale or cannot read its engine.
    pub current: bool,
    /// Since when it runs what it runs (aggregator's clock), if known.
    pub since: Option<SystemTime>,
}

impl StageReplica {
    fn runs(&self, candidate: &str) -> bool {
        self.digest == candidate
            || self.digests.iter().any(|d| d == candidate)
            || self.image_id == candidate
    }

    fn identity(&self) -> &str {
        if self.digest.is_empty() {
            &self.image_id
        } else {
            &self.digest
        }
    }
}

/// What the gate decides on.
#[derive(Debug, Clone)]
pub struct GateInput<'a> {
    /// The service.
    pub service: &'a str,
    /// The target environment.
    pub to: &'a str,
    /// Its previous stage.
    pub previous: &'a str,
    /// The digest (or image id) about to be promoted.
    pub candidate: &'a str,
    /// The service's replicas in the previous stage.
    pub replicas: &'a [StageReplica],
    /// The judged findings of the service.
    pub findings: &'a [Finding],
    /// The policy.
    pub policy: &'a Policy,
    /// Now.
    pub now: SystemTime,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every reason the promotion is refused; empty when allowed.
    pub reasons: Vec<String>,
    /// Since when every replica of the previous stage runs the candidate.
    pub running_since: Option<SystemTime>,
    /// The findings that block it.
    pub blocking: Vec<Finding>,
}

impl Verdict {
    /// Whether the promotion may proceed.
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Whether the promotion from `previous` to `to` itself resolves `f`.
fn resolved_by_promotion(f: &Finding, previous: &str, to: &str) -> bool {
    let envs: BTreeSet<&str> = f.environments().collect();
    let pair: BTreeSet<&str> = [previous, to].into_iter().collect();
    match f.kind {
        Kind::ImageDigest | Kind::SameTagDifferentDigest => envs == pair,
        Kind::MissingService => {
            envs == pair
                && std::iter::once(&f.a)
                    .chain(&f.b)
                    .any(|s| s.environment == to && s.hosts.is_empty())
        }
        Kind::UnpinnedImage => f.a.environment == to,
        Kind::ReplicaDrift => f.a.environment == to && f.key == "image",
        _ => false,
    }
}

/// Decides.
pub fn decide(input: &GateInput<'_>) -> Verdict {
    let GateInput {
        service,
        to,
        previous,
        candidate,
        replicas,
        findings,
        policy,
        now,
    } = input;
    let mut reasons = Vec::new();
    if replicas.is_empty() {
        reasons.push(format!(
            "{service} does not run in {previous}, the stage before {to}: nothing was tested there"
        ));
    }
    let others: BTreeSet<&str> = replicas
        .iter()
        .filter(|r| !r.runs(candidate))
        .map(StageReplica::identity)
        .collect();
    if !others.is_empty() {
        let hosts: Vec<&str> = replicas
            .iter()
            .filter(|r| !r.runs(candidate))
            .map(|r| r.host.as_str())
            .collect();
        reasons.push(format!(
            "{previous} runs {} on {}, not the candidate {candidate}",
            others.into_iter().collect::<Vec<_>>().join(", "),
            hosts.join(", ")
        ));
    }
    for r in replicas.iter().filter(|r| !r.current) {
        reasons.push(format!(
            "{previous} host {} is not current (stale or engine unreachable): what it runs is not known",
            r.host
        ));
    }
    let all_run = !replicas.is_empty() && replicas.iter().all(|r| r.runs(candidate));
    let running_since = if all_run {
        replicas
            .iter()
            .map(|r| r.since)
            .try_fold(SystemTime::UNIX_EPOCH, |acc, since| {
                since.map(|s| acc.max(s))
            })
    } else {
        None
    };
    let min = policy.gate.min_time_in_previous;
    if all_run && !min.is_zero() {
        let ran = running_since
            .and_then(|s| now.duration_since(s).ok())
            .unwrap_or(Duration::ZERO);
        if ran < min {
            reasons.push(format!(
                "the candidate has run in {previous} for {}, less than the {} the policy asks for",
                humantime::format_duration(Duration::from_secs(ran.as_secs())),
                humantime::format_duration(min)
            ));
        }
    }
    let blocking: Vec<Finding> = findings
        .iter()
        .filter(|f| f.service == *service && f.counts())
        .filter(|f| f.severity >= policy.gate.block_on)
        .filter(|f| f.environments().any(|e| e == *previous || e == *to))
        .filter(|f| !resolved_by_promotion(f, previous, to))
        .cloned()
        .collect();
    for f in &blocking {
        reasons.push(format!("blocking {} finding: {}", f.severity, f.summary));
    }
    Verdict {
        reasons,
        running_since,
        blocking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{Basis, Severity, Side, State, Status};

    const NOW_S: u64 = 1_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn replica(host: &str, digest: &str, since: u64) -> StageReplica {
        StageReplica {
            host: host.into(),
            digest: digest.into(),
            digests: vec![digest.into()],
            image_id: format!("sha256:id-{digest}"),
            current: true,
            since: Some(at(since)),
        }
    }

    fn finding(kind: Kind, severity: Severity, a: &str, b: Option<&str>, state: State) -> Finding {
        let side = |e: &str| Side {
            environment: e.into(),
            hosts: vec![format!("{e}-1")],
            ..Side::default()
        };
        Finding {
            kind,
            service: "api".into(),
            a: side(a),
            b: b.map(side),
            key: "K".into(),
            host: String::new(),
            severity,
            basis: Basis::Fingerprint,
            summary: format!("{kind} between {a} and {b:?}"),
            status: Status {
                state,
                ..Status::default()
            },
        }
    }

    fn decide_with(
        policy: &Policy,
        replicas: &[StageReplica],
        findings: &[Finding],
        candidate: &str,
    ) -> Verdict {
        decide(&GateInput {
            service: "api",
            to: "production",
            previous: "staging",
            candidate,
            replicas,
            findings,
            policy,
            now: at(NOW_S),
        })
    }

    #[test]
    fn the_digest_staging_runs_is_allowed_even_while_production_differs() {
        let replicas = [
            replica(
                "s1",
                "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                10,
            ),
            replica(
                "s2",
                "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                20,
            ),
        ];
        let findings = [
            finding(
                Kind::ImageDigest,
                Severity::Critical,
                "staging",
                Some("production"),
                State::Active,
            ),
            finding(
                Kind::UnpinnedImage,
                Severity::Warning,
                "production",
                None,
                State::Active,
            ),
        ];
        let v = decide_with(
            &Policy::default(),
            &replicas,
            &findings,
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert!(v.allowed(), "{:?}", v.reasons);
        assert_eq!(v.running_since, Some(at(20)));
    }

    /// A staging replica on Podman names a multi-arch image by its
    /// platform digest and lists the index beside it; the candidate is the
    /// index a Docker replica lists alone: both run it.
    #[test]
    fn a_replica_runs_a_candidate_that_is_any_of_its_digests() {
        let index = format!("sha256:{}", "1".repeat(64));
        let platform = format!("sha256:{}", "2".repeat(64));
        let mut podman = replica("s1", &platform, 10);
        podman.digests = vec![index.clone(), platform.clone()];
        let docker = replica("s2", &index, 20);
        let v = decide_with(&Policy::default(), &[podman.clone(), docker], &[], &index);
        assert!(v.allowed(), "{:?}", v.reasons);
        assert_eq!(v.running_since, Some(at(20)));
        // A digest none of its digests is: refused.
        podman.digests = vec![platform.clone()];
        let other = format!("sha256:{}", "3".repeat(64));
        let v = decide_with(&Policy::default(), &[podman], &[], &other);
        assert!(!v.allowed());
    }

    #[test]
    fn a_digest_staging_never_ran_is_refused_naming_what_it_runs() {
        let replicas = [replica(
            "s1",
            "sha256:7465737465647465737465647465737465647465737465647465737465647465",
            10,
        )];
        let v = decide_with(
            &Policy::default(),
            &replicas,
            &[],
            "sha256:756e746573746564756e746573746564756e746573746564756e746573746564",
        );
        assert!(!v.allowed());
        assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
        assert!(
            v.reasons[0].contains(
                "sha256:7465737465647465737465647465737465647465737465647465737465647465 on s1"
            ),
            "{:?}",
            v.reasons
        );
        assert_eq!(v.running_since, None);
    }

    #[test]
    fn a_half_rolled_out_staging_is_refused() {
        let replicas = [
            replica(
                "s1",
                "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
                10,
            ),
            replica(
                "s2",
                "sha256:6f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c",
                10,
            ),
        ];
        let v = decide_with(
            &Policy::default(),
            &replicas,
            &[],
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert!(!v.allowed());
        assert!(
            v.reasons[0].contains(
                "sha256:6f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c646f6c on s2"
            ),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn the_image_id_is_accepted_when_there_is_no_registry_digest() {
        let mut r = replica("s1", "", 10);
        r.image_id =
            "sha256:6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f".into();
        let v = decide_with(
            &Policy::default(),
            &[r],
            &[],
            "sha256:6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f63616c6c6f",
        );
        assert!(v.allowed(), "{:?}", v.reasons);
    }

    #[test]
    fn too_little_time_in_staging_is_refused_and_enough_is_allowed() {
        let mut policy = Policy::default();
        policy.gate.min_time_in_previous = Duration::from_secs(600);
        let fresh = [replica(
            "s1",
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
            NOW_S - 60,
        )];
        let v = decide_with(
            &policy,
            &fresh,
            &[],
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert_eq!(v.reasons.len(), 1);
        assert!(
            v.reasons[0].contains("for 1m, less than the 10m"),
            "{:?}",
            v.reasons
        );
        let old = [replica(
            "s1",
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
            NOW_S - 601,
        )];
        assert!(
            decide_with(
                &policy,
                &old,
                &[],
                "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65"
            )
            .allowed()
        );
    }

    #[test]
    fn a_stale_staging_host_and_a_missing_service_are_refused() {
        let mut r = replica(
            "s1",
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
            10,
        );
        r.current = false;
        let v = decide_with(
            &Policy::default(),
            &[r],
            &[],
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert!(
            v.reasons.iter().any(|x| x.contains("s1 is not current")),
            "{:?}",
            v.reasons
        );
        let v = decide_with(
            &Policy::default(),
            &[],
            &[],
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert!(
            v.reasons[0].contains("does not run in staging"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn only_active_findings_at_the_blocking_severity_block() {
        let replicas = [replica(
            "s1",
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
            10,
        )];
        let blocking = finding(
            Kind::EnvValue,
            Severity::Critical,
            "staging",
            Some("production"),
            State::Active,
        );
        let findings = [
            blocking.clone(),
            finding(
                Kind::EnvValue,
                Severity::Critical,
                "staging",
                Some("production"),
                State::Pending,
            ),
            finding(
                Kind::EnvValue,
                Severity::Critical,
                "staging",
                Some("production"),
                State::Waived,
            ),
            finding(
                Kind::EnvValue,
                Severity::Warning,
                "staging",
                Some("production"),
                State::Active,
            ),
            finding(
                Kind::EnvValue,
                Severity::Critical,
                "dev",
                Some("qa"),
                State::Active,
            ),
        ];
        let v = decide_with(
            &Policy::default(),
            &replicas,
            &findings,
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert_eq!(v.blocking, vec![blocking]);
        let mut policy = Policy::default();
        policy.gate.block_on = Severity::Warning;
        let v = decide_with(
            &policy,
            &replicas,
            &findings,
            "sha256:6e65776e65776e65776e65776e65776e65776e65776e65776e65776e65776e65",
        );
        assert_eq!(v.blocking.len(), 2);
    }
}
