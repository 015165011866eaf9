//! `GET /service?name=S&a=A&b=B`: one service. Where it runs (each
//! environment's images, digests, hosts and running-since), the findings of
//! a pair of environments (by default the last two, in promotion order,
//! that run it) with their waivers, `explain` for that pair side by side,
//! its history as a timeline ([`super::timeline`]), and the explicit env
//! keys and the mounted configuration files' key paths × environments as
//! fingerprints (clear values only for the names the agents allowlist; a
//! fingerprint is an HMAC the aggregator cannot reverse, shown shortened),
//! both drawn by one table ([`keys_table`]).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{
    ConfigFileState, ExplainRequest, ExplainResponse, ExplainSide, GetFindingsRequest,
    GetHistoryRequest, GetServiceRequest, GetStatusRequest, ServiceInstance,
};
use maud::{Markup, html};
use tonic::Request;

use super::Web;
use super::answers;
use super::error::WebError;
use super::layout::{self, badge, short_digest, time};
use super::overview::host_state_word;
use super::params::Params;
use super::table;
use super::timeline;

const PARAMS: &[&str] = &["name", "a", "b"];
/// Changes and findings of the history drawn, at most (the latest).
const HISTORY: u32 = 200;

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let name = params
        .text("name")
        .ok_or_else(|| WebError::bad_request("query parameter \"name\" (the service) is required"))?
        .to_owned();
    let query = web.query.as_ref();
    let instances = match query
        .get_service(Request::new(GetServiceRequest {
            service: name.clone(),
        }))
        .await
    {
        Ok(answer) => answer.into_inner().instances,
        Err(s) if s.code() == tonic::Code::NotFound => {
            return Err(WebError::not_found(format!(
                "no service {name:?} is known to the aggregator"
            )));
        }
        Err(s) => return Err(s.into()),
    };
    if instances.is_empty() {
        return Err(WebError::not_found(format!(
            "no service {name:?} runs on any host"
        )));
    }
    // The environments in promotion order, as the status grid orders them.
    let order = query
        .get_status(Request::new(GetStatusRequest {
            service: name.clone(),
            all: true,
            limit: 1,
            ..GetStatusRequest::default()
        }))
        .await?
        .into_inner()
        .environments;
    let runs_in: Vec<&String> = order
        .iter()
        .filter(|e| instances.iter().any(|i| &i.environment == *e))
        .collect();
    let (a, b) = match (params.text("a"), params.text("b")) {
        (Some(a), Some(b)) => (a.to_owned(), b.to_owned()),
        (None, None) if runs_in.len() >= 2 => (
            runs_in[runs_in.len() - 2].clone(),
            runs_in[runs_in.len() - 1].clone(),
        ),
        (None, None) => (String::new(), String::new()),
        _ => {
            return Err(WebError::bad_request(
                "query parameters \"a\" and \"b\" (the pair of environments) go together",
            ));
        }
    };
    let pair = if a.is_empty() {
        None
    } else {
        let listing = answers::findings(
            query,
            GetFindingsRequest {
                env_a: a.clone(),
                env_b: b.clone(),
                service: name.clone(),
                ..GetFindingsRequest::default()
            },
        )
        .await?;
        let explained = query
            .explain(Request::new(ExplainRequest {
                service: name.clone(),
                env_a: a.clone(),
                env_b: b.clone(),
            }))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.message().to_owned());
        let findings: Vec<_> = listing
            .findings
            .into_iter()
            .filter(|f| f.service == name)
            .collect();
        Some((findings, explained))
    };
    let history = query
        .get_history(Request::new(GetHistoryRequest {
            service: name.clone(),
            limit: HISTORY,
            ..GetHistoryRequest::default()
        }))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| s.message().to_owned());
    let body = html! {
        h1 { "Service " code { (name) } }
        (placement(&runs_in, &instances))
        h2 #history { "History" }
        @match &history {
            Ok(h) => (timeline::timeline(&runs_in, h, std::time::SystemTime::now())),
            Err(message) => p.error { (message) },
        }
        h2 #pair { "Between two environments" }
        (pair_form(&name, &order, &a, &b))
        @if let Some((findings, explained)) = &pair {
            (table::findings(&format!("findings of {name} between {a} and {b}"), findings))
            h3 { "Explain: why the images differ" }
            @match explained {
                Ok(e) => (explain(e)),
                Err(message) => p.error { (message) },
            }
        } @else {
            p { "It runs in one environment only: there is no pair to compare." }
        }
        (env_keys(&runs_in, &instances))
        (config_keys(&runs_in, &instances))
    };
    Ok(Html(
        layout::page(&format!("Service {name}"), None, body).into_string(),
    ))
}

/// Each environment: images, digests, hosts (with their state) and since
/// when the earliest replica runs.
fn placement(environments: &[&String], instances: &[ServiceInstance]) -> Markup {
    html! {
        div.scroll {
            table #placement {
                caption { "Where it runs" }
                thead {
                    tr {
                        th scope="col" { "Environment" }
                        th scope="col" { "Images" }
                        th scope="col" { "Digests" }
                        th scope="col" { "Hosts" }
                        th scope="col" { "Running since" }
                    }
                }
                tbody {
                    @for env in environments {
                        @let here: Vec<&ServiceInstance> = instances.iter().filter(|i| &&i.environment == env).collect();
                        @let images: BTreeSet<&str> = here.iter().filter_map(|i| i.container.as_ref()?.image.as_ref()).map(|i| i.reference.as_str()).collect();
                        @let digests: BTreeSet<String> = here.iter().filter_map(|i| i.container.as_ref()?.image.as_ref()).map(crate::parity::digest::content_identity).collect();
                        @let hosts: BTreeMap<&str, &str> = here.iter().map(|i| (i.host_id.as_str(), host_state_word(i.host_state()))).collect();
                        @let since = here.iter().filter_map(|i| i.container.as_ref()?.started_at.as_ref()).min_by_key(|t| (t.seconds, t.nanos));
                        tr data-environment=(env) {
                            th scope="row" { (env) }
                            td { @for i in &images { code { (i) } br; } }
                            td { @for d in &digests { code title=(d) { (short_digest(d)) } br; } }
                            td { @for (h, state) in &hosts { (h) " (" (state) ")" br; } }
                            td { (time(since)) }
                        }
                    }
                }
            }
        }
    }
}

fn pair_form(name: &str, environments: &[String], a: &str, b: &str) -> Markup {
    html! {
        form.filters method="get" action="/service" {
            input type="hidden" name="name" value=(name);
            @for (field, label, chosen) in [("a", "From", a), ("b", "To", b)] {
                label {
                    (label)
                    select name=(field) {
                        @for e in environments {
                            option value=(e) selected[e == chosen] { (e) }
                        }
                    }
                }
            }
            button type="submit" { "Compare" }
        }
    }
}

fn explain(e: &ExplainResponse) -> Markup {
    let side = |s: &Option<ExplainSide>| s.clone().unwrap_or_default();
    let (a, b) = (side(&e.a), side(&e.b));
    let rows = a.images.len().max(b.images.len()).max(1);
    html! {
        p {
            @if e.same_content {
                (badge("parity")) " Both environments run the same content."
            } @else {
                (badge("critical")) " different content"
            }
            @if let Some(l) = &e.shared_layers {
                " · " span #shared-layers { "shared layers: " (l.shared) " (of " (l.a_total) " and " (l.b_total) ")" }
            }
        }
        div.scroll {
            table #explain {
                caption { "Explain, side by side: " (a.environment) " and " (b.environment) }
                thead {
                    tr {
                        th scope="col" { "" }
                        th scope="col" { (a.environment) }
                        th scope="col" { (b.environment) }
                    }
                }
                tbody {
                    @for n in 0..rows {
                        @let (ia, ib) = (a.images.get(n).cloned().unwrap_or_default(), b.images.get(n).cloned().unwrap_or_default());
                        @for (label, va, vb) in [
                            ("Reference", ia.reference.clone(), ib.reference.clone()),
                            ("Digest", ia.digest.clone(), ib.digest.clone()),
                            ("Image id", ia.image_id.clone(), ib.image_id.clone()),
                            ("Architecture", ia.architecture.clone(), ib.architecture.clone()),
                            ("Created", ia.created.clone(), ib.created.clone()),
                            ("Version", ia.version.clone(), ib.version.clone()),
                            ("Revision", ia.revision.clone(), ib.revision.clone()),
                            ("Source", ia.source.clone(), ib.source.clone()),
                            ("Base digest", ia.base_digest.clone(), ib.base_digest.clone()),
                            ("Layers", ia.layer_count.to_string(), ib.layer_count.to_string()),
                            ("Hosts", ia.hosts.join(", "), ib.hosts.join(", ")),
                        ] {
                            tr {
                                th scope="row" { (label) }
                                td { code { (va) } }
                                td { code { (vb) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Values per row of a keys × environments table: the row's labels (a key,
/// or a file and a key path), then per environment the distinct values
/// shown there.
type Grid<'a> = BTreeMap<Vec<String>, BTreeMap<&'a str, BTreeSet<String>>>;

/// A value as the tables show it: in clear when the agent sent it so
/// (allowlisted), else as the first 12 hex digits of its fingerprint.
fn shown(clear: Option<&String>, fingerprint: &str) -> String {
    match clear {
        Some(clear) => format!("= {clear}"),
        None => format!("fp {}", short_digest(fingerprint)),
    }
}

/// The explicit env keys × environments.
fn env_keys(environments: &[&String], instances: &[ServiceInstance]) -> Markup {
    let mut grid = Grid::new();
    for i in instances {
        for v in i.container.iter().flat_map(|c| &c.explicit_env) {
            grid.entry(vec![v.name.clone()])
                .or_default()
                .entry(i.environment.as_str())
                .or_default()
                .insert(shown(v.value.as_ref(), &v.fingerprint));
        }
    }
    html! {
        h2 #env { "Explicit env" }
        @if grid.is_empty() {
            p { "No replica was given an explicit env." }
        } @else {
            (keys_table(
                "env-keys",
                "Env keys × environments: fingerprints (fp), or clear values where allowlisted",
                &["Key"],
                environments,
                &grid,
                &BTreeSet::new(),
            ))
        }
    }
}

/// The mounted configuration files' key paths × environments, as `service`
/// and `explain` print them: a row per file and key path (`$file` for a
/// file read whole, in no known format), a row per file not read or not
/// parsed with the reason. An environment none of whose replicas' files
/// were read says so in each cell instead of "absent".
fn config_keys(environments: &[&String], instances: &[ServiceInstance]) -> Markup {
    let mut grid = Grid::new();
    let mut read: BTreeSet<&str> = BTreeSet::new();
    for i in instances {
        let Some(files) = &i.config_files else {
            continue;
        };
        read.insert(&i.environment);
        for f in &files.files {
            let mut cell = |key: String, value: String| {
                grid.entry(vec![f.path.clone(), key])
                    .or_default()
                    .entry(i.environment.as_str())
                    .or_default()
                    .insert(value);
            };
            match f.state() {
                ConfigFileState::Read if f.keys.is_empty() => {
                    cell("$file".to_owned(), shown(None, &f.fingerprint));
                }
                ConfigFileState::Read => {}
                ConfigFileState::NotRead => cell("(not read)".to_owned(), f.reason.clone()),
                ConfigFileState::NotParsed | ConfigFileState::Unspecified => {
                    cell("(not parsed)".to_owned(), f.reason.clone());
                }
            }
            for k in &f.keys {
                cell(k.path.clone(), shown(k.value.as_ref(), &k.fingerprint));
            }
        }
    }
    let not_read = environments
        .iter()
        .map(|e| e.as_str())
        .filter(|e| !read.contains(e))
        .collect();
    html! {
        h2 #config { "Configuration files" }
        @if read.is_empty() {
            p { "No agent read this service's configuration files." }
        } @else if grid.is_empty() {
            p { "Its replicas mount no configuration file." }
        } @else {
            (keys_table(
                "config-keys",
                "Configuration key paths × environments: fingerprints (fp), or clear values where allowlisted",
                &["File", "Key path"],
                environments,
                &grid,
                &not_read,
            ))
        }
    }
}

/// A keys × environments table: the row labels under `labels`, then per
/// environment the distinct values (each a `code`), "absent" where the
/// row has none, "not read" in the environments of `not_read`.
fn keys_table(
    id: &str,
    caption: &str,
    labels: &[&str],
    environments: &[&String],
    grid: &Grid<'_>,
    not_read: &BTreeSet<&str>,
) -> Markup {
    html! {
        div.scroll {
            table id=(id) {
                caption { (caption) }
                thead {
                    tr {
                        @for l in labels { th scope="col" { (l) } }
                        @for e in environments { th scope="col" { (e) } }
                    }
                }
                tbody {
                    @for (row, by_env) in grid {
                        tr {
                            @for (n, label) in row.iter().enumerate() {
                                @if n + 1 == row.len() {
                                    th scope="row" { code { (label) } }
                                } @else {
                                    td { code { (label) } }
                                }
                            }
                            @for e in environments {
                                td {
                                    @match by_env.get(e.as_str()) {
                                        Some(values) => { @for v in values { code { (v) } br; } },
                                        None if not_read.contains(e.as_str()) => span.muted { "not read" },
                                        None => span.muted { "absent" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
