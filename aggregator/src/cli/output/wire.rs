//! The wire's enums read as the domain's: the counterpart, for the CLI, of
//! the domain → wire functions in `server::convert` (the CLI never imports
//! the server). One function per enum; a value the domain has no name for
//! becomes [`Named::Other`] with its wire name, and never fails an answer.

use envparity_proto::v1;

use super::Named;
use crate::parity::{Kind, Severity, State};

/// `FINDING_KIND_IMAGE_DIGEST` → `image_digest`.
fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

/// A finding kind from the wire.
pub fn kind(k: v1::FindingKind) -> Named<Kind> {
    let known = match k {
        v1::FindingKind::Unspecified => {
            return Named::Other(enum_name(k.as_str_name(), "FINDING_KIND_"));
        }
        v1::FindingKind::ImageDigest => Kind::ImageDigest,
        v1::FindingKind::SameTagDifferentDigest => Kind::SameTagDifferentDigest,
        v1::FindingKind::UnpinnedImage => Kind::UnpinnedImage,
        v1::FindingKind::MissingService => Kind::MissingService,
        v1::FindingKind::ReplicaDrift => Kind::ReplicaDrift,
        v1::FindingKind::EnvMissingKey => Kind::EnvMissingKey,
        v1::FindingKind::EnvExtraKey => Kind::EnvExtraKey,
        v1::FindingKind::EnvValue => Kind::EnvValue,
        v1::FindingKind::RuntimeConfig => Kind::RuntimeConfig,
        v1::FindingKind::Kernel => Kind::Kernel,
        v1::FindingKind::Os => Kind::Os,
        v1::FindingKind::EngineVersion => Kind::EngineVersion,
        v1::FindingKind::Cgroup => Kind::Cgroup,
        v1::FindingKind::StorageDriver => Kind::StorageDriver,
        v1::FindingKind::Architecture => Kind::Architecture,
        v1::FindingKind::StaleHost => Kind::StaleHost,
        v1::FindingKind::KeyMismatch => Kind::KeyMismatch,
        v1::FindingKind::ContainerUnreportable => Kind::ContainerUnreportable,
        v1::FindingKind::UnmanagedContainer => Kind::UnmanagedContainer,
        v1::FindingKind::ConfigFileMissing => Kind::ConfigFileMissing,
        v1::FindingKind::ConfigFileExtra => Kind::ConfigFileExtra,
        v1::FindingKind::ConfigKeyMissing => Kind::ConfigKeyMissing,
        v1::FindingKind::ConfigKeyExtra => Kind::ConfigKeyExtra,
        v1::FindingKind::ConfigValue => Kind::ConfigValue,
    };
    Named::Known(known)
}

/// A severity from the wire.
pub fn severity(s: v1::Severity) -> Named<Severity> {
    match s {
        v1::Severity::Unspecified => Named::Other(enum_name(s.as_str_name(), "SEVERITY_")),
        v1::Severity::Info => Named::Known(Severity::Info),
        v1::Severity::Warning => Named::Known(Severity::Warning),
        v1::Severity::Critical => Named::Known(Severity::Critical),
    }
}

/// A finding's state from the wire.
pub fn state(s: v1::FindingState) -> Named<State> {
    match s {
        v1::FindingState::Unspecified => Named::Other(enum_name(s.as_str_name(), "FINDING_STATE_")),
        v1::FindingState::Pending => Named::Known(State::Pending),
        v1::FindingState::Active => Named::Known(State::Active),
        v1::FindingState::Waived => Named::Known(State::Waived),
    }
}

/// A host's state from the wire (the fleet's own type is the wire's).
pub fn host_state(s: v1::HostState) -> Named<v1::HostState> {
    match s {
        v1::HostState::Unspecified => Named::Other(enum_name(s.as_str_name(), "HOST_STATE_")),
        known => Named::Known(known),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_are_snake_case_without_prefix() {
        assert_eq!(
            enum_name(
                v1::FindingKind::EnvMissingKey.as_str_name(),
                "FINDING_KIND_"
            ),
            "env_missing_key"
        );
        assert_eq!(
            enum_name(
                v1::HostState::EngineUnreachable.as_str_name(),
                "HOST_STATE_"
            ),
            "engine_unreachable"
        );
        assert_eq!(
            enum_name(v1::Severity::Critical.as_str_name(), "SEVERITY_"),
            "critical"
        );
    }

    /// Every wire value reads as the name the JSON spelled it by before it
    /// was typed (the wire name), and every domain value is read from one.
    #[test]
    fn every_wire_value_keeps_its_wire_name_and_reaches_the_domain() {
        let mut kinds = Vec::new();
        for wire in (0..).map_while(|n| v1::FindingKind::try_from(n).ok()) {
            let read = kind(wire);
            assert_eq!(
                read.as_str(),
                enum_name(wire.as_str_name(), "FINDING_KIND_")
            );
            kinds.extend(read.known());
        }
        let mut all = Kind::ALL;
        all.sort();
        kinds.sort();
        assert_eq!(kinds, all);
        let mut severities = Vec::new();
        for wire in (0..).map_while(|n| v1::Severity::try_from(n).ok()) {
            let read = severity(wire);
            assert_eq!(read.as_str(), enum_name(wire.as_str_name(), "SEVERITY_"));
            severities.extend(read.known());
        }
        assert_eq!(severities, Severity::ALL);
        let mut states = Vec::new();
        for wire in (0..).map_while(|n| v1::FindingState::try_from(n).ok()) {
            let read = state(wire);
            assert_eq!(
                read.as_str(),
                enum_name(wire.as_str_name(), "FINDING_STATE_")
            );
            states.extend(read.known());
        }
        assert_eq!(states, [State::Pending, State::Active, State::Waived]);
        for wire in (0..).map_while(|n| v1::HostState::try_from(n).ok()) {
            let read = host_state(wire);
            assert_eq!(read.as_str(), enum_name(wire.as_str_name(), "HOST_STATE_"));
        }
    }

    #[test]
    fn unspecified_values_are_kept_by_their_wire_name() {
        assert_eq!(
            kind(v1::FindingKind::Unspecified),
            Named::Other("unspecified".to_owned())
        );
        assert_eq!(
            severity(v1::Severity::Unspecified),
            Named::Other("unspecified".to_owned())
        );
        assert_eq!(
            state(v1::FindingState::Unspecified),
            Named::Other("unspecified".to_owned())
        );
        assert_eq!(
            host_state(v1::HostState::Unspecified),
            Named::Other("unspecified".to_owned())
        );
    }
}
