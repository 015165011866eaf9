//! Whole listings read from the query API, a page of its answers at a
//! time: the view numbers its own pages and filters by substring, which the
//! API's cursors do not, so it takes every row of the scope it shows. Each
//! call is the gRPC answer itself (the same code, in process).

use envparity_proto::v1::query_service_server::QueryService;
use envparity_proto::v1::{
    Finding, FindingTally, GetFindingsRequest, GetStatusRequest, StatusRow, StatusSummary,
};
use tonic::{Request, Status};

/// The largest page the status API gives.
const STATUS_PAGE: u32 = 1000;
/// The largest page the findings API gives.
const FINDINGS_PAGE: u32 = 5000;

/// Every row of a status scope, with its findings and summary.
#[derive(Debug, Default)]
pub struct Grid {
    /// The columns, in promotion order.
    pub environments: Vec<String>,
    /// Every service, those that drift first.
    pub rows: Vec<StatusRow>,
    /// The findings of the rows, and the host-level ones.
    pub findings: Vec<Finding>,
    /// The whole scope summed up (as `status -o json` shows it).
    pub summary: StatusSummary,
}

/// `GetStatus` with `all` over `environment` (empty: every one), every page.
pub async fn grid(query: &dyn QueryService, environment: &str) -> Result<Grid, Status> {
    let mut grid = Grid::default();
    let mut page = String::new();
    loop {
        let answer = query
            .get_status(Request::new(GetStatusRequest {
                all: true,
                environment: environment.to_owned(),
                limit: STATUS_PAGE,
                page,
                ..GetStatusRequest::default()
            }))
            .await?
            .into_inner();
        if grid.environments.is_empty() {
            grid.environments = answer.environments;
            grid.summary = answer.summary.unwrap_or_default();
        }
        grid.rows.extend(answer.rows);
        grid.findings.extend(answer.findings);
        if answer.next_page.is_empty() {
            return Ok(grid);
        }
        page = answer.next_page;
    }
}

/// The summary of `environment`'s scope alone (one row asked for).
pub async fn summary_of(
    query: &dyn QueryService,
    environment: &str,
) -> Result<StatusSummary, Status> {
    Ok(query
        .get_status(Request::new(GetStatusRequest {
            environment: environment.to_owned(),
            limit: 1,
            ..GetStatusRequest::default()
        }))
        .await?
        .into_inner()
        .summary
        .unwrap_or_default())
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
