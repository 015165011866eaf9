//! Configuration passed as files: which mounted files to read, how to turn
//! each into key paths, and what of each value may leave the host.
//!
//! The contract, from the bottom:
//!
//! - [`detect`] names a file's [`Format`] from its extension, then from its
//!   content (a `.json` is JSON; a file without a known extension that opens
//!   with `{` or `[` and parses as JSON is JSON; one that opens with `---` or
//!   `%YAML` is YAML). Anything else is [`Format::Unknown`] and is sent as one
//!   fingerprint of its whole content.
//! - [`flatten`] turns a file into sorted, de-duplicated `(key path, value)`
//!   pairs, one module per format ([`yaml`], [`json`], [`toml`], [`ini`],
//!   [`dotenv`], [`properties`]). It is pure, bounded ([`MAX_KEYS`] keys,
//!   [`MAX_DEPTH`] levels) and never guesses: a file that does not parse is a
//!   [`FlattenError`] whose message names the reason and, where the parser
//!   knows it, the line.
//! - [`protect`] turns values into keyed fingerprints (the fleet key and the
//!   construction env values use, [`crate::fingerprint`]) or, for key paths
//!   allowlisted per file glob, clear values; never for secret mounts.
//!
//! Key paths (the same spelling in the report, the findings and the CLI):
//! nested mapping keys join with `.` (`server.tls.enabled`), sequence items
//! are `[i]` from 0 (`features[2]`), and a key that is not plain
//! (`[A-Za-z0-9_-]+`) is written as a JSON string in brackets
//! (`labels["app.kubernetes.io/name"]`). A YAML stream with more than one
//! document prefixes each path with its document, from 1: `[doc2]server.port`.
//! A root that is a scalar, or an empty root mapping or sequence, has the path
//! `$`. Flat formats (`.env`, `.properties`, INI) keep their keys verbatim,
//! INI as `section.key`. Values are the scalar's text (`true`, `8080`,
//! `null`); an empty mapping or sequence is the value `{}` or `[]`, so that
//! its key still exists. So `port: 8080` and `port: "8080"` compare equal:
//! what a program reads, not how it was quoted.

pub mod bounds;
mod cache;
pub mod counts;
pub mod detect;
pub mod dotenv;
pub mod ini;
pub mod json;
pub mod path;
pub mod properties;
pub mod protect;
pub mod read;
mod symlink;
pub mod tar;
pub mod toml;
pub mod tree;
pub mod yaml;

#[cfg(test)]
mod tests;

pub use detect::{Format, detect};
pub use path::Flat;
pub use protect::{ClearConfigPolicy, ConfigKey, is_secret_mount, protect};

/// Most key paths one file may flatten into; a file with more is "not
/// parsed: more than 4096 keys" rather than a truncated, misleading list.
pub const MAX_KEYS: usize = envparity_proto::limits::MAX_CONFIG_KEYS;

/// Deepest nesting followed; deeper documents are refused, not cut.
pub const MAX_DEPTH: usize = 64;

/// Why a file could not be flattened. The message is what the report calls
/// the reason after "not parsed: "; it never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlattenError {
    /// The format's parser refused the text.
    #[error("{format}: {reason}")]
    Syntax {
        /// The format tried.
        format: Format,
        /// The parser's reason, with the line where known.
        reason: String,
    },
    /// More than [`MAX_KEYS`] keys.
    #[error("more than {MAX_KEYS} keys")]
    TooManyKeys,
    /// A key path longer than [`path::MAX_KEY_PATH_LEN`] bytes.
    #[error("a key path over {} bytes", path::MAX_KEY_PATH_LEN)]
    KeyTooLong,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A mapping key that is itself a mapping or sequence (YAML).
    #[error("{format}: a mapping key at {at} is not a scalar")]
    ComplexKey {
        /// The format.
        format: Format,
        /// The key path of the mapping holding it.
        at: String,
    },
    /// The text is not UTF-8.
    #[error("not UTF-8 text")]
    NotText,
}

/// The key paths and values of `content`, read as `format`. Sorted by key
/// path; when a key appears twice (an INI or `.env` file setting it again)
/// the last one wins, as in the programs that read these files.
///
/// [`Format::Unknown`] has no keys: the caller fingerprints the whole file.
pub fn flatten(format: Format, content: &[u8]) -> Result<Vec<(String, String)>, FlattenError> {
    if format == Format::Unknown {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(content).map_err(|_| FlattenError::NotText)?;
    let mut flat = Flat::default();
    match format {
        Format::Yaml => yaml::flatten(text, &mut flat)?,
        Format::Json => json::flatten(text, &mut flat)?,
        Format::Toml => toml::flatten(text, &mut flat)?,
        Format::Ini => ini::flatten(text, &mut flat)?,
        Format::Dotenv => dotenv::flatten(text, &mut flat)?,
        Format::Properties => properties::flatten(text, &mut flat)?,
        Format::Unknown => {}
    }
    Ok(flat.into_sorted())
}

/// Whether `content` looks binary: a NUL byte in its first 8 KiB, or not
/// UTF-8. Binary files are reported "not read: binary", never fingerprinted
/// key by key nor guessed at.
pub fn looks_binary(content: &[u8]) -> bool {
    content[..content.len().min(8192)].contains(&0) || std::str::from_utf8(content).is_err()
}
