//! envparity's content library: what is inside an image, and what differs
//! between two (issue 19).
//!
//! Pure and synchronous: it reads from any [`std::io::Read`], holds no
//! image content but package database files, writes nothing to disk and
//! knows no engine, clock or network. The CLI's `envparity image-diff`
//! feeds it a `docker save` archive or an engine's image export; the agent
//! will feed it the same stream with the fleet key for digests.
//!
//! Read from the bottom up, one job a file:
//! - `bounded`, `tar`, `path`, `digest`: a capped stream, a bounded tar
//!   reader, normalised paths, keyed digests;
//! - `layer`, `config`, `archive`: one layer, one config, one archive;
//! - `flatten`, `wanted`, `packages`, `runtime`, `image`: the flattened
//!   file system and what it says (packages, os-release, runtimes);
//! - `version`: Debian, PEP 440 and semver ordering;
//! - `glob`, `diff`, `threshold`: the diff of two images and its verdict.
//!
//! Every input is untrusted: a cap reached is an error naming the input
//! ([`Limits`], [`ContentError::OverCap`]) or, for one package file, a note
//! in the inventory; nothing is cut silently, and nothing panics (the
//! parsers are fuzzed in `fuzz/`).
#![forbid(unsafe_code)]

pub mod archive;
pub mod bounded;
pub mod config;
pub mod diff;
pub mod digest;
mod error;
pub mod flatten;
pub mod glob;
pub mod image;
pub mod layer;
mod limits;
pub mod packages;
pub mod path;
pub mod runtime;
pub mod tar;
pub mod threshold;
pub mod version;
pub mod wanted;

#[doc(hidden)]
pub mod fixture;

pub use archive::{Archive, ArchivedImage, read_archive};
pub use diff::{ImageDiff, diff};
pub use digest::DigestKey;
pub use error::ContentError;
pub use glob::{Glob, default_ignores};
pub use image::ImageContent;
pub use limits::Limits;
pub use threshold::{SizeLimit, ThresholdMode, Thresholds, Verdict, judge};

#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use crate::layer::{Layer, read_layer};
    use crate::tar::build::{Item, tar};
    use crate::{DigestKey, Limits};

    /// A layer of `items`, read.
    pub(crate) fn layer(items: &[Item]) -> Arc<Layer> {
        Arc::new(
            read_layer(
                &tar(items)[..],
                "l",
                &Limits::default(),
                &DigestKey::Plain,
                &mut crate::layer::Held::default(),
                1000,
            )
            .expect("a built layer reads"),
        )
    }
}
