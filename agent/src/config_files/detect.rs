//! Which format a file is in: by extension first, then by content.

use std::fmt;

/// A configuration file format envparity flattens key by key, or
/// [`Format::Unknown`] (one fingerprint of the whole content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML, one or more documents (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
    /// TOML (`.toml`).
    Toml,
    /// INI (`.ini`, `.cfg`, `.conf` whose lines parse as INI).
    Ini,
    /// `KEY=value` lines (`.env`, `*.env`, `env`).
    Dotenv,
    /// Java properties (`.properties`).
    Properties,
    /// None of the above.
    Unknown,
}

impl Format {
    /// The name used on the wire, in the CLI and in docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yaml => "yaml",
            Self::Json => "json",
            Self::Toml => "toml",
            Self::Ini => "ini",
            Self::Dotenv => "env",
            Self::Properties => "properties",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of the file at `path` (in the container) with `content`.
///
/// The extension decides when it names a format, so a malformed `app.yaml`
/// is "not parsed: yaml: …", never silently an unknown file. Without one,
/// the content decides, conservatively: JSON when it opens with `{` or `[`
/// and parses; YAML when it opens with `---` or `%YAML`; else unknown.
/// `.conf` and `.cfg` files are INI only when every line parses as INI
/// (nginx's `.conf` does not), else unknown.
pub fn detect(path: &str, content: &[u8]) -> Format {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "yaml" | "yml" => return Format::Yaml,
        "json" => return Format::Json,
        "toml" => return Format::Toml,
        "ini" => return Format::Ini,
        "env" => return Format::Dotenv,
        "properties" => return Format::Properties,
        _ => {}
    }
    if name == "env" || name.starts_with(".env") {
        return Format::Dotenv;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return Format::Unknown;
    };
    if matches!(ext.as_str(), "conf" | "cfg") {
        let mut flat = super::Flat::default();
        return if super::ini::flatten(text, &mut flat).is_ok() {
            Format::Ini
        } else {
            Format::Unknown
        };
    }
    let start = text.trim_start();
    if (start.starts_with('{') || start.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    {
        return Format::Json;
    }
    if start.starts_with("---") || start.starts_with("%YAML") {
        return Format::Yaml;
    }
    Format::Unknown
}
