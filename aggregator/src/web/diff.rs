//! `GET /diff?a=A&b=B`: what differs between two environments, as
//! `envparity diff A B` lists it: the tally of the pair and its findings.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{GetFindingsRequest, GetStatusRequest};
use maud::html;
use tonic::Request;

use super::Web;
use super::answers;
use super::error::WebError;
use super::layout::{self, Nav, badge};
use super::params::Params;
use super::table;

const PARAMS: &[&str] = &["a", "b"];

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let query = web.query.as_ref();
    let environments = query
        .get_status(Request::new(GetStatusRequest {
            limit: 1,
            ..GetStatusRequest::default()
        }))
        .await?
        .into_inner()
        .environments;
    let pair = match (params.text("a"), params.text("b")) {
        (Some(a), Some(b)) => Some((a.to_owned(), b.to_owned())),
        (None, None) => None,
        _ => {
            return Err(WebError::bad_request(
                "query parameters \"a\" and \"b\" (the two environments) go together",
            ));
        }
    };
    let listing = match &pair {
        Some((a, b)) => Some(
            answers::findings(
                query,
                GetFindingsRequest {
                    env_a: a.clone(),
                    env_b: b.clone(),
                    ..GetFindingsRequest::default()
                },
            )
            .await?,
        ),
        None => None,
    };
    let (a, b) = pair.clone().unwrap_or_default();
    let body = html! {
        h1 { "Diff" }
        form.filters method="get" action="/diff" {
            @for (field, label, chosen) in [("a", "Environment", &a), ("b", "and", &b)] {
                label {
                    (label)
                    select name=(field) {
                        @for e in &environments {
                            option value=(e) selected[e == chosen] { (e) }
                        }
                    }
                }
            }
            button type="submit" { "Compare" }
        }
        @if let Some(l) = &listing {
            @let t = l.tally;
            p #verdict {
                @if t.critical + t.warning + t.info == 0 { (badge("parity")) " " (a) " and " (b) " are in parity" }
                @else { (badge("critical")) " drift" }
                " · " (t.critical) " critical, " (t.warning) " warning, " (t.info) " info, "
                (t.pending) " pending, " (t.waived) " waived"
            }
            (table::findings(&format!("what differs between {a} and {b}"), &l.findings))
        } @else {
            p { "Choose two environments." }
        }
    };
    Ok(Html(
        layout::page("Diff", Some(Nav::Diff), body).into_string(),
    ))
}
