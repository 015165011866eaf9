//! Telling explicit env apart from env baked into the image.
//!
//! Docker merges an image's `Config.Env` into every container's env, so a
//! container's env alone cannot say which entries an operator chose. Parity is
//! about operator choices: an image upgrade that changes a baked default shows
//! up as an image difference, not as configuration drift. Hence the split.

use envparity_proto::v1::EnvVar;

use crate::clear_env::ClearEnvPolicy;
use crate::fingerprint::FleetKey;

/// One env entry, split into name and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvEntry {
    /// The variable name.
    pub name: String,
    /// The value (empty for an entry without `=`).
    pub value: String,
}

impl EnvEntry {
    /// Parses a Docker env entry `NAME=value`, splitting at the first `=`.
    /// An entry without `=` has an empty value.
    pub fn parse(entry: &str) -> Self {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// A container's env, split by origin. Both lists are sorted by name (then
/// value, so duplicates still order deterministically).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitEnv {
    /// Entries passed to the container that the image does not provide
    /// byte-for-byte: new variables and overridden values.
    pub explicit: Vec<EnvEntry>,
    /// The image's own `Config.Env` entries.
    pub image: Vec<EnvEntry>,
}

/// Splits a container's `Config.Env` against its image's `Config.Env`.
///
/// A container entry byte-identical to an image entry is the image's default
/// and not explicit; anything else (a new name, or a name whose value
/// differs from the image's) is explicit. Comparing whole entries, not names,
/// is what makes an override of a baked default count as explicit.
pub fn split_env(container_env: &[String], image_env: &[String]) -> SplitEnv {
    let mut explicit: Vec<EnvEntry> = container_env
        .iter()
        .filter(|entry| !image_env.contains(entry))
        .map(|entry| EnvEntry::parse(entry))
        .collect();
    let mut image: Vec<EnvEntry> = image_env.iter().map(|e| EnvEntry::parse(e)).collect();
    explicit.sort();
    image.sort();
    SplitEnv { explicit, image }
}

/// Turns entries into wire `EnvVar`s: every value fingerprinted under `key`,
/// and the value itself added only where `policy` allows it in clear.
pub fn protect(entries: &[EnvEntry], key: &FleetKey, policy: &ClearEnvPolicy) -> Vec<EnvVar> {
    entries
        .iter()
        .map(|e| EnvVar {
            name: e.name.clone(),
            fingerprint: key.fingerprint(&e.name, &e.value),
            value: policy.allows(&e.name, &e.value).then(|| e.value.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn names(entries: &[EnvEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn image_baked_entry_is_not_explicit() {
        let split = split_env(
            &strings(&["PATH=/usr/bin", "BAKED=1", "FOO=bar"]),
            &strings(&["PATH=/usr/bin", "BAKED=1"]),
        );
        assert_eq!(names(&split.explicit), ["FOO"]);
        assert_eq!(names(&split.image), ["BAKED", "PATH"]);
    }

    #[test]
    fn overridden_image_value_is_explicit() {
        let split = split_env(&strings(&["BAKED=2"]), &strings(&["BAKED=1"]));
        assert_eq!(split.explicit, [EnvEntry::parse("BAKED=2")]);
        assert_eq!(split.image, [EnvEntry::parse("BAKED=1")]);
    }

    #[test]
    fn entry_without_equals_has_empty_value() {
        assert_eq!(
            EnvEntry::parse("LONELY"),
            EnvEntry {
                name: "LONELY".into(),
                value: String::new()
            }
        );
        let split = split_env(&strings(&["LONELY"]), &[]);
        assert_eq!(split.explicit[0].value, "");
    }

    #[test]
    fn value_is_split_at_the_first_equals_only() {
        let e = EnvEntry::parse("OPTS=a=b=c");
        assert_eq!((e.name.as_str(), e.value.as_str()), ("OPTS", "a=b=c"));
    }

    #[test]
    fn both_lists_are_sorted_by_name() {
        let split = split_env(&strings(&["Z=1", "A=1", "M=1"]), &strings(&["Y=1", "B=1"]));
        assert_eq!(names(&split.explicit), ["A", "M", "Z"]);
        assert_eq!(names(&split.image), ["B", "Y"]);
    }

    #[test]
    fn protect_fingerprints_everything_and_discloses_only_allowed() {
        let key = FleetKey::from_bytes(*b"0123456789abcdef");
        let policy = ClearEnvPolicy::new(["LOG_LEVEL", "API_TOKEN"]);
        let entries = [
            EnvEntry::parse("API_TOKEN=s3cr3t"),
            EnvEntry::parse("LOG_LEVEL=debug"),
            EnvEntry::parse("OTHER=x"),
        ];
        let vars = protect(&entries, &key, &policy);
        assert_eq!(vars.len(), 3);
        assert_eq!(vars[0].value, None, "secret-looking name stays hidden");
        assert_eq!(vars[1].value.as_deref(), Some("debug"));
        assert_eq!(vars[2].value, None, "not allowlisted");
        assert_eq!(vars[0].fingerprint, key.fingerprint("API_TOKEN", "s3cr3t"));
    }

    fn env_list() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[A-D]{1,2}(=[a-c]{0,2})?", 0..8)
    }

    proptest! {
        /// Nothing is lost, invented or counted twice: the explicit entries
        /// plus the container entries byte-identical to an image entry are
        /// exactly the container env (as a multiset).
        #[test]
        fn explicit_and_image_covered_entries_make_up_the_container_env(
            container in env_list(),
            image in env_list(),
        ) {
            let split = split_env(&container, &image);
            let covered: Vec<EnvEntry> = container
                .iter()
                .filter(|e| image.contains(e))
                .map(|e| EnvEntry::parse(e))
                .collect();
            let mut union: Vec<EnvEntry> = split.explicit.iter().cloned().chain(covered).collect();
            union.sort();
            let mut all: Vec<EnvEntry> = container.iter().map(|e| EnvEntry::parse(e)).collect();
            all.sort();
            prop_assert_eq!(union, all);
        }
    }
}
