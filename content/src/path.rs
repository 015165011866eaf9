//! Entry paths, normalised: relative to the root, no `.`, no `..`.

use crate::ContentError;

/// `raw` without leading `/` or `./`, `.` components or a trailing `/`;
/// `None` for the root itself. A `..` component is an error: no entry may
/// name a path outside the image.
pub fn normalise(raw: &str, input: &str) -> Result<Option<String>, ContentError> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ContentError::PathEscapes {
                    input: input.to_owned(),
                    path: raw.to_owned(),
                });
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// The directory part of `path` (`""` at the top).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// `target` of a symlink at `path`, resolved against its directory, as a
/// normalised path; `None` when it leaves the root.
pub fn resolve_link(path: &str, target: &str) -> Option<String> {
    let joined = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("{}/{target}", parent(path))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_dot_dot_is_refused() {
        assert_eq!(
            normalise("./usr//bin/", "l").unwrap().as_deref(),
            Some("usr/bin")
        );
        assert_eq!(
            normalise("/etc/passwd", "l").unwrap().as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(normalise("./", "l").unwrap(), None);
        let err = normalise("../../etc/passwd", "layer 3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer 3: entry path \"../../etc/passwd\" leaves the root"
        );
        assert!(normalise("usr/../../x", "l").is_err());
    }

    #[test]
    fn link_targets_resolve_against_their_directory() {
        assert_eq!(
            resolve_link("usr/bin/python3", "python3.12").as_deref(),
            Some("usr/bin/python3.12")
        );
        assert_eq!(
            resolve_link("usr/bin/python3", "/usr/local/bin/py").as_deref(),
            Some("usr/local/bin/py")
        );
        assert_eq!(
            resolve_link("bin/sh", "../usr/bin/busybox").as_deref(),
            Some("usr/bin/busybox")
        );
        assert_eq!(resolve_link("sh", "../../x"), None);
    }
}
