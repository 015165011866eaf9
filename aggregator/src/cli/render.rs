//! Printing answers: aligned tables for people, JSON/YAML for programs.
//!
//! Everything printed to a terminal goes through [`sanitize`]: names, labels
//! and values come from containers on hosts we do not control, and an ANSI
//! escape or a carriage return in a container name must not repaint the
//! operator's terminal.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use serde::Serialize;

use super::Format;
use super::output::{Diff, Finding, Hosts, Service, Status};

/// Replaces control characters (ANSI escapes, CR, BEL, …) with their escaped
/// form, so hostile strings are shown, never interpreted.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Shortens `sha256:<64 hex>` to `sha256:<12 hex>` for tables.
fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => value.to_owned(),
    }
}

/// Where and how answers are printed.
#[derive(Debug)]
pub struct Out {
    format: Format,
    color: bool,
}

impl Out {
    /// Colour only on a terminal, and never when `NO_COLOR` is set.
    pub fn new(format: Format) -> Self {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Out { format, color }
    }

    fn wide(&self) -> bool {
        self.format == Format::Wide
    }

    fn structured<T: Serialize>(&self, value: &T) -> anyhow::Result<bool> {
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(value).context("encode JSON")? + "\n",
            Format::Yaml => serde_norway::to_string(value).context("encode YAML")?,
            Format::Table | Format::Wide => return Ok(false),
        };
        print_all(&text)?;
        Ok(true)
    }

    fn paint(&self, text: &str, severity: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match severity {
            "critical" => "1;31",
            "warning" => "33",
            "info" => "36",
            "ok" => "32",
            _ => return text.to_owned(),
        };
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    }

    /// `envparity hosts`.
    pub fn hosts(&self, hosts: &Hosts) -> anyhow::Result<()> {
        if self.structured(hosts)? {
            return Ok(());
        }
        let mut headers = vec![
            "HOST",
            "ENVIRONMENT",
            "STATE",
            "LAST SEEN",
            "CONTAINERS",
            "KERNEL",
            "OS",
            "ENGINE",
        ];
        if self.wide() {
            headers.extend(["ARCH", "STORAGE", "CGROUP", "AGENT", "LABELS"]);
        }
        let mut table = Table::new(&headers);
        for h in &hosts.hosts {
            let mut row = vec![
                h.host_id.clone(),
                h.environment.clone(),
                h.state.clone(),
                h.last_seen_age_seconds
                    .map_or_else(|| "never".to_owned(), |s| format!("{s}s ago")),
                h.container_count.to_string(),
                h.host.kernel_version.clone(),
                format!("{} {}", h.host.os_id, h.host.os_version)
                    .trim()
                    .to_owned(),
                h.engine.server_version.clone(),
            ];
            if self.wide() {
                row.extend([
                    h.host.architecture.clone(),
                    h.engine.storage_driver.clone(),
                    format!("{} v{}", h.engine.cgroup_driver, h.engine.cgroup_version),
                    h.agent_version.clone(),
                    h.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            let state = h.state.clone();
            table.row(row, move |col, text, out: &Out| {
                if col == 2 && state != "fresh" {
                    out.paint(text, "warning")
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = table.render(self);
        s.push_str(&format!("{} host(s)\n", hosts.hosts.len()));
        print_all(&s)
    }

    fn findings_table(&self, findings: &[Finding]) -> String {
        let mut headers = vec!["SEVERITY", "KIND", "SERVICE", "KEY", "A", "B"];
        if self.wide() {
            headers.extend(["BASIS", "HOSTS A", "HOSTS B"]);
        }
        let mut table = Table::new(&headers);
        for f in findings {
            let side = |s: &super::output::Side| {
                let values = if s.values.is_empty() {
                    "(absent)".to_owned()
                } else if self.wide() {
                    s.values.join(", ")
                } else {
                    s.values
                        .iter()
                        .map(|v| short(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let stale = if s.stale_hosts.is_empty() {
                    ""
                } else {
                    " (stale)"
                };
                format!("{}: {values}{stale}", s.environment)
            };
            let mut row = vec![
                f.severity.clone(),
                f.kind.clone(),
                if f.service.is_empty() {
                    "-".into()
                } else {
                    f.service.clone()
                },
                if f.key.is_empty() {
                    "-".into()
                } else {
                    f.key.clone()
                },
                side(&f.a),
                side(&f.b),
            ];
            if self.wide() {
                row.extend([f.basis.clone(), f.a.hosts.join(","), f.b.hosts.join(",")]);
            }
            let severity = f.severity.clone();
            table.row(row, move |col, text, out: &Out| {
                if col == 0 {
                    out.paint(text, &severity)
                } else {
                    text.to_owned()
                }
            });
        }
        table.render(self)
    }

    fn verdict(&self, findings: &[Finding], scope: &str) -> String {
        if findings.is_empty() {
            return format!("{} {scope}: no findings\n", self.paint("parity", "ok"));
        }
        let count = |sev: &str| findings.iter().filter(|f| f.severity == sev).count();
        format!(
            "{} {scope}: {} finding(s): {} critical, {} warning, {} info\n",
            self.paint("drift", "critical"),
            findings.len(),
            count("critical"),
            count("warning"),
            count("info"),
        )
    }

    /// `envparity diff`.
    pub fn diff(&self, diff: &Diff) -> anyhow::Result<()> {
        if self.structured(diff)? {
            return Ok(());
        }
        let mut s = String::new();
        if !diff.findings.is_empty() {
            s.push_str(&self.findings_table(&diff.findings));
            s.push('\n');
        }
        let scope = match &diff.service {
            Some(svc) => format!("{} vs {} (service {svc})", diff.env_a, diff.env_b),
            None => format!("{} vs {}", diff.env_a, diff.env_b),
        };
        s.push_str(&self.verdict(&diff.findings, &scope));
        print_all(&s)
    }

    /// `envparity status`.
    pub fn status(&self, status: &Status) -> anyhow::Result<()> {
        if self.structured(status)? {
            return Ok(());
        }
        let mut headers: Vec<&str> = vec!["SERVICE"];
        headers.extend(status.environments.iter().map(String::as_str));
        let mut table = Table::new(&headers);
        for row in &status.services {
            let mut cells = vec![row.service.clone()];
            for c in &row.cells {
                cells.push(if c.replicas == 0 {
                    "-".to_owned()
                } else {
                    let digests: Vec<String> = if self.wide() {
                        c.digests.clone()
                    } else {
                        c.digests.iter().map(|d| short(d)).collect()
                    };
                    let mut text = String::new();
                    if c.drift {
                        text.push_str("! ");
                    }
                    if !c.versions.is_empty() {
                        text.push_str(&c.versions.join(","));
                        text.push(' ');
                    }
                    text.push_str(&digests.join(","));
                    if c.replicas > 1 {
                        text.push_str(&format!(" x{}", c.replicas));
                    }
                    if c.stale {
                        text.push_str(" (stale)");
                    }
                    text
                });
            }
            table.row(cells, |_, text, out: &Out| {
                if text.starts_with("! ") {
                    out.paint(text, "warning")
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = table.render(self);
        if !status.findings.is_empty() {
            s.push('\n');
            s.push_str(&self.findings_table(&status.findings));
        }
        s.push('\n');
        let scope = format!(
            "{} environment(s), {} service(s)",
            status.environments.len(),
            status.services.len()
        );
        s.push_str(&self.verdict(&status.findings, &scope));
        print_all(&s)
    }

    /// `envparity service`.
    pub fn service(&self, service: &Service) -> anyhow::Result<()> {
        if self.structured(service)? {
            return Ok(());
        }
        let mut headers = vec![
            "ENVIRONMENT",
            "HOST",
            "CONTAINER",
            "IMAGE",
            "DIGEST",
            "EXPLICIT ENV",
        ];
        if self.wide() {
            headers.extend(["IMAGE ID", "STATE"]);
        }
        let mut table = Table::new(&headers);
        for i in &service.instances {
            let env = i
                .explicit_env
                .iter()
                .map(|e| match &e.value {
                    Some(v) => format!("{}={v}", e.name),
                    None => format!(
                        "{}=fp:{}",
                        e.name,
                        &e.fingerprint[..e.fingerprint.len().min(12)]
                    ),
                })
                .collect::<Vec<_>>()
                .join(" ");
            let digest = i.repo_digests.first().map_or_else(
                || "-".to_owned(),
                |d| {
                    let d = d.rsplit_once('@').map_or(d.as_str(), |(_, d)| d);
                    if self.wide() { d.to_owned() } else { short(d) }
                },
            );
            let mut row = vec![
                i.environment.clone(),
                i.host_id.clone(),
                i.container_name.clone(),
                i.image_reference.clone(),
                digest,
                env,
            ];
            if self.wide() {
                row.extend([i.image_id.clone(), i.host_state.clone()]);
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        let mut s = table.render(self);
        s.push_str(&format!(
            "{}: {} replica(s)\n",
            service.service,
            service.instances.len()
        ));
        print_all(&s)
    }
}

type Painter = Box<dyn Fn(usize, &str, &Out) -> String>;

/// A table whose cells are sanitized and whose columns are aligned on the
/// sanitized text (colour codes are added after padding).
struct Table {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, Painter)>,
}

impl Table {
    fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| sanitize(h)).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>, paint: impl Fn(usize, &str, &Out) -> String + 'static) {
        self.rows
            .push((cells.iter().map(|c| sanitize(c)).collect(), Box::new(paint)));
    }

    fn render(&self, out: &Out) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for (cells, _) in &self.rows {
            for (i, c) in cells.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(width(c));
                }
            }
        }
        let line = |cells: &[String], paint: Option<&Painter>| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                let pad = if last { 0 } else { widths[i] - width(c) + 2 };
                let text = paint.map_or_else(|| c.clone(), |p| p(i, c, out));
                s.push_str(&text);
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.push('\n');
            s
        };
        let mut s = line(&self.headers, None);
        for (cells, paint) in &self.rows {
            s.push_str(&line(cells, Some(paint)));
        }
        s
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
    use super::*;

    #[test]
    fn hostile_strings_are_escaped_not_interpreted() {
        let s = sanitize("evil\u{1b}[2J\rname\u{7}\u{202e}txt");
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(s.contains("evil"));
        assert!(s.contains("\\u{1b}[2J"));
        assert!(!s.contains('\u{202e}'));
    }

    #[test]
    fn digests_are_shortened_for_tables_only_when_long() {
        assert_eq!(
            short(&format!("sha256:{}", "a".repeat(64))),
            "sha256:aaaaaaaaaaaa"
        );
        assert_eq!(short("6.1.0"), "6.1.0");
    }

    #[test]
    fn columns_align_on_visible_text() {
        let out = Out {
            format: Format::Table,
            color: true,
        };
        let mut t = Table::new(&["A", "B"]);
        t.row(
            vec!["long-cell".into(), "x".into()],
            |c, text, out: &Out| {
                if c == 0 {
                    out.paint(text, "critical")
                } else {
                    text.to_owned()
                }
            },
        );
        let rendered = t.render(&out);
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[0], "A          B");
        assert_eq!(lines[1], "\u{1b}[1;31mlong-cell\u{1b}[0m  x");
    }
}
