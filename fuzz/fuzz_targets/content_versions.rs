//! Version ordering (Debian, PEP 440, semver), size thresholds and path
//! globs on any text.
//!
//! Input: three versions separated by NUL bytes. Asserted, besides "never
//! panics": each order is reflexive, antisymmetric and transitive on them.
#![no_main]

use std::cmp::Ordering;

use envparity_content::version::{debian, pep440, semver};
use envparity_content::{Glob, SizeLimit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    let c = parts.next().unwrap_or("");
    for cmp in [debian::compare, pep440::compare, semver::compare] {
        assert_eq!(cmp(a, a), Ordering::Equal, "{a:?}");
        assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{a:?} {b:?}");
        if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
            assert_ne!(cmp(a, c), Ordering::Greater, "{a:?} <= {b:?} <= {c:?}");
        }
    }
    let _ = a.parse::<SizeLimit>();
    if a.len() < 64 && b.len() < 256 {
        let _ = Glob::new(a).matches(b);
    }
});
