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
use super::output::{
    Alerts, ConfigCheck, Diff, Explain, Finding, Findings, Forgotten, Gate, History, Hosts, Named,
    PolicyShow, Rows, Service, Status, Tally,
};
use crate::parity::Severity;
use envparity_proto::v1;

pub use envparity_proto::names::is_hostile;

/// JSON text with every [`is_hostile`] character that serde_json leaves raw
/// (C1 controls, bidi, zero-width, U+2028/U+2029) written as a `\uXXXX`
/// escape: the same document for a parser, inert on a terminal. Outside
/// strings JSON is ASCII, so only string contents change.
fn inert_json(text: String) -> String {
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
fn short(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => value.to_owned(),
    }
}

/// What a coloured word means, which picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    /// Critical findings, drift, a refused gate: bold red.
    Critical,
    /// Warnings, cells that drift, hosts not fresh: yellow.
    Warning,
    /// Info findings: cyan.
    Info,
    /// Parity, an allowed gate: green.
    Ok,
}

impl Tone {
    /// The tone of a finding of `severity` that counts.
    fn of(severity: Severity) -> Self {
        match severity {
            Severity::Critical => Tone::Critical,
            Severity::Warning => Tone::Warning,
            Severity::Info => Tone::Info,
        }
    }
}

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

    fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Critical => "1;31",
            Tone::Warning => "33",
            Tone::Info => "36",
            Tone::Ok => "32",
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
                h.state.to_string(),
                h.last_seen_age_seconds
                    .map_or_else(|| "never".to_owned(), |s| format!("{s}s ago")),
                if h.containers_dropped > 0 {
                    format!("{} (+{} left out)", h.container_count, h.containers_dropped)
                } else {
                    h.container_count.to_string()
                },
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
            let fresh = h.state == Named::Known(v1::HostState::Fresh);
            table.row(row, move |col, text, out: &Out| {
                if col == 2 && !fresh {
                    out.paint(text, Tone::Warning)
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = table.render(self);
        s.push_str(&format!("{} host(s)\n", hosts.hosts.len()));
        for h in &hosts.hosts {
            if let Some(reason) = &h.refused_reason {
                s.push_str(&sanitize_lines(&format!(
                    "{}: latest report refused at {}: {reason}\n",
                    h.host_id,
                    h.refused_at.as_deref().unwrap_or("?")
                )));
            }
        }
        self.emit(&s)
    }

    fn findings_table(&self, findings: &[Finding]) -> String {
        let mut headers = vec!["SEVERITY", "KIND", "SERVICE", "KEY", "A", "B"];
        if self.wide() {
            headers.extend(["BASIS", "HOSTS A", "HOSTS B", "FIRST SEEN"]);
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
            let severity = if f.counts() {
                f.severity.to_string()
            } else {
                format!("{} ({})", f.severity, f.state)
            };
            let key = if f.host.is_empty() {
                dash_or(&f.key).to_owned()
            } else {
                format!("host {}", f.host)
            };
            let mut row = vec![
                severity,
                f.kind.to_string(),
                dash_or(&f.service).to_owned(),
                key,
                side(&f.a),
                f.b.as_ref().map_or_else(|| "-".to_owned(), side),
            ];
            if self.wide() {
                row.extend([
                    f.basis.clone(),
                    f.a.hosts.join(","),
                    f.b.as_ref().map(|b| b.hosts.join(",")).unwrap_or_default(),
                    f.first_seen.clone().unwrap_or_default(),
                ]);
            }
            // Only what counts is coloured, and only by a severity known.
            let tone = f.severity.known().filter(|_| f.counts()).map(Tone::of);
            table.row(row, move |col, text, out: &Out| match tone {
                Some(tone) if col == 0 => out.paint(text, tone),
                _ => text.to_owned(),
            });
        }
        let mut s = table.render(self);
        for f in findings {
            if let Some(w) = &f.waiver {
                let expires = w.expires.clone().unwrap_or_default();
                let note = if w.expired {
                    format!("waiver EXPIRED {expires} (owner {}): {}", w.owner, w.reason)
                } else {
                    format!("waived until {expires} by {}: {}", w.owner, w.reason)
                };
                s.push_str(&sanitize_lines(&format!(
                    "  {} {}: {note}\n",
                    f.kind,
                    dash_or(&f.service)
                )));
            }
        }
        s
    }

    fn verdict(&self, findings: &[Finding], scope: &str) -> String {
        self.verdict_of(&Tally::of(findings), scope)
    }

    /// The verdict line over `tally`: parity or drift, and what it counts.
    fn verdict_of(&self, tally: &Tally, scope: &str) -> String {
        // The scope names environments and services from the command line.
        let scope = sanitize(scope);
        let mut extra = String::new();
        if tally.pending > 0 {
            extra.push_str(&format!(
                "; {} pending (inside the grace period)",
                tally.pending
            ));
        }
        if tally.waived > 0 {
            extra.push_str(&format!("; {} waived", tally.waived));
        }
        if tally.counted() == 0 {
            return format!(
                "{} {scope}: no findings{extra}\n",
                self.paint("parity", Tone::Ok)
            );
        }
        format!(
            "{} {scope}: {} finding(s): {} critical, {} warning, {} info{extra}\n",
            self.paint("drift", Tone::Critical),
            tally.counted(),
            tally.critical,
            tally.warning,
            tally.info,
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
        self.emit(&s)
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
                    out.paint(text, Tone::Warning)
                } else {
                    text.to_owned()
                }
            });
        }
        let mut s = String::new();
        if let Some(sum) = &status.summary {
            s.push_str(&format!(
                "{} service(s), {} drifting; {} host(s), {} not current\n\n",
                sum.services, sum.services_drifting, sum.hosts, sum.hosts_not_current
            ));
        }
        if !status.services.is_empty() {
            s.push_str(&table.render(self));
        }
        if !status.findings.is_empty() {
            s.push('\n');
            s.push_str(&self.findings_table(&status.findings));
        }
        if let Some(sum) = status
            .summary
            .as_ref()
            .filter(|_| status.rows == Rows::Drifting)
        {
            let calm = sum.services.saturating_sub(sum.services_drifting);
            if calm > 0 {
                s.push_str(&format!(
                    "\n{calm} service(s) without drift not shown (--all shows them)\n"
                ));
            }
        }
        if let Some(token) = &status.next_page {
            s.push_str(&format!(
                "\n{} more service(s): --page {}\n",
                status.services_left_out,
                sanitize(token)
            ));
        }
        s.push('\n');
        let services = status
            .summary
            .as_ref()
            .map_or(status.services.len(), |sum| sum.services as usize);
        let scope = format!(
            "{} environment(s), {services} service(s)",
            status.environments.len()
        );
        s.push_str(&self.verdict_of(&status.tally(), &scope));
        self.emit(&s)
    }

    /// `envparity findings` and `envparity check`.
    pub fn findings(&self, findings: &Findings) -> anyhow::Result<()> {
        if self.structured(findings)? {
            return Ok(());
        }
        let mut s = String::new();
        if !findings.findings.is_empty() {
            s.push_str(&self.findings_table(&findings.findings));
            s.push('\n');
        }
        let scope = match &findings.fail_on {
            Some(level) => format!("check (fail on {level} and above)"),
            None => "fleet".to_owned(),
        };
        s.push_str(&self.verdict(&findings.findings, &scope));
        self.emit(&s)
    }

    /// `envparity gate`.
    pub fn gate(&self, gate: &Gate) -> anyhow::Result<()> {
        if self.structured(gate)? {
            return Ok(());
        }
        let mut s = format!(
            " promote {} {} to {} (previous stage: {})\n",
            gate.service, gate.candidate, gate.to, gate.previous_environment,
        );
        if let Some(since) = &gate.running_since {
            s.push_str(&format!(
                "  {} has run it on every replica since {since} (policy minimum: {})\n",
                gate.previous_environment, gate.min_time_in_previous
            ));
        }
        for r in &gate.reasons {
            s.push_str(&format!("  - {r}\n"));
        }
        let verdict = if gate.allowed {
            self.paint("ALLOWED", Tone::Ok)
        } else {
            self.paint("REFUSED", Tone::Critical)
        };
        self.emit(&(verdict + &sanitize_lines(&s)))
    }

    /// `envparity history`.
    pub fn history(&self, history: &History) -> anyhow::Result<()> {
        if self.structured(history)? {
            return Ok(());
        }
        let mut events = Table::new(&[
            "TIME",
            "ENVIRONMENT",
            "HOST",
            "CONTAINER",
            "CHANGE",
            "FROM",
            "TO",
        ]);
        for e in &history.events {
            let image = |v: &str| {
                if v.is_empty() {
                    "-".to_owned()
                } else if self.wide() {
                    v.to_owned()
                } else {
                    short(v)
                }
            };
            events.row(
                vec![
                    e.received_at.clone().unwrap_or_default(),
                    e.environment.clone(),
                    e.host_id.clone(),
                    e.container.clone(),
                    e.change.clone(),
                    image(&e.old_image),
                    image(&e.new_image),
                ],
                |_, t, _: &Out| t.to_owned(),
            );
        }
        let mut s = sanitize_lines(&format!(
            "{}: {} change(s)\n",
            history.service,
            history.events.len()
        ));
        s.push_str(&events.render(self));
        if history.older_events_left_out {
            s.push_str("(older changes left out: raise --limit to see them)\n");
        }
        let mut findings = Table::new(&[
            "OPENED",
            "RESOLVED",
            "SEVERITY",
            "KIND",
            "ENVIRONMENTS",
            "KEY",
        ]);
        for f in &history.findings {
            findings.row(
                vec![
                    f.first_seen.clone().unwrap_or_default(),
                    f.resolved_at.clone().unwrap_or_else(|| "open".to_owned()),
                    f.severity.to_string(),
                    f.kind.to_string(),
                    f.environments.join(","),
                    dash_or(&f.key).to_owned(),
                ],
                |_, t, _: &Out| t.to_owned(),
            );
        }
        s.push_str(&format!("\n{} finding(s)\n", history.findings.len()));
        s.push_str(&findings.render(self));
        if history.older_findings_left_out {
            s.push_str("(older findings left out: raise --limit to see them)\n");
        }
        self.emit(&s)
    }

    /// `envparity explain`.
    pub fn explain(&self, e: &Explain) -> anyhow::Result<()> {
        if self.structured(e)? {
            return Ok(());
        }
        let mut s = format!(
            "{}: {} vs {}: {}\n",
            e.service,
            e.a.environment,
            e.b.environment,
            if e.same_content {
                "same content"
            } else {
                "different content"
            }
        );
        let field = |s: &mut String, name: &str, v: &str| {
            if !v.is_empty() {
                s.push_str(&format!("    {name:<13} {v}\n"));
            }
        };
        for side in [&e.a, &e.b] {
            s.push_str(&format!("\n{}:\n", side.environment));
            if side.images.is_empty() {
                s.push_str("  (the service does not run here)\n");
            }
            for i in &side.images {
                s.push_str(&format!("  {} on {}\n", i.reference, i.hosts.join(", ")));
                field(&mut s, "digest", &i.digest);
                field(&mut s, "image id", &i.image_id);
                field(&mut s, "architecture", &i.architecture);
                field(&mut s, "created", &i.created);
                field(&mut s, "revision", &i.revision);
                field(&mut s, "version", &i.version);
                field(&mut s, "base digest", &i.base_digest);
                field(&mut s, "source", &i.source);
                field(&mut s, "layers", &i.layer_count.to_string());
            }
        }
        match &e.shared_layers {
            Some(l) if l.shared == l.a_total && l.shared == l.b_total => {
                s.push_str(&format!("\nlayers: all {} identical\n", l.shared));
            }
            Some(l) if l.shared == 0 => s.push_str(&format!(
                "\nlayers: none shared ({} vs {}): different base image\n",
                l.a_total, l.b_total
            )),
            Some(l) => s.push_str(&format!(
                "\nlayers: the bottom {} are shared (same base); they diverge from layer {} ({} vs {} layers)\n",
                l.shared,
                l.shared + 1,
                l.a_total,
                l.b_total
            )),
            None => {}
        }
        self.emit(&sanitize_lines(&s))
    }

    /// `envparity policy show`.
    pub fn policy(&self, p: &PolicyShow) -> anyhow::Result<()> {
        if self.structured(p)? {
            return Ok(());
        }
        let loaded = p.loaded_at.clone().unwrap_or_default();
        self.emit(&sanitize_lines(&format!(
            "# effective policy, from {} (loaded {loaded})\n{}",
            p.source, p.toml
        )))
    }

    /// `envparity alerts`.
    pub fn alerts(&self, a: &Alerts) -> anyhow::Result<()> {
        if self.structured(a)? {
            return Ok(());
        }
        let mut headers = vec![
            "SEVERITY",
            "KIND",
            "SERVICE",
            "ENVIRONMENTS",
            "FIRING SINCE",
            "SUMMARY",
        ];
        if self.wide() {
            headers.extend(["HOST", "KEY", "FIRST SEEN", "ID"]);
        }
        let mut table = Table::new(&headers);
        for alert in &a.alerts {
            let envs = if alert.env_b.is_empty() {
                alert.env_a.clone()
            } else {
                format!("{} → {}", alert.env_a, alert.env_b)
            };
            let mut row = vec![
                alert.severity.to_string(),
                alert.kind.to_string(),
                dash_or(&alert.service).to_owned(),
                envs,
                alert.fired_at.clone().unwrap_or_default(),
                alert.summary.clone(),
            ];
            if self.wide() {
                row.extend([
                    dash_or(&alert.host).to_owned(),
                    dash_or(&alert.key).to_owned(),
                    alert.first_seen.clone().unwrap_or_default(),
                    alert.id.clone(),
                ]);
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        let sinks = if a.sinks.is_empty() {
            "none configured".to_owned()
        } else {
            a.sinks.join(", ")
        };
        let mut text = sanitize_lines(&format!(
            "{} alert(s) firing (alerting at {} and above; sinks: {sinks})\n",
            a.alerts.len(),
            a.min_severity
        ));
        if !a.alerts.is_empty() {
            text.push_str(&table.render(self));
        }
        self.emit(&text)
    }

    /// `envparity check-config`.
    /// `envparity hosts forget`.
    pub fn forgotten(&self, f: &Forgotten) -> anyhow::Result<()> {
        if self.structured(f)? {
            return Ok(());
        }
        self.emit(&sanitize_lines(&format!(
            "forgot host {} ({}, {} container(s), last seen {}); if its agent still runs, it comes back at its next report\n",
            f.host_id,
            f.environment,
            f.container_count,
            f.last_seen.as_deref().unwrap_or("never")
        )))
    }

    pub fn config_check(&self, c: &ConfigCheck) -> anyhow::Result<()> {
        if self.structured(c)? {
            return Ok(());
        }
        let mut text = format!(
            "config OK: {}\nlisten:          {}\ntransport:       {}\nreport rate:     {}\ndata_dir:        {}\nstale_after:     {}\npolicy:          {}\nmetrics_listen:  {}\nlog_format:      {}\nalerts at:       {} and above\n",
            c.source,
            c.listen,
            c.transport,
            c.report_rate,
            c.data_dir,
            c.stale_after,
            c.policy,
            if c.metrics_listen.is_empty() {
                "off"
            } else {
                &c.metrics_listen
            },
            c.log_format,
            c.alert_min_severity,
        );
        if c.sinks.is_empty() {
            text.push_str("sinks:           none\n");
        }
        for s in &c.sinks {
            text.push_str(&format!("sink:            {s}\n"));
        }
        self.emit(&sanitize_lines(&text))
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
                row.extend([i.image_id.clone(), i.host_state.to_string()]);
            }
            table.row(row, |_, text, _| text.to_owned());
        }
        let mut s = table.render(self);
        s.push_str(&format!(
            "{}: {} replica(s)\n",
            sanitize(&service.service),
            service.instances.len()
        ));
        self.emit(&s)
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
                // A row may have more cells than there are headers (a
                // malformed answer): the extra columns get widths too.
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width(c)),
                    None => widths.push(width(c)),
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

/// [`sanitize`] line by line, keeping the line breaks.
fn sanitize_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(l) => sanitize(l) + "\n",
            None => sanitize(line),
        })
        .collect()
}

fn dash_or(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
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

    /// The table sums up the whole fleet, says what it left out and how
    /// to get it, and judges on the whole fleet's tally, not on the
    /// findings of the page.
    #[test]
    fn a_status_page_says_what_it_leaves_out_and_judges_the_whole() {
        use envparity_proto::v1;
        let resp = v1::GetStatusResponse {
            environments: vec!["staging".into()],
            rows: vec![v1::StatusRow {
                service: "shop".into(),
                cells: vec![v1::StatusCell {
                    environment: "staging".into(),
                    replicas: 1,
                    digests: vec!["sha256:1".into()],
                    drift: true,
                    ..Default::default()
                }],
            }],
            rows_total: 3,
            next_page: "s1.d.73686f70\u{1b}[2J".into(),
            summary: Some(v1::StatusSummary {
                services: 7,
                services_drifting: 3,
                hosts: 4,
                hosts_not_current: 1,
                findings: Some(v1::FindingTally {
                    critical: 2,
                    pending: 1,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let status = super::super::output::Status::from_proto(&resp, false);
        assert!(!status.parity, "the whole fleet drifts: {status:?}");
        assert_eq!(status.services_left_out, 2);
        let out = Out::buffered(Format::Table, false);
        out.status(&status).unwrap();
        let text = out.take();
        for line in [
            "7 service(s), 3 drifting; 4 host(s), 1 not current",
            "4 service(s) without drift not shown (--all shows them)",
            "2 more service(s): --page s1.d.73686f70\\u{1b}[2J",
            "drift 1 environment(s), 7 service(s): 2 finding(s): 2 critical, 0 warning, 0 info; 1 pending (inside the grace period)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }

    #[test]
    fn status_rows_with_more_cells_than_environments_render() {
        // Found by fuzz/render: an answer whose rows hold more cells than it
        // names environments panicked on the missing column width.
        use envparity_proto::v1;
        let resp = v1::GetStatusResponse {
            environments: vec![],
            rows: vec![v1::StatusRow {
                service: "shop".into(),
                cells: ["sha256:1", "sha256:2"]
                    .map(|digest| v1::StatusCell {
                        environment: "staging".into(),
                        replicas: 1,
                        digests: vec![digest.into()],
                        ..Default::default()
                    })
                    .into(),
            }],
            ..Default::default()
        };
        let out = Out::buffered(Format::Table, false);
        out.status(&super::super::output::Status::from_proto(&resp, true))
            .unwrap();
        assert!(
            out.take()
                .starts_with("SERVICE\nshop     sha256:1  sha256:2\n")
        );
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
        let out = Out::buffered(Format::Table, true);
        let mut t = Table::new(&["A", "B"]);
        t.row(
            vec!["long-cell".into(), "x".into()],
            |c, text, out: &Out| {
                if c == 0 {
                    out.paint(text, Tone::Critical)
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
