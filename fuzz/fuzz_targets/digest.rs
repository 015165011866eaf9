//! The strict digest parser (`envparity_proto::digest`) and the parity
//! engine's use of it (`registry_digest`, `is_pinned`).
//!
//! Input: any bytes, read as UTF-8 (lossily) and split at the first NUL into
//! a reference and repo digests (separated by newlines), so that near misses
//! of the grammar are found by mutation.
//!
//! Asserted, besides "never panics":
//! - `parse_digest` accepts exactly `sha256:` and 64 lower-case hex digits,
//!   compared with a reference check written differently;
//! - `pinned_digest` and `split_repo_digest` return only strict digests, and
//!   exactly the part after the last `@`;
//! - the registry digest the engine derives from any image is strict, and
//!   `is_pinned` holds exactly when the reference pins a strict digest.
#![no_main]

use envparity_aggregator::parity::digest::{is_pinned, registry_digest};
use envparity_proto::digest::{is_digest, parse_digest, pinned_digest, split_repo_digest};
use envparity_proto::v1::ImageInfo;
use libfuzzer_sys::fuzz_target;

/// The grammar, spelled out another way.
fn reference_check(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 71
        && &b[..7] == b"sha256:"
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (reference, rest) = text.split_once('\0').unwrap_or((&text, ""));
    for s in std::iter::once(reference).chain(rest.split('\n')) {
        assert_eq!(is_digest(s), reference_check(s), "{s:?}");
        assert_eq!(parse_digest(s).is_ok(), reference_check(s), "{s:?}");
        match pinned_digest(s) {
            Ok(Some(d)) => {
                assert!(reference_check(d));
                assert_eq!(s.rsplit_once('@').map(|(_, x)| x), Some(d));
            }
            Ok(None) => assert!(!s.contains('@')),
            Err(e) => assert!(!e.to_string().chars().any(char::is_control), "{e}"),
        }
        if let Ok((repo, d)) = split_repo_digest(s) {
            assert!(reference_check(d) && !repo.is_empty());
            assert_eq!(format!("{repo}@{d}"), s);
        }
    }
    // Hostile input as is, not through the fixtures.
    let image = ImageInfo {
        reference: reference.to_owned(),
        repo_digests: rest.split('\n').map(str::to_owned).collect(),
        ..Default::default()
    };
    if let Some(d) = registry_digest(&image) {
        assert!(reference_check(d), "{d:?} from {image:?}");
    }
    assert_eq!(
        is_pinned(reference),
        matches!(pinned_digest(reference), Ok(Some(_)))
    );
});
