//! `GET /findings`: every finding, filtered by pair of environments (`a`
//! and `b`, or `a` alone: those that involve it), `service`, `severity`,
//! `state` and `kind`, in numbered pages. The listing is the query API's
//! (`GetFindings`); the filters the API does not take are applied to it.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{Finding, GetFindingsRequest};
use maud::html;

use super::Web;
use super::answers;
use super::error::WebError;
use super::layout::{self, Nav, severity_word, state_word};
use super::params::{Params, link};
use super::table::{self, kind_word};

const PARAMS: &[&str] = &["a", "b", "service", "severity", "state", "kind", "page"];
const SEVERITIES: &[&str] = &["critical", "warning", "info"];
const STATES: &[&str] = &["active", "pending", "waived"];

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let (a, b) = (params.owned("a"), params.owned("b"));
    if a.is_empty() && !b.is_empty() {
        return Err(WebError::bad_request(
            "query parameter \"b\" needs \"a\" (the first environment of the pair)",
        ));
    }
    let service = params.owned("service");
    let severity = params.choice("severity", SEVERITIES)?;
    let state = params.choice("state", STATES)?;
    let kind = params.owned("kind");
    let page = params.page("page")?;
    let pair = !b.is_empty();
    let listing = answers::findings(
        web.query.as_ref(),
        GetFindingsRequest {
            env_a: if pair { a.clone() } else { String::new() },
            env_b: b.clone(),
            service: service.clone(),
            ..GetFindingsRequest::default()
        },
    )
    .await?;
    let involves = |f: &Finding, env: &str| {
        f.a.as_ref().is_some_and(|s| s.environment == env)
            || f.b.as_ref().is_some_and(|s| s.environment == env)
    };
    let rows: Vec<Finding> = listing
        .findings
        .into_iter()
        .filter(|f| pair || a.is_empty() || involves(f, &a))
        .filter(|f| service.is_empty() || f.service == service)
        .filter(|f| severity.is_none_or(|s| severity_word(f.severity()) == s))
        .filter(|f| state.is_none_or(|s| state_word(f.state()) == s))
        .filter(|f| kind.is_empty() || kind_word(f.kind) == kind)
        .collect();
    let pages = layout::pages(rows.len(), page)?;
    let shown = layout::page_of(&rows, page);
    let here = |n: &str| {
        link(
            "/findings",
            &[
                ("a", &a),
                ("b", &b),
                ("service", &service),
                ("severity", severity.unwrap_or("")),
                ("state", state.unwrap_or("")),
                ("kind", &kind),
                ("page", n),
            ],
        )
    };
    let select = |name: &str, choices: &[&str], chosen: Option<&str>| {
        html! {
            label {
                (name)
                select name=(name) {
                    option value="" selected[chosen.is_none()] { "any" }
                    @for c in choices {
                        option value=(c) selected[chosen == Some(*c)] { (c) }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { "Findings" }
        form.filters method="get" action="/findings" role="search" {
            label { "Environment" input name="a" value=(a); }
            label { "and environment" input name="b" value=(b); }
            label { "Service" input name="service" value=(service); }
            (select("severity", SEVERITIES, severity))
            (select("state", STATES, state))
            label { "Kind" input name="kind" value=(kind) placeholder="image_digest"; }
            button type="submit" { "Filter" }
        }
        p #total { (rows.len()) " findings match (of " (listing.tally.critical + listing.tally.warning + listing.tally.info + listing.tally.pending + listing.tally.waived) " in this scope)." }
        (table::findings(&format!("findings, page {page} of {pages}"), shown))
        (layout::pager(page, pages, |n| here(&if n == 1 { String::new() } else { n.to_string() })))
    };
    Ok(Html(
        layout::page("Findings", Some(Nav::Findings), body).into_string(),
    ))
}
