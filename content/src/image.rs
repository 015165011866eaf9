//! An image, analysed: its flattened file system, layers with their
//! history, runtimes and packages. What [`crate::diff`] compares.

use crate::Limits;
use crate::archive::ArchivedImage;
use crate::flatten::{FileSystem, flatten};
use crate::packages::{Inventory, inventory};
use crate::runtime::{Runtime, from_env, from_symlinks};

/// One layer as the diff shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerInfo {
    /// Its DiffID, as computed from its tar.
    pub diff_id: String,
    /// The history's `created_by` (empty layers dropped so they line up).
    pub created_by: Option<String>,
    /// Bytes of its tar.
    pub size: u64,
}

/// An analysed image.
#[derive(Debug, Clone)]
pub struct ImageContent {
    /// The name it was asked by (a tag, an id or an archive path).
    pub name: String,
    /// Its id (`sha256:` of its config).
    pub id: String,
    /// `os/architecture`, e.g. `linux/amd64`.
    pub platform: String,
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Runtimes from env first, then from symlinks not already named.
    pub runtimes: Vec<Runtime>,
    /// Packages.
    pub inventory: Inventory,
    /// The flattened file system.
    pub fs: FileSystem,
}

impl ImageContent {
    /// Analyses `image`, calling it `name`.
    pub fn analyse(name: &str, image: &ArchivedImage, limits: &Limits) -> Self {
        let fs = flatten(&image.layers);
        let mut runtimes = from_env(&image.config.env);
        for r in from_symlinks(&fs) {
            if !runtimes.iter().any(|have| have.name == r.name) {
                runtimes.push(r);
            }
        }
        ImageContent {
            name: name.to_owned(),
            id: image.id.clone(),
            platform: format!("{}/{}", image.config.os, image.config.architecture),
            layers: image
                .layers
                .iter()
                .zip(&image.config.created_by)
                .map(|(l, created_by)| LayerInfo {
                    diff_id: l.diff_id.clone(),
                    created_by: created_by.clone(),
                    size: l.tar_bytes,
                })
                .collect(),
            runtimes,
            inventory: inventory(&fs, limits),
            fs,
        }
    }

    /// Bytes of regular files in the flattened file system.
    pub fn size(&self) -> u64 {
        self.fs.size()
    }
}
