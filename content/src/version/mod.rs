//! Version ordering per ecosystem, to tell an upgrade from a downgrade.
//!
//! Each order is total (antisymmetric and transitive, property-tested in
//! `version_tests.rs`), also over text that is not a version of its
//! scheme: such text sorts after every valid version, by its bytes.

pub mod debian;
pub mod pep440;
pub mod semver;

use std::cmp::Ordering;

use crate::packages::Ecosystem;

/// Compares two versions of `eco`'s scheme. apk versions are compared as
/// Debian's (close enough for `1.2.4-r2` against `1.2.4-r3`; apk's own
/// suffix rules, `_rc` below the release, are not applied); rpm is not
/// parsed yet and is compared the same way.
pub fn compare(eco: Ecosystem, a: &str, b: &str) -> Ordering {
    match eco {
        Ecosystem::Apt | Ecosystem::Apk | Ecosystem::Rpm => debian::compare(a, b),
        Ecosystem::Pip => pep440::compare(a, b),
        Ecosystem::Node => semver::compare(a, b),
    }
}

#[cfg(test)]
#[path = "version_tests.rs"]
mod tests;
