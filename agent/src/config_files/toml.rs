//! TOML. Datetimes are their TOML text (`1979-05-27T07:32:00Z`).

use std::borrow::Cow;

use toml::Value;

use super::tree::{Node, Tree, walk};
use super::{Flat, FlattenError, Format};

/// Flattens the TOML document `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| FlattenError::Syntax {
        format: Format::Toml,
        // The message alone: the rendered error quotes the offending line,
        // which may hold a value.
        reason: e.message().to_owned() + &line_of(text, e.span()),
    })?;
    walk(&Value::Table(table), flat)
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

impl Tree for Value {
    const FORMAT: Format = Format::Toml;

    fn node(&self) -> Node<'_, Self> {
        match self {
            Value::Table(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (Some(Cow::Borrowed(k.as_str())), v))
                    .collect(),
            ),
            Value::Array(items) => Node::List(items.iter().collect()),
            Value::String(s) => Node::Leaf(s.clone()),
            Value::Integer(n) => Node::Leaf(n.to_string()),
            Value::Float(n) => Node::Leaf(n.to_string()),
            Value::Boolean(b) => Node::Leaf(b.to_string()),
            Value::Datetime(d) => Node::Leaf(d.to_string()),
        }
    }
}
