//! Env value fingerprints and the fleet key that makes them.
//!
//! A fingerprint lets the aggregator tell whether two hosts run with the same
//! value for a variable without ever seeing the value. It is an HMAC, not a
//! plain hash: env values are often low-entropy (`true`, `8080`, short
//! passwords), and a keyed MAC keeps anyone holding only the snapshots from
//! confirming a guess offline. Every agent of a fleet shares the key, so equal
//! values fingerprint equally on every host.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Domain separation for env fingerprints; bumping the version suffix makes
/// every old fingerprint incomparable, which is what a format change needs.
const ENV_DOMAIN: &[u8] = b"envparity-env-v1\0";

/// Domain separation for the derived key id, so the id never equals any
/// fingerprint or other use of the key.
const KEY_ID_DOMAIN: &[u8] = b"envparity-key-id\0";

/// Shortest fleet key accepted, in bytes. 16 random bytes are plenty for an
/// HMAC key; anything shorter is probably a placeholder someone forgot.
pub const MIN_KEY_LEN: usize = 16;

/// Why the fleet key could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be stat'ed or read.
    #[error("fingerprint key file {}: {error}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error (shown in the message, not chained, so
        /// `{:#}` prints it once).
        error: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error(
        "fingerprint key file {}: mode {mode:04o} lets group or others read the fleet key; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key is shorter than [`MIN_KEY_LEN`].
    #[error("fingerprint key file {}: key is {len} bytes, at least {MIN_KEY_LEN} are required", path.display())]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// The key length after trimming the trailing newline.
        len: usize,
    },
}

/// The fleet key: the secret every agent of a fleet shares to fingerprint env
/// values. Its `Debug` output never shows the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey(Vec<u8>);

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FleetKey(<{} bytes redacted>)", self.0.len())
    }
}

impl FleetKey {
    /// Reads the key from `path`: raw bytes, one trailing newline (`\n` or
    /// `\r\n`) trimmed so `echo`-written files work.
    ///
    /// Refuses a file that group or others may read (`mode & 0o077 != 0`)
    /// before reading it: a key that leaked to other local users lets them
    /// brute-force every fingerprint in the fleet.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let read_err = |error| KeyError::Read {
            path: path.to_owned(),
            error,
        };
        let mode = std::fs::metadata(path)
            .map_err(read_err)?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = std::fs::read(path).map_err(read_err)?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                path: path.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }

    /// A key from bytes already in memory (tests, embedding).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The default key id: `k` followed by the first 12 hex characters of
    /// SHA-256(`"envparity-key-id\0"` ‖ key). Agents sharing a key derive the
    /// same id without coordination, and 48 bits reveal nothing usable about
    /// the key.
    pub fn derived_id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(&self.0)
            .finalize();
        let mut id = String::from("k");
        id.push_str(&hex::encode(digest)[..12]);
        id
    }

    /// The fingerprint of one env entry: lower hex
    /// HMAC-SHA256(key, `"envparity-env-v1\0"` ‖ name ‖ `"\0"` ‖ value).
    ///
    /// The name is part of the input so that equal values under different
    /// names (`DB_PASSWORD=x`, `CACHE_PASSWORD=x`) are not linkable across
    /// variables, and the NUL separator keeps `("AB", "C")` and `("A", "BC")`
    /// apart.
    pub fn fingerprint(&self, name: &str, value: &str) -> String {
        self.fingerprint_bytes(name, value.as_bytes())
    }

    /// [`Self::fingerprint`] of a value that need not be UTF-8: the same
    /// construction, so a config file's whole content and its keys are
    /// fingerprinted exactly like env values.
    pub fn fingerprint_bytes(&self, name: &str, value: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(ENV_DOMAIN);
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;

    use proptest::prelude::*;

    use super::*;

    fn key(bytes: &[u8]) -> FleetKey {
        FleetKey::from_bytes(bytes)
    }

    #[test]
    fn same_inputs_give_the_same_fingerprint() {
        let k = key(b"0123456789abcdef");
        assert_eq!(k.fingerprint("A", "1"), k.fingerprint("A", "1"));
    }

    #[test]
    fn fingerprint_is_lower_hex_of_64_chars() {
        let fp = key(b"0123456789abcdef").fingerprint("A", "1");
        assert_eq!(fp.len(), 64);
        assert!(
            fp.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{fp}"
        );
    }

    #[test]
    fn fingerprint_depends_on_the_key() {
        let a = key(b"0123456789abcdef").fingerprint("A", "1");
        let b = key(b"0123456789abcdeg").fingerprint("A", "1");
        assert_ne!(a, b);
    }

    #[test]
    fn fingerprint_is_bound_to_the_name() {
        let k = key(b"0123456789abcdef");
        assert_ne!(
            k.fingerprint("DB_PASSWORD", "x"),
            k.fingerprint("CACHE_PASSWORD", "x")
        );
        // The separator keeps the name/value boundary unambiguous.
        assert_ne!(k.fingerprint("AB", "C"), k.fingerprint("A", "BC"));
    }

    #[test]
    fn fingerprint_matches_the_documented_construction() {
        // Pins the wire format: every agent of a fleet, in any version, must
        // compute exactly this.
        let k = key(b"0123456789abcdef");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(b"envparity-env-v1\0NAME\0value");
        assert_eq!(
            k.fingerprint("NAME", "value"),
            hex::encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn derived_key_id_is_k_plus_12_hex_and_key_dependent() {
        let a = key(b"0123456789abcdef").derived_id();
        let b = key(b"0123456789abcdeX").derived_id();
        assert_eq!(a.len(), 13);
        assert!(a.starts_with('k'));
        assert_ne!(a, b);
        let expected = hex::encode(Sha256::digest(b"envparity-key-id\x000123456789abcdef"));
        assert_eq!(a, format!("k{}", &expected[..12]));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", key(b"supersecretkeybytes!"));
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    fn write_key(contents: &[u8], mode: u32) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        std::fs::set_permissions(file.path(), Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn key_file_readable_by_others_is_refused_naming_path_and_mode() {
        let file = write_key(b"0123456789abcdef\n", 0o644);
        let err = FleetKey::load(file.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, KeyError::Permissions { mode: 0o644, .. }),
            "{msg}"
        );
        assert!(msg.contains(&file.path().display().to_string()), "{msg}");
        assert!(msg.contains("0644"), "{msg}");
    }

    #[test]
    fn key_file_readable_by_group_is_refused() {
        let file = write_key(b"0123456789abcdef\n", 0o640);
        assert!(matches!(
            FleetKey::load(file.path()),
            Err(KeyError::Permissions { mode: 0o640, .. })
        ));
    }

    #[test]
    fn private_key_file_loads_with_trailing_newline_trimmed() {
        let file = write_key(b"0123456789abcdef\n", 0o600);
        let loaded = FleetKey::load(file.path()).unwrap();
        assert_eq!(loaded, key(b"0123456789abcdef"));
        let file = write_key(b"0123456789abcdef\r\n", 0o400);
        assert_eq!(
            FleetKey::load(file.path()).unwrap(),
            key(b"0123456789abcdef")
        );
    }

    #[test]
    fn short_key_is_refused() {
        let file = write_key(b"short\n", 0o600);
        let err = FleetKey::load(file.path()).unwrap_err();
        assert!(matches!(err, KeyError::TooShort { len: 5, .. }), "{err}");
    }

    #[test]
    fn missing_key_file_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.key");
        let msg = FleetKey::load(&path).unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    proptest! {
        #[test]
        fn fingerprint_never_contains_the_value(
            name in "[A-Z_]{1,12}",
            value in "[a-f0-9]{12,40}",
        ) {
            let fp = key(b"0123456789abcdef").fingerprint(&name, &value);
            prop_assert!(!fp.contains(&value));
        }

        #[test]
        fn different_values_give_different_fingerprints(
            name in "[A-Z_]{1,12}",
            a in ".{0,20}",
            b in ".{0,20}",
        ) {
            prop_assume!(a != b);
            let k = key(b"0123456789abcdef");
            prop_assert_ne!(k.fingerprint(&name, &a), k.fingerprint(&name, &b));
        }
    }
}
