//! [`Report`]: what `check-config` prints.

use std::fmt;
use std::path::PathBuf;

/// One line of the summary: a setting (or a fact the binary derived from
/// several), its value as shown, and where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The setting's key, or the name of a derived fact.
    pub key: &'static str,
    /// The value as shown (`<redacted>` for a secret).
    pub value: String,
    /// Where it came from, briefly; `None` when nothing set it, or for a
    /// derived fact.
    pub origin: Option<String>,
}

impl Row {
    /// A row.
    pub fn new(key: &'static str, value: impl Into<String>, origin: Option<String>) -> Self {
        Row {
            key,
            value: value.into(),
            origin,
        }
    }
}

/// The summary `check-config` prints once a configuration is valid:
///
/// ```text
/// configuration is valid (config file /etc/envparity/agent.toml)
///   environment    production  (config file, line 3)
///   heartbeat_…    15s  (default)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    file: Option<PathBuf>,
    rows: Vec<Row>,
}

impl Report {
    pub(crate) fn new(file: Option<PathBuf>, rows: Vec<Row>) -> Self {
        Report { file, rows }
    }

    /// Adds a fact the binary derived from several settings (e.g. the
    /// transport), after the settings.
    pub fn push(&mut self, key: &'static str, value: impl Into<String>) {
        self.rows.push(Row::new(key, value, None));
    }

    /// The config file read, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// The rows, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row of `key`.
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(path) => writeln!(
                f,
                "configuration is valid (config file {})",
                escape(&path.display().to_string())
            )?,
            None => writeln!(f, "configuration is valid (no config file)")?,
        }
        let width = self.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
        for row in &self.rows {
            write!(f, "  {:<width$}  {}", row.key, escape(&row.value))?;
            match &row.origin {
                Some(origin) => writeln!(f, "  ({origin})")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// Control characters escaped: a value is shown, never interpreted by the
/// terminal, and stays on its line.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
