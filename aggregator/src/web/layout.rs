//! The shell of every page (title, skip link, navigation, the style sheet)
//! and the small pieces pages share: a severity as a word with its colour,
//! a short digest, a time.

use envparity_proto::v1::{FindingState, Severity};
use maud::{DOCTYPE, Markup, html};

use super::assets::{LIVE, STYLE};
use super::theme::{self, Theme};

/// The pages of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Findings,
    Diff,
    Hosts,
    Alerts,
    Gate,
    Policy,
}

const NAV: [(Nav, &str, &str); 7] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Findings, "/findings", "Findings"),
    (Nav::Diff, "/diff", "Diff"),
    (Nav::Hosts, "/hosts", "Hosts"),
    (Nav::Alerts, "/alerts", "Alerts"),
    (Nav::Gate, "/gate", "Gate"),
    (Nav::Policy, "/policy", "Policy"),
];

/// A whole page: `body` is its main part. The theme is the one the
/// request answered chose ([`theme::shown`]).
pub fn page(title: &str, current: Option<Nav>, body: Markup) -> Markup {
    let shown = theme::shown();
    html! {
        (DOCTYPE)
        html lang="en" class=[shown.theme.class()] {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content=(shown.theme.scheme());
                title { (title) " · envparity" }
                link rel="stylesheet" href=(STYLE.url());
                script src=(LIVE.url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/" { "envparity" }
                    nav aria-label="Pages" {
                        ul {
                            @for (nav, href, label) in NAV {
                                li {
                                    @if Some(nav) == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    (switch(shown.theme, &shown.here))
                }
                main #main tabindex="-1" { (body) }
                p #live-status.sr-only aria-live="polite" {}
            }
        }
    }
}

/// The theme switch: a link per theme, coming back to `here`; the one in
/// force marked current. Links, so that it works without script.
fn switch(chosen: Theme, here: &str) -> Markup {
    html! {
        nav.theme aria-label="Theme" {
            span.muted { "Theme:" }
            ul {
                @for t in Theme::ALL {
                    li {
                        a href=(t.href(here)) data-theme=(t.word())
                            aria-current=[(t == chosen).then_some("true")] { (t.label()) }
                    }
                }
            }
        }
    }
}

/// A severity's word (also its CSS class suffix).
pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
        Severity::Unspecified => "unknown",
    }
}

/// A state's word.
pub fn state_word(s: FindingState) -> &'static str {
    match s {
        FindingState::Active => "active",
        FindingState::Pending => "pending",
        FindingState::Waived => "waived",
        FindingState::Unspecified => "unknown",
    }
}

/// A word shown with its colour: `word` is also the class suffix
/// (`critical`, `warning`, `info`, `parity`, `absent`, `allowed`,
/// `refused`). Never colour alone: the word is the content.
pub fn badge(word: &str) -> Markup {
    html! { span class=(format!("sev sev-{word}")) { (word) } }
}

/// A digest cut to its first 12 hex digits (`sha256:` dropped), as the CLI
/// shows it.
pub fn short_digest(d: &str) -> &str {
    let hex = d.split_once(':').map_or(d, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// A protobuf timestamp as RFC 3339 (UTC, seconds), or "—".
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(envparity_proto::time::from_timestamp)
        .map_or_else(
            || "—".to_owned(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}

/// Rows shown on one numbered page.
pub const PAGE_ROWS: usize = 50;

/// How many pages `total` rows make (at least 1), and whether `page` is one
/// of them.
pub fn pages(total: usize, page: usize) -> Result<usize, super::params::ParamError> {
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    if page > pages {
        return Err(super::params::ParamError::Invalid {
            name: "page".to_owned(),
            value: page.to_string(),
            expected: format!("a page of these {total} rows (1 to {pages})"),
        });
    }
    Ok(pages)
}

/// The rows of page `page` (from 1, checked by [`pages`]) of `rows`.
pub fn page_of<T>(rows: &[T], page: usize) -> &[T] {
    let start = ((page - 1) * PAGE_ROWS).min(rows.len());
    &rows[start..(start + PAGE_ROWS).min(rows.len())]
}

/// The numbered links to every page of a listing, `href(n)` giving page
/// `n`'s link; nothing when there is one page.
pub fn pager(page: usize, pages: usize, href: impl Fn(usize) -> String) -> Markup {
    html! {
        @if pages > 1 {
            nav aria-label="Pages of this list" {
                ol.pages {
                    @for n in 1..=pages {
                        li {
                            @if n == page {
                                a href=(href(n)) aria-current="page" { (n) }
                            } @else {
                                a href=(href(n)) { (n) }
                            }
                        }
                    }
                }
            }
        }
    }
}
