//! Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`
//! (or an `.egg-info` file), read up to their first blank line.

use super::Stanza;

/// `(name, version)` of a METADATA or PKG-INFO file; the name normalised as
/// PEP 503 says (lower case, runs of `-_.` as one `-`).
pub fn parse(text: &str) -> Option<(String, String)> {
    let head = Stanza::all(text, ':').next()?;
    let name = normalise(head.get("Name")?);
    let version = head.get("Version")?.to_owned();
    (!name.is_empty()).then_some((name, version))
}

/// A distribution name as PEP 503 compares it. Separators and white space
/// at either end are dropped first, so that normalising twice changes
/// nothing (found by fuzz/content_packages: a name ending in a tab and a
/// dot).
pub fn normalise(name: &str) -> String {
    let is_sep = |c: char| matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name
        .trim_matches(|c: char| c.is_whitespace() || is_sep(c))
        .chars()
    {
        if is_sep(c) {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_version_are_read_from_the_headers_only() {
        let meta = "Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.9.0\nSummary: x\n\n\
Name: not-this\nVersion: 0\n";
        assert_eq!(
            parse(meta),
            Some(("typing-extensions".to_owned(), "4.9.0".to_owned()))
        );
        assert_eq!(parse("Summary: no name\n"), None);
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for name in [
            "Ty 4.9\t.\t\t",
            "._ a",
            " -a",
            "a - b",
            "Zope.Interface",
            "--x--",
        ] {
            let once = normalise(name);
            assert_eq!(normalise(&once), once, "{name:?}");
        }
        assert_eq!(normalise("Zope.Interface"), "zope-interface");
        assert_eq!(normalise("--x--"), "x");
    }
}
