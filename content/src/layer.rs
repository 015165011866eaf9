//! One layer tar, read as it streams by: each entry's metadata and content
//! digest, the whiteouts, and the package database files (bounded).
//!
//! The layer's DiffID (the SHA-256 of its tar) is computed on the way, so
//! that two images' layers can be matched without trusting the archive.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::digest::DigestKey;
use crate::path::normalise;
use crate::tar::{EntryKind, TarCaps, TarReader};
use crate::wanted::{is_package_file, is_rpmdb};
use crate::{ContentError, Limits};

/// An entry's metadata (mtime is not kept: it never counts as a change).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMeta {
    /// The entry's type.
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Bytes of content (0 but for regular files and hard links to them).
    pub size: u64,
    /// Link target, for links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Content digest, for regular files (and hard links once resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// What a layer entry does to the file system below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Writes the path.
    Put(FileMeta),
    /// Removes the path and everything under it (`.wh.NAME`).
    Whiteout,
    /// Hides everything below the directory from lower layers
    /// (`.wh..wh..opq`).
    Opaque,
}

/// A package database file's content, or why it was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// The content.
    Bytes(Vec<u8>),
    /// Over a cap: not read.
    Refused {
        /// Its size.
        size: u64,
        /// The cap it is over.
        cap: u64,
    },
}

/// One layer, read.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// `sha256:<hex>` of the layer tar as read.
    pub diff_id: String,
    /// Bytes of the layer tar.
    pub tar_bytes: u64,
    /// Entries of the layer tar (headers read, long names included).
    pub tar_entries: u64,
    /// Entries in archive order, paths normalised.
    pub entries: Vec<(String, Change)>,
    /// Package database files this layer writes.
    pub captured: BTreeMap<String, Captured>,
}

/// What the layers of one archive hold so far, against the caps on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Bytes of package database files.
    pub package_bytes: u64,
    /// Bytes of entry paths and link targets.
    pub path_bytes: u64,
}

/// Reads a layer tar from `r`, named `input` in errors. `held` counts what
/// the archive's layers hold so far.
pub fn read_layer(
    r: impl Read,
    input: &str,
    limits: &Limits,
    key: &DigestKey,
    held: &mut Held,
    entries_left: u64,
) -> Result<Layer, ContentError> {
    let mut hashing = Hashing {
        inner: r,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut tar = TarReader::new(
        &mut hashing,
        input,
        TarCaps {
            max_path: limits.max_path,
            max_entries: entries_left,
        },
    );
    let mut layer = Layer::default();
    // Where each path's digest sits, for hard links to it.
    let mut files: HashMap<String, (u64, Option<String>)> = HashMap::new();
    while let Some(h) = tar.next_header()? {
        let Some(path) = normalise(&h.path, input)? else {
            continue;
        };
        held.path_bytes += (path.len() + h.link.len()) as u64;
        if held.path_bytes > limits.max_path_bytes {
            return Err(ContentError::OverCap {
                input: input.to_owned(),
                what: "bytes of paths held",
                cap: limits.max_path_bytes,
            });
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            layer.entries.push((dir.to_owned(), Change::Opaque));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let hidden = if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            };
            layer.entries.push((hidden, Change::Whiteout));
            continue;
        }
        let mut meta = FileMeta {
            kind: h.kind,
            mode: h.mode & 0o7777,
            uid: h.uid,
            gid: h.gid,
            size: 0,
            link: None,
            digest: None,
        };
        match h.kind {
            EntryKind::File => {
                meta.size = h.size;
                let wanted = is_package_file(&path);
                let room = limits.max_package_bytes.saturating_sub(held.package_bytes);
                let keep = wanted && h.size <= limits.max_package_file && h.size <= room;
                let mut digester = key.digester();
                let mut kept = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let mut data = tar.data();
                loop {
                    let n = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ContentError::io(&format!("{input}: {path}"), e)),
                    };
                    digester.update(&buf[..n]);
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                meta.digest = Some(digester.finish());
                if keep {
                    held.package_bytes += kept.len() as u64;
                    layer.captured.insert(path.clone(), Captured::Bytes(kept));
                } else if wanted {
                    let cap = if h.size > limits.max_package_file {
                        limits.max_package_file
                    } else {
                        limits.max_package_bytes
                    };
                    layer
                        .captured
                        .insert(path.clone(), Captured::Refused { size: h.size, cap });
                }
                files.insert(path.clone(), (meta.size, meta.digest.clone()));
            }
            EntryKind::Hardlink => {
                let target = normalise(&h.link, input)?.unwrap_or_default();
                if let Some((size, digest)) = files.get(&target) {
                    meta.size = *size;
                    meta.digest.clone_from(digest);
                }
                meta.link = Some(target);
            }
            EntryKind::Symlink => meta.link = Some(h.link.clone()),
            _ => {}
        }
        if is_rpmdb(&path) && !layer.captured.contains_key(&path) {
            layer.captured.insert(
                path.clone(),
                Captured::Refused {
                    size: meta.size,
                    cap: 0,
                },
            );
        }
        layer.entries.push((path, Change::Put(meta)));
    }
    layer.tar_entries = tar.entries();
    drop(tar);
    // What follows the end-of-archive blocks belongs to the layer's digest.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| ContentError::io(input, e))?;
    layer.diff_id = format!("sha256:{}", hex::encode(hashing.hash.finalize()));
    layer.tar_bytes = hashing.bytes;
    Ok(layer)
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R> std::fmt::Debug for Hashing<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashing")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::build::*;

    fn read(data: &[u8], limits: &Limits) -> Result<Layer, ContentError> {
        read_layer(
            data,
            "layer 1",
            limits,
            &DigestKey::Plain,
            &mut Held::default(),
            1000,
        )
    }

    #[test]
    fn entries_whiteouts_and_package_files_are_read() {
        let data = tar(&[
            dir("./etc/"),
            file("./etc/os-release", b"ID=debian\n"),
            file("usr/bin/.wh.old", b""),
            file("opt/app/.wh..wh..opq", b""),
            symlink("usr/bin/python3", "python3.12"),
        ]);
        let layer = read(&data, &Limits::default()).unwrap();
        assert_eq!(
            layer.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&data)))
        );
        let paths: Vec<_> = layer.entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/os-release",
                "usr/bin/old",
                "opt/app",
                "usr/bin/python3"
            ]
        );
        assert_eq!(layer.entries[2].1, Change::Whiteout);
        assert_eq!(layer.entries[3].1, Change::Opaque);
        assert_eq!(
            layer.captured.get("etc/os-release"),
            Some(&Captured::Bytes(b"ID=debian\n".to_vec()))
        );
        let Change::Put(meta) = &layer.entries[1].1 else {
            panic!()
        };
        assert_eq!(
            meta.digest.as_deref(),
            Some(DigestKey::Plain.digest(b"ID=debian\n").as_str())
        );
    }

    #[test]
    fn a_huge_metadata_file_is_refused_and_noted_not_held() {
        let path = "usr/lib/python3/site-packages/evil-1.0.dist-info/METADATA";
        let data = tar(&[file(path, &vec![b'x'; 5000])]);
        let limits = Limits {
            max_package_file: 4096,
            ..Limits::default()
        };
        let layer = read(&data, &limits).unwrap();
        assert_eq!(
            layer.captured.get(path),
            Some(&Captured::Refused {
                size: 5000,
                cap: 4096
            })
        );
    }

    #[test]
    fn paths_held_over_the_cap_are_an_error() {
        let items: Vec<_> = (0..20)
            .map(|i| file(&format!("{}/{i}", "d".repeat(50)), b""))
            .collect();
        let limits = Limits {
            max_path_bytes: 500,
            ..Limits::default()
        };
        let err = read(&tar(&items), &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer 1: over the cap of 500 bytes of paths held; not read further"
        );
    }

    #[test]
    fn a_dot_dot_path_is_an_error_naming_the_layer() {
        let data = tar(&[file("../../etc/shadow", b"x")]);
        let err = read(&data, &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer 1: entry path \"../../etc/shadow\" leaves the root"
        );
    }
}
