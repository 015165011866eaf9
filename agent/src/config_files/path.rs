//! Key paths, and the bounded collector every flattener writes into.

use std::collections::BTreeMap;

use super::{FlattenError, MAX_KEYS};

/// The pairs a flattener found so far, keyed by path (the last write of a
/// path wins), bounded by [`MAX_KEYS`].
#[derive(Debug, Default)]
pub struct Flat {
    entries: BTreeMap<String, String>,
    document: Option<usize>,
}

/// Longest key path kept; a file with a longer one is "not parsed", since
/// a cut path would name another key.
pub const MAX_KEY_PATH_LEN: usize = 1024;

/// The path of the root itself (a scalar document, an empty root).
pub const ROOT: &str = "$";

impl Flat {
    /// Records `value` at `path` (the empty path is the root, `$`), under the
    /// current document's prefix if any.
    pub fn push(&mut self, path: String, value: String) -> Result<(), FlattenError> {
        let path = match (self.document, path.is_empty()) {
            (None, false) => path,
            (None, true) => ROOT.to_owned(),
            (Some(n), false) => format!("[doc{n}]{path}"),
            (Some(n), true) => format!("[doc{n}]{ROOT}"),
        };
        if path.len() > MAX_KEY_PATH_LEN {
            return Err(FlattenError::KeyTooLong);
        }
        if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(&path) {
            return Err(FlattenError::TooManyKeys);
        }
        self.entries.insert(path, value);
        Ok(())
    }

    /// Prefixes the paths pushed from now on with `[docN]` (a YAML stream of
    /// more than one document; `n` counts from 1).
    pub fn set_document(&mut self, n: usize) {
        self.document = Some(n);
    }

    /// The pairs, sorted by path.
    pub fn into_sorted(self) -> Vec<(String, String)> {
        self.entries.into_iter().collect()
    }
}

/// Whether a mapping key can be written bare in a path.
fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `prefix.key`, or `prefix["key"]` when the key is not plain.
pub fn child(prefix: &str, key: &str) -> String {
    if !is_plain(key) {
        let quoted = serde_json::to_string(key).expect("a str always serializes");
        format!("{prefix}[{quoted}]")
    } else if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `prefix[i]`.
pub fn index(prefix: &str, i: usize) -> String {
    format!("{prefix}[{i}]")
}
