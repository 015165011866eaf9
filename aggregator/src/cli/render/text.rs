//! Making text safe and short for a terminal: hostile characters escaped
//! (in tables, JSON and YAML), digests shortened, empty cells dashed.

use super::is_hostile;

/// JSON text with every [`is_hostile`] character that serde_json leaves raw
/// (C1 controls, bidi, zero-width, U+2028/U+2029) written as a `\uXXXX`
/// escape: the same document for a parser, inert on a terminal. Outside
/// strings JSON is ASCII, so only string contents change.
pub(super) fn inert_json(text: String) -> String {
    if !text.chars().any(|c| c != '\n' && is_hostile(c)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c != '\n' && is_hostile(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces [`is_hostile`] characters with their escaped form, so hostile
/// strings are shown, never interpreted.
pub fn sanitize(s: &str) -> String {
    envparity_proto::names::escape_hostile(s)
}

/// Shortens `sha256:<64 hex>` to `sha256:<12 hex>` for tables.
pub(super) fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => value.to_owned(),
    }
}

/// [`sanitize`] line by line, keeping the line breaks.
pub(super) fn sanitize_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(l) => sanitize(l) + "\n",
            None => sanitize(line),
        })
        .collect()
}

pub(super) fn dash_or(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shortened_for_tables_only_when_long() {
        assert_eq!(
            short(&format!("sha256:{}", "a".repeat(64))),
            "sha256:aaaaaaaaaaaa"
        );
        assert_eq!(short("6.1.0"), "6.1.0");
    }
}
