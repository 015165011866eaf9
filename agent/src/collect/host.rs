//! Facts about the host operating system.
//!
//! Files are read under a configurable root (`--host-root`) so the agent can
//! run in a container with the host's `/` mounted read-only at, say,
//! `/host`, and still report the host's OS rather than its own image's. The
//! kernel facts come from the running kernel, which a container shares with
//! its host.

use std::path::Path;

use envparity_proto::v1::HostFacts;
use sysinfo::System;

use crate::machine::hostname;

/// The os-release fields envparity reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `NAME`, e.g. `Debian GNU/Linux`.
    pub name: String,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
}

/// Parses os-release(5): `KEY=value` lines, values optionally in single or
/// double quotes with backslash escapes, `#` comments and blank lines
/// ignored. Unknown keys and malformed lines are skipped: a distribution's
/// quirk must not stop the agent.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let slot = match key.trim() {
            "ID" => &mut release.id,
            "NAME" => &mut release.name,
            "VERSION_ID" => &mut release.version_id,
            _ => continue,
        };
        *slot = unquote(raw.trim());
    }
    release
}

/// Removes shell-style quoting from an os-release value.
fn unquote(raw: &str) -> String {
    let quote = match raw.chars().next() {
        Some(q @ ('"' | '\'')) if raw.len() >= 2 && raw.ends_with(q) => q,
        _ => return raw.to_owned(),
    };
    let inner = &raw[1..raw.len() - 1];
    if quote == '\'' {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads os-release under `root`: `etc/os-release`, falling back to
/// `usr/lib/os-release` as os-release(5) prescribes. Missing both yields
/// empty fields (an unusual host is still worth reporting).
pub fn read_os_release(root: &Path) -> OsRelease {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| std::fs::read_to_string(root.join(rel)).ok())
        .map(|text| parse_os_release(&text))
        .unwrap_or_default()
}

/// Collects the host facts: kernel and architecture from the running
/// kernel, OS identity from os-release under `root`.
pub fn host_facts(root: &Path) -> HostFacts {
    let os = read_os_release(root);
    HostFacts {
        kernel_version: System::kernel_version().unwrap_or_default(),
        os_id: os.id,
        os_name: os.name,
        os_version: os.version_id,
        architecture: System::cpu_arch(),
        hostname: hostname().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
# a comment
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn parses_debian_os_release() {
        assert_eq!(
            parse_os_release(DEBIAN),
            OsRelease {
                id: "debian".into(),
                name: "Debian GNU/Linux".into(),
                version_id: "12".into(),
            }
        );
    }

    #[test]
    fn handles_single_quotes_escapes_and_junk_lines() {
        let text = "NAME='Fancy \"OS\"'\nID=\"my\\\"os\"\nnot a pair\n\nVERSION_ID=3.19.1\n";
        assert_eq!(
            parse_os_release(text),
            OsRelease {
                id: "my\"os".into(),
                name: "Fancy \"OS\"".into(),
                version_id: "3.19.1".into(),
            }
        );
    }

    #[test]
    fn etc_os_release_wins_over_usr_lib() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::fs::write(root.path().join("usr/lib/os-release"), "ID=lib\n").unwrap();
        assert_eq!(
            read_os_release(root.path()).id,
            "lib",
            "falls back to usr/lib"
        );
        std::fs::write(root.path().join("etc/os-release"), "ID=etc\n").unwrap();
        assert_eq!(read_os_release(root.path()).id, "etc");
    }

    #[test]
    fn missing_os_release_gives_empty_facts() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_os_release(root.path()), OsRelease::default());
    }
}
