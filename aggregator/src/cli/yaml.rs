//! `-o yaml`: block-style YAML in which no character can act on a terminal.
//!
//! A YAML library writes a string plain or single-quoted whenever it can,
//! and those styles have no escapes: a bidi override or a zero-width space
//! in a label would reach the terminal raw. Here every string is written
//! double-quoted, in its JSON spelling (YAML 1.2 double-quoted scalars read
//! JSON escapes), with every [`is_hostile`] character as `\uXXXX`. The
//! output reads back as exactly the value written (tested below with a YAML
//! parser).

use envparity_proto::names::is_hostile;
use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => map_block(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => seq_block(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// A scalar, or an empty collection, on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
}

/// A string double-quoted with JSON escapes, hostile characters included.
fn quoted(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_hostile(c) {
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

/// A mapping key: plain when it is a simple name, quoted otherwise (keys
/// such as label names are data).
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !k.starts_with(['-', '.'])
        && !matches!(
            k,
            "null"
                | "Null"
                | "NULL"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | "y"
                | "Y"
                | "n"
                | "N"
                | "yes"
                | "Yes"
                | "YES"
                | "no"
                | "No"
                | "NO"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
                | "~"
        )
        && k.parse::<f64>().is_err();
    if plain { k.to_owned() } else { quoted(k) }
}

fn map_block(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in map {
        out.push_str(&pad);
        out.push_str(&key(k));
        out.push(':');
        if is_block(v) {
            out.push('\n');
            match v {
                Value::Object(m) => map_block(m, indent + 2, out),
                Value::Array(items) => seq_block(items, indent + 2, out),
                _ => {}
            }
        } else {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn seq_block(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The map's first line goes after the dash: `- key: value`.
                let mut block = String::new();
                map_block(m, indent + 2, &mut block);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&block[indent + 2..]);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str(&pad);
                out.push_str("-\n");
                seq_block(inner, indent + 2, out);
            }
            scalar => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn read_back(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("not YAML ({e}):\n{yaml}"))
    }

    #[test]
    fn every_hostile_character_is_escaped_and_reads_back() {
        for c in [
            '\u{1b}', '\u{7}', '\r', '\u{0}', '\u{7f}', '\u{85}', '\u{9b}', '\u{200b}', '\u{200e}',
            '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}',
            '\u{feff}',
        ] {
            let s = format!("a{c}b");
            let value = json!({ "labels": { format!("k{c}"): s.clone() }, "list": [s.clone()] });
            let yaml = to_yaml(&value);
            assert!(
                !yaml.chars().any(|x| x != '\n' && is_hostile(x)),
                "U+{:04X} raw in {yaml:?}",
                c as u32
            );
            assert_eq!(read_back(&yaml), value, "U+{:04X}: {yaml}", c as u32);
        }
    }

    #[test]
    fn the_shape_is_block_yaml() {
        let value = json!({
            "schema_version": 1,
            "hosts": [
                { "host_id": "p1", "labels": {}, "tags": [], "ok": true, "n": null },
                { "host_id": "true", "nested": [[1, 2], []] },
            ],
            "yes": "no",
            "1.5": "-",
        });
        let yaml = to_yaml(&value);
        assert!(
            yaml.contains("hosts:\n  - host_id: \"p1\"\n    labels: {}\n"),
            "{yaml}"
        );
        assert!(yaml.contains("\"yes\": \"no\""), "{yaml}");
        assert_eq!(read_back(&yaml), value, "{yaml}");
        assert_eq!(read_back(&to_yaml(&json!([]))), json!([]));
        assert_eq!(read_back(&to_yaml(&json!("x"))), json!("x"));
    }

    fn values() -> impl Strategy<Value = Value> {
        let text = "[ -~\\x00-\\x1f\\x7f-\\u{a0}\\u{200b}-\\u{200f}\\u{2028}-\\u{202e}\\u{2066}-\\u{2069}\\u{feff}é]{0,12}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(text, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the value, the YAML holds no hostile character raw and
        /// reads back as the value.
        #[test]
        fn any_value_round_trips_inert(value in values()) {
            let yaml = to_yaml(&value);
            prop_assert!(!yaml.chars().any(|c| c != '\n' && is_hostile(c)), "{:?}", yaml);
            prop_assert_eq!(read_back(&yaml), value);
        }
    }
}
