//! Package inventories, read from the flattened file system: dpkg, apk,
//! Python and node packages, and the os-release.
//!
//! rpm databases are found and reported as present but not parsed (the
//! SQLite and Berkeley DB formats are not read yet). Every file read here
//! was capped when its layer was read ([`crate::Limits::max_package_file`]);
//! a refused file is a note in the inventory, never a silent gap.

pub mod apk;
pub mod dpkg;
pub mod node;
pub mod os_release;
pub mod python;

use std::collections::BTreeMap;

use crate::Limits;
use crate::flatten::FileSystem;
use crate::layer::Captured;
use crate::wanted::is_rpmdb;

pub use os_release::OsRelease;

/// A package ecosystem; the names are `image-diff --type`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ecosystem {
    /// Debian packages (dpkg).
    Apt,
    /// Alpine packages.
    Apk,
    /// RPM packages (found, not parsed yet).
    Rpm,
    /// Python distributions.
    Pip,
    /// Node packages.
    Node,
}

impl Ecosystem {
    /// The name, as in JSON and `--type`.
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Apt => "apt",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Pip => "pip",
            Ecosystem::Node => "node",
        }
    }
}

/// A package's key within its ecosystem: its name, with the architecture
/// for dpkg (`libc6:amd64` and `libc6:i386` are two packages).
pub type PackageKey = String;

/// An image's packages and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The os-release, when there is one.
    pub os: Option<OsRelease>,
    /// Per ecosystem, key → version.
    pub packages: BTreeMap<Ecosystem, BTreeMap<PackageKey, String>>,
    /// Files refused or not parsed, and ecosystems truncated.
    pub notes: Vec<String>,
    /// Whether an ecosystem had more packages than
    /// [`Limits::max_packages`]: its list is cut, and a note says so.
    pub truncated: bool,
}

impl Inventory {
    fn add(&mut self, eco: Ecosystem, key: String, version: String, limits: &Limits) {
        let map = self.packages.entry(eco).or_default();
        if map.len() >= limits.max_packages && !map.contains_key(&key) {
            self.truncated = true;
            let note = format!(
                "{}: over {} packages; the rest are not listed (truncated)",
                eco.name(),
                limits.max_packages
            );
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
            return;
        }
        map.insert(key, version);
    }
}

/// The inventory of a flattened image.
pub fn inventory(fs: &FileSystem, limits: &Limits) -> Inventory {
    let mut inv = Inventory::default();
    let os_file = ["etc/os-release", "usr/lib/os-release"]
        .into_iter()
        .find(|p| matches!(fs.captured(p), Some(Captured::Bytes(_))));
    for (path, captured) in fs.captured_files() {
        let data = match captured {
            Captured::Bytes(data) => data,
            Captured::Refused { size, cap: 0 } if is_rpmdb(path) => {
                inv.notes.push(format!(
                    "rpm: database {path} ({size} bytes) present, not parsed"
                ));
                continue;
            }
            Captured::Refused { size, cap } => {
                inv.notes.push(format!(
                    "{path}: {size} bytes, over the cap of {cap}; not read"
                ));
                continue;
            }
        };
        let text = String::from_utf8_lossy(data);
        if path == "var/lib/dpkg/status" || path.starts_with("var/lib/dpkg/status.d/") {
            for p in dpkg::parse(&text) {
                let key = if p.arch.is_empty() {
                    p.name
                } else {
                    format!("{}:{}", p.name, p.arch)
                };
                inv.add(Ecosystem::Apt, key, p.version, limits);
            }
        } else if path == "lib/apk/db/installed" {
            for p in apk::parse(&text) {
                inv.add(Ecosystem::Apk, p.name, p.version, limits);
            }
        } else if path.ends_with("/package.json") {
            if let Some((name, version)) = node::parse(data) {
                inv.add(Ecosystem::Node, name, version, limits);
            }
        } else if path.ends_with("METADATA")
            || path.ends_with("PKG-INFO")
            || path.ends_with(".egg-info")
        {
            if let Some((name, version)) = python::parse(&text) {
                inv.add(Ecosystem::Pip, name, version, limits);
            }
        } else if Some(path) == os_file {
            inv.os = Some(os_release::parse(&text));
        }
    }
    inv
}

/// An RFC 822-like stanza: `Key<sep> value` lines, continuation lines
/// starting with a space or a tab, stanzas separated by blank lines.
#[derive(Debug, Default)]
pub(crate) struct Stanza<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Stanza<'a> {
    /// The value of `key` (the first one), when it is not empty.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }

    /// Every stanza of `text`.
    pub(crate) fn all(text: &'a str, sep: char) -> impl Iterator<Item = Stanza<'a>> {
        let mut lines = text.lines().peekable();
        std::iter::from_fn(move || {
            while lines.peek().is_some_and(|l| l.trim().is_empty()) {
                lines.next();
            }
            lines.peek()?;
            let mut stanza = Stanza::default();
            for line in lines.by_ref() {
                if line.trim().is_empty() {
                    break;
                }
                if line.starts_with([' ', '\t']) {
                    continue;
                }
                if let Some((k, v)) = line.split_once(sep) {
                    stanza.fields.push((k.trim(), v.trim()));
                }
            }
            Some(stanza)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::flatten;
    use crate::tar::build::*;
    use crate::test_support::layer;

    #[test]
    fn every_ecosystem_is_read_from_a_flattened_image() {
        let base = layer(&[
            file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
            file(
                "var/lib/dpkg/status",
                b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n",
            ),
            file("var/lib/dpkg/status.d/tzdata", b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"),
            file("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\nA:x86_64\n"),
            file(
                "usr/local/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
            ),
            file("app/node_modules/express/package.json", br#"{"name":"express","version":"4.18.2"}"#),
            file("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0"),
        ]);
        let fs = flatten(&[base]);
        let inv = inventory(&fs, &Limits::default());
        assert_eq!(inv.os.as_ref().unwrap().version_id, "12");
        let apt = &inv.packages[&Ecosystem::Apt];
        assert_eq!(apt["libssl3:amd64"], "3.0.11-1~deb12u2");
        assert_eq!(apt["tzdata:all"], "2024a-0+deb12u1");
        assert_eq!(inv.packages[&Ecosystem::Apk]["musl"], "1.2.4-r2");
        assert_eq!(inv.packages[&Ecosystem::Pip]["requests"], "2.31.0");
        assert_eq!(inv.packages[&Ecosystem::Node]["express"], "4.18.2");
        assert_eq!(
            inv.notes,
            vec![
                "rpm: database var/lib/rpm/rpmdb.sqlite (16 bytes) present, not parsed".to_owned()
            ]
        );
    }

    #[test]
    fn packages_over_the_cap_are_noted_as_truncated() {
        let mut status = String::new();
        for i in 0..5 {
            status.push_str(&format!("Package: p{i}\nVersion: 1\nArchitecture: all\n\n"));
        }
        let fs = flatten(&[layer(&[file("var/lib/dpkg/status", status.as_bytes())])]);
        let limits = Limits {
            max_packages: 3,
            ..Limits::default()
        };
        let inv = inventory(&fs, &limits);
        assert_eq!(inv.packages[&Ecosystem::Apt].len(), 3);
        assert!(inv.truncated);
        assert_eq!(
            inv.notes,
            vec!["apt: over 3 packages; the rest are not listed (truncated)".to_owned()]
        );
    }

    #[test]
    fn a_huge_metadata_file_is_a_note_and_the_rest_is_still_read() {
        let huge = "usr/lib/python3/site-packages/evil-1.0.dist-info/METADATA";
        let mut big = b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n".to_vec();
        big.resize(64 * 1024, b'x');
        let limits = Limits {
            max_package_file: 4096,
            ..Limits::default()
        };
        let data = crate::tar::build::tar(&[
            file(huge, &big),
            file(
                "app/node_modules/left-pad/package.json",
                br#"{"name":"left-pad","version":"1.3.0"}"#,
            ),
        ]);
        let layer = crate::layer::read_layer(
            &data[..],
            "l",
            &limits,
            &crate::DigestKey::Plain,
            &mut crate::layer::Held::default(),
            100,
        )
        .unwrap();
        let inv = inventory(&flatten(&[std::sync::Arc::new(layer)]), &limits);
        assert_eq!(
            inv.notes,
            vec![format!(
                "{huge}: 65536 bytes, over the cap of 4096; not read"
            )]
        );
        assert!(!inv.packages.contains_key(&Ecosystem::Pip));
        assert_eq!(inv.packages[&Ecosystem::Node]["left-pad"], "1.3.0");
    }
}
