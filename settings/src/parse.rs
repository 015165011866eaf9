//! Parsers shared by both binaries' settings. Each error names the text it
//! could not use; the caller prefixes where the text came from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Any text.
pub fn text(text: &str) -> Result<String, String> {
    Ok(text.to_owned())
}

/// A path.
pub fn path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

/// `true`/`false`, and the spellings environments use (`1`, `yes`, `on`, …).
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("invalid boolean {text:?}: use true or false")),
    }
}

/// A number (a count, a rate), in Rust's syntax for its type.
pub fn number<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim()
        .parse()
        .map_err(|e| format!("invalid number {text:?}: {e}"))
}

/// `IP:PORT`.
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| {
        format!("invalid address {text:?}: {e} (expected IP:PORT, e.g. 127.0.0.1:9601)")
    })
}

/// A humantime duration (`15s`, `1m 30s`).
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (examples: \"0s\", \"90s\", \"5m\", \"2h\")")
    })
}

/// A humantime duration that is not zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("invalid duration {text:?}: {e}")),
    }
}

/// `text` or `json`, any case.
pub fn log_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("invalid log format {text:?}: use text or json")),
    }
}

/// How a daemon writes its log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl crate::Show for LogFormat {
    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
        .to_owned()
    }
}

/// A comma-separated list: trimmed, non-empty items.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_the_usual_spellings_and_name_a_bad_one() {
        for on in ["1", "true", "YES", "On"] {
            assert_eq!(boolean(on), Ok(true), "{on}");
        }
        for off in ["0", "false", "no", "OFF"] {
            assert_eq!(boolean(off), Ok(false), "{off}");
        }
        assert!(boolean("maybe").unwrap_err().contains("\"maybe\""));
    }

    #[test]
    fn durations_name_the_text() {
        assert_eq!(positive_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(
            positive_duration("0s")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert!(
            duration("soon")
                .unwrap_err()
                .starts_with("invalid duration \"soon\"")
        );
    }

    #[test]
    fn lists_drop_blanks() {
        assert_eq!(split_list(" a, ,b ,").collect::<Vec<_>>(), ["a", "b"]);
    }
}
