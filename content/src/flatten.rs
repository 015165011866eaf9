//! Layers flattened bottom-up, as the engine mounts them: each path is what
//! the last layer that wrote it says, whiteouts remove, opaque directories
//! hide what lower layers put below them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::layer::{Captured, Change, FileMeta, Layer};
use crate::tar::EntryKind;

/// A flattened path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    /// Its metadata.
    pub meta: FileMeta,
    /// The index (bottom = 0) of the layer that last wrote it.
    pub layer: usize,
}

/// An image's file system, flattened.
#[derive(Debug, Clone, Default)]
pub struct FileSystem {
    /// Every path, sorted.
    pub files: BTreeMap<String, FsEntry>,
    layers: Vec<Arc<Layer>>,
}

impl FileSystem {
    /// The package database file at `path`, as written by the layer that
    /// wrote it last.
    pub fn captured(&self, path: &str) -> Option<&Captured> {
        let entry = self.files.get(path)?;
        self.layers.get(entry.layer)?.captured.get(path)
    }

    /// The package database files visible in the flattened image.
    pub fn captured_files(&self) -> impl Iterator<Item = (&str, &Captured)> {
        self.layers.iter().enumerate().flat_map(move |(i, layer)| {
            layer.captured.iter().filter_map(move |(path, c)| {
                (self.files.get(path)?.layer == i).then_some((path.as_str(), c))
            })
        })
    }

    /// Total bytes of regular files.
    pub fn size(&self) -> u64 {
        self.files
            .values()
            .filter(|e| e.meta.kind == EntryKind::File)
            .map(|e| e.meta.size)
            .sum()
    }
}

/// Removes `path` and everything under it that a layer below `layer` wrote.
fn remove_below(files: &mut BTreeMap<String, FsEntry>, path: &str, layer: usize, keep_self: bool) {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let under: Vec<String> = files
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(_, e)| e.layer < layer)
        .map(|(p, _)| p.clone())
        .collect();
    for p in under {
        files.remove(&p);
    }
    if !keep_self && files.get(path).is_some_and(|e| e.layer < layer) {
        files.remove(path);
    }
}

/// Flattens `layers`, bottom first.
pub fn flatten(layers: &[Arc<Layer>]) -> FileSystem {
    let mut files: BTreeMap<String, FsEntry> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        for (path, change) in &layer.entries {
            match change {
                Change::Opaque => remove_below(&mut files, path, i, true),
                Change::Whiteout => remove_below(&mut files, path, i, false),
                Change::Put(meta) => {
                    let mut meta = meta.clone();
                    // A hard link to a file of a lower layer: its content
                    // is that file's.
                    if meta.kind == EntryKind::Hardlink
                        && meta.digest.is_none()
                        && let Some(target) = meta.link.as_ref().and_then(|t| files.get(t))
                    {
                        meta.size = target.meta.size;
                        meta.digest.clone_from(&target.meta.digest);
                    }
                    // A file over a lower directory hides what was in it.
                    if meta.kind != EntryKind::Dir {
                        remove_below(&mut files, path, i, true);
                    }
                    files.insert(path.clone(), FsEntry { meta, layer: i });
                }
            }
        }
    }
    FileSystem {
        files,
        layers: layers.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::build::*;
    use crate::test_support::layer;

    #[test]
    fn whiteouts_and_opaque_dirs_remove_what_lower_layers_wrote() {
        let base = layer(&[
            dir("etc"),
            file("etc/a", b"1"),
            file("etc/b", b"2"),
            dir("opt/app"),
            file("opt/app/old.py", b"x"),
            file("opt/app/keep/deep", b"y"),
        ]);
        let top = layer(&[
            file("etc/.wh.a", b""),
            file("opt/app/new.py", b"z"),
            file("opt/app/.wh..wh..opq", b""),
            file("etc/b", b"22"),
        ]);
        let fs = flatten(&[base, top]);
        let paths: Vec<_> = fs.files.keys().map(String::as_str).collect();
        // The opaque directory itself stays; what lower layers put in it goes.
        assert_eq!(paths, ["etc", "etc/b", "opt/app", "opt/app/new.py"]);
        assert_eq!(fs.files["etc/b"].layer, 1);
        assert_eq!(fs.files["etc"].layer, 0);
        assert_eq!(fs.size(), 3);
    }

    #[test]
    fn a_package_file_is_read_from_the_layer_that_wrote_it_last() {
        let a = layer(&[file("etc/os-release", b"ID=debian\n")]);
        let b = layer(&[file("etc/os-release", b"ID=ubuntu\n")]);
        let fs = flatten(&[a.clone(), b]);
        assert_eq!(
            fs.captured("etc/os-release"),
            Some(&Captured::Bytes(b"ID=ubuntu\n".to_vec()))
        );
        assert_eq!(fs.captured_files().count(), 1);
        let c = layer(&[file("etc/.wh.os-release", b"")]);
        let fs = flatten(&[a, c]);
        assert_eq!(fs.captured("etc/os-release"), None);
        assert_eq!(fs.captured_files().count(), 0);
    }
}
