//! An image archive (`envparity_content::read_archive`) from any bytes,
//! with small caps, then each image analysed and diffed.
//!
//! Asserted, besides "never panics" and "never holds more than the caps":
//! - an error names the archive;
//! - an image diffed against itself has no change, a drift score of 0 and
//!   is within any thresholds;
//! - a diff of two images counts what it lists, and its drift score is
//!   between 0 and 1.
#![no_main]

use envparity_content::{
    DigestKey, ImageContent, Limits, Thresholds, default_ignores, diff, judge, read_archive,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 2_000,
        max_path: 256,
        max_path_bytes: 64 * 1024,
        max_layers: 8,
        max_json: 64 * 1024,
        max_package_file: 16 * 1024,
        max_package_bytes: 64 * 1024,
        max_packages: 200,
    };
    let archive = match read_archive(data, "fuzz.tar", &limits, &DigestKey::Plain) {
        Ok(a) => a,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.tar"), "{e}");
            return;
        }
    };
    let images: Vec<ImageContent> = archive
        .images
        .iter()
        .map(|i| ImageContent::analyse("x", i, &limits))
        .collect();
    for image in &images {
        let same = diff(image, image, &[]);
        assert!(!same.differs(), "{:?}", same.file_changes);
        assert_eq!(same.drift_score, 0.0);
        assert!(judge(&same, &Thresholds::default()).within);
        for p in image.inventory.packages.values() {
            assert!(p.len() <= limits.max_packages);
        }
    }
    if let [a, b, ..] = images.as_slice() {
        let d = diff(a, b, &default_ignores());
        assert_eq!(d.files.total() as usize, d.file_changes.len());
        assert!((0.0..=1.0).contains(&d.drift_score), "{}", d.drift_score);
        assert!((0.0..=1.0).contains(&d.files.file_fraction));
    }
});
