//! Where environment variables come from: the process, or a map in tests.

use std::collections::{BTreeMap, HashMap};

/// Where environment variables come from.
pub trait EnvSource {
    /// The value of `name`, if set. Implementations treat an empty value as
    /// unset, as container orchestrators often render unset as empty.
    fn var(&self, name: &str) -> Option<String>;
}

impl std::fmt::Debug for dyn EnvSource + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvSource")
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // Lossy rather than ignored: a non-UTF-8 value then fails parsing
        // with an error naming the variable instead of silently vanishing.
        std::env::var_os(name)
            .map(|v| v.to_string_lossy().into_owned())
            .filter(|v| !v.is_empty())
    }
}

impl<K: std::borrow::Borrow<str> + Ord, V: AsRef<str>> EnvSource for BTreeMap<K, V> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.as_ref().to_owned())
            .filter(|v| !v.is_empty())
    }
}

impl<K: std::borrow::Borrow<str> + std::hash::Hash + Eq, V: AsRef<str>> EnvSource
    for HashMap<K, V>
{
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.as_ref().to_owned())
            .filter(|v| !v.is_empty())
    }
}
