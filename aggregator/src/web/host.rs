//! `GET /host?id=H`: one host, as `envparity hosts` knows it: its
//! environment, state, times, labels, host and engine facts, and the
//! host-level findings that name it. An unknown host is a 404.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{GetFindingsRequest, ListHostsRequest};
use maud::html;
use tonic::Request;

use super::Web;
use super::answers;
use super::error::WebError;
use super::layout::{self, time};
use super::overview::host_state_word;
use super::params::Params;
use super::table;

const PARAMS: &[&str] = &["id"];

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let id = params
        .text("id")
        .ok_or_else(|| WebError::bad_request("query parameter \"id\" (the host) is required"))?
        .to_owned();
    let query = web.query.as_ref();
    let host = query
        .list_hosts(Request::new(ListHostsRequest::default()))
        .await?
        .into_inner()
        .hosts
        .into_iter()
        .find(|h| h.host_id == id)
        .ok_or_else(|| WebError::not_found(format!("no host {id:?} is known to the aggregator")))?;
    let findings: Vec<_> = answers::findings(query, GetFindingsRequest::default())
        .await?
        .findings
        .into_iter()
        .filter(|f| {
            f.host == id
                || f.a
                    .iter()
                    .chain(f.b.iter())
                    .any(|s| f.service.is_empty() && s.hosts.iter().any(|h| h == &id))
        })
        .collect();
    let facts = host.host.clone().unwrap_or_default();
    let engine = host.engine.clone().unwrap_or_default();
    let rows = [
        ("Environment", host.environment.clone()),
        ("State", host_state_word(host.state()).to_owned()),
        ("Last seen", time(host.last_seen.as_ref())),
        ("Snapshot stored", time(host.snapshot_received_at.as_ref())),
        ("Containers", host.container_count.to_string()),
        ("Containers left out", host.containers_dropped.to_string()),
        ("Agent", host.agent_version.clone()),
        ("Hostname", facts.hostname),
        ("Kernel", facts.kernel_version),
        ("OS", format!("{} {}", facts.os_name, facts.os_version)),
        ("Architecture", facts.architecture),
        (
            "Engine",
            format!("{} (API {})", engine.server_version, engine.api_version),
        ),
        ("Storage driver", engine.storage_driver),
        (
            "Cgroup",
            format!("{} v{}", engine.cgroup_driver, engine.cgroup_version),
        ),
        ("Refused because", host.refused_reason.clone()),
    ];
    let body = html! {
        h1 { "Host " code { (id) } }
        div.scroll {
            table #host {
                caption { "What the aggregator knows of " (id) }
                tbody {
                    @for (label, value) in &rows {
                        tr { th scope="row" { (label) } td { (value) } }
                    }
                    tr {
                        th scope="row" { "Labels" }
                        td { @for l in &host.labels { code { (l.key) "=" (l.value) } br; } }
                    }
                }
            }
        }
        (table::findings(&format!("host-level findings that name {id}"), &findings))
    };
    Ok(Html(
        layout::page(&format!("Host {id}"), None, body).into_string(),
    ))
}
