//! Which env values an agent may send in clear (`--clear-env`).
//!
//! By default no value leaves the host: only fingerprints do. Operators can
//! allowlist harmless names (`LOG_LEVEL`, `FEATURE_*`) so that a parity report
//! can say *what* differs, not just *that* it differs. The allowlist is a
//! convenience, never a way to leak: names that look secret and values that
//! carry credentials stay fingerprinted even when allowlisted, because a
//! broad pattern such as `APP_*` will sooner or later match `APP_DB_PASSWORD`.

/// Substrings (upper case) that make a variable name look secret. Matched
/// case-insensitively anywhere in the name; false positives (e.g.
/// `KEYBOARD_LAYOUT`) only cost a fingerprint instead of a clear value.
pub const SECRET_NAME_MARKERS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
    "SESSION",
    "COOKIE",
    "SALT",
    "CERT",
    "SIGNATURE",
];

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
    /// allowlisted, does not look secret, and the value carries no URL
    /// credentials.
    pub fn allows(&self, name: &str, value: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, name))
            && !looks_secret(name)
            && !has_url_credentials(value)
    }
}

/// Whether a variable name looks like it holds a secret (see
/// [`SECRET_NAME_MARKERS`]).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_MARKERS.iter().any(|m| upper.contains(m))
}

/// Whether `value` contains a URL with userinfo (`scheme://user:pass@host`,
/// or `scheme://token@host`). Every `://` in the value is checked, so lists
/// of URLs and DSNs embedded in larger strings are caught too. A bare
/// `user@host` without a scheme is not a URL and does not count.
pub fn has_url_credentials(value: &str) -> bool {
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let before = &rest[..at];
        let scheme_len = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .count();
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        if scheme_len > 0 && after[..authority_end].contains('@') {
            return true;
        }
        rest = after;
    }
    false
}

/// Matches `name` against `pattern`, where `*` stands for any run of
/// characters (including none) and everything else matches itself. Case
/// sensitive, like env names.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    // Iterative wildcard matching with single-star backtracking: linear
    // in practice, no recursion on hostile patterns.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

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
    fn secret_looking_names_are_detected_case_insensitively() {
        for name in [
            "DB_PASSWORD",
            "db_passwd",
            "SMTP_PASS",
            "CLIENT_SECRET",
            "GITHUB_TOKEN",
            "API_KEY",
            "aws_credentials",
            "PRIVATE_PEM",
            "BASIC_AUTH",
            "SESSION_STORE",
            "COOKIE_DOMAIN",
            "PW_SALT",
            "TLS_CERT",
            "SIGNATURE_ALG",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["LOG_LEVEL", "FEATURE_X", "PORT", "RUST_LOG"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn credential_urls_are_detected() {
        assert!(has_url_credentials("postgres://app:hunter2@db:5432/app"));
        assert!(has_url_credentials("https://ghp_abc@github.com/org/repo"));
        assert!(has_url_credentials("a,redis://:pw@cache:6379,b"));
        assert!(has_url_credentials("http://x/ then amqp://u:p@mq"));
        assert!(!has_url_credentials("https://example.com/path?email=a@b.c"));
        assert!(!has_url_credentials("https://example.com/#user@x"));
        assert!(!has_url_credentials("admin@example.com"));
        assert!(!has_url_credentials("plain"));
        assert!(!has_url_credentials("://@"));
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
    }

    #[test]
    fn empty_policy_allows_nothing() {
        assert!(!ClearEnvPolicy::default().allows("LOG_LEVEL", "info"));
    }
}
