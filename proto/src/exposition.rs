//! The metrics exposition formats both daemons serve at `/metrics`: the
//! other wire contract, with Prometheus.
//!
//! Metrics are encoded as OpenMetrics (what `prometheus-client` writes and
//! what Prometheus asks for first). A scraper that does not ask for it —
//! `curl`, `promtool check metrics`, older tooling — gets the classic
//! Prometheus text format 0.0.4, derived from the same text by
//! [`to_prometheus_text`], so the two cannot disagree.

/// OpenMetrics' content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The classic Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The content type and body for a scraper that sent `accept`, from the
/// OpenMetrics text.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if wants_openmetrics(accept) {
        (OPENMETRICS, openmetrics)
    } else {
        (PROMETHEUS_TEXT, to_prometheus_text(&openmetrics))
    }
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: counter families are
/// named with their `_total` suffix (as their samples are), `unknown`
/// becomes `untyped`, and `# UNIT` and `# EOF` lines go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP precedes its TYPE; hold it until the type is known.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), None);
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                k => (name.to_owned(), k),
            };
            flush_help(&mut out, help.take(), Some(&name));
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        flush_help(&mut out, help.take(), None);
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, help, None);
    out
}

fn flush_help(out: &mut String, help: Option<(&str, &str)>, renamed: Option<&str>) {
    if let Some((name, text)) = help {
        out.push_str(&format!("# HELP {} {text}\n", renamed.unwrap_or(name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name_and_markers_go() {
        let om = "# HELP a_events Events.\n# TYPE a_events counter\n# UNIT a_events events\na_events_total{x=\"1\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# TYPE u unknown\nu 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\na_events_total{x=\"1\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# TYPE u untyped\nu 2\n"
        );
    }

    #[test]
    fn only_an_openmetrics_accept_header_gets_openmetrics() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
