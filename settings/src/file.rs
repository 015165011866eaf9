//! The config file: TOML whose top-level keys are the settings' keys.
//!
//! Read once, whole, when it is named: a syntax error, a key no setting
//! declares, or a value that does not convert is an error naming the file
//! and the line, even where a flag or a variable overrides that key (a typo
//! must not lie in wait for the day the override goes). Checks that need
//! other settings run on the value that wins, through [`crate::Sources`].
//! This file parses and finds; the settings ([`crate::Table`]) say which
//! keys there are and how each converts.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, ValueDeserializer};

use crate::error::{Error, Origin};

/// A config file, parsed: its keys and values, with where each is.
/// [`crate::Table::read_file`] checks one against a binary's settings.
pub struct File {
    path: PathBuf,
    /// The text, parsed again for each lookup (a few small parses, at
    /// start only): the parsed table borrows from it.
    text: String,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl File {
    /// Reads `path` and parses it: a syntax error names the line.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::FileRead {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, text)
    }

    /// [`File::read`] of `text`, as if read from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, Error> {
        let file = File {
            path: path.to_owned(),
            text,
        };
        file.table()?;
        Ok(file)
    }

    /// Refuses a key that is not one of `keys`, naming it, its line and
    /// the keys there are.
    pub fn only_keys(&self, keys: &[&str]) -> Result<(), Error> {
        if let Some((key, _)) = self
            .table()?
            .iter()
            .find(|(key, _)| !keys.contains(&key.get_ref().as_ref()))
        {
            let message = format!("unknown field `{}`, {}", key.get_ref(), expected(keys));
            return Err(parse_error(
                &self.path,
                &self.text,
                key.span().start,
                &message,
            ));
        }
        Ok(())
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn table(&self) -> Result<DeTable<'_>, Error> {
        DeTable::parse(&self.text)
            .map(toml::Spanned::into_inner)
            .map_err(|e| {
                let offset = e.span().map_or(0, |s| s.start);
                parse_error(&self.path, &self.text, offset, e.message())
            })
    }

    /// The value of `key`, converted by `convert`, and where it is; `None`
    /// when the file does not set it. A value that does not convert is an
    /// error naming the file, the key and the line.
    pub(crate) fn lookup<T>(
        &self,
        key: &'static str,
        convert: impl FnOnce(ValueDeserializer<'_>) -> Result<T, toml::de::Error>,
    ) -> Result<Option<(T, Origin)>, Error> {
        let table = self.table()?;
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
            return Ok(None);
        };
        let span = value.span();
        let origin = |offset: usize| Origin::File {
            path: self.path.clone(),
            key,
            line: position(&self.text, offset).0,
        };
        let value =
            convert(ValueDeserializer::from(value.clone())).map_err(|e| Error::Invalid {
                origin: origin(e.span().map_or(span.start, |s| s.start)),
                message: one_line(e.message()),
            })?;
        Ok(Some((value, origin(span.start))))
    }
}

/// `expected one of `a`, `b``, as serde words it.
fn expected(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.as_slice() {
        [] => "there are no fields".to_owned(),
        [one] => format!("expected {one}"),
        [a, b] => format!("expected {a} or {b}"),
        all => format!("expected one of {}", all.join(", ")),
    }
}

fn parse_error(path: &Path, text: &str, offset: usize, message: &str) -> Error {
    let (line, column) = position(text, offset);
    Error::FileParse {
        path: path.to_owned(),
        line,
        column,
        message: one_line(message),
    }
}

/// 1-based line and column (in characters) of a byte offset of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Messages are printed on one line (`error: …`), whatever TOML says.
fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(position("a = 1\nbé = 2\n", 9), (2, 3));
        assert_eq!(position("", 5), (1, 1));
        assert_eq!(position("é", 1), (1, 1), "inside a character");
    }

    #[test]
    fn expected_keys_are_worded_as_serde_words_them() {
        assert_eq!(expected(&[]), "there are no fields");
        assert_eq!(expected(&["a"]), "expected `a`");
        assert_eq!(expected(&["a", "b"]), "expected `a` or `b`");
        assert_eq!(expected(&["a", "b", "c"]), "expected one of `a`, `b`, `c`");
    }
}
