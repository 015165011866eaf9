//! YAML, one or more documents.
//!
//! Alias bombs ("billion laughs") are refused by the parser itself:
//! serde_norway stops with "repetition limit exceeded" once alias expansions
//! pass a hundred times the number of events in the document, and with
//! "recursion limit exceeded" past 128 levels; [`MAX_KEYS`](super::MAX_KEYS)
//! bounds what an accepted document may still expand into. Merge keys
//! (`<<: *base`) are applied, as the programs reading the file do.

use std::borrow::Cow;

use serde::Deserialize;
use serde_norway::Value;

use super::tree::{Node, Tree, walk};
use super::{Flat, FlattenError, Format};

/// Flattens every document of `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let syntax = |e: serde_norway::Error| FlattenError::Syntax {
        format: Format::Yaml,
        reason: e.to_string(),
    };
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let mut value = Value::deserialize(document).map_err(syntax)?;
        value.apply_merge().map_err(syntax)?;
        documents.push(value);
    }
    let several = documents.len() > 1;
    for (i, value) in documents.iter().enumerate() {
        if several {
            flat.set_document(i + 1);
        }
        walk(value, flat)?;
    }
    Ok(())
}

impl Tree for Value {
    const FORMAT: Format = Format::Yaml;

    fn node(&self) -> Node<'_, Self> {
        match self {
            Value::Mapping(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (scalar(k).map(Cow::Owned), v))
                    .collect(),
            ),
            Value::Sequence(items) => Node::List(items.iter().collect()),
            Value::Tagged(tagged) => match scalar(&tagged.value) {
                Some(s) => Node::Leaf(format!("{} {s}", tagged.tag)),
                None => Node::Inner(&tagged.value),
            },
            other => Node::Leaf(scalar(other).unwrap_or_default()),
        }
    }
}

/// The text of a scalar: what a program reading it sees.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) => scalar(&t.value).map(|s| format!("{} {s}", t.tag)),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}
