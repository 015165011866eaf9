//! Answers read from the query API. The overview reads one page of the
//! status grid, numbered and filtered by the API itself; a findings listing
//! is read whole, a page of the API's answers at a time, as the view
//! numbers its own pages and filters by substring there. Each call is the
//! gRPC answer itself (the same code, in process).

use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    EnvironmentSummary, Finding, FindingTally, GetFindingsRequest, GetStatusRequest, StatusRow,
    StatusSummary,
};
use tonic::{Request, Status};

/// The largest page the findings API gives.
const FINDINGS_PAGE: u32 = 5000;

/// One page of a status scope, with its findings and summary.
#[derive(Debug, Default)]
pub struct Grid {
    /// The columns, in promotion order.
    pub environments: Vec<String>,
    /// The rows of the page, those that drift first.
    pub rows: Vec<StatusRow>,
    /// How many rows the whole scope holds (with its filters).
    pub rows_total: usize,
    /// The findings of the rows, and (on the first page) the host-level
    /// ones.
    pub findings: Vec<Finding>,
    /// The whole scope summed up (as `status -o json` shows it).
    pub summary: StatusSummary,
    /// Each environment summed up, when `req` asked for it.
    pub environment_summaries: Vec<EnvironmentSummary>,
}

/// `GetStatus` for `req`: the one page it asks for (numbered pages by
/// `skip`, filters by name and drift), as the API answers it. Only the
/// rows shown are read, whatever the fleet holds.
pub async fn status_page(query: &dyn QueryService, req: GetStatusRequest) -> Result<Grid, Status> {
    let answer = query.get_status(Request::new(req)).await?.into_inner();
    Ok(Grid {
        environments: answer.environments,
        rows: answer.rows,
        rows_total: answer.rows_total as usize,
        findings: answer.findings,
        summary: answer.summary.unwrap_or_default(),
        environment_summaries: answer.environment_summaries,
    })
}

/// Every finding of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// In the API's order (kind, service, environments, key).
    pub findings: Vec<Finding>,
    /// The environments compared.
    pub environments: Vec<String>,
    /// What the whole listing weighs.
    pub tally: FindingTally,
}

/// `GetFindings` for `req`'s scope, every page.
pub async fn findings(
    query: &dyn QueryService,
    req: GetFindingsRequest,
) -> Result<Listing, Status> {
    let mut listing = Listing::default();
    let mut page = String::new();
    loop {
        let answer = query
            .get_findings(Request::new(GetFindingsRequest {
                limit: FINDINGS_PAGE,
                page,
                ..req.clone()
            }))
            .await?
            .into_inner();
        if listing.environments.is_empty() {
            listing.environments = answer.environments;
            listing.tally = answer.tally.unwrap_or_default();
        }
        listing.findings.extend(answer.findings);
        if answer.next_page.is_empty() {
            return Ok(listing);
        }
        page = answer.next_page;
    }
}
