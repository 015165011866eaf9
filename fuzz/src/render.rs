//! The properties of the CLI's output, checked on every format.

use std::collections::BTreeSet;

use envparity_aggregator::cli::Format;
use envparity_aggregator::cli::render::Out;
use serde::Serialize;
use serde_json::Value;

/// The colour codes `Out` paints with; the only escapes a table may hold.
const PAINT: &[&str] = &[
    "\u{1b}[1;31m",
    "\u{1b}[33m",
    "\u{1b}[36m",
    "\u{1b}[32m",
    "\u{1b}[0m",
];

/// Characters `sanitize` escapes besides control characters: zero-width
/// characters and bidi overrides and isolates.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A table (or `explain`/`policy` text) for a terminal: no control
/// character but line feeds, no escape but `Out`'s own colours.
pub fn check_table(text: &str, color: bool) {
    let mut plain = text.to_owned();
    if color {
        for code in PAINT {
            plain = plain.replace(code, "");
        }
    }
    if let Some(c) = plain
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || invisible(c))
    {
        panic!("table output holds {c:?} (color {color}):\n{text:?}");
    }
}

fn strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => {
            for (k, v) in o {
                out.insert(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// JSON output parses back to the value rendered, and holds every string in
/// `placed` exactly (as a value or a key).
pub fn check_json<T: Serialize>(value: &T, text: &str, placed: &[String]) {
    let expected = serde_json::to_value(value).expect("output structs are JSON values");
    let parsed: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("JSON output does not parse: {e}\n{text:?}"));
    assert_eq!(parsed, expected, "JSON output parses to something else");
    let mut found = BTreeSet::new();
    strings(&parsed, &mut found);
    for s in placed {
        assert!(found.contains(s), "JSON output lost the string {s:?}");
    }
}

/// YAML output parses back (serde_norway) to the value rendered.
pub fn check_yaml<T: Serialize>(value: &T, text: &str) {
    let expected = serde_json::to_value(value).expect("output structs are JSON values");
    let parsed: Value = serde_norway::from_str(text)
        .unwrap_or_else(|e| panic!("YAML output does not parse: {e}\n{text:?}"));
    assert_eq!(
        parsed, expected,
        "YAML output parses to something else:\n{text}"
    );
}

/// Every format, with and without colour for tables.
pub const ALL: &[(Format, bool)] = &[
    (Format::Table, false),
    (Format::Table, true),
    (Format::Wide, false),
    (Format::Wide, true),
    (Format::Json, false),
    (Format::Yaml, false),
];

/// Tables without colour and JSON: the cheap checks, for targets whose
/// inputs are mostly spent elsewhere (YAML costs half the time there, and
/// the `render` target checks it).
pub const CHEAP: &[(Format, bool)] = &[
    (Format::Table, false),
    (Format::Wide, false),
    (Format::Json, false),
];

/// Renders `value` with `render` in every format, with and without colour,
/// and checks each.
pub fn check_all<T: Serialize>(
    value: &T,
    placed: &[String],
    render: impl Fn(&Out, &T) -> anyhow::Result<()>,
) {
    check_in(ALL, value, placed, render);
}

/// Renders `value` with `render` in `formats` and checks each.
pub fn check_in<T: Serialize>(
    formats: &[(Format, bool)],
    value: &T,
    placed: &[String],
    render: impl Fn(&Out, &T) -> anyhow::Result<()>,
) {
    for &(format, color) in formats {
        let out = Out::buffered(format, color);
        render(&out, value).expect("rendering into a buffer does not fail");
        let text = out.take();
        match format {
            Format::Table | Format::Wide => check_table(&text, color),
            Format::Json => check_json(value, &text, placed),
            Format::Yaml => check_yaml(value, &text),
        }
    }
}
