//! The host's own identity, as the kernel and the OS know it: its machine
//! id and its hostname. The configuration derives the default host id from
//! them, and the collector reports the hostname; both read them here.

use std::path::Path;

use sysinfo::System;

/// The machine id under `root` (`etc/machine-id`, trimmed), if present and
/// non-empty. It identifies a host stably across renames and reboots, which
/// a hostname does not.
pub fn read_machine_id(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("etc/machine-id")).ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The host's name as the kernel knows it.
pub fn hostname() -> Option<String> {
    System::host_name().filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_is_trimmed_and_empty_counts_as_missing() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_machine_id(root.path()), None);
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/machine-id"), "  \n").unwrap();
        assert_eq!(read_machine_id(root.path()), None);
        std::fs::write(root.path().join("etc/machine-id"), "abc123\n").unwrap();
        assert_eq!(read_machine_id(root.path()).as_deref(), Some("abc123"));
    }
}
