//! Java `.properties`: `#` and `!` comment lines, `key=value`, `key: value`
//! or `key value`, a trailing `\` continues the logical line, and the escapes
//! `\t`, `\n`, `\r`, `\f`, `\uXXXX`, `\<any>` (that character). Keys are
//! verbatim paths (`server.port` is the key `server.port`). Never fails but
//! for a malformed `\u` escape, which is a parse error naming the line.

use super::{Flat, FlattenError, Format};

/// Flattens the properties file `text` into `flat`.
pub fn flatten(text: &str, flat: &mut Flat) -> Result<(), FlattenError> {
    let mut lines = text.lines().enumerate();
    while let Some((n, first)) = lines.next() {
        let first = first.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::from(first);
        while ends_continued(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let error = || FlattenError::Syntax {
            format: Format::Properties,
            reason: format!("malformed \\u escape at line {}", n + 1),
        };
        let (key, value) = split(&logical);
        let key = unescape(key).ok_or_else(error)?;
        let value = unescape(value).ok_or_else(error)?;
        flat.push(key, value)?;
    }
    Ok(())
}

/// An odd number of trailing backslashes continues the line.
fn ends_continued(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The raw key and value of a logical line: the key ends at the first
/// unescaped `=`, `:` or whitespace; the separator and whitespace around it
/// are dropped.
fn split(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '=' | ':' | ' ' | '\t' | '\x0c') {
            end = i;
            break;
        }
    }
    let key = &line[..end];
    let mut rest = line[end..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)?;
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
        }
    }
    Some(out)
}
