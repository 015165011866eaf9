//! The answer of `image-diff`, as JSON and YAML print it
//! (docs/image-diff.md): the diff's sections that `--type` selects, the
//! thresholds and the verdict.

use clap::ValueEnum;
use envparity_content::diff::{
    DirChange, FileChange, FileSummary, LayerComparison, PackageDiff, RuntimePair, Side,
};
use envparity_content::packages::Ecosystem;
use envparity_content::{Glob, ImageDiff, Thresholds, Verdict};
use serde::Serialize;

use crate::cli::output::SCHEMA_VERSION;

/// What `--type` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffType {
    /// Language runtimes side by side.
    Runtime,
    /// Debian packages (dpkg status and status.d).
    Apt,
    /// Alpine packages.
    Apk,
    /// RPM packages (the database is found, not parsed yet).
    Rpm,
    /// Python distributions.
    Pip,
    /// Node packages.
    Node,
    /// Files added, removed and changed, and the top directories.
    File,
    /// Sizes, the size change and the drift score.
    Size,
    /// Each image's layers with their created_by.
    History,
    /// Shared layers and where the images diverge.
    Layer,
}

impl DiffType {
    fn ecosystem(self) -> Option<Ecosystem> {
        match self {
            DiffType::Apt => Some(Ecosystem::Apt),
            DiffType::Apk => Some(Ecosystem::Apk),
            DiffType::Rpm => Some(Ecosystem::Rpm),
            DiffType::Pip => Some(Ecosystem::Pip),
            DiffType::Node => Some(Ecosystem::Node),
            _ => None,
        }
    }
}

/// Whether `t` is selected (no `--type` selects all).
pub fn shows(types: &[DiffType], t: DiffType) -> bool {
    types.is_empty() || types.contains(&t)
}

/// Sizes and the drift score.
#[derive(Debug, Clone, Serialize)]
pub struct SizeFigures {
    /// Bytes of regular files in IMAGE_A.
    pub size_a: u64,
    /// In IMAGE_B.
    pub size_b: u64,
    /// `size_b - size_a`.
    pub size_delta: i64,
    /// Changed bytes over the larger image, 0 to 1.
    pub drift_score: f64,
    /// Changed files over the larger file count, 0 to 1.
    pub file_fraction: f64,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiffReport {
    /// Version of this schema.
    pub schema_version: u32,
    /// The first image.
    pub a: Side,
    /// The second image.
    pub b: Side,
    /// The verdict, naming the figures.
    pub verdict: Verdict,
    /// The thresholds judged.
    pub thresholds: Thresholds,
    /// The globs whose changes did not count.
    pub ignore_paths: Vec<String>,
    /// `--type size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<SizeFigures>,
    /// `--type file`: figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileSummary>,
    /// `--type file`: the directories with the most changed bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_dirs: Option<Vec<DirChange>>,
    /// `--type file`: every changed path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_changes: Option<Vec<FileChange>>,
    /// `--type apt|apk|rpm|pip|node`: per ecosystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<PackageDiff>>,
    /// `--type runtime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<Vec<RuntimePair>>,
    /// `--type layer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayerComparison>,
}

impl ImageDiffReport {
    /// The answer for `d`, showing `types`.
    pub fn new(
        d: ImageDiff,
        verdict: Verdict,
        thresholds: Thresholds,
        ignore: &[Glob],
        types: &[DiffType],
    ) -> Self {
        let mut a = d.a;
        let mut b = d.b;
        if !shows(types, DiffType::History) {
            a.layers.clear();
            b.layers.clear();
        }
        let show_file = shows(types, DiffType::File);
        let packages: Vec<PackageDiff> = d
            .packages
            .into_iter()
            .filter(|p| {
                types.is_empty() || types.iter().any(|t| t.ecosystem() == Some(p.ecosystem))
            })
            .collect();
        let any_eco = types.is_empty() || types.iter().any(|t| t.ecosystem().is_some());
        ImageDiffReport {
            schema_version: SCHEMA_VERSION,
            size: shows(types, DiffType::Size).then_some(SizeFigures {
                size_a: a.size,
                size_b: b.size,
                size_delta: d.size_delta,
                drift_score: d.drift_score,
                file_fraction: d.files.file_fraction,
            }),
            a,
            b,
            verdict,
            thresholds,
            ignore_paths: ignore.iter().map(|g| g.as_str().to_owned()).collect(),
            files: show_file.then(|| d.files.clone()),
            top_dirs: show_file.then_some(d.top_dirs),
            file_changes: show_file.then_some(d.file_changes),
            packages: any_eco.then_some(packages),
            runtimes: shows(types, DiffType::Runtime).then_some(d.runtimes),
            layers: shows(types, DiffType::Layer).then_some(d.layers),
        }
    }
}

/// `d` with only what `types` selects, for the verdict without
/// thresholds: `--type apt` exits 1 only when Debian packages differ.
pub fn restrict(d: &ImageDiff, types: &[DiffType]) -> ImageDiff {
    let mut d = d.clone();
    if types.is_empty() {
        return d;
    }
    if !shows(types, DiffType::File) && !shows(types, DiffType::Size) {
        d.files = FileSummary::default();
    }
    if !shows(types, DiffType::Runtime) {
        d.runtimes.clear();
    }
    d.packages
        .retain(|p| types.iter().any(|t| t.ecosystem() == Some(p.ecosystem)));
    d
}
