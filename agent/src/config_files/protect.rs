//! What of a config file's values may leave the host: keyed fingerprints
//! always, clear values only where allowlisted and never for secrets.
//!
//! Fingerprints use the env construction ([`FleetKey::fingerprint`]) with a
//! name that binds them to the file and the key path: `file-key` NUL path NUL
//! key path for a key, `file` NUL path for a whole file. No env name holds a
//! NUL, so no config fingerprint can equal an env fingerprint, and equal
//! values under different keys or files are not linkable.
//!
//! Clear values follow `--clear-config FILE_GLOB=KEY_PATTERN`: the key
//! pattern is matched by the `--clear-env` mechanism
//! ([`ClearEnvPolicy`]), so a key path that looks secret
//! (`database.password`) or a value that carries a credential stays
//! fingerprinted even when allowlisted. A file in a secret mount
//! ([`is_secret_mount`]) is never sent in clear, whatever the allowlist says.

use crate::clear_env::{ClearEnvPolicy, glob_match};
use crate::fingerprint::FleetKey;

/// Longest value sent in clear.
pub const MAX_CLEAR_LEN: usize = 4096;

/// One key of a file as it leaves the host: always its fingerprint, as for
/// an env value, and its value only where allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// The key path (`server.tls.enabled`).
    pub path: String,
    /// The keyed fingerprint (64 lower hex digits).
    pub fingerprint: String,
    /// The value itself (allowlisted, not secret), or `None`.
    pub value: Option<String>,
}

impl From<ConfigKey> for envparity_proto::v1::ConfigKey {
    fn from(k: ConfigKey) -> Self {
        Self {
            path: k.path,
            fingerprint: k.fingerprint,
            value: k.value,
        }
    }
}

/// The `--clear-config` allowlist: key patterns per file glob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearConfigPolicy {
    rules: Vec<(String, ClearEnvPolicy)>,
}

/// A `--clear-config` entry that is not `FILE_GLOB=KEY_PATTERN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "clear-config entry {entry:?}: expected FILE_GLOB=KEY_PATTERN, e.g. /etc/app/*.yaml=features.*"
)]
pub struct ClearConfigError {
    /// The entry as given.
    pub entry: String,
}

impl ClearConfigPolicy {
    /// Parses entries `FILE_GLOB=KEY_PATTERN` (split at the first `=`; `*`
    /// in either matches any run of characters, `/` included).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, ClearConfigError> {
        let mut rules = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            match entry.split_once('=') {
                Some((file, key)) if file.starts_with('/') && !key.is_empty() => {
                    rules.push((file.to_owned(), ClearEnvPolicy::new([key])));
                }
                _ => {
                    return Err(ClearConfigError {
                        entry: entry.to_owned(),
                    });
                }
            }
        }
        Ok(Self { rules })
    }

    /// Whether `value` at `key` of the file at `path` may go in clear.
    pub fn allows(&self, path: &str, key: &str, value: &str) -> bool {
        self.rules
            .iter()
            .any(|(glob, keys)| glob_match(glob, path) && keys.allows(key, value))
    }
}

/// Whether a file is in a secret mount, whose values never go in clear:
/// Compose and swarm secrets (`/run/secrets/…` in the container), and
/// Kubernetes Secret and projected volumes (the kubelet's host directory
/// `…/volumes/kubernetes.io~secret/…` or `…~projected/…`, the mount's
/// source).
pub fn is_secret_mount(path: &str, mount_source: &str) -> bool {
    path.starts_with("/run/secrets/")
        || mount_source.contains("kubernetes.io~secret")
        || mount_source.contains("kubernetes.io~projected")
}

/// The fingerprint name of key `key` in the file at `path`.
fn key_name(path: &str, key: &str) -> String {
    format!("file-key\0{path}\0{key}")
}

/// The keyed fingerprint of a whole file's content.
pub fn whole_file(fleet: &FleetKey, path: &str, content: &[u8]) -> String {
    fleet.fingerprint_bytes(&format!("file\0{path}"), content)
}

/// The keys of the file at `path` as they leave the host. `secret` is
/// [`is_secret_mount`]'s verdict; it overrides the allowlist.
pub fn protect(
    fleet: &FleetKey,
    policy: &ClearConfigPolicy,
    path: &str,
    secret: bool,
    pairs: Vec<(String, String)>,
) -> Vec<ConfigKey> {
    pairs
        .into_iter()
        .map(|(key, value)| {
            let fingerprint = fleet.fingerprint(&key_name(path, &key), &value);
            // A clear value is bounded like every string of a report; a
            // longer one goes as its fingerprint only.
            let clear =
                !secret && value.len() <= MAX_CLEAR_LEN && policy.allows(path, &key, &value);
            ConfigKey {
                path: key,
                fingerprint,
                value: clear.then_some(value),
            }
        })
        .collect()
}
