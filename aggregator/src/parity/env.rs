//! Explicit-env comparison between two sides of a service.
//!
//! Only *explicit* env is compared: what was passed to the container, not what
//! the image bakes in (the agent reports those separately, and image content
//! is already covered by the digest comparison). Values are compared by their
//! keyed fingerprints, which are only comparable when made with the same fleet
//! key; allowlisted values that the agent sent in clear are shown in clear.

use std::collections::{BTreeMap, BTreeSet};

use envparity_proto::v1::Container;

use super::finding::Basis;

/// How many hex characters of a fingerprint a finding shows. 64 bits: enough
/// to tell values apart by eye; comparisons always use the full fingerprint.
const SHOWN_FINGERPRINT_HEX: usize = 16;

/// Everything one side says about one env key (or configuration file key,
/// `evaluate/config_files.rs`: the same fingerprints, compared the same way).
#[derive(Debug)]
pub(super) struct KeyValues {
    fingerprints: BTreeSet<String>,
    clear: BTreeSet<String>,
    /// Whether every occurrence came with its clear value.
    all_clear: bool,
    key_ids: BTreeSet<String>,
}

impl Default for KeyValues {
    fn default() -> Self {
        Self {
            fingerprints: BTreeSet::new(),
            clear: BTreeSet::new(),
            all_clear: true,
            key_ids: BTreeSet::new(),
        }
    }
}

impl KeyValues {
    /// One occurrence: its fingerprint, its clear value if sent, and the
    /// fleet key id that made the fingerprint.
    pub(super) fn add(&mut self, fingerprint: &str, clear: Option<&str>, key_id: &str) {
        self.fingerprints.insert(fingerprint.to_owned());
        self.key_ids.insert(key_id.to_owned());
        match clear {
            Some(v) => {
                self.clear.insert(v.to_owned());
            }
            None => self.all_clear = false,
        }
    }
}

/// The explicit env of every replica of a service on one side, by key.
pub(super) type EnvSide = BTreeMap<String, KeyValues>;

/// Folds the explicit env of replicas (each with its snapshot's key id).
pub(super) fn collect<'a>(replicas: impl IntoIterator<Item = (&'a Container, &'a str)>) -> EnvSide {
    let mut side = EnvSide::new();
    for (container, key_id) in replicas {
        for var in &container.explicit_env {
            side.entry(var.name.clone()).or_default().add(
                &var.fingerprint,
                var.value.as_deref(),
                key_id,
            );
        }
    }
    side
}

/// The outcome of comparing one key present on both sides.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ValueVerdict {
    /// Same values.
    Equal,
    /// Different values; the shown values of each side and the basis.
    Differs {
        a: Vec<String>,
        b: Vec<String>,
        basis: Basis,
    },
    /// Not comparable: fingerprints made with different fleet keys and no
    /// clear values on both sides (a key rotation in progress).
    Incomparable,
}

/// Compares the values of a key present on both sides.
pub(super) fn compare_values(a: &KeyValues, b: &KeyValues) -> ValueVerdict {
    let one_key = a.key_ids.len() == 1 && a.key_ids == b.key_ids;
    let both_clear = a.all_clear && b.all_clear;
    if both_clear {
        return if a.clear == b.clear {
            ValueVerdict::Equal
        } else {
            ValueVerdict::Differs {
                a: a.clear.iter().cloned().collect(),
                b: b.clear.iter().cloned().collect(),
                basis: Basis::ClearValue,
            }
        };
    }
    if !one_key {
        return ValueVerdict::Incomparable;
    }
    if a.fingerprints == b.fingerprints {
        ValueVerdict::Equal
    } else {
        ValueVerdict::Differs {
            a: shown(&a.fingerprints),
            b: shown(&b.fingerprints),
            basis: Basis::Fingerprint,
        }
    }
}

fn shown(fingerprints: &BTreeSet<String>) -> Vec<String> {
    fingerprints.iter().map(|f| shown_fingerprint(f)).collect()
}

/// A fingerprint as shown: `fp:` and its first hex digits.
pub(super) fn shown_fingerprint(fingerprint: &str) -> String {
    let end = fingerprint
        .char_indices()
        .nth(SHOWN_FINGERPRINT_HEX)
        .map_or(fingerprint.len(), |(i, _)| i);
    format!("fp:{}", &fingerprint[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use envparity_proto::fixtures;

    /// A container with explicit env `(name, fingerprint, clear value)`.
    fn container(vars: &[(&str, &str, Option<&str>)]) -> Container {
        vars.iter()
            .fold(
                fixtures::container("shop"),
                |c, (name, fp, value)| match value {
                    Some(value) => c.clear_env(*name, *fp, *value),
                    None => c.env(*name, *fp),
                },
            )
            .build()
    }

    #[test]
    fn equal_fingerprints_under_one_key_are_equal() {
        let (ca, cb) = (
            container(&[("A", "f1", None)]),
            container(&[("A", "f1", None)]),
        );
        let a = collect([(&ca, "k1")]);
        let b = collect([(&cb, "k1")]);
        assert_eq!(compare_values(&a["A"], &b["A"]), ValueVerdict::Equal);
    }

    #[test]
    fn different_fingerprints_differ_and_show_only_a_prefix() {
        let long_a = "a".repeat(64);
        let long_b = "b".repeat(64);
        let (ca, cb) = (
            container(&[("A", &long_a, None)]),
            container(&[("A", &long_b, None)]),
        );
        let verdict = compare_values(&collect([(&ca, "k1")])["A"], &collect([(&cb, "k1")])["A"]);
        assert_eq!(
            verdict,
            ValueVerdict::Differs {
                a: vec![format!("fp:{}", "a".repeat(16))],
                b: vec![format!("fp:{}", "b".repeat(16))],
                basis: Basis::Fingerprint,
            }
        );
    }

    #[test]
    fn clear_values_are_compared_and_shown_in_clear() {
        let (ca, cb) = (
            container(&[("LOG_LEVEL", "f1", Some("info"))]),
            container(&[("LOG_LEVEL", "f2", Some("debug"))]),
        );
        let verdict = compare_values(
            &collect([(&ca, "k1")])["LOG_LEVEL"],
            &collect([(&cb, "k2")])["LOG_LEVEL"],
        );
        assert_eq!(
            verdict,
            ValueVerdict::Differs {
                a: vec!["info".into()],
                b: vec!["debug".into()],
                basis: Basis::ClearValue,
            }
        );
    }

    #[test]
    fn fingerprints_under_different_keys_are_not_compared() {
        let (ca, cb) = (
            container(&[("A", "f1", None)]),
            container(&[("A", "f1", None)]),
        );
        let verdict = compare_values(&collect([(&ca, "k1")])["A"], &collect([(&cb, "k2")])["A"]);
        assert_eq!(verdict, ValueVerdict::Incomparable);
    }
}
