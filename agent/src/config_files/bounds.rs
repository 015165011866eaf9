//! Which mounted files the reader reads, and how much of them.

use crate::clear_env::glob_match;

/// The most bytes streamed of one mounted directory's archive.
pub const MAX_ARCHIVE_BYTES: usize = 64 * 1024 * 1024;

/// Which files are read, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Globs of container paths to read (`*` matches any run, `/` included).
    pub include: Vec<String>,
    /// Globs of container paths never read.
    pub exclude: Vec<String>,
    /// Most files reported per container; 0 turns reading off.
    pub max_files: usize,
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes read per collection, across all containers.
    pub max_total_bytes: u64,
}

impl Bounds {
    /// The default include globs.
    pub const DEFAULT_INCLUDE: &[&str] =
        &["/etc/*", "/config/*", "/app/config/*", "/run/secrets/*"];

    pub(super) fn wanted(&self, path: &str) -> bool {
        self.include.iter().any(|g| glob_match(g, path))
            && !self.exclude.iter().any(|g| glob_match(g, path))
    }

    /// Whether anything under the mount at `destination` could be wanted.
    pub(super) fn may_hold_wanted(&self, destination: &str) -> bool {
        let inside = format!("{}/x", destination.trim_end_matches('/'));
        self.include
            .iter()
            .any(|g| glob_match(g, destination) || glob_match(g, &inside))
    }
}
