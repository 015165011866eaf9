//! Alpine's apk: `lib/apk/db/installed`, records of `K:value` lines.

use super::Stanza;

/// An apk package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkPackage {
    /// `P:`.
    pub name: String,
    /// `A:`.
    pub arch: String,
    /// `V:`.
    pub version: String,
}

/// The packages of an `installed` file.
pub fn parse(text: &str) -> Vec<ApkPackage> {
    Stanza::all(text, ':')
        .filter_map(|s| {
            Some(ApkPackage {
                name: s.get("P")?.to_owned(),
                arch: s.get("A").unwrap_or("").to_owned(),
                version: s.get("V")?.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407000\nT:the musl c library\n\n\
C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nF:bin\nR:busybox\n";
        let got = parse(db);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].version, "1.2.4_git20230717-r4");
        assert_eq!(got[1].name, "busybox");
    }
}
