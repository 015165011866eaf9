//! Which env values an agent may send in clear (`--clear-env`).
//!
//! By default no value leaves the host: only fingerprints do. Operators can
//! allowlist harmless names (`LOG_LEVEL`, `FEATURE_*`) so that a parity report
//! can say *what* differs, not just *that* it differs. The allowlist is a
//! convenience, never a way to leak: names that look secret and values that
//! carry credentials stay fingerprinted even when allowlisted, because a
//! broad pattern such as `APP_*` will sooner or later match `APP_DB_PASSWORD`.

use crate::secrets::{carries_secret, looks_secret};

/// The `--clear-env` allowlist: exact names or `*` globs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearEnvPolicy {
    patterns: Vec<String>,
}

impl ClearEnvPolicy {
    /// A policy allowing the given patterns (exact names, `*` matches any run
    /// of characters, including none).
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// The configured patterns, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `value` of variable `name` may be sent in clear: the name is
    /// allowlisted, does not look secret, and the value carries no credential
    /// (a secret parameter or URL userinfo; [`crate::secrets`]).
    pub fn allows(&self, name: &str, value: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, name))
            && !looks_secret(name)
            && !carries_secret(value)
    }
}

pub use envparity_proto::glob::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_exact_prefix_suffix_and_infix() {
        assert!(glob_match("LOG_LEVEL", "LOG_LEVEL"));
        assert!(!glob_match("LOG_LEVEL", "LOG_LEVELS"));
        assert!(!glob_match("LOG_LEVEL", "log_level"));
        assert!(glob_match("FEATURE_*", "FEATURE_X"));
        assert!(glob_match("FEATURE_*", "FEATURE_"));
        assert!(!glob_match("FEATURE_*", "XFEATURE_X"));
        assert!(glob_match("*_URL", "API_URL"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B*C", "AxxCxxB"));
        assert!(glob_match("*", "ANYTHING"));
        assert!(!glob_match("", "X"));
    }

    #[test]
    fn allowlist_sends_harmless_values_in_clear() {
        let policy = ClearEnvPolicy::new(["LOG_LEVEL", "FEATURE_*"]);
        assert!(policy.allows("LOG_LEVEL", "debug"));
        assert!(policy.allows("FEATURE_CHECKOUT", "on"));
        assert!(!policy.allows("OTHER", "x"), "not allowlisted");
    }

    #[test]
    fn allowlist_never_discloses_secret_names_or_credential_urls() {
        let policy = ClearEnvPolicy::new(["*"]);
        assert!(!policy.allows("FEATURE_TOKEN", "abc"));
        assert!(!policy.allows("DATABASE_URL", "postgres://u:p@db/app"));
        assert!(policy.allows("DATABASE_HOST", "db"));
        // The shapes that went in clear under `APP_*` before.
        let policy = ClearEnvPolicy::new(["APP_*"]);
        for (name, value) in [
            ("APP_DB_PWD", "s3cr3t"),
            ("APP_PG", "host=db password=s3cr3t"),
            (
                "APP_JDBC",
                "jdbc:postgresql://db/app?user=a&password=s3cr3t",
            ),
            ("APP_API", "https://x/?access_token=s3cr3t"),
            ("APP_READ_DSN", "db.internal"),
        ] {
            assert!(!policy.allows(name, value), "{name}={value}");
        }
        assert!(policy.allows("APP_MODE", "fast"));
    }

    #[test]
    fn empty_policy_allows_nothing() {
        assert!(!ClearEnvPolicy::default().allows("LOG_LEVEL", "info"));
    }
}
