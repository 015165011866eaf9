//! `etc/os-release` (or `usr/lib/os-release`): `KEY=value` lines, values
//! optionally quoted.

/// What the image says it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// Parses an os-release file.
pub fn parse(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_owned();
        match key {
            "ID" => os.id = value,
            "VERSION_ID" => os.version_id = value,
            "PRETTY_NAME" => os.pretty_name = value,
            _ => {}
        }
    }
    os
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_bare_values_are_read() {
        let os = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\n# c\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    }
}
