//! `GetFindings`: a page of the open findings, every pair or one, read
//! from a [`Reading`].

use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{GetFindingsRequest, GetFindingsResponse};
use tonic::Status;

use super::checks::{known_environment, known_service, non_empty};
use crate::fleet::{Listing, Reading, Window};
use crate::server::convert::{self, count};
use crate::server::page;

/// A page of the open findings (every pair, or those of `env_a` against
/// `env_b` in that orientation), optionally for one service.
pub(super) fn findings(
    reading: &Reading<'_>,
    req: GetFindingsRequest,
) -> Result<GetFindingsResponse, Status> {
    let service = non_empty(req.service);
    if let Some(s) = &service
        && !reading.runs(s)
    {
        known_service(&reading.services(), s)?;
    }
    let limit = page::limit(req.limit, page::MAX_FINDINGS, "GetFindingsRequest.limit")?;
    let after = page::findings_position(&req.page)?;
    // 0 without a page: every finding, as clients before paging expect.
    let window = (limit > 0 || after.is_some()).then_some(Window {
        after,
        limit: if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        },
    });
    let (listing, environments) = match (req.env_a.is_empty(), req.env_b.is_empty()) {
        (true, true) => (
            Listing::every_pair(service.as_deref()),
            reading.environments(),
        ),
        (false, false) => {
            if req.env_a == req.env_b {
                return Err(Status::invalid_argument(format!(
                    "env_a and env_b are both {:?}; compare two different environments",
                    req.env_a
                )));
            }
            let known = reading.environments();
            known_environment(&known, &req.env_a)?;
            known_environment(&known, &req.env_b)?;
            (
                Listing::pair(&req.env_a, &req.env_b, service.as_deref()),
                vec![req.env_a.clone(), req.env_b.clone()],
            )
        }
        _ => {
            return Err(Status::invalid_argument(
                "give both env_a and env_b, or neither for every pair",
            ));
        }
    };
    let found = reading.page(&listing, window.as_ref());
    Ok(GetFindingsResponse {
        findings: found.findings.iter().map(convert::finding).collect(),
        environments,
        evaluated_at: Some(to_timestamp(reading.now())),
        total: count(found.total),
        next_page: found
            .next
            .as_ref()
            .map(page::findings_token)
            .unwrap_or_default(),
        tally: Some(convert::tally(&found.tally)),
    })
}
