//! Domain → wire conversions for query answers.

use envparity_proto::time::to_timestamp;
use envparity_proto::v1;

use crate::parity::{Finding, Kind, Severity, Side};
use crate::store::StoredHost;

/// A finding on the wire.
pub fn finding(f: &Finding) -> v1::Finding {
    v1::Finding {
        kind: kind(f.kind) as i32,
        severity: severity(f.severity) as i32,
        service: f.service.clone(),
        key: f.key.clone(),
        a: Some(side(&f.a)),
        b: Some(side(&f.b)),
        basis: f.basis.as_str().to_owned(),
        summary: f.summary.clone(),
    }
}

fn side(s: &Side) -> v1::FindingSide {
    v1::FindingSide {
        environment: s.environment.clone(),
        hosts: s.hosts.clone(),
        values: s.values.clone(),
        stale_hosts: s.stale_hosts.clone(),
    }
}

fn kind(k: Kind) -> v1::FindingKind {
    match k {
        Kind::ImageDigest => v1::FindingKind::ImageDigest,
        Kind::Kernel => v1::FindingKind::Kernel,
        Kind::EnvMissingKey => v1::FindingKind::EnvMissingKey,
        Kind::EnvExtraKey => v1::FindingKind::EnvExtraKey,
        Kind::EnvValue => v1::FindingKind::EnvValue,
    }
}

fn severity(s: Severity) -> v1::Severity {
    match s {
        Severity::Info => v1::Severity::Info,
        Severity::Warning => v1::Severity::Warning,
        Severity::Critical => v1::Severity::Critical,
    }
}

/// A host summary on the wire.
pub fn host_summary(h: &StoredHost, state: v1::HostState) -> v1::HostSummary {
    let s = &h.snapshot;
    v1::HostSummary {
        host_id: s.host_id.clone(),
        environment: s.environment.clone(),
        labels: s.labels.clone(),
        host: s.host.clone(),
        engine: s.engine.clone(),
        state: state as i32,
        last_seen: Some(to_timestamp(h.last_seen)),
        container_count: u32::try_from(s.containers.len()).unwrap_or(u32::MAX),
        agent_version: s
            .agent
            .as_ref()
            .map(|a| a.version.clone())
            .unwrap_or_default(),
        snapshot_received_at: Some(to_timestamp(h.received_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_the_wire_name_of_its_domain_name() {
        for k in Kind::ALL {
            let wire = kind(k).as_str_name().to_ascii_lowercase();
            assert_eq!(wire, format!("finding_kind_{}", k.as_str()));
        }
    }

    #[test]
    fn every_severity_has_the_wire_name_of_its_domain_name() {
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            let wire = severity(s).as_str_name().to_ascii_lowercase();
            assert_eq!(wire, format!("severity_{}", s.as_str()));
        }
    }
}
