//! `envparity.v1.ReportService`: where agents' reports enter.

use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::report_service_server::ReportService;
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, HostSnapshot, PushDeltaRequest, PushSnapshotRequest,
    PushSnapshotResponse,
};
use tonic::{Request, Response, Status};

use super::auth::Auth;
use super::rate::RateLimiter;
use super::throttle::{INTERVAL, Throttle};
use super::validate::{self, InvalidReport};
use crate::fleet::{Fleet, IngestError};
use crate::metrics::{Metrics, Rejection};
use crate::warn_throttled;
use envparity_proto::{delta, hash};

static HOST_CAP: Throttle = Throttle::new(INTERVAL);

/// The report API over a shared [`Fleet`].
#[derive(Debug, Clone)]
pub struct ReportApi {
    fleet: Arc<Fleet>,
    metrics: Arc<Metrics>,
    auth: Arc<Auth>,
    limiter: Arc<RateLimiter>,
    /// The most hosts accepted, in plain text (`None`: no cap; with TLS each
    /// host needs a certificate of the fleet CA).
    host_cap: Option<usize>,
}

impl ReportApi {
    /// Serves reports into `fleet`, counting them in `metrics`, for the
    /// callers `auth` lets in, at the pace `limiter` allows each host.
    pub fn new(
        fleet: Arc<Fleet>,
        metrics: Arc<Metrics>,
        auth: Arc<Auth>,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        ReportApi {
            fleet,
            metrics,
            auth,
            limiter,
            host_cap: None,
        }
    }

    /// Refuses reports from new hosts once `cap` hosts are known (`None`:
    /// no cap).
    #[must_use]
    pub fn with_host_cap(mut self, cap: Option<usize>) -> Self {
        self.host_cap = cap;
        self
    }

    /// Refuses a snapshot from a host the fleet does not know yet when the
    /// fleet already holds `host_cap` hosts. Concurrent first reports may
    /// overshoot the cap by at most the number of calls in flight.
    fn admit_new_host(&self, host: &str) -> Result<(), Status> {
        let Some(cap) = self.host_cap else {
            return Ok(());
        };
        if self.fleet.host_count() < cap || self.fleet.knows(host) {
            return Ok(());
        }
        self.metrics.rejected(Rejection::HostCap);
        warn_throttled!(
            HOST_CAP,
            host = %host.escape_debug(),
            cap,
            "report from a new host refused: the plain-text host cap is reached"
        );
        Err(Status::resource_exhausted(format!(
            "the aggregator already knows {cap} hosts, its plain-text limit (max_plaintext_hosts, --max-plaintext-hosts); host {:?} is not accepted",
            host.escape_debug().to_string()
        )))
    }

    /// Refuses (and counts) a caller that may not report for `host`, or that
    /// reports for it faster than the rate limit. Both are checked before
    /// anything of the report is looked at.
    fn authorize<T>(
        &self,
        request: &Request<T>,
        host: &str,
        environment: &str,
    ) -> Result<(), Status> {
        self.auth
            .report(request, host, environment)
            .inspect_err(|_| {
                self.metrics.rejected(Rejection::Unauthorized);
            })?;
        self.limiter
            .check(host, std::time::Instant::now())
            .map_err(|wait| {
                self.metrics.rejected(Rejection::RateLimited);
                let limit = self.limiter.limit();
                tracing::debug!(host = %host.escape_debug(), retry_in_ms = wait.as_millis(), "report rate-limited");
                Status::resource_exhausted(format!(
                    "host {:?} reports faster than the limit of {}/s (bursts of {}); retry in {} ms",
                    host.escape_debug().to_string(),
                    limit.rate,
                    limit.burst,
                    wait.as_millis().max(1)
                ))
            })
    }

    /// Refuses (and counts) a malformed report of `host`.
    fn invalid(&self, host: &str, e: &InvalidReport) -> Status {
        self.metrics.rejected(Rejection::Invalid);
        tracing::warn!(host = %host.escape_debug(), reason = %e.reason, "report rejected");
        Status::invalid_argument(e.to_string())
    }

    fn rejected(&self, host: &str, err: IngestError) -> Status {
        self.metrics.rejected(match err {
            IngestError::Store(_) => Rejection::Store,
            IngestError::Task(_) => Rejection::Internal,
            IngestError::Delta(_) => Rejection::DeltaMismatch,
        });
        status(host, err)
    }
}

impl ReportApi {
    /// The snapshot a delta describes, rebuilt from the one held for
    /// `host`; FAILED_PRECONDITION (send the full snapshot) when none is
    /// held, the delta is against another, or the rebuilt snapshot is not
    /// the one the agent hashed.
    fn rebuild(&self, host: &str, delta: PushDeltaRequest) -> Result<HostSnapshot, Status> {
        let shown = host.escape_debug().to_string();
        let refuse = |why: String| {
            self.metrics.rejected(Rejection::DeltaMismatch);
            tracing::debug!(host = %shown, %why, "delta not applied; the agent sends the full snapshot");
            Status::failed_precondition(format!("{why}; send the full snapshot"))
        };
        let Some(base) = self.fleet.held(host) else {
            return Err(refuse(format!(
                "the aggregator holds no snapshot of host {shown:?} to apply a delta to"
            )));
        };
        let snapshot = delta::apply(base, delta).map_err(|e| refuse(e.to_string()))?;
        // Validation refuses a hash in neither form before this.
        let form = hash::HashForm::of(&snapshot.content_hash).unwrap_or_default();
        let rebuilt = hash::content_hash_in(form, &snapshot);
        if rebuilt != snapshot.content_hash {
            return Err(refuse(format!(
                "the snapshot rebuilt from the delta has content {rebuilt}, not {:?} as sent",
                snapshot.content_hash.escape_debug().to_string()
            )));
        }
        Ok(snapshot)
    }

    /// Validates and stores a report: a whole snapshot (sent whole, or
    /// rebuilt from a delta), or a delta applied to the compact host held.
    async fn store(
        &self,
        mut report: Received,
        started: std::time::Instant,
    ) -> Result<Response<PushSnapshotResponse>, Status> {
        let header = report.header();
        let (host, environment, sequence) = (
            header.host_id.clone(),
            header.environment.clone(),
            header.sequence,
        );
        let (kind, containers) = match &report {
            Received::Whole { snapshot, kind } => (*kind, snapshot.containers.len()),
            Received::Delta(delta) => ("delta", delta.upserted.len()),
        };
        let now = SystemTime::now();
        if let Err(e) = report.validate() {
            // A known host is shown refused, with why, until a report of
            // it is stored.
            self.fleet.refused(&host, &e.reason, now);
            return Err(self.invalid(&host, &e));
        }
        let pushed = match report {
            Received::Whole { snapshot, .. } => self.fleet.push(snapshot, now).await,
            Received::Delta(delta) => self.fleet.push_delta(delta, now).await,
        };
        let outcome = pushed.map_err(|e| self.rejected(&host, e))?;
        self.metrics.ingested(started.elapsed());
        tracing::info!(
            host = %host.escape_debug(),
            %environment,
            containers,
            sequence,
            received = kind,
            duplicate = outcome.duplicate,
            "snapshot stored"
        );
        Ok(Response::new(PushSnapshotResponse {
            content_hash: outcome.content_hash,
            duplicate: outcome.duplicate,
            hashes_by_container: true,
        }))
    }
}

/// A report as the edge received it.
enum Received {
    /// A whole snapshot, sent as `kind` (whole, or rebuilt from a delta).
    Whole {
        snapshot: HostSnapshot,
        kind: &'static str,
    },
    /// A delta to apply to the compact host held ([`Fleet::push_delta`]).
    Delta(PushDeltaRequest),
}

impl Received {
    fn header(&self) -> &HostSnapshot {
        static NONE: std::sync::LazyLock<HostSnapshot> =
            std::sync::LazyLock::new(HostSnapshot::default);
        match self {
            Received::Whole { snapshot, .. } => snapshot,
            Received::Delta(delta) => delta.snapshot.as_ref().unwrap_or(&NONE),
        }
    }

    /// Validates it: a snapshot whole; a delta's header with its upserted
    /// containers in place of the whole list (the held ones were
    /// validated when they came).
    fn validate(&mut self) -> Result<(), validate::InvalidReport> {
        match self {
            Received::Whole { snapshot, .. } => validate::snapshot(snapshot),
            Received::Delta(delta) => {
                let header = delta.snapshot.get_or_insert_default();
                header.containers = std::mem::take(&mut delta.upserted);
                let checked = validate::snapshot(header);
                delta.upserted = std::mem::take(&mut header.containers);
                checked
            }
        }
    }
}

fn status(host: &str, err: IngestError) -> Status {
    match err {
        IngestError::Store(e) => {
            tracing::error!(host = %host.escape_debug(), error = %e, "report could not be stored");
            Status::unavailable(format!("the aggregator could not store the report: {e}"))
        }
        IngestError::Task(e) => {
            tracing::error!(host = %host.escape_debug(), error = %e, "store task failed");
            Status::internal(format!("store task failed: {e}"))
        }
        IngestError::Delta(why) => {
            tracing::debug!(host = %host.escape_debug(), %why, "delta not applied; the agent sends the full snapshot");
            Status::failed_precondition(why)
        }
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn push_snapshot(
        &self,
        request: Request<PushSnapshotRequest>,
    ) -> Result<Response<PushSnapshotResponse>, Status> {
        let started = std::time::Instant::now();
        self.metrics.received("snapshot");
        let (host_claimed, environment_claimed) = request
            .get_ref()
            .snapshot
            .as_ref()
            .map(|s| (s.host_id.clone(), s.environment.clone()))
            .unwrap_or_default();
        self.authorize(&request, &host_claimed, &environment_claimed)?;
        self.admit_new_host(&host_claimed)?;
        let Some(snapshot) = request.into_inner().snapshot else {
            self.metrics.rejected(Rejection::Invalid);
            return Err(Status::invalid_argument(
                "PushSnapshotRequest.snapshot is missing",
            ));
        };
        let kind = "snapshot";
        self.store(Received::Whole { snapshot, kind }, started)
            .await
    }

    async fn push_delta(
        &self,
        request: Request<PushDeltaRequest>,
    ) -> Result<Response<PushSnapshotResponse>, Status> {
        let started = std::time::Instant::now();
        self.metrics.received("delta");
        let (host, environment) = request
            .get_ref()
            .snapshot
            .as_ref()
            .map(|s| (s.host_id.clone(), s.environment.clone()))
            .unwrap_or_default();
        self.authorize(&request, &host, &environment)?;
        let delta = request.into_inner();
        if !self.fleet.takes_delta(&delta) {
            let snapshot = self.rebuild(&host, delta)?;
            let kind = "delta";
            return self
                .store(Received::Whole { snapshot, kind }, started)
                .await;
        }
        self.store(Received::Delta(delta), started).await
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.metrics.received("heartbeat");
        self.authorize(
            &request,
            &request.get_ref().host_id,
            &request.get_ref().environment,
        )?;
        let hb = request.into_inner();
        validate::heartbeat(&hb).map_err(|e| self.invalid(&hb.host_id, &e))?;
        let snapshot_needed = self
            .fleet
            .heartbeat(&hb, SystemTime::now())
            .await
            .map_err(|e| self.rejected(&hb.host_id, e))?;
        tracing::debug!(host = %hb.host_id.escape_debug(), snapshot_needed, "heartbeat");
        Ok(Response::new(HeartbeatResponse { snapshot_needed }))
    }
}
