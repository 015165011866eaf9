//! The caps on what one archive may make us read and hold.
//!
//! Each is a clear error when reached ([`crate::ContentError::OverCap`]),
//! except the package files, which are refused one by one and said so in
//! the inventory's notes: one hostile METADATA file should not hide every
//! other difference.

/// Caps on reading one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of the archive read (the outer tar, layers inside it).
    pub max_bytes: u64,
    /// The most tar entries, outer and inner together.
    pub max_entries: u64,
    /// The longest entry path, in bytes (GNU and PAX long names included).
    pub max_path: usize,
    /// The most bytes of paths and link targets held for one archive (what
    /// the entries' metadata costs in memory).
    pub max_path_bytes: u64,
    /// The most layers of one image.
    pub max_layers: usize,
    /// The largest JSON file of the archive (manifest, config, index).
    pub max_json: u64,
    /// The largest package database file read (dpkg `status`, `METADATA`,
    /// `package.json`, …); a larger one is refused and noted.
    pub max_package_file: u64,
    /// The most bytes of package database files held for one archive.
    pub max_package_bytes: u64,
    /// The most packages of one ecosystem in one image; more are noted as
    /// truncated.
    pub max_packages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 30,
            max_entries: 2_000_000,
            max_path: 4096,
            max_path_bytes: 512 << 20,
            max_layers: 256,
            max_json: 8 << 20,
            max_package_file: 16 << 20,
            max_package_bytes: 256 << 20,
            max_packages: 100_000,
        }
    }
}
