//! Domain → wire conversions for query answers.

use envparity_proto::time::{from_unix_millis, to_timestamp};
use envparity_proto::v1;

use crate::alert::Alert;
use crate::fleet::{HeldHost, Refusal};
use crate::parity::explain::{ExplainSide, Explanation};
use crate::parity::{Finding, Kind, Severity, Side, State, Tally};
use crate::store::{Change, FindingRecord};

/// A finding on the wire.
pub fn finding(f: &Finding) -> v1::Finding {
    v1::Finding {
        kind: kind(f.kind) as i32,
        severity: severity(f.severity) as i32,
        service: f.service.clone(),
        key: f.key.clone(),
        a: Some(side(&f.a)),
        b: f.b.as_ref().map(side),
        basis: f.basis.as_str().to_owned(),
        summary: f.summary.clone(),
        host: f.host.clone(),
        state: state(f.status.state) as i32,
        first_seen: f.status.first_seen.map(to_timestamp),
        last_seen: f.status.last_seen.map(to_timestamp),
        waiver: f.status.waiver.as_ref().map(|w| v1::WaiverNote {
            reason: w.reason.clone(),
            owner: w.owner.clone(),
            expires: Some(to_timestamp(w.expires)),
            expired: w.expired,
        }),
        id: f.identity().id(),
    }
}

fn state(s: State) -> v1::FindingState {
    match s {
        State::Pending => v1::FindingState::Pending,
        State::Active => v1::FindingState::Active,
        State::Waived => v1::FindingState::Waived,
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

/// A kind on the wire.
pub fn kind(k: Kind) -> v1::FindingKind {
    match k {
        Kind::ImageDigest => v1::FindingKind::ImageDigest,
        Kind::SameTagDifferentDigest => v1::FindingKind::SameTagDifferentDigest,
        Kind::UnpinnedImage => v1::FindingKind::UnpinnedImage,
        Kind::MissingService => v1::FindingKind::MissingService,
        Kind::ReplicaDrift => v1::FindingKind::ReplicaDrift,
        Kind::EnvMissingKey => v1::FindingKind::EnvMissingKey,
        Kind::EnvExtraKey => v1::FindingKind::EnvExtraKey,
        Kind::EnvValue => v1::FindingKind::EnvValue,
        Kind::RuntimeConfig => v1::FindingKind::RuntimeConfig,
        Kind::Kernel => v1::FindingKind::Kernel,
        Kind::Os => v1::FindingKind::Os,
        Kind::EngineVersion => v1::FindingKind::EngineVersion,
        Kind::Cgroup => v1::FindingKind::Cgroup,
        Kind::StorageDriver => v1::FindingKind::StorageDriver,
        Kind::Architecture => v1::FindingKind::Architecture,
        Kind::StaleHost => v1::FindingKind::StaleHost,
        Kind::KeyMismatch => v1::FindingKind::KeyMismatch,
        Kind::ContainerUnreportable => v1::FindingKind::ContainerUnreportable,
        Kind::UnmanagedContainer => v1::FindingKind::UnmanagedContainer,
        Kind::ConfigFileMissing => v1::FindingKind::ConfigFileMissing,
        Kind::ConfigFileExtra => v1::FindingKind::ConfigFileExtra,
        Kind::ConfigKeyMissing => v1::FindingKind::ConfigKeyMissing,
        Kind::ConfigKeyExtra => v1::FindingKind::ConfigKeyExtra,
        Kind::ConfigValue => v1::FindingKind::ConfigValue,
    }
}

/// A severity on the wire.
pub fn severity(s: Severity) -> v1::Severity {
    match s {
        Severity::Info => v1::Severity::Info,
        Severity::Warning => v1::Severity::Warning,
        Severity::Critical => v1::Severity::Critical,
    }
}

/// A firing alert on the wire.
pub fn alert(a: &Alert) -> v1::Alert {
    v1::Alert {
        id: a.id.clone(),
        kind: kind(a.kind).into(),
        severity: severity(a.severity).into(),
        service: a.service.clone(),
        env_a: a.env_a.clone(),
        env_b: a.env_b.clone(),
        host: a.host.clone(),
        key: a.key.clone(),
        summary: a.summary.clone(),
        first_seen: Some(to_timestamp(from_unix_millis(a.first_seen_ms))),
        fired_at: Some(to_timestamp(from_unix_millis(a.fired_at_ms))),
    }
}

/// A history event on the wire.
pub fn history_event(c: &Change) -> v1::HistoryEvent {
    v1::HistoryEvent {
        observed_at: Some(to_timestamp(from_unix_millis(c.observed_at_ms))),
        received_at: Some(to_timestamp(from_unix_millis(c.received_at_ms))),
        environment: c.environment.clone(),
        host_id: c.host_id.clone(),
        container: c.container.clone(),
        change: c.what.as_str().to_owned(),
        old_image: c.old_image.clone(),
        new_image: c.new_image.clone(),
    }
}

/// A stored finding's lifetime on the wire.
pub fn finding_record(r: &FindingRecord) -> v1::FindingRecord {
    let at = |ms: i64| Some(to_timestamp(from_unix_millis(ms)));
    v1::FindingRecord {
        id: r.id.clone(),
        kind: r
            .kind
            .parse::<Kind>()
            .map_or(v1::FindingKind::Unspecified, kind) as i32,
        severity: r
            .severity
            .parse::<Severity>()
            .map_or(v1::Severity::Unspecified, severity) as i32,
        environments: r.environments.clone(),
        key: r.key.clone(),
        host: r.host.clone(),
        summary: r.summary.clone(),
        first_seen: at(r.first_seen_ms),
        last_seen: at(r.last_seen_ms),
        resolved_at: r.resolved_ms.and_then(at),
        service: r.service.clone(),
    }
}

/// A host summary on the wire.
pub fn host_summary(
    h: &HeldHost,
    state: v1::HostState,
    refusal: Option<&Refusal>,
) -> v1::HostSummary {
    let s = &h.snapshot;
    v1::HostSummary {
        refused_reason: refusal.map(|r| r.reason.clone()).unwrap_or_default(),
        refused_at: refusal.map(|r| to_timestamp(r.at)),
        containers_dropped: s.containers_dropped,
        unmanaged: unmanaged(h),
        host_id: s.host_id.clone(),
        environment: s.environment.clone(),
        labels: s.labels.clone(),
        host: s.host.clone(),
        engine: s.engine.clone(),
        state: state as i32,
        last_seen: Some(to_timestamp(h.last_seen)),
        container_count: u32::try_from(h.containers.len()).unwrap_or(u32::MAX),
        agent_version: s
            .agent
            .as_ref()
            .map(|a| a.version.clone())
            .unwrap_or_default(),
        snapshot_received_at: Some(to_timestamp(h.received_at)),
    }
}

/// The names of a host's unmanaged containers, sorted.
fn unmanaged(h: &HeldHost) -> Vec<String> {
    let mut names: Vec<String> = h
        .containers
        .iter()
        .filter(|c| c.content.unmanaged)
        .map(|c| c.name.to_string())
        .collect();
    names.sort_unstable();
    names
}

/// A tally on the wire.
pub fn tally(t: &Tally) -> v1::FindingTally {
    v1::FindingTally {
        critical: t.critical,
        warning: t.warning,
        info: t.info,
        pending: t.pending,
        waived: t.waived,
    }
}

/// An explanation on the wire.
pub fn explanation(e: &Explanation) -> v1::ExplainResponse {
    let side = |s: &ExplainSide| v1::ExplainSide {
        environment: s.environment.clone(),
        images: s
            .images
            .iter()
            .map(|i| v1::ExplainImage {
                reference: i.reference.clone(),
                digest: i.digest.clone(),
                image_id: i.image_id.clone(),
                architecture: i.architecture.clone(),
                created: i.created.clone(),
                revision: i.revision.clone(),
                version: i.version.clone(),
                created_label: i.created_label.clone(),
                base_digest: i.base_digest.clone(),
                source: i.source.clone(),
                layer_count: count(i.layers.len()),
                hosts: i.hosts.clone(),
            })
            .collect(),
    };
    v1::ExplainResponse {
        service: e.service.clone(),
        a: Some(side(&e.a)),
        b: Some(side(&e.b)),
        same_content: e.same_content,
        shared_layers: e.shared.map(|s| v1::SharedLayers {
            shared: count(s.shared),
            a_total: count(s.a_total),
            b_total: count(s.b_total),
        }),
        // The parity engine compares images only; the query adds the
        // replicas' configuration files.
        replicas: Vec::new(),
    }
}

/// `n` on the wire (saturating: no listing holds 4 billion items).
pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
    fn every_state_has_the_wire_name_of_its_domain_name() {
        for s in [State::Pending, State::Active, State::Waived] {
            let wire = state(s).as_str_name().to_ascii_lowercase();
            assert_eq!(wire, format!("finding_state_{}", s.as_str()));
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
