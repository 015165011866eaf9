//! TOML. Datetimes are their TOML text (`1979-05-27T07:32:00Z`).

use toml::Value;

use super::path::{child, index};
use super::{Flat, FlattenError, Format, MAX_DEPTH};

/// Flattens the TOML document `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| FlattenError::Syntax {
        format: Format::Toml,
        // The message alone: the rendered error quotes the offending line,
        // which may hold a value.
        reason: e.message().to_owned() + &line_of(text, e.span()),
    })?;
    walk(&Value::Table(table), String::new(), 0, flat)
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| {
        let line = text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!(" at line {line}")
    })
    .unwrap_or_default()
}

fn walk(value: &Value, path: String, depth: usize, flat: &mut Flat) -> Result<(), FlattenError> {
    if depth > MAX_DEPTH {
        return Err(FlattenError::TooDeep);
    }
    match value {
        Value::Table(map) if map.is_empty() => flat.push(path, "{}".to_owned()),
        Value::Table(map) => {
            for (k, v) in map {
                walk(v, child(&path, k), depth + 1, flat)?;
            }
            Ok(())
        }
        Value::Array(items) if items.is_empty() => flat.push(path, "[]".to_owned()),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, index(&path, i), depth + 1, flat)?;
            }
            Ok(())
        }
        Value::String(s) => flat.push(path, s.clone()),
        Value::Integer(n) => flat.push(path, n.to_string()),
        Value::Float(n) => flat.push(path, n.to_string()),
        Value::Boolean(b) => flat.push(path, b.to_string()),
        Value::Datetime(d) => flat.push(path, d.to_string()),
    }
}
