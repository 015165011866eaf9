//! `GET /gate?service=S&to=E&image=REF`: the promotion gate as a form, and
//! its verdict as `envparity gate` prints it: ALLOWED or REFUSED, the
//! previous stage, since when it runs the candidate, and every reason. The
//! verdict is the aggregator's (`Gate`), not computed here.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use envparity_proto::v1::{GateRequest, GateResponse};
use maud::{Markup, html};
use tonic::Request;

use super::Web;
use super::error::WebError;
use super::layout::{self, Nav, time};
use super::params::Params;
use super::table;

const PARAMS: &[&str] = &["service", "to", "image"];

pub async fn page(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let params = Params::parse(raw.as_deref(), PARAMS)?;
    let (service, to, image) = (
        params.owned("service"),
        params.owned("to"),
        params.owned("image"),
    );
    let verdict = match (service.is_empty(), to.is_empty()) {
        (true, true) => None,
        (false, false) => Some(
            web.query
                .gate(Request::new(GateRequest {
                    service: service.clone(),
                    to: to.clone(),
                    image: image.clone(),
                }))
                .await?
                .into_inner(),
        ),
        (true, false) => {
            return Err(WebError::bad_request(
                "query parameter \"service\" is required with \"to\"",
            ));
        }
        (false, true) => {
            return Err(WebError::bad_request(
                "query parameter \"to\" is required with \"service\"",
            ));
        }
    };
    let body = html! {
        h1 { "Promotion gate" }
        form.filters method="get" action="/gate" {
            label { "Service" input name="service" value=(service) required; }
            label { "To environment" input name="to" value=(to) required; }
            label { "Image (optional: what the previous stage runs)" input name="image" value=(image); }
            button type="submit" { "Ask the gate" }
        }
        @if let Some(v) = &verdict { (answer(&service, &to, v)) }
    };
    Ok(Html(
        layout::page("Gate", Some(Nav::Gate), body).into_string(),
    ))
}

/// The verdict, worded as the CLI words it.
fn answer(service: &str, to: &str, v: &GateResponse) -> Markup {
    let min = v
        .min_time_in_previous
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .unwrap_or_default();
    html! {
        section #verdict aria-live="polite" {
            p.verdict {
                @if v.allowed { span.sev.sev-allowed { "ALLOWED" } }
                @else { span.sev.sev-refused { "REFUSED" } }
            }
            p {
                "promote " code { (service) } " " code { (v.candidate) } " to " (to)
                " (previous stage: " (v.previous_environment) ")"
            }
            @if v.running_since.is_some() {
                p {
                    (v.previous_environment) " has run it on every replica since "
                    (time(v.running_since.as_ref())) " (policy minimum: "
                    (humantime::format_duration(min)) ")"
                }
            }
            @if !v.reasons.is_empty() {
                ul #reasons { @for r in &v.reasons { li { (r) } } }
            }
            @if !v.blocking.is_empty() {
                (table::findings("findings that block the promotion", &v.blocking))
            }
        }
    }
}
