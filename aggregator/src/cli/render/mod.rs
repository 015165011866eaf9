//! Printing answers: aligned tables for people, JSON/YAML for programs.
//!
//! Everything printed to a terminal goes through [`sanitize`]: names, labels
//! and values come from containers on hosts we do not control, and an ANSI
//! escape or a carriage return in a container name must not repaint the
//! operator's terminal.
//!
//! [`Out`] prints; each command's text is drawn in its own file
//! (`findings.rs` for every answer made of findings), with `table.rs`,
//! `text.rs` (escaping, shortening) and `paint.rs` (colour).

mod alerts;
mod config;
mod config_files;
mod explain;
mod findings;
mod gate;
mod history;
mod hosts;
mod image_diff;
mod paint;
mod service;
mod status;
mod table;
mod text;

use std::io::{IsTerminal, Write};

use anyhow::Context;
use serde::Serialize;

use super::Format;
use text::inert_json;

pub use envparity_proto::names::is_hostile;
pub use text::sanitize;

/// Where and how answers are printed.
#[derive(Debug)]
pub struct Out {
    format: Format,
    color: bool,
    /// `None`: stdout. `Some`: collected for [`Out::take`] (tests, fuzzing).
    buffer: Option<std::sync::Mutex<String>>,
}

impl Out {
    /// Colour only on a terminal, and never when `NO_COLOR` is set.
    pub fn new(format: Format) -> Self {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Out {
            format,
            color,
            buffer: None,
        }
    }

    /// Renders into a buffer instead of stdout, with colour as given: the
    /// same text the CLI prints, for tests and fuzzing.
    pub fn buffered(format: Format, color: bool) -> Self {
        Out {
            format,
            color,
            buffer: Some(std::sync::Mutex::default()),
        }
    }

    /// What was rendered into the buffer so far (empty for stdout), emptying
    /// it.
    pub fn take(&self) -> String {
        self.buffer.as_ref().map_or_else(String::new, |b| {
            std::mem::take(&mut *b.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        })
    }

    fn emit(&self, text: &str) -> anyhow::Result<()> {
        match &self.buffer {
            Some(b) => {
                b.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_str(text);
                Ok(())
            }
            None => print_all(text),
        }
    }

    fn wide(&self) -> bool {
        self.format == Format::Wide
    }

    fn structured<T: Serialize>(&self, value: &T) -> anyhow::Result<bool> {
        let text = match self.format {
            Format::Json => {
                inert_json(serde_json::to_string_pretty(value).context("encode JSON")?) + "\n"
            }
            Format::Yaml => {
                super::yaml::to_yaml(&serde_json::to_value(value).context("encode YAML")?)
            }
            Format::Table | Format::Wide => return Ok(false),
        };
        self.emit(&text)?;
        Ok(true)
    }
}

fn print_all(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`envparity status | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::text::inert_json;
    use super::*;

    #[test]
    fn hostile_strings_are_escaped_not_interpreted() {
        let hostile = "a\u{1b}[2J\u{9b}31m\u{202e}b\u{200b}c\u{2028}d\u{2029}e\u{feff}\u{7f}";
        let json = inert_json(serde_json::to_string(&hostile).unwrap());
        assert!(json.is_ascii(), "{json}");
        assert!(!json.contains('\u{1b}'), "{json}");
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), hostile);
        let yaml = super::super::yaml::to_yaml(&serde_json::json!(hostile));
        assert!(yaml.is_ascii(), "{yaml:?}");
        let s = sanitize("evil\u{1b}[2J\rname\u{7}\u{202e}txt");
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(s.contains("evil"));
        assert!(s.contains("\\u{1b}[2J"));
        assert!(!s.contains('\u{202e}'));
    }

    #[test]
    fn names_from_the_command_line_are_sanitized_in_verdict_lines() {
        // Found by fuzz/render: `diff` printed its environments unsanitized
        // in the verdict line; `service` did the same with the service name.
        let evil = "staging\u{1b}[2J";
        let out = Out::buffered(Format::Table, false);
        let diff = super::super::output::Diff::from_proto(
            evil.into(),
            "production".into(),
            Some(evil.into()),
            &Default::default(),
        );
        out.diff(&diff).unwrap();
        out.service(&super::super::output::Service::from_proto(
            &envparity_proto::v1::GetServiceResponse {
                service: evil.into(),
                instances: vec![],
            },
        ))
        .unwrap();
        let text = out.take();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("staging\\u{1b}[2J vs production"), "{text:?}");
        assert!(text.contains("staging\\u{1b}[2J: 0 replica(s)"), "{text:?}");
    }
}
