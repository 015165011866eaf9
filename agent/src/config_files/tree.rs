//! The one walk over a parsed document (JSON, TOML, YAML): mappings and
//! sequences down to their scalars, each written at its key path, bounded
//! by [`MAX_DEPTH`]. Each format says only what its nodes are ([`Tree`]).

use std::borrow::Cow;

use super::path::{child, index};
use super::{Flat, FlattenError, Format, MAX_DEPTH};

/// What a node of a parsed document is, as the walk sees it.
#[derive(Debug)]
pub enum Node<'v, T> {
    /// A mapping: its keys in the document's order, `None` for a key that
    /// is no scalar (YAML allows a mapping as a key; no path can name it).
    Map(Vec<(Option<Cow<'v, str>>, &'v T)>),
    /// A sequence.
    List(Vec<&'v T>),
    /// A scalar, as the text a program reading it sees.
    Leaf(String),
    /// The same place one level down (a YAML tag over a collection).
    Inner(&'v T),
}

/// A parsed document's node type.
pub trait Tree: Sized {
    /// The format, to name in errors.
    const FORMAT: Format;

    /// What this node is.
    fn node(&self) -> Node<'_, Self>;
}

/// Writes every scalar under `value` into `flat` at its key path.
pub fn walk<T: Tree>(value: &T, flat: &mut Flat) -> Result<(), FlattenError> {
    walk_at(value, String::new(), 0, flat)
}

fn walk_at<T: Tree>(
    value: &T,
    path: String,
    depth: usize,
    flat: &mut Flat,
) -> Result<(), FlattenError> {
    if depth > MAX_DEPTH {
        return Err(FlattenError::TooDeep);
    }
    match value.node() {
        Node::Map(entries) if entries.is_empty() => flat.push(path, "{}".to_owned()),
        Node::Map(entries) => {
            for (key, v) in entries {
                let Some(key) = key else {
                    return Err(FlattenError::ComplexKey {
                        format: T::FORMAT,
                        at: if path.is_empty() { "$".into() } else { path },
                    });
                };
                walk_at(v, child(&path, &key), depth + 1, flat)?;
            }
            Ok(())
        }
        Node::List(items) if items.is_empty() => flat.push(path, "[]".to_owned()),
        Node::List(items) => {
            for (i, v) in items.into_iter().enumerate() {
                walk_at(v, index(&path, i), depth + 1, flat)?;
            }
            Ok(())
        }
        Node::Leaf(text) => flat.push(path, text),
        Node::Inner(inner) => walk_at(inner, path, depth + 1, flat),
    }
}
