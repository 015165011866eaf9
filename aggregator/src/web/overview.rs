//! `GET /`: the overview. Counters for the fleet (those of `envparity
//! status -o json`'s summary) and per environment, then the services ×
//! environments matrix in promotion order, drifting services first, each
//! cell with its version, short digest, replicas and worst severity (a word
//! with its colour). Filters: `q` (part of a service name), `env` (one
//! environment's column), `drift` (`yes`: drifting only, `no`: in parity
//! only), and `page`.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{
    FindingState, FindingTally, GetStatusRequest, HostState, ListAlertsRequest, Severity,
    StatusCell, StatusSummary,
};
use maud::{Markup, html};
use tonic::Request;

use super::Web;
use super::answers::{self, Grid};
use super::error::WebError;
use super::layout::{self, Nav, badge, severity_word, short_digest};
use super::params::{Params, link};

const PARAMS: &[&str] = &["q", "env", "drift", "page"];
const DRIFT: &[&str] = &["yes", "no"];

/// One environment's counters.
#[derive(Debug, Default)]
struct EnvCounters {
    hosts: BTreeMap<&'static str, u32>,
    findings: FindingTally,
    alerts: u32,
}

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let q = params.owned("q");
    let env = params.owned("env");
    let drift = params.choice("drift", DRIFT)?;
    let page = params.page("page")?;
    let query = web.query.as_ref();
    // One answer: a page of rows, numbered, filtered and counted by the
    // API, with each environment summed up; the page reads what it shows,
    // whatever the fleet holds.
    let grid = answers::status_page(
        query,
        GetStatusRequest {
            environment: env.clone(),
            all: drift != Some("yes"),
            calm_only: drift == Some("no"),
            name_contains: q.clone(),
            limit: layout::PAGE_ROWS as u32,
            skip: (page.saturating_sub(1) * layout::PAGE_ROWS) as u32,
            by_environment: true,
            ..GetStatusRequest::default()
        },
    )
    .await?;
    let pages = layout::pages(grid.rows_total, page)?;
    let mut counters = Vec::new();
    let alerts = query
        .list_alerts(Request::new(ListAlertsRequest::default()))
        .await?
        .into_inner()
        .alerts;
    for summary in &grid.environment_summaries {
        let e = &summary.environment;
        let mut c = EnvCounters {
            findings: summary.findings.unwrap_or_default(),
            ..EnvCounters::default()
        };
        for s in &summary.host_states {
            *c.hosts.entry(host_state_word(s.state())).or_default() += s.hosts;
        }
        c.alerts = alerts
            .iter()
            .filter(|a| &a.env_a == e || &a.env_b == e)
            .count() as u32;
        counters.push((e.clone(), c));
    }
    let href = |n: usize| {
        let n = n.to_string();
        link(
            "/",
            &[
                ("q", &q),
                ("env", &env),
                ("drift", drift.unwrap_or("")),
                ("page", if n == "1" { "" } else { &n }),
            ],
        )
    };
    let body = html! {
        h1 { "Fleet overview" }
        (fleet_counters(&grid.summary))
        (env_counters(&counters))
        h2 #matrix { "Services × environments" }
        (filters(&grid.environments, &q, &env, drift))
        (matrix(&grid, page, pages))
        (layout::pager(page, pages, href))
    };
    Ok(Html(
        layout::page("Overview", Some(Nav::Overview), body).into_string(),
    ))
}

/// A host state's word.
pub fn host_state_word(s: HostState) -> &'static str {
    match s {
        HostState::Fresh => "fresh",
        HostState::Stale => "stale",
        HostState::EngineUnreachable => "unreachable",
        HostState::Refused => "refused",
        HostState::Unspecified => "unknown",
    }
}

/// The fleet's counters, each marked `data-counter` with the name the
/// summary of `status -o json` gives it.
fn fleet_counters(s: &StatusSummary) -> Markup {
    let t = s.findings.unwrap_or_default();
    let counters = [
        ("services", "Services", s.services),
        ("services_drifting", "Drifting", s.services_drifting),
        ("hosts", "Hosts", s.hosts),
        (
            "hosts_not_current",
            "Hosts not current",
            s.hosts_not_current,
        ),
        ("critical", "Critical", t.critical),
        ("warning", "Warning", t.warning),
        ("info", "Info", t.info),
        ("pending", "Pending", t.pending),
        ("waived", "Waived", t.waived),
    ];
    html! {
        section aria-labelledby="fleet" {
            h2 #fleet { "The fleet" }
            dl.counters {
                @for (key, label, n) in counters {
                    div { dt { (label) } dd data-counter=(key) { (n) } }
                }
            }
        }
    }
}

fn env_counters(counters: &[(String, EnvCounters)]) -> Markup {
    html! {
        div.scroll {
            table #environments {
                caption { "Per environment: hosts by freshness, findings that involve it by weight, alerts firing" }
                thead {
                    tr {
                        th scope="col" { "Environment" }
                        @for h in ["Fresh", "Stale", "Unreachable", "Refused", "Critical", "Warning", "Info", "Pending", "Waived", "Alerts"] {
                            th scope="col" { (h) }
                        }
                    }
                }
                tbody {
                    @for (env, c) in counters {
                        @let t = c.findings;
                        tr data-environment=(env) {
                            th scope="row" { a href=(link("/findings", &[("a", env)])) { (env) } }
                            @for s in ["fresh", "stale", "unreachable", "refused"] {
                                td data-counter=(s) { (c.hosts.get(s).copied().unwrap_or(0)) }
                            }
                            td data-counter="critical" { (t.critical) }
                            td data-counter="warning" { (t.warning) }
                            td data-counter="info" { (t.info) }
                            td data-counter="pending" { (t.pending) }
                            td data-counter="waived" { (t.waived) }
                            td data-counter="alerts" { (c.alerts) }
                        }
                    }
                }
            }
        }
    }
}

fn filters(environments: &[String], q: &str, env: &str, drift: Option<&str>) -> Markup {
    html! {
        form.filters method="get" action="/" role="search" {
            label { "Service name contains" input type="search" name="q" value=(q); }
            label {
                "Environment"
                select name="env" {
                    option value="" selected[env.is_empty()] { "every one" }
                    @for e in environments {
                        option value=(e) selected[e == env] { (e) }
                    }
                }
            }
            label {
                "Drift"
                select name="drift" {
                    option value="" selected[drift.is_none()] { "any" }
                    option value="yes" selected[drift == Some("yes")] { "drifting only" }
                    option value="no" selected[drift == Some("no")] { "in parity only" }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// What weighs most on `service` in `environment`: the worst severity of
/// its active findings that involve it, else of its pending ones (then
/// `true`: pending only). Waived findings do not weigh.
fn worst(grid: &Grid, service: &str, environment: &str) -> Option<(Severity, bool)> {
    let of = |state: FindingState| {
        grid.findings
            .iter()
            .filter(|f| f.service == service && f.state() == state)
            .filter(|f| {
                f.a.as_ref().is_some_and(|s| s.environment == environment)
                    || f.b.as_ref().is_some_and(|s| s.environment == environment)
            })
            .map(|f| f.severity())
            .max()
    };
    of(FindingState::Active)
        .map(|s| (s, false))
        .or_else(|| of(FindingState::Pending).map(|s| (s, true)))
}

/// The page's rows of `grid` (page `page` of `pages`).
fn matrix(grid: &Grid, page: usize, pages: usize) -> Markup {
    html! {
        @if grid.rows.is_empty() {
            p { "No service matches these filters." }
        } @else {
            div.scroll {
                table #grid {
                    caption { (grid.rows_total) " services match; page " (page) " of " (pages) ", drifting services first" }
                    thead {
                        tr {
                            th scope="col" { "Service" }
                            @for e in &grid.environments { th scope="col" { (e) } }
                        }
                    }
                    tbody {
                        @for row in &grid.rows {
                            tr data-service=(row.service) {
                                th scope="row" { a href=(link("/service", &[("name", &row.service)])) { (row.service) } }
                                @for cell in &row.cells {
                                    (matrix_cell(cell, worst(grid, &row.service, &cell.environment)))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn matrix_cell(cell: &StatusCell, worst: Option<(Severity, bool)>) -> Markup {
    let word = match worst {
        Some((s, _)) => severity_word(s),
        None if cell.replicas == 0 => "absent",
        None => "parity",
    };
    let pending = worst.is_some_and(|(_, p)| p);
    html! {
        td data-environment=(cell.environment) data-verdict=(word) {
            (badge(word))
            @if pending { " (pending)" }
            @if cell.stale { " " span.sev { "stale" } }
            @if cell.replicas > 0 {
                br;
                @if !cell.versions.is_empty() { (cell.versions.join(", ")) " " }
                code { (cell.digests.iter().map(|d| short_digest(d)).collect::<Vec<_>>().join(", ")) }
                " ×" (cell.replicas)
            }
        }
    }
}
