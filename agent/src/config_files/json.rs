//! JSON. serde_json refuses nesting past 128 levels while parsing.

use serde_json::Value;

use super::path::{child, index};
use super::{Flat, FlattenError, Format, MAX_DEPTH};

/// Flattens the JSON document `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FlattenError::Syntax {
        format: Format::Json,
        reason: e.to_string(),
    })?;
    walk(&value, String::new(), 0, flat)
}

fn walk(value: &Value, path: String, depth: usize, flat: &mut Flat) -> Result<(), FlattenError> {
    if depth > MAX_DEPTH {
        return Err(FlattenError::TooDeep);
    }
    match value {
        Value::Object(map) if map.is_empty() => flat.push(path, "{}".to_owned()),
        Value::Object(map) => {
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
        Value::Null => flat.push(path, "null".to_owned()),
        Value::Bool(b) => flat.push(path, b.to_string()),
        Value::Number(n) => flat.push(path, n.to_string()),
    }
}
