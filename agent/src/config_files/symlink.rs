//! Following symlinks inside a mounted directory's archive, within it.

use std::collections::HashMap;

use super::tar::{Entry, Kind};

/// Longest symlink chain followed inside a mounted directory.
const MAX_HOPS: usize = 16;

/// Follows `link` within the archive to a regular file, resolving links
/// anywhere in the path (`..data/app.yaml` where `..data` is a link).
pub(super) fn resolve<'a>(
    by_name: &HashMap<&str, &'a Entry>,
    link: &'a Entry,
) -> Result<&'a Entry, String> {
    let out = || "symlink out of the mount".to_owned();
    let mut path = link.name.clone();
    let mut hops = 0;
    'walk: loop {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            let entry = by_name
                .get(prefix.as_str())
                .ok_or_else(|| "symlink to a missing file".to_owned())?;
            if entry.kind == Kind::Symlink {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err("symlink loop".to_owned());
                }
                if entry.link.starts_with('/') {
                    return Err(out());
                }
                let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
                let rest = parts[i..].join("/");
                path = normalize(&format!("{dir}/{}/{rest}", entry.link)).ok_or_else(out)?;
                continue 'walk;
            }
            if i == parts.len() {
                return match entry.kind {
                    Kind::File => Ok(entry),
                    _ => Err("symlink to a directory".to_owned()),
                };
            }
        }
        return Err("symlink to a missing file".to_owned());
    }
}

/// `a/./b/../c` → `a/c`; `None` when `..` climbs out.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}
