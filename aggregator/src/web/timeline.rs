//! A service's history drawn on the server as inline SVG: one lane per
//! environment with a mark for each change (a container added, removed or
//! running other content), and below them a bar for each finding's
//! lifetime, from first seen to resolved (or now). Every mark and bar has a
//! `<title>` (escaped like all text) that browsers show on hover and
//! screen readers read; no script, no style attribute.

use std::time::{Duration, SystemTime};

use envparity_proto::time::from_timestamp;
use envparity_proto::v1::{FindingRecord, GetHistoryResponse, HistoryEvent, Severity};
use maud::{Markup, html};

use super::layout::{severity_word, time};
use super::table::kind_word;

/// The drawing's width (view box units) and its label column.
const WIDTH: f64 = 800.0;
const LABELS: f64 = 120.0;
const LANE: f64 = 28.0;
const BAR: f64 = 16.0;
/// Findings drawn at most (the rest are counted).
const MAX_BARS: usize = 20;

fn at(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(from_timestamp)
}

/// The timeline of `history` over `environments` (promotion order), up to
/// `now`.
pub fn timeline(environments: &[&String], history: &GetHistoryResponse, now: SystemTime) -> Markup {
    let times = history
        .events
        .iter()
        .filter_map(|e| at(e.observed_at.as_ref()))
        .chain(
            history
                .findings
                .iter()
                .filter_map(|f| at(f.first_seen.as_ref())),
        );
    let start = times
        .min()
        .unwrap_or(now)
        .min(now - Duration::from_secs(60));
    let span = now
        .duration_since(start)
        .unwrap_or_default()
        .as_secs_f64()
        .max(1.0);
    let x = |t: SystemTime| {
        let since = t.duration_since(start).unwrap_or_default().as_secs_f64();
        LABELS + (since / span).min(1.0) * (WIDTH - LABELS - 10.0)
    };
    let bars: Vec<&FindingRecord> = history.findings.iter().take(MAX_BARS).collect();
    let lanes_end = LANE * environments.len() as f64;
    let height = lanes_end + BAR * bars.len() as f64 + 30.0;
    let lane_of = |e: &HistoryEvent| environments.iter().position(|env| **env == e.environment);
    html! {
        svg.timeline role="img" aria-labelledby="timeline-title"
            viewBox=(format!("0 0 {WIDTH} {height}")) xmlns="http://www.w3.org/2000/svg" {
            title #timeline-title {
                "History of " (history.service) ": " (history.events.len()) " changes, "
                (history.findings.len()) " findings"
            }
            @for (i, env) in environments.iter().enumerate() {
                @let y = LANE * i as f64 + LANE / 2.0;
                text x="4" y=(y + 4.0) { (env) }
                line.lane x1=(LABELS) x2=(WIDTH - 10.0) y1=(y) y2=(y) {}
            }
            @for e in &history.events {
                @if let (Some(lane), Some(t)) = (lane_of(e), at(e.observed_at.as_ref())) {
                    circle class=(format!("event event-{}", e.change)) cx=(format!("{:.1}", x(t)))
                        cy=(LANE * lane as f64 + LANE / 2.0) r="5" {
                        title {
                            (time(e.observed_at.as_ref())) " " (e.environment) " " (e.host_id) " "
                            (e.container) ": " (e.change) " " (e.old_image) " → " (e.new_image)
                        }
                    }
                }
            }
            @for (j, f) in bars.iter().enumerate() {
                @let y = lanes_end + BAR * j as f64 + 4.0;
                @let from = at(f.first_seen.as_ref()).unwrap_or(start);
                @let to = at(f.resolved_at.as_ref()).unwrap_or(now);
                @let severity = severity_word(Severity::try_from(f.severity).unwrap_or_default());
                text x="4" y=(y + 10.0) { (kind_word(f.kind)) }
                rect class=(format!("bar sev-{severity}")) x=(format!("{:.1}", x(from))) y=(y)
                    width=(format!("{:.1}", (x(to) - x(from)).max(2.0))) height=(BAR - 4.0) {
                    title {
                        (kind_word(f.kind)) " (" (severity) ") " (f.environments.join(" ↔ ")) ": "
                        (f.summary) "; from " (time(f.first_seen.as_ref())) " to "
                        @if f.resolved_at.is_some() { (time(f.resolved_at.as_ref())) } @else { "now" }
                    }
                }
            }
            text x=(LABELS) y=(height - 6.0) { (time(Some(&envparity_proto::time::to_timestamp(start)))) }
            text.end x=(WIDTH - 10.0) y=(height - 6.0) { "now" }
        }
        @if history.findings.len() > MAX_BARS {
            p.muted { (history.findings.len() - MAX_BARS) " older findings are not drawn." }
        }
    }
}

#[cfg(test)]
mod tests {
    use envparity_proto::time::to_timestamp;

    use super::*;

    #[test]
    fn lanes_marks_and_bars_with_escaped_titles() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let (staging, production) = ("staging".to_owned(), "production".to_owned());
        let history = GetHistoryResponse {
            service: "<b>shop</b>".into(),
            events: vec![HistoryEvent {
                observed_at: Some(to_timestamp(now - Duration::from_secs(600))),
                environment: "production".into(),
                host_id: "prod-1".into(),
                container: "<script>".into(),
                change: "image_changed".into(),
                ..HistoryEvent::default()
            }],
            findings: vec![FindingRecord {
                kind: 1,
                severity: Severity::Critical.into(),
                environments: vec![staging.clone(), production.clone()],
                first_seen: Some(to_timestamp(now - Duration::from_secs(300))),
                ..FindingRecord::default()
            }],
            ..GetHistoryResponse::default()
        };
        let svg = timeline(&[&staging, &production], &history, now).into_string();
        assert_eq!(svg.matches("<line class=\"lane\"").count(), 2, "{svg}");
        assert_eq!(
            svg.matches("<circle class=\"event event-image_changed\"")
                .count(),
            1
        );
        // The change, ten minutes ago, is at the left edge; the finding,
        // still open, runs from the middle to the right edge.
        assert!(svg.contains("cx=\"120.0\""), "{svg}");
        assert!(
            svg.contains("class=\"bar sev-critical\" x=\"455.0\""),
            "{svg}"
        );
        assert!(svg.contains("width=\"335.0\""), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;") && !svg.contains("<script"),
            "{svg}"
        );
        assert!(svg.contains("History of &lt;b&gt;shop&lt;/b&gt;"));
        assert!(!svg.contains("style="), "{svg}");
    }
}
