//! `GET /alerts`: the alerts firing now and the sinks, as `envparity
//! alerts` lists them.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::ListAlertsRequest;
use maud::html;
use tonic::Request;

use super::Web;
use super::error::WebError;
use super::layout::{self, Nav, badge, severity_word, time};
use super::params::{Params, link};
use super::table::kind_word;

/// `GET /alerts`.
pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    Params::parse(raw.as_deref(), &[])?;
    let answer = web
        .query
        .list_alerts(Request::new(ListAlertsRequest::default()))
        .await?
        .into_inner();
    let body = html! {
        h1 { "Alerts" }
        p {
            "Alerting at " (severity_word(answer.min_severity())) " and above; sinks: "
            @if answer.sinks.is_empty() { "none" } @else { (answer.sinks.join(", ")) }
            "."
        }
        @if answer.alerts.is_empty() {
            p #none { "No alert is firing." }
        } @else {
            div.scroll {
                table #alerts {
                    caption { (answer.alerts.len()) " alerts firing" }
                    thead {
                        tr {
                            @for h in ["Severity", "Kind", "Service", "Environments", "Key", "Summary", "First seen", "Fired"] {
                                th scope="col" { (h) }
                            }
                        }
                    }
                    tbody {
                        @for a in &answer.alerts {
                            tr {
                                td { (badge(severity_word(a.severity()))) }
                                td { code { (kind_word(a.kind)) } }
                                td {
                                    @if a.service.is_empty() { (a.host) }
                                    @else { a href=(link("/service", &[("name", &a.service)])) { (a.service) } }
                                }
                                td { (a.env_a) @if !a.env_b.is_empty() { " ↔ " (a.env_b) } }
                                td { @if !a.key.is_empty() { code { (a.key) } } }
                                td { (a.summary) }
                                td { (time(a.first_seen.as_ref())) }
                                td { (time(a.fired_at.as_ref())) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Alerts", Some(Nav::Alerts), body).into_string(),
    ))
}
