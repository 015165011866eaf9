//! Content digests, parsed strictly: `sha256:` followed by exactly 64
//! lower-case hex digits, and nothing after. A digest identifies what runs;
//! one that merely starts like a digest (`sha256:abc`, or a real one with a
//! terminal escape sequence appended) must never be taken for one, compared,
//! or shown as one. Both ends use these functions: the agent's limiter, the
//! aggregator's validation, the parity engine and the gate.

/// The only algorithm accepted.
pub const SHA256_PREFIX: &str = "sha256:";

/// Hex digits in a SHA-256 digest.
pub const SHA256_HEX_LEN: usize = 64;

/// A string that is not a strict digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDigest {
    /// The refused text, escaped and cut to 80 characters for display.
    pub shown: String,
}

impl std::fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" is not a digest: expected sha256: followed by 64 lower-case hex digits",
            self.shown
        )
    }
}

impl std::error::Error for InvalidDigest {}

fn invalid(s: &str) -> InvalidDigest {
    InvalidDigest {
        shown: crate::names::escape_hostile(&s.chars().take(80).collect::<String>()),
    }
}

/// Whether `s` is exactly `sha256:` and 64 lower-case hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix(SHA256_PREFIX).is_some_and(|hex| {
        hex.len() == SHA256_HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `s` itself when it is a strict digest.
pub fn parse_digest(s: &str) -> Result<&str, InvalidDigest> {
    if is_digest(s) { Ok(s) } else { Err(invalid(s)) }
}

/// The digest a reference pins (`repo@sha256:…` or `repo:tag@sha256:…`):
/// `Ok(None)` when it pins nothing (no `@`), an error when what follows the
/// last `@` is not a strict digest.
pub fn pinned_digest(reference: &str) -> Result<Option<&str>, InvalidDigest> {
    match reference.rsplit_once('@') {
        None => Ok(None),
        Some((_, digest)) => parse_digest(digest).map(Some),
    }
}

/// A repo digest as engines report it, `REPO@sha256:…`, split into its
/// repository and its digest; an error unless both are there and the digest
/// is strict.
pub fn split_repo_digest(repo_digest: &str) -> Result<(&str, &str), InvalidDigest> {
    match repo_digest.rsplit_once('@') {
        Some((repo, digest)) if !repo.is_empty() => Ok((repo, parse_digest(digest)?)),
        _ => Err(invalid(repo_digest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_the_strict_form_is_a_digest() {
        let good = format!("sha256:{HEX}");
        assert_eq!(parse_digest(&good), Ok(good.as_str()));
        for bad in [
            String::new(),
            "sha256:".to_owned(),
            "sha256:abc".to_owned(),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha256:{HEX}0"),
            format!("sha256:{}", &HEX[1..]),
            format!("sha512:{HEX}"),
            format!("SHA256:{HEX}"),
            format!(" sha256:{HEX}"),
            format!("sha256:{HEX}\n"),
            format!("sha256:{HEX}\u{1b}]0;pwned\u{7}"),
            format!("sha256:{}g", &HEX[1..]),
        ] {
            assert!(parse_digest(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_error_shows_the_input_escaped() {
        let err = parse_digest("sha256:1\u{1b}[2J").unwrap_err().to_string();
        assert!(err.contains("sha256:1\\u{1b}[2J"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.contains("64 lower-case hex digits"), "{err}");
    }

    #[test]
    fn references_and_repo_digests() {
        let d = format!("sha256:{HEX}");
        assert_eq!(pinned_digest("reg/app:1"), Ok(None));
        assert_eq!(pinned_digest(&format!("reg/app@{d}")), Ok(Some(d.as_str())));
        assert_eq!(
            pinned_digest(&format!("reg/app:1@{d}")),
            Ok(Some(d.as_str()))
        );
        assert!(pinned_digest("reg/app@sha256:abc").is_err());
        assert_eq!(
            split_repo_digest(&format!("127.0.0.1:5000/app@{d}")),
            Ok(("127.0.0.1:5000/app", d.as_str()))
        );
        assert!(split_repo_digest(&d).is_err(), "no repository");
        assert!(split_repo_digest(&format!("@{d}")).is_err());
        assert!(split_repo_digest(&format!("app@{d}\u{7}")).is_err());
    }

    proptest! {
        /// The parser accepts exactly the grammar: compared with a reference
        /// written differently, over arbitrary strings and near misses.
        #[test]
        fn accepts_exactly_the_grammar(
            s in prop_oneof![
                any::<String>(),
                "sha256:[0-9a-f]{60,68}",
                "sha256:[0-9a-fA-F]{64}[\\x00-\\x7f]{0,3}",
            ],
        ) {
            let reference = s.len() == 71
                && s.starts_with("sha256:")
                && s[7..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            prop_assert_eq!(is_digest(&s), reference);
            prop_assert_eq!(parse_digest(&s).is_ok(), reference);
        }
    }
}
