//! Fingerprint keys: the secret agents use to fingerprint values they must not
//! send in clear. Agents whose environments are compared need the same key.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The key length, in bytes.
pub const FINGERPRINT_KEY_LEN: usize = 32;

/// Writes [`FINGERPRINT_KEY_LEN`] random bytes to a new file at `path`,
/// readable by its owner only (mode 0600). Fails if the file exists.
pub fn write_fingerprint_key(path: &Path) -> Result<()> {
    let mut key = [0u8; FINGERPRINT_KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .map_err(Error::io("read /dev/urandom"))?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(&key))
        .map_err(Error::io(format!(
            "write fingerprint key {}",
            path.display()
        )))
}
