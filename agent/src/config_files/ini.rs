//! INI: `[section]` headers, `key = value` or `key: value` lines, `;` and
//! `#` comment lines. Keys before any section have no prefix; others are
//! `section.key`, both verbatim. Values are trimmed, quotes kept. A line
//! that is none of these is a parse error naming its number.

use super::{Flat, FlattenError, Format};

/// Flattens the INI file `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let error = |reason: &str| FlattenError::Syntax {
            format: Format::Ini,
            reason: format!("{reason} at line {}", n + 1),
        };
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| error("unclosed section header"))?;
            section = name.trim().to_owned();
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or_else(|| error("expected key = value"))?;
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        if key.is_empty() {
            return Err(error("empty key"));
        }
        let path = if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        flat.push(path, value.to_owned())?;
    }
    Ok(())
}
