//! `envparity.v1.ReportService`: where agents' reports enter.

use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::report_service_server::ReportService;
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, PushSnapshotRequest, PushSnapshotResponse,
};
use tonic::{Request, Response, Status};

use super::state::{Fleet, IngestError};

/// The report API over a shared [`Fleet`].
#[derive(Debug, Clone)]
pub struct ReportApi {
    fleet: Arc<Fleet>,
}

impl ReportApi {
    /// Serves reports into `fleet`.
    pub fn new(fleet: Arc<Fleet>) -> Self {
        ReportApi { fleet }
    }
}

fn status(host: &str, err: IngestError) -> Status {
    match err {
        IngestError::Invalid(e) => {
            tracing::warn!(host = %host.escape_debug(), reason = %e.reason, "report rejected");
            Status::invalid_argument(e.to_string())
        }
        IngestError::Store(e) => {
            tracing::error!(host = %host.escape_debug(), error = %e, "report could not be stored");
            Status::unavailable(format!("the aggregator could not store the report: {e}"))
        }
        IngestError::Task(e) => {
            tracing::error!(host = %host.escape_debug(), error = %e, "store task failed");
            Status::internal(format!("store task failed: {e}"))
        }
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn push_snapshot(
        &self,
        request: Request<PushSnapshotRequest>,
    ) -> Result<Response<PushSnapshotResponse>, Status> {
        let snapshot = request
            .into_inner()
            .snapshot
            .ok_or_else(|| Status::invalid_argument("PushSnapshotRequest.snapshot is missing"))?;
        let host = snapshot.host_id.clone();
        let (environment, containers, sequence) = (
            snapshot.environment.clone(),
            snapshot.containers.len(),
            snapshot.sequence,
        );
        let outcome = self
            .fleet
            .push(snapshot, SystemTime::now())
            .await
            .map_err(|e| status(&host, e))?;
        tracing::info!(
            host = %host.escape_debug(),
            %environment,
            containers,
            sequence,
            duplicate = outcome.duplicate,
            "snapshot stored"
        );
        Ok(Response::new(PushSnapshotResponse {
            content_hash: outcome.content_hash,
            duplicate: outcome.duplicate,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let hb = request.into_inner();
        let snapshot_needed = self
            .fleet
            .heartbeat(&hb, SystemTime::now())
            .await
            .map_err(|e| status(&hb.host_id, e))?;
        tracing::debug!(host = %hb.host_id.escape_debug(), snapshot_needed, "heartbeat");
        Ok(Response::new(HeartbeatResponse { snapshot_needed }))
    }
}
