//! PEP 440 ordering, for the common subset:
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, case-insensitive, with
//! the usual spellings normalised (`alpha`, `beta`, `c`, `pre`, `preview`,
//! `-`/`_` separators, a leading `v`). Trailing zeros of the release do not
//! count (`1.0 == 1.0.0`). A local label is compared segment by segment,
//! numbers after words. Anything else is not a PEP 440 version: such
//! versions sort after every valid one, by their text.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    Word(String),
    Number(u64),
}

#[derive(Debug, PartialEq, Eq)]
struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<Local>,
}

/// The sort key of a [`Version`].
type Key<'a> = (
    u64,
    Vec<u64>,
    (u8, u8, u64),
    (u8, u64),
    (u8, u64),
    &'a [Local],
);

impl Version {
    /// The sort key: dev releases before pre-releases before the release
    /// before post-releases.
    fn key(&self) -> Key<'_> {
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        let pre = match (self.pre, self.post, self.dev) {
            (Some((kind, n)), _, _) => (1, kind, n),
            (None, None, Some(_)) => (0, 0, 0),
            _ => (2, 0, 0),
        };
        let post = self.post.map_or((0, 0), |n| (1, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, release, pre, post, dev, &self.local)
    }
}

fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// An optional number after a label (`rc1`, `rc.1`, `rc-1`, `rc`).
fn label_number(s: &str) -> (u64, &str) {
    let t = s.strip_prefix(['.', '-', '_']).unwrap_or(s);
    number(t).unwrap_or((0, s))
}

fn parse(v: &str) -> Option<Version> {
    let lower = v.trim().to_ascii_lowercase();
    let mut s = lower.strip_prefix('v').unwrap_or(&lower);
    let (public, local) = match s.split_once('+') {
        Some((p, l)) => (p, Some(l)),
        None => (s, None),
    };
    s = public;
    let (mut epoch, mut release) = (0, Vec::new());
    let (first, rest) = number(s)?;
    s = rest;
    if let Some(r) = s.strip_prefix('!') {
        epoch = first;
        let (n, r) = number(r)?;
        release.push(n);
        s = r;
    } else {
        release.push(first);
    }
    while let Some(r) = s.strip_prefix('.') {
        match number(r) {
            Some((n, r)) => {
                release.push(n);
                s = r;
            }
            None => break,
        }
    }
    let mut out = Version {
        epoch,
        release,
        pre: None,
        post: None,
        dev: None,
        local: Vec::new(),
    };
    let t = s.trim_start_matches(['.', '-', '_']);
    for (spelling, kind) in [
        ("alpha", 0),
        ("beta", 1),
        ("preview", 2),
        ("pre", 2),
        ("rc", 2),
        ("a", 0),
        ("b", 1),
        ("c", 2),
    ] {
        if let Some(r) = t.strip_prefix(spelling) {
            let (n, r) = label_number(r);
            out.pre = Some((kind, n));
            s = r;
            break;
        }
    }
    let t = s.trim_start_matches(['.', '-', '_']);
    for spelling in ["post", "rev", "r"] {
        if let Some(r) = t.strip_prefix(spelling) {
            let (n, r) = label_number(r);
            out.post = Some(n);
            s = r;
            break;
        }
    }
    if out.post.is_none() {
        // `1.0-1` is `1.0.post1`.
        if let Some((n, r)) = s.strip_prefix('-').and_then(number) {
            out.post = Some(n);
            s = r;
        }
    }
    let t = s.trim_start_matches(['.', '-', '_']);
    if let Some(r) = t.strip_prefix("dev") {
        let (n, r) = label_number(r);
        out.dev = Some(n);
        s = r;
    }
    if !s.is_empty() {
        return None;
    }
    if let Some(local) = local {
        for seg in local.split(['.', '-', '_']) {
            if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            out.local.push(match seg.parse() {
                Ok(n) if seg.bytes().all(|b| b.is_ascii_digit()) => Local::Number(n),
                _ => Local::Word(seg.to_owned()),
            });
        }
    }
    Some(out)
}

/// Compares two Python versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.key().cmp(&y.key()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}
