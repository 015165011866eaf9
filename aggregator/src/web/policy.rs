//! `GET /policy`: the policy in force, as `envparity policy show` prints it.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::GetPolicyRequest;
use maud::html;
use tonic::Request;

use super::Web;
use super::error::WebError;
use super::layout::{self, Nav, time};
use super::params::Params;

/// `GET /policy`.
pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    Params::parse(raw.as_deref(), &[])?;
    let answer = web
        .query
        .get_policy(Request::new(GetPolicyRequest::default()))
        .await?
        .into_inner();
    let body = html! {
        h1 { "Policy" }
        p { "From " code { (answer.source) } ", loaded " (time(answer.loaded_at.as_ref())) "." }
        pre #policy { code { (answer.toml) } }
    };
    Ok(Html(
        layout::page("Policy", Some(Nav::Policy), body).into_string(),
    ))
}
