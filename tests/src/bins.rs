//! Finding this workspace's binaries (`envparity`, `envparity-agent`).
//!
//! `CARGO_BIN_EXE_*` only exists for binaries of the test's own package, so
//! the harness looks next to the test executable instead: a test binary runs
//! from `target/<profile>/deps/`, the binaries sit in `target/<profile>/`.
//! `scripts/test.sh` builds the whole workspace before testing.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Overrides where the binaries are looked up (e.g. a release build or an
/// installed copy).
pub const BIN_DIR_ENV: &str = "ENVPARITY_BIN_DIR";

/// The dir holding the workspace's binaries for the profile this test was built with.
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe().map_err(Error::io("locate the test executable"))?;
    let mut dir = exe.parent().ok_or_else(|| {
        Error::unexpected(
            "locate the target dir",
            format!("{} has no parent", exe.display()),
        )
    })?;
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    Ok(dir.to_path_buf())
}

/// The path of workspace binary `name`; fails, telling how to build it, if
/// it has not been built.
pub fn cargo_bin(name: &str) -> Result<PathBuf> {
    let path = bin_dir()?.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            name: name.to_owned(),
            path,
        })
    }
}
