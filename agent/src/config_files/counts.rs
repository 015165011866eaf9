//! What a reading did: why a file was not read (the reason the report
//! carries, and the fixed word the metrics count it under), and the counts
//! of one collection's reading.

use std::collections::BTreeMap;

use envparity_proto::v1::{ConfigFile, ConfigFileState};

/// What one collection's reading did, for the agent's metrics: counts only,
/// never a path or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Mounts whose stats were unchanged: served from the cache.
    pub mounts_unchanged: u64,
    /// Mounts read from the engine (new, or a stat changed).
    pub mounts_read: u64,
    /// Files served from the cache.
    pub files_unchanged: u64,
    /// Files read, flattened and fingerprinted.
    pub files_read: u64,
    /// Files read but in no format they claim (`not parsed`).
    pub files_not_parsed: u64,
    /// Files not read, by reason.
    pub files_not_read: BTreeMap<NotRead, u64>,
    /// Bytes of file content fetched from the engine.
    pub bytes_fetched: u64,
}

/// Why a file was not read, as a fixed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotRead {
    /// Over the per-file bound, or a directory over the archive bound.
    TooLarge,
    /// Over the collection's total; read at a later collection.
    OverTotal,
    /// Binary content.
    Binary,
    /// A symlink that leads nowhere readable (loop, out of the mount,
    /// missing, a directory, an excluded path).
    Symlink,
    /// Anything else (not a regular file).
    Other,
}

impl NotRead {
    /// Every reason, in a fixed order.
    pub const ALL: [NotRead; 5] = [
        NotRead::TooLarge,
        NotRead::OverTotal,
        NotRead::Binary,
        NotRead::Symlink,
        NotRead::Other,
    ];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            NotRead::TooLarge => "too_large",
            NotRead::OverTotal => "over_total",
            NotRead::Binary => "binary",
            NotRead::Symlink => "symlink",
            NotRead::Other => "other",
        }
    }

    pub(super) fn of(reason: &str) -> Self {
        if reason.starts_with("too large") || reason.starts_with("directory archive over") {
            NotRead::TooLarge
        } else if reason.starts_with(OVER_TOTAL) {
            NotRead::OverTotal
        } else if reason == "binary" {
            NotRead::Binary
        } else if reason.starts_with("symlink") {
            NotRead::Symlink
        } else {
            NotRead::Other
        }
    }
}

impl ReadCounts {
    pub(super) fn file(&mut self, file: &ConfigFile) {
        match ConfigFileState::try_from(file.state) {
            Ok(ConfigFileState::Read) => self.files_read += 1,
            Ok(ConfigFileState::NotParsed) => self.files_not_parsed += 1,
            _ => {
                *self
                    .files_not_read
                    .entry(NotRead::of(&file.reason))
                    .or_default() += 1
            }
        }
    }

    pub(super) fn add(&mut self, other: &ReadCounts) {
        self.mounts_unchanged += other.mounts_unchanged;
        self.mounts_read += other.mounts_read;
        self.files_unchanged += other.files_unchanged;
        self.files_read += other.files_read;
        self.files_not_parsed += other.files_not_parsed;
        for (reason, n) in &other.files_not_read {
            *self.files_not_read.entry(*reason).or_default() += n;
        }
        self.bytes_fetched += other.bytes_fetched;
    }
}

/// The start of the reason a file over the collection's budget carries.
pub(super) const OVER_TOTAL: &str = "over the collection's total";

pub(super) fn over_total(total: u64) -> String {
    format!("{OVER_TOTAL} of {total} bytes; read at a later collection")
}

pub(super) fn too_large(size: u64, max: u64) -> String {
    format!("too large: {size} bytes, over the limit of {max}")
}

pub(super) fn not_read(path: &str, reason: String, secret: bool) -> ConfigFile {
    ConfigFile {
        path: path.to_owned(),
        format: String::new(),
        state: ConfigFileState::NotRead as i32,
        reason,
        keys: Vec::new(),
        fingerprint: String::new(),
        secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_not_read_reason_the_reader_gives_is_counted_under_its_own_word() {
        for (reason, counted) in [
            (too_large(300, 200), NotRead::TooLarge),
            (
                "directory archive over 64 bytes".to_owned(),
                NotRead::TooLarge,
            ),
            (over_total(100), NotRead::OverTotal),
            ("binary".to_owned(), NotRead::Binary),
            ("symlink loop".to_owned(), NotRead::Symlink),
            ("symlink out of the mount".to_owned(), NotRead::Symlink),
            ("symlink to an excluded path".to_owned(), NotRead::Symlink),
            ("not a regular file".to_owned(), NotRead::Other),
        ] {
            let mut counts = ReadCounts::default();
            counts.file(&not_read("/etc/app/a.yaml", reason.clone(), false));
            assert_eq!(
                counts.files_not_read,
                BTreeMap::from([(counted, 1)]),
                "{reason}"
            );
        }
    }
}
