//! Semantic Versioning 2.0 ordering (node packages): `MAJOR.MINOR.PATCH`
//! with an optional `-pre.release` (numeric identifiers below alphanumeric
//! ones, fewer identifiers first when one is a prefix of the other, any
//! pre-release below the release) and `+build`, which does not count. A
//! leading `v` or `=` is allowed. Anything else is not semver: such
//! versions sort after every valid one, by their text.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    Number(u64),
    Word(String),
}

fn parse(v: &str) -> Option<([u64; 3], Vec<Ident>)> {
    let v = v.trim().trim_start_matches(['v', '=']);
    let v = v.split_once('+').map_or(v, |(p, _)| p);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut nums = [0u64; 3];
    let mut parts = core.split('.');
    for n in &mut nums {
        let p = parts.next()?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *n = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let mut idents = Vec::new();
    if let Some(pre) = pre {
        for id in pre.split('.') {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return None;
            }
            idents.push(if id.bytes().all(|b| b.is_ascii_digit()) {
                Ident::Number(id.parse().ok()?)
            } else {
                Ident::Word(id.to_owned())
            });
        }
    }
    Some((nums, idents))
}

/// Compares two semantic versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some((na, pa)), Some((nb, pb))) => {
            na.cmp(&nb)
                .then_with(|| match (pa.is_empty(), pb.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => pa.cmp(&pb),
                })
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}
