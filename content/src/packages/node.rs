//! Node packages: `package.json` of each `node_modules/NAME` (or
//! `node_modules/@SCOPE/NAME`) directory.

/// `(name, version)` of a `package.json`.
pub fn parse(data: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Pkg {
        name: Option<String>,
        version: Option<String>,
    }
    let pkg: Pkg = serde_json::from_slice(data).ok()?;
    let (name, version) = (pkg.name?, pkg.version?);
    (!name.trim().is_empty() && !version.trim().is_empty()).then_some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_version_are_read() {
        let json = br#"{"name":"@types/node","version":"20.10.5","dependencies":{"undici-types":"~5.26.4"}}"#;
        assert_eq!(
            parse(json),
            Some(("@types/node".to_owned(), "20.10.5".to_owned()))
        );
        assert_eq!(parse(b"{\"name\": 3}"), None);
        assert_eq!(parse(b"not json"), None);
        assert_eq!(parse(br#"{"name":"","version":"1"}"#), None);
    }
}
