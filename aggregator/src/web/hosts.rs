//! `GET /hosts?env=E`: the hosts, as `envparity hosts` lists them: state,
//! last seen, containers, agent version, and why a report was refused.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::ListHostsRequest;
use maud::html;
use tonic::Request;

use super::Web;
use super::error::WebError;
use super::layout::{self, Nav, time};
use super::overview::host_state_word;
use super::params::{Params, link};

const PARAMS: &[&str] = &["env"];

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let env = params.owned("env");
    let hosts = web
        .query
        .list_hosts(Request::new(ListHostsRequest {
            environment: env.clone(),
        }))
        .await?
        .into_inner()
        .hosts;
    let body = html! {
        h1 { "Hosts" }
        form.filters method="get" action="/hosts" role="search" {
            label { "Environment" input name="env" value=(env); }
            button type="submit" { "Filter" }
        }
        div.scroll {
            table #hosts {
                caption { (hosts.len()) " hosts" @if !env.is_empty() { " in " (env) } }
                thead {
                    tr {
                        @for h in ["Host", "Environment", "State", "Last seen", "Containers", "Agent", "Refused because"] {
                            th scope="col" { (h) }
                        }
                    }
                }
                tbody {
                    @for h in &hosts {
                        tr data-host=(h.host_id) {
                            th scope="row" { a href=(link("/host", &[("id", &h.host_id)])) { (h.host_id) } }
                            td { a href=(link("/hosts", &[("env", &h.environment)])) { (h.environment) } }
                            td data-state=(host_state_word(h.state())) { (host_state_word(h.state())) }
                            td { (time(h.last_seen.as_ref())) }
                            td { (h.container_count) }
                            td { (h.agent_version) }
                            td { (h.refused_reason) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Hosts", Some(Nav::Hosts), body).into_string(),
    ))
}
