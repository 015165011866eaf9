//! Reading a policy from TOML text and printing it back; parse errors name
//! the line, the column and the key.

use super::Policy;

/// A policy that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {origin}: {message}")]
pub struct PolicyError {
    /// Where the policy came from (a path, usually).
    pub origin: String,
    /// What is wrong, with the line and key where known.
    pub message: String,
}

impl Policy {
    /// Parses and validates a policy; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let error = |message: String| PolicyError {
            origin: origin.to_owned(),
            message,
        };
        let policy: Policy = toml::from_str(text).map_err(|e| error(describe(&e, text)))?;
        policy.validate(text).map_err(error)?;
        Ok(policy)
    }

    /// The policy as TOML, as `policy show` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render the policy: {e}\n"))
    }
}

/// A TOML error as one line: "line 3, column 9: <message> (near `<text>`)".
fn describe(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => format!("{}: {message}", position(text, span.start)),
        None => message.to_owned(),
    }
}

/// "line L, column C (near `…`)" for a byte offset of `text`.
fn position(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[start..].chars().count() + 1;
    let content: String = text[start..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(60)
        .collect();
    format!("line {line}, column {column} (near `{content}`)")
}
