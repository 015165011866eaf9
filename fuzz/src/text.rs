//! Hostile strings: what a container on a host we do not control can put in
//! a name, a label or an image field, and what a typo or an attacker can put
//! in a config file.

use arbitrary::Arbitrary;

/// Fragments that have broken terminals, YAML and JSON emitters, and byte
/// slicing before: escapes (C0, C1, CSI, OSC), line breaks, bidi overrides,
/// zero-width and multi-byte characters, YAML indicators and keywords.
pub const HOSTILE: &[&str] = &[
    "\u{1b}[2J",
    "\u{1b}[31m",
    "\u{1b}]0;pwned\u{7}",
    "\u{1b}P1$r",
    "\u{9b}2J",
    "\u{85}",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "\u{7f}",
    "\u{8}",
    "\u{202e}",
    "\u{202d}",
    "\u{2066}",
    "\u{2069}",
    "\u{200b}",
    "\u{200f}",
    "\u{feff}",
    "\u{2028}",
    "\u{2029}",
    "\u{fffd}",
    "é",
    "日本",
    "🙂",
    "a\u{301}",
    "\"",
    "'",
    "\\",
    "`",
    "${HOME}",
    "%s%n",
    "- ",
    ": ",
    " #",
    "---",
    "...",
    "? ",
    "&a",
    "*a",
    "!!binary",
    "null",
    "~",
    "yes",
    "No",
    "0x1F",
    "0o17",
    "1e3",
    "-.inf",
    ".nan",
    "[",
    "]",
    "{",
    "}",
    "|",
    ">",
    "@",
    ",",
    "=",
    "sha256:",
    "sha256:é",
    "<script>",
    " ",
];

/// Characters of every UTF-8 width, hex digits among them (digests and
/// fingerprints are hex, and are shortened for tables).
pub const MIXED: &[char] = &[
    'a',
    'f',
    '0',
    '9',
    ':',
    '@',
    '/',
    '-',
    'é',
    '\u{85}',
    'ß',
    '日',
    '\u{202e}',
    '\u{feff}',
    '🙂',
    '\u{10ffff}',
];

/// A string for one field: mostly realistic (so the input gets past
/// validation and is compared with the rest of the fleet), often hostile.
#[derive(Debug, Clone, Arbitrary)]
pub enum Text {
    /// A value from the field's dictionary.
    Known(u8),
    /// A dictionary value with a hostile fragment spliced in.
    Spiked {
        /// Which dictionary value.
        known: u8,
        /// Which fragment.
        fragment: u8,
        /// Where (a character position, wrapped).
        at: u8,
    },
    /// Hostile fragments glued together.
    Hostile(Vec<u8>),
    /// A dictionary value or fragment followed by characters of mixed
    /// widths (1 to 4 bytes in UTF-8), so that code cutting strings at a
    /// byte offset meets a character boundary at every offset.
    Mixed {
        /// What comes first: a dictionary value (odd numbers) or a hostile
        /// fragment (even ones), such as `sha256:`.
        known: u8,
        /// The characters, each picked from [`MIXED`].
        chars: Vec<u8>,
    },
    /// Any UTF-8.
    Any(String),
    /// Bytes decoded as the agent decodes Docker's: lossily.
    Lossy(Vec<u8>),
    /// A long string: a dictionary value or fragment repeated.
    Long {
        /// Characters wanted: under 4 Ki, or (rarely) just over the 64 KiB
        /// limit on strings in reports.
        len: u16,
        /// Which fragment (or dictionary value, for even numbers).
        what: u8,
    },
    /// Nothing.
    Empty,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    if list.is_empty() {
        ""
    } else {
        list[usize::from(i) % list.len()]
    }
}

impl Text {
    /// The string, drawing realistic values from `dict`.
    pub fn resolve(&self, dict: &[&str]) -> String {
        match self {
            Text::Known(i) => pick(dict, *i).to_owned(),
            Text::Spiked {
                known,
                fragment,
                at,
            } => {
                let base = pick(dict, *known);
                let n = base.chars().count();
                let at = if n == 0 {
                    0
                } else {
                    usize::from(*at) % (n + 1)
                };
                let split = base.char_indices().nth(at).map_or(base.len(), |(i, _)| i);
                format!(
                    "{}{}{}",
                    &base[..split],
                    pick(HOSTILE, *fragment),
                    &base[split..]
                )
            }
            Text::Hostile(parts) => parts.iter().take(16).map(|i| pick(HOSTILE, *i)).collect(),
            Text::Mixed { known, chars } => {
                let prefix = if known % 2 == 1 {
                    pick(dict, known / 2)
                } else {
                    pick(HOSTILE, known / 2)
                };
                let tail = chars
                    .iter()
                    .take(256)
                    .map(|c| MIXED[usize::from(*c) % MIXED.len()]);
                prefix.chars().chain(tail).collect()
            }
            Text::Any(s) => s.clone(),
            Text::Lossy(b) => String::from_utf8_lossy(b).into_owned(),
            Text::Long { len, what } => {
                let unit = if what % 2 == 0 {
                    pick(dict, what / 2)
                } else {
                    pick(HOSTILE, what / 2)
                };
                let unit = if unit.is_empty() { "x" } else { unit };
                let len = if *len >= 0xff00 {
                    64 * 1024 + usize::from(*len & 0xff)
                } else {
                    usize::from(*len % 4096)
                };
                unit.chars().cycle().take(len).collect()
            }
            Text::Empty => String::new(),
        }
    }
}
