//! Rules for the names both ends agree on.

/// Why an environment name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEnvironment {
    /// The refused name, escaped for display.
    pub name: String,
}

impl std::fmt::Display for InvalidEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid environment name {:?}: use 1 to 63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit",
            self.name
        )
    }
}

impl std::error::Error for InvalidEnvironment {}

/// Maximum length of an environment name.
pub const MAX_ENVIRONMENT_LEN: usize = 63;

/// Whether a character could change how a terminal shows the text around
/// it: C0 and C1 controls (ANSI escapes, CR, BEL, …), DEL, zero-width and
/// direction marks, bidi overrides and isolates, the line and paragraph
/// separators U+2028/U+2029, and the byte-order mark. Identifiers may not
/// hold one; free text holding one is shown escaped.
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `s` with every [`is_hostile`] character replaced by its escaped form
/// (`\u{1b}`), so a hostile string is shown, never interpreted.
pub fn escape_hostile(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks an environment name: 1..=63 characters of `[a-z0-9._-]`, starting
/// with a letter or digit. Names appear in metrics labels, file names and
/// terminal output, so the alphabet is deliberately small.
pub fn validate_environment(name: &str) -> Result<(), InvalidEnvironment> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ENVIRONMENT_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(InvalidEnvironment {
            name: name.chars().take(80).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["dev", "staging", "production", "eu-west.prod_2", "0"] {
            assert_eq!(validate_environment(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_hostile_or_odd_names() {
        let long = "a".repeat(64);
        for name in [
            "",
            "Prod",
            "-dev",
            "dev env",
            "dev\u{1b}[31m",
            "prod/x",
            long.as_str(),
        ] {
            let err = validate_environment(name).unwrap_err();
            assert!(
                err.to_string().contains("invalid environment name"),
                "{name}"
            );
        }
    }
}
