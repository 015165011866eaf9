//! Talking to the aggregator: the gRPC client and the retry backoff.

use std::sync::Arc;
use std::time::Duration;

use envparity_proto::transport::ClientTls;
use envparity_proto::v1::report_service_client::ReportServiceClient;
use envparity_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, HostSnapshot, PushDeltaRequest, PushSnapshotResponse,
};
use tonic::GrpcMethod;
use tonic::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::push_encoding::SharedPushCodec;

/// How long to wait for a TCP/HTTP2 connection to the aggregator.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take. The aggregator answers a push only once the
/// snapshot is durably stored, so this is generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A failed call to the aggregator, naming it.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The aggregator URL is unusable.
    #[error("aggregator {url}: invalid URL: {error}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why it is invalid.
        error: tonic::transport::Error,
    },
    /// The call failed (connection, timeout, or an error status).
    #[error("aggregator {url}: {rpc} failed: {}", describe(status))]
    Call {
        /// The URL.
        url: String,
        /// `PushSnapshot`, `PushDelta` or `Heartbeat`.
        rpc: &'static str,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(envparity_proto::transport::TlsSetupError),
}

impl ReportError {
    /// The gRPC code of a failed call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::InvalidUrl { .. } | Self::Tls(_) => None,
            Self::Call { status, .. } => Some(status.code()),
        }
    }
}

/// A status as one readable line: code, message and the innermost cause
/// (which says e.g. "Connection refused").
fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{:?}", status.code());
    if !status.message().is_empty() {
        text.push_str(": ");
        text.push_str(status.message());
    }
    let mut source = std::error::Error::source(status);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s);
        source = s.source();
    }
    if let Some(cause) = innermost {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// The aggregator client. Connects lazily and reconnects by itself on the
/// next call after a connection loss; pacing retries is the caller's job
/// (see [`Backoff`]).
#[derive(Debug, Clone)]
pub struct Reporter {
    url: String,
    client: ReportServiceClient<Channel>,
    /// The same channel, for pushes encoded from a shared snapshot
    /// ([`crate::push_encoding`]).
    grpc: tonic::client::Grpc<Channel>,
}

impl Reporter {
    /// A client for `url`, over TLS when it is `https://` (with `tls`'s CA
    /// and this host's agent certificate).
    pub fn with_tls(url: &str, tls: &ClientTls) -> Result<Self, ReportError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| ReportError::InvalidUrl {
                url: url.to_owned(),
                error,
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        let endpoint = tls.apply(endpoint, url).map_err(ReportError::Tls)?;
        let channel = endpoint.connect_lazy();
        Ok(Self {
            url: url.to_owned(),
            client: ReportServiceClient::new(channel.clone()),
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// The aggregator URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Pushes a full snapshot; `Ok` means the aggregator stored it (or
    /// already had it). Encoded from the shared copy, not a clone of it
    /// ([`crate::push_encoding`]).
    pub async fn push(
        &mut self,
        snapshot: Arc<HostSnapshot>,
    ) -> Result<PushSnapshotResponse, ReportError> {
        self.grpc.ready().await.map_err(|e| {
            self.error(
                "PushSnapshot",
                Status::unknown(format!("Service was not ready: {e}")),
            )
        })?;
        let path = PathAndQuery::from_static("/envparity.v1.ReportService/PushSnapshot");
        let mut request = tonic::Request::new(snapshot);
        request.extensions_mut().insert(GrpcMethod::new(
            "envparity.v1.ReportService",
            "PushSnapshot",
        ));
        self.grpc
            .unary(request, path, SharedPushCodec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error("PushSnapshot", status))
    }

    /// Pushes a snapshot as a delta; `Ok` means the aggregator rebuilt and
    /// stored it (or already had it). FAILED_PRECONDITION: it could not
    /// rebuild it (send the full snapshot); UNIMPLEMENTED: it takes no
    /// deltas.
    pub async fn push_delta(
        &mut self,
        request: PushDeltaRequest,
    ) -> Result<PushSnapshotResponse, ReportError> {
        self.client
            .push_delta(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error("PushDelta", status))
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ReportError> {
        self.client
            .heartbeat(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error("Heartbeat", status))
    }

    fn error(&self, rpc: &'static str, status: tonic::Status) -> ReportError {
        ReportError::Call {
            url: self.url.clone(),
            rpc,
            status,
        }
    }
}

/// Capped exponential backoff with jitter: each delay doubles up to `max`,
/// and the actual wait is drawn uniformly from its upper half, so a fleet of
/// agents that lost the aggregator at the same moment does not come back in
/// lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The agent's default: 200 ms doubling to 30 s.
    pub fn new() -> Self {
        Self::with_bounds(Duration::from_millis(200), Duration::from_secs(30))
    }

    /// A backoff from `min` doubling to `max`.
    pub fn with_bounds(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The next delay to wait, and advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = base / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=jitter_ms))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::with_bounds(Duration::from_millis(200), Duration::from_secs(30));
        let mut base = Duration::from_millis(200);
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} not in [{:?}, {base:?}]",
                base / 2
            );
            base = (base * 2).min(Duration::from_secs(30));
        }
        assert_eq!(base, Duration::from_secs(30), "reached the cap");
    }

    #[test]
    fn backoff_reset_starts_over() {
        let mut b = Backoff::with_bounds(Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn plain_text_is_refused_unless_allowed() {
        let err = Reporter::with_tls("http://127.0.0.1:9", &ClientTls::default()).unwrap_err();
        assert!(err.to_string().contains("--insecure-plaintext"), "{err}");
    }

    #[test]
    fn invalid_url_is_refused_naming_it() {
        let err = Reporter::with_tls("not a url", &ClientTls::default()).unwrap_err();
        assert!(err.to_string().contains("aggregator not a url"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_aggregator_error_names_the_url() {
        // Port 9 on loopback: nothing listens there, the connect is refused.
        let loopback = ClientTls {
            plaintext: envparity_proto::transport::Plaintext::Loopback,
            ..ClientTls::default()
        };
        let mut reporter = Reporter::with_tls("http://127.0.0.1:9", &loopback).unwrap();
        let err = reporter
            .push(Arc::new(HostSnapshot::default()))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("aggregator http://127.0.0.1:9: PushSnapshot failed"),
            "{msg}"
        );
        assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{msg}");
    }
}
