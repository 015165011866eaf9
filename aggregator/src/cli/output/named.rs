//! How the answers spell an enum value: by its stable name, whether this CLI
//! knows the value ([`Named::Known`]) or only its wire name ([`Named::Other`]).

use std::fmt;

use envparity_proto::v1;
use serde::{Serialize, Serializer};

use crate::parity::{Kind, Severity, State};

/// A value with a stable snake_case name: what JSON, YAML and tables show.
pub trait Name: Copy {
    /// The stable name (`image_digest`, `critical`, `active`, `fresh`, …).
    fn name(self) -> &'static str;
}

impl Name for Kind {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Name for Severity {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Name for State {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// The fleet keeps a host's liveness as the wire's enum; these are its
/// names in docs/json-output.md.
impl Name for v1::HostState {
    fn name(self) -> &'static str {
        match self {
            v1::HostState::Unspecified => "unspecified",
            v1::HostState::Fresh => "fresh",
            v1::HostState::Stale => "stale",
            v1::HostState::EngineUnreachable => "engine_unreachable",
            v1::HostState::Refused => "refused",
        }
    }
}

/// An enum value read from the wire: one this CLI knows, or the name of one
/// it does not.
///
/// An answer from a newer aggregator may hold a value this CLI was built
/// without (a new finding kind, say), and any aggregator may send
/// `UNSPECIFIED`. Neither fails the answer: the row is kept and shown by
/// the wire's name, and every judgement treats it as the least it can be
/// (see [`super::Finding::counts`], [`super::Tally::of`] and the
/// `--severity`/`--kind` filters). prost reads a number its contract does
/// not name as `UNSPECIFIED`, so a newer aggregator's new value is shown as
/// `unspecified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named<T> {
    /// A value this CLI knows.
    Known(T),
    /// A value it does not know, by its wire name in snake_case without the
    /// enum's prefix (`FINDING_KIND_UNSPECIFIED` → `unspecified`).
    Other(String),
}

impl<T: Name> Named<T> {
    /// The value, when this CLI knows it.
    pub fn known(&self) -> Option<T> {
        match self {
            Named::Known(t) => Some(*t),
            Named::Other(_) => None,
        }
    }

    /// The name shown and serialized.
    pub fn as_str(&self) -> &str {
        match self {
            Named::Known(t) => t.name(),
            Named::Other(name) => name,
        }
    }
}

impl<T: Name> From<T> for Named<T> {
    fn from(t: T) -> Self {
        Named::Known(t)
    }
}

impl<T: Name> fmt::Display for Named<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: Name> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Serializes a domain value by its [`Name`] (for `serialize_with`: the
/// parity engine stays free of serde).
pub(super) fn by_name<T: Name, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.name())
}

/// [`by_name`] for an optional value: `null` when absent.
pub(super) fn by_optional_name<T: Name, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_some(v.name()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_serializes_by_its_name_known_or_not() {
        let known: Named<Kind> = Kind::EnvMissingKey.into();
        let other: Named<Kind> = Named::Other("unspecified".to_owned());
        assert_eq!(
            serde_json::to_value([&known, &other]).unwrap(),
            serde_json::json!(["env_missing_key", "unspecified"])
        );
        assert_eq!(known.to_string(), "env_missing_key");
        assert_eq!(known.known(), Some(Kind::EnvMissingKey));
        assert_eq!(other.known(), None);
        assert_eq!(other.as_str(), "unspecified");
    }

    #[test]
    fn host_state_names_are_those_of_the_wire() {
        for state in [
            v1::HostState::Unspecified,
            v1::HostState::Fresh,
            v1::HostState::Stale,
            v1::HostState::EngineUnreachable,
            v1::HostState::Refused,
        ] {
            assert_eq!(
                state.name(),
                state
                    .as_str_name()
                    .strip_prefix("HOST_STATE_")
                    .unwrap()
                    .to_ascii_lowercase()
            );
        }
    }
}
