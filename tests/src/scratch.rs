//! A temp dir that takes everything inside it down when dropped.
//!
//! dockerd mounts inside its data and exec roots, and containerd leaves shims
//! behind when it is killed; a plain `remove_dir_all` fails or leaks on those.
//! [`ScratchDir`] tears down in the order that works: end every process that
//! belongs to the dir (by pid), unmount what is mounted under it (deepest
//! first, lazily when busy), then remove it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::mount::UnmountFlags;

use crate::error::{Error, Result};
use crate::pids;

/// Set to keep test dirs (logs, registry storage, aggregator data) after a run;
/// processes are still stopped and mounts still removed.
pub const KEEP_ENV: &str = "ENVPARITY_E2E_KEEP";

/// The prefix of every dir the harness creates, for finding leftovers:
/// `pgrep -f envparity-e2e.` must print nothing after a test run.
pub const PREFIX: &str = "envparity-e2e.";

/// An owned directory, torn down (processes, mounts, files) on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    torn_down: bool,
}

impl ScratchDir {
    /// A new, uniquely named dir in the system temp dir.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir()
            .map_err(Error::io("create a temp dir"))?;
        // Canonical, so prefix checks against /proc links and mountinfo agree.
        let path = dir.keep();
        let path = path
            .canonicalize()
            .map_err(Error::io(format!("canonicalize {}", path.display())))?;
        Ok(Self {
            path,
            torn_down: false,
        })
    }

    /// A new dir `parent/name`; it must not exist yet.
    pub fn child(parent: &Path, name: &str) -> Result<Self> {
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            return Err(Error::unexpected(
                format!("scratch dir name {name:?}"),
                "must be one non-empty path component",
            ));
        }
        let path = parent.join(name);
        std::fs::create_dir(&path).map_err(Error::io(format!("create {}", path.display())))?;
        Ok(Self {
            path,
            torn_down: false,
        })
    }

    /// The dir.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tears down now and reports what could not be cleaned (drop does the
    /// same silently).
    pub fn teardown(mut self) -> Result<()> {
        self.torn_down = true;
        teardown(&self.path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.torn_down
            && let Err(error) = teardown(&self.path)
        {
            eprintln!("envparity-tests: {error}");
        }
    }
}

/// Ends every process belonging to `dir`, unmounts everything under it and
/// removes it (unless [`KEEP_ENV`] is set).
pub fn teardown(dir: &Path) -> Result<()> {
    let survivors = pids::terminate(&pids::processes_under(dir), Duration::from_secs(5));
    if !survivors.is_empty() {
        return Err(Error::Cleanup {
            path: dir.into(),
            detail: format!("processes that survived SIGKILL: {survivors:?}"),
        });
    }
    pids::reap_orphans();
    unmount_all_under(dir)?;
    if std::env::var_os(KEEP_ENV).is_some() {
        eprintln!(
            "envparity-tests: kept {} ({KEEP_ENV} is set)",
            dir.display()
        );
        return Ok(());
    }
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", dir.display()))(error))
        }
        _ => Ok(()),
    }
}

/// Mount points at or under `dir`, deepest first, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect();
    mounts.sort_by_key(|mount| std::cmp::Reverse(mount.components().count()));
    mounts.dedup();
    mounts
}

/// Unmounts everything under `dir`, deepest first; a busy mount is detached
/// (lazy unmount) instead. Stacked mounts need several passes.
fn unmount_all_under(dir: &Path) -> Result<()> {
    for _pass in 0..8 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for mount in mounts {
            if rustix::mount::unmount(&mount, UnmountFlags::empty()).is_err() {
                // Already gone (EINVAL) or busy (EBUSY): detaching covers both.
                let _ = rustix::mount::unmount(&mount, UnmountFlags::DETACH);
            }
        }
    }
    let left = mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::Cleanup {
            path: dir.into(),
            detail: format!("mounts that would not unmount: {left:?}"),
        })
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/odd\04"), r"/odd\04");
    }
}
