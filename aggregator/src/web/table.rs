//! The findings table, one for every page that lists findings (service,
//! diff, findings), so that a finding reads the same wherever it shows.
//! Each row is an anchor (`#f-…`, from the finding's stable id).

use envparity_proto::v1::{Finding, FindingKind, FindingState, Severity};
use maud::{Markup, html};

use super::layout::{badge, severity_word, state_word, time};
use super::params::link;

/// A finding kind as the CLI and the JSON name it (`image_digest`).
pub fn kind_word(kind: i32) -> String {
    FindingKind::try_from(kind)
        .unwrap_or(FindingKind::Unspecified)
        .as_str_name()
        .trim_start_matches("FINDING_KIND_")
        .to_ascii_lowercase()
}

/// The anchor of a finding (declared with the links to it, which alerts
/// carry: [`crate::links`]).
pub use crate::links::finding_anchor as anchor;

/// The environments of a finding: `a ↔ b`, or `a`.
pub fn pair(f: &Finding) -> String {
    let a = f.a.as_ref().map_or("", |s| s.environment.as_str());
    match &f.b {
        Some(b) => format!("{a} ↔ {}", b.environment),
        None => a.to_owned(),
    }
}

/// `findings` as a table captioned `caption`; a sentence instead when there
/// are none.
pub fn findings(caption: &str, findings: &[Finding]) -> Markup {
    html! {
        @if findings.is_empty() {
            p.none { "No findings: " (caption) "." }
        } @else {
            div.scroll {
                table.findings {
                    caption { (caption) }
                    thead {
                        tr {
                            th scope="col" { "Severity" }
                            th scope="col" { "State" }
                            th scope="col" { "Kind" }
                            th scope="col" { "Service" }
                            th scope="col" { "Environments" }
                            th scope="col" { "Key" }
                            th scope="col" { "Summary" }
                            th scope="col" { "Waiver" }
                            th scope="col" { "First seen" }
                        }
                    }
                    tbody {
                        @for f in findings {
                            (row(f))
                        }
                    }
                }
            }
        }
    }
}

fn row(f: &Finding) -> Markup {
    let severity = severity_word(Severity::try_from(f.severity).unwrap_or_default());
    let state = state_word(FindingState::try_from(f.state).unwrap_or_default());
    html! {
        tr id=(anchor(&f.id)) {
            td { (badge(severity)) }
            td { (state) }
            td { code.kind { (kind_word(f.kind)) } }
            td {
                @if f.service.is_empty() {
                    span.muted { (if f.host.is_empty() { "—".to_owned() } else { format!("host {}", f.host) }) }
                } @else {
                    a href=(link("/service", &[("name", &f.service)])) { (f.service) }
                }
            }
            td { (pair(f)) }
            td { @if !f.key.is_empty() { code { (f.key) } } }
            td { (f.summary) }
            td {
                @if let Some(w) = &f.waiver {
                    "owner " (w.owner) ", expires " (time(w.expires.as_ref()))
                    @if w.expired { " (expired)" }
                    @if !w.reason.is_empty() { br; span.muted { (w.reason) } }
                }
            }
            td { (time(f.first_seen.as_ref())) }
        }
    }
}
