//! `.env` files, as Compose's `env_file` reads them: `KEY=value` lines, an
//! optional `export ` before the key, `#` comment lines. A value in double
//! quotes takes the escapes `\n`, `\t`, `\"` and `\\`; one in single quotes
//! is literal; an unquoted value is trimmed and ends at ` #`. A line without
//! `=` is a parse error naming its number.

use super::{Flat, FlattenError, Format};

/// Flattens the `.env` file `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |reason: &str| FlattenError::Syntax {
            format: Format::Dotenv,
            reason: format!("{reason} at line {}", n + 1),
        };
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, raw) = line
            .split_once('=')
            .ok_or_else(|| error("expected KEY=value"))?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(error("invalid key"));
        }
        flat.push(
            key.to_owned(),
            value(raw.trim()).ok_or_else(|| error("unclosed quote"))?,
        )?;
    }
    Ok(())
}

fn value(raw: &str) -> Option<String> {
    if let Some(rest) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    } else if let Some(rest) = raw.strip_prefix('\'') {
        rest.split_once('\'').map(|(v, _)| v.to_owned())
    } else {
        let end = raw.find(" #").unwrap_or(raw.len());
        Some(raw[..end].trim_end().to_owned())
    }
}
