//! JSON. serde_json refuses nesting past 128 levels while parsing.

use std::borrow::Cow;

use serde_json::Value;

use super::tree::{Node, Tree, walk};
use super::{Flat, FlattenError, Format};

/// Flattens the JSON document `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FlattenError::Syntax {
        format: Format::Json,
        reason: e.to_string(),
    })?;
    walk(&value, flat)
}

impl Tree for Value {
    const FORMAT: Format = Format::Json;

    fn node(&self) -> Node<'_, Self> {
        match self {
            Value::Object(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (Some(Cow::Borrowed(k.as_str())), v))
                    .collect(),
            ),
            Value::Array(items) => Node::List(items.iter().collect()),
            Value::String(s) => Node::Leaf(s.clone()),
            Value::Null => Node::Leaf("null".to_owned()),
            Value::Bool(b) => Node::Leaf(b.to_string()),
            Value::Number(n) => Node::Leaf(n.to_string()),
        }
    }
}
