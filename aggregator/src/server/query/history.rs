//! `GetHistory`: a service's history, a page at a time, read from the
//! store.

use std::time::SystemTime;

use envparity_proto::v1::{GetHistoryRequest, GetHistoryResponse};
use tonic::Status;

use super::checks::known_service;
use crate::fleet::Fleet;
use crate::server::convert;
use crate::store::PageAt;

/// History rows returned when the request gives no limit, and at most.
const MAX_HISTORY_ROWS: usize = 1000;

/// A history cursor from the wire: 0 means "from the most recent"; a row id
/// beyond `i64` is past every row, so the same.
fn cursor(before: u64) -> Option<i64> {
    match before {
        0 => None,
        n => i64::try_from(n).ok(),
    }
}

/// A store cursor on the wire: 0 when nothing older exists.
fn wire_cursor(older: Option<i64>) -> u64 {
    older.and_then(|id| u64::try_from(id).ok()).unwrap_or(0)
}

/// The rows of each kind a history call reads: what it asks for (0: the
/// default), never more than [`MAX_HISTORY_ROWS`], so one call cannot make the
/// server read a whole table into memory.
pub(super) fn history_rows(asked: u32) -> usize {
    match asked {
        0 => MAX_HISTORY_ROWS,
        n => (n as usize).min(MAX_HISTORY_ROWS),
    }
}

/// A page of `req.service`'s history: its events and its findings' records,
/// each older than the request's cursors.
pub(super) async fn history(
    fleet: &Fleet,
    req: GetHistoryRequest,
) -> Result<GetHistoryResponse, Status> {
    if req.service.is_empty() {
        return Err(Status::invalid_argument(
            "GetHistoryRequest.service is empty",
        ));
    }
    let limit = history_rows(req.limit);
    let at = |before: u64| PageAt {
        before: cursor(before),
        limit,
    };
    let (events_at, findings_at) = (at(req.events_before), at(req.findings_before));
    let store = fleet.store();
    let service = req.service.clone();
    let (changes, records) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((
            store.changes(Some(&service), events_at)?,
            store.finding_records(&service, findings_at)?,
        ))
    })
    .await
    .map_err(|e| Status::internal(format!("store task failed: {e}")))?
    .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
    let first_page = req.events_before == 0 && req.findings_before == 0;
    if first_page && changes.rows.is_empty() && records.rows.is_empty() {
        let reading = fleet.reading(SystemTime::now());
        if !reading.runs(&req.service) {
            known_service(&reading.services(), &req.service)?;
        }
    }
    Ok(GetHistoryResponse {
        service: req.service,
        events: changes.rows.iter().map(convert::history_event).collect(),
        findings: records.rows.iter().map(convert::finding_record).collect(),
        older_events: wire_cursor(changes.older),
        older_findings: wire_cursor(records.older),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_call_reads_at_most_a_thousand_rows_whatever_it_asks() {
        assert_eq!(history_rows(0), 1000);
        assert_eq!(history_rows(10), 10);
        assert_eq!(history_rows(1000), 1000);
        assert_eq!(history_rows(1_000_000), 1000);
        assert_eq!(history_rows(u32::MAX), 1000);
    }
}
