//! dpkg: `var/lib/dpkg/status` and `var/lib/dpkg/status.d/*` (distroless
//! writes one stanza file per package there, often without a `Status`
//! field: those count as installed).

use super::Stanza;

/// A Debian package of a status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    /// `Package`.
    pub name: String,
    /// `Architecture`.
    pub arch: String,
    /// `Version`.
    pub version: String,
}

/// The installed packages of one status file, in order.
pub fn parse(text: &str) -> Vec<DebPackage> {
    Stanza::all(text, ':')
        .filter(|s| {
            s.get("Status")
                .is_none_or(|st| st.split_whitespace().last() == Some("installed"))
        })
        .filter_map(|s| {
            Some(DebPackage {
                name: s.get("Package")?.to_owned(),
                arch: s.get("Architecture").unwrap_or("").to_owned(),
                version: s.get("Version")?.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_stanzas_are_kept_and_others_dropped() {
        let status = "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n continued line\n .\n\n\
Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u4\n";
        let got = parse(status);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].version, "2.36-9+deb12u4");
        assert_eq!(got[1].arch, "i386");
    }

    #[test]
    fn a_status_d_stanza_without_status_is_installed() {
        let got = parse("Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n");
        assert_eq!(got[0].name, "base-files");
    }

    #[test]
    fn a_stanza_with_an_empty_name_or_version_is_dropped() {
        // Found by fuzz/content_packages: `Package\r:` read as an empty name.
        assert_eq!(
            parse("Package\r:\nVersion: 1\n\nPackage: a\nVersion:\n"),
            vec![]
        );
    }
}
