//! One layer tar (`envparity_content::layer::read_layer`, and the tar
//! reader under it) from any bytes, then flattened.
//!
//! Asserted, besides "never panics":
//! - every path kept is normalised (no empty, `.` or `..` component, no
//!   leading `/`) and within the path cap;
//! - no package file held is over its cap;
//! - the DiffID is the SHA-256 of what was read.
#![no_main]

use std::sync::Arc;

use envparity_content::layer::{Captured, read_layer};
use envparity_content::{DigestKey, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_path: 200,
        max_package_file: 4096,
        max_package_bytes: 16 * 1024,
        ..Limits::default()
    };
    let mut held = envparity_content::layer::Held::default();
    let Ok(layer) = read_layer(data, "layer", &limits, &DigestKey::Plain, &mut held, 1_000) else {
        return;
    };
    assert!(held.package_bytes <= limits.max_package_bytes);
    assert!(held.path_bytes <= limits.max_path_bytes);
    assert!(layer.diff_id.starts_with("sha256:") && layer.diff_id.len() == 71);
    assert!(layer.tar_bytes <= data.len() as u64);
    for (path, _) in &layer.entries {
        assert!(path.len() <= limits.max_path, "{path:?}");
        assert!(!path.starts_with('/'), "{path:?}");
        assert!(
            path.is_empty()
                || path
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != ".."),
            "{path:?}"
        );
    }
    for c in layer.captured.values() {
        if let Captured::Bytes(b) = c {
            assert!(b.len() as u64 <= limits.max_package_file);
        }
    }
    let fs = envparity_content::flatten::flatten(&[Arc::new(layer)]);
    let _ = envparity_content::runtime::from_symlinks(&fs);
    let _ = envparity_content::packages::inventory(&fs, &limits);
});
