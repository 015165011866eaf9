//! The diff of two analysed images: files, sizes, packages, runtimes and
//! layers. Pure: two [`ImageContent`]s in, one [`ImageDiff`] out.
//!
//! - Files are merge-joined by path; mtime is never compared (it is not
//!   even kept), so a rebuild that only touched timestamps is no change.
//!   Directories are not counted: their contents are. Paths matching an
//!   `ignore` glob are counted as ignored, not as changes.
//! - A changed file's bytes are the larger of its two sizes; an added or
//!   removed file's are its size. The drift score is those bytes over the
//!   larger image's bytes (regular files of the flattened file system);
//!   the file fraction is the changed files over the larger file count.
//! - Each change is attributed to the layer that last wrote the path (in
//!   the second image, or in the first for a removal).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::glob::Glob;
use crate::image::{ImageContent, LayerInfo};
use crate::layer::FileMeta;
use crate::packages::{Ecosystem, OsRelease};
use crate::tar::EntryKind;
use crate::version;

/// How many directories [`ImageDiff::top_dirs`] lists.
pub const TOP_DIRS: usize = 10;
/// How deep a directory of [`ImageDiff::top_dirs`] is (`usr/lib`).
const DIR_DEPTH: usize = 2;

/// One image, as the diff describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// As asked for.
    pub name: String,
    /// Image id.
    pub id: String,
    /// `os/architecture`.
    pub platform: String,
    /// Bytes of regular files.
    pub size: u64,
    /// Entries that are not directories.
    pub files: u64,
    /// Its layers.
    pub layers: Vec<LayerInfo>,
    /// Its os-release.
    pub os: Option<OsRelease>,
    /// What could not be read.
    pub notes: Vec<String>,
    /// Whether a package list was cut at its cap (a note names it).
    pub truncated: bool,
}

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChangeKind {
    /// Only in the second image.
    Added,
    /// Only in the first image.
    Removed,
    /// In both, different.
    Changed,
}

/// One path that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// The path, from the root, without a leading `/`.
    pub path: String,
    /// Added, removed or changed.
    pub change: FileChangeKind,
    /// What differs, for a change: `type`, `content`, `mode`, `owner`,
    /// `link`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
    /// Size in the first image.
    pub size_a: Option<u64>,
    /// Size in the second image.
    pub size_b: Option<u64>,
    /// The layer (index, bottom = 0) that wrote it last: in the second
    /// image, or in the first for a removal.
    pub layer: usize,
}

impl FileChange {
    /// The bytes this change counts for.
    pub fn bytes(&self) -> u64 {
        self.size_a.unwrap_or(0).max(self.size_b.unwrap_or(0))
    }
}

/// File figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileSummary {
    /// Paths only in the second image.
    pub added: u64,
    /// Paths only in the first image.
    pub removed: u64,
    /// Paths in both that differ.
    pub changed: u64,
    /// Differing paths left out by `ignore_paths`.
    pub ignored: u64,
    /// Bytes of the added, removed and changed files.
    pub bytes_changed: u64,
    /// Changed files (added + removed + changed) over the larger image's
    /// file count, 0 to 1.
    pub file_fraction: f64,
}

impl FileSummary {
    /// Added + removed + changed.
    pub fn total(&self) -> u64 {
        self.added + self.removed + self.changed
    }
}

/// A package and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageVersion {
    /// Name (`name:arch` for dpkg).
    pub name: String,
    /// Version.
    pub version: String,
}

/// A package in both images at different versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// Name.
    pub name: String,
    /// In the first image.
    pub from: String,
    /// In the second image.
    pub to: String,
    /// `upgrade`, `downgrade`, or `same` (spelled differently, equal by the
    /// ecosystem's ordering, e.g. `1.0` and `1.0.0` in Python).
    pub direction: &'static str,
}

/// One ecosystem's package differences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// Packages in the first image.
    pub count_a: usize,
    /// Packages in the second image.
    pub count_b: usize,
    /// Only in the second image.
    pub added: Vec<PackageVersion>,
    /// Only in the first image.
    pub removed: Vec<PackageVersion>,
    /// In both at different versions.
    pub changed: Vec<PackageChange>,
}

impl PackageDiff {
    /// Added + removed + changed.
    pub fn total(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }
}

/// One runtime, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimePair {
    /// `python`, `node`, …
    pub name: String,
    /// Version in the first image.
    pub a: Option<String>,
    /// Version in the second image.
    pub b: Option<String>,
    /// Whether they differ.
    pub differs: bool,
}

/// How the two layer stacks relate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerComparison {
    /// Bottom layers the two images share (same DiffID, same position).
    pub shared: usize,
    /// The first layer (index) that differs; `None` when the stacks are
    /// the same.
    pub diverges_at: Option<usize>,
    /// That layer's `created_by` in the first image.
    pub created_by_a: Option<String>,
    /// That layer's `created_by` in the second image.
    pub created_by_b: Option<String>,
}

/// A directory's share of the changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirChange {
    /// The directory, at most two components deep (`usr/lib`).
    pub dir: String,
    /// Changed files under it.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The diff of two images.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    /// The first image (the baseline).
    pub a: Side,
    /// The second image (the candidate).
    pub b: Side,
    /// File figures.
    pub files: FileSummary,
    /// Size of the second minus size of the first, in bytes.
    pub size_delta: i64,
    /// Bytes changed over the larger image's bytes, 0 to 1.
    pub drift_score: f64,
    /// Every differing path, sorted by path.
    pub file_changes: Vec<FileChange>,
    /// Per ecosystem present in either image.
    pub packages: Vec<PackageDiff>,
    /// Runtimes of either image.
    pub runtimes: Vec<RuntimePair>,
    /// The layer stacks.
    pub layers: LayerComparison,
    /// The directories with the most changed bytes, at most [`TOP_DIRS`].
    pub top_dirs: Vec<DirChange>,
}

impl ImageDiff {
    /// Packages added, removed or changed, over every ecosystem.
    pub fn packages_changed(&self) -> u64 {
        self.packages.iter().map(|p| p.total() as u64).sum()
    }

    /// Whether anything differs at all (files, packages or runtimes).
    pub fn differs(&self) -> bool {
        self.files.total() > 0
            || self.packages_changed() > 0
            || self.runtimes.iter().any(|r| r.differs)
    }
}

fn side(image: &ImageContent) -> Side {
    Side {
        name: image.name.clone(),
        id: image.id.clone(),
        platform: image.platform.clone(),
        size: image.size(),
        files: image
            .fs
            .files
            .values()
            .filter(|e| e.meta.kind != EntryKind::Dir)
            .count() as u64,
        layers: image.layers.clone(),
        os: image.inventory.os.clone(),
        notes: image.inventory.notes.clone(),
        truncated: image.inventory.truncated,
    }
}

fn what_differs(a: &FileMeta, b: &FileMeta) -> Vec<&'static str> {
    let mut what = Vec::new();
    if a.kind != b.kind {
        what.push("type");
    }
    if a.digest != b.digest || a.size != b.size {
        what.push("content");
    }
    if a.mode != b.mode {
        what.push("mode");
    }
    if a.uid != b.uid || a.gid != b.gid {
        what.push("owner");
    }
    if a.link != b.link {
        what.push("link");
    }
    what
}

/// The diff of `a` (baseline) and `b` (candidate); paths matching `ignore`
/// are left out.
pub fn diff(a: &ImageContent, b: &ImageContent, ignore: &[Glob]) -> ImageDiff {
    let ignored = |p: &str| ignore.iter().any(|g| g.matches(p));
    let mut files = FileSummary::default();
    let mut changes = Vec::new();
    let size_of = |m: &FileMeta| {
        (m.kind == EntryKind::File || m.kind == EntryKind::Hardlink).then_some(m.size)
    };
    let mut ia =
        a.fs.files
            .iter()
            .filter(|(_, e)| e.meta.kind != EntryKind::Dir)
            .peekable();
    let mut ib =
        b.fs.files
            .iter()
            .filter(|(_, e)| e.meta.kind != EntryKind::Dir)
            .peekable();
    loop {
        let order = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
        };
        let change = match order {
            Ordering::Less => {
                let (path, ea) = ia.next().expect("peeked");
                FileChange {
                    path: path.clone(),
                    change: FileChangeKind::Removed,
                    what: Vec::new(),
                    size_a: size_of(&ea.meta),
                    size_b: None,
                    layer: ea.layer,
                }
            }
            Ordering::Greater => {
                let (path, eb) = ib.next().expect("peeked");
                FileChange {
                    path: path.clone(),
                    change: FileChangeKind::Added,
                    what: Vec::new(),
                    size_a: None,
                    size_b: size_of(&eb.meta),
                    layer: eb.layer,
                }
            }
            Ordering::Equal => {
                let (path, ea) = ia.next().expect("peeked");
                let (_, eb) = ib.next().expect("peeked");
                let what = what_differs(&ea.meta, &eb.meta);
                if what.is_empty() {
                    continue;
                }
                FileChange {
                    path: path.clone(),
                    change: FileChangeKind::Changed,
                    what,
                    size_a: size_of(&ea.meta),
                    size_b: size_of(&eb.meta),
                    layer: eb.layer,
                }
            }
        };
        if ignored(&change.path) {
            files.ignored += 1;
            continue;
        }
        match change.change {
            FileChangeKind::Added => files.added += 1,
            FileChangeKind::Removed => files.removed += 1,
            FileChangeKind::Changed => files.changed += 1,
        }
        files.bytes_changed += change.bytes();
        changes.push(change);
    }
    let (sa, sb) = (side(a), side(b));
    let larger_files = sa.files.max(sb.files);
    files.file_fraction = if larger_files == 0 {
        0.0
    } else {
        files.total() as f64 / larger_files as f64
    };
    let larger = sa.size.max(sb.size);
    let drift_score = if larger == 0 {
        0.0
    } else {
        (files.bytes_changed as f64 / larger as f64).min(1.0)
    };
    ImageDiff {
        size_delta: i64::try_from(sb.size).unwrap_or(i64::MAX)
            - i64::try_from(sa.size).unwrap_or(i64::MAX),
        drift_score,
        top_dirs: top_dirs(&changes),
        file_changes: changes,
        packages: packages(a, b),
        runtimes: runtimes(a, b),
        layers: layers(&a.layers, &b.layers),
        files,
        a: sa,
        b: sb,
    }
}

fn top_dirs(changes: &[FileChange]) -> Vec<DirChange> {
    let mut dirs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in changes {
        let parts: Vec<&str> = c.path.split('/').collect();
        let depth = (parts.len() - 1).min(DIR_DEPTH);
        let dir = if depth == 0 {
            "/".to_owned()
        } else {
            parts[..depth].join("/")
        };
        let e = dirs.entry(dir).or_default();
        e.0 += 1;
        e.1 += c.bytes();
    }
    let mut out: Vec<DirChange> = dirs
        .into_iter()
        .map(|(dir, (files, bytes))| DirChange { dir, files, bytes })
        .collect();
    out.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then(y.files.cmp(&x.files))
            .then(x.dir.cmp(&y.dir))
    });
    out.truncate(TOP_DIRS);
    out
}

fn packages(a: &ImageContent, b: &ImageContent) -> Vec<PackageDiff> {
    let ecosystems: BTreeSet<Ecosystem> = a
        .inventory
        .packages
        .keys()
        .chain(b.inventory.packages.keys())
        .copied()
        .collect();
    let empty = BTreeMap::new();
    ecosystems
        .into_iter()
        .map(|eco| {
            let pa = a.inventory.packages.get(&eco).unwrap_or(&empty);
            let pb = b.inventory.packages.get(&eco).unwrap_or(&empty);
            let mut d = PackageDiff {
                ecosystem: eco,
                count_a: pa.len(),
                count_b: pb.len(),
                added: Vec::new(),
                removed: Vec::new(),
                changed: Vec::new(),
            };
            for (name, va) in pa {
                match pb.get(name) {
                    None => d.removed.push(PackageVersion {
                        name: name.clone(),
                        version: va.clone(),
                    }),
                    Some(vb) if vb != va => d.changed.push(PackageChange {
                        name: name.clone(),
                        from: va.clone(),
                        to: vb.clone(),
                        direction: match version::compare(eco, va, vb) {
                            Ordering::Less => "upgrade",
                            Ordering::Greater => "downgrade",
                            Ordering::Equal => "same",
                        },
                    }),
                    Some(_) => {}
                }
            }
            for (name, vb) in pb {
                if !pa.contains_key(name) {
                    d.added.push(PackageVersion {
                        name: name.clone(),
                        version: vb.clone(),
                    });
                }
            }
            d
        })
        .collect()
}

fn runtimes(a: &ImageContent, b: &ImageContent) -> Vec<RuntimePair> {
    let names: BTreeSet<&str> = a
        .runtimes
        .iter()
        .chain(&b.runtimes)
        .map(|r| r.name.as_str())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let find = |img: &ImageContent| {
                img.runtimes
                    .iter()
                    .find(|r| r.name == name)
                    .map(|r| r.version.clone())
            };
            let (va, vb) = (find(a), find(b));
            RuntimePair {
                name: name.to_owned(),
                differs: va != vb,
                a: va,
                b: vb,
            }
        })
        .collect()
}

fn layers(a: &[LayerInfo], b: &[LayerInfo]) -> LayerComparison {
    let shared = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| x.diff_id == y.diff_id)
        .count();
    let diverges = shared < a.len().max(b.len());
    LayerComparison {
        shared,
        diverges_at: diverges.then_some(shared),
        created_by_a: a
            .get(shared)
            .filter(|_| diverges)
            .and_then(|l| l.created_by.clone()),
        created_by_b: b
            .get(shared)
            .filter(|_| diverges)
            .and_then(|l| l.created_by.clone()),
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
